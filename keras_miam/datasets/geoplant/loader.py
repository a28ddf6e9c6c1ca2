"""Loads the GeoPlant / GeoLifeCLEF 2024-2025 presence-absence data."""

import functools

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import positive_int
from keras_miam.datasets.geoplant.cache import CachedSource
from keras_miam.datasets.geoplant.cache import default_modalities
from keras_miam.datasets.geoplant.cache import open_cache
from keras_miam.datasets.geoplant.dataset import GeoPlantDataset
from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.plan import clean_metadata
from keras_miam.datasets.geoplant.plan import plan_split
from keras_miam.datasets.geoplant.sources import GEOPLANT_MODALITIES
from keras_miam.datasets.geoplant.sources import SERIES_SOURCES
from keras_miam.datasets.geoplant.sources import ReleaseSource
from keras_miam.datasets.geoplant.statistics import check_stats
from keras_miam.datasets.geoplant.statistics import compute_stats


def load_geoplant(
    root=None,
    split="train",
    modalities=None,
    species=None,
    num_species=None,
    batch_size=128,
    stats=None,
    normalize=True,
    validation_fraction=0.1,
    seed=0,
    shuffle=None,
    env_columns=None,
    series_source="auto",
    image_size=None,
    stats_sample_size=1024,
    drop_remainder=False,
    workers=1,
    use_multiprocessing=False,
    max_queue_size=10,
    cache_dir=None,
    validation_block=None,
):
    """Streams a split of the GeoPlant presence-absence surveys as batches.

    Reads the GeoPlant / GeoLifeCLEF 2024 and 2025 layout (found by walking
    `root`, see `GeoPlantLayout`):

    - metadata, one row per present species (`...,speciesId,surveyId`):
      `PA_metadata_{split}.csv`, `GLC24-PA-metadata-{split}.csv`,
      `GLC25_PA_metadata_{split}.csv` or a `metadata.csv` with a `subset`
      column; labels are the multi-hot presence of the selected species.
    - "env": `EnvironmentalValues/**/...PA-{split}-*.csv` (or
      `EnvironmentalRasters/`), numeric columns joined on surveyId (the
      newest `vN` folder of a variable group).
    - "climate": `Bio-{pr,tas,tasmax,tasmin}_{MM}_{YYYY}` CSV columns or
      `*_{surveyId}_cube.pt` [4, 19, 12] cubes, as (228, 4).
    - "landsat": the per-band CSVs (`YYYY_Q` columns) or [6, 4, 21] cubes,
      as (84, 6).
    - "image": `{CD}/{AB}/{surveyId}.tiff` 4-band patches (GLC25, nodata -1)
      or GLC24's RGB and NIR jpegs, CD being the last two digits of the id,
      as (H, W, 4).

    Missing values (NaN, +-inf, |x| > 1e10, image nodata) and surveys without
    a row, cube or patch are NaN. With `normalize`, every channel is
    standardised with the nan-aware mean and std of the training part
    ("env": every survey; series and images: a seeded sample of
    `stats_sample_size` surveys). Statistics resting on fewer than two
    values of a channel raise a ValueError, on fewer than 5 surveys warn.
    Pass the training set's `stats` to the other splits (they are computed
    from the training part otherwise).

    "val" is a seeded `validation_fraction` of the training surveys (whole
    cells of `validation_block` degrees of lon / lat with it), "train" the
    rest, unless the release has a "val" split. Presence-only files are
    ignored.

    With `cache_dir`, the batches are read from a `prepare_geoplant` cache
    instead (the same values; `root`, when given, is checked against the
    cache's fingerprint). An unfinished, truncated or stale cache raises
    `GeoPlantCacheError`.

    Args:
        root: path of the release folder (optional with `cache_dir`).
        split: "train", "val", or a split of the metadata (e.g. "test",
            "test_iid").
        modalities: names among "env", "climate", "landsat", "image".
            Defaults to every modality the release has training files for
            (with `cache_dir`: those cached).
        species: optional list of speciesId (label columns in that order).
            Default: `stats["species"]`, else the training part's species
            by frequency (ties: smaller id).
        num_species: int, keep the most frequent species only.
        batch_size: int, surveys per batch.
        stats: statistics returned by a previous call (`.stats`), or None.
        normalize: bool; False returns raw values.
        validation_fraction: float in [0, 1), training surveys held out as
            "val".
        seed: int, seeds the validation draw, the statistics sample and the
            shuffling.
        shuffle: bool, reshuffle every epoch; default True for "train".
        env_columns: optional env column names or glob patterns (e.g.
            `["Bio*", "Elevation"]`).
        series_source: "auto" (CSVs when present, else cubes), "csv" or
            "cubes".
        image_size: int, patch height and width (resized if different);
            default that of the statistics, else of the first patch.
        stats_sample_size: int, surveys read for the series and image
            statistics.
        drop_remainder: bool, drop the last incomplete batch.
        workers: int, as in `keras.utils.PyDataset`.
        use_multiprocessing: bool, as in `keras.utils.PyDataset`.
        max_queue_size: int, as in `keras.utils.PyDataset`.
        cache_dir: optional path of a `prepare_geoplant` cache.
        validation_block: optional float, degrees: hold out "val" by
            spatial cells of that size.

    Returns:
        A `GeoPlantDataset` of `(x, y)` batches (`x` alone without
        speciesId). Attributes: `stats` (with "species"), `species`,
        `survey_ids`, `labels`, `surveys` (metadata), `input_shapes`,
        `env_columns`.

    Example:

    ```python
    train = keras_miam.datasets.load_geoplant("/data/geoplant", num_species=500)
    val = keras_miam.datasets.load_geoplant(
        "/data/geoplant", "val", stats=train.stats
    )
    model.fit(train, validation_data=val)
    ```

    Reference:
        Picek et al., "GeoPlant: Spatial Plant Species Prediction Dataset",
        NeurIPS 2024 Datasets and Benchmarks.
    """
    if series_source not in SERIES_SOURCES:
        raise ValueError(
            f"Unknown series_source '{series_source}'; expected one of "
            f"{list(SERIES_SOURCES)}."
        )
    batch_size = positive_int(batch_size, "batch_size")
    stats_sample_size = positive_int(stats_sample_size, "stats_sample_size")
    for name, value in (("image_size", image_size), ("num_species", num_species)):
        if value is not None:
            positive_int(value, name)
    if not 0.0 <= float(validation_fraction) < 1.0:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1); received {validation_fraction!r}."
        )
    if species is not None and num_species is not None:
        raise ValueError("Pass either `species` or `num_species`, not both.")
    if stats is not None and not isinstance(stats, dict):
        raise ValueError(
            f"`stats` must be a dict returned by load_geoplant; received {stats!r}."
        )

    if cache_dir is not None:
        manifest, modalities = open_cache(
            cache_dir, root, modalities, series_source, image_size
        )
        available, where = list(manifest["splits"]), f"the GeoPlant cache '{cache_dir}'"
        cached = functools.cache(
            lambda split: CachedSource(cache_dir, manifest, split, modalities)
        )
        read = lambda split: (cached(split).surveys, cached(split).presence)
        source = lambda split, size: cached(split)
    elif root is None:
        raise ValueError("Pass the release folder `root`, or a `cache_dir`.")
    else:
        layout = GeoPlantLayout(root)
        modalities = check_modalities(
            modalities or default_modalities(layout), GEOPLANT_MODALITIES
        )
        available, where = layout.splits(), f"the release under '{layout.root}'"
        read = functools.cache(
            lambda split: clean_metadata(layout.read_metadata(split))
        )

        sources = {}

        def source(split, size):
            if split not in sources:
                ids = read(split)[0].index
                sources[split] = ReleaseSource(
                    layout, split, ids, modalities, env_columns, series_source, size
                )
            elif size and "image" in modalities:  # patches are read at `size`
                sources[split].image_size = size
                sources[split].shapes["image"] = (size, size, 4)
            return sources[split]

    plan = plan_split(
        read,
        available,
        split,
        where,
        float(validation_fraction),
        seed,
        validation_block,
        species,
        num_species,
        stats,
    )
    if normalize and stats is None:
        train = source("train", image_size)
        if "env" in modalities and env_columns is not None:
            train.select_env(patterns=env_columns)
        stats = compute_stats(
            train, plan.train_rows, modalities, stats_sample_size, seed
        )
    if normalize:
        check_stats(stats, modalities)
        stats = dict(stats, species=plan.species)
        if "image" in modalities and image_size is None:
            image_size = stats["image"]["size"]
    data = source(plan.source_split, image_size)
    if "env" in modalities:
        if normalize:
            data.select_env(stats["env"]["columns"])
        else:
            data.select_env(patterns=env_columns)
    dataset = GeoPlantDataset(
        data,
        modalities,
        rows=plan.rows,
        labels=plan.labels,
        stats=stats if normalize else None,
        batch_size=batch_size,
        shuffle=split == "train" if shuffle is None else shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
        workers=workers,
        use_multiprocessing=use_multiprocessing,
        max_queue_size=max_queue_size,
    )
    dataset.species = plan.species
    dataset.surveys = plan.surveys
    dataset.env_columns = data.env_columns if "env" in modalities else None
    return dataset
