"""Loads the GeoPlant / GeoLifeCLEF 2024-2025 presence-absence data."""

import functools

from keras_miam.datasets.checks import positive_int
from keras_miam.datasets.geoplant.cache import CachedSource
from keras_miam.datasets.geoplant.cache import open_cache
from keras_miam.datasets.geoplant.dataset import GeoPlantDataset
from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.plan import clean_metadata
from keras_miam.datasets.geoplant.plan import plan_split
from keras_miam.datasets.geoplant.sources import ReleaseSource
from keras_miam.datasets.geoplant.sources import default_modalities
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
    cache_dir=None,
    validation_block=None,
    **kwargs,
):
    """Streams a split of the GeoPlant presence-absence surveys as batches.

    Reads a GeoPlant / GeoLifeCLEF 2024-2025 release (see `GeoPlantLayout`)
    or a `prepare_geoplant` cache. Labels are the multi-hot presence of the
    selected species; "env" `(F,)`, "climate" `(T, 4)`, "landsat" `(T, 6)`
    and "image" `(H, W, 4)` are NaN where missing. With `normalize`, each
    channel is standardised with the training part's statistics: a channel
    with fewer than two training values raises, fewer than 5 surveys warn.

    Args:
        root: path of the release folder (optional with `cache_dir`).
        split: "train", "val", or a split of the metadata ("test", ...).
        modalities: names among "env", "climate", "landsat", "image";
            default every modality with training files (or cached).
        species: optional speciesId list; default `stats["species"]`, else
            the training species by frequency.
        num_species: int, keep the most frequent species only.
        batch_size: int, surveys per batch.
        stats: the `.stats` of the training set, or None to compute them.
        normalize: bool; False returns raw values.
        validation_fraction: float in [0, 1), training surveys held out as
            "val" (seeded) when the release has no "val".
        seed: int, seeds the validation part, the sample and the shuffling.
        shuffle: bool, reshuffle every epoch; default True for "train".
        env_columns: optional env column names or glob patterns.
        series_source: "auto" (CSVs when present), "csv" or "cubes".
        image_size: int, patch size; default that of `stats` or the first.
        stats_sample_size: int, surveys read for series and image stats.
        drop_remainder: bool, drop the last incomplete batch.
        cache_dir: optional path of a `prepare_geoplant` cache.
        validation_block: optional float, "val" in cells of that many degrees.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Returns:
        A `GeoPlantDataset` of `(x, y)` batches (`x` alone without
        speciesId), with `stats` (and "species"), `species`, `survey_ids`,
        `labels`, `surveys`, `input_shapes` and `env_columns`.

    Example:

    ```python
    train = keras_miam.datasets.load_geoplant("/data/geoplant", num_species=500)
    val = keras_miam.datasets.load_geoplant("/data/geoplant", "val", stats=train.stats)
    model.fit(train, validation_data=val)
    ```

    Reference:
        Picek et al., "GeoPlant: Spatial Plant Species Prediction Dataset",
        NeurIPS 2024 Datasets and Benchmarks.
    """
    positive_int(batch_size, "batch_size")
    positive_int(stats_sample_size, "stats_sample_size")
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
        options = (manifest, modalities, env_columns)
        source = functools.cache(lambda s: CachedSource(cache_dir, s, *options))
        read = lambda split: (source(split).surveys, source(split).presence)
    elif root is None:
        raise ValueError("Pass the release folder `root`, or a `cache_dir`.")
    else:
        layout = GeoPlantLayout(root)
        modalities = default_modalities(layout, modalities)
        available, where = layout.splits(), f"the release under '{layout.root}'"
        read = functools.cache(lambda s: clean_metadata(layout.read_metadata(s)))

        @functools.cache
        def source(split):
            options = (env_columns, series_source, image_size)
            return ReleaseSource(
                layout, split, read(split)[0].index, modalities, *options
            )

    carve = (float(validation_fraction), seed, validation_block)
    plan = plan_split(read, available, split, where, carve, species, num_species, stats)
    if normalize and stats is None:
        sample = (modalities, stats_sample_size, seed)
        stats = compute_stats(source("train"), plan.train_rows, *sample)
    if normalize and (missing := [m for m in modalities if m not in stats]):
        raise ValueError(
            f"`stats` has no statistics for {missing}; compute them with "
            "load_geoplant(root, 'train', modalities=...) using the same "
            "modalities and pass its `.stats`."
        )
    data = source(plan.source_split)
    if normalize:
        stats = dict(stats, species=plan.species)
        if "image" in modalities and image_size is None and cache_dir is None:
            size = data.image_size = stats["image"]["size"]  # patches read at it
            data.shapes["image"] = (size, size, 4)
    if "env" in modalities:
        columns = stats["env"]["columns"] if normalize else None
        data.select_env(columns, None if normalize else env_columns)
    shuffle = split == "train" if shuffle is None else shuffle
    options = (stats if normalize else None, batch_size, shuffle, seed, drop_remainder)
    dataset = GeoPlantDataset(
        data, modalities, plan.rows, plan.labels, *options, **kwargs
    )
    dataset.species, dataset.surveys = plan.species, plan.surveys
    dataset.env_columns = data.env_columns
    return dataset
