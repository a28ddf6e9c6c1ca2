"""End-to-end runs of the example scripts on tiny data in the true layouts.

Each example's `main(argv)` runs in-process (under the current
KERAS_BACKEND) with a tiny model (embed dim 16, one block) for one epoch, on
files written in the GeoPlant or TaxaBench layout under `tmp_path`; the
tests check what it prints and writes: a results JSON with one row per
non-empty subset of modalities and finite metrics in [0, 1], and non-empty
PNG figures.
"""

import importlib.util
import itertools
import json
from pathlib import Path

import pytest

from tests.layouts import write_geoplant_release
from tests.layouts import write_metadata
from tests.layouts import write_taxabench

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = ["--epochs", "1", "--embed-dim", "16", "--num-layers", "1"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Train surveys (some in NO_PATCH / NO_CUBE / NO_ELEVATION: missing data).
GEOPLANT_TRAIN = [7, 101, 2345, 60012, 123456] + list(range(1000, 1060, 2))
GEOPLANT_TEST = [5000001, 5000002, 5000003, 5000108, 5000010, 5000012]


def _geoplant_argv(root, out, *options):
    """A tiny one-strategy (MIAM) GeoPlant run: batches of 16, one reader."""
    return [
        "--root",
        str(root),
        "--strategy",
        "miam",
        "--batch-size",
        "16",
        "--workers",
        "1",
        "--output",
        str(out),
        *options,
        *TINY,
    ]


def _load_example(name):
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", EXAMPLES / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def geoplant_example():
    return _load_example("geoplant")


@pytest.fixture(scope="module")
def taxabench_example():
    return _load_example("taxabench")


def _check_outputs(out, modalities, strategies, explain=True):
    """results.json and the figures of one example run."""
    results = json.loads((out / "results.json").read_text())
    table = results["table"]
    expected = {
        frozenset(s)
        for k in range(1, len(modalities) + 1)
        for s in itertools.combinations(modalities, k)
    }
    assert len(table) == 2 ** len(modalities) - 1
    assert {frozenset(row["modalities"]) for row in table} == expected
    for row in table:
        assert row["size"] == len(row["modalities"])
        for strategy in strategies:
            value = row[strategy]
            assert value is not None and 0.0 <= value <= 1.0, (row, strategy)
    for strategy in strategies:
        assert 0.0 <= results["average"][strategy] <= 1.0
    last = "miam" if "miam" in strategies else strategies[-1]
    figures = ["subsets.png", f"hypercube_{last}_trained.png"]
    figures += [f"dynamics_{s}.png" for s in strategies]
    if explain:
        figures.append("modality_shapley.png")
        assert set(results["modality_shapley"]) == set(modalities)
    for name in figures:
        path = out / name
        assert path.is_file() and path.stat().st_size > 1000, name
        assert path.read_bytes()[:8] == PNG_MAGIC, name
    return results


@pytest.mark.parametrize("name", ["geoplant", "taxabench"])
def test_help(name, capsys):
    module = _load_example(name)
    with pytest.raises(SystemExit) as info:
        module.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--root", "--strategies", "--epochs", "--batch-size", "--output"):
        assert option in text
    if name == "geoplant":
        assert "--species" in text and "--modalities" in text


def test_geoplant_end_to_end(geoplant_example, tmp_path, capsys):
    root = write_geoplant_release(
        tmp_path / "glc25",
        "glc25",
        cube_series=False,
        train_ids=GEOPLANT_TRAIN,
        test_ids=GEOPLANT_TEST,
    )
    out = tmp_path / "out"
    results = geoplant_example.main(_geoplant_argv(root, out, "--species", "4"))
    text = capsys.readouterr().out
    modalities = ["env", "climate", "landsat", "image"]
    assert results["modalities"] == modalities
    assert results["test_source"] == "test_iid"
    assert results["num_surveys"]["test"] == len(GEOPLANT_TEST)
    assert results["metric"] == "auc" and len(results["species"]) == 4
    _check_outputs(out, modalities, ["miam"])
    assert "Test macro AUC per subset of modalities" in text
    assert "env+climate+landsat+image" in text
    assert "Modality Shapley values (miam" in text


def test_geoplant_held_out_surveys_and_tiny_split_fallbacks(
    geoplant_example, tmp_path, capsys
):
    # GLC24 layout (cubes, RGB + NIR jpegs), tested on held-out training
    # surveys. Species 1 occurs in every survey: with it alone, AUC is
    # undefined on both held-out parts, and the example falls back to the
    # validation loss (masking dynamics) and the accuracy (test table).
    root = write_geoplant_release(
        tmp_path / "glc24",
        "glc24",
        csv_series=False,
        train_ids=GEOPLANT_TRAIN,
        test_ids=GEOPLANT_TEST,
    )
    out = tmp_path / "out"
    results = geoplant_example.main(
        _geoplant_argv(
            root,
            out,
            *("--species", "1", "--modalities", "landsat", "image"),
            *("--test-split", "none", "--no-explain"),
        )
    )
    text = capsys.readouterr().out
    assert results["test_source"] == "held-out training surveys"
    sizes = results["num_surveys"]
    assert sizes["train"] + sizes["validation"] + sizes["test"] == len(GEOPLANT_TRAIN)
    assert sizes["validation"] >= 1 and sizes["test"] >= 1
    assert results["species"] == [1]
    assert results["validation_metric"] == "loss"
    assert results["metric"] == "accuracy"
    assert "use the loss" in text and "reporting the binary accuracy" in text
    assert "val_landsat_loss_score" in results["history"]["miam"]
    _check_outputs(out, ["landsat", "image"], ["miam"], explain=False)
    assert not (out / "modality_shapley.png").exists()


def test_geoplant_clear_errors(geoplant_example, tmp_path, capsys):
    tiny = tmp_path / "tiny"
    write_metadata(tiny / "PresenceAbsenceSurveys" / "PA_metadata_train.csv", [7])
    with pytest.raises(SystemExit, match="training split has 1 survey"):
        geoplant_example.main(
            [
                "--root",
                str(tiny),
                "--modalities",
                "env",
                "image",
                "--output",
                str(tmp_path / "o1"),
            ]
        )
    with pytest.raises(SystemExit, match="MIAM needs at least two"):
        geoplant_example.main(["--root", str(tiny), "--output", str(tmp_path / "o2")])
    with pytest.raises(SystemExit, match="not a test split"):
        geoplant_example.main(
            [
                "--root",
                str(tiny),
                "--test-split",
                "test_ood",
                "--output",
                str(tmp_path / "o3"),
            ]
        )
    with pytest.raises(SystemExit, match="does not exist"):
        geoplant_example.main(
            ["--root", str(tmp_path / "absent"), "--output", str(tmp_path / "o4")]
        )
    with pytest.raises(SystemExit) as info:  # argparse: exit code 2
        geoplant_example.main(["--root", str(tiny), "--modalities", "env"])
    assert info.value.code == 2
    assert "at least two" in capsys.readouterr().err


def test_taxabench_end_to_end(taxabench_example, tmp_path, capsys):
    # Test and validation sizes are multiples of the evaluation blocks (16
    # examples x 16 subsets per pass): one compiled prediction shape.
    root = write_taxabench(
        tmp_path / "taxabench", {"train": 64, "val": 32, "test": 32}, num_classes=4
    )
    out = tmp_path / "out"
    results = taxabench_example.main(
        [
            "--root",
            str(root),
            "--strategies",
            "uniform",
            "miam",
            "--batch-size",
            "32",
            "--output",
            str(out),
        ]
        + TINY
    )
    text = capsys.readouterr().out
    modalities = ["location", "environment", "image", "audio", "satellite"]
    assert results["metric"] == "accuracy" and results["num_classes"] == 4
    assert results["num_examples"] == {"train": 64, "val": 32, "test": 32}
    _check_outputs(out, modalities, ["uniform", "miam"])
    assert "Test top-1 accuracy per subset of modalities" in text
    assert "location+environment+image+audio+satellite" in text
    assert "MIAM - Uniform" in text


def test_taxabench_data_sources(taxabench_example, tmp_path):
    import argparse

    import numpy as np

    def load(root, modalities=("image", "audio")):
        args = argparse.Namespace(root=str(root), seed=0, zero_rows_as_missing=False)
        return taxabench_example._load_splits(args, list(modalities))

    # One .npz bundle: a seeded 70/15/15 split.
    root = write_taxabench(tmp_path / "one", {"all": 40}, num_classes=3)
    bundle = tmp_path / "bundle.npz"
    np.savez(bundle, **{p.stem: np.load(p) for p in (root / "all").iterdir()})
    parts, origin = load(bundle)
    assert origin == "one set, split 70/15/15"
    assert {k: len(v[1]) for k, v in parts.items()} == {
        "train": 28,
        "val": 6,
        "test": 6,
    }
    assert set(parts["train"][0]) == {"image", "audio"}
    # train/ and test/ only: validation examples are held out from training.
    root = write_taxabench(tmp_path / "two", {"train": 40, "test": 10})
    parts, origin = load(root)
    assert {k: len(v[1]) for k, v in parts.items()} == {
        "train": 34,
        "test": 10,
        "val": 6,
    }
    assert "val held out from training" in origin
    # No training split.
    only_val = write_taxabench(tmp_path / "val_only", {"val": 10})
    with pytest.raises(ValueError, match="no training split"):
        load(only_val)
    with pytest.raises(SystemExit, match="no training split"):
        taxabench_example.main(
            ["--root", str(only_val), "--output", str(tmp_path / "o")]
        )


@pytest.mark.real_samples
def test_geoplant_on_real_glc25_samples(geoplant_example, real_samples_dir, tmp_path):
    # The real GLC25 layout: a metadata.csv with a 'subset' column, cubes
    # and LZW-compressed tiffs (the GLC24 sample runs the same way; its
    # reading is covered by test_datasets_geoplant.py).
    pytest.importorskip("imagecodecs", reason="the GLC25 tiffs are LZW-compressed")
    out = tmp_path / "out"
    results = geoplant_example.main(
        _geoplant_argv(
            real_samples_dir / "glc25-pa", out, "--species", "5", "--no-explain"
        )
    )
    # A few dozen surveys; one per split has files (climate and Landsat
    # cubes, a Sentinel-2 tiff).
    assert results["modalities"] == ["climate", "landsat", "image"]
    assert results["test_source"] == "test"
    assert results["num_surveys"]["validation"] >= 1
    assert len(results["species"]) == 5
    _check_outputs(out, ["climate", "landsat", "image"], ["miam"], explain=False)


@pytest.mark.slow
@pytest.mark.real_samples
def test_geoplant_paper_preset_dry_run_on_real_samples(
    geoplant_example, real_samples_dir, tmp_path, capsys
):
    # The paper's model (d = 192, 7 blocks, 8 heads, FFN 256) in bfloat16,
    # read through the array cache, for one epoch of a few steps.
    pytest.importorskip("imagecodecs", reason="the GLC25 tiffs are LZW-compressed")
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    argv = [
        "--root",
        str(real_samples_dir / "glc25-pa"),
        "--preset",
        "paper",
        "--species",
        "5",
        "--strategy",
        "miam",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--cache-dir",
        str(cache),
        "--mixed-precision",
        "--no-explain",
        "--output",
        str(out),
    ]
    results = geoplant_example.main(argv)
    text = capsys.readouterr().out
    config = results["config"]
    assert (config["embed_dim"], config["num_layers"], config["num_heads"]) == (
        192,
        7,
        8,
    )
    assert (config["ff_dim"], config["dropout"], config["batch_size"]) == (256, 0.1, 16)
    assert results["policy"] == "mixed_bfloat16" and "mixed_bfloat16" in text
    assert (cache / "manifest.json").exists()
    assert (out / "best_miam.weights.h5").stat().st_size > 0
    assert results["best_epoch"] == {"miam": 1}
    assert 0.0 <= results["test_top_k_f1"]["miam"] <= 1.0 and results["top_k"] == 5
    _check_outputs(out, ["climate", "landsat", "image"], ["miam"], explain=False)


def test_geoplant_too_many_species_is_an_error(geoplant_example, tmp_path):
    root = write_geoplant_release(
        tmp_path / "glc25", "glc25", cube_series=False, train_ids=GEOPLANT_TRAIN
    )
    with pytest.raises(SystemExit, match="--species 50 asks for more species than"):
        geoplant_example.main(
            ["--root", str(root), "--species", "50", "--output", str(tmp_path / "o")]
        )


@pytest.mark.parametrize(
    "scenario, modalities",
    [
        ("redundant", ["env", "image"]),
        ("texture", ["env", "climate", "landsat", "image"]),
    ],
)
def test_synthetic_ecology_scenarios(scenario, modalities, tmp_path, capsys):
    example = _load_example("synthetic_ecology")
    out = tmp_path / "out"
    argv = ["--scenario", scenario, "--num-examples", "300", "--output", str(out)]
    explain = scenario == "redundant"  # the default: also the Shapley values
    results = example.main(argv + TINY + ([] if explain else ["--no-explain"]))
    text = capsys.readouterr().out
    assert f"Scenario {scenario}: 300 sites" in text
    assert "MIAM - Uniform: average" in text
    assert results["scenario"] == scenario
    assert list(results["generator"]["modalities"]) == modalities
    for strategy in ("uniform", "miam"):
        table = results["table"][strategy]
        assert len(table) == 2 ** len(modalities)  # every subset, and "average"
        assert all(0.0 <= v <= 1.0 for v in table.values())
    figures = ["subsets.png", "dynamics_miam.png", "hypercube_miam_trained.png"]
    if explain:
        assert set(results["modality_shapley"]) == set(modalities)
        figures += ["modality_shapley.png", "image_contributions.png"]
    for name in figures:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
