"""Readers of the GeoPlant files: names, path rules, CSVs, cubes, patches."""

import os
import re
import warnings

import numpy as np
import pandas as pd

from keras_miam.datasets.checks import clean_values

CLIMATE_VARIABLES = ("pr", "tas", "tasmax", "tasmin")
LANDSAT_BANDS = ("red", "green", "blue", "nir", "swir1", "swir2")
IMAGE_CHANNELS = ("red", "green", "blue", "nir")
IMAGE_EXTENSIONS = (".tiff", ".tif", ".jpeg", ".jpg", ".png")

SPLIT_RE = re.compile(r"(?<![a-z0-9])(train|test|val)(?![a-z])")
PRESENCE_ONLY_RE = re.compile(r"(?<![a-z0-9])p[o0](?![a-z0-9])")
VERSION_RE = re.compile(r"^v(\d+)$")
DIGIT_DIR_RE = re.compile(r"^\d{1,2}$")
CUBE_RE = re.compile(r"_(\d+)_cube\.pt$")
CLIMATE_COLUMN_RE = re.compile(
    r"^bio-(pr|tas|tasmax|tasmin)_(\d{1,2})_(\d{4})$", re.IGNORECASE
)
LANDSAT_COLUMN_RE = re.compile(r"^(\d{4})_([1-4])$")


def normalise(path):
    """Lower-cases a relative path and reads '-' and ' ' as '_'."""
    return re.sub(r"[-\s]+", "_", str(path).lower())


def split_family(path):
    """Returns 'train', 'test' or 'val' as named by the deepest path part."""
    found = SPLIT_RE.findall(normalise(path))
    return found[-1] if found else None


def is_presence_only(path):
    return PRESENCE_ONLY_RE.search(normalise(path)) is not None


def sniff_separator(path):
    """Reads the header line and returns ';', '\\t' or ','."""
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    counts = {sep: header.count(sep) for sep in (";", "\t", ",")}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def patch_subpath(survey_id, extension):
    """GeoLifeCLEF patch path rule: '{CD}/{AB}/{id}{ext}'.

    CD are the last two digits of the id and AB the two before them (fewer
    for short ids, as in the challenge's reference code).
    """
    text = str(int(survey_id))
    parts = [p for p in (text[-2:], text[-4:-2]) if p]
    return os.path.join(*parts, f"{text}{extension}")


def read_csv(path, **kwargs):
    """pandas.read_csv with the separator sniffed from the header."""
    return pd.read_csv(path, sep=sniff_separator(path), low_memory=False, **kwargs)


def index_cubes(folders):
    """{surveyId: path} of the `*_cube.pt` files in `folders`."""
    index = {}
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in entries:
                match = CUBE_RE.search(entry.name)
                if match:
                    index.setdefault(int(match.group(1)), entry.path)
    return index


def find_patch(folder):
    """(extension, surveyId) of the first patch file under {CD}/{AB} dirs."""
    for level1 in sorted(os.scandir(folder), key=lambda e: e.name):
        if not (level1.is_dir() and DIGIT_DIR_RE.match(level1.name)):
            continue
        stack = [level1.path]
        while stack:
            current = stack.pop()
            for entry in sorted(os.scandir(current), key=lambda e: e.name):
                if entry.is_dir():
                    stack.append(entry.path)
                elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                    stem, extension = os.path.splitext(entry.name)
                    if stem.isdigit():
                        return extension, int(stem)
    return None, None


def climate_columns(columns):
    """Orders `Bio-{var}_{MM}_{YYYY}` columns as (year, month, variable)."""
    parsed = {}
    for column in columns:
        match = CLIMATE_COLUMN_RE.match(str(column))
        if match:
            var, month, year = match.groups()
            parsed[(int(year), int(month), var.lower())] = column
    if not parsed:
        return [], 0
    years = sorted({k[0] for k in parsed})
    ordered = []
    for year in years:
        for month in range(1, 13):
            for var in CLIMATE_VARIABLES:
                ordered.append(parsed.get((year, month, var)))
    return ordered, len(years)


