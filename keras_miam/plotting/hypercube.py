"""Masking strategies drawn as point clouds in the hypercube [0, 1]^M."""

import itertools

import keras
import numpy as np

from keras_miam import strategies as strategies_lib
from keras_miam.layers.miam_masking import MIAMMasking
from keras_miam.plotting._figure import figure_and_axes
from keras_miam.plotting._figure import finish
from keras_miam.plotting._figure import new_figure

PAD = 0.05  # Axis margin, so that points on the faces are not hidden.
MAX_ATOMS = 64  # At most this many distinct points: one marker per point.
BATCHES = 16  # Calls of `sample` per plot, as training batches.


def plot_hypercube(
    strategy_or_layer,
    num_modalities=3,
    num_samples=2000,
    state=None,
    single_token=False,
    seed=0,
    ax=None,
    path=None,
    title=None,
):
    """Draws samples p = (p_1, ..., p_M) of a masking strategy.

    A scatter in the unit square (M = 2) or cube (M = 3), else a grid of
    pairwise projections with histograms of p_m on the diagonal. A few
    distinct points (Constant, ModalityDropout, OPM) get one marker each,
    sized by its share.

    Args:
        strategy_or_layer: a strategy (name, config or instance) or a built
            `keras_miam.layers.MIAMMasking` (its strategy, state and
            modalities).
        num_modalities: M, when a strategy is given.
        num_samples: number of draws.
        state: `keras_miam.strategies.dynamics_state` for MIAM and OPM.
        single_token: whether every modality is one token.
        seed: seed of the draws.
        ax: optional matplotlib Axes (3-D for M = 3; none for M > 3).
        path: optional file to write.
        title: optional title; defaults to the strategy's class name.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    state = keras_miam.strategies.dynamics_state(
        3, scores=[0.9, 0.6, 0.6], derivatives=[0.01, 0.05, 0.05]
    )
    keras_miam.plotting.plot_hypercube("miam", state=state, path="miam.png")
    ```

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Figure 1).
    """
    strategy, p, labels = _sample(
        strategy_or_layer, num_modalities, num_samples, state, single_token, seed
    )
    title = type(strategy).__name__ if title is None else title
    m = p.shape[1]
    if m <= 3:
        figure, ax = figure_and_axes(
            ax, (4.5, 4.5), **({"projection": "3d"} if m == 3 else {})
        )
        if m == 3 and ax.name != "3d":
            raise ValueError("With M=3 modalities, `ax` must be a 3-D Axes.")
        scatter(ax, p, labels)
        ax.set_title(title)
        return finish(figure, path)
    if ax is not None:
        raise ValueError(
            f"With M={m} modalities the plot is a {m}x{m} grid: it needs a "
            "figure of its own, not `ax`."
        )
    figure = new_figure((1.8 * m, 1.8 * m), layout=None)  # Fixed margins: fast.
    axes = figure.subplots(m, m, gridspec_kw={"wspace": 0.1, "hspace": 0.1})
    figure.subplots_adjust(left=0.1, bottom=0.08, right=0.98, top=0.94)
    for (i, j), axis in np.ndenumerate(axes):
        if i == j:
            axis.hist(p[:, i], bins=20, range=(0.0, 1.0), color="C0")
            axis.set(xlim=(-PAD, 1 + PAD), yticks=[])
        else:
            scatter(axis, p[:, [j, i]], labels=None)
        axis.tick_params(labelbottom=i == m - 1, labelleft=j == 0 and i != j)
        axis.set(xlabel=labels[j] if i == m - 1 else "")
        axis.set(ylabel=labels[i] if j == 0 else "")
    figure.suptitle(f"{title}: pairs of p_m, histograms of p_m on the diagonal")
    return finish(figure, path)


