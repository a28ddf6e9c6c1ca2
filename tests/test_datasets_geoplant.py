"""Tests of the GeoPlant loader on files written in the true layout."""

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from keras_miam.datasets import GeoPlantDataset
from keras_miam.datasets import load_geoplant
from keras_miam.datasets import geoplant_utils

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


def _patch_path(folder, survey_id, extension):
    text = str(survey_id)
    parts = [p for p in (text[-2:], text[-4:-2]) if p]
    return Path(folder, *parts, f"{text}{extension}")


def _climate(survey_id):
    """Known [4, 19, 12] cube: value encodes (variable, year, month)."""
    v, y, m = np.meshgrid(
        np.arange(4), np.arange(19), np.arange(12), indexing="ij"
    )
    return (1000 * v + 10 * y + m / 12 + survey_id % 97).astype("float32")


def _landsat(survey_id):
    """Known [6, 4, 21] cube: value encodes (band, quarter, year)."""
    b, q, y = np.meshgrid(
        np.arange(6), np.arange(4), np.arange(21), indexing="ij"
    )
    return (100 * b + 4 * y + q + survey_id % 13).astype("float32")


def _patch(survey_id):
    rng = np.random.default_rng(survey_id)
    values = rng.integers(0, 3000, (SIZE, SIZE, 4)).astype("int16")
    values[0, :3, :] = -1  # nodata pixels
    return values


def _smooth_patch(survey_id):
    """Smooth uint8 RGB+NIR pattern (jpeg-friendly), distinct per channel."""
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    channels = [
        40 * c + 4 * rows + (2 + c) * cols + survey_id % 20 for c in range(4)
    ]
    return np.stack(channels, axis=-1).astype("uint8")


def _species(survey_id):
    """Species 1 in every survey, 2 in most, ..., 6 in few."""
    return [float(s) for s in range(1, 7) if (survey_id + s) % s == 0 or s == 1]


def _write_metadata(path, ids, with_species=True):
    rows = []
    for survey in ids:
        for species in _species(survey) if with_species else [None]:
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


def _env_frames(ids):
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


