"""A one-time, memory-mapped array cache of a GeoPlant release.

`prepare_geoplant` reads the release once (the CSV tables, the `.pt` cubes,
the tiff or jpeg patches) and writes every modality of every split as one
float32 `.npy` array, next to the survey ids, the survey metadata, the
presence lists (for the labels), the species index and the normalisation
statistics. `load_geoplant(cache_dir=...)` then streams batches by slicing
those arrays through memory maps, with no file decoding.

Why `.npy` memory maps: they need nothing beyond numpy, a batch is a plain
row gather served by the page cache (no decompression, no locking, safe with
`keras.utils.PyDataset` workers, threads or processes), the arrays are
written in place chunk by chunk (so an interrupted preparation resumes from
its last finished chunk) and every other tool reads them
(`np.load(path, mmap_mode="r")`). Chunked and compressed stores (zarr, HDF5)
would save disk on the patches but cost a decompression per batch, which is
what this cache removes, and add a dependency.
"""

import fnmatch
import hashlib
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import positive_int
from keras_miam.datasets.geoplant import loader
from keras_miam.datasets.geoplant.dataset import GeoPlantDataset
from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.readers import CLIMATE_VARIABLES
from keras_miam.datasets.geoplant.readers import LANDSAT_BANDS

FORMAT = "keras_miam.geoplant_cache"
VERSION = 1
MANIFEST = "manifest.json"
_CHANNELS = {"climate": len(CLIMATE_VARIABLES), "landsat": len(LANDSAT_BANDS)}
_PREPARE_HINT = (
    "run keras_miam.datasets.prepare_geoplant(root, cache_dir) (or `python -m "
    "keras_miam.datasets.geoplant prepare ROOT CACHE_DIR`)"
)


class GeoPlantCacheError(ValueError):
    """A GeoPlant cache that is absent, incomplete, truncated or stale."""


