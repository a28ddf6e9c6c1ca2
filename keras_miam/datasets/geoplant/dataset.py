"""Batches of GeoPlant surveys, read by row from a release or a cache."""

import keras
import numpy as np


class GeoPlantDataset(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` over the surveys of one GeoPlant split.

    Built by `keras_miam.datasets.load_geoplant`. A batch is `(x, y)` (`x`
    alone without labels): `x` a dict of float32 arrays read from `source`
    and standardised with `stats` (NaN stays NaN), `y` the multi-hot.

    Args:
        source: a `sources.Source` of the split.
        modalities: tuple of modality names (the keys of `x`).
        rows: int array, the surveys' rows in `source`; default all.
        labels: a `(len(rows), K)` scipy sparse matrix, or None.
        stats: normalisation statistics, or None for raw values.
        batch_size: int, surveys per batch.
        shuffle: bool, reshuffle the surveys (seeded) at every epoch.
        seed: int, seed of the shuffling.
        drop_remainder: bool, drop the last incomplete batch.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.
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
        self.source, self.modalities = source, tuple(modalities)
        self.rows = np.arange(len(source.survey_ids)) if rows is None else rows
        self.survey_ids = np.asarray(source.survey_ids)[self.rows]
        self.labels, self.stats, self.batch_size = labels, stats, batch_size
        self.shuffle, self.seed, self.drop_remainder = shuffle, seed, drop_remainder
        self.input_shapes = {m: tuple(source.shapes[m]) for m in self.modalities}
        self._epoch = 0
        self.on_epoch_end()

    def __len__(self):
        extra = 0 if self.drop_remainder else self.batch_size - 1
        return (len(self.rows) + extra) // self.batch_size

    def on_epoch_end(self):
        rng = np.random.default_rng([self.seed, self._epoch])
        n, self._epoch = len(self.rows), self._epoch + 1
        self._order = rng.permutation(n) if self.shuffle else np.arange(n)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch {index} out of range for {len(self)} batches.")
        batch = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        x = {name: self.source.read(name, self.rows[batch]) for name in self.modalities}
        for name, values in x.items():
            if self.stats:  # in place, NaN stays NaN
                mean, std = (np.float32(self.stats[name][k]) for k in ("mean", "std"))
                np.divide(np.subtract(values, mean, out=values), std, out=values)
        return x if self.labels is None else (x, self.labels[batch].toarray())