def _write_release(root, style="glc25", cube_series=True, csv_series=True):
    import torch

    root = Path(root)
    for family, ids in (("train", TRAIN_IDS), ("test", TEST_IDS)):
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
        _write_metadata(root / "PresenceAbsenceSurveys" / name, ids)
        # Environmental values.
        env_root = root / (
            "EnvironmentalValues"
            if style == "glc25"
            else "EnvironmentalRasters/EnvironmentalRasters"
        )
        bio, elevation, soil_old, soil = _env_frames(ids)
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
                            _climate(i)[v_i, y_i, month] for i in ids
                        ]
            frame = pd.DataFrame(columns)
            frame = frame[
                ["surveyId"] + sorted(frame.columns[1:], reverse=True)
            ]
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
                            _landsat(i)[b_i, q, y_i] for i in ids
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
                land_dir = (
                    root / f"SateliteTimeSeries-Landsat/cubes/PA-{family}"
                )
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
                    torch.from_numpy(_climate(i)),
                    clim_dir
                    / f"GLC25-PA-{family}-bioclimatic_monthly_{i}_cube.pt",
                )
                torch.save(
                    torch.from_numpy(_landsat(i)),
                    land_dir
                    / f"GLC25-PA-{family}-landsat-time-series_{i}_cube.pt",
                )
        # Sentinel-2 patches.
        for i in ids:
            if i in NO_PATCH:
                continue
            if style == "glc25":
                import tifffile

                path = _patch_path(
                    root / f"SatelitePatches/PA-{family}", i, ".tiff"
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(path, _patch(i), metadata=None)
            else:
                from PIL import Image

                patch = _smooth_patch(i)
                rgb = _patch_path(
                    root
                    / f"PA_{fam}_SatellitePatches_RGB/pa_{family}_patches_rgb",
                    i,
                    ".jpeg",
                )
                nir = _patch_path(
                    root
                    / f"PA_{fam}_SatellitePatches_NIR/pa_{family}_patches_nir",
                    i,
                    ".jpeg",
                )
                rgb.parent.mkdir(parents=True, exist_ok=True)
                nir.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(patch[..., :3]).save(rgb, quality=95)
                Image.fromarray(patch[..., 3]).save(nir, quality=95)
    return root


@pytest.fixture(scope="module")
def glc25(tmp_path_factory):
    return _write_release(tmp_path_factory.mktemp("glc25"), "glc25")


@pytest.fixture(scope="module")
def glc24(tmp_path_factory):
    return _write_release(
        tmp_path_factory.mktemp("glc24"), "glc24", csv_series=False
    )


def _raw(root, split="train", **kwargs):
    kwargs = {
        "validation_fraction": 0.0,
        "normalize": False,
        "batch_size": 64,
        "shuffle": False,
        **kwargs,
    }
    return load_geoplant(root, split, **kwargs)


def _rows(dataset, survey_ids):
    return [list(dataset.survey_ids).index(i) for i in survey_ids]


def test_labels_and_species_selection(glc25):
    ds = _raw(glc25, modalities=("env",))
    counts = pd.Series(
        [s for i in TRAIN_IDS for s in _species(i)]
    ).value_counts()
    expected = sorted(counts.index, key=lambda s: (-counts[s], s))
    assert ds.species == [int(s) for s in expected]
    x, y = ds[0]
    assert y.shape == (len(TRAIN_IDS), len(expected)) and y.dtype == np.float32
    for row, survey in enumerate(ds.survey_ids):
        present = {int(s) for s in _species(int(survey))}
        assert {ds.species[k] for k in np.flatnonzero(y[row])} == present
    top = _raw(glc25, modalities=("env",), num_species=2)
    assert top.species == ds.species[:2] and top[0][1].shape[1] == 2
    chosen = _raw(glc25, modalities=("env",), species=[3, 1])
    np.testing.assert_array_equal(
        chosen[0][1], y[:, [ds.species.index(3), ds.species.index(1)]]
    )
    assert list(ds.surveys.index) == sorted(TRAIN_IDS)
    assert ds.surveys.loc[101, "country"] == "France"


def test_env_join_nan_mapping_and_versions(glc25):
    ds = _raw(glc25, modalities=("env",))
    assert ds.env_columns == ["Bio1", "Bio2", "Elevation", "Soilgrid-phh2o"]
    env = ds[0][0]["env"]
    assert env.shape == (len(TRAIN_IDS), 4) and env.dtype == np.float32
    bio, elevation, _, soil = _env_frames(TRAIN_IDS)
    for row, survey in enumerate(ds.survey_ids):
        k = TRAIN_IDS.index(int(survey))
        expected_bio1 = bio.loc[k, "Bio1"]
        if np.isfinite(expected_bio1):
            assert env[row, 0] == pytest.approx(expected_bio1)
        else:
            assert np.isnan(env[row, 0])  # -inf -> NaN
        assert np.isnan(env[row, 1]) == (k == 2)  # NaN stays NaN
        if survey in NO_ELEVATION or survey == TRAIN_IDS[0]:
            assert np.isnan(env[row, 2])  # absent row / -3.4e38 nodata
        else:
            assert env[row, 2] == 300.0
        assert env[row, 3] == pytest.approx(soil.loc[k, "Soilgrid-phh2o"])
    picked = _raw(glc25, modalities=("env",), env_columns=["Bio*"])
    assert picked.env_columns == ["Bio1", "Bio2"]


def test_series_csv_and_cubes_agree_in_time_order(glc25):
    csv = _raw(glc25, modalities=("climate", "landsat"), series_source="csv")
    cubes = _raw(
        glc25, modalities=("climate", "landsat"), series_source="cubes"
    )
    assert csv.input_shapes == {"climate": (228, 4), "landsat": (84, 6)}
    assert cubes.input_shapes == csv.input_shapes
    x_csv, x_cube = csv[0][0], cubes[0][0]
    for row, survey in enumerate(csv.survey_ids):
        climate = _climate(int(survey))  # [var, year, month]
        landsat = _landsat(int(survey))  # [band, quarter, year]
        expected_c = climate.transpose(1, 2, 0).reshape(228, 4)
        expected_l = landsat.transpose(2, 1, 0).reshape(84, 6)
        np.testing.assert_allclose(x_csv["climate"][row], expected_c, rtol=1e-6)
        np.testing.assert_allclose(x_csv["landsat"][row], expected_l, rtol=1e-6)
        if survey in NO_CUBE:
            assert np.isnan(x_cube["climate"][row]).all()
            assert np.isnan(x_cube["landsat"][row]).all()
        else:
            np.testing.assert_array_equal(
                x_cube["climate"][row], x_csv["climate"][row]
            )
            np.testing.assert_array_equal(
                x_cube["landsat"][row], x_csv["landsat"][row]
            )
    # Month 1 of 2000 then month 2: pr of Jan, Feb; tas of Jan 2001 at step 12.
    first = _climate(int(csv.survey_ids[0]))
    assert x_csv["climate"][0, 1, 0] == pytest.approx(first[0, 0, 1])
    assert x_csv["climate"][0, 12, 1] == pytest.approx(first[1, 1, 0])


def test_tiff_patches_nodata_and_missing(glc25):
    ds = _raw(glc25, modalities=("image",))
    assert ds.input_shapes == {"image": (SIZE, SIZE, 4)}
    image = ds[0][0]["image"]
    for row, survey in enumerate(ds.survey_ids):
        if survey in NO_PATCH:
            assert np.isnan(image[row]).all()
            continue
        expected = _patch(int(survey)).astype("float32")
        expected[expected == -1] = np.nan
        np.testing.assert_array_equal(image[row], expected)
        assert np.isnan(image[row, 0, :3]).all()
    resized = _raw(glc25, modalities=("image",), image_size=8)
    assert resized[0][0]["image"].shape == (len(TRAIN_IDS), 8, 8, 4)


def test_glc24_jpeg_and_cube_layout(glc24):
    from PIL import Image

    env = _raw(glc24, modalities=("env",))
    assert env.env_columns == ["Bio1", "Bio2", "Elevation", "Soilgrid-phh2o"]

    ds = _raw(glc24, modalities=("climate", "landsat", "image"))
    x, _ = ds[0]
    assert ds.input_shapes == {
        "climate": (228, 4),
        "landsat": (84, 6),
        "image": (SIZE, SIZE, 4),
    }
    rgb_root = glc24 / "PA_Train_SatellitePatches_RGB/pa_train_patches_rgb"
    nir_root = glc24 / "PA_Train_SatellitePatches_NIR/pa_train_patches_nir"
    for row, survey in enumerate(ds.survey_ids):
        if survey in NO_PATCH:
            assert np.isnan(x["image"][row]).all()
            continue
        rgb = np.asarray(Image.open(_patch_path(rgb_root, survey, ".jpeg")))
        nir = np.asarray(Image.open(_patch_path(nir_root, survey, ".jpeg")))
        np.testing.assert_array_equal(x["image"][row, ..., :3], rgb)
        np.testing.assert_array_equal(x["image"][row, ..., 3], nir)
        # Lossy jpeg, but channels in the right order.
        written = _smooth_patch(int(survey)).astype("float32")
        assert np.abs(x["image"][row] - written).mean() < 3
        if survey not in NO_CUBE:
            expected = _climate(int(survey)).transpose(1, 2, 0).reshape(228, 4)
            np.testing.assert_allclose(x["climate"][row], expected, rtol=1e-6)


def test_partial_jpeg_channels(tmp_path):
    root = _write_release(
        tmp_path, "glc24", csv_series=False, cube_series=False
    )
    survey = TRAIN_IDS[1]
    os.remove(
        _patch_path(
            root / "PA_Train_SatellitePatches_NIR/pa_train_patches_nir",
            survey,
            ".jpeg",
        )
    )
    ds = _raw(root, modalities=("image",))
    image = ds[0][0]["image"][_rows(ds, [survey])[0]]
    assert np.isnan(image[..., 3]).all() and not np.isnan(image[..., :3]).any()


def test_normalisation_uses_training_statistics(glc25):
    train = load_geoplant(glc25, "train", batch_size=64, shuffle=False)
    raw = _raw(glc25, validation_fraction=0.1)
    x_norm, _ = train[0]
    x_raw, _ = raw[0]
    assert len(train.survey_ids) == len(TRAIN_IDS) - 1  # one held out as val
    for name in ("env", "climate", "landsat"):
        flat = x_raw[name].reshape(-1, x_raw[name].shape[-1]).astype("float64")
        mean = np.nanmean(flat, axis=0)
        std = np.nanstd(flat, axis=0)
        std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1), std, 1.0)
        np.testing.assert_allclose(train.stats[name]["mean"], mean, rtol=1e-5)
        np.testing.assert_allclose(train.stats[name]["std"], std, rtol=1e-4)
        np.testing.assert_allclose(
            x_norm[name], (x_raw[name] - mean) / std, rtol=1e-4, atol=1e-4
        )
        assert np.array_equal(np.isnan(x_norm[name]), np.isnan(x_raw[name]))
    pixels = x_raw["image"].reshape(-1, 4).astype("float64")
    np.testing.assert_allclose(
        train.stats["image"]["mean"], np.nanmean(pixels, 0), rtol=1e-5
    )
    assert train.stats["species"] == train.species
    assert json.loads(json.dumps(train.stats)) == train.stats
    # Validation and test: the training statistics, given or recomputed.
    val = load_geoplant(glc25, "val", stats=train.stats, batch_size=64)
    assert len(val.survey_ids) == 1
    assert not set(val.survey_ids) & set(train.survey_ids)
    test_given = load_geoplant(
        glc25, "test_iid", stats=train.stats, batch_size=64
    )
    test_computed = load_geoplant(glc25, "test_iid", batch_size=64)
    assert test_computed.stats == test_given.stats
    assert test_given.species == train.species
    x_test, y_test = test_given[0]
    raw_test = _raw(glc25, "test_iid", validation_fraction=0.1)[0][0]
    mean = np.asarray(train.stats["env"]["mean"])
    std = np.asarray(train.stats["env"]["std"])
    np.testing.assert_allclose(
        x_test["env"], (raw_test["env"] - mean) / std, rtol=1e-4, atol=1e-4
    )
    assert y_test.shape == (len(TEST_IDS), len(train.species))


