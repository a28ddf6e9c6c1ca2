"""A one-time, memory-mapped array cache of a GeoPlant release.

`prepare_geoplant` writes each modality of each split as one float32 `.npy`
(NaN for missing, unnormalised), the split's `surveys.csv` and
`presence.npy`, and `manifest.json` (shapes, rows written, arguments, source
file sizes and times); `CachedSource` reads them through memory maps.
"""

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import positive_int
from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.plan import clean_metadata
from keras_miam.datasets.geoplant.sources import GEOPLANT_MODALITIES
from keras_miam.datasets.geoplant.sources import ReleaseSource
from keras_miam.datasets.geoplant.sources import Source
from keras_miam.datasets.geoplant.sources import available_modalities
from keras_miam.datasets.geoplant.sources import check_series_source

FORMAT = "keras_miam.geoplant_cache"
VERSION = 2
MANIFEST = "manifest.json"
_HINT = (
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
    overwrite=False,
    verbose=1,
):
    """Reads a GeoPlant release once into a memory-mapped array cache.

    Each split (all by default; "train" always) is read with the readers of
    `load_geoplant` and each modality written to
    `cache_dir/{split}/{modality}.npy`: float32, NaN for missing values,
    unnormalised. Species, validation part and statistics are chosen when
    loading. The manifest records the rows written after each chunk of
    `chunk_size` surveys: re-running the same call resumes. A cache made
    from other files or arguments raises `GeoPlantCacheError`, naming what
    differs, unless `overwrite=True`.

    Args:
        root: path of the release folder.
        cache_dir: path of the cache folder (created if needed).
        modalities: names among "env", "climate", "landsat", "image".
            Defaults to every modality the release has training files for.
        splits: release splits to cache; defaults to all of them.
        series_source: "auto", "csv" or "cubes", as in `load_geoplant`.
        env_columns: optional env column names or glob patterns.
        image_size: int, patch height and width; default the size of the
            first training patch.
        chunk_size: int, surveys per written chunk. Defaults to 512.
        overwrite: bool, replace a cache made from other files or
            arguments. Defaults to False.
        verbose: 0 (silent) or 1 (a progress bar per array). Defaults to 1.

    Returns:
        The manifest, a dict.

    Example:

    ```python
    keras_miam.datasets.prepare_geoplant("/data/geoplant", "/scratch/cache")
    train = keras_miam.datasets.load_geoplant(cache_dir="/scratch/cache")
    ```
    """
    chunk_size = positive_int(chunk_size, "chunk_size")
    check_series_source(series_source)
    cache_dir = Path(cache_dir).expanduser()
    layout = GeoPlantLayout(root)
    modalities = check_modalities(
        modalities or default_modalities(layout), GEOPLANT_MODALITIES
    )
    available = layout.splits()
    unknown = [s for s in splits or () if s not in available]
    if unknown or "train" not in available:
        raise ValueError(
            f"Unknown split(s) {unknown or ['train']}; the release under "
            f"'{layout.root}' has {available} (and needs 'train')."
        )
    splits = list(dict.fromkeys(["train"] + list(splits or available)))
    if "image" in modalities:
        image_size = (
            image_size or ReleaseSource(layout, "train", [], ["image"]).image_size
        )
        image_size = positive_int(image_size, "image_size")
    arguments = dict(
        modalities=modalities,
        splits=splits,
        series_source=series_source,
        env_columns=env_columns,
        image_size=image_size,
    )
    manifest = _read_json(cache_dir / MANIFEST)
    listing = _listing(layout, arguments)
    if manifest is not None and (differences := _differences(manifest, listing)):
        if not overwrite:
            raise GeoPlantCacheError(
                f"The GeoPlant cache '{cache_dir}' was made from other files or "
                f"arguments: {differences}. Pass overwrite=True (--overwrite) to "
                "rebuild it, or use another cache_dir."
            )
        for split in manifest.get("splits", {}):
            shutil.rmtree(cache_dir / split, ignore_errors=True)
        manifest = None
    manifest = manifest or {"format": FORMAT, "version": VERSION, "splits": {}}
    manifest.update(listing)
    manifest["complete"] = False
    cache_dir.mkdir(parents=True, exist_ok=True)
    for split in splits:
        entry = manifest["splits"].get(split)
        if entry is None or _unfinished({split: entry}):
            _prepare_split(
                layout, cache_dir, manifest, split, arguments, chunk_size, verbose
            )
    manifest["complete"] = True
    _write_json(cache_dir / MANIFEST, manifest)
    if verbose:
        size = sum(f.stat().st_size for f in cache_dir.rglob("*") if f.is_file())
        print(f"GeoPlant cache '{cache_dir}' complete: {size / 2**20:.1f} MiB.")
    return manifest


