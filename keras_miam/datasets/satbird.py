"""Loads SatBird: Sentinel-2 and environmental rasters -> bird encounter rates."""

import json
import math
from pathlib import Path

import keras
import numpy as np

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import positive_int
from keras_miam.datasets.checks import to_float32

SATBIRD_MODALITIES = ("image", "env")
SAMPLE_WEIGHTS = {"checklists": lambda n: n, "sqrt": np.sqrt, "log": np.log}
_SPLITS = {"train": "train", "val": "valid", "valid": "valid", "test": "test"}
_FILES = {"images": ".tif", "environmental_data": ".npy", "targets": ".json"}


def load_satbird(
    root,
    split="train",
    modalities=SATBIRD_MODALITIES,
    env="center",
    crop_size=64,
    batch_size=64,
    stats=None,
    normalize=True,
    stats_sample_size=512,
    sample_weight=None,
    range_mask=False,
    shuffle=None,
    seed=0,
    **kwargs,
):
    """Streams a split of a SatBird sub-dataset as batches of encounter rates.

    `root` is one sub-dataset (`USA_summer`, `USA_winter` or `Kenya`):

        {train,valid,test}_split.csv          # column hotspot_id
        images/{hotspot_id}.tif               # R, G, B, NIR, >= crop_size px
        environmental_data/{hotspot_id}.npy   # (variables, H, W), NaN ok
        targets/{hotspot_id}.json   # {"probs": [...], "num_complete_checklists": n}
        range_maps.pkl                        # optional, see `range_mask`

    "image" is the centre crop of the tif; "env" each variable at the
    raster's centre (the mean of the central 2 x 2 pixels of an even-sized
    raster), or with `env="image"` the raster, channels last. Missing values
    (`keras_miam.missing.is_missing`) are NaN. `range_maps.pkl` is a pickle,
    which can run any code it holds: it is read only with `range_mask=True`,
    from a release you trust, and the targets of species outside a hotspot's
    range are then NaN (ignored by the `keras_miam` losses and metrics).

    Args:
        root: path of a sub-dataset folder.
        split: "train", "valid" (or "val") or "test".
        modalities: names among "image" and "env".
        env: "center" (`(V,)`) or "image" (`(H, W, V)`), the form of "env".
        crop_size: int, side of the centre crop (SatBird's baseline: 64).
        batch_size: int, hotspots per batch.
        stats: the training set's `.stats`, or None to compute them.
        normalize: bool, standardise with nan-aware training statistics.
        stats_sample_size: int, training hotspots sampled for the statistics.
        sample_weight: None, or "checklists", "sqrt" or "log": batches are
            then `(x, y, w)`, `w` the number of complete checklists, its
            square root or its log (SatBird's weighted loss).
        range_mask: bool, read `range_maps.pkl` (a pickle, see above).
        shuffle: bool, reshuffle every epoch; default True for "train".
        seed: int, seeds the statistics sample and the shuffling.
        **kwargs: `drop_remainder`, and the `keras.utils.PyDataset` arguments.

    Returns:
        A `keras.utils.PyDataset` of `(x, y)` batches (`x` a dict of float32
        arrays, `y` the `(B, K)` float32 encounter rates) with attributes
        `hotspot_ids`, `targets`, `num_complete_checklists`, `weights`,
        `range_mask` (0/1), `stats`, `input_shapes`, and `read(name, rows)`.

    Example:

    ```python
    train = keras_miam.datasets.load_satbird("/data/SatBird/USA_summer")
    val = keras_miam.datasets.load_satbird(train.root, "valid", stats=train.stats)
    ```

    Reference:
        Teng et al., "SatBird: a Dataset for Bird Species Distribution
        Modeling using Remote Sensing and Citizen Science Data", NeurIPS 2023.
    """
    modalities = check_modalities(modalities, SATBIRD_MODALITIES)
    for name, value, known in (
        ("split", split, _SPLITS),
        ("env", env, ("center", "image")),
        ("sample_weight", sample_weight, (None, *SAMPLE_WEIGHTS)),
    ):
        if value not in known:
            raise ValueError(
                f"`{name}` must be one of {list(known)}; received {value!r}."
            )
    crop_size = positive_int(crop_size, "crop_size")
    batch_size = positive_int(batch_size, "batch_size")
    root = Path(root).expanduser()
    ids = _hotspots(root, split)
    dataset = SatBirdDataset(root, ids, modalities, env, crop_size, **kwargs)
    dataset.batch_size, dataset.seed = batch_size, seed
    dataset.shuffle = split == "train" if shuffle is None else shuffle
    dataset.targets, counts = _read_targets(root, ids)
    dataset.num_complete_checklists = counts
    if sample_weight is not None:
        dataset.weights = SAMPLE_WEIGHTS[sample_weight](counts).astype("float32")
    if range_mask:
        dataset.range_mask = _read_range_mask(root, ids, dataset.targets.shape[1])
        dataset.targets[dataset.range_mask == 0] = np.nan
    if normalize and stats is None:
        train = dataset
        if split != "train":
            train = _hotspots(root, "train")
            train = SatBirdDataset(root, train, modalities, env, crop_size)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.permutation(len(train.hotspot_ids))[:stats_sample_size])
        stats = {}
        for name in modalities:
            values = train.read(name, rows).astype("float64")
            values = np.ma.masked_invalid(values.reshape(-1, values.shape[-1]))
            std = values.std(axis=0).filled(0.0)
            stats[name] = {
                "mean": values.mean(axis=0).filled(0.0).tolist(),
                "std": np.where(std > 0, std, 1.0).tolist(),
            }
    dataset.stats = stats if normalize else None
    return dataset


