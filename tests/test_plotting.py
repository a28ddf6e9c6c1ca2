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


def drawn_inside(figure):
    """Draws the figure; asserts that its titles, labels and ticks fit in it (0.05 in)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    drawn, page = figure.get_tightbbox(renderer), figure.bbox_inches
    assert (
        drawn.x0 >= page.x0 - 0.05
        and drawn.y0 >= page.y0 - 0.05
        and drawn.x1 <= page.x1 + 0.05
        and drawn.y1 <= page.y1 + 0.05
    ), f"the figure draws {drawn.bounds} beyond its page {page.bounds}"
    return renderer


def points_inside(ax):
    """Every scatter point strictly inside the axes' limits (not under a spine)."""
    limits = [ax.get_xlim(), ax.get_ylim()]
    if ax.name == "3d":
        limits.append(ax.get_zlim())
    count = 0
    for collection in ax.collections:
        # A 3-D scatter keeps its data coordinates in `_offsets3d`.
        offsets = getattr(collection, "_offsets3d", None)
        offsets = np.column_stack(offsets if offsets else collection.get_offsets().T)
        for column, (low, high) in zip(offsets.T, limits):
            assert np.all((column > low) & (column < high))
        count += len(offsets)
    return count


@pytest.mark.parametrize("m", SIZES)
def test_plot_hypercube(tmp_path, m):
    state = strategies.dynamics_state(
        m, [0.9] + [0.5] * (m - 1), [0.01] + [0.1] * (m - 1)
    )
    path = tmp_path / "miam.png"
    figure = plotting.plot_hypercube("miam", m, num_samples=200, state=state, path=path)
    assert_png(figure, path)
    drawn_inside(figure)
    if m > 3:  # An M x M grid: histograms on the diagonal, pairs elsewhere.
        assert len(figure.axes) == m * m
        assert figure.get_suptitle().startswith("MIAM")
        assert [figure.axes[i * m].get_ylabel() for i in range(m)] == [
            f"p_{i + 1}" for i in range(m)
        ]
        assert len(figure.axes[0].patches) == 20  # The histogram of p_1.
        assert points_inside(figure.axes[1]) == 200
    else:
        (ax,) = figure.axes
        assert ax.get_title() == "MIAM"
        assert ax.get_xlabel() == "p_1" and ax.get_ylabel() == "p_2"
        assert m == 2 or ax.get_zlabel() == "p_3"
        assert points_inside(ax) == 200
    layer = MIAMMasking(names(m), strategy="uniform_hypercube")
    layer.build({n: (None, 2, 4) for n in names(m)})
    path = tmp_path / "layer.png"
    figure = plotting.plot_hypercube(layer, num_samples=200, path=path)
    assert_png(figure, path)
    assert (
        figure.axes[-1 if m > 3 else 0].get_xlabel() == f"p_mod_{m - 1 if m > 3 else 0}"
    )


@pytest.mark.parametrize("m", SIZES)
def test_corner_strategies_show_one_marker_per_corner(m):
    # ModalityDropout and OPM draw only corners of the cube: each corner is one
    # marker sized by its share, inside the axes, not hidden under a spine.
    figure = plotting.plot_strategies(
        ["modality_dropout", "opm"], num_modalities=m, num_samples=400
    )
    drawn_inside(figure)
    dropout, opm = figure.axes
    assert [dropout.get_title(), opm.get_title()] == ["ModalityDropout", "OPM"]
    corners = dropout.collections[-1]
    assert 2 ** min(m, 3) - 1 <= points_inside(dropout) <= 2 ** min(m, 3)
    sizes = corners.get_sizes()
    assert sizes.min() >= 15 and np.all(sizes > 0)
    assert len(opm.collections[-1].get_offsets()) >= 2


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
    renderer = drawn_inside(figure)
    for ax in figure.axes:
        assert ax.get_title() and ax.get_xlabel() == "p_1"
        if m >= 3:  # The z label clears its tick labels.
            label = ax.zaxis.label.get_window_extent(renderer)
            for tick in ax.zaxis.get_ticklabels():
                assert not label.overlaps(tick.get_window_extent(renderer))


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
    figure = plotting.plot_subsets(frame, path=path)
    assert_png(figure, path)
    assert figure.axes[0].get_title() == "mean_prediction per subset of modalities"
    shifted = frame.copy()
    shifted["mean_prediction"] += 0.1
    path = tmp_path / "several.png"
    figure = plotting.plot_subsets({"uniform": frame, "miam": shifted}, path=path)
    assert_png(figure, path)
    drawn_inside(figure)
    ax, colorbar = figure.axes
    heat = ax.images[0].get_array()
    assert heat.shape == (2**m, 2)  # every subset + the mean row, per strategy
    assert ax.get_ylabel() == "visible modalities" and ax.get_xlabel() == "model"
    assert colorbar.get_ylabel() == "mean_prediction"
    written = [t.get_text() for t in ax.texts]
    assert written[:2] == [f"{heat[0, 0]:.3f}", f"{heat[0, 1]:.3f}"]
    assert len(written) == heat.size


