"""Batches of GeoPlant surveys, read by row from a release or a cache."""

import math

import keras
import numpy as np


class GeoPlantDataset(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` over the surveys of one GeoPlant split.

    Built by `keras_miam.datasets.load_geoplant`. Each batch reads its rows
    from `source` (so `workers` parallelise the reading), standardised per
    channel with `stats` (missing values stay NaN). A batch is `(x, y)`, or
    `x` alone without labels: `x` a dict of float32 "env" `(B, F)`,
    "climate" `(B, T, 4)`, "landsat" `(B, T, 6)` and "image" `(B, H, W, 4)`;
    `y` the `(B, K)` float32 multi-hot presence.

    Args:
        source: what reads the raw rows (`read(name, rows)`,
            `input_shapes`, `survey_ids`).
        modalities: tuple of modality names (the keys of `x`).
        rows: int array, the surveys' rows in `source`; default all.
        labels: a `(len(rows), K)` scipy sparse matrix, or None.
        stats: normalisation statistics (see `load_geoplant`), or None for
            raw values.
        batch_size: int, surveys per batch (the last one may be smaller).
        shuffle: bool, reshuffle the surveys (seeded) at every epoch.
        seed: int, seed of the shuffling.
        drop_remainder: bool, drop the last incomplete batch.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size`, as in
            `keras.utils.PyDataset`.

    Example:

    ```python
    train = keras_miam.datasets.load_geoplant("/data/geoplant", "train")
    x, y = train[0]  # a dict of modalities, and (128, K) labels
    model.fit(train, epochs=10)
    ```
    """

    def __init__(
        self,
        source,
        modalities,
        rows=None,
        labels=None,
        stats=None,
        batch_size=128,
        shuffle=False,
        seed=0,
        drop_remainder=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.source = source
        self.modalities = tuple(modalities)
        self.rows = (
            np.arange(len(source.survey_ids)) if rows is None else np.asarray(rows)
        )
        self.survey_ids = np.asarray(source.survey_ids)[self.rows]
        self.labels = labels
        self.stats = stats
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_remainder = bool(drop_remainder)
        self.input_shapes = {
            name: tuple(source.input_shapes[name]) for name in self.modalities
        }
        # Mean and std broadcast to an example's shape: one fast subtraction.
        self._scale = {
            name: [
                np.ascontiguousarray(
                    np.broadcast_to(np.asarray(stats[name][k], "float32"), shape)
                )
                for k in ("mean", "std")
            ]
            for name, shape in self.input_shapes.items()
            if stats
        }
        # Set by load_geoplant: label species, survey metadata, env columns.
        self.species = self.surveys = self.env_columns = None
        self._epoch = 0
        self._order = self._make_order()

    def _make_order(self):
        if not self.shuffle:
            return np.arange(len(self.rows))
        rng = np.random.default_rng([self.seed, self._epoch])
        return rng.permutation(len(self.rows))

    def __len__(self):
        if self.drop_remainder:
            return len(self.rows) // self.batch_size
        return math.ceil(len(self.rows) / self.batch_size)

    def on_epoch_end(self):
        self._epoch += 1
        self._order = self._make_order()

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"Batch index {index} out of range for {len(self)} batches."
            )
        batch = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        x = {}
        for name in self.modalities:
            values = self.source.read(name, self.rows[batch])
            if name in self._scale:
                mean, std = self._scale[name]
                np.subtract(values, mean, out=values)
                np.divide(values, std, out=values)
            x[name] = values
        if self.labels is None:
            return x
        return x, self.labels[batch].toarray()
