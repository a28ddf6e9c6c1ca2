"""The sources of a GeoPlant split: the files of each modality, read by row."""

import fnmatch
import warnings

import numpy as np

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.readers import find_patch
from keras_miam.datasets.geoplant.readers import index_cubes
from keras_miam.datasets.geoplant.readers import read_cube
from keras_miam.datasets.geoplant.readers import read_env_table
from keras_miam.datasets.geoplant.readers import read_patch
from keras_miam.datasets.geoplant.readers import read_series_csvs
from keras_miam.datasets.geoplant.readers import to_float32

GEOPLANT_MODALITIES = ("env", "climate", "landsat", "image")
SERIES_SOURCES = ("auto", "csv", "cubes")
_EXPECTED = {
    "env": "EnvironmentalValues/ (or EnvironmentalRasters/) CSVs with a surveyId",
    "climate": "a bioclimatic_monthly CSV or *-bioclimatic_monthly_*_cube.pt files",
    "landsat": "the six landsat-time-series-{band} CSVs or *-landsat*_cube.pt files",
    "image": "Sentinel-2 patches {CD}/{AB}/{surveyId}.tiff, or RGB and NIR jpegs",
}


def available_modalities(root, split="train"):
    """The modalities a GeoPlant release has files for, in a split.

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
    files = layout.files(layout.feature_family(split))
    files["image"] = [find_patch(f)[0] for _, f in files["image"][1]]
    return tuple(name for name, found in files.items() if any(found))


def default_modalities(layout, modalities=None):
    """`modalities` checked; default those with training files (or an error)."""
    modalities = modalities or available_modalities(layout, "train")
    if not modalities:
        raise FileNotFoundError(
            f"The release under '{layout.root}' has training files for no "
            f"modality among {list(GEOPLANT_MODALITIES)}."
        )
    return check_modalities(modalities, GEOPLANT_MODALITIES)


class Source:
    """Raw float32 values (NaN for missing) of a split's surveys, by row.

    Subclasses set `survey_ids`, `shapes`, `origin` and `stored_env`, and
    define `_read(name, rows)`.
    """

    env_columns = stored_env = None

    def select_env(self, columns=None, patterns=None):
        """Reads "env" as `columns` (NaN for absent ones), or those matching."""
        stored = self.stored_env
        if patterns is not None:
            columns = []
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                matches = [c for c in stored if fnmatch.fnmatchcase(c, pattern)]
                if not matches:
                    raise ValueError(
                        f"env_columns entry '{pattern}' matches no environmental "
                        f"column; available: {stored}."
                    )
                columns += [c for c in matches if c not in columns]
        self.env_columns = list(stored if columns is None else columns)
        self.shapes["env"] = (len(self.env_columns),)
        self._take = [stored.index(c) if c in stored else -1 for c in self.env_columns]

    def read(self, name, rows):
        """`(len(rows),) + shapes[name]` float32 raw values."""
        values = np.asarray(self._read(name, np.asarray(rows, "int64")))
        if name == "env":  # NaN for the columns not stored
            take = np.array(self._take, "int64")
            values = np.where(take >= 0, values[:, take], np.float32("nan"))
        return values


class ReleaseSource(Source):
    """The files of a release split, its surveys `ids` the rows: tables in
    memory, cubes and patches read by row. `columns`, `series` and `size`
    are `load_geoplant`'s `env_columns`, `series_source` and `image_size`.
    """

    def __init__(self, layout, split, ids, modalities, columns, series, size):
        if series not in SERIES_SOURCES:
            raise ValueError(
                f"Unknown series_source '{series}'; expected one of "
                f"{list(SERIES_SOURCES)}."
            )
        family = layout.feature_family(split)
        self.survey_ids = ids = np.asarray(ids, "int64")
        self.tables, self.cubes, self.origin, self.shapes = {}, {}, {}, {}
        files = layout.files(family)
        for name in modalities:
            csvs, folders = files[name]
            if name == "image":
                found = [(k, str(f), *find_patch(f)) for k, f in folders]
                self.patches = [f[:3] for f in found if f[2]]
                if self.patches:
                    example = next(f[3] for f in found if f[2])
                    size = size or read_patch(self.patches, example).shape[0]
                    self.image_size, self.origin[name] = int(size), "files"
                    self.shapes[name] = (self.image_size, self.image_size, 4)
            elif name == "env" and csvs:
                frame = read_env_table(csvs, ids)
                self.tables[name], self.stored_env = to_float32(frame), list(frame)
                self.select_env(patterns=columns)
            elif csvs and series != "cubes":
                self.tables[name] = read_series_csvs(name, csvs, ids)
                self.shapes[name] = self.tables[name].shape[1:]
            elif series != "csv" and (index := index_cubes(folders)):
                self.cubes[name], self.origin[name] = index, "cubes"
                self.shapes[name] = read_cube(next(iter(index.values())), name).shape
            if name not in self.shapes:
                raise FileNotFoundError(
                    f"No '{name}' files for split family '{family}' under "
                    f"'{layout.root}' (series_source={series!r}). "
                    f"Expected {_EXPECTED[name]}."
                )
            self.origin.setdefault(name, "csv")

    def _read(self, name, rows):
        if name in self.tables:
            return self.tables[name][rows]
        values = np.full((len(rows),) + tuple(self.shapes[name]), np.nan, "float32")
        for i, survey in enumerate(self.survey_ids[rows]):
            if name == "image":
                values[i] = read_patch(self.patches, survey, self.image_size)
            elif (path := self.cubes[name].get(int(survey))) is not None:
                try:
                    cube = read_cube(path, name)
                except (OSError, RuntimeError, ValueError, EOFError) as error:
                    warnings.warn(f"Could not read cube '{path}' ({error}); using NaN.")
                    continue
                values[i, : len(cube)] = cube[: len(values[i])]
        return values
