"""Readers of GeoPlant's CSVs, `.pt` cubes and patches: float32, NaN if missing."""

import os
import re
import warnings

import numpy as np
import pandas as pd
import tifffile  # with imagecodecs (the `geoplant` extra) for LZW
from PIL import Image

from keras_miam.missing import is_missing

CLIMATE_VARIABLES = ("pr", "tas", "tasmax", "tasmin")
LANDSAT_BANDS = ("red", "green", "blue", "nir", "swir1", "swir2")
IMAGE_CHANNELS = ("red", "green", "blue", "nir")
IMAGE_EXTENSIONS = (".tiff", ".tif", ".jpeg", ".jpg", ".png")
DIGIT_DIR_RE = re.compile(r"^\d{1,2}$")
CUBE_RE = re.compile(r"_(\d+)_cube\.pt$")
# Series CSV columns: channel `c`, year `y`, month or quarter `s`.
SERIES_COLUMN_RE = {
    "climate": re.compile(
        r"^bio-(?P<c>pr|tas|tasmax|tasmin)_(?P<s>\d\d?)_(?P<y>\d{4})$"
    ),
    "landsat": re.compile(r"^(?P<c>[a-z0-9]+):(?P<y>\d{4})_(?P<s>[1-4])$"),
}


def to_float32(values):
    """float32 copy of `values`, NaN where `is_missing`."""
    values = np.asarray(values, "float64")
    return np.where(is_missing(values, xp=np), np.nan, values).astype("float32")


def read_csv(path, **kwargs):
    """`pandas.read_csv` with the separator (';', tab or ',') of the header."""
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    sep = max((";", "\t", ","), key=header.count)
    return pd.read_csv(path, sep=sep if header.count(sep) else ",", **kwargs)


def read_rows(paths, survey_ids):
    """Numeric rows of CSVs (in chunks) for `survey_ids`, indexed by surveyId."""
    wanted, kept = pd.Index(np.asarray(survey_ids, "int64")), []
    for path in paths:
        for chunk in read_csv(path, chunksize=20000, low_memory=False):
            chunk.columns = [str(c).strip() for c in chunk.columns]
            ids = pd.to_numeric(chunk.pop("surveyId"), errors="coerce")
            keep = ids.isin(wanted)
            kept.append(chunk[keep].set_axis(ids[keep].astype("int64"), axis=0))
    frame = pd.concat(kept) if kept else pd.DataFrame()
    return frame[~frame.index.duplicated()].apply(pd.to_numeric, errors="coerce")


def read_env_table(paths, survey_ids):
    """Joins environmental CSVs on surveyId (first file wins), a row per id."""
    frame = pd.concat([read_rows([path], survey_ids) for path in paths], axis=1)
    frame = frame.loc[:, ~frame.columns.duplicated()].dropna(axis=1, how="all")
    return frame.reindex(pd.Index(np.asarray(survey_ids, "int64")))


def read_series_csvs(kind, paths, ids):
    """Series CSVs as `(N, steps, channels)` float32 in time order: "climate"
    CSVs of `Bio-{var}_{MM}_{YYYY}` columns, or "landsat" `{band: [paths]}`
    of `YYYY_Q` columns."""
    if kind == "climate":
        frame, channels, steps = read_rows(paths, ids), CLIMATE_VARIABLES, 12
    else:
        frames = [read_rows(p, ids).add_prefix(f"{b}:") for b, p in paths.items()]
        frame, channels, steps = pd.concat(frames, axis=1), LANDSAT_BANDS, 4
    found = {}  # (year, step, channel) -> column
    for column in frame.columns:
        if match := SERIES_COLUMN_RE[kind].match(column.lower()):
            found[int(match["y"]), int(match["s"]), channels.index(match["c"])] = column
    if not found:
        raise ValueError(
            f"The {kind} CSVs {[str(p) for p in paths]} have no dated columns "
            f"(see `read_series_csvs`); found {list(frame.columns)[:6]}."
        )
    order = [
        found.get((year, step, c), "")
        for year in sorted({year for year, _, _ in found})
        for step in range(1, steps + 1)
        for c in range(len(channels))
    ]
    ids = pd.Index(np.asarray(ids, "int64"))
    values = to_float32(frame.reindex(index=ids, columns=order))
    return values.reshape(len(ids), -1, len(channels))


