"""Shapley values as bars, image-patch heatmaps and curves over time."""

import numpy as np
import pandas as pd

from keras_miam.plotting._figure import figure_and_axes
from keras_miam.plotting._figure import finish


def _values_and_errors(values):
    """(names, values, standard errors or None) from a frame, Series or dict."""
    if isinstance(values, pd.DataFrame):
        if "value" not in values:
            raise ValueError(
                "Expected a frame with a 'value' column (as modality_shapley "
                f"and token_shapley return); columns: {list(values.columns)}."
            )
        errors = (
            values["std_error"].to_numpy("float64") if "std_error" in values else None
        )
        return list(values.index), values["value"].to_numpy("float64"), errors
    if isinstance(values, dict):
        values = pd.Series(values)
    if isinstance(values, pd.Series):
        return list(values.index), values.to_numpy("float64"), None
    values = np.asarray(values, "float64").reshape(-1)
    return list(range(len(values))), values, None


def plot_shapley(values, ax=None, title=None, path=None):
    """Horizontal bars of Shapley values, with standard-error bars.

    Args:
        values: the frame of `modality_shapley` or `token_shapley` (columns
            `value` and optionally `std_error`), a Series or a dict.
        ax: optional matplotlib Axes.
        title: optional title; defaults to 'Shapley values (<metric>)'.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> plot_shapley(modality_shapley(model, (x, y)), path="shapley.png")

    Reference:
        Shapley, "A value for n-person games", Contributions to the Theory
        of Games II, 1953.
    """
    names, heights, errors = _values_and_errors(values)
    if not len(heights):
        raise ValueError("No values to plot.")
    figure, ax = figure_and_axes(ax, (5.5, 0.9 + 0.3 * len(heights)))
    positions = np.arange(len(heights))
    ax.barh(positions, heights, xerr=errors, capsize=3 if errors is not None else 0)
    ax.set_yticks(positions, [str(n) for n in names])
    ax.invert_yaxis()
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    metric = getattr(values, "attrs", {}).get("metric")
    ax.set_xlabel("Shapley value" + (f" ({metric})" if metric else ""))
    if title:
        ax.set_title(title)
    return finish(figure, path)


def plot_image_contributions(
    values, grid_shape, image=None, alpha=0.6, cmap="RdBu_r", ax=None, path=None
):
    """Contributions of image patches as a heatmap on the patch grid.

    Args:
        values: one value per patch in row-major order (the token order of
            `ImagePatchTokenizer`): a `token_shapley` frame, a Series or an
            array of `rows * cols` values.
        grid_shape: `(rows, cols)` of the patch grid.
        image: optional image `(H, W)` or `(H, W, C)` drawn underneath
            (the first three channels as RGB, floats rescaled to [0, 1]).
        alpha: opacity of the heatmap over an image.
        cmap: a diverging colormap; the colour scale is symmetric around 0.
        ax: optional matplotlib Axes.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> phi = token_shapley(model, x, groups=None, target=(0, 5))
    >>> patches = phi.loc[[f"image[{i}]" for i in range(64)]]
    >>> plot_image_contributions(patches, (8, 8), image=x["image"][0])

    Reference:
        Zbinden et al., "MaskSDM with Shapley values to improve flexibility,
        robustness, and explainability in species distribution modeling",
        Methods in Ecology and Evolution, 2025.
    """
    _, heat, _ = _values_and_errors(values)
    rows, cols = (int(n) for n in grid_shape)
    if heat.size != rows * cols:
        raise ValueError(f"{heat.size} values do not fill a {rows}x{cols} patch grid.")
    heat = heat.reshape(rows, cols)
    figure, ax = figure_and_axes(ax, (4.8, 4.2))
    limit = float(np.nanmax(np.abs(heat))) or 1.0
    extent = (0, cols, rows, 0)
    if image is not None:
        image = np.asarray(image)
        if image.ndim == 3:
            image = image[..., :3] if image.shape[-1] >= 3 else image[..., 0]
        if image.dtype.kind == "f":
            low, high = np.nanmin(image), np.nanmax(image)
            image = (image - low) / (high - low) if high > low else image * 0
        extent = (0, image.shape[1], image.shape[0], 0)
        ax.imshow(image, extent=extent, cmap="gray" if image.ndim == 2 else None)
    shown = ax.imshow(
        heat,
        cmap=cmap,
        vmin=-limit,
        vmax=limit,
        extent=extent,
        alpha=alpha if image is not None else 1.0,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    figure.colorbar(shown, ax=ax, label="contribution")
    return finish(figure, path)


def plot_time_contributions(values, labels=None, ax=None, title=None, path=None):
    """Contributions of time segments as a curve, with a +-1 SE band.

    Args:
        values: one value per segment in time order: a `token_shapley`
            frame (its `std_error` gives the band), a Series or an array.
        labels: optional tick labels (e.g. years); defaults to the frame's
            index.
        ax: optional matplotlib Axes.
        title: optional title.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> years = {str(y): {"climate": [y - 2000]} for y in range(2000, 2019)}
    >>> phi = token_shapley(model, (x, y), groups=years)
    >>> plot_time_contributions(phi, path="climate.png")

    Reference:
        Zbinden et al., "MaskSDM with Shapley values to improve flexibility,
        robustness, and explainability in species distribution modeling",
        Methods in Ecology and Evolution, 2025.
    """
    names, heights, errors = _values_and_errors(values)
    labels = names if labels is None else list(labels)
    if len(labels) != len(heights):
        raise ValueError(f"{len(labels)} labels for {len(heights)} time segments.")
    figure, ax = figure_and_axes(ax, (max(4.5, 0.35 * len(heights)), 3.4))
    x = np.arange(len(heights))
    ax.plot(x, heights, marker="o")
    if errors is not None:
        ax.fill_between(x, heights - errors, heights + errors, alpha=0.25)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_xticks(x, [str(label) for label in labels], rotation=45 if len(x) > 8 else 0)
    ax.set_ylabel("contribution")
    if title:
        ax.set_title(title)
    return finish(figure, path)
