"""Readers of the GeoPlant files: CSV tables, `.pt` cubes, Sentinel-2 patches.

Every reader returns float32 with NaN for missing values (the rule of
`keras_miam.missing.is_missing`). pandas, tifffile and Pillow are imported
where they are used.
"""

import os
import re
import warnings

import numpy as np

from keras_miam.missing import is_missing

CLIMATE_VARIABLES = ("pr", "tas", "tasmax", "tasmin")
LANDSAT_BANDS = ("red", "green", "blue", "nir", "swir1", "swir2")
IMAGE_CHANNELS = ("red", "green", "blue", "nir")
IMAGE_EXTENSIONS = (".tiff", ".tif", ".jpeg", ".jpg", ".png")
DIGIT_DIR_RE = re.compile(r"^\d{1,2}$")
CUBE_RE = re.compile(r"_(\d+)_cube\.pt$")
CLIMATE_COLUMN_RE = re.compile(r"^bio-(pr|tas|tasmax|tasmin)_(\d{1,2})_(\d{4})$", re.I)
LANDSAT_COLUMN_RE = re.compile(r"^(\d{4})_([1-4])$")


def to_float32(values):
    """float32 copy of `values`, NaN where `is_missing`."""
    values = np.asarray(values, "float64")
    return np.where(is_missing(values, xp=np), np.nan, values).astype("float32")


def read_csv(path, **kwargs):
    """`pandas.read_csv` with the separator (';', tab or ',') of the header."""
    import pandas as pd

    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    sep = max((";", "\t", ","), key=header.count)
    return pd.read_csv(path, sep=sep if header.count(sep) else ",", **kwargs)


def read_rows(paths, survey_ids, key="surveyId"):
    """The rows of CSVs whose `key` is in `survey_ids`, streamed in chunks.

    Returns a numeric DataFrame indexed by the integer key (the first row of a
    duplicated id; ids without a row are absent).
    """
    import pandas as pd

    wanted = pd.Index(np.asarray(survey_ids, "int64"))
    kept = []
    for path in paths:
        for chunk in read_csv(path, chunksize=20000, low_memory=False):
            chunk.columns = [str(c).strip() for c in chunk.columns]
            if key not in chunk.columns:
                raise ValueError(
                    f"'{path}' has no '{key}' column; found {list(chunk.columns)[:8]}."
                )
            ids = pd.to_numeric(chunk.pop(key), errors="coerce")
            keep = ids.isin(wanted)
            kept.append(chunk[keep].set_axis(ids[keep].astype("int64"), axis=0))
    frame = pd.concat(kept) if kept else pd.DataFrame()
    frame = frame[~frame.index.duplicated()]
    return frame.apply(pd.to_numeric, errors="coerce")


def read_env_table(paths, survey_ids):
    """Joins environmental CSVs on surveyId (numeric columns, first file wins)."""
    import pandas as pd

    frames = [read_rows([path], survey_ids) for path in paths]
    frame = pd.concat(frames, axis=1) if frames else pd.DataFrame()
    frame = frame.loc[:, ~frame.columns.duplicated()].dropna(axis=1, how="all")
    return frame.reindex(pd.Index(np.asarray(survey_ids, "int64")))


def read_series_csvs(kind, paths, survey_ids):
    """Time series CSVs -> (N, steps, channels) float32 in time order.

    "climate": CSVs of `Bio-{pr,tas,tasmax,tasmin}_{MM}_{YYYY}` columns, to
    (N, years * 12, 4). "landsat": `{band: [paths]}` of per-band CSVs of
    `YYYY_Q` columns, to (N, years * 4, 6).
    """
    import pandas as pd

    columns = {}  # (year, step, channel) -> column of `frame`
    if kind == "climate":
        frame = read_rows(paths, survey_ids)
        for column in frame.columns:
            if match := CLIMATE_COLUMN_RE.match(column):
                var, month, year = match.groups()
                key = (int(year), int(month), CLIMATE_VARIABLES.index(var.lower()))
                columns[key] = column
        expected, per_year = "'Bio-{pr,tas,tasmax,tasmin}_{MM}_{YYYY}'", 12
    else:
        frames = []
        for band, band_paths in paths.items():
            frame = read_rows(band_paths, survey_ids).add_prefix(f"{band}:")
            frames.append(frame)
            for column in frame.columns:
                if match := LANDSAT_COLUMN_RE.match(column.split(":", 1)[1]):
                    key = (int(match[1]), int(match[2]), LANDSAT_BANDS.index(band))
                    columns[key] = column
        frame = pd.concat(frames, axis=1)
        expected, per_year = "'YYYY_Q'", 4
    if not columns:
        raise ValueError(
            f"The {kind} CSVs {[str(p) for p in paths]} have no {expected} "
            f"columns; found {list(frame.columns)[:6]}."
        )
    channels = len(CLIMATE_VARIABLES if kind == "climate" else LANDSAT_BANDS)
    years = sorted({year for year, _, _ in columns})
    order = [
        columns.get((year, step, c), "__absent__")
        for year in years
        for step in range(1, per_year + 1)
        for c in range(channels)
    ]
    ids = pd.Index(np.asarray(survey_ids, "int64"))
    values = frame.reindex(index=ids, columns=order).to_numpy(
        "float64", na_value=np.nan
    )
    return to_float32(values).reshape(len(ids), -1, channels)


