"""NaN target entries as unobserved: zero weight in losses and metrics."""

from keras import ops


def observed(y_true, dtype):
    """`y_true` as `dtype` with NaN entries set to 0, and their 0/1 weights."""
    y_true = ops.cast(y_true, dtype)
    seen = ops.logical_not(ops.isnan(y_true))
    return ops.where(seen, y_true, ops.zeros_like(y_true)), ops.cast(seen, dtype)


def entry_weights(weights, sample_weight):
    """Multiplies per-entry weights `(batch, K)` by Keras sample weights."""
    if sample_weight is None:
        return weights
    sample_weight = ops.cast(sample_weight, weights.dtype)
    while len(sample_weight.shape) < len(weights.shape):
        sample_weight = ops.expand_dims(sample_weight, -1)
    return weights * sample_weight


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
