"""Loads the GeoPlant / GeoLifeCLEF 2024-2025 presence-absence data."""

import fnmatch

import numpy as np
import pandas as pd

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import clean_values
from keras_miam.datasets.checks import positive_int
from keras_miam.datasets.geoplant.dataset import GeoPlantDataset
from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.readers import CLIMATE_VARIABLES
from keras_miam.datasets.geoplant.readers import IMAGE_CHANNELS
from keras_miam.datasets.geoplant.readers import LANDSAT_BANDS
from keras_miam.datasets.geoplant.readers import find_patch
from keras_miam.datasets.geoplant.readers import index_cubes
from keras_miam.datasets.geoplant.readers import read_climate_csv
from keras_miam.datasets.geoplant.readers import read_cube
from keras_miam.datasets.geoplant.readers import read_env_table
from keras_miam.datasets.geoplant.readers import read_landsat_csvs
from keras_miam.datasets.geoplant.readers import read_patch
from keras_miam.datasets.geoplant.readers import split_family
from keras_miam.datasets.split_dataset import spatial_parts

GEOPLANT_MODALITIES = ("env", "climate", "landsat", "image")
SERIES_SOURCES = ("auto", "csv", "cubes")
_CHANNELS = {"climate": CLIMATE_VARIABLES, "landsat": LANDSAT_BANDS}


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

    Reads the GeoPlant / GeoLifeCLEF 2024 and 2025 presence-absence layout
    (the file families are found by walking `root`; see `GeoPlantLayout`):

    - metadata, long format, one row per present species
      (`lon,lat,year,...,speciesId,surveyId`, speciesId written as float):
      `PresenceAbsenceSurveys/PA_metadata_{split}.csv`,
      `GLC24-PA-metadata-{split}.csv`, `GLC25_PA_metadata_{split}.csv`, or a
      single `metadata.csv` with a `subset` column. Labels are the multi-hot
      presence of the selected species per survey.
    - "env": `EnvironmentalValues/**/...PA-{split}-*.csv` (or
      `EnvironmentalRasters/`), `surveyId` + numeric columns (Bio1..19,
      Elevation, HumanFootprint-*, LandCover-*, Soilgrid-*), joined on
      surveyId; of a variable group kept in several `vN` folders, only the
      newest is read.
    - "climate": the monthly series, from the CSV with columns
      `Bio-{pr,tas,tasmax,tasmin}_{MM}_{YYYY}` or the per-survey
      `*_{surveyId}_cube.pt` tensors [4, 19, 12]; returned as (228, 4),
      19 years x 12 months in time order.
    - "landsat": the quarterly series, from the per-band CSVs
      (`...-{red,green,blue,nir,swir1,swir2}.csv`, columns `YYYY_Q`) or the
      cubes [6 bands, 4 quarters, 21 years]; returned as (84, 6).
    - "image": the Sentinel-2 patches `{CD}/{AB}/{surveyId}.tiff` (GLC25,
      4 bands R, G, B, NIR, int16, nodata -1) or the RGB and NIR jpegs of
      GLC24 (`..._RGB/.../{CD}/{AB}/{surveyId}.jpeg` and `..._NIR/...`), CD
      being the last two digits of the id and AB the two before them;
      returned channels last, (H, W, 4).

    Missing values (NaN, +-inf, |x| > 1e10, image nodata) become NaN; a
    survey without a row, cube or patch gets NaN for the whole modality
    (missing, not an error). With `normalize`, every variable / channel is
    standardised with nan-aware statistics of the training part of the
    training split (tables: exact; cubes and images: a seeded sample of
    `stats_sample_size` training surveys, read one at a time). Pass the
    training set's `stats` to the validation and test sets; when `stats` is
    None for another split, the training statistics are computed anyway.
    The selected species are kept in `stats["species"]`.

    The releases have no validation split: "val" is a seeded random
    `validation_fraction` of the training surveys, and "train" the rest
    (set `validation_fraction=0` to train on every training survey). With
    `validation_block`, "val" is made of whole cells of that many degrees of
    longitude and latitude instead (seeded, as `split_dataset(...,
    spatial_block=...)`), so that no cell has surveys on both sides.

    Presence-only occurrences (GLC24 `PO` files, the GeoLifeCLEF 2023 layout
    keyed by patchID / timeSerieID) are out of scope: they are ignored, and
    a root holding only them is reported as such.

    With `cache_dir`, the batches are read from the memory-mapped cache
    written once by `prepare_geoplant` instead (the same values, without
    decoding any file; see `keras_miam.datasets.geoplant.cache`); `root`
    may then be None, and when given, the cache is checked against the
    release's files (a stale, truncated or unfinished cache raises
    `GeoPlantCacheError`, naming what is wrong). `series_source` and
    `image_size` are those the cache was prepared with.

    Args:
        root: path of the release folder (optional with `cache_dir`).
        split: "train", "val", or a split of the release's metadata (e.g.
            "test", "test_iid", "test_ood", "test_glc25").
        modalities: names among "env", "climate", "landsat", "image".
            Defaults to all four (with `cache_dir`: those cached).
        species: optional list of speciesId to predict (label columns in
            that order). Default: `stats["species"]` when given, else the
            `num_species` most frequent species of the training part.
        num_species: int, number of most frequent species kept (ties by
            smaller id); None keeps every species of the training part.
        batch_size: int, surveys per batch.
        stats: normalisation statistics returned by a previous call (the
            dataset's `.stats`), or None to compute them.
        normalize: bool; False returns raw values (NaN-mapped only).
        validation_fraction: float in [0, 1), part of the training surveys
            held out as "val".
        seed: int, seeds the validation draw, the statistics sample and the
            shuffling.
        shuffle: bool, reshuffle every epoch; default True for "train".
        env_columns: optional list of env column names or glob patterns
            (e.g. `["Bio*", "Elevation"]`); default every numeric column.
        series_source: "auto" (CSVs when present, else cubes), "csv" or
            "cubes".
        image_size: int, patch height/width (resized if different); default
            the size of the first patch found (stored in the statistics).
        stats_sample_size: int, surveys read to estimate the statistics of
            cube series and images.
        drop_remainder: bool, drop the last incomplete batch.
        workers: int, as in `keras.utils.PyDataset`.
        use_multiprocessing: bool, as in `keras.utils.PyDataset`.
        max_queue_size: int, as in `keras.utils.PyDataset`.
        cache_dir: optional path of a `prepare_geoplant` cache to read from.
        validation_block: optional float, degrees: hold out "val" by spatial
            blocks of that size (from the metadata's lon / lat) instead of
            at random. Defaults to None.

    Returns:
        A `GeoPlantDataset` (a `keras.utils.PyDataset`) yielding
        `(x, y)` batches, `x` a dict {modality: float32 array} and `y` the
        `(B, K)` multi-hot labels (`x` alone when the split has no
        speciesId). Attributes: `stats`, `species`, `survey_ids`, `labels`,
        `surveys` (one metadata row per survey), `input_shapes`.

    Example:

    ```python
    train = load_geoplant("/data/geoplant", "train", num_species=500)
    val = load_geoplant("/data/geoplant", "val", stats=train.stats)
    x, y = train[0]
    x["climate"].shape, x["landsat"].shape, x["image"].shape
    # ((128, 228, 4), (128, 84, 6), (128, 64, 64, 4)) on GLC25
    model.fit(train, validation_data=val)
    ```

    Reference:
        Picek et al., "GeoPlant: Spatial Plant Species Prediction Dataset",
        NeurIPS 2024 Datasets and Benchmarks.
    """
    arguments = check_arguments(
        {k: v for k, v in locals().items() if k not in ("root", "split", "cache_dir")}
    )
    batches = batching(arguments, split)
    if cache_dir is not None:
        from keras_miam.datasets.geoplant.cache import load_cached

        return load_cached(cache_dir, split, root, batches, **arguments)
    if root is None:
        raise ValueError("Pass the release folder `root`, or a `cache_dir`.")
    if modalities is None:
        modalities = GEOPLANT_MODALITIES
    modalities = check_modalities(modalities, GEOPLANT_MODALITIES)
    stats_sample_size, image_size, num_species = (
        arguments[k] for k in ("stats_sample_size", "image_size", "num_species")
    )

    layout = GeoPlantLayout(root)
    split_rows, train_rows = _split_metadata(
        layout, split, float(validation_fraction), seed, validation_block
    )
    species = _select_species(species, num_species, stats, train_rows)
    surveys = _survey_table(split_rows)
    ids = surveys.index.to_numpy()
    labels = None
    if "speciesId" in split_rows.columns:
        labels = _multi_hot(split_rows, ids, species)

    family = _feature_family(split, layout)
    config = dict(
        env_columns=env_columns,
        series_source=series_source,
        image_size=image_size,
    )
    if normalize and stats is None and split != "train":
        # Statistics of the training part, before the split is read, so that
        # the split uses the training patch size.
        train_ids = _survey_table(train_rows).index.to_numpy()
        train_sources = _build_sources(layout, "train", train_ids, modalities, config)
        stats = _compute_stats(
            train_sources, train_ids, modalities, stats_sample_size, seed
        )
    if normalize and stats is not None:
        _check_stats(stats, modalities)
        if image_size is None and "image" in modalities:
            config["image_size"] = stats["image"]["size"]
    sources = _build_sources(layout, family, ids, modalities, config)
    if normalize:
        if stats is None:
            stats = _compute_stats(sources, ids, modalities, stats_sample_size, seed)
        if "env" in modalities:
            columns = list(stats["env"]["columns"])
            sources["tables"]["env"] = _align_env(sources["env_frame"], columns)
            sources["env_columns"] = columns
        stats = dict(stats, species=[int(s) for s in species])
    else:
        stats = None

    dataset = GeoPlantDataset(
        ids,
        modalities,
        labels=labels,
        tables=sources["tables"],
        cubes=sources["cubes"],
        image_sources=sources["image_sources"],
        image_size=sources["image_size"],
        stats=stats,
        **batches,
    )
    dataset.species = [int(s) for s in species]
    dataset.surveys = surveys
    dataset.env_columns = sources.get("env_columns")
    return dataset


def check_arguments(arguments):
    """Checks the arguments of `load_geoplant` that the cache reads too.

    Args:
        arguments: dict of `load_geoplant`'s arguments (all but `root`,
            `split` and `cache_dir`).

    Returns:
        a copy, the integers as ints.

    Raises:
        ValueError: for a bad value, naming the argument.
    """
    arguments = dict(arguments)
    if arguments["series_source"] not in SERIES_SOURCES:
        raise ValueError(
            f"Unknown series_source '{arguments['series_source']}'; expected one "
            f"of {list(SERIES_SOURCES)}."
        )
    for name in ("batch_size", "stats_sample_size", "image_size", "num_species"):
        if arguments[name] is not None or name in ("batch_size", "stats_sample_size"):
            arguments[name] = positive_int(arguments[name], name)
    fraction = arguments["validation_fraction"]
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1); received {fraction!r}."
        )
    if arguments["species"] is not None and arguments["num_species"] is not None:
        raise ValueError("Pass either `species` or `num_species`, not both.")
    stats = arguments["stats"]
    if stats is not None and not isinstance(stats, dict):
        raise ValueError(
            f"`stats` must be a dict returned by load_geoplant; received {stats!r}."
        )
    return arguments


def batching(arguments, split):
    """The batching keywords of a `GeoPlantDataset`, taken out of `arguments`.

    Args:
        arguments: `load_geoplant`'s checked arguments (`check_arguments`);
            its batch size, shuffling, drop_remainder and `PyDataset`
            workers are removed from it (its seed is kept).
        split: the split read ("train" is shuffled unless `shuffle` says).

    Returns:
        dict of `GeoPlantDataset` keywords.
    """
    batches = {
        name: arguments.pop(name)
        for name in (
            "batch_size",
            "shuffle",
            "drop_remainder",
            "workers",
            "use_multiprocessing",
            "max_queue_size",
        )
    }
    if batches["shuffle"] is None:
        batches["shuffle"] = split == "train"
    batches["seed"] = arguments["seed"]
    return batches


def available_modalities(root, split="train"):
    """The modalities a GeoPlant release has files for, in a split.

    Looks for the file families `load_geoplant` reads, without reading
    them: environmental CSVs ("env"), the bioclimatic monthly series as CSV
    or cubes ("climate"), the six Landsat band CSVs or the Landsat cubes
    ("landsat") and Sentinel-2 patch folders holding at least one patch
    ("image"). Use it to pick `modalities` for releases that ship only
    some of them.

    Args:
        root: path of the release folder, or a `GeoPlantLayout`.
        split: a split of the release ("train", "val", "test", ...); its
            feature files are those of its family (e.g. "test_iid" reads the
            "test" files, "val" the "train" ones).

    Returns:
        A tuple of names among "env", "climate", "landsat", "image", in that
        order (empty when none has files).

    Example:

    ```python
    available_modalities("/data/geoplant")
    # ('env', 'climate', 'landsat', 'image')
    ```
    """
    layout = root if isinstance(root, GeoPlantLayout) else GeoPlantLayout(root)
    family = _feature_family(split, layout)
    found = []
    if layout.env_files(family):
        found.append("env")
    if layout.climate_csvs(family) or layout.cube_folders("climate", family):
        found.append("climate")
    bands = layout.landsat_csvs(family)
    if all(b in bands for b in LANDSAT_BANDS) or layout.cube_folders("landsat", family):
        found.append("landsat")
    if any(
        find_patch(folder)[0] is not None for _, folder in layout.image_folders(family)
    ):
        found.append("image")
    return tuple(found)


# ---------------------------------------------------------------- metadata
def carves_validation(split, available, validation_fraction, where):
    """Whether "val" is carved from "train" (the release has no "val" split).

    Raises:
        ValueError: for a split that is neither available nor carved, naming
            `where` (the release or the cache).
    """
    carve = "val" not in available and validation_fraction > 0.0
    valid = set(available) | ({"val"} if carve else set())
    if split not in valid:
        hint = " ('val' needs validation_fraction > 0)" if split == "val" else ""
        raise ValueError(
            f"Unknown split '{split}'{hint}. Expected one of {sorted(valid)} "
            f"for {where}."
        )
    return carve


def _split_metadata(layout, split, validation_fraction, seed, validation_block=None):
    """Returns (rows of `split`, rows of the training part)."""
    available = layout.splits()
    carve = carves_validation(
        split, available, validation_fraction, f"the release under '{layout.root}'"
    )
    if "train" not in available:
        raise ValueError(
            f"The release under '{layout.root}' has no training metadata "
            f"(splits found: {available}); the training split is needed for "
            "the species list and the normalisation statistics."
        )
    train_rows = _clean_metadata(layout.read_metadata("train"))
    if carve:
        survey_ids = np.unique(train_rows["surveyId"].to_numpy())
        coordinates = None
        if validation_block is not None:
            coordinates = _survey_table(train_rows)
        val_ids = validation_ids(
            survey_ids, validation_fraction, seed, split, coordinates, validation_block
        )
        is_val = train_rows["surveyId"].isin(val_ids)
        val_rows = train_rows[is_val]
        train_rows = train_rows[~is_val]
        if split == "val":
            return val_rows, train_rows
    if split == "train":
        return train_rows, train_rows
    return _clean_metadata(layout.read_metadata(split)), train_rows


def validation_ids(
    survey_ids,
    validation_fraction,
    seed,
    split="val",
    coordinates=None,
    validation_block=None,
):
    """The training surveys held out as "val" (a seeded random part).

    Args:
        survey_ids: sorted unique int array, the training split's surveys.
        validation_fraction: float in (0, 1).
        seed: int.
        split: str, the split being loaded (for the error message).
        coordinates: with `validation_block`, the surveys' lon / lat (a
            table with "lon" and "lat" columns, in `survey_ids` order).
        validation_block: optional float, degrees: hold out whole spatial
            cells of that size instead of random surveys.

    Returns:
        The int array of held-out survey ids.
    """
    if validation_block is not None:
        fractions = (1.0 - validation_fraction, validation_fraction)
        parts = spatial_parts(
            coordinates, validation_block, fractions, len(survey_ids), seed
        )
        return survey_ids[parts[1]]
    num_val = int(round(validation_fraction * len(survey_ids)))
    num_val = min(max(num_val, 1), len(survey_ids) - 1)
    if num_val < 1 and split == "val":
        raise ValueError(
            "Cannot hold out a validation part from a training split of "
            f"{len(survey_ids)} survey(s); use another split."
        )
    order = np.random.default_rng(seed).permutation(len(survey_ids))
    return survey_ids[order[:num_val]]


def _clean_metadata(rows):
    rows = rows.copy()
    rows["surveyId"] = pd.to_numeric(rows["surveyId"], errors="coerce")
    rows = rows[rows["surveyId"].notna()]
    rows["surveyId"] = rows["surveyId"].astype("int64")
    if "speciesId" in rows.columns:
        rows["speciesId"] = pd.to_numeric(rows["speciesId"], errors="coerce")
    return rows


def _survey_table(rows):
    """One row per survey (its first metadata row), sorted by surveyId."""
    table = rows.drop(columns=["speciesId"], errors="ignore")
    table = table.drop_duplicates("surveyId").set_index("surveyId")
    return table.sort_index()


def _select_species(species, num_species, stats, train_rows):
    if species is not None:
        species = [int(s) for s in species]
        if len(set(species)) != len(species) or not species:
            raise ValueError(
                "`species` must be a non-empty list of distinct speciesId."
            )
        return species
    if stats is not None and stats.get("species") is not None:
        species = [int(s) for s in stats["species"]]
        if num_species is not None and num_species != len(species):
            raise ValueError(
                f"`num_species={num_species}` disagrees with the "
                f"{len(species)} species stored in `stats`."
            )
        return species
    if "speciesId" not in train_rows.columns:
        raise ValueError(
            "The training metadata has no 'speciesId' column; pass `species`."
        )
    counts = train_rows["speciesId"].dropna().astype("int64").value_counts()
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if num_species is not None:
        order = order[:num_species]
    if not order:
        raise ValueError("The training metadata lists no species.")
    return [int(s) for s, _ in order]


def _multi_hot(rows, ids, species):
    labels = np.zeros((len(ids), len(species)), "float32")
    rows = rows[rows["speciesId"].notna()]
    survey_pos = pd.Index(ids).get_indexer(rows["surveyId"])
    species_pos = pd.Index(species).get_indexer(rows["speciesId"].astype("int64"))
    keep = (survey_pos >= 0) & (species_pos >= 0)
    labels[survey_pos[keep], species_pos[keep]] = 1.0
    return labels


def _feature_family(split, layout):
    """Split family whose feature files hold the surveys of `split`."""
    if split == "train" or (split == "val" and "val" not in layout.splits()):
        return "train"
    return split_family(split) or split


# ----------------------------------------------------------------- sources
def _build_sources(layout, family, ids, modalities, config):
    sources = {
        "tables": {},
        "cubes": {},
        "image_sources": [],
        "image_size": config["image_size"],
    }
    where = f"for split family '{family}' under '{layout.root}'"
    if "env" in modalities:
        files = layout.env_files(family)
        if not files:
            raise FileNotFoundError(
                f"No environmental CSVs {where}. Expected "
                "EnvironmentalValues/**/*PA*-{train,test}-*.csv files with a "
                "'surveyId' column (or EnvironmentalRasters/ in GLC24)."
            )
        frame = read_env_table(files, ids)
        frame = _select_env_columns(frame, config["env_columns"])
        sources["env_frame"] = frame
        sources["env_columns"] = list(frame.columns)
        sources["tables"]["env"] = clean_values(
            frame.to_numpy(dtype="float64", na_value=np.nan)
        )
    for kind in ("climate", "landsat"):
        if kind not in modalities:
            continue
        if kind == "climate":
            csvs = layout.climate_csvs(family)
        else:
            csvs = layout.landsat_csvs(family)
        folders = layout.cube_folders(kind, family)
        use_csv = config["series_source"] in ("auto", "csv") and csvs
        if use_csv:
            if kind == "climate":
                sources["tables"][kind] = read_climate_csv(csvs, ids)
            else:
                missing = [b for b in LANDSAT_BANDS if b not in csvs]
                if missing:
                    raise FileNotFoundError(
                        f"Landsat CSVs {where} lack the band(s) {missing}; "
                        f"found {sorted(csvs)}. Expected one CSV per band "
                        f"{list(LANDSAT_BANDS)}."
                    )
                sources["tables"][kind] = read_landsat_csvs(csvs, ids)
        elif config["series_source"] in ("auto", "cubes") and folders:
            index = index_cubes(folders)
            sources["cubes"][kind] = (index, _cube_steps(index, ids, kind))
        else:
            source = {
                "auto": "CSVs or *_cube.pt files",
                "csv": "CSVs",
                "cubes": "*_cube.pt files",
            }[config["series_source"]]
            expected = (
                "a bioclimatic_monthly CSV (surveyId + Bio-{pr,tas,tasmax,"
                "tasmin}_{MM}_{YYYY}) or folders of "
                "*-bioclimatic_monthly_{surveyId}_cube.pt"
                if kind == "climate"
                else "landsat-time-series-{red,green,blue,nir,swir1,swir2} "
                "CSVs (surveyId + YYYY_Q) or folders of "
                "*-landsat*_{surveyId}_cube.pt"
            )
            raise FileNotFoundError(
                f"No {kind} time series ({source}) {where}. Expected {expected}."
            )
    if "image" in modalities:
        found, examples = [], []
        for kind, folder in layout.image_folders(family):
            extension, example = find_patch(folder)
            if extension is not None:
                found.append((kind, str(folder), extension))
                examples.append(example)
        # A 4-band patch first; RGB before NIR.
        rank = {"multiband": 0, "rgb": 1, "nir": 2}
        found.sort(key=lambda s: rank[s[0]])
        if not found:
            raise FileNotFoundError(
                f"No Sentinel-2 patches {where}. Expected a folder of "
                "{CD}/{AB}/{surveyId}.tiff (4 bands R, G, B, NIR) or the "
                "GLC24 ..._RGB/.../{CD}/{AB}/{surveyId}.jpeg and ..._NIR/... "
                "jpegs, CD being the last two digits of the id."
            )
        sources["image_sources"] = found
        if sources["image_size"] is None:
            sources["image_size"] = _probe_image_size(found, examples)
    return sources


def _select_env_columns(frame, patterns):
    if patterns is None:
        return frame
    if isinstance(patterns, str):
        patterns = [patterns]
    selected = []
    for pattern in patterns:
        matches = [c for c in frame.columns if fnmatch.fnmatchcase(c, pattern)]
        if not matches:
            raise ValueError(
                f"env_columns entry '{pattern}' matches no environmental "
                f"column; available: {list(frame.columns)}."
            )
        selected.extend(c for c in matches if c not in selected)
    return frame[selected]


def _align_env(frame, columns):
    frame = frame.reindex(columns=columns)
    return clean_values(frame.to_numpy(dtype="float64", na_value=np.nan))


def _cube_steps(index, ids, kind):
    for survey in list(ids) + sorted(index):
        path = index.get(int(survey))
        if path is not None:
            return int(read_cube(path, kind).shape[0])
    raise FileNotFoundError(f"The {kind} cube folders hold no readable cube.")


def _probe_image_size(sources, examples):
    for survey in examples:
        patch = read_patch(sources, int(survey))
        if patch is not None:
            return int(patch.shape[0])
    raise FileNotFoundError(
        f"The patch folders {[s[1] for s in sources]} hold no readable patch; "
        "pass `image_size`."
    )


# -------------------------------------------------------------- statistics
def _compute_stats(sources, ids, modalities, sample_size, seed):
    stats = {}
    rng = np.random.default_rng([seed, 1])
    sample = (
        ids if len(ids) <= sample_size else rng.choice(ids, sample_size, replace=False)
    )
    sample = np.sort(sample)
    if "env" in modalities:
        values = sources["tables"]["env"]
        mean, std, count = _moments(values.reshape(len(values), -1), axis=0)
        stats["env"] = {
            "columns": list(sources["env_columns"]),
            "mean": mean,
            "std": std,
            "count": count,
        }
    for kind in ("climate", "landsat"):
        if kind not in modalities:
            continue
        if kind in sources["tables"]:
            values = sources["tables"][kind]
            steps = values.shape[1]
            values = values.reshape(-1, values.shape[-1])
        else:
            steps = sources["cubes"][kind][1]
            cubes = [_read_sample(sources, kind, s) for s in sample]
            cubes = [c for c in cubes if c is not None]
            values = (
                np.concatenate(cubes)
                if cubes
                else np.full((1, len(_CHANNELS[kind])), np.nan)
            )
        mean, std, count = _moments(values, axis=0)
        stats[kind] = {
            "channels": list(_CHANNELS[kind]),
            "num_steps": int(steps),
            "mean": mean,
            "std": std,
            "count": count,
        }
    if "image" in modalities:
        size = sources["image_size"]
        total = np.zeros(4)
        total_sq = np.zeros(4)
        count = np.zeros(4)
        num_images = 0
        for survey in sample:
            patch = _read_sample(sources, "image", survey)
            flat = patch.reshape(-1, 4).astype("float64")
            ok = np.isfinite(flat)
            if ok.any():
                num_images += 1
            total += np.where(ok, flat, 0.0).sum(axis=0)
            total_sq += np.where(ok, flat**2, 0.0).sum(axis=0)
            count += ok.sum(axis=0)
        mean, std = _finalise(total, total_sq, count)
        stats["image"] = {
            "channels": list(IMAGE_CHANNELS),
            "size": int(size),
            "mean": mean,
            "std": std,
            "count": [int(c) for c in count],
            "num_images": num_images,
        }
    return stats


def _read_sample(sources, kind, survey):
    """One survey's cube (None when absent) or (size, size, 4) patch.

    Read from the release's files, or through `sources["read_sample"]`
    (the cache: rows of its arrays).
    """
    if "read_sample" in sources:
        return sources["read_sample"](kind, int(survey))
    if kind == "image":
        return read_patch(sources["image_sources"], int(survey), sources["image_size"])
    index = sources["cubes"][kind][0]
    return read_cube(index[survey], kind) if survey in index else None


def _moments(values, axis):
    # Contiguous: the sums (and their rounding) do not depend on the layout
    # of the arrays read (release files or cache).
    values = np.ascontiguousarray(values, "float64")
    ok = np.isfinite(values)
    count = ok.sum(axis=axis)
    total = np.where(ok, values, 0.0).sum(axis=axis)
    total_sq = np.where(ok, values**2, 0.0).sum(axis=axis)
    mean, std = _finalise(total, total_sq, count)
    return mean, std, [int(c) for c in np.atleast_1d(count)]


def _finalise(total, total_sq, count):
    """Mean and std; 0 and 1 where a variable has no (or constant) values."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        var = np.where(count > 1, total_sq / np.maximum(count, 1) - mean**2, 1.0)
    std = np.sqrt(np.maximum(var, 0.0))
    std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)
    return [float(v) for v in mean], [float(v) for v in std]


def _check_stats(stats, modalities):
    missing = [m for m in modalities if m not in stats]
    if missing:
        raise ValueError(
            f"`stats` has no statistics for {missing}; compute them with "
            "load_geoplant(root, 'train', modalities=...) using the same "
            "modalities and pass its `.stats`."
        )