def test_batches_are_read_lazily(tmp_path, monkeypatch):
    root = _write_release(tmp_path, "glc25", csv_series=False)
    ds = _raw(root, modalities=("climate", "image"), batch_size=4)
    assert isinstance(ds, GeoPlantDataset) and len(ds) == 3
    calls = []
    original = geoplant_utils.read_patch

    def counting(sources, survey_id, size=None):
        calls.append(survey_id)
        return original(sources, survey_id, size)

    monkeypatch.setattr(
        "keras_miam.datasets.geoplant_dataset.read_patch", counting
    )
    x, y = ds[1]
    assert calls == [int(i) for i in ds.survey_ids[4:8]]
    assert x["image"].shape == (4, SIZE, SIZE, 4) and y.shape[0] == 4
    # Files removed after construction are missing at read time: NaN.
    shutil.rmtree(root / "SatelitePatches/PA-train")
    shutil.rmtree(root / "BioclimTimeSeries/cubes/PA-train")
    with pytest.warns(UserWarning, match="Could not read cube"):
        x, _ = ds[2]
    assert x["image"].shape == (2, SIZE, SIZE, 4)  # last, smaller batch
    assert np.isnan(x["image"]).all() and np.isnan(x["climate"]).all()
    with pytest.raises(IndexError):
        ds[3]


