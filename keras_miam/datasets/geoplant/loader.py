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
from keras_miam.datasets.geoplant.sources import ReleaseSource
from keras_miam.datasets.geoplant.sources import check_series_source
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

    Reads a GeoPlant / GeoLifeCLEF 2024-2025 release (see `GeoPlantLayout`),
    or a `prepare_geoplant` cache: labels are the multi-hot presence of the
    selected species; "env" `(F,)`, "climate" `(T, 4)`, "landsat" `(T, 6)`
    and "image" `(H, W, 4)`, missing values (and surveys without a file)
    NaN. With `normalize`, each channel is standardised with the nan-aware
    mean and std of the training part (series and images: a seeded sample
    of `stats_sample_size` surveys); a channel with fewer than two training
    values raises, fewer than 5 surveys warn. "val" is a seeded
    `validation_fraction` of the training surveys (whole cells of
    `validation_block` degrees with it) unless the release has one.

    Args:
        root: path of the release folder (optional with `cache_dir`).
        split: "train", "val", or a split of the metadata ("test", ...).
        modalities: names among "env", "climate", "landsat", "image";
            default every modality with training files (or cached).
        species: optional list of speciesId (label columns, in order);
            default `stats["species"]`, else the training part's species by
            frequency (ties: smaller id).
        num_species: int, keep the most frequent species only.
        batch_size: int, surveys per batch.
        stats: the `.stats` of the training set, or None to compute them.
        normalize: bool; False returns raw values.
        validation_fraction: float in [0, 1), training surveys held out.
        seed: int, seeds the validation part, the sample and the shuffling.
        shuffle: bool, reshuffle every epoch; default True for "train".
        env_columns: optional env column names or glob patterns.
        series_source: "auto" (CSVs when present), "csv" or "cubes".
        image_size: int, patch size (resized); default that of `stats`,
            else of the first patch.
        stats_sample_size: int, surveys read for series and image stats.
        drop_remainder: bool, drop the last incomplete batch.
        workers: int, as in `keras.utils.PyDataset`.
        use_multiprocessing: bool, as in `keras.utils.PyDataset`.
        max_queue_size: int, as in `keras.utils.PyDataset`.
        cache_dir: optional path of a `prepare_geoplant` cache.
        validation_block: optional float, degrees of the validation cells.

    Returns:
        A `GeoPlantDataset` of `(x, y)` batches (`x` alone without
        speciesId), with `stats` (and "species"), `species`, `survey_ids`,
        `labels`, `surveys`, `input_shapes` and `env_columns`.

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
    check_series_source(series_source)
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
