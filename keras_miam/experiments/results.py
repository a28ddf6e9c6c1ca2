"""Results of experiments as plain numbers: subset scores and JSON-ready values."""

import math

import numpy as np

from keras_miam.evaluation import selections


def subset_scores(frame, modalities=None, summary=True):
    """`{subset label: metric}` from an `evaluate_subsets` frame.

    The labels are the frame's (`keras_miam.evaluation.subset_label`:
    'env+image'); labels written with spaces by older versions
    ('env + image') are read as the same subset.

    Args:
        frame: the DataFrame returned by `keras_miam.evaluation.evaluate_subsets`
            (its subset rows are read, summary rows ignored).
        modalities: optional modality names: the members of each label are
            then put in this order (so labels match across tables).
        summary: whether to add "average", the mean over the subsets.

    Returns:
        dict `{"env": 0.83, "env+image": 0.84, ..., "average": 0.79}`.

    Example:

    >>> frame = km.evaluation.evaluate_subsets(model, (x_test, y_test))
    >>> subset_scores(frame)["image"]
    0.66...
    """
    rows = frame[frame["kind"] == "subset"]
    metric = frame.attrs["metric"]
    scores = {}
    for label, value in rows[metric].items():
        members = selections.parse_label(label)
        if modalities is not None:
            order = {name: i for i, name in enumerate(modalities)}
            members = sorted(members, key=lambda name: order.get(name, len(order)))
        scores[selections.subset_label(members)] = float(value)
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