class SatBirdDataset(keras.utils.PyDataset):
    """Batches of SatBird hotspots, built by `load_satbird` (see there)."""

    batch_size, shuffle, seed, epoch, input_shapes = 64, False, 0, 0, {}
    stats = targets = weights = range_mask = num_complete_checklists = None

    def __init__(self, root, hotspot_ids, modalities, env, crop_size, **kwargs):
        self.drop_remainder = kwargs.pop("drop_remainder", False)
        super().__init__(**kwargs)
        self.root, self.hotspot_ids, self.modalities = root, hotspot_ids, modalities
        self.env, self.crop_size = env, crop_size
        self.input_shapes = {m: self.read(m, [0]).shape[1:] for m in modalities}

    def __len__(self):
        rounding = math.floor if self.drop_remainder else math.ceil
        return rounding(len(self.hotspot_ids) / self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch {index} out of range for {len(self)} batches.")
        order = np.arange(len(self.hotspot_ids))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
        rows = order[index * self.batch_size : (index + 1) * self.batch_size]
        x = {name: self.read(name, rows) for name in self.modalities}
        for name in self.modalities if self.stats else ():
            mean, std = (np.float32(self.stats[name][k]) for k in ("mean", "std"))
            x[name] = (x[name] - mean) / std
        batch = (x, self.targets[rows])
        return batch if self.weights is None else (*batch, self.weights[rows])

    def read(self, name, rows):
        """The raw float32 values of modality `name` for hotspots `rows`."""
        read = self._image if name == "image" else self._env
        return np.stack([read(self.hotspot_ids[i]) for i in rows])

    def _image(self, hotspot):
        import tifffile

        path = self.root / "images" / f"{hotspot}.tif"
        image = tifffile.imread(path)
        if image.ndim == 3 and image.shape[0] == 4 and image.shape[-1] != 4:
            image = np.moveaxis(image, 0, -1)  # bands first, as rasterio writes
        size = self.crop_size
        if image.ndim != 3 or image.shape[-1] != 4 or min(image.shape[:2]) < size:
            raise ValueError(
                f"'{path}' holds an array of shape {image.shape}; expected 4 bands "
                f"(R, G, B, NIR) of at least {size} x {size} pixels."
            )
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        return to_float32(image[top : top + size, left : left + size])

    def _env(self, hotspot):
        path = self.root / "environmental_data" / f"{hotspot}.npy"
        raster = to_float32(np.load(path, allow_pickle=False))
        known = self.input_shapes.get("env", (None,))[-1]
        if raster.ndim != 3 or known not in (None, len(raster)):
            raise ValueError(
                f"'{path}' holds an array of shape {raster.shape}; expected "
                f"(variables, height, width) with {known or 'V'} variables."
            )
        if self.env == "image":
            return np.moveaxis(raster, 0, -1)
        h, w = raster.shape[1:]
        centre = raster[:, (h - 1) // 2 : h // 2 + 1, (w - 1) // 2 : w // 2 + 1]
        centre = np.ma.masked_invalid(centre.reshape(len(raster), -1))
        return centre.mean(axis=1).filled(np.nan)


def _hotspots(root, split):
    """The hotspot ids of `{split}_split.csv`, after checking the folders."""
    import pandas as pd

    path = root / f"{_SPLITS[split]}_split.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"'{path}' not found; expected a SatBird sub-dataset folder "
            "(USA_summer, USA_winter or Kenya) holding train_split.csv, "
            "valid_split.csv and test_split.csv."
        )
    table = pd.read_csv(path)
    if "hotspot_id" not in table.columns or table.empty:
        raise ValueError(
            f"'{path}' has columns {list(table.columns)} and {len(table)} rows; "
            "expected a 'hotspot_id' column listing at least one hotspot."
        )
    ids = table["hotspot_id"].astype(str).tolist()
    for folder, suffix in _FILES.items():
        if absent := [i for i in ids if not (root / folder / f"{i}{suffix}").is_file()]:
            raise FileNotFoundError(
                f"{len(absent)} hotspot(s) of '{path}' have no {folder}/{{hotspot_id}}{suffix}, e.g. '{root / folder / absent[0]}{suffix}'."
            )
    return ids


def _read_targets(root, ids):
    """(N, K) float32 encounter rates and (N,) checklist counts."""
    probs, counts = [], []
    for hotspot in ids:
        path = root / "targets" / f"{hotspot}.json"
        content = json.loads(path.read_text())
        values = np.asarray(content.get("probs", []), "float32")
        size = len(probs[0]) if probs else None
        bad = values.ndim != 1 or len(values) != (size or len(values))
        bad |= "num_complete_checklists" not in content
        if bad or np.any(values < 0) or np.any(values > 1):
            raise ValueError(
                f"'{path}' has `probs` of shape {values.shape} (first values "
                f"{values.ravel()[:5].tolist()}) and keys {sorted(content)}; "
                f"expected {size or 'a list of'} encounter rates in [0, 1] and "
                "'num_complete_checklists'."
            )
        probs.append(values)
        counts.append(content["num_complete_checklists"])
    return np.stack(probs), np.asarray(counts, "float32")


def _read_range_mask(root, ids, num_species):
    """(N, K) 0/1 float32 range mask of `range_maps.pkl` (a pickle)."""
    import pandas as pd

    path = root / "range_maps.pkl"
    table = pd.read_pickle(path)
    if not isinstance(table, pd.DataFrame) or "hotspot_id" not in table.columns:
        raise ValueError(
            f"'{path}' holds a {type(table).__name__}; expected a DataFrame "
            "with a 'hotspot_id' column and one 0/1 column per species."
        )
    table = table.drop(columns=["index"], errors="ignore")
    table = table.set_index(table["hotspot_id"].astype(str)).drop(columns="hotspot_id")
    absent = [i for i in ids if i not in table.index]
    if absent or table.shape[1] != num_species:
        raise ValueError(
            f"'{path}' has {table.shape[1]} species columns and no row for "
            f"hotspot(s) {absent[:5]}; expected {num_species} columns (as the "
            "targets) and a row per hotspot."
        )
    return table.loc[ids].to_numpy("float32")