def read_cube(path, kind):
    """A `*_cube.pt` tensor as time-major (steps, channels) float32.

    Climate cubes [4 variables, years, 12 months] become (years * 12, 4);
    Landsat cubes [6 bands, 4 quarters, years] become (years * 4, 6).
    """
    import torch  # Only the .pt cubes need it.

    values = torch.load(path, map_location="cpu", weights_only=True).numpy()
    climate = kind == "climate"
    expected = (4, None, 12) if climate else (6, 4, None)
    if values.ndim != 3 or any(
        e not in (None, n) for e, n in zip(expected, values.shape)
    ):
        what = (
            "4 variables, years, 12 months" if climate else "6 bands, 4 quarters, years"
        )
        raise ValueError(
            f"The {kind} cube '{path}' has shape {values.shape}; expected [{what}]."
        )
    values = values.transpose((1, 2, 0) if climate else (2, 1, 0))
    return to_float32(values.reshape(-1, values.shape[-1]))


def index_cubes(folders):
    """{surveyId: path} of the `*_cube.pt` files in `folders`."""
    index = {}
    for folder in folders:
        for entry in os.scandir(folder):
            if match := CUBE_RE.search(entry.name):
                index.setdefault(int(match.group(1)), entry.path)
    return index


def patch_subpath(survey_id, extension):
    """GeoLifeCLEF's patch path, `{CD}/{AB}/{id}{ext}`.

    CD are the last two digits of the id and AB the two before them (fewer
    for short ids, as in the challenge's reference code).
    """
    text = str(int(survey_id))
    parts = [p for p in (text[-2:], text[-4:-2]) if p]
    return os.path.join(*parts, f"{text}{extension}")


def find_patch(folder):
    """(extension, surveyId) of the first patch under the `{CD}/{AB}` folders."""
    for top in sorted(os.listdir(folder)):
        if not DIGIT_DIR_RE.match(top):
            continue
        for _, dirnames, filenames in os.walk(os.path.join(folder, top)):
            dirnames.sort()
            for name in sorted(filenames):
                stem, extension = os.path.splitext(name)
                if extension.lower() in IMAGE_EXTENSIONS and stem.isdigit():
                    return extension, int(stem)
    return None, None


def _read_tiff(path):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            nodata = tif.pages[0].tags.get("GDAL_NODATA")
            values = tif.pages[0].asarray()
    except ValueError as error:
        if "imagecodecs" in str(error):
            raise ImportError(
                f"Reading the compressed patch '{path}' needs the 'imagecodecs' "
                "package: pip install keras-miam[geoplant]."
            ) from error
        raise
    nodata = float(str(nodata.value).strip("\x00 ")) if nodata else -1.0
    if values.ndim == 3 and values.shape[0] <= 4 < values.shape[-1]:
        values = values.transpose(1, 2, 0)  # planar (C, H, W) -> (H, W, C)
    values = values.reshape(values.shape[:2] + (-1,)).astype("float32")
    values[values == nodata] = np.nan
    return values


def _read_image(path, mode):
    from PIL import Image

    with Image.open(path) as image:
        values = np.asarray(image.convert(mode), dtype="float32")
    return values.reshape(values.shape[:2] + (-1,))


def _resize(values, size):
    from PIL import Image

    channels = [
        Image.fromarray(np.ascontiguousarray(values[..., c])).resize(
            (size, size), Image.Resampling.BILINEAR
        )
        for c in range(values.shape[-1])
    ]
    return np.stack([np.asarray(c) for c in channels], axis=-1)


_warned = set()


def read_patch(sources, survey_id, size=None):
    """The Sentinel-2 patch of one survey, (H, W, 4) float32 R, G, B, NIR.

    `sources` lists `(kind, folder, extension)`: "multiband" (a 4-band tiff,
    nodata -> NaN) or "rgb" + "nir" jpegs. A survey without a patch, or an
    unreadable file (warned once), gives NaN for the channels concerned; None
    when nothing is found and `size` is None. With `size`, patches of another
    size are resized (bilinear).
    """
    patch = None
    for kind, folder, extension in sources:
        path = os.path.join(folder, patch_subpath(survey_id, extension))
        if not os.path.exists(path):
            continue
        try:
            if kind == "multiband" and extension.lower() in (".tif", ".tiff"):
                values, first = _read_tiff(path)[..., :4], 0
            else:
                mode = "L" if kind == "nir" else "RGB"
                values, first = _read_image(path, mode), 3 if kind == "nir" else 0
        except (OSError, ValueError, SyntaxError) as error:
            if path not in _warned:
                _warned.add(path)
                warnings.warn(f"Could not read patch '{path}' ({error}); using NaN.")
            continue
        if patch is None:
            height, width = (size, size) if size else values.shape[:2]
            patch = np.full((height, width, 4), np.nan, "float32")
        if values.shape[:2] != patch.shape[:2]:
            values = _resize(values, patch.shape[0])
        patch[..., first : first + values.shape[-1]] = values
        if values.shape[-1] >= 4:
            break
    if patch is None and size:
        patch = np.full((size, size, 4), np.nan, "float32")
    return patch
