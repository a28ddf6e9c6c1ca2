"""Mean absolute error over the observed targets, from probabilities or logits."""

import keras
from keras import ops

from keras_miam.metrics.masked_targets import observed


@keras.saving.register_keras_serializable(package="keras_miam")
class MaskedMeanAbsoluteError(keras.metrics.Mean):
    """Mean absolute error over the observed entries, NaN targets ignored.

    With `from_logits=True`, of `|y_true - sigmoid(y_pred)|`. SatBird's MAE
    of encounter rates.

    Args:
        from_logits: bool, whether `y_pred` are logits. Defaults to False.
        name, dtype: as for Keras metrics.

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
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), self.dtype)
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        y_true, weights = observed(y_true, self.dtype, y_pred, sample_weight)
        error = ops.where(weights > 0, ops.abs(y_true - y_pred), 0.0)
        weights = weights * ops.ones_like(error)
        return super().update_state(error, sample_weight=weights)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}