def default_modalities(layout):
    """Every modality the release has training files for (or an error)."""
    modalities = available_modalities(layout, "train")
    if not modalities:
        raise FileNotFoundError(
            f"The release under '{layout.root}' has training files for no "
            f"modality among {list(GEOPLANT_MODALITIES)}."
        )
    return modalities


def _prepare_split(layout, cache_dir, manifest, split, arguments, chunk_size, verbose):
    surveys, presence = clean_metadata(layout.read_metadata(split))
    folder = cache_dir / split
    folder.mkdir(parents=True, exist_ok=True)
    surveys.to_csv(folder / "surveys.csv")
    if presence is not None:
        np.save(folder / "presence.npy", presence)
    keys = ("modalities", "env_columns", "series_source", "image_size")
    source = ReleaseSource(layout, split, surveys.index, *map(arguments.get, keys))
    entry = manifest["splits"].setdefault(split, {"arrays": {}})
    entry.update(labelled=presence is not None, env_columns=source.env_columns)
    for name in arguments["modalities"]:
        shape = [len(surveys)] + list(source.input_shapes[name])
        path = folder / f"{name}.npy"
        info = entry["arrays"].get(name)
        if info is not None and info["shape"] == shape and path.exists():
            store = np.load(path, mmap_mode="r+")
        else:
            info = entry["arrays"][name] = {"shape": shape, "rows_done": 0}
            store = np.lib.format.open_memmap(path, "w+", "float32", tuple(shape))
        info["origin"] = source.origin[name]
        _write_json(cache_dir / MANIFEST, manifest)
        step = chunk_size if name in ("image",) + tuple(source.cubes) else len(surveys)
        progbar = None
        if verbose and info["rows_done"] < shape[0]:
            print(f"Caching '{split}/{name}':")
            progbar = keras.utils.Progbar(shape[0], unit_name="survey")
        for start in range(info["rows_done"], shape[0], max(step, 1)):
            stop = min(start + step, shape[0])
            store[start:stop] = source.read(name, np.arange(start, stop))
            store.flush()
            info["rows_done"] = stop
            _write_json(cache_dir / MANIFEST, manifest)
            if progbar is not None:
                progbar.update(stop)
        del store


class CachedSource(Source):
    """The arrays of one cached split, memory-mapped: a `Source` by row."""

    def __init__(self, cache_dir, manifest, split, modalities):
        entry = manifest["splits"].get(split)
        if entry is None:
            raise GeoPlantCacheError(
                f"The GeoPlant cache '{cache_dir}' has no '{split}' split (it has "
                f"{list(manifest['splits'])}); {_HINT}."
            )
        import pandas as pd

        folder = Path(cache_dir) / split
        self.surveys = pd.read_csv(folder / "surveys.csv", index_col="surveyId")
        self.survey_ids = self.surveys.index.to_numpy("int64")
        self.presence = np.load(folder / "presence.npy") if entry["labelled"] else None
        self.arrays, self.shapes, self.origin = {}, {}, {}
        for name in modalities:
            info = entry["arrays"][name]
            path = folder / f"{name}.npy"
            try:
                values = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as error:
                raise GeoPlantCacheError(
                    f"GeoPlant cache array '{path}' is truncated or damaged "
                    f"({error}); {_HINT} with overwrite=True."
                ) from error
            if list(values.shape) != info["shape"] or values.dtype != "float32":
                raise GeoPlantCacheError(
                    f"GeoPlant cache array '{path}' holds {values.shape} "
                    f"{values.dtype}; the manifest expects {info['shape']} float32."
                )
            self.arrays[name], self.origin[name] = values, info["origin"]
            self.shapes[name] = values.shape[1:]
        self._stored_env = entry["env_columns"]
        if "env" in modalities:
            self.select_env()

    def _read(self, name, rows):
        return self.arrays[name][rows]


