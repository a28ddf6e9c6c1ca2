"""Writers of small datasets in the true GeoPlant and TaxaBench layouts.

Shared by the loader tests (`test_datasets_geoplant.py`) and the end-to-end
tests of the examples (`test_examples.py`). Values are known functions of
the survey id, so tests can check what the loaders read.
"""

from pathlib import Path

import numpy as np
import pandas as pd

TRAIN_IDS = [
    7,
    101,
    2345,
    30077,
    412388,
    1027998,
    60012,
    812345,
    999999,
    123456,
]
TEST_IDS = [5000001, 5000002, 5000003, 5000108]
YEARS_CLIMATE = list(range(2000, 2019))  # 19 years
YEARS_LANDSAT = list(range(2000, 2021))  # 21 years
BANDS = ("red", "green", "blue", "nir", "swir1", "swir2")
VARS = ("pr", "tas", "tasmax", "tasmin")
SIZE = 16
NO_PATCH = {999999, 5000003}
NO_CUBE = {123456}
NO_ELEVATION = {60012}


def patch_path(folder, survey_id, extension):
    text = str(survey_id)
    parts = [p for p in (text[-2:], text[-4:-2]) if p]
    return Path(folder, *parts, f"{text}{extension}")


def climate_cube(survey_id):
    """Known [4, 19, 12] cube: value encodes (variable, year, month)."""
    v, y, m = np.meshgrid(np.arange(4), np.arange(19), np.arange(12), indexing="ij")
    return (1000 * v + 10 * y + m / 12 + survey_id % 97).astype("float32")


def landsat_cube(survey_id):
    """Known [6, 4, 21] cube: value encodes (band, quarter, year)."""
    b, q, y = np.meshgrid(np.arange(6), np.arange(4), np.arange(21), indexing="ij")
    return (100 * b + 4 * y + q + survey_id % 13).astype("float32")


def tiff_patch(survey_id):
    rng = np.random.default_rng(survey_id)
    values = rng.integers(0, 3000, (SIZE, SIZE, 4)).astype("int16")
    values[0, :3, :] = -1  # nodata pixels
    return values


def smooth_patch(survey_id):
    """Smooth uint8 RGB+NIR pattern (jpeg-friendly), distinct per channel."""
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    channels = [40 * c + 4 * rows + (2 + c) * cols + survey_id % 20 for c in range(4)]
    return np.stack(channels, axis=-1).astype("uint8")


def species_of(survey_id):
    """Species 1 in every survey, 2 in most, ..., 6 in few."""
    return [float(s) for s in range(1, 7) if (survey_id + s) % s == 0 or s == 1]


def write_metadata(path, ids, with_species=True):
    rows = []
    for survey in ids:
        for species in species_of(survey) if with_species else [None]:
            row = {
                "lon": 5.0,
                "lat": 45.0,
                "year": 2019,
                "geoUncertaintyInM": 10.0,
                "areaInM2": 100.0,
                "region": "ALPINE",
                "country": "France",
                "speciesId": species,
                "surveyId": survey,
            }
            if not with_species:
                row.pop("speciesId")
            rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def env_frames(ids):
    bio = pd.DataFrame(
        {"surveyId": ids, "Bio1": np.arange(len(ids)) * 1.5, "Bio2": 10.0}
    )
    bio.loc[1, "Bio1"] = -np.inf
    bio.loc[2, "Bio2"] = np.nan
    elevation = pd.DataFrame(
        {
            "surveyId": [i for i in ids if i not in NO_ELEVATION],
            "Elevation": 300.0,
        }
    )
    elevation.loc[0, "Elevation"] = -3.4e38  # nodata
    soil_old = pd.DataFrame({"surveyId": ids, "Soilgrid-old": 1.0})
    soil = pd.DataFrame(
        {"surveyId": ids, "Soilgrid-phh2o": np.linspace(50, 80, len(ids))}
    )
    return bio, elevation, soil_old, soil


