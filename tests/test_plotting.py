"""Every plot writes a PNG off-screen, for 2, 3 and 5 modalities."""

import keras
import numpy as np
import pandas as pd
import pytest
from keras import ops
from matplotlib.figure import Figure

from keras_miam import MIAMMasking
from keras_miam import plotting
from keras_miam import strategies
from keras_miam.evaluation import evaluate_subsets
from tests.readout_models import build_model
from tests.readout_models import mean_prediction

SIZES = [2, 3, 5]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def names(m):
    return [f"mod_{i}" for i in range(m)]


def assert_png(figure, path):
    assert isinstance(figure, Figure)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


@pytest.mark.parametrize("m", SIZES)
def test_plot_hypercube(tmp_path, m):
    state = strategies.dynamics_state(
        m, [0.9] + [0.5] * (m - 1), [0.01] + [0.1] * (m - 1)
    )
    path = tmp_path / "miam.png"
    assert_png(
        plotting.plot_hypercube("miam", m, num_samples=200, state=state, path=path),
        path,
    )
    layer = MIAMMasking(names(m), strategy="uniform_hypercube")
    layer.build({n: (None, 2, 4) for n in names(m)})
    path = tmp_path / "layer.png"
    assert_png(plotting.plot_hypercube(layer, num_samples=200, path=path), path)


@pytest.mark.parametrize("m", SIZES)
def test_plot_strategies(tmp_path, m):
    # All eight for M = 3 (the paper's figure); two elsewhere, to keep the
    # eager sampling of JAX and torch quick.
    chosen = None if m == 3 else ["uniform_hypercube", "miam"]
    path = tmp_path / "strategies.png"
    figure = plotting.plot_strategies(
        chosen, num_modalities=m, num_samples=200, path=path
    )
    assert_png(figure, path)
    assert len(figure.axes) == (8 if chosen is None else 2)


@pytest.mark.parametrize("m", SIZES)
def test_plot_dynamics(tmp_path, m):
    rng = np.random.default_rng(m)
    logs = {"loss": list(rng.random(6)), "val_loss": list(rng.random(6))}
    for name in names(m):
        logs[f"val_{name}_auc"] = list(0.5 + 0.4 * rng.random(6))
        logs[f"{name}_score_derivative"] = [None] + list(rng.random(5))
        logs[f"{name}_mask_ratio"] = list(0.5 + rng.random(6))
    history = keras.callbacks.History()
    history.history = logs
    path = tmp_path / "dynamics.png"
    figure = plotting.plot_dynamics(history, path=path)
    assert_png(figure, path)
    assert len(figure.axes) == 3
    assert len(figure.axes[0].lines) == m  # one score curve per modality


def test_plot_dynamics_reads_the_score_keys_of_each_modality():
    # "env" is a prefix of "env_2": its keys must not be taken for env's.
    logs = {
        "val_env_auc": [0.6, 0.7],
        "val_env_2_auc": [0.5, 0.55],
        "env_mask_ratio": [1.0, 1.2],
        "env_2_mask_ratio": [1.0, 0.8],
    }
    figure = plotting.plot_dynamics(logs)
    scores = {
        line.get_label(): line.get_ydata().tolist() for line in figure.axes[0].lines
    }
    assert scores == {"env": [0.6, 0.7], "env_2": [0.5, 0.55]}
    with pytest.raises(ValueError, match="modalities="):
        plotting.plot_dynamics({"loss": [1.0]})


def additive_model(m):
    """Output: sum over visible modalities i of (i + 1) / m."""
    weights = ops.arange(1, m + 1, dtype="float32") / m
    model, _ = build_model(
        lambda tokens, keep, layer: ops.sum(
            ops.cast(keep, "float32") * weights, axis=1, keepdims=True
        ),
        {n: 1 for n in names(m)},
    )
    return model


@pytest.mark.parametrize("m", SIZES)
def test_plot_subsets(tmp_path, m):
    model = additive_model(m)
    x = {n: np.zeros((4, 1, 2), "float32") for n in names(m)}
    frame = evaluate_subsets(model, (x, np.zeros(4)), metric=mean_prediction, verbose=0)
    rows = frame[frame["kind"] == "subset"]
    expected = rows[names(m)].to_numpy(bool) @ (np.arange(1, m + 1) / m)
    np.testing.assert_allclose(rows["mean_prediction"], expected, rtol=1e-6)
    path = tmp_path / "one.png"
    assert_png(plotting.plot_subsets(frame, path=path), path)
    shifted = frame.copy()
    shifted["mean_prediction"] += 0.1
    path = tmp_path / "several.png"
    figure = plotting.plot_subsets({"uniform": frame, "miam": shifted}, path=path)
    assert_png(figure, path)
    heat = figure.axes[0].images[0].get_array()
    assert heat.shape == (2**m, 2)  # every subset + the mean row, per strategy


@pytest.mark.parametrize("m", SIZES)
def test_plot_shapley(tmp_path, m):
    frame = pd.DataFrame(
        {"value": np.linspace(-0.1, 0.3, m), "std_error": np.full(m, 0.02)},
        index=pd.Index(names(m), name="group"),
    )
    frame.attrs["metric"] = "auc"
    path = tmp_path / "shapley.png"
    assert_png(plotting.plot_shapley(frame, path=path), path)
    path = tmp_path / "series.png"
    assert_png(plotting.plot_shapley(frame["value"], path=path), path)


@pytest.mark.parametrize("m", SIZES)
def test_plot_image_contributions(tmp_path, m):
    values = np.linspace(-1, 1, m * m)
    path = tmp_path / "grid.png"
    assert_png(plotting.plot_image_contributions(values, (m, m), path=path), path)
    image = np.random.default_rng(0).normal(size=(8 * m, 8 * m, 4))  # R, G, B, NIR
    path = tmp_path / "overlay.png"
    assert_png(
        plotting.plot_image_contributions(values, (m, m), image=image, path=path),
        path,
    )
    with pytest.raises(ValueError, match="patch grid"):
        plotting.plot_image_contributions(values, (m, m + 1))


@pytest.mark.parametrize("m", SIZES)
def test_plot_time_contributions(tmp_path, m):
    frame = pd.DataFrame(
        {"value": np.sin(np.arange(m)), "std_error": np.full(m, 0.1)},
        index=[str(2000 + i) for i in range(m)],
    )
    path = tmp_path / "time.png"
    assert_png(plotting.plot_time_contributions(frame, path=path), path)
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_time_contributions(frame, labels=["x"])


def test_plot_hypercube_rejects_one_modality():
    with pytest.raises(ValueError, match="at least 2"):
        plotting.plot_hypercube("uniform", num_modalities=1)
