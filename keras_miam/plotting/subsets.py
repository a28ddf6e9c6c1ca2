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

    Args:
        frame: a table of `keras_miam.evaluation.evaluate_subsets`, or a dict
            `{column name: table}` (one column per model).
        metric: the metric column; defaults to `frame.attrs["metric"]`.
        include_mean: whether to add the 'mean (all subsets)' row.
        cmap: matplotlib colormap.
        title: optional title.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    frames = {
        name: keras_miam.evaluation.evaluate_subsets(model, (x, y))
        for name, model in models.items()
    }
    keras_miam.plotting.plot_subsets(frames, path="subsets.png")
    ```

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Table 1).
    """
    frames = frame if isinstance(frame, dict) else {None: frame}
    if not frames:
        raise ValueError("`frame` is an empty dict.")
    columns = {}
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
        values = table.loc[table["kind"] == "subset", column].rename(column)
        if include_mean:
            values[MEAN_ROW] = values.mean()
        columns[column if name is None else str(name)] = values
    metrics = ", ".join(sorted({values.name for values in columns.values()}))
    grid = pd.DataFrame(columns)  # Union of the subsets, first table's order.
    data = grid.to_numpy(dtype="float64")
    rows, cols = data.shape
    width = 1.6 + 1.1 * cols + 0.07 * max(len(str(label)) for label in grid.index)
    figure = new_figure((max(4.5, width), 1.4 + 0.32 * rows))
    ax = figure.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, aspect="auto")
    ax.set_xticks(range(cols), grid.columns, rotation=30, ha="right")
    ax.set_yticks(range(rows), grid.index)
    finite = data[np.isfinite(data)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), value in np.ndenumerate(data):
        if np.isfinite(value):
            color = "black" if value > middle else "white"
            style = {"ha": "center", "va": "center", "size": "small", "color": color}
            ax.text(j, i, f"{value:.3f}", **style)
    if include_mean:
        ax.axhline(rows - 1.5, color="white", linewidth=2)
    figure.colorbar(image, ax=ax, label=metrics)
    ax.set(ylabel="visible modalities", xlabel="model" if len(frames) > 1 else "")
    ax.set_title(title or f"{metrics} per subset of modalities")
    return finish(figure, path)
