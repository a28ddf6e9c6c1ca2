"""Tests of the GeoPlant loader on files written in the true layout."""

import json
import os
import shutil

import keras
import numpy as np
import pandas as pd
import pytest

from keras_miam.datasets import GeoPlantDataset
from keras_miam.datasets import load_geoplant
from keras_miam.datasets.geoplant import readers as geoplant_readers
from tests.layouts import NO_CUBE
from tests.layouts import NO_ELEVATION
from tests.layouts import NO_PATCH
from tests.layouts import SIZE
from tests.layouts import TEST_IDS
from tests.layouts import TRAIN_IDS
from tests.layouts import climate_cube as _climate
from tests.layouts import env_frames as _env_frames
from tests.layouts import landsat_cube as _landsat
from tests.layouts import patch_path as _patch_path
from tests.layouts import smooth_patch as _smooth_patch
from tests.layouts import species_of as _species
from tests.layouts import tiff_patch as _patch
from tests.layouts import write_geoplant_release as _write_release
from tests.layouts import write_metadata as _write_metadata


@pytest.fixture(scope="module")
def glc25(tmp_path_factory):
    return _write_release(tmp_path_factory.mktemp("glc25"), "glc25")


@pytest.fixture(scope="module")
def glc24(tmp_path_factory):
    return _write_release(tmp_path_factory.mktemp("glc24"), "glc24", csv_series=False)


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
    counts = pd.Series([s for i in TRAIN_IDS for s in _species(i)]).value_counts()
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
    cubes = _raw(glc25, modalities=("climate", "landsat"), series_source="cubes")
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
            np.testing.assert_array_equal(x_cube["climate"][row], x_csv["climate"][row])
            np.testing.assert_array_equal(x_cube["landsat"][row], x_csv["landsat"][row])
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
    root = _write_release(tmp_path, "glc24", csv_series=False, cube_series=False)
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
    test_given = load_geoplant(glc25, "test_iid", stats=train.stats, batch_size=64)
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
    original = geoplant_readers.read_patch

    def counting(sources, survey_id, size=None):
        calls.append(survey_id)
        return original(sources, survey_id, size)

    monkeypatch.setattr("keras_miam.datasets.geoplant.sources.read_patch", counting)
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
    dropped = _raw(glc25, modalities=("env",), batch_size=4, drop_remainder=True)
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
    root = _write_release(tmp_path, "glc25", csv_series=False, cube_series=False)
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
        load_geoplant(glc25, "val", modalities=("env",), validation_fraction=0.0)
    with pytest.raises(ValueError, match="series_source"):
        load_geoplant(glc25, modalities=("climate",), series_source="parquet")
    stats = _raw(glc25, modalities=("env",), normalize=True).stats
    with pytest.raises(ValueError, match=r"no statistics for \['image'\]"):
        load_geoplant(glc25, "test_iid", modalities=("env", "image"), stats=stats)
    with pytest.raises(ValueError, match="either `species` or `num_species`"):
        load_geoplant(glc25, species=[1], num_species=3)
    # A requested modality whose files are absent.
    bare = tmp_path / "bare"
    _write_metadata(bare / "PresenceAbsenceSurveys/PA_metadata_train.csv", TRAIN_IDS)
    for name, match in (
        ("env", "No 'env' files.*EnvironmentalValues"),
        ("climate", "No 'climate' files.*bioclimatic_monthly"),
        ("landsat", "No 'landsat' files.*six landsat"),
        ("image", "No 'image' files.*Sentinel-2 patches"),
    ):
        with pytest.raises(FileNotFoundError, match=match):
            load_geoplant(bare, modalities=(name,))


def test_patch_path_rule():
    assert geoplant_readers.patch_subpath(1027998, ".tiff") == os.path.join(
        "98", "79", "1027998.tiff"
    )
    assert geoplant_readers.patch_subpath(5000108, ".tiff") == os.path.join(
        "08", "01", "5000108.tiff"
    )
    assert geoplant_readers.patch_subpath(212, ".jpeg") == os.path.join(
        "12", "2", "212.jpeg"
    )
    assert geoplant_readers.patch_subpath(7, ".jpeg") == os.path.join("7", "7.jpeg")


