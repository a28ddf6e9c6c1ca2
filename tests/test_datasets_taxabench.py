"""Tests of the TaxaBench-8k style embedding loader."""

import numpy as np
import pytest

from keras_miam.datasets import load_taxabench
from keras_miam.missing import is_missing

DIMS = {"location": 3, "environment": 5, "image": 8, "audio": 4, "satellite": 6}
N = 30


def _arrays(seed=0, num_classes=7):
    rng = np.random.default_rng(seed)
    arrays = {k: rng.normal(size=(N, d)).astype("float32") for k, d in DIMS.items()}
    arrays["audio"][::3] = np.nan  # missing recordings
    arrays["image"][1, 2] = np.inf
    arrays["image"][2, 0] = -3.4e38  # a nodata fill value
    labels = np.arange(N) % num_classes
    return arrays, labels


def _check(x, y, info, arrays, labels):
    assert set(x) == set(DIMS)
    for name, values in x.items():
        assert values.dtype == np.float32 and values.shape == (N, DIMS[name])
        expected = np.where(is_missing(arrays[name], xp=np), np.nan, arrays[name])
        np.testing.assert_array_equal(values, expected)
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int32
    assert info["num_classes"] == 7 and info["num_examples"] == N
    assert info["embedding_dims"] == DIMS
    assert info["missing_fraction"]["audio"] == pytest.approx(10 / N)
    assert info["missing_fraction"]["image"] == 0.0  # two values only


def test_folder_of_npy_files_per_split(tmp_path):
    arrays, labels = _arrays()
    split_dir = tmp_path / "train"
    split_dir.mkdir()
    for name, values in arrays.items():
        np.save(split_dir / f"{name}.npy", values)
    np.save(split_dir / "labels.npy", labels)
    x, y, info = load_taxabench(tmp_path, split="train")
    _check(x, y, info, arrays, labels)
    assert info["split"] == "train"
    assert info["sources"]["audio"].endswith("audio.npy")
    assert np.isnan(x["image"][1, 2]) and np.isnan(x["audio"][0]).all()
    assert np.isnan(x["image"][2, 0])


def test_npz_bundle_with_aliases_and_float_labels(tmp_path):
    arrays, labels = _arrays()
    renamed = {
        "loc": arrays["location"],
        "env": arrays["environment"],
        "ground_image": arrays["image"],
        "sound": arrays["audio"],
        "sat": arrays["satellite"],
        "labels": labels.astype("float64"),
    }
    np.savez(tmp_path / "test.npz", **renamed)
    x, y, info = load_taxabench(tmp_path, split="test")
    _check(x, y, info, arrays, labels)
    x2, _, _ = load_taxabench(tmp_path / "test.npz", modalities=("image", "audio"))
    assert set(x2) == {"image", "audio"}


def test_torch_files(tmp_path):
    torch = pytest.importorskip("torch")
    arrays, labels = _arrays()
    bundle = {k: torch.from_numpy(v) for k, v in arrays.items()}
    bundle["labels"] = torch.from_numpy(labels)
    torch.save(bundle, tmp_path / "val.pt")
    x, y, info = load_taxabench(tmp_path, split="val")
    _check(x, y, info, arrays, labels)
    folder = tmp_path / "pt"
    folder.mkdir()
    for name, values in bundle.items():
        torch.save(values, folder / f"{name}.pt")
    x, y, info = load_taxabench(folder)
    _check(x, y, info, arrays, labels)


def test_miam_release_keys(tmp_path):
    torch = pytest.importorskip("torch")
    arrays, labels = _arrays()
    keys = {"loc": "location", "env": "environment", "img": "image"}
    keys.update(aud="audio", sat="satellite")
    bundle = {k: torch.from_numpy(arrays[name]) for k, name in keys.items()}
    path = tmp_path / "taxabench_embeds_loc_env_img_aud_sat.pt"
    torch.save({**bundle, "labels": torch.from_numpy(labels)}, path)
    x, y, info = load_taxabench(path)
    _check(x, y, info, arrays, labels)
    assert info["sources"]["audio"] == str(path)


def test_dict_of_arrays_one_hot_and_zero_rows():
    arrays, labels = _arrays()
    arrays["audio"][1] = 0.0
    x, y, info = load_taxabench(
        {**arrays, "labels": labels},
        num_classes=199,
        one_hot=True,
        zero_rows_as_missing=True,
    )
    assert y.shape == (N, 199) and y.dtype == np.float32
    np.testing.assert_array_equal(y.argmax(axis=1), labels)
    assert y.sum() == N and info["num_classes"] == 199
    assert np.isnan(x["audio"][1]).all()
    assert info["missing_fraction"]["audio"] == pytest.approx(11 / N)
    _, _, plain = load_taxabench({**arrays, "labels": labels})
    assert plain["missing_fraction"]["audio"] == pytest.approx(10 / N)


def test_errors(tmp_path):
    arrays, labels = _arrays()
    good = {**arrays, "labels": labels}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_taxabench(tmp_path / "missing")
    with pytest.raises(ValueError, match="Unknown split 'train'"):
        load_taxabench(tmp_path, split="train")
    with pytest.raises(ValueError, match="radar"):
        load_taxabench(good, modalities=("image", "radar"))
    with pytest.raises(FileNotFoundError, match="No 'audio' array"):
        load_taxabench({k: v for k, v in good.items() if k != "audio"})
    with pytest.raises(FileNotFoundError, match="No 'labels' array"):
        load_taxabench(arrays)
    with pytest.raises(ValueError, match="same number of examples"):
        load_taxabench({**good, "labels": labels[:-1]})
    with pytest.raises(ValueError, match="out of range"):
        load_taxabench(good, num_classes=3)
    with pytest.raises(ValueError, match="integer class ids"):
        load_taxabench({**good, "labels": labels + 0.5})
    with pytest.raises(ValueError, match=r"expected \(num_examples, embedding_dim\)"):
        load_taxabench({**good, "location": arrays["location"][:, 0]})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="No .npy or .pt arrays"):
        load_taxabench(empty)
