"""The table of `evaluate_subsets` as a heatmap (subsets x strategies)."""

import numpy as np
import pandas as pd

from keras_miam.plotting._figure import finish
from keras_miam.plotting._figure import new_figure

MEAN_ROW = "mean (all subsets)"


def plot_subsets(
    frame, metric=None, include_mean=True, cmap="viridis", title=None, path=None
):
    """Draws the metric of each input subset as an annotated heatmap.

    One row per subset (in the table's order), one column per model: give
    several tables as a dict `{strategy: frame}` to compare strategies as in
    the paper's tables.

    Args:
        frame: a table returned by `keras_miam.evaluation.evaluate_subsets`,
            or a dict `{column name: table}`.
        metric: the metric column; defaults to `frame.attrs["metric"]`.
        include_mean: whether to add the 'mean (all subsets)' row (the
            paper's average column), below a separating line.
        cmap: matplotlib colormap.
        title: optional title; defaults to '<metric> per subset of
            modalities'.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> frames = {name: evaluate_subsets(model, (x, y))
    ...           for name, model in models.items()}
    >>> plot_subsets(frames, path="subsets.png")

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Table 1).
    """
    frames = frame if isinstance(frame, dict) else {None: frame}
    if not frames:
        raise ValueError("`frame` is an empty dict.")
    columns, metrics = {}, set()
    for name, table in frames.items():
        if not isinstance(table, pd.DataFrame) or "kind" not in table:
            raise ValueError(
                "Expected tables returned by evaluate_subsets (with a 'kind' "
                f"column); received {type(table).__name__}."
            )
        column = metric or table.attrs.get("metric") or table.columns[-1]
        if column not in table:
            raise ValueError(
                f"The table has no '{column}' column; columns: {list(table.columns)}."
            )
        metrics.add(column)
        values = table.loc[table["kind"] == "subset", column]
        if include_mean:
            values = pd.concat([values, pd.Series({MEAN_ROW: values.mean()})])
        columns[column if name is None else str(name)] = values
    grid = pd.DataFrame(columns)  # Union of the subsets, first table's order.
    data = grid.to_numpy(dtype="float64")
    rows, cols = data.shape
    label_width = 0.07 * max(len(str(label)) for label in grid.index)
    figure = new_figure((max(4.5, 1.6 + 1.1 * cols + label_width), 1.4 + 0.32 * rows))
    ax = figure.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, aspect="auto")
    ax.set_xticks(range(cols), grid.columns, rotation=30, ha="right")
    ax.set_yticks(range(rows), grid.index)
    finite = data[np.isfinite(data)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), value in np.ndenumerate(data):
        if np.isfinite(value):
            ax.text(
                j,
                i,
                f"{value:.3f}",
                ha="center",
                va="center",
                fontsize="small",
                color="black" if value > middle else "white",
            )
    if include_mean:
        ax.axhline(rows - 1.5, color="white", linewidth=2)
    metric_names = ", ".join(sorted(metrics))
    figure.colorbar(image, ax=ax, label=metric_names)
    ax.set_ylabel("visible modalities")
    ax.set_xlabel("model" if len(frames) > 1 else "")
    ax.set_title(title or f"{metric_names} per subset of modalities")
    return finish(figure, path)
