"""A one-time array cache of a GeoPlant release, read through memory maps."""

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import positive_int
from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.plan import clean_metadata
from keras_miam.datasets.geoplant.sources import GEOPLANT_MODALITIES
from keras_miam.datasets.geoplant.sources import ReleaseSource
from keras_miam.datasets.geoplant.sources import Source
from keras_miam.datasets.geoplant.sources import default_modalities

VERSION, MANIFEST = 3, "manifest.json"
_HINT = "run keras_miam.datasets.prepare_geoplant(root, cache_dir)"


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
    overwrite=False,
    verbose=1,
):
    """Reads a GeoPlant release once into a memory-mapped array cache.

    Each split's modalities are written, as `load_geoplant` reads them, to
    float32 `cache_dir/{split}/{modality}.npy` (NaN for missing values,
    unnormalised); `manifest.json` is written last, so an interrupted
    preparation is refused when loading, and re-running starts it again. A
    cache made from other files or arguments raises `GeoPlantCacheError`,
    naming what differs, unless `overwrite=True`.

    Args:
        root: path of the release folder.
        cache_dir: path of the cache folder (created if needed).
        modalities: names among "env", "climate", "landsat", "image";
            default every modality with training files.
        splits: release splits to cache; default all ("train" always).
        series_source: "auto", "csv" or "cubes", as in `load_geoplant`.
        env_columns: optional env column names or glob patterns.
        image_size: int, patch size; default that of the first patch.
        chunk_size: int, surveys read and written at a time.
        overwrite: bool, rebuild a cache made from other files or arguments.
        verbose: 0 (silent) or 1 (a progress bar per array).

    Returns:
        The manifest, a dict.

    Example:

    ```python
    keras_miam.datasets.prepare_geoplant("/data/geoplant", "/scratch/cache")
    train = keras_miam.datasets.load_geoplant(cache_dir="/scratch/cache")
    ```
    """
    chunk_size = positive_int(chunk_size, "chunk_size")
    cache_dir = Path(cache_dir).expanduser()
    layout = GeoPlantLayout(root)
    modalities = default_modalities(layout, modalities)
    if "image" in modalities:
        size = (
            image_size
            or ReleaseSource(
                layout, "train", [], ["image"], None, "auto", None
            ).image_size
        )
        image_size = positive_int(size, "image_size")
    splits = list(dict.fromkeys(["train", *(splits or layout.splits())]))
    arguments = dict(version=VERSION, modalities=modalities, splits=splits)
    arguments.update(series_source=series_source, env_columns=env_columns)
    arguments["image_size"] = image_size
    manifest = _listing(layout, arguments)
    old = None if overwrite else _read_manifest(cache_dir)
    if old is not None and (differences := _differences(old, manifest)):
        raise GeoPlantCacheError(
            f"The GeoPlant cache '{cache_dir}' was made from other files or "
            f"arguments: {differences}. Pass overwrite=True (--overwrite) to "
            "rebuild it, or use another cache_dir."
        )
    if old is not None:
        return old
    (cache_dir / MANIFEST).unlink(missing_ok=True)
    manifest["splits"] = {}
    for split in splits:
        surveys, presence = clean_metadata(layout.read_metadata(split))
        folder = cache_dir / split
        folder.mkdir(parents=True, exist_ok=True)
        surveys.to_csv(folder / "surveys.csv")
        if presence is not None:
            np.save(folder / "presence.npy", presence)
        keys = ("modalities", "env_columns", "series_source", "image_size")
        source = ReleaseSource(layout, split, surveys.index, *map(arguments.get, keys))
        arrays = {}
        for name in modalities:
            shape = (len(surveys), *source.shapes[name])
            path = folder / f"{name}.npy"
            store = np.lib.format.open_memmap(path, "w+", "float32", shape)
            step = max(len(surveys) if name in source.tables else chunk_size, 1)
            if verbose:
                print(f"Caching '{split}/{name}':")
            bar = keras.utils.Progbar(len(surveys), verbose=verbose, unit_name="survey")
            for start in range(0, len(surveys), step):
                stop = min(start + step, len(surveys))
                store[start:stop] = source.read(name, np.arange(start, stop))
                bar.update(stop)
            store.flush()
            arrays[name] = {"shape": list(shape), "origin": source.origin[name]}
        entry = dict(labelled=presence is not None, env_columns=source.env_columns)
        manifest["splits"][split] = dict(entry, arrays=arrays)
    (cache_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    if verbose:
        print(f"GeoPlant cache '{cache_dir}' complete.")
    return manifest


class CachedSource(Source):
    """The memory-mapped arrays of one cached split: a `Source` by row."""

    def __init__(self, cache_dir, split, manifest, modalities, env_columns=None):
        entry, folder = manifest["splits"][split], Path(cache_dir) / split
        self.surveys = pd.read_csv(folder / "surveys.csv", index_col="surveyId")
        self.survey_ids = self.surveys.index.to_numpy("int64")
        self.presence = np.load(folder / "presence.npy") if entry["labelled"] else None
        self.arrays, self.shapes, self.origin = {}, {}, {}
        for name in modalities:
            path, info = folder / f"{name}.npy", entry["arrays"][name]
            try:
                values = np.load(path, mmap_mode="r")
                what = f"holds {values.shape} {values.dtype}, not {info['shape']}"
            except (OSError, ValueError) as error:
                values, what = None, f"is truncated or damaged ({error})"
            ok = values is not None and list(values.shape) == info["shape"]
            if not ok or values.dtype != "float32":
                raise GeoPlantCacheError(
                    f"GeoPlant cache array '{path}' {what}; {_HINT} with overwrite=True."
                )
            self.arrays[name], self.shapes[name] = values, values.shape[1:]
            self.origin[name] = info["origin"]
        self.stored_env = entry["env_columns"]
        if "env" in modalities:
            self.select_env(patterns=env_columns)

    def _read(self, name, rows):
        return self.arrays[name][rows]


def open_cache(
    cache_dir, root=None, modalities=None, series_source="auto", image_size=None
):
    """`(manifest, modalities)` of a complete, fresh cache holding what is asked."""
    cache_dir = Path(cache_dir).expanduser()
    manifest = _read_manifest(cache_dir) or {"arguments": {}}
    if manifest["arguments"].get("version") != VERSION:
        raise GeoPlantCacheError(
            f"'{cache_dir}' holds no complete GeoPlant cache of version {VERSION} "
            f"({MANIFEST} absent, of another version, or its preparation was "
            f"interrupted); {_HINT}."
        )
    cached = manifest["arguments"]["modalities"]
    if root is not None:
        listing = _listing(GeoPlantLayout(root), manifest["arguments"])
        if differences := _differences(manifest, listing):
            raise GeoPlantCacheError(
                f"The GeoPlant cache '{cache_dir}' is stale: {differences}. "
                "Re-run prepare_geoplant(root, cache_dir, overwrite=True)."
            )
    modalities = check_modalities(modalities or cached, GEOPLANT_MODALITIES)
    arrays = manifest["splits"]["train"]["arrays"]
    missing = [m for m in modalities if m not in cached]
    held = [f"{cached}, not {missing}"] if missing else []
    held += [
        f"the {name} series from {arrays[name]['origin']}"
        for name in set(modalities) & set(cached) & {"climate", "landsat"}
        if series_source not in ("auto", arrays[name]["origin"])
    ]
    size = manifest["arguments"]["image_size"]
    if "image" in modalities and image_size not in (None, size):
        held.append(f"{size}x{size} patches")
    if held:
        raise GeoPlantCacheError(
            f"The GeoPlant cache '{cache_dir}' holds {'; '.join(held)}: received "
            f"modalities={list(modalities)}, series_source={series_source!r}, "
            f"image_size={image_size!r}; {_HINT} with them."
        )
    return manifest, modalities


def _listing(layout, arguments):
    """The arguments and source files (size and time) of a cache, as JSON."""
    paths = {layout.root / rel for rels in layout.metadata.values() for rel in rels}
    for family in {layout.feature_family(s) for s in arguments["splits"]}:
        for name, (csvs, folders) in layout.files(family).items():
            if name in arguments["modalities"]:
                paths.update(*(csvs.values() if name == "landsat" else [csvs]))
                paths.update(f[-1] if name == "image" else f for f in folders)
    sources = {}
    for path in sorted(paths):  # a folder: its files' count, size and latest time
        files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
        stats = [(f.stat().st_size, f.stat().st_mtime_ns) for f in files] or [(0, 0)]
        key = str(path.relative_to(layout.root)) + "/" * path.is_dir()
        sources[key] = [len(files), sum(s for s, _ in stats), max(t for _, t in stats)]
    return json.loads(json.dumps({"arguments": arguments, "sources": sources}))


def _differences(manifest, listing):
    """What differs between a manifest and a `_listing` ("" when nothing)."""
    old, new = manifest.get("arguments", {}), listing["arguments"]
    found = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in new.items() if old.get(k) != v]
    old, new = manifest.get("sources", {}), listing["sources"]
    changed = [p for p in sorted({*old, *new}) if old.get(p) != new.get(p)]
    state = lambda p: (
        "new" if p not in old else "removed" if p not in new else "changed"
    )
    found += [f"{path} ({state(path)})" for path in changed[:5]]
    found += [f"and {len(changed) - 5} more source(s)"] if len(changed) > 5 else []
    return "; ".join(found)


def _read_manifest(cache_dir):
    path = Path(cache_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None
