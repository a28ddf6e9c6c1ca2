"""Ranking scores, NaN targets left out: macro AUC, top-k F1 and micro AUC.

`macro_auc` is the default metric of multi-label heads; `top_k_f1` and
`micro_auc` are GeoLifeCLEF's (also metric names: `metric="top_k_f1"`).
"""

import numpy as np
from scipy import stats

AVERAGES = ("samples", "micro")


def macro_auc(y_true, y_score):
    """Exact ROC AUC averaged over the outputs that have both classes.

    Per output, the AUC is the Mann-Whitney statistic (ties count one half),
    so it is exact (no thresholds) and identical for logits and
    probabilities. Outputs where every example is positive, or every
    example negative, have no AUC and are left out of the average, as in
    MaskSDM and MIAM ("macro-averaged over species present in the evaluated
    split"). A NaN target means "not observed" (e.g. a species not surveyed
    at a site): each output's AUC is computed over the examples where it is
    observed. A NaN score for an observed target leaves its output, and so
    the average, NaN.

    Args:
        y_true: 0/1 targets (NaN: unobserved), `(N,)` or `(N, K)`.
        y_score: scores of the same shape (or `(N, 1)` for `(N,)` targets).

    Returns:
        float, the mean AUC over the outputs with both classes.

    Example:

    >>> y_true = [[1, 0], [0, 0], [1, 1]]
    >>> macro_auc(y_true, [[0.9, 0.2], [0.1, 0.4], [0.8, 0.3]])
    0.75
    >>> macro_auc([[1, 0], [0, np.nan], [1, 1]], [[0.9, 0.2], [0.1, 0.4], [0.8, 0.3]])
    1.0

    Reference:
        Hanley and McNeil, "The meaning and use of the area under a ROC
        curve", Radiology 1982.
    """
    y_true, y_score = _check_targets(y_true, y_score, "AUC")
    observed = ~np.isnan(y_true)
    positives = np.sum(y_true == 1.0, axis=0)
    negatives = np.sum(y_true == 0.0, axis=0)
    valid = (positives > 0) & (negatives > 0)
    if not np.any(valid):
        raise ValueError(
            "AUC is undefined: no output has both positive and negative "
            f"examples among these {len(y_true)} examples."
        )
    # One row per output, contiguous (ranking along rows is faster than along
    # the strided example axis); scores ranked in their own dtype (a cast to
    # float64 would not change their order). Ties share their average rank.
    scores = np.ascontiguousarray(y_score[:, valid].T)
    labels = np.ascontiguousarray(y_true[:, valid].T)
    seen = observed[:, valid].T
    bad = np.any(np.isnan(scores) & seen, axis=1)  # NaN scores: no AUC.
    if np.all(seen):
        ranks = stats.rankdata(scores, axis=1)
    else:  # unobserved targets take no rank
        ranks = stats.rankdata(
            np.where(seen, scores, np.nan), axis=1, nan_policy="omit"
        )
    rank_sums = np.sum(np.where(labels == 1.0, ranks, 0.0), axis=1)
    pos, neg = positives[valid], negatives[valid]
    auc = (rank_sums - pos * (pos + 1) / 2) / (pos * neg)
    auc[bad] = np.nan
    return float(np.mean(auc))


