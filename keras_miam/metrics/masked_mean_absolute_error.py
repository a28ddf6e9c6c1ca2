"""Mean absolute error over the observed targets, from probabilities or logits."""

import keras
from keras import ops

from keras_miam.metrics.masked_targets import entry_weights
from keras_miam.metrics.masked_targets import observed


@keras.saving.register_keras_serializable(package="keras_miam")
class MaskedMeanAbsoluteError(keras.metrics.Mean):
    """Mean absolute error over the observed entries, NaN targets ignored.

    The (sample-weighted) mean of `|y_true - y_pred|` over the entries whose
    target is not NaN; with `from_logits=True`, of `|y_true -
    sigmoid(y_pred)|`. SatBird's MAE of encounter rates.

    Args:
        from_logits: bool, whether `y_pred` are logits. Defaults to False.
        name: str. Defaults to "mae".
        dtype: dtype of the metric's state. Defaults to None (float32).

    Example:

    >>> metric = keras_miam.metrics.MaskedMeanAbsoluteError()
    >>> y_true = np.array([[0.5, np.nan], [0.0, 1.0]])
    >>> metric.update_state(y_true, np.array([[0.25, 0.9], [0.5, 0.5]]))
    >>> round(float(metric.result()), 4)  # (0.25 + 0.5 + 0.5) / 3
    0.4167

    Reference:
        Teng et al., "SatBird: a Dataset for Bird Species Distribution
        Modeling using Remote Sensing and Citizen Science Data", NeurIPS 2023
        Datasets and Benchmarks.
    """

    def __init__(self, from_logits=False, name="mae", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = bool(from_logits)
        self._direction = "down"

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, weights = observed(y_true, self.dtype)
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), self.dtype)
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, -1)  # (batch,) for one output
            weights = ops.expand_dims(weights, -1)
        error = ops.where(weights > 0, ops.abs(y_true - y_pred), 0.0)
        weights = weights * ops.ones_like(error)
        return super().update_state(
            error, sample_weight=entry_weights(weights, sample_weight)
        )

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}
