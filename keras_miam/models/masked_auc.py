"""AUC that ignores NaN targets."""

import keras
from keras import ops

from keras_miam.models.masked_targets import entry_weights
from keras_miam.models.masked_targets import observed


@keras.saving.register_keras_serializable(package="keras_miam")
class MaskedAUC(keras.metrics.AUC):
    """`keras.metrics.AUC` that ignores NaN targets.

    A NaN target entry gets weight 0 (it enters no confusion matrix), so
    with `multi_label=True` each output's AUC is computed over the examples
    where that output was observed. Keras' own `AUC` would instead cast NaN
    to `True` and count the entry as a positive, silently. Takes the
    arguments of `keras.metrics.AUC`.

    Example:

    >>> metric = MaskedAUC(multi_label=True)
    >>> y_true = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 0.0]])
    >>> metric.update_state(y_true, np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.4]]))
    >>> float(metric.result())  # the NaN entry is ignored
    1.0

    Reference:
        `keras.metrics.AUC`; MaskSDM (Zbinden et al., 2025) evaluates
        per-species AUC over the sites where the species was surveyed.
    """

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, weights = observed(y_true, self.dtype)
        y_pred = ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, -1)
            weights = ops.expand_dims(weights, -1)
        weights = entry_weights(weights, sample_weight)
        return super().update_state(y_true, y_pred, sample_weight=weights)
