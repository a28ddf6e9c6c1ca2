"""Results of experiments as plain numbers: subset scores and JSON-ready values."""

import math

import numpy as np


def subset_label(subset):
    """The column name of a subset of modalities, e.g. 'env+image'."""
    return "+".join(subset)


def subset_scores(frame, modalities, summary=True):
    """`{subset label: metric}` from an `evaluate_subsets` frame.

    Args:
        frame: the DataFrame returned by `keras_miam.evaluation.evaluate_subsets`
            (its subset rows are read, summary rows ignored).
        modalities: the modality names, in column order.
        summary: whether to add "average", the mean over the subsets.

    Returns:
        dict `{"env": 0.83, "env+image": 0.84, ..., "average": 0.79}`.

    Example:

    >>> frame = km.evaluation.evaluate_subsets(model, (x_test, y_test))
    >>> subset_scores(frame, ["env", "image"])["image"]
    0.66...
    """
    rows = frame[frame["kind"] == "subset"]
    metric = frame.attrs["metric"]
    scores = {}
    for _, row in rows.iterrows():
        subset = [m for m in modalities if bool(row[m])]
        scores[subset_label(subset)] = float(row[metric])
    if summary:
        scores["average"] = float(np.mean(list(scores.values())))
    return scores


def jsonable(value):
    """A copy of nested dicts/lists/numbers that `json.dumps` writes as is.

    NaN and infinities become None (null), numpy scalars Python numbers,
    dict keys strings.

    Example:

    >>> jsonable({"auc": np.float32(0.5), "loss": float("nan"), 3: [np.int64(2)]})
    {'auc': 0.5, 'loss': None, '3': [2]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