def plot_strategies(
    strategies=None, num_modalities=3, num_samples=1000, state=None, seed=0, path=None
):
    """Draws several masking strategies side by side, as in the paper.

    Args:
        strategies: strategies (names, configs or instances); defaults to
            the eight of `keras_miam.strategies`.
        num_modalities: M (the cube shows p_1, p_2, p_3).
        num_samples: draws per strategy.
        state: dynamics state for MIAM and OPM; defaults to modality 1
            dominant (scores 0.9 vs 0.6, derivatives 0.01 vs 0.05).
        seed: seed of the draws.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    keras_miam.plotting.plot_strategies(path="strategies.png")
    ```
    """
    m = int(num_modalities)
    if strategies is None:
        strategies = [cls() for cls in strategies_lib.ALL_STRATEGIES]
    strategies = [strategies_lib.get(s) for s in strategies]
    if not strategies:
        raise ValueError("`strategies` is empty.")
    if state is None:
        state = strategies_lib.dynamics_state(
            m, [0.9] + [0.6] * (m - 1), [0.01] + [0.05] * (m - 1)
        )
    columns = min(4, len(strategies))
    rows = -(-len(strategies) // columns)
    figure = new_figure((3.2 * columns, 3.2 * rows))
    for i, strategy in enumerate(strategies):
        ax = figure.add_subplot(
            rows, columns, i + 1, **({"projection": "3d"} if m >= 3 else {})
        )
        _, p, labels = _sample(strategy, m, num_samples, state, False, seed)
        scatter(ax, p[:, :3], labels[:3])
        ax.set_title(type(strategy).__name__)
    if m > 3:
        figure.suptitle(f"p_1, p_2, p_3 of M = {m} modalities")
    return finish(figure, path)


def _sample(strategy_or_layer, num_modalities, num_samples, state, single_token, seed):
    if isinstance(strategy_or_layer, MIAMMasking):
        layer = strategy_or_layer
        own_state = layer.dynamics()  # Raises if the layer is not built.
        strategy, single_token = layer.strategy, layer.single_token
        m, labels = layer.num_modalities, [f"p_{n}" for n in layer.modalities]
        state = own_state if state is None else state
    else:
        strategy, m = strategies_lib.get(strategy_or_layer), int(num_modalities)
        labels = [f"p_{i + 1}" for i in range(m)]
    if m < 2:
        raise ValueError(f"A hypercube plot needs at least 2 modalities; received {m}.")
    # Drawn batch by batch, as in training: OPM decides once per batch whether
    # to drop anything, so one big draw would show one of its two regimes only.
    seed = keras.random.SeedGenerator(seed)
    n = int(num_samples)
    batch = max(1, -(-n // BATCHES))
    p = [
        keras.ops.convert_to_numpy(
            strategy.sample(min(batch, n - start), m, seed, state, single_token)
        )
        for start in range(0, n, batch)
    ]
    if not p:
        raise ValueError(f"`num_samples` must be >= 1; received {num_samples}.")
    return strategy, np.concatenate(p), labels


def scatter(ax, p, labels):
    """Scatters (N, 2) or (N, 3) rates in the unit square or cube.

    A few distinct points get one marker each, its area proportional to
    its share of the draws, so that corner points stay visible."""
    points, counts = np.unique(np.round(p, 3), axis=0, return_counts=True)
    if len(points) <= MAX_ATOMS:
        p, style = points, {"s": 15 + 300 * counts / counts.sum(), "alpha": 0.9}
    else:
        style = {"s": 6, "alpha": 0.45}
    style.update(color="C0", linewidths=0, clip_on=False)
    limits = (-PAD, 1 + PAD)
    if p.shape[1] == 2:
        ax.scatter(p[:, 0], p[:, 1], **style)
        ax.set(xlim=limits, ylim=limits, aspect="equal")
        if labels:
            ax.set(xlabel=labels[0], ylabel=labels[1])
        return
    for a, b in itertools.combinations(itertools.product((0, 1), repeat=3), 2):
        if sum(x != y for x, y in zip(a, b)) == 1:  # An edge of the cube.
            ax.plot(*zip(a, b), color="0.7", linewidth=0.6)
    ax.scatter(p[:, 0], p[:, 1], p[:, 2], depthshade=False, **style)
    ticks = [0, 0.5, 1]
    ax.set(
        xlim=limits, ylim=limits, zlim=limits, xticks=ticks, yticks=ticks, zticks=ticks
    )
    ax.set_xlabel(labels[0], labelpad=-4)
    ax.set_ylabel(labels[1], labelpad=-4)
    ax.set_zlabel(labels[2], labelpad=1)
    ax.tick_params(pad=-2, labelsize="small")
    ax.set_box_aspect(None, zoom=0.8)  # Room for the z label.