def open_cache(
    cache_dir, root=None, modalities=None, series_source="auto", image_size=None
):
    """The manifest of a complete cache that holds what is asked.

    Raises `GeoPlantCacheError` for a missing, unfinished or (with `root`)
    stale cache, or one without `modalities`, or another `series_source` or
    `image_size`.
    """
    cache_dir = Path(cache_dir).expanduser()
    manifest = _read_json(cache_dir / MANIFEST)
    if manifest is None:
        raise GeoPlantCacheError(
            f"'{cache_dir}' is not a GeoPlant cache (no {MANIFEST}); {_HINT}."
        )
    if (manifest.get("format"), manifest.get("version")) != (FORMAT, VERSION):
        raise GeoPlantCacheError(
            f"'{cache_dir / MANIFEST}' is not a version-{VERSION} GeoPlant cache "
            f"manifest; {_HINT} with overwrite=True."
        )
    unfinished = _unfinished(manifest["splits"])
    if unfinished or not manifest.get("complete"):
        raise GeoPlantCacheError(
            f"The GeoPlant cache '{cache_dir}' is incomplete (an interrupted "
            f"preparation): unfinished arrays {unfinished or 'none'}; re-run "
            "prepare_geoplant with the same arguments to resume it."
        )
    arguments = manifest["arguments"]
    if root is not None:
        listing = _listing(GeoPlantLayout(root), arguments)
        if differences := _differences(manifest, listing):
            raise GeoPlantCacheError(
                f"The GeoPlant cache '{cache_dir}' is stale: {differences}. "
                "Re-run prepare_geoplant(root, cache_dir, overwrite=True)."
            )
    cached = arguments["modalities"]
    modalities = check_modalities(modalities or cached, GEOPLANT_MODALITIES)
    missing = [m for m in modalities if m not in cached]
    if missing:
        raise GeoPlantCacheError(
            f"The GeoPlant cache '{cache_dir}' holds {cached}, not {missing}; "
            f"{_HINT} with modalities including them."
        )
    arrays = manifest["splits"]["train"]["arrays"]
    for name in set(modalities) & {"climate", "landsat"}:
        origin = arrays[name]["origin"]
        if series_source not in ("auto", origin):
            raise GeoPlantCacheError(
                f"The GeoPlant cache '{cache_dir}' holds the {name} series from "
                f"{origin}; received series_source={series_source!r}. Prepare a "
                "cache with that series_source."
            )
    size = arguments["image_size"]
    if "image" in modalities and image_size not in (None, size):
        raise GeoPlantCacheError(
            f"The GeoPlant cache '{cache_dir}' holds {size}x{size} patches; "
            f"received image_size={image_size!r}. Prepare a cache with that "
            "image_size."
        )
    return manifest, modalities


def _unfinished(splits):
    return [
        f"{split}/{name} ({info['rows_done']} of {info['shape'][0]} rows)"
        for split, entry in splits.items()
        for name, info in entry["arrays"].items()
        if info["rows_done"] < info["shape"][0]
    ]


def _listing(layout, arguments):
    """The arguments (as JSON) and the source files of a cache.

    Files: [size, mtime_ns]; folders of cubes or patches: [files, size,
    latest mtime_ns].
    """
    modalities = arguments["modalities"]
    files = [layout.root / rel for rels in layout.metadata.values() for rel in rels]
    folders = []
    for family in sorted({layout.feature_family(s) for s in arguments["splits"]}):
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
    sources = {}
    for path in sorted(set(files)):
        stat = path.stat()
        sources[str(path.relative_to(layout.root))] = [stat.st_size, stat.st_mtime_ns]
    for folder in sorted(set(folders)):
        stats = [
            os.stat(os.path.join(dirpath, name))
            for dirpath, _, names in os.walk(folder)
            for name in names
        ]
        sources[str(folder.relative_to(layout.root)) + "/"] = [
            len(stats),
            sum(s.st_size for s in stats),
            max((s.st_mtime_ns for s in stats), default=0),
        ]
    return json.loads(json.dumps({"arguments": arguments, "sources": sources}))


def _differences(manifest, listing):
    """What differs between a manifest and a `_listing` ("" when nothing)."""
    old, new = manifest.get("arguments", {}), listing["arguments"]
    found = [
        f"{key} {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
    old, new = manifest.get("sources", {}), listing["sources"]
    changed = [p for p in sorted(set(old) | set(new)) if old.get(p) != new.get(p)]
    for path in changed[:5]:
        what = "new" if path not in old else "removed" if path not in new else "changed"
        found.append(f"{path} ({what})")
    if len(changed) > 5:
        found.append(f"and {len(changed) - 5} more source(s)")
    if manifest.get("version") != VERSION:
        found.append(f"cache version {manifest.get('version')!r} -> {VERSION}")
    return "; ".join(found)


def _read_json(path):
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise GeoPlantCacheError(
            f"GeoPlant cache manifest '{path}' is damaged ({error}); {_HINT} "
            "with overwrite=True."
        ) from error


def _write_json(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
