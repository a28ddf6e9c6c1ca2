"""AUC that ignores NaN targets."""

import keras
from keras import ops

from keras_miam.metrics.masked_targets import observed


@keras.saving.register_keras_serializable(package="keras_miam")
class MaskedAUC(keras.metrics.AUC):
    """`keras.metrics.AUC` that ignores NaN targets.

    A NaN target gets weight 0. With `multi_label=True`, the mean AUC of the
    outputs with both observed classes (the streaming form of `macro_auc`);
    otherwise one pooled AUC (`micro_auc`). NaN, never 0, without an output
    with both classes. Takes the arguments of `keras.metrics.AUC`.

    Example:

    >>> metric = keras_miam.metrics.MaskedAUC(multi_label=True)
    >>> y_true = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 0.0]])
    >>> metric.update_state(y_true, np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.4]]))
    >>> float(metric.result())
    1.0

    Reference:
        MaskSDM (Zbinden et al., 2025): per-species AUC over the sites
        where the species was surveyed.
    """

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true, weights = observed(y_true, self.dtype, y_pred, sample_weight)
        return super().update_state(y_true, y_pred, sample_weight=weights)

    def result(self):
        # Totals per output: the same at every threshold.
        positives = self.true_positives[0] + self.false_negatives[0]
        negatives = self.false_positives[0] + self.true_negatives[0]
        both = ops.logical_and(positives > 0, negatives > 0)
        if self.multi_label:
            weights = ops.cast(both, self.dtype)
            given = self.label_weights
            if given is not None:
                weights = weights * ops.cast(given, self.dtype)
            self.label_weights = weights
            try:
                value = super().result()
            finally:
                self.label_weights = given
            defined = ops.any(both)
        else:
            value = super().result()
            defined = both
        return ops.where(defined, value, ops.cast(float("nan"), self.dtype))