def prepare_geoplant(
    root,
    cache_dir,
    modalities=None,
    splits=None,
    series_source="auto",
    env_columns=None,
    image_size=None,
    chunk_size=512,
    validation_fraction=0.1,
    seed=0,
    stats_sample_size=1024,
    overwrite=False,
    verbose=1,
):
    """Reads a GeoPlant release once into a memory-mapped array cache.

    Every split of the release (or those in `splits`; "train" is always
    included) is read with the readers of `load_geoplant`, and each
    modality is written to `cache_dir/{split}/{modality}.npy` as float32
    with the loader's missing values (NaN), unnormalised: "env" `(N, F)`,
    "climate" `(N, T, 4)`, "landsat" `(N, T, 6)`, "image" `(N, H, W, 4)`.
    Next to them: `survey_ids.npy`, `surveys.csv` (one metadata row per
    survey), `presence_indptr.npy` and `presence_species.npy` (the speciesId
    of every metadata row, grouped by survey), and `manifest.json` with the
    shapes, dtypes, a "complete" flag and the rows written of every array,
    the species index (training species by frequency), the normalisation
    statistics of `validation_fraction` and `seed`, and a fingerprint of
    the source files (paths, sizes, modification times) and of the
    arguments.

    The per-survey files (cubes, patches) are read `chunk_size` surveys at
    a time, with a progress bar; after each chunk the arrays are flushed
    and the manifest updated, so that re-running the same call after an
    interruption continues from the last finished chunk. A cache made from
    other files or arguments is refused (`GeoPlantCacheError`, naming what
    differs) unless `overwrite=True`.

    A cache takes about the size of the uncompressed data: 4 bytes per
    value, e.g. 64 KiB per 64x64x4 patch (5.8 GB for the 89k GLC25
    training surveys).

    Args:
        root: path of the release folder.
        cache_dir: path of the cache folder (created if needed).
        modalities: names among "env", "climate", "landsat", "image".
            Defaults to every modality the release has training files for.
        splits: list of release splits to cache. Defaults to every split of
            the release's metadata ("val" is carved from "train" when
            loading).
        series_source: "auto", "csv" or "cubes", as in `load_geoplant`.
        env_columns: optional env column names or glob patterns, as in
            `load_geoplant`; default every numeric column (a subset can
            still be chosen when loading).
        image_size: int, patch height/width; default the size of the first
            training patch found (every split uses the same size).
        chunk_size: int, surveys per written chunk. Defaults to 512.
        validation_fraction: float, the validation part whose complement's
            statistics are stored. Defaults to 0.1, as `load_geoplant`.
        seed: int, as in `load_geoplant`. Defaults to 0.
        stats_sample_size: int, as in `load_geoplant`. Defaults to 1024.
        overwrite: bool, replace a cache made from other files or
            arguments. Defaults to False.
        verbose: 0 (silent) or 1 (a progress bar per split). Defaults to 1.

    Returns:
        The manifest, a dict.

    Example:

    ```python
    prepare_geoplant("/data/geoplant", "/scratch/geoplant_cache")
    train = load_geoplant(cache_dir="/scratch/geoplant_cache", num_species=1783)
    val = load_geoplant(cache_dir="/scratch/geoplant_cache", split="val",
                        stats=train.stats)
    ```
    """
    chunk_size = positive_int(chunk_size, "chunk_size")
    if series_source not in loader.SERIES_SOURCES:
        raise ValueError(
            f"Unknown series_source '{series_source}'; expected one of "
            f"{list(loader.SERIES_SOURCES)}."
        )
    cache_dir = Path(cache_dir).expanduser()
    layout = GeoPlantLayout(root)
    if modalities is None:
        modalities = loader.available_modalities(layout, "train")
        if not modalities:
            raise FileNotFoundError(
                f"The release under '{layout.root}' has training files for no "
                f"modality among {list(loader.GEOPLANT_MODALITIES)}."
            )
    modalities = check_modalities(modalities, loader.GEOPLANT_MODALITIES)
    available = layout.splits()
    splits = list(available if splits is None else splits)
    unknown = [s for s in splits if s not in available]
    if unknown:
        raise ValueError(
            f"Unknown split(s) {unknown}; the release under '{layout.root}' has "
            f"{available}."
        )
    if "train" not in available:
        raise ValueError(
            f"The release under '{layout.root}' has no training metadata "
            f"(splits found: {available}); the training split is needed for "
            "the species list and the normalisation statistics."
        )
    splits = ["train"] + [s for s in dict.fromkeys(splits) if s != "train"]
    config = dict(
        env_columns=env_columns, series_source=series_source, image_size=image_size
    )
    if image_size is not None:
        config["image_size"] = positive_int(image_size, "image_size")
    elif "image" in modalities:
        train_ids = _split_rows(layout, "train")[1]
        probe = loader._build_sources(layout, "train", train_ids, ("image",), config)
        config["image_size"] = probe["image_size"]
    arguments = {
        "modalities": list(modalities),
        "splits": splits,
        "series_source": series_source,
        "env_columns": env_columns,
        "image_size": config["image_size"],
    }
    families = sorted({loader._feature_family(s, layout) for s in splits})
    listing = _source_listing(layout, families, modalities)
    fingerprint = _fingerprint(arguments, listing)

    manifest = _read_json(cache_dir / MANIFEST)
    if manifest is not None and manifest.get("fingerprint") != fingerprint:
        if not overwrite:
            raise GeoPlantCacheError(
                f"The GeoPlant cache '{cache_dir}' was made from other files or "
                f"arguments: {_differences(manifest, arguments, listing)}. Pass "
                "overwrite=True (--overwrite) to rebuild it, or use another "
                "cache_dir."
            )
        for split in manifest.get("splits", {}):
            shutil.rmtree(cache_dir / split, ignore_errors=True)
        manifest = None
    if manifest is None:
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "root": str(layout.root),
            "fingerprint": fingerprint,
            "arguments": arguments,
            "sources": listing,
            "splits": {},
            "complete": False,
        }
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_json(cache_dir / MANIFEST, manifest)

    for split in splits:
        entry = manifest["splits"].get(split)
        if entry is not None and _split_complete(entry):
            continue
        _prepare_split(
            layout, cache_dir, manifest, split, modalities, config, chunk_size, verbose
        )

    # The species index and the statistics of the default training part.
    presence = np.load(cache_dir / "train" / "presence_species.npy")
    ids, counts = np.unique(presence, return_counts=True)
    order = np.lexsort((ids, -counts))
    manifest["species"] = {
        "ids": [int(i) for i in ids[order]],
        "counts": [int(c) for c in counts[order]],
    }
    manifest["complete"] = True
    _write_json(cache_dir / MANIFEST, manifest)
    stats_config = {
        "validation_fraction": float(validation_fraction),
        "seed": int(seed),
        "stats_sample_size": int(stats_sample_size),
    }
    train = loader.load_geoplant(
        split="train",
        cache_dir=cache_dir,
        modalities=modalities,
        validation_fraction=validation_fraction,
        seed=seed,
        stats_sample_size=stats_sample_size,
    )
    stats = dict(train.stats)
    stats.pop("species", None)
    manifest["stats"] = {"config": stats_config, "values": stats}
    _write_json(cache_dir / MANIFEST, manifest)
    if verbose:
        size = sum(f.stat().st_size for f in cache_dir.rglob("*") if f.is_file())
        print(f"GeoPlant cache '{cache_dir}' complete: {size / 2**20:.1f} MiB.")
    return manifest