# ------------------------------------------------------------ real samples
@pytest.mark.real_samples
def test_real_glc25_tiff_and_cubes(real_samples_dir):
    pytest.importorskip("imagecodecs", reason="the GLC25 tiffs are LZW-compressed")
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
    patch = tifffile.imread(root / "SatelitePatches/PA-train/98/79/1027998.tiff")
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
    test = load_geoplant(root, "test", modalities=("image",), validation_fraction=0.0)
    assert test.stats["image"]["num_surveys"] == 1 and test.stats["image"]["size"] == 64


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
    assert np.isfinite(x["climate"][r]).all() and np.isfinite(x["landsat"][r]).all()
    # The combined metadata.csv is split by its 'subset' column.
    test = _raw(root, "test", modalities=("landsat",))
    assert 1621686 in set(test.survey_ids)
    assert not set(test.survey_ids) & set(ds.survey_ids)


@pytest.mark.real_samples
def test_real_glc23_layout_is_reported(real_samples_dir):
    with pytest.raises(FileNotFoundError, match="GeoLifeCLEF 2023 layout"):
        load_geoplant(real_samples_dir / "glc23-po")


def test_statistics_without_training_values_are_refused(tmp_path):
    # Issue #24.2: only the held-out "val" survey has a patch, so no training
    # survey has an image; the statistics were silently mean 0, std 1.
    from keras_miam.datasets import prepare_geoplant

    root = _write_release(tmp_path / "release", "glc25", csv_series=False)
    held_out = int(_raw(root, "val", validation_fraction=0.1).survey_ids[0])
    for survey in TRAIN_IDS:
        path = _patch_path(root / "SatelitePatches/PA-train", survey, ".tiff")
        if survey != held_out and path.exists():
            os.remove(path)
    prepare_geoplant(root, tmp_path / "cache", verbose=0)
    refused = r"'image' statistics rest on 0 of the 9 training surveys"
    for source in ({"root": root}, {"cache_dir": tmp_path / "cache"}):
        for split in ("train", "val", "test_iid"):
            with pytest.raises(ValueError, match=refused):
                load_geoplant(split=split, **source)
        # Without the image, or trained with every survey (a warning: the
        # statistics rest on one survey), it loads.
        train = load_geoplant(modalities=("env", "climate"), **source)
        assert set(train.stats) == {"env", "climate", "species"}
        with pytest.warns(UserWarning, match="'image' .* rest on 1 training survey"):
            train = load_geoplant(validation_fraction=0.0, **source)
        assert train.stats["image"]["num_surveys"] == 1
    # The example stops with the loader's error, before training.
    from examples import geoplant

    with pytest.raises(SystemExit, match=refused):
        geoplant.main(["--root", str(root), "--output", str(tmp_path / "out")])


def test_default_modalities_are_those_with_files(tmp_path):
    # Issue #24.7: a release without environmental CSVs loads by default.
    root = _write_release(tmp_path, "glc25", csv_series=False)
    shutil.rmtree(root / "EnvironmentalValues")
    ds = _raw(root)
    assert ds.modalities == ("climate", "landsat", "image")


@pytest.mark.real_samples
def test_real_glc24_statistics_without_training_values(real_samples_dir, tmp_path):
    # The glc24-pa sample's one training survey with files is held out.
    from examples import geoplant

    refused = "'climate' statistics rest on 0 of the 43"
    with pytest.raises(ValueError, match=refused):
        load_geoplant(real_samples_dir / "glc24-pa")
    with pytest.raises(SystemExit, match=refused):
        geoplant.main(
            ["--root", str(real_samples_dir / "glc24-pa"), "--output", str(tmp_path)]
        )
