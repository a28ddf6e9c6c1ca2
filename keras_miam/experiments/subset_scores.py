"""The scores of an `evaluate_subsets` table as a plain dict."""

import numpy as np

from keras_miam.evaluation import selections


def subset_scores(frame, modalities=None, summary=True):
    """`{subset label: metric}` from an `evaluate_subsets` frame.

    Args:
        frame: the DataFrame returned by `keras_miam.evaluation.evaluate_subsets`
            (its subset rows are read, summary rows ignored).
        modalities: optional modality names: the members of each label are
            then put in this order (so labels match across tables).
        summary: whether to add "average", the mean over the subsets.

    Returns:
        dict `{"env": 0.83, "env+image": 0.84, ..., "average": 0.79}`.

    Example:

    >>> frame = keras_miam.evaluation.evaluate_subsets(model, (x_test, y_test))
    >>> keras_miam.experiments.subset_scores(frame)["image"]
    0.66...
    """
    rows = frame[frame["kind"] == "subset"]
    order = {name: i for i, name in enumerate(modalities or ())}
    scores = {}
    for label, value in rows[frame.attrs["metric"]].items():
        members = selections.parse_label(label)
        if modalities is not None:
            members = sorted(members, key=lambda name: order.get(name, len(order)))
        scores[selections.subset_label(members)] = float(value)
    if summary:
        scores["average"] = float(np.mean(list(scores.values())))
    return scores
