"""NaN target entries as unobserved: zero weight in losses and metrics."""

from keras import ops


def observed(y_true, dtype):
    """`y_true` as `dtype` with NaN entries set to 0, and their 0/1 weights."""
    y_true = ops.cast(y_true, dtype)
    observed = ops.logical_not(ops.isnan(y_true))
    return ops.where(observed, y_true, ops.zeros_like(y_true)), ops.cast(
        observed, dtype
    )


def entry_weights(weights, sample_weight):
    """Multiplies per-entry weights `(batch, K)` by Keras sample weights."""
    if sample_weight is None:
        return weights
    sample_weight = ops.cast(sample_weight, weights.dtype)
    while len(sample_weight.shape) < len(weights.shape):
        sample_weight = ops.expand_dims(sample_weight, -1)
    return weights * sample_weight
