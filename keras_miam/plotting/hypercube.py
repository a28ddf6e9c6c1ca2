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

    Each point is one draw of the per-modality masking rates. M = 2 gives a
    scatter in the unit square, M = 3 a 3-D scatter in the unit cube, and
    M > 3 a grid of pairwise projections with histograms of each p_m on the
    diagonal. A strategy that draws a few points only (Constant,
    ModalityDropout, OPM) shows one marker per point, sized by its share.

    Args:
        strategy_or_layer: a strategy (name, config dict or
            `keras_miam.strategies.MaskingStrategy`) or a built
            `MIAMMasking` layer (its strategy, modalities, current state
            and `single_token` are used).
        num_modalities: M, when a strategy is given.
        num_samples: number of draws.
        state: dynamics state of MIAM / OPM (`strategies.dynamics_state(M,
            scores, derivatives)`); None = no scores yet (r_m = 1), or the
            layer's own state.
        single_token: whether every modality is one token (MixProdBeta
            then merges the all-ones corner), when a strategy is given.
        seed: seed of the draws.
        ax: optional matplotlib Axes (3-D for M = 3); not for M > 3.
        path: optional file to write (PNG from the extension).
        title: optional title; defaults to the strategy's class name.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> state = km.strategies.dynamics_state(
    ...     3, scores=[0.9, 0.6, 0.6], derivatives=[0.01, 0.05, 0.05])
    >>> plot_hypercube("miam", state=state, path="miam.png")

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Figure 1).
    """
    strategy, p, labels = _sample(
        strategy_or_layer,
        num_modalities,
        num_samples,
        state,
        single_token,
        seed,
    )
    title = type(strategy).__name__ if title is None else title
    m = p.shape[1]
    if m > 3:
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
                axis.set_xlim(-PAD, 1 + PAD)
                axis.set_yticks([])
            else:
                scatter(axis, p[:, [j, i]], labels=None)
            axis.tick_params(labelbottom=i == m - 1, labelleft=j == 0 and i != j)
            if i == m - 1:
                axis.set_xlabel(labels[j])
            if j == 0:
                axis.set_ylabel(labels[i])
        figure.suptitle(f"{title}: pairs of p_m, histograms of p_m on the diagonal")
        return finish(figure, path)
    figure, ax = figure_and_axes(
        ax, (4.5, 4.5), **({"projection": "3d"} if m == 3 else {})
    )
    if m == 3 and getattr(ax, "name", None) != "3d":
        raise ValueError("With M=3 modalities, `ax` must be a 3-D Axes.")
    scatter(ax, p, labels)
    ax.set_title(title)
    return finish(figure, path)


def plot_strategies(
    strategies=None,
    num_modalities=3,
    num_samples=1000,
    state=None,
    seed=0,
    path=None,
):
    """Draws several masking strategies side by side, as in the paper.

    Args:
        strategies: list of strategies (names, configs or instances);
            defaults to the eight of `keras_miam.strategies` (Constant,
            Uniform, Dirichlet, ModalityDropout, OPM, UniformHypercube,
            BetaHypercube, MIAM).
        num_modalities: M. With M = 2 each panel is a square; with M >= 3,
            the cube of p_1, p_2, p_3 (the first three coordinates of the
            M-dimensional draws).
        num_samples: draws per strategy.
        state: dynamics state for MIAM and OPM. Defaults to an
            illustrative imbalance where modality 1 dominates (scores 0.9
            vs 0.6, derivatives 0.01 vs 0.05); pass
            `strategies.dynamics_state(M)` to show them without scores.
        seed: seed of the draws.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> plot_strategies(path="strategies.png")

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Figure 1).
    """
    m = int(num_modalities)
    if m < 2:
        raise ValueError(f"`num_modalities` must be >= 2; received {m}.")
    if strategies is None:
        strategies = [cls() for cls in strategies_lib.ALL_STRATEGIES]
    strategies = [strategies_lib.get(s) for s in strategies]
    if not strategies:
        raise ValueError("`strategies` is empty.")
    if state is None:
        state = strategies_lib.dynamics_state(
            m,
            scores=[0.9] + [0.6] * (m - 1),
            derivatives=[0.01] + [0.05] * (m - 1),
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
        if not layer.built:
            raise ValueError("The MIAMMasking layer must be built first.")
        strategy, m = layer.strategy, layer.num_modalities
        state = layer.dynamics() if state is None else state
        single_token = layer.single_token
        labels = [f"p_{name}" for name in layer.modalities]
    else:
        strategy = strategies_lib.get(strategy_or_layer)
        m = int(num_modalities)
        labels = [f"p_{i + 1}" for i in range(m)]
    if m < 2:
        raise ValueError(f"A hypercube plot needs at least 2 modalities; received {m}.")
    if int(num_samples) < 1:
        raise ValueError(f"`num_samples` must be >= 1; received {num_samples}.")
    p = strategy.sample(
        int(num_samples), m, seed=seed, state=state, single_token=single_token
    )
    return strategy, np.asarray(keras.ops.convert_to_numpy(p)), labels


def scatter(ax, p, labels):
    """Scatters (N, 2) or (N, 3) rates in the unit square or cube.

    A distribution on a few points (Constant, ModalityDropout, OPM) is drawn
    as one marker per point, its area proportional to its share of the draws,
    so that corner points stay visible.
    """
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
    ax.set(xlim=limits, ylim=limits, zlim=limits)
    ticks = [0, 0.5, 1]
    ax.set(xticks=ticks, yticks=ticks, zticks=ticks)
    ax.set_xlabel(labels[0], labelpad=-4)
    ax.set_ylabel(labels[1], labelpad=-4)
    ax.set_zlabel(labels[2], labelpad=1)
    ax.tick_params(pad=-2, labelsize="small")
    ax.set_box_aspect(None, zoom=0.8)  # Room for the z label.
