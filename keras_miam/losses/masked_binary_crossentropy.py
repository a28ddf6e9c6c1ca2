"""Binary cross-entropy that ignores NaN targets."""

import keras
from keras import ops

from keras_miam.metrics.masked_targets import entry_weights
from keras_miam.metrics.masked_targets import observed


@keras.saving.register_keras_serializable(package="keras_miam")
class MaskedBinaryCrossentropy(keras.losses.BinaryCrossentropy):
    """Binary cross-entropy that ignores NaN targets.

    A NaN target entry (e.g. a species that was not surveyed at a site)
    gets weight 0, and the loss is the mean over the observed entries:
    `sum(w_ij * bce_ij) / sum(w_ij)`, with `w_ij` = 0 for a NaN target and
    1 (or the example's `sample_weight`) otherwise. A batch without any
    observed target has loss 0 and zero gradients. NaN targets are replaced
    before any arithmetic, so neither the loss nor the gradients can become
    NaN through them. Without NaN targets it equals
    `keras.losses.BinaryCrossentropy` (with the default reduction).

    Args:
        from_logits: whether `y_pred` are logits (`True` for
            `MultimodalTransformer`) or probabilities. Defaults to `False`.
        label_smoothing: float in [0, 1], as in
            `keras.losses.BinaryCrossentropy`.
        axis: must be `-1` (the outputs axis). Kept for configuration
            compatibility with `keras.losses.BinaryCrossentropy`.
        reduction: Defaults to `"mean_with_sample_weight"`: the weighted mean
            over observed entries described above. `"sum"` sums the weighted
            entries; `"sum_over_batch_size"` divides that sum by the number
            of entries, NaN ones included; `None` returns the weighted
            `(batch, outputs)` entries (0 where the target is NaN).
        name: name of the loss. Defaults to `"binary_crossentropy"`.
        dtype: dtype of the loss computations. Defaults to `None`
            (`keras.backend.floatx()`).

    Example:

    >>> loss = MaskedBinaryCrossentropy(from_logits=True)
    >>> y_true = np.array([[1.0, np.nan], [0.0, 1.0]])
    >>> float(loss(y_true, np.zeros((2, 2))))  # mean over the 3 observed entries
    0.693...

    Reference:
        `keras.losses.BinaryCrossentropy`; presence-only or partially
        surveyed species lists, as in GeoPlant (Picek et al., 2024).
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
                "MaskedBinaryCrossentropy computes one loss per entry and "
                f"averages over the observed ones: `axis` must be -1; "
                f"received axis={axis}."
            )
        super().__init__(
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true, weights = observed(y_true, self.dtype)
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, -1)  # (batch,) for one output
            weights = ops.expand_dims(weights, -1)
        weights = entry_weights(weights, sample_weight)
        return super().__call__(y_true, y_pred, sample_weight=weights)

    def call(self, y_true, y_pred):
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing)
            y_true = y_true + 0.5 * self.label_smoothing
        return ops.binary_crossentropy(y_true, y_pred, from_logits=self.from_logits)