def test_shuffle_epochs_and_drop_remainder(glc25):
    ds = _raw(glc25, modalities=("env",), batch_size=4, shuffle=True, seed=3)
    assert ds.workers == 1

    def epoch():
        return np.concatenate([ds[i][0]["env"][:, 3] for i in range(len(ds))])

    first = epoch()
    ds.on_epoch_end()
    second = epoch()
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)
    again = _raw(glc25, modalities=("env",), batch_size=4, shuffle=True, seed=3)
    np.testing.assert_array_equal(
        np.concatenate([again[i][0]["env"][:, 3] for i in range(len(again))]),
        first,
    )
    dropped = _raw(
        glc25, modalities=("env",), batch_size=4, drop_remainder=True
    )
    assert len(dropped) == len(TRAIN_IDS) // 4


def test_keras_predict_with_worker_threads(glc25):
    ds = load_geoplant(
        glc25,
        "train",
        batch_size=4,
        workers=2,
        shuffle=False,
        modalities=("env", "image"),
        validation_fraction=0.0,
    )
    shapes = ds.input_shapes
    inputs = {k: keras.Input(shape=v, name=k) for k, v in shapes.items()}
    pooled = [
        keras.layers.Flatten()(
            keras.layers.Lambda(lambda t: keras.ops.nan_to_num(t))(v)
        )
        for v in inputs.values()
    ]
    model = keras.Model(
        inputs,
        keras.layers.Dense(len(ds.species))(keras.layers.Concatenate()(pooled)),
    )
    predictions = model.predict(ds, verbose=0)
    assert predictions.shape == (len(TRAIN_IDS), len(ds.species))
    assert np.isfinite(predictions).all()


