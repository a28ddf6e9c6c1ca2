"""Tests of the SatBird loader on a tiny release written in its layout."""

import importlib.util
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keras_miam.datasets import load_satbird

SPLITS = {"train": ["L1", "L2", "L3", "L4"], "valid": ["L5"], "test": ["L6"]}
SIZE, NUM_VARIABLES, NUM_SPECIES = 128, 3, 5


def image_values(hotspot):
    """(H, W, 4): band * 1e5 + row * 1e3 + column + hotspot number * 1e6."""
    rows, cols, bands = np.meshgrid(
        np.arange(SIZE), np.arange(SIZE), np.arange(4), indexing="ij"
    )
    return (int(hotspot[1:]) * 1e6 + bands * 1e5 + rows * 1e3 + cols).astype("float32")


def env_values(hotspot, height=6):
    """(V, height, height): variable * 100 + row * 10 + column + hotspot number."""
    v, r, c = np.meshgrid(*(np.arange(n) for n in (NUM_VARIABLES, height, height)))
    raster = (int(hotspot[1:]) + 100 * v + 10 * r + c).astype("float32")
    return np.transpose(raster, (1, 0, 2))  # meshgrid "xy": axes 0 and 1 swapped


def probs(hotspot):
    rng = np.random.default_rng(int(hotspot[1:]))
    values = rng.uniform(size=NUM_SPECIES).round(3)
    values[rng.integers(NUM_SPECIES)] = 0.0
    return values


def write_release(root):
    import tifffile

    for folder in ("images", "environmental_data", "targets"):
        (root / folder).mkdir(parents=True)
    for split, ids in SPLITS.items():
        pd.DataFrame({"hotspot_id": ids, "lat": 40.0, "lon": -75.0}).to_csv(
            root / f"{split}_split.csv", index=False
        )
        for hotspot in ids:
            image = image_values(hotspot)
            if hotspot in ("L1", "L5"):  # bands first, as rasterio writes
                image = np.moveaxis(image, -1, 0)
            tifffile.imwrite(root / "images" / f"{hotspot}.tif", image)
            env = env_values(hotspot)
            if hotspot == "L2":
                env[0, 2, 2] = np.nan  # one of the four centre pixels
                env[1] = -3.4e38  # a nodata variable
            np.save(root / "environmental_data" / f"{hotspot}.npy", env)
            target = {
                "probs": probs(hotspot).tolist(),
                "num_complete_checklists": int(hotspot[1:]) ** 2,
            }
            (root / "targets" / f"{hotspot}.json").write_text(json.dumps(target))
    return root


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path / "USA_summer")


def test_centre_crop_value_by_value(release):
    data = load_satbird(
        release, crop_size=8, normalize=False, shuffle=False, batch_size=3
    )
    assert len(data) == 2 and data.input_shapes == {"image": (8, 8, 4), "env": (3,)}
    x, y = data[0]
    assert x["image"].shape == (3, 8, 8, 4) and x["image"].dtype == np.float32
    for i, hotspot in enumerate(SPLITS["train"][:3]):
        # A 128 x 128 image: the crop starts at pixel (128 - 8) // 2 = 60.
        np.testing.assert_array_equal(
            x["image"][i], image_values(hotspot)[60:68, 60:68]
        )
    assert x["image"][0, 0, 0, 2] == 1e6 + 2e5 + 60e3 + 60


def test_env_centre_and_small_image(release):
    centre = load_satbird(release, "test", modalities="env", normalize=False)
    # 6 x 6 rasters: the mean of pixels (2..3, 2..3), i.e. + 25 + 2.5.
    x, _ = centre[0]
    np.testing.assert_allclose(x["env"], [[6 + 27.5, 106 + 27.5, 206 + 27.5]])
    train = load_satbird(release, modalities="env", normalize=False, shuffle=False)
    x, _ = train[0]
    # L2: one centre pixel of variable 0 is NaN; variable 1 is all nodata.
    assert x["env"][1, 0] == pytest.approx(np.mean([2 + 23, 2 + 32, 2 + 33]))
    assert np.isnan(x["env"][1, 1]) and x["env"][1, 2] == 2 + 200 + 27.5
    small = load_satbird(
        release, "test", modalities="env", env="image", normalize=False
    )
    assert small.input_shapes == {"env": (6, 6, 3)}
    x, _ = small[0]
    np.testing.assert_array_equal(x["env"][0], np.moveaxis(env_values("L6"), 0, -1))
    assert x["env"][0, 2, 3, 1] == 6 + 100 + 20 + 3


