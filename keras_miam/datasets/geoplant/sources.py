"""The sources of a GeoPlant split: which files hold each modality, read by row."""

import fnmatch
import warnings

import numpy as np

from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.readers import LANDSAT_BANDS
from keras_miam.datasets.geoplant.readers import find_patch
from keras_miam.datasets.geoplant.readers import index_cubes
from keras_miam.datasets.geoplant.readers import read_cube
from keras_miam.datasets.geoplant.readers import read_env_table
from keras_miam.datasets.geoplant.readers import read_patch
from keras_miam.datasets.geoplant.readers import read_series_csvs
from keras_miam.datasets.geoplant.readers import to_float32

GEOPLANT_MODALITIES = ("env", "climate", "landsat", "image")
SERIES_SOURCES = ("auto", "csv", "cubes")


def available_modalities(root, split="train"):
    """The modalities a GeoPlant release has files for, in a split.

    Looks for the files `load_geoplant` reads, without reading them.

    Args:
        root: path of the release folder, or a `GeoPlantLayout`.
        split: a split of the release (its family's files are looked at).

    Returns:
        A tuple of names among "env", "climate", "landsat", "image".

    Example:

    ```python
    keras_miam.datasets.available_modalities("/data/geoplant")
    # ('env', 'climate', 'landsat', 'image')
    ```
    """
    layout = root if isinstance(root, GeoPlantLayout) else GeoPlantLayout(root)
    family = layout.feature_family(split)
    found = {
        "env": layout.env_files(family),
        "climate": layout.climate_csvs(family)
        or layout.cube_folders("climate", family),
        "landsat": len(layout.landsat_csvs(family)) == len(LANDSAT_BANDS)
        or layout.cube_folders("landsat", family),
        "image": any(find_patch(f)[0] for _, f in layout.image_folders(family)),
    }
    return tuple(name for name in GEOPLANT_MODALITIES if found[name])


def check_series_source(series_source):
    """Raises a ValueError unless `series_source` is "auto", "csv" or "cubes"."""
    if series_source not in SERIES_SOURCES:
        raise ValueError(
            f"Unknown series_source '{series_source}'; expected one of "
            f"{list(SERIES_SOURCES)}."
        )


def match_columns(columns, patterns):
    """The `columns` matching names or glob `patterns`, in pattern order."""
    selected = []
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        matches = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        if not matches:
            raise ValueError(
                f"env_columns entry '{pattern}' matches no environmental column; "
                f"available: {list(columns)}."
            )
        selected += [c for c in matches if c not in selected]
    return selected


_EXPECTED = {
    "env": "EnvironmentalValues/**/*PA*-{train,test}-*.csv files (or "
    "EnvironmentalRasters/) with a 'surveyId' column",
    "climate": "a bioclimatic_monthly CSV (surveyId + Bio-{pr,tas,tasmax,tasmin}"
    "_{MM}_{YYYY}) or *-bioclimatic_monthly_{surveyId}_cube.pt files",
    "landsat": "the six landsat-time-series-{red,green,blue,nir,swir1,swir2} "
    "CSVs (surveyId + YYYY_Q) or *-landsat*_{surveyId}_cube.pt files",
    "image": "Sentinel-2 patches {CD}/{AB}/{surveyId}.tiff (R, G, B, NIR) or "
    "GLC24's RGB and NIR jpegs, CD being the last two digits of the id",
}


def _absent(name, where):
    raise FileNotFoundError(f"No '{name}' files {where}. Expected {_EXPECTED[name]}.")


class Source:
    """Raw values (NaN for missing) of a release split's surveys, by row.

    Subclasses set `survey_ids`, `origin` ({modality: "csv", "cubes" or
    "files"}) and `shapes`, and read with `_read(name, rows)`; "env" is
    read in the order of `env_columns` (see `select_env`).
    """

    env_columns = None
    _stored_env = None

    def select_env(self, columns=None, patterns=None):
        """Reads "env" as `columns` (NaN for absent ones), or those matching."""
        if patterns is not None:
            columns = match_columns(self._stored_env, patterns)
        self.env_columns = list(self._stored_env if columns is None else columns)
        self._env_take = np.array(
            [
                self._stored_env.index(c) if c in self._stored_env else -1
                for c in self.env_columns
            ],
            "int64",
        )

    @property
    def input_shapes(self):
        shapes = dict(self.shapes)
        if "env" in shapes:
            shapes["env"] = (len(self.env_columns),)
        return shapes

    def read(self, name, rows):
        """(len(rows),) + `input_shapes[name]` float32 raw values."""
        values = np.asarray(self._read(name, np.asarray(rows, "int64")), "float32")
        if name == "env":
            take = self._env_take
            values = np.where(take >= 0, values[:, np.maximum(take, 0)], np.nan)
        return values.astype("float32", copy=False)