@pytest.mark.parametrize("m", SIZES)
def test_plot_shapley(tmp_path, m):
    frame = pd.DataFrame(
        {"value": np.linspace(-0.1, 0.3, m), "std_error": np.full(m, 0.02)},
        index=pd.Index(names(m), name="group"),
    )
    frame.attrs["metric"] = "auc"
    path = tmp_path / "shapley.png"
    figure = plotting.plot_shapley(frame, path=path)
    assert_png(figure, path)
    drawn_inside(figure)
    (ax,) = figure.axes
    assert ax.get_title() == "Shapley values (auc)"
    assert ax.get_xlabel() == "Shapley value (auc)"
    assert [t.get_text() for t in ax.get_yticklabels()] == names(m)
    assert [round(b.get_width(), 6) for b in ax.patches] == list(
        np.round(frame["value"], 6)
    )
    path = tmp_path / "series.png"
    figure = plotting.plot_shapley(dict(frame["value"]), path=path)
    assert_png(figure, path)
    assert figure.axes[0].get_title() == "Shapley values"


@pytest.mark.parametrize("m", SIZES)
def test_plot_image_contributions(tmp_path, m):
    # Close values (as a real image's patches give) stay readable: one outlined
    # cell per patch with its value written in it, and a labelled colour bar.
    values = -0.009 - 0.004 * np.linspace(0, 1, m * m)
    path = tmp_path / "grid.png"
    figure = plotting.plot_image_contributions(values, (m, m), path=path)
    assert_png(figure, path)
    drawn_inside(figure)
    ax, colorbar = figure.axes
    assert ax.get_title() == "Contribution of each image patch"
    assert colorbar.get_ylabel() == "Shapley value"
    assert [t.get_text() for t in ax.texts] == [f"{v:.2g}" for v in values]
    assert len(ax.get_xticks(minor=True)) == m + 1  # The patch grid's lines.
    image = np.random.default_rng(0).normal(size=(8 * m, 8 * m, 4))  # R, G, B, NIR
    path = tmp_path / "overlay.png"
    frame = pd.DataFrame({"value": values})
    frame.attrs["metric"] = "auc"
    figure = plotting.plot_image_contributions(frame, (m, m), image=image, path=path)
    assert_png(figure, path)
    drawn_inside(figure)
    image_ax, heat_ax, colorbar = figure.axes
    assert figure.get_suptitle() == "Contribution of each image patch"
    assert image_ax.images[0].get_array().shape == (8 * m, 8 * m, 3)
    assert colorbar.get_ylabel() == "Shapley value (auc)"
    assert len(heat_ax.texts) == m * m
    with pytest.raises(ValueError, match="patch grid"):
        plotting.plot_image_contributions(values, (m, m + 1))


@pytest.mark.parametrize("m", SIZES)
def test_plot_time_contributions(tmp_path, m):
    frame = pd.DataFrame(
        {"value": np.sin(np.arange(m)), "std_error": np.full(m, 0.1)},
        index=[str(2000 + i) for i in range(m)],
    )
    frame.attrs["metric"] = "auc"
    path = tmp_path / "time.png"
    figure = plotting.plot_time_contributions(frame, path=path)
    assert_png(figure, path)
    drawn_inside(figure)
    (ax,) = figure.axes
    assert ax.get_title() == "Contribution of each time segment"
    assert ax.get_ylabel() == "Shapley value (auc)"
    assert ax.get_xlabel() == "time segment"
    assert ax.lines[0].get_marker() == "o" and len(ax.lines[0].get_xdata()) == m
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_time_contributions(frame, labels=["x"])


def test_plot_hypercube_rejects_one_modality():
    with pytest.raises(ValueError, match="at least 2"):
        plotting.plot_hypercube("uniform", num_modalities=1)