def test_odd_raster_takes_the_centre_pixel(release):
    np.save(release / "environmental_data" / "L6.npy", env_values("L6", height=5))
    x, _ = load_satbird(release, "test", modalities="env", normalize=False)[0]
    np.testing.assert_array_equal(x["env"], [[6 + 22, 106 + 22, 206 + 22]])


def test_targets_and_checklist_weights(release):
    data = load_satbird(
        release, normalize=False, shuffle=False, sample_weight="sqrt", batch_size=4
    )
    x, y, w = data[0]
    assert y.dtype == np.float32 and y.shape == (4, NUM_SPECIES)
    np.testing.assert_allclose(y, [probs(h) for h in SPLITS["train"]], rtol=1e-6)
    np.testing.assert_allclose(w, [1, 2, 3, 4])  # sqrt of 1, 4, 9, 16 checklists
    np.testing.assert_array_equal(data.num_complete_checklists, [1, 4, 9, 16])
    assert data.range_mask is None
    logged = load_satbird(release, normalize=False, sample_weight="log")
    np.testing.assert_allclose(logged.weights, np.log([1, 4, 9, 16]))


def test_range_mask_read_from_the_pickle(release):
    mask = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1]], "float32")
    table = pd.DataFrame(mask, columns=[f"species_{i}" for i in range(NUM_SPECIES)])
    table.insert(0, "hotspot_id", ["L6", "L3", "L5"])
    table = table.reset_index()  # SatBird's pickle has an 'index' column
    with open(release / "range_maps.pkl", "wb") as file:
        pickle.dump(table, file)
    data = load_satbird(release, "test", normalize=False)
    np.testing.assert_allclose(data[0][1][0], probs("L6"), rtol=1e-6)  # unread
    masked = load_satbird(release, "test", normalize=False, range_mask=True)
    np.testing.assert_array_equal(masked.range_mask, mask[:1])
    _, y = masked[0]
    expected = np.where(mask[0] > 0, probs("L6"), np.nan)
    np.testing.assert_allclose(y[0], expected, rtol=1e-6)
    assert np.isnan(y[0, [1, 4]]).all()
    with pytest.raises(ValueError, match="no row for hotspot.*'L1'"):
        load_satbird(release, normalize=False, range_mask=True)


def test_normalisation_from_training_statistics(release):
    train = load_satbird(release, crop_size=4, shuffle=False, batch_size=4)
    crops = np.stack([image_values(h)[62:66, 62:66] for h in SPLITS["train"]])
    np.testing.assert_allclose(train.stats["image"]["mean"], crops.mean((0, 1, 2)))
    np.testing.assert_allclose(
        train.stats["image"]["std"], crops.std((0, 1, 2)), rtol=1e-6
    )
    raw = load_satbird(release, crop_size=4, normalize=False, shuffle=False)
    env = raw.read("env", range(4))
    np.testing.assert_allclose(train.stats["env"]["mean"], np.nanmean(env, 0))
    assert train.stats["env"]["mean"][1] == pytest.approx((101 + 103 + 104) / 3 + 27.5)
    for split in ("valid", "test"):  # statistics of the training split
        other = load_satbird(release, split, crop_size=4)
        assert other.stats == train.stats
        x, _ = other[0]
        hotspot = SPLITS[split][0]
        expected = (image_values(hotspot)[62:66, 62:66] - crops.mean((0, 1, 2))) / (
            crops.std((0, 1, 2))
        )
        np.testing.assert_allclose(x["image"][0], expected, rtol=1e-5, atol=1e-5)
    x, _ = train[0]
    assert np.isnan(x["env"][1, 1]) and not np.isnan(x["env"][1, 0])


def test_shuffled_epochs_are_seeded_permutations(release):
    def order(seed):
        data = load_satbird(release, normalize=False, batch_size=4, seed=seed)
        first = data[0][1]
        data.on_epoch_end()
        return first, data[0][1]

    first, second = order(0)
    np.testing.assert_array_equal(first, order(0)[0])
    assert not np.array_equal(first, second)
    expected = np.stack([probs(h) for h in SPLITS["train"]])
    np.testing.assert_allclose(np.sort(first, 0), np.sort(expected, 0), rtol=1e-6)