def write_geoplant_release(
    root,
    style="glc25",
    cube_series=True,
    csv_series=True,
    train_ids=TRAIN_IDS,
    test_ids=TEST_IDS,
):
    """Writes a small GeoPlant presence-absence release under `root`.

    `style="glc25"`: `PresenceAbsenceSurveys/PA_metadata_{train,test_iid}.csv`,
    `EnvironmentalValues/`, bioclimatic and Landsat CSVs and/or cubes, and
    4-band int16 tiff patches (nodata -1). `style="glc24"`:
    `GLC24-PA-metadata-*.csv`, `EnvironmentalRasters/`, the GLC24 cube
    folders and RGB + NIR jpegs. Surveys in `NO_PATCH`, `NO_CUBE` and
    `NO_ELEVATION` lack the patch, the cubes or the elevation row. Needs
    at least three surveys per split.

    Returns:
        `root` as a `Path`.
    """
    import torch

    root = Path(root)
    for family, ids in (("train", list(train_ids)), ("test", list(test_ids))):
        fam = family if style == "glc25" else family.capitalize()
        # Metadata.
        if style == "glc25":
            name = (
                "PA_metadata_train.csv"
                if family == "train"
                else "PA_metadata_test_iid.csv"
            )
        else:
            name = f"GLC24-PA-metadata-{family}.csv"
        write_metadata(root / "PresenceAbsenceSurveys" / name, ids)
        # Environmental values.
        env_root = root / (
            "EnvironmentalValues"
            if style == "glc25"
            else "EnvironmentalRasters/EnvironmentalRasters"
        )
        bio, elevation, soil_old, soil = env_frames(ids)
        for rel, frame in (
            (f"Climate/PA-{family}-bioclimatic.csv", bio),
            (f"Elevation/PA-{family}-elevation.csv", elevation),
            (f"SoilGrids/PA-{family}-soilgrids.csv", soil_old),
            (f"SoilGrids/v2/PA-{family}-soilgrids.csv", soil),
        ):
            (env_root / rel).parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(env_root / rel, index=False)
        # Time series CSVs (columns deliberately out of order).
        if csv_series:
            columns = {"surveyId": ids}
            for y_i, year in enumerate(YEARS_CLIMATE):
                for month in range(12):
                    for v_i, var in enumerate(VARS):
                        columns[f"Bio-{var}_{month + 1:02d}_{year}"] = [
                            climate_cube(i)[v_i, y_i, month] for i in ids
                        ]
            frame = pd.DataFrame(columns)
            frame = frame[["surveyId"] + sorted(frame.columns[1:], reverse=True)]
            path = (
                root
                / f"BioclimTimeSeries/values/GLC25-PA-{family}-bioclimatic_monthly.csv"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
            for b_i, band in enumerate(BANDS):
                columns = {"surveyId": ids}
                for y_i, year in enumerate(YEARS_LANDSAT):
                    for q in range(4):
                        columns[f"{year}_{q + 1}"] = [
                            landsat_cube(i)[b_i, q, y_i] for i in ids
                        ]
                path = root / (
                    "SateliteTimeSeries-Landsat/values/"
                    f"GLC25-PA-{family}-landsat_time_series-{band}.csv"
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                pd.DataFrame(columns).to_csv(path, index=False)
        # Time series cubes.
        if cube_series:
            if style == "glc25":
                clim_dir = root / f"BioclimTimeSeries/cubes/PA-{family}"
                land_dir = root / f"SateliteTimeSeries-Landsat/cubes/PA-{family}"
            else:
                base = root / "TimeSeries-Cubes/TimeSeries-Cubes"
                clim_dir = base / f"GLC24-PA-{family}-bioclimatic_monthly"
                land_dir = base / f"GLC24-PA-{family}-landsat_time_series"
            clim_dir.mkdir(parents=True, exist_ok=True)
            land_dir.mkdir(parents=True, exist_ok=True)
            for i in ids:
                if i in NO_CUBE:
                    continue
                torch.save(
                    torch.from_numpy(climate_cube(i)),
                    clim_dir / f"GLC25-PA-{family}-bioclimatic_monthly_{i}_cube.pt",
                )
                torch.save(
                    torch.from_numpy(landsat_cube(i)),
                    land_dir / f"GLC25-PA-{family}-landsat-time-series_{i}_cube.pt",
                )
        # Sentinel-2 patches.
        for i in ids:
            if i in NO_PATCH:
                continue
            if style == "glc25":
                import tifffile

                path = patch_path(root / f"SatelitePatches/PA-{family}", i, ".tiff")
                path.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(path, tiff_patch(i), metadata=None)
            else:
                from PIL import Image

                patch = smooth_patch(i)
                rgb = patch_path(
                    root / f"PA_{fam}_SatellitePatches_RGB/pa_{family}_patches_rgb",
                    i,
                    ".jpeg",
                )
                nir = patch_path(
                    root / f"PA_{fam}_SatellitePatches_NIR/pa_{family}_patches_nir",
                    i,
                    ".jpeg",
                )
                rgb.parent.mkdir(parents=True, exist_ok=True)
                nir.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(patch[..., :3]).save(rgb, quality=95)
                Image.fromarray(patch[..., 3]).save(nir, quality=95)
    return root


TAXABENCH_DIMS = {
    "location": 3,
    "environment": 5,
    "image": 8,
    "audio": 4,
    "satellite": 6,
}


def write_taxabench(root, sizes, num_classes=4, seed=0):
    """Writes TaxaBench-8k style embeddings: `root/{split}/{modality}.npy`.

    Each split folder holds one `(N, E_m)` float32 array per modality
    (`TAXABENCH_DIMS`) and `labels.npy` (N,) int64 class ids. Every modality
    carries the class (a class centre plus noise, stronger in the ground
    image than in the others), a third of the audio rows are missing (NaN)
    and every class occurs in each split of at least `num_classes` rows.

    Args:
        root: folder to write into.
        sizes: dict `{split: number of examples}`.
        num_classes: number of classes.
        seed: seeds the embeddings.

    Returns:
        `root` as a `Path`.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    centres = {
        name: rng.normal(size=(num_classes, dim))
        for name, dim in TAXABENCH_DIMS.items()
    }
    strength = {"image": 1.5}
    for split, n in sizes.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        labels = np.arange(n) % num_classes
        rng.shuffle(labels)
        for name, dim in TAXABENCH_DIMS.items():
            values = strength.get(name, 0.6) * centres[name][labels]
            values = values + rng.normal(size=(n, dim))
            if name == "audio":
                values[::3] = np.nan
            np.save(folder / f"{name}.npy", values.astype("float32"))
        np.save(folder / "labels.npy", labels.astype("int64"))
    return root