def top_k_f1(y_true, y_score, k=25, average="samples"):
    """F1 of the `k` highest-scored outputs of each example (GeoLifeCLEF).

    Each example (survey) predicts its `k` highest-scored outputs (species),
    and is compared with its positive outputs: with `P` the predicted and
    `T` the positive set, its F1 is `2 |P & T| / (|P| + |T|)`. A NaN target
    means "not observed" (a species not surveyed there): it is neither
    predicted nor counted, so an example predicts its `k` highest-scored
    observed outputs (all of them when it has fewer). Ties in score are
    broken by the lower output index.

    - `average="samples"`: the mean of the examples' F1 (GeoLifeCLEF's
      score); examples with no observed output are left out.
    - `average="micro"`: `2 sum |P & T| / (sum |P| + sum |T|)`.

    A NaN score for an observed target leaves its example, and so the
    average, NaN (as in `macro_auc`).

    Args:
        y_true: 0/1 targets (NaN: unobserved), `(N, K)`.
        y_score: scores (probabilities or logits) of the same shape.
        k: int, outputs predicted per example. Defaults to 25.
        average: "samples" or "micro". Defaults to "samples".

    Returns:
        float.

    Example:

    >>> y_true = [[1, 0, 1, 0], [0, 1, 0, np.nan]]
    >>> y_score = [[0.9, 0.8, 0.1, 0.0], [0.2, 0.9, 0.3, 1.0]]
    >>> top_k_f1(y_true, y_score, k=2)  # (0.5 + 2/3) / 2
    0.5833333333333333
    >>> top_k_f1(y_true, y_score, k=2, average="micro")  # 2 * 2 / (4 + 3)
    0.5714285714285714

    Reference:
        Picek et al., "GeoPlant: Spatial Plant Species Prediction Dataset",
        NeurIPS 2024 Datasets and Benchmarks (the GeoLifeCLEF 2024-2025
        samples-averaged F1 of the top 25 species).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be an integer >= 1; received {k!r}.")
    if average not in AVERAGES:
        raise ValueError(
            f"Unknown average {average!r}; expected one of {list(AVERAGES)}."
        )
    y_true, y_score = _check_targets(y_true, y_score, "Top-k F1")
    observed = ~np.isnan(y_true)
    positive = y_true == 1.0
    # NaN scores of observed targets make their example NaN; unobserved
    # outputs rank last and are never predicted.
    bad = np.any(np.isnan(y_score) & observed, axis=1)
    ranked = np.where(observed, np.nan_to_num(y_score, nan=0.0), -np.inf)
    order = np.argsort(-ranked, axis=1, kind="stable")[:, : min(k, y_true.shape[1])]
    predicted = np.zeros(y_true.shape, bool)
    np.put_along_axis(predicted, order, True, axis=1)
    predicted &= observed
    hits = np.sum(predicted & positive, axis=1).astype("float64")
    sizes = np.sum(predicted, axis=1) + np.sum(positive, axis=1)
    if average == "micro":
        if bad.any():
            return float("nan")
        total = sizes.sum()
        return float(2.0 * hits.sum() / total) if total else _undefined(len(y_true))
    defined = np.any(observed, axis=1)
    if not defined.any():
        return _undefined(len(y_true))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(sizes > 0, 2.0 * hits / np.maximum(sizes, 1), 0.0)
    f1 = np.where(bad, np.nan, f1)
    return float(np.mean(f1[defined]))


def micro_auc(y_true, y_score):
    """Exact ROC AUC of all observed (example, output) pairs pooled.

    Every observed target entry is one binary prediction, and the AUC is
    computed once over all of them (the Mann-Whitney statistic, ties one
    half), so frequent outputs weigh more than in `macro_auc`. NaN targets
    (unobserved) are left out; a NaN score for an observed target makes the
    result NaN.

    Args:
        y_true: 0/1 targets (NaN: unobserved), `(N,)` or `(N, K)`.
        y_score: scores of the same shape.

    Returns:
        float.

    Example:

    >>> y_true = [[1, 0], [0, 1], [1, np.nan]]
    >>> micro_auc(y_true, [[0.9, 0.5], [0.3, 0.4], [0.8, 0.1]])  # 5 of 6 pairs
    0.8333333333333334

    Reference:
        Hanley and McNeil, "The meaning and use of the area under a ROC
        curve", Radiology 1982.
    """
    y_true, y_score = _check_targets(y_true, y_score, "AUC")
    return macro_auc(y_true.reshape(-1), y_score.reshape(-1))


def _check_targets(y_true, y_score, what):
    """2-D float64 targets and scores (floating scores keep their dtype)."""
    y_true = np.asarray(y_true, "float64")
    y_score = np.asarray(y_score)
    if not np.issubdtype(y_score.dtype, np.floating):
        y_score = y_score.astype("float64")
    y_true = y_true.reshape(len(y_true), -1)
    y_score = y_score.reshape(len(y_score), -1)
    if y_true.shape != y_score.shape:
        raise ValueError(
            "`y_true` and `y_score` must have the same shape; received "
            f"{y_true.shape} and {y_score.shape}."
        )
    observed = ~np.isnan(y_true)
    if not np.all(np.isin(y_true[observed], (0.0, 1.0))):
        raise ValueError(
            f"{what} needs 0/1 targets (NaN for unobserved ones); received "
            f"values {np.unique(y_true[observed])[:5].tolist()}..."
        )
    return y_true, y_score


def _undefined(num_examples):
    raise ValueError(
        "Top-k F1 is undefined: no observed target among these "
        f"{num_examples} examples."
    )
