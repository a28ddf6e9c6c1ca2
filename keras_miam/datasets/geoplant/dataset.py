"""Batches of GeoPlant surveys, with the Sentinel-2 patches read lazily."""

import math
import warnings

import keras
import numpy as np

from keras_miam.datasets.geoplant.readers import read_cube
from keras_miam.datasets.geoplant.readers import read_patch


class GeoPlantDataset(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` over the surveys of one GeoPlant split.

    Built by `keras_miam.datasets.load_geoplant`. Tables (environmental
    variables, time series read from CSVs) are held in memory; time series
    read from `*_cube.pt` files and the Sentinel-2 patches are read per batch
    in `__getitem__`, so that `workers` / `use_multiprocessing` parallelise
    the file reading and no more than a batch of images is ever in memory.
    Values are normalised per variable / channel with `stats` (missing values
    stay NaN).

    Each batch is `(x, y)`, or `x` alone when the split has no labels: `x`
    is a dict {modality: float32 array} with "env" `(B, F)`, "climate"
    `(B, T, 4)` (pr, tas, tasmax, tasmin, months in time order), "landsat"
    `(B, T, 6)` (red, green, blue, nir, swir1, swir2, quarters in time order)
    and "image" `(B, H, W, 4)` (R, G, B, NIR, channels last); `y` is the
    `(B, K)` float32 multi-hot presence of the selected species.

    Args:
        survey_ids: int array (N,), the surveys, in order.
        modalities: tuple of modality names (keys of the batches).
        labels: float32 array (N, K), an object indexed the same way
            (rows -> `(len(rows), K)` float32 array), or None.
        tables: dict {modality: float32 array (M, ...)} of inputs held in
            memory or memory-mapped (the cache of `prepare_geoplant`).
        cubes: dict {modality: (dict surveyId -> cube path, num_steps)}.
        image_sources: list of (kind, folder, extension) for the patches.
        image_size: int, height and width of the patches.
        stats: dict of normalisation statistics (see `load_geoplant`), or
            None to return the raw values.
        batch_size: int, examples per batch (the last one may be smaller).
        shuffle: bool, reshuffle the surveys (seeded) at every epoch.
        seed: int, seed of the shuffling.
        drop_remainder: bool, drop the last incomplete batch.
        source_rows: optional int array (N,), the row of each survey in
            `tables` (e.g. the training part of a cached
            split); default: row i for survey i (M = N).
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size`, as in
            `keras.utils.PyDataset`.

    Example:

    ```python
    train = keras_miam.datasets.load_geoplant("/data/geoplant", "train")
    x, y = train[0]  # a dict of modalities, and (128, K) labels
    model.fit(train, epochs=10)
    ```

    Reference:
        Picek et al., "GeoPlant: Spatial Plant Species Prediction Dataset",
        NeurIPS 2024 Datasets and Benchmarks.
    """

    def __init__(
        self,
        survey_ids,
        modalities,
        labels=None,
        tables=None,
        cubes=None,
        image_sources=None,
        image_size=None,
        stats=None,
        batch_size=128,
        shuffle=False,
        seed=0,
        drop_remainder=False,
        source_rows=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.survey_ids = np.asarray(survey_ids, dtype="int64")
        self.modalities = tuple(modalities)
        self.labels = labels
        self.tables = dict(tables or {})
        self.cubes = dict(cubes or {})
        self.image_sources = list(image_sources or [])
        self.image_size = image_size
        self.stats = stats
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_remainder = bool(drop_remainder)
        self.source_rows = (
            None if source_rows is None else np.asarray(source_rows, "int64")
        )
        # Set by load_geoplant: label species, survey metadata, env columns.
        self.species = None
        self.surveys = None
        self.env_columns = None
        self._epoch = 0
        self._order = self._make_order()

    @property
    def input_shapes(self):
        """{modality: shape without the batch dimension}."""
        shapes = {}
        for name in self.modalities:
            if name in self.tables:
                shapes[name] = tuple(self.tables[name].shape[1:])
            elif name in self.cubes:
                channels = 4 if name == "climate" else 6
                shapes[name] = (self.cubes[name][1], channels)
            elif name == "image":
                shapes[name] = (self.image_size, self.image_size, 4)
        return shapes

    def _make_order(self):
        n = len(self.survey_ids)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self._epoch]).permutation(n)

    def __len__(self):
        n = len(self.survey_ids)
        if self.drop_remainder:
            return n // self.batch_size
        return math.ceil(n / self.batch_size)

    def on_epoch_end(self):
        self._epoch += 1
        self._order = self._make_order()

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"Batch index {index} out of range for {len(self)} batches."
            )
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        source = rows if self.source_rows is None else self.source_rows[rows]
        x = {name: self._modality(name, rows, source) for name in self.modalities}
        if self.labels is None:
            return x
        return x, self.labels[rows]

    def _modality(self, name, rows, source):
        if name in self.tables:
            values = np.asarray(self.tables[name][source])
        elif name in self.cubes:
            index, steps = self.cubes[name]
            channels = 4 if name == "climate" else 6
            values = np.full((len(rows), steps, channels), np.nan, "float32")
            for i, survey in enumerate(self.survey_ids[rows]):
                path = index.get(int(survey))
                if path is None:
                    continue
                try:
                    cube = read_cube(path, name)
                except (OSError, RuntimeError, ValueError, EOFError) as error:
                    warnings.warn(
                        f"Could not read cube '{path}' ({error}); using NaN.",
                        stacklevel=2,
                    )
                    continue
                take = min(steps, len(cube))
                values[i, :take] = cube[:take]
        else:
            size = self.image_size
            values = np.empty((len(rows), size, size, 4), "float32")
            for i, survey in enumerate(self.survey_ids[rows]):
                values[i] = read_patch(self.image_sources, int(survey), size)
        return self._normalise(name, values)

    def _normalise(self, name, values):
        values = values.astype("float32", copy=False)
        if not self.stats or name not in self.stats:
            return values
        mean, std = self._moments(name, values.shape[1:])
        # In place (`values` is this batch's own copy), over whole examples:
        # broadcasting per channel (an inner loop of 4 or 6) is much slower.
        np.subtract(values, mean, out=values)
        np.divide(values, std, out=values)
        return values

    def _moments(self, name, shape):
        """Mean and std of a modality, broadcast to an example's shape."""
        key = (name, shape, id(self.stats[name]))
        cache = self.__dict__.setdefault("_moments_cache", {})
        if key not in cache:
            cache[key] = tuple(
                np.ascontiguousarray(
                    np.broadcast_to(np.asarray(self.stats[name][k], "float32"), shape)
                )
                for k in ("mean", "std")
            )
        return cache[key]
