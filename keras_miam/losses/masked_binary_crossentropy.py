"""Binary cross-entropy that ignores NaN targets."""

import keras
from keras import ops

from keras_miam.metrics.masked_targets import observed


@keras.saving.register_keras_serializable(package="keras_miam")
class MaskedBinaryCrossentropy(keras.losses.BinaryCrossentropy):
    """Binary cross-entropy that ignores NaN targets.

    `sum(w_ij * bce_ij) / sum(w_ij)` over the observed entries (`w_ij` the
    `sample_weight`, or 1); soft targets in [0, 1] are accepted. A batch
    without an observed target has loss 0 and zero gradients.

    Args:
        from_logits: whether `y_pred` are logits. Defaults to `False`.
        label_smoothing: float in [0, 1]. Defaults to 0.
        axis: must be -1 (the outputs axis).
        reduction: Defaults to `"mean_with_sample_weight"` (the mean above).
        name, dtype: as for Keras losses.

    Example:

    >>> loss = keras_miam.losses.MaskedBinaryCrossentropy(from_logits=True)
    >>> float(loss(np.array([[1.0, np.nan], [0.0, 0.3]]), np.zeros((2, 2))))
    0.693...
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="mean_with_sample_weight",
        name="binary_crossentropy",
        dtype=None,
    ):
        if axis != -1:
            raise ValueError(
                f"MaskedBinaryCrossentropy needs axis=-1; received axis={axis}."
            )
        super().__init__(from_logits, label_smoothing, axis, reduction, name, dtype)

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true, weights = observed(y_true, self.dtype, y_pred, sample_weight)
        return super().__call__(y_true, y_pred, sample_weight=weights)

    def call(self, y_true, y_pred):
        y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return ops.binary_crossentropy(y_true, y_pred, from_logits=self.from_logits)