def test_test_split_without_species_yields_inputs_only(tmp_path):
    root = _write_release(
        tmp_path, "glc25", csv_series=False, cube_series=False
    )
    _write_metadata(
        root / "PresenceAbsenceSurveys/PA_metadata_test_glc25.csv",
        TEST_IDS,
        with_species=False,
    )
    ds = load_geoplant(root, "test_glc25", modalities=("env",), batch_size=8)
    batch = ds[0]
    assert isinstance(batch, dict) and batch["env"].shape == (len(TEST_IDS), 4)
    assert ds.labels is None


def test_errors(glc25, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_geoplant(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="metadata"):
        load_geoplant(tmp_path)
    with pytest.raises(ValueError, match="sound"):
        load_geoplant(glc25, modalities=("env", "sound"))
    with pytest.raises(ValueError, match="Unknown split 'holdout'.*test_iid"):
        load_geoplant(glc25, "holdout", modalities=("env",))
    with pytest.raises(ValueError, match="'val' needs validation_fraction"):
        load_geoplant(
            glc25, "val", modalities=("env",), validation_fraction=0.0
        )
    with pytest.raises(ValueError, match="series_source"):
        load_geoplant(glc25, modalities=("climate",), series_source="parquet")
    stats = _raw(glc25, modalities=("env",), normalize=True).stats
    with pytest.raises(ValueError, match=r"no statistics for \['image'\]"):
        load_geoplant(
            glc25, "test_iid", modalities=("env", "image"), stats=stats
        )
    with pytest.raises(ValueError, match="either `species` or `num_species`"):
        load_geoplant(glc25, species=[1], num_species=3)
    # A requested modality whose files are absent.
    bare = tmp_path / "bare"
    _write_metadata(
        bare / "PresenceAbsenceSurveys/PA_metadata_train.csv", TRAIN_IDS
    )
    for name, match in (
        ("env", "No environmental CSVs"),
        ("climate", "No climate time series"),
        ("landsat", "No landsat time series"),
        ("image", "No Sentinel-2 patches"),
    ):
        with pytest.raises(FileNotFoundError, match=match):
            load_geoplant(bare, modalities=(name,))


def test_patch_path_rule():
    assert geoplant_utils.patch_subpath(1027998, ".tiff") == os.path.join(
        "98", "79", "1027998.tiff"
    )
    assert geoplant_utils.patch_subpath(5000108, ".tiff") == os.path.join(
        "08", "01", "5000108.tiff"
    )
    assert geoplant_utils.patch_subpath(212, ".jpeg") == os.path.join(
        "12", "2", "212.jpeg"
    )
    assert geoplant_utils.patch_subpath(7, ".jpeg") == os.path.join(
        "7", "7.jpeg"
    )


# ------------------------------------------------------------ real samples
@pytest.fixture(scope="module")
def real_samples_dir():
    path = Path(__file__).resolve().parents[2] / "shared" / "real-samples"
    if not path.is_dir():
        pytest.skip(f"real GeoPlant samples not found at {path}")
    return path


@pytest.mark.real_samples
def test_real_glc25_tiff_and_cubes(real_samples_dir):
    pytest.importorskip(
        "imagecodecs", reason="the GLC25 tiffs are LZW-compressed"
    )
    import tifffile
    import torch

    root = real_samples_dir / "glc25-pa"
    ds = _raw(root, modalities=("climate", "landsat", "image"))
    assert ds.input_shapes == {
        "climate": (228, 4),
        "landsat": (84, 6),
        "image": (64, 64, 4),
    }
    row = _rows(ds, [1027998])[0]
    x, y = ds[row // ds.batch_size]
    r = row % ds.batch_size
    patch = tifffile.imread(
        root / "SatelitePatches/PA-train/98/79/1027998.tiff"
    )
    np.testing.assert_array_equal(x["image"][r], patch.astype("float32"))
    cube = torch.load(
        root / "BioclimTimeSeries/cubes/PA-train/"
        "GLC25-PA-train-bioclimatic_monthly_1027998_cube.pt",
        weights_only=True,
    ).numpy()
    np.testing.assert_array_equal(
        x["climate"][r], cube.transpose(1, 2, 0).reshape(228, 4)
    )
    cube = torch.load(
        root / "SateliteTimeSeries-Landsat/cubes/PA-train/"
        "GLC25-PA-train-landsat-time-series_1027998_cube.pt",
        weights_only=True,
    ).numpy()
    np.testing.assert_array_equal(
        x["landsat"][r], cube.transpose(2, 1, 0).reshape(84, 6)
    )
    # Three species rows for this survey in the (float speciesId) metadata.
    present = {ds.species[k] for k in np.flatnonzero(y[r])}
    assert present == {10111, 10112, 10113}
    other = [i for i in range(len(ds.survey_ids)) if i != row][:3]
    for i in other:
        xi = ds[i // ds.batch_size][0]
        assert np.isnan(xi["image"][i % ds.batch_size]).all()
    test = load_geoplant(
        root, "test", modalities=("image",), validation_fraction=0.0
    )
    assert (
        test.stats["image"]["num_images"] == 1
        and test.stats["image"]["size"] == 64
    )


@pytest.mark.real_samples
def test_real_glc24_jpegs_and_cubes(real_samples_dir):
    from PIL import Image

    root = real_samples_dir / "glc24-pa"
    ds = _raw(root, modalities=("climate", "landsat", "image"))
    assert ds.input_shapes == {
        "climate": (228, 4),
        "landsat": (84, 6),
        "image": (128, 128, 4),
    }
    row = _rows(ds, [1322301])[0]
    x, _ = ds[row // ds.batch_size]
    r = row % ds.batch_size
    rgb = np.asarray(
        Image.open(
            root
            / "PA_Train_SatellitePatches_RGB/pa_train_patches_rgb/01/23/1322301.jpeg"
        )
    )
    nir = np.asarray(
        Image.open(
            root
            / "PA_Train_SatellitePatches_NIR/pa_train_patches_nir/01/23/1322301.jpeg"
        )
    )
    np.testing.assert_array_equal(x["image"][r, ..., :3], rgb)
    np.testing.assert_array_equal(x["image"][r, ..., 3], nir)
    assert (
        np.isfinite(x["climate"][r]).all()
        and np.isfinite(x["landsat"][r]).all()
    )
    # The combined metadata.csv is split by its 'subset' column.
    test = _raw(root, "test", modalities=("landsat",))
    assert 1621686 in set(test.survey_ids)
    assert not set(test.survey_ids) & set(ds.survey_ids)


@pytest.mark.real_samples
def test_real_glc23_layout_is_reported(real_samples_dir):
    with pytest.raises(FileNotFoundError, match="GeoLifeCLEF 2023 layout"):
        load_geoplant(real_samples_dir / "glc23-po")