def _split_rows(layout, split):
    rows = loader._clean_metadata(layout.read_metadata(split))
    surveys = loader._survey_table(rows)
    return rows, surveys.index.to_numpy(), surveys


def _prepare_split(
    layout, cache_dir, manifest, split, modalities, config, chunk_size, verbose
):
    rows, ids, surveys = _split_rows(layout, split)
    folder = cache_dir / split
    folder.mkdir(parents=True, exist_ok=True)
    entry = manifest["splits"].setdefault(
        split,
        {"family": loader._feature_family(split, layout), "num_surveys": len(ids)},
    )
    arrays = entry.setdefault("arrays", {})
    if not _complete(arrays.get("survey_ids")):
        np.save(folder / "survey_ids.npy", ids.astype("int64"))
        surveys.to_csv(folder / "surveys.csv")
        species = np.zeros(0, "int64")
        indptr = np.zeros(len(ids) + 1, "int64")
        if "speciesId" in rows.columns:
            present = rows[rows["speciesId"].notna()]
            position = pd.Index(ids).get_indexer(present["surveyId"])
            order = np.argsort(position, kind="stable")
            species = present["speciesId"].to_numpy("float64")[order].astype("int64")
            indptr[1:] = np.cumsum(np.bincount(position, minlength=len(ids)))
        np.save(folder / "presence_indptr.npy", indptr)
        np.save(folder / "presence_species.npy", species)
        entry["labelled"] = "speciesId" in rows.columns
        for name, values in (
            ("presence_indptr", indptr),
            ("presence_species", species),
            ("survey_ids", ids.astype("int64")),
        ):
            arrays[name] = _array_entry(folder, name, values.shape, values.dtype)
            arrays[name]["rows_done"] = int(values.shape[0])
            arrays[name]["complete"] = True
        _write_json(cache_dir / MANIFEST, manifest)

    sources = loader._build_sources(layout, entry["family"], ids, modalities, config)
    per_survey = []
    for name in modalities:
        if name in sources["tables"]:
            if _complete(arrays.get(name)):
                continue
            values = np.ascontiguousarray(sources["tables"][name], "float32")
            np.save(folder / f"{name}.npy", values)
            arrays[name] = _array_entry(folder, name, values.shape, values.dtype)
            arrays[name].update(rows_done=len(ids), complete=True, source="csv")
            if name == "env":
                arrays[name]["columns"] = list(sources["env_columns"])
            _write_json(cache_dir / MANIFEST, manifest)
        else:
            per_survey.append(name)
    if not per_survey:
        return
    reader = GeoPlantDataset(
        ids,
        per_survey,
        cubes=sources["cubes"],
        image_sources=sources["image_sources"],
        image_size=sources["image_size"],
        batch_size=chunk_size,
    )
    shapes = reader.input_shapes
    stores = {}
    for name in per_survey:
        shape = (len(ids),) + tuple(shapes[name])
        path = folder / f"{name}.npy"
        previous = arrays.get(name)
        if previous is not None and previous["shape"] == list(shape) and path.exists():
            stores[name] = np.load(path, mmap_mode="r+")
        else:
            stores[name] = np.lib.format.open_memmap(
                path, mode="w+", dtype="float32", shape=shape
            )
            arrays[name] = _array_entry(folder, name, shape, np.float32)
            arrays[name].update(
                rows_done=0,
                complete=False,
                source="cubes" if name in sources["cubes"] else "files",
            )
    _write_json(cache_dir / MANIFEST, manifest)
    done = min(arrays[name]["rows_done"] for name in per_survey)
    done -= done % chunk_size
    progbar = None
    if verbose:
        print(f"Caching the '{split}' split ({', '.join(per_survey)}):")
        progbar = keras.utils.Progbar(len(ids), unit_name="survey")
        progbar.update(done)
    for index in range(done // chunk_size, len(reader)):
        x = reader[index]
        start = index * chunk_size
        stop = start + len(next(iter(x.values())))
        for name in per_survey:
            stores[name][start:stop] = x[name]
            stores[name].flush()
        for name in per_survey:
            arrays[name]["rows_done"] = stop
            arrays[name]["complete"] = stop == len(ids)
        _write_json(cache_dir / MANIFEST, manifest)
        if progbar is not None:
            progbar.update(stop)
    for name in per_survey:
        arrays[name]["complete"] = True
    _write_json(cache_dir / MANIFEST, manifest)
    del stores


def load_cached(
    cache_dir,
    split,
    root,
    batches,
    *,
    modalities,
    species,
    num_species,
    stats,
    normalize,
    validation_fraction,
    seed,
    env_columns,
    series_source,
    image_size,
    stats_sample_size,
    validation_block,
):
    """A split of a `prepare_geoplant` cache, as a `GeoPlantDataset`.

    Called by `load_geoplant(cache_dir=...)` with every other argument of
    it (its defaults, checked by `loader.check_arguments`; `batches` the
    dataset's batching keywords, `loader.batching`): the same batches as
    reading the release. With `root`, the release's files are compared
    with the cache's fingerprint first, and a stale cache is refused.
    """
    cache_dir = Path(cache_dir).expanduser()
    manifest = read_manifest(cache_dir)
    if root is not None:
        check_fresh(manifest, cache_dir, root)
    cached = manifest["arguments"]["modalities"]
    if modalities is None:
        modalities = tuple(cached)
    modalities = check_modalities(modalities, loader.GEOPLANT_MODALITIES)
    missing = [m for m in modalities if m not in cached]
    if missing:
        raise GeoPlantCacheError(
            f"The GeoPlant cache '{cache_dir}' holds {cached}, not {missing}; "
            f"{_PREPARE_HINT} with modalities including them."
        )
    train = _CachedSplit(cache_dir, manifest, "train")
    for name in ("climate", "landsat"):
        source = train.source(name) if name in modalities else None
        if series_source != "auto" and source not in (None, series_source):
            raise GeoPlantCacheError(
                f"The GeoPlant cache '{cache_dir}' holds the {name} series from "
                f"{source}; received series_source={series_source!r}. Prepare "
                "a cache with that series_source."
            )
    cached_size = manifest["arguments"]["image_size"]
    if image_size is not None and "image" in modalities and image_size != cached_size:
        raise GeoPlantCacheError(
            f"The GeoPlant cache '{cache_dir}' holds {cached_size}x{cached_size} "
            f"patches; received image_size={image_size!r}. Prepare a cache "
            "with that image_size."
        )

    # The surveys of the split, as rows of a cached release split.
    carve = loader.carves_validation(
        split,
        list(manifest["splits"]),
        validation_fraction,
        f"the GeoPlant cache '{cache_dir}'",
    )
    train_rows = np.arange(train.num_surveys)
    if carve:
        val_ids = loader.validation_ids(
            train.survey_ids,
            float(validation_fraction),
            seed,
            split,
            train.surveys() if validation_block is not None else None,
            validation_block,
        )
        is_val = np.isin(train.survey_ids, val_ids)
        train_rows = np.flatnonzero(~is_val)
    if split in ("train", "val") and carve:
        part = train
        rows = train_rows if split == "train" else np.flatnonzero(is_val)
    else:
        part = _CachedSplit(cache_dir, manifest, split)
        rows = np.arange(part.num_surveys)

    if species is None and not (stats is not None and stats.get("species")):
        if not train.labelled:
            raise ValueError(
                "The training metadata has no 'speciesId' column; pass `species`."
            )
    counts = pd.DataFrame({"speciesId": train.presence_of(train_rows)})
    species = loader._select_species(species, num_species, stats, counts)

    if normalize and stats is None:
        stats = _stored_stats(
            manifest,
            modalities,
            env_columns,
            validation_fraction,
            seed,
            stats_sample_size,
            validation_block,
        )
        if stats is None:
            stats = _compute_stats(
                train, train_rows, modalities, env_columns, stats_sample_size, seed
            )
    if normalize:
        loader._check_stats(stats, modalities)
        stats = dict(stats, species=[int(s) for s in species])
    else:
        stats = None

    tables = {}
    env_names = None
    for name in modalities:
        if name == "env":
            if stats is not None:
                env_names = list(stats["env"]["columns"])
            else:
                env_names = _select_columns(part.env_columns, env_columns)
            tables["env"] = part.env(env_names)
        else:
            tables[name] = part.array(name)
    labels = None
    if part.labelled:
        labels = _MultiHotLabels(part, rows, species)
    dataset = GeoPlantDataset(
        part.survey_ids[rows],
        modalities,
        labels=labels,
        tables=tables,
        image_size=cached_size,
        stats=stats,
        source_rows=rows,
        **batches,
    )
    dataset.species = [int(s) for s in species]
    dataset.surveys = part.surveys().loc[part.survey_ids[rows]]
    dataset.env_columns = env_names
    dataset.cache_dir = str(cache_dir)
    return dataset


class _CachedSplit:
    """The arrays of one cached release split, memory-mapped on demand."""

    def __init__(self, cache_dir, manifest, split):
        entry = manifest["splits"].get(split)
        if entry is None:
            raise GeoPlantCacheError(
                f"The GeoPlant cache '{cache_dir}' has no '{split}' split (it has "
                f"{list(manifest['splits'])}); {_PREPARE_HINT}."
            )
        self.cache_dir = cache_dir
        self.split = split
        self.entry = entry
        self.labelled = bool(entry.get("labelled"))
        self.survey_ids = self._load("survey_ids")
        self.num_surveys = len(self.survey_ids)
        self._indptr = self._load("presence_indptr")
        self._species = self._load("presence_species")
        env = entry["arrays"].get("env")
        self.env_columns = None if env is None else list(env["columns"])

    def _load(self, name):
        return _open_array(self.cache_dir, self.split, self.entry, name)

    def array(self, name):
        return self._load(name)

    def source(self, name):
        return self.entry["arrays"][name].get("source")

    def env(self, columns):
        """(N, len(columns)) float32, NaN for columns this split lacks."""
        values = self._load("env")
        out = np.full((self.num_surveys, len(columns)), np.nan, "float32")
        for j, column in enumerate(columns):
            if column in self.env_columns:
                out[:, j] = values[:, self.env_columns.index(column)]
        return out

    def presence_of(self, rows):
        """The speciesId of every metadata row of the surveys `rows`."""
        starts, stops = self._indptr[rows], self._indptr[np.asarray(rows) + 1]
        return self._species[_ranges(starts, stops)]

    def surveys(self):
        return pd.read_csv(
            self.cache_dir / self.split / "surveys.csv", index_col="surveyId"
        )


def _ranges(starts, stops):
    """Concatenation of `arange(start, stop)` for each pair."""
    lengths = stops - starts
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return np.arange(lengths.sum()) + offsets


class _MultiHotLabels:
    """`(N, K)` multi-hot labels, built per batch from the presence lists."""

    def __init__(self, split, rows, species):
        self._split = split
        self._rows = np.asarray(rows, "int64")
        self._columns = pd.Index(species)
        self.shape = (len(self._rows), len(species))

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        rows = self._rows[index]
        scalar = rows.ndim == 0
        rows = np.atleast_1d(rows)
        indptr = self._split._indptr
        counts = indptr[rows + 1] - indptr[rows]
        present = self._split.presence_of(rows)
        position = np.repeat(np.arange(len(rows)), counts)
        column = self._columns.get_indexer(present)
        keep = column >= 0
        labels = np.zeros((len(rows), self.shape[1]), "float32")
        labels[position[keep], column[keep]] = 1.0
        return labels[0] if scalar else labels

    def __array__(self, dtype=None, copy=None):
        labels = self[np.arange(len(self))]
        return labels if dtype is None else labels.astype(dtype)


def _select_columns(columns, patterns):
    if patterns is None:
        return list(columns)
    if isinstance(patterns, str):
        patterns = [patterns]
    selected = []
    for pattern in patterns:
        matches = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        if not matches:
            raise ValueError(
                f"env_columns entry '{pattern}' matches no environmental "
                f"column; available: {list(columns)}."
            )
        selected.extend(c for c in matches if c not in selected)
    return selected


def _compute_stats(train, rows, modalities, env_columns, sample_size, seed):
    """The loader's statistics, from the cached training part."""
    ids = train.survey_ids[rows]
    sources = {"tables": {}, "cubes": {}}
    if "env" in modalities:
        columns = _select_columns(train.env_columns, env_columns)
        sources["tables"]["env"] = train.env(columns)[rows]
        sources["env_columns"] = columns
    position = {int(s): i for i, s in enumerate(train.survey_ids)}
    arrays = {}
    for name in modalities:
        if name == "env":
            continue
        arrays[name] = train.array(name)
        if name in ("climate", "landsat"):
            if train.source(name) == "csv":
                sources["tables"][name] = np.asarray(arrays[name][rows])
            else:
                sources["cubes"][name] = (None, arrays[name].shape[1])
    if "image" in modalities:
        sources["image_size"] = arrays["image"].shape[1]

    def read_sample(kind, survey):
        values = np.asarray(arrays[kind][position[survey]])
        if kind != "image" and np.isnan(values).all():
            return None  # No cube: left out, as by the release's reader.
        return values

    sources["read_sample"] = read_sample
    return loader._compute_stats(sources, ids, modalities, sample_size, seed)


def _stored_stats(
    manifest, modalities, env_columns, fraction, seed, sample_size, validation_block
):
    stored = manifest.get("stats")
    config = {
        "validation_fraction": float(fraction),
        "seed": int(seed),
        "stats_sample_size": int(sample_size),
    }
    if stored is None or stored["config"] != config or env_columns is not None:
        return None
    if validation_block is not None:
        return None
    if any(m not in stored["values"] for m in modalities):
        return None
    return {m: stored["values"][m] for m in modalities}


# ---------------------------------------------------------------- checks
def read_manifest(cache_dir):
    """The manifest of a complete cache; `GeoPlantCacheError` otherwise."""
    cache_dir = Path(cache_dir).expanduser()
    manifest = _read_json(cache_dir / MANIFEST)
    if manifest is None:
        raise GeoPlantCacheError(
            f"'{cache_dir}' is not a GeoPlant cache (no {MANIFEST}); {_PREPARE_HINT}."
        )
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise GeoPlantCacheError(
            f"'{cache_dir / MANIFEST}' is not a version-{VERSION} GeoPlant cache "
            f"manifest (format {manifest.get('format')!r}, version "
            f"{manifest.get('version')!r}); {_PREPARE_HINT} with overwrite=True."
        )
    unfinished = [
        f"{split}/{name} ({entry['rows_done']} of {entry['shape'][0]} rows)"
        for split, info in manifest["splits"].items()
        for name, entry in info.get("arrays", {}).items()
        if not entry.get("complete")
    ]
    if unfinished or not manifest.get("complete"):
        raise GeoPlantCacheError(
            f"The GeoPlant cache '{cache_dir}' is incomplete (an interrupted "
            f"preparation): unfinished arrays {unfinished or 'none'}; re-run "
            "prepare_geoplant with the same arguments to resume it."
        )
    return manifest


def check_fresh(manifest, cache_dir, root):
    """Refuses a cache whose source files changed since it was prepared."""
    layout = GeoPlantLayout(root)
    arguments = manifest["arguments"]
    families = sorted({loader._feature_family(s, layout) for s in arguments["splits"]})
    listing = _source_listing(layout, families, arguments["modalities"])
    if _fingerprint(arguments, listing) != manifest["fingerprint"]:
        raise GeoPlantCacheError(
            f"The GeoPlant cache '{cache_dir}' is stale: "
            f"{_differences(manifest, arguments, listing)}. Re-run "
            "prepare_geoplant(root, cache_dir, overwrite=True)."
        )


def _open_array(cache_dir, split, entry, name):
    info = entry["arrays"].get(name)
    path = Path(cache_dir) / split / f"{name}.npy"
    if info is None:
        raise GeoPlantCacheError(
            f"The '{split}' split of the GeoPlant cache '{cache_dir}' has no "
            f"'{name}' array; {_PREPARE_HINT}."
        )
    if not path.exists():
        raise GeoPlantCacheError(f"GeoPlant cache array '{path}' is missing.")
    expected = info["nbytes"] + info["header_bytes"]
    actual = path.stat().st_size
    if actual != expected:
        raise GeoPlantCacheError(
            f"GeoPlant cache array '{path}' is truncated or damaged: "
            f"{actual} bytes, expected {expected} for shape {tuple(info['shape'])} "
            f"{info['dtype']}; {_PREPARE_HINT} with overwrite=True."
        )
    values = np.load(path, mmap_mode="r")
    if list(values.shape) != info["shape"] or str(values.dtype) != info["dtype"]:
        raise GeoPlantCacheError(
            f"GeoPlant cache array '{path}' holds {values.shape} {values.dtype}; "
            f"the manifest expects {tuple(info['shape'])} {info['dtype']}."
        )
    return values


def _array_entry(folder, name, shape, dtype):
    path = folder / f"{name}.npy"
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype="int64")) * dtype.itemsize
    return {
        "file": f"{folder.name}/{name}.npy",
        "shape": [int(n) for n in shape],
        "dtype": str(dtype),
        "nbytes": nbytes,
        "header_bytes": path.stat().st_size - nbytes if path.exists() else None,
    }