def landsat_columns(columns):
    """Orders `YYYY_Q` columns as (year, quarter)."""
    parsed = {}
    for column in columns:
        match = LANDSAT_COLUMN_RE.match(str(column).strip())
        if match:
            parsed[(int(match.group(1)), int(match.group(2)))] = column
    if not parsed:
        return [], 0
    years = sorted({k[0] for k in parsed})
    ordered = [parsed.get((y, q)) for y in years for q in range(1, 5)]
    return ordered, len(years)


def read_table_rows(path, survey_ids, key="surveyId", chunksize=20000):
    """Reads the rows of a CSV whose `key` is in `survey_ids`.

    Returns a DataFrame indexed by the integer key (first row kept for a
    duplicated id), streaming the file in chunks so that only the wanted
    rows are held in memory.
    """
    wanted = pd.Index(np.asarray(survey_ids, dtype="int64"))
    kept = []
    reader = pd.read_csv(
        path, sep=sniff_separator(path), chunksize=chunksize, low_memory=False
    )
    for chunk in reader:
        chunk.columns = [str(c).strip() for c in chunk.columns]
        if key not in chunk.columns:
            raise ValueError(
                f"'{path}' has no '{key}' column; found columns "
                f"{list(chunk.columns)[:8]}"
                f"{'...' if chunk.shape[1] > 8 else ''}."
            )
        ids = pd.to_numeric(chunk[key], errors="coerce")
        chunk = chunk[ids.isin(wanted)]
        chunk.index = ids[ids.isin(wanted)].astype("int64")
        kept.append(chunk.drop(columns=[key]))
    frame = pd.concat(kept) if kept else pd.DataFrame()
    frame = frame[~frame.index.duplicated(keep="first")]
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def read_env_table(paths, survey_ids):
    """Joins environmental CSVs on surveyId; rows in `survey_ids` order."""
    frames, names = [], set()
    for path in paths:
        frame = read_table_rows(path, survey_ids)
        numeric = [
            c
            for c in frame.columns
            if pd.api.types.is_numeric_dtype(frame[c]) and c not in names
        ]
        names.update(numeric)
        frames.append(frame[numeric])
    frame = pd.concat(frames, axis=1) if frames else pd.DataFrame()
    frame = frame.reindex(pd.Index(np.asarray(survey_ids, dtype="int64")))
    return frame


def read_climate_csv(paths, survey_ids):
    """Monthly series `Bio-{var}_{MM}_{YYYY}` -> (N, years * 12, 4)."""
    parts = []
    for path in paths:
        frame = read_table_rows(path, survey_ids)
        ordered, years = climate_columns(frame.columns)
        if not years:
            raise ValueError(
                f"'{path}' has no "
                "'Bio-{pr,tas,tasmax,tasmin}_{MM}_{YYYY}' "
                f"columns; found {list(frame.columns)[:6]}..."
            )
        parts.append((frame, ordered, years))
    frame = pd.concat([p[0] for p in parts])
    frame = frame[~frame.index.duplicated(keep="first")]
    ordered, years = parts[0][1], parts[0][2]
    frame = frame.reindex(
        index=pd.Index(np.asarray(survey_ids, dtype="int64")),
        columns=[c if c is not None else "__absent__" for c in ordered],
    )
    values = clean_values(frame.to_numpy(dtype="float64", na_value=np.nan))
    return values.reshape(len(survey_ids), years * 12, len(CLIMATE_VARIABLES))


def read_landsat_csvs(band_paths, survey_ids):
    """Per-band quarterly CSVs `YYYY_Q` -> (N, years * 4, 6)."""
    index = pd.Index(np.asarray(survey_ids, dtype="int64"))
    bands, steps = [], None
    for band in LANDSAT_BANDS:
        frames = [read_table_rows(p, survey_ids) for p in band_paths[band]]
        frame = pd.concat(frames)
        frame = frame[~frame.index.duplicated(keep="first")]
        ordered, years = landsat_columns(frame.columns)
        if not years:
            raise ValueError(
                f"{[str(p) for p in band_paths[band]]} have no 'YYYY_Q' "
                f"columns; found {list(frame.columns)[:6]}..."
            )
        if steps is None:
            steps = ordered
        columns = [c if c is not None else "__absent__" for c in steps]
        frame = frame.reindex(index=index, columns=columns)
        bands.append(clean_values(frame.to_numpy(dtype="float64", na_value=np.nan)))
    return np.stack(bands, axis=-1)