def read_cube(path, kind):
    """A `*_cube.pt` tensor as time-major `(steps, channels)` float32."""
    import torch  # only the .pt cubes need it

    values = torch.load(path, map_location="cpu", weights_only=True).numpy()
    climate = kind == "climate"
    expected = {0: 4, 2: 12} if climate else {0: 6, 1: 4}
    if values.ndim != 3 or any(values.shape[a] != n for a, n in expected.items()):
        what = (
            "4 variables, years, 12 months" if climate else "6 bands, 4 quarters, years"
        )
        raise ValueError(
            f"The {kind} cube '{path}' has shape {values.shape}; expected [{what}]."
        )
    values = values.transpose((1, 2, 0) if climate else (2, 1, 0))
    return to_float32(values.reshape(-1, values.shape[-1]))


def index_cubes(folders):
    """`{surveyId: path}` of the `*_cube.pt` files in `folders`."""
    index = {}
    for folder in folders:
        for entry in os.scandir(folder):
            if match := CUBE_RE.search(entry.name):
                index.setdefault(int(match.group(1)), entry.path)
    return index


def patch_subpath(survey_id, extension):
    """GeoLifeCLEF's `{CD}/{AB}/{id}{ext}`: CD the id's last two digits, AB the
    two before (fewer for short ids, as in the challenge's reference code)."""
    text = str(int(survey_id))
    return os.path.join(*filter(None, (text[-2:], text[-4:-2])), text + extension)


def find_patch(folder):
    """`(extension, surveyId)` of the first patch under `{CD}/{AB}` folders."""
    for top in sorted(filter(DIGIT_DIR_RE.match, os.listdir(folder))):
        for _, dirnames, filenames in os.walk(os.path.join(folder, top)):
            dirnames.sort()
            for stem, extension in map(os.path.splitext, sorted(filenames)):
                if extension.lower() in IMAGE_EXTENSIONS and stem.isdigit():
                    return extension, int(stem)
    return None, None


def _read_file(path, kind):
    """A patch file as `(H, W, C)` float32, a tiff's nodata as NaN."""
    if kind != "multiband" or not path.lower().endswith((".tif", ".tiff")):
        with Image.open(path) as image:
            values = np.asarray(image.convert("L" if kind == "nir" else "RGB"))
        return values.reshape(values.shape[:2] + (-1,)).astype("float32")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        nodata = page.nodata if "GDAL_NODATA" in page.tags else -1
        values = page.asarray()
    if values.ndim == 3 and values.shape[0] <= 4 < values.shape[-1]:
        values = values.transpose(1, 2, 0)  # planar (C, H, W) -> (H, W, C)
    values = values.reshape(values.shape[:2] + (-1,)).astype("float32")
    values[values == nodata] = np.nan
    return values[..., :4]


def read_patch(sources, survey_id, size=None):
    """The `(H, W, 4)` float32 R, G, B, NIR patch of a survey (resized to `size`).

    `sources` lists `(kind, folder, extension)`. Channels without a file, or
    with an unreadable one (warned), are NaN; None if none and no `size`.
    """
    patch = None if size is None else np.full((size, size, 4), np.nan, "float32")
    for kind, folder, extension in sources:
        path = os.path.join(folder, patch_subpath(survey_id, extension))
        try:
            values = _read_file(path, kind) if os.path.exists(path) else None
        except (OSError, ValueError, SyntaxError) as error:
            warnings.warn(f"Could not read patch '{path}' ({error}); using NaN.")
            continue
        if values is None:
            continue
        if patch is None:
            patch = np.full(values.shape[:2] + (4,), np.nan, "float32")
        if values.shape[:2] != patch.shape[:2]:  # bilinear, channel by channel
            channels = [Image.fromarray(c) for c in values.transpose(2, 0, 1)]
            channels = [c.resize(patch.shape[1::-1], Image.BILINEAR) for c in channels]
            values = np.stack(channels, axis=-1)
        first = 3 if kind == "nir" else 0
        patch[..., first : first + values.shape[-1]] = values
        if values.shape[-1] >= 4:
            break
    return patch