def _complete(entry):
    return entry is not None and bool(entry.get("complete"))


def _split_complete(entry):
    return all(_complete(a) for a in entry.get("arrays", {}).values()) and bool(
        entry.get("arrays")
    )


def _source_listing(layout, families, modalities):
    """{relative path: [size, mtime_ns] or folder summary} of the sources."""
    root = layout.root
    files = [root / rel for rels in layout.metadata.values() for rel in rels]
    folders = []
    for family in families:
        if "env" in modalities:
            files += layout.env_files(family)
        if "climate" in modalities:
            files += layout.climate_csvs(family)
            folders += layout.cube_folders("climate", family)
        if "landsat" in modalities:
            files += [p for ps in layout.landsat_csvs(family).values() for p in ps]
            folders += layout.cube_folders("landsat", family)
        if "image" in modalities:
            folders += [folder for _, folder in layout.image_folders(family)]
    listing = {}
    for path in sorted(set(files)):
        stat = path.stat()
        listing[str(path.relative_to(root))] = [stat.st_size, stat.st_mtime_ns]
    for folder in sorted(set(folders)):
        count = size = latest = 0
        for dirpath, _, filenames in os.walk(folder):
            for name in filenames:
                stat = os.stat(os.path.join(dirpath, name))
                count += 1
                size += stat.st_size
                latest = max(latest, stat.st_mtime_ns)
        listing[str(folder.relative_to(root)) + "/"] = [count, size, latest]
    return listing


def _fingerprint(arguments, listing):
    text = json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "arguments": arguments,
            "sources": listing,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _differences(manifest, arguments, listing):
    found = []
    old_args = manifest.get("arguments", {})
    for key in sorted(set(old_args) | set(arguments)):
        if old_args.get(key) != arguments.get(key):
            found.append(f"{key} {old_args.get(key)!r} -> {arguments.get(key)!r}")
    old = manifest.get("sources", {})
    changed = [
        p for p in sorted(set(old) | set(listing)) if old.get(p) != listing.get(p)
    ]
    for path in changed[:5]:
        what = (
            "new"
            if path not in old
            else "removed"
            if path not in listing
            else "changed"
        )
        found.append(f"{path} ({what})")
    if len(changed) > 5:
        found.append(f"and {len(changed) - 5} more source(s)")
    if manifest.get("version") != VERSION:
        found.append(f"cache version {manifest.get('version')!r} -> {VERSION}")
    return "; ".join(found) or "fingerprint differs"


def _read_json(path):
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise GeoPlantCacheError(
            f"GeoPlant cache manifest '{path}' is damaged ({error}); "
            f"{_PREPARE_HINT} with overwrite=True."
        ) from error


def _write_json(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