def read_cube(path, kind):
    """Reads a `*_cube.pt` tensor into a time-major (steps, channels) array.

    Climate cubes are [4 variables, years, 12 months] and become
    (years * 12, 4); Landsat cubes are [6 bands, 4 quarters, years] and
    become (years * 4, 6).
    """
    import torch  # Only needed for the .pt cubes.

    tensor = torch.load(path, map_location="cpu", weights_only=True)
    values = np.asarray(tensor.detach().cpu().numpy(), dtype="float64")
    if kind == "climate":
        if values.ndim != 3 or values.shape[0] != 4 or values.shape[2] != 12:
            raise ValueError(
                f"Bioclimatic cube '{path}' has shape {values.shape}; expected "
                "[4 variables, years, 12 months] (e.g. [4, 19, 12])."
            )
        values = values.transpose(1, 2, 0).reshape(-1, 4)
    else:
        if values.ndim != 3 or values.shape[0] != 6 or values.shape[1] != 4:
            raise ValueError(
                f"Landsat cube '{path}' has shape {values.shape}; expected "
                "[6 bands, 4 quarters, years] (e.g. [6, 4, 21])."
            )
        values = values.transpose(2, 1, 0).reshape(-1, 6)
    return clean_values(values)


def _read_tiff(path):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            nodata = page.tags.get("GDAL_NODATA")
            values = page.asarray()
    except ValueError as error:
        if "imagecodecs" in str(error):
            raise ImportError(
                f"Reading the compressed patch '{path}' needs the "
                "'imagecodecs' package (pip install imagecodecs)."
            ) from error
        raise
    nodata = float(str(nodata.value).strip("\x00 ")) if nodata else -1.0
    if values.ndim == 3 and values.shape[0] <= 4 < values.shape[-1]:
        values = values.transpose(1, 2, 0)  # planar (C, H, W) -> (H, W, C)
    if values.ndim == 2:
        values = values[..., None]
    values = values.astype("float32")
    values[values == nodata] = np.nan
    return values


def _read_jpeg(path, mode):
    from PIL import Image

    with Image.open(path) as image:
        values = np.asarray(image.convert(mode), dtype="float32")
    return values if values.ndim == 3 else values[..., None]


def _resize(values, size):
    from PIL import Image

    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(values[..., c])).resize(
                (size, size), Image.Resampling.BILINEAR
            )
        )
        for c in range(values.shape[-1])
    ]
    return np.stack(channels, axis=-1)


_warned = set()


def read_patch(sources, survey_id, size=None):
    """Reads the Sentinel-2 patch of one survey as (H, W, 4) float32.

    `sources` is a list of `(kind, folder, extension)`: 'multiband' (a
    4-band R, G, B, NIR tiff, nodata -> NaN) or 'rgb' + 'nir' jpegs (stacked
    as R, G, B, NIR). A survey without a patch, or an unreadable file, gives
    NaN (missing) for the channels concerned. With `size`, patches of
    another size are resized (bilinear).
    """
    patch = None
    for kind, folder, extension in sources:
        path = os.path.join(folder, patch_subpath(survey_id, extension))
        if not os.path.exists(path):
            continue
        try:
            if kind == "multiband":
                values = (
                    _read_tiff(path)
                    if extension.lower() in (".tif", ".tiff")
                    else _read_jpeg(path, "RGB")
                )
                channels = slice(0, min(4, values.shape[-1]))
                values = values[..., : channels.stop]
            elif kind == "rgb":
                values, channels = _read_jpeg(path, "RGB"), slice(0, 3)
            else:
                values, channels = _read_jpeg(path, "L"), slice(3, 4)
        except (OSError, ValueError, SyntaxError) as error:
            if path not in _warned:
                _warned.add(path)
                warnings.warn(
                    f"Could not read patch '{path}' ({error}); using NaN.",
                    stacklevel=2,
                )
            continue
        if patch is None:
            height, width = (size, size) if size else values.shape[:2]
            patch = np.full((height, width, 4), np.nan, "float32")
        if values.shape[:2] != patch.shape[:2]:
            values = _resize(values, patch.shape[0])
        patch[..., channels] = values
        if kind == "multiband" and values.shape[-1] >= 4:
            break
    if patch is None and size:
        patch = np.full((size, size, 4), np.nan, "float32")
    return patch