def test_clear_errors_for_folders_and_arguments(release, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*not found"):
        load_satbird(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="valid_split.csv.*USA_summer"):
        load_satbird(tmp_path, "valid")
    with pytest.raises(ValueError, match="`env` must be one of"):
        load_satbird(release, env="mean")
    with pytest.raises(
        ValueError, match="`split` must be one of .*received 'training'"
    ):
        load_satbird(release, "training")
    data = load_satbird(release, normalize=False, batch_size=4)
    with pytest.raises(IndexError, match=f"Batch {len(data)} out of range"):
        data[len(data)]


def test_clear_error_for_a_missing_target(release):
    (release / "targets" / "L3.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"targets/\{hotspot_id\}.json.*L3"):
        load_satbird(release, "test")  # the training statistics need L3
    (release / "targets" / "L5.json").write_text('{"probs": [0.5, 2.0]}')
    with pytest.raises(
        ValueError,
        match=r"L5.json.*\[0.5, 2.0\]\) and keys \['probs'\]; expected a list",
    ):
        load_satbird(release, "valid", normalize=False)
    (release / "targets" / "L3.json").write_text('{"probs": [0.5, 0.25]}')
    with pytest.raises(ValueError, match=r"L3.json.*\(2,\).*expected 5 encounter"):
        load_satbird(release, normalize=False)


def test_clear_errors_for_wrong_bands_and_variables(release):
    import tifffile

    tifffile.imwrite(release / "images" / "L6.tif", np.zeros((3, 128, 128), "uint16"))
    with pytest.raises(ValueError, match=r"L6.tif.*\(3, 128, 128\).*4 bands"):
        load_satbird(release, "test", normalize=False)
    tifffile.imwrite(release / "images" / "L5.tif", np.zeros((32, 32, 4), "uint16"))
    with pytest.raises(ValueError, match=r"L5.tif.*\(32, 32, 4\).*64 x 64"):
        load_satbird(release, "valid", normalize=False)
    np.save(release / "environmental_data" / "L3.npy", np.zeros((4, 6, 6)))
    with pytest.raises(ValueError, match=r"L3.npy.*\(4, 6, 6\).*with 3 variables"):
        load_satbird(release, modalities="env")  # read for the statistics


def _example():
    path = Path(__file__).resolve().parents[1] / "examples" / "satbird.py"
    spec = importlib.util.spec_from_file_location("example_satbird", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_help_shows_the_defaults(capsys):
    example = _example()
    with pytest.raises(SystemExit):
        example.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option, default in [
        ("--env", "center"),
        ("--crop-size", "64"),
        ("--epochs", "20"),
        ("--batch-size", "64"),
        ("--learning-rate", "0.001"),
        ("--output", "outputs/satbird"),
    ]:
        assert re.search(f"{option} .*?\\(default: {re.escape(default)}\\)", text)
    with pytest.raises(SystemExit):
        example.parse_args([])
    assert "pass --root" in capsys.readouterr().err


def test_example_dry_run(tmp_path):
    argv = ["--dry-run", "--strategy", "miam", "--epochs", "1", "--crop-size", "8"]
    argv += ["--embed-dim", "8", "--num-layers", "1", "--no-explain"]
    results = _example().main([*argv, "--output", str(tmp_path)])
    scores = results["scores"]
    assert set(scores) == {f"miam/{m}" for m in ("mae", "top10", "top30", "topk")}
    for values in scores.values():
        assert set(values) == {"image", "env", "image+env"}
        assert all(0.0 <= v <= 1.0 for v in values.values())
    assert json.loads((tmp_path / "results.json").read_text())["scores"] == scores
    # MIAM's unimodal scores are the adaptive top-k accuracy.
    assert {"val_image_topk", "val_env_topk"} <= set(results["history"]["miam"])
    assert (tmp_path / "subsets.png").read_bytes().startswith(b"\x89PNG")
    release = tmp_path / "generated_release"
    assert len(pd.read_csv(release / "train_split.csv")) == 57
