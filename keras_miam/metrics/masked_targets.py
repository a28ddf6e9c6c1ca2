"""NaN target entries as unobserved: zero weight in losses and metrics."""

from keras import ops


def observed(y_true, dtype, y_pred=None, sample_weight=None):
    """`y_true` as `dtype` with NaN entries set to 0, and the entries'
    weights: 0 where NaN, else `sample_weight` (or 1). `(batch,)` targets of
    a `(batch, 1)` `y_pred` take its rank."""
    y_true = ops.cast(y_true, dtype)
    if y_pred is not None and len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.expand_dims(y_true, -1)
    seen = ops.logical_not(ops.isnan(y_true))
    weights = ops.cast(seen, dtype)
    if sample_weight is not None:
        sample_weight = ops.cast(sample_weight, dtype)
        while len(sample_weight.shape) < len(weights.shape):
            sample_weight = ops.expand_dims(sample_weight, -1)
        weights = weights * sample_weight
    return ops.where(seen, y_true, ops.zeros_like(y_true)), weights


def ranked_scores(y_pred, seen, what):
    """`(batch, K)` scores to rank, -inf where unobserved, and the examples
    with a NaN score of an observed target (their metric is NaN)."""
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), seen.dtype)
    if len(seen.shape) != 2 or tuple(seen.shape[1:]) != tuple(y_pred.shape[1:]):
        raise ValueError(
            f"{what} needs (batch, outputs) targets and scores of the same "
            f"shape; received {tuple(seen.shape)} and {tuple(y_pred.shape)}."
        )
    lowest = ops.cast(float("-inf"), seen.dtype)
    scores = ops.where(seen > 0, ops.nan_to_num(y_pred, nan=0.0), lowest)
    return scores, ops.any(ops.isnan(y_pred) & (seen > 0), axis=-1)


def nan_if_empty(metric):
    """A `keras.metrics.Mean`'s result, NaN (never 0) before any weight."""
    nan = ops.cast(float("nan"), metric.dtype)
    return ops.where(
        metric.count > 0, ops.divide_no_nan(metric.total, metric.count), nan
    )
