"""Shapley values as bars, image-patch heatmaps and curves over time."""

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize

from keras_miam.plotting._figure import figure_and_axes
from keras_miam.plotting._figure import finish
from keras_miam.plotting._figure import new_figure


def _read(values):
    """(names, values, standard errors or None, ' (<metric>)' or '')."""
    metric = getattr(values, "attrs", {}).get("metric")
    metric = f" ({metric})" if metric else ""
    errors = None
    if isinstance(values, pd.DataFrame):
        if "value" not in values:
            raise ValueError(
                "Expected a frame with a 'value' column (as modality_shapley "
                f"and token_shapley return); columns: {list(values.columns)}."
            )
        if "std_error" in values:
            errors = values["std_error"].to_numpy("float64")
        values = values["value"]
    keep = isinstance(values, (dict, pd.Series))
    values = pd.Series(values if keep else np.ravel(values))
    return list(values.index), values.to_numpy("float64"), errors, metric


def plot_shapley(values, ax=None, title=None, path=None):
    """Horizontal bars of Shapley values, with standard-error bars.

    Args:
        values: a `keras_miam.explain.modality_shapley` or `token_shapley`
            frame (columns `value`, `std_error`), a Series or a dict.
        ax: optional matplotlib Axes.
        title: optional title; defaults to 'Shapley values (<metric>)'.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    phi = keras_miam.explain.modality_shapley(model, (x, y))
    keras_miam.plotting.plot_shapley(phi, path="shapley.png")
    ```

    Reference:
        Shapley, "A value for n-person games", Contributions to the Theory
        of Games II, 1953.
    """
    names, heights, errors, metric = _read(values)
    if not len(heights):
        raise ValueError("No values to plot.")
    figure, ax = figure_and_axes(ax, (5.5, 1.3 + 0.3 * len(heights)))
    positions = np.arange(len(heights))
    ax.barh(positions, heights, xerr=errors, capsize=3 if errors is not None else 0)
    ax.set_yticks(positions, [str(n) for n in names])
    ax.invert_yaxis()
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.set_xlabel(f"Shapley value{metric}")
    ax.set_title(title or f"Shapley values{metric}")
    return finish(figure, path)


def plot_image_contributions(
    values, grid_shape, image=None, cmap="RdBu_r", ax=None, title=None, path=None
):
    """Contributions of image patches as a heatmap on the patch grid.

    Each patch is an outlined cell with its value written in it (up to 100
    patches). Given `image`, the image is drawn on the left with the grid.

    Args:
        values: one value per patch, row-major: a `token_shapley` frame, a
            Series or an array.
        grid_shape: `(rows, cols)` of the patch grid.
        image: optional `(H, W)` or `(H, W, C)` image (RGB: the first three
            channels).
        cmap: a diverging colormap.
        ax: optional matplotlib Axes for the heatmap (without `image`).
        title: optional title; defaults to 'Contribution of each image patch'.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    phi = keras_miam.explain.token_shapley(model, x, groups=None, target=(0, 5))
    patches = phi.loc[[f"image[{i}]" for i in range(64)]]
    keras_miam.plotting.plot_image_contributions(patches, (8, 8), image=x["image"][0])
    ```

    Reference:
        Zbinden et al., "MaskSDM with Shapley values to improve flexibility,
        robustness, and explainability in species distribution modeling",
        Methods in Ecology and Evolution, 2025.
    """
    _, heat, _, metric = _read(values)
    rows, cols = (int(n) for n in grid_shape)
    if heat.size != rows * cols:
        raise ValueError(f"{heat.size} values do not fill a {rows}x{cols} patch grid.")
    if image is not None and ax is not None:
        raise ValueError("With `image` the figure has two panels: pass no `ax`.")
    heat = heat.reshape(rows, cols)
    title = title or "Contribution of each image patch"
    if image is None:
        figure, ax = figure_and_axes(ax, (4.8, 4.4))
        ax.set_title(title)
    else:
        figure = new_figure((8.4, 4.4))
        image_ax, ax = figure.subplots(1, 2)
        image = np.asarray(image)
        if image.ndim == 3:
            image = image[..., :3] if image.shape[-1] >= 3 else image[..., 0]
        image_ax.imshow(Normalize()(image), extent=(0, cols, rows, 0), cmap="gray")
        image_ax.set_title("image")
        _patch_grid(image_ax, rows, cols, color="white")
        ax.set_title("patch contributions")
        figure.suptitle(title)
    limit = float(np.nanmax(np.abs(heat))) or 1.0
    extent, scale = (0, cols, rows, 0), {"vmin": -limit, "vmax": limit}
    shown = ax.imshow(heat, cmap, extent=extent, interpolation="nearest", **scale)
    _patch_grid(ax, rows, cols)
    style = {"ha": "center", "va": "center", "size": "x-small" if cols > 5 else "small"}
    for (i, j), v in np.ndenumerate(heat if heat.size <= 100 else []):
        color = "white" if abs(v) > 0.6 * limit else "black"
        ax.text(j + 0.5, i + 0.5, f"{v:.2g}", color=color, **style)
    figure.colorbar(shown, ax=ax, label=f"Shapley value{metric}")
    return finish(figure, path)


def _patch_grid(ax, rows, cols, color="0.2"):
    """Outlines the patches; ticks count patches."""
    ax.set_xticks(np.arange(cols) + 0.5, [str(j) for j in range(cols)])
    ax.set_yticks(np.arange(rows) + 0.5, [str(i) for i in range(rows)])
    ax.set_xticks(np.arange(cols + 1), minor=True)
    ax.set_yticks(np.arange(rows + 1), minor=True)
    ax.grid(which="minor", color=color, linewidth=0.8)
    ax.tick_params(which="both", length=0, labelsize="small")
    ax.set(xlabel="patch column", ylabel="patch row")


def plot_time_contributions(values, labels=None, ax=None, title=None, path=None):
    """Contributions of time segments as a curve, with a +-1 SE band.

    Args:
        values: one value per time segment: a `token_shapley` frame, a
            Series or an array.
        labels: optional tick labels (e.g. years); defaults to the index.
        ax: optional matplotlib Axes.
        title: optional title; defaults to 'Contribution of each time segment'.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    years = {str(y): {"climate": [y - 2000]} for y in range(2000, 2019)}
    phi = keras_miam.explain.token_shapley(model, (x, y), groups=years)
    keras_miam.plotting.plot_time_contributions(phi, path="climate.png")
    ```
    """
    names, heights, errors, metric = _read(values)
    labels = names if labels is None else list(labels)
    if len(labels) != len(heights):
        raise ValueError(f"{len(labels)} labels for {len(heights)} time segments.")
    figure, ax = figure_and_axes(ax, (max(4.5, 0.35 * len(heights)), 3.8))
    x = np.arange(len(heights))
    ax.plot(x, heights, marker="o")
    if errors is not None:
        ax.fill_between(x, heights - errors, heights + errors, alpha=0.25)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_xticks(x, [str(label) for label in labels], rotation=45 if len(x) > 8 else 0)
    ax.set_ylabel(f"Shapley value{metric}")
    ax.set_xlabel(getattr(values, "index", pd.Index([])).name or "time segment")
    ax.set_title(title or "Contribution of each time segment")
    return finish(figure, path)
