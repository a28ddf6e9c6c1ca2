"""The exact, rank-based ROC AUC, NaN targets left out."""

import numpy as np


def macro_auc(y_true, y_score):
    """Exact ROC AUC averaged over the outputs that have both classes.

    Per output, the Mann-Whitney statistic (ties count one half), NaN
    targets left out. A NaN score of an observed target makes its output
    NaN. `MaskedAUC` is its streaming, thresholded form.

    Args:
        y_true: 0/1 targets (NaN: unobserved), `(N,)` or `(N, K)`.
        y_score: scores of the same shape.

    Example:

    >>> keras_miam.metrics.macro_auc(
    ...     [[1, 0], [0, np.nan], [1, 1]], [[0.9, 0.2], [0.1, 0.4], [0.8, 0.3]])
    1.0

    Reference:
        Hanley and McNeil, "The meaning and use of the area under a ROC
        curve", Radiology 1982.
    """
    y_true = np.reshape(np.asarray(y_true, "float64"), (len(y_true), -1))
    y_score = np.reshape(y_score, (len(y_score), -1))
    if y_true.shape != y_score.shape:
        raise ValueError(
            "`y_true` and `y_score` must have the same shape; received "
            f"{y_true.shape} and {y_score.shape}."
        )
    observed = ~np.isnan(y_true)
    if not np.all(np.isin(y_true[observed], (0.0, 1.0))):
        raise ValueError(
            "AUC needs 0/1 labels (NaN for unobserved ones); received "
            f"values {np.unique(y_true[observed])[:5].tolist()}."
        )
    positives = np.sum(y_true == 1.0, axis=0)
    negatives = np.sum(y_true == 0.0, axis=0)
    valid = (positives > 0) & (negatives > 0)
    if not np.any(valid):
        raise ValueError(
            "AUC is undefined: no output has both positive and negative "
            f"examples among these {len(y_true)} examples."
        )
    scores = np.ascontiguousarray(np.where(observed, y_score, np.nan)[:, valid].T)
    from scipy import stats  # imported on first use: light `import keras_miam`

    ranks = stats.rankdata(scores, axis=1, nan_policy="omit")
    rank_sums = np.sum(np.where(y_true[:, valid].T == 1.0, ranks, 0.0), axis=1)
    pos, neg = positives[valid], negatives[valid]
    auc = (rank_sums - pos * (pos + 1) / 2) / (pos * neg)
    bad = np.any(np.isnan(y_score[:, valid]) & observed[:, valid], axis=0)
    return float(np.mean(np.where(bad, np.nan, auc)))


def micro_auc(y_true, y_score):
    """Exact ROC AUC of all observed (example, output) pairs pooled:
    `macro_auc` of the flattened arrays (frequent outputs weigh more).

    Example:

    >>> keras_miam.metrics.micro_auc(
    ...     [[1, 0], [0, 1], [1, np.nan]], [[0.9, 0.5], [0.3, 0.4], [0.8, 0.1]])
    0.8333333333333334
    """
    return macro_auc(np.ravel(y_true), np.ravel(y_score))