class ReleaseSource(Source):
    """The files of a release split: tables in memory, cubes and patches by row.

    Args:
        layout: a `GeoPlantLayout`.
        split: the release split (its files are those of its family).
        survey_ids: int array, the split's surveys (the rows).
        modalities: names of the modalities to read.
        env_columns: optional env column names or glob patterns.
        series_source: "auto" (CSVs when present), "csv" or "cubes".
        image_size: optional int; default the size of the first patch.
    """

    def __init__(
        self,
        layout,
        split,
        survey_ids,
        modalities,
        env_columns=None,
        series_source="auto",
        image_size=None,
    ):
        family = layout.feature_family(split)
        where = f"for split family '{family}' under '{layout.root}'"
        self.survey_ids = ids = np.asarray(survey_ids, "int64")
        self.tables, self.cubes, self.origin, self.shapes = {}, {}, {}, {}
        if "env" in modalities:
            files = layout.env_files(family) or _absent("env", where)
            frame = read_env_table(files, ids)
            self.tables["env"] = to_float32(frame.to_numpy("float64", na_value=np.nan))
            self._stored_env = list(frame.columns)
            self.select_env(patterns=env_columns)
        for kind in [k for k in ("climate", "landsat") if k in modalities]:
            csvs = layout.climate_csvs(family)
            if kind == "landsat":
                csvs = layout.landsat_csvs(family)
                csvs = csvs if len(csvs) == len(LANDSAT_BANDS) else None
            folders = layout.cube_folders(kind, family)
            if csvs and series_source != "cubes":
                self.tables[kind] = read_series_csvs(kind, csvs, ids)
            elif series_source != "csv" and (index := index_cubes(folders)):
                first = next((index[i] for i in ids if i in index), None)
                first = first or next(iter(index.values()))
                self.cubes[kind] = index
                self.shapes[kind] = read_cube(first, kind).shape
                self.origin[kind] = "cubes"
            else:
                _absent(kind, f"{where} (series_source={series_source!r})")
        for name, values in self.tables.items():
            self.shapes[name] = values.shape[1:]
            self.origin.setdefault(name, "csv")
        self.patches = []
        if "image" in modalities:
            rank = {"multiband": 0, "rgb": 1, "nir": 2}  # a 4-band patch first
            found = []
            for kind, folder in layout.image_folders(family):
                extension, example = find_patch(folder)
                if extension is not None:
                    found.append((rank[kind], (kind, str(folder), extension), example))
            if not found:
                _absent("image", where)
            found.sort(key=lambda f: f[0])
            self.patches = [f[1] for f in found]
            if image_size is None:
                image_size = read_patch(self.patches, found[0][2]).shape[0]
            self.image_size = int(image_size)
            self.shapes["image"] = (self.image_size, self.image_size, 4)
            self.origin["image"] = "files"

    def _read(self, name, rows):
        if name in self.tables:
            return self.tables[name][rows]
        ids = self.survey_ids[rows]
        values = np.full((len(ids),) + tuple(self.shapes[name]), np.nan, "float32")
        for i, survey in enumerate(ids):
            if name == "image":
                values[i] = read_patch(self.patches, survey, self.image_size)
            elif (path := self.cubes[name].get(int(survey))) is not None:
                try:
                    cube = read_cube(path, name)
                except (OSError, RuntimeError, ValueError, EOFError) as error:
                    warnings.warn(f"Could not read cube '{path}' ({error}); using NaN.")
                    continue
                take = min(len(cube), len(values[i]))
                values[i, :take] = cube[:take]
        return values
