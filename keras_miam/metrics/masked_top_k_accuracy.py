"""SatBird's top-k accuracy of encounter rates, NaN targets ignored."""

import keras
from keras import ops

from keras_miam.metrics.masked_targets import nan_if_empty
from keras_miam.metrics.masked_targets import observed
from keras_miam.metrics.masked_targets import ranked_scores


@keras.saving.register_keras_serializable(package="keras_miam")
class MaskedTopKAccuracy(keras.metrics.Mean):
    """Share of a site's most frequent species found among the top predictions.

    SatBird's ranking metric for encounter rates: with `n` species observed
    (targets above 0) and `m = min(k, n)`, the share of the `m` species with
    the highest targets among the `k` highest-scored ones (`k=None`: `k = m
    = n`); examples with `n = 0` skipped. NaN targets are ignored; a NaN
    score of an observed target gives NaN.

    Args:
        k: int, number of predicted species (10 and 30 in SatBird), or None
            for the adaptive top-k. Defaults to None.
        name: Defaults to "top{k}", or "topk" for the adaptive one.

    Example:

    >>> metric = keras_miam.metrics.MaskedTopKAccuracy(k=2)
    >>> metric.update_state(
    ...     np.array([[0.5, 0.0, 0.2, 0.1], [0.0, 0.3, 0.0, np.nan]]),
    ...     np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.9, 0.3, 1.0]]))
    >>> round(float(metric.result()), 4)  # (1/2 + 1/1) / 2
    0.75

    Reference:
        Teng et al., "SatBird: a Dataset for Bird Species Distribution
        Modeling using Remote Sensing and Citizen Science Data", NeurIPS 2023
        Datasets and Benchmarks.
    """

    def __init__(self, k=None, name=None, dtype=None):
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"`k` must be None or an integer >= 1; received {k!r}.")
        super().__init__(name=name or (f"top{k}" if k else "topk"), dtype=dtype)
        self.k = k
        self._direction = "up"

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, seen = observed(y_true, self.dtype)
        scores, bad = ranked_scores(y_pred, seen, "MaskedTopKAccuracy")
        truth_scores, _ = ranked_scores(y_true, seen, "MaskedTopKAccuracy")
        present = ops.sum(ops.cast(y_true > 0, self.dtype), axis=-1)
        size = present if self.k is None else ops.minimum(present, self.k)
        chosen = present if self.k is None else ops.full_like(present, self.k)
        truth = _ranks(truth_scores) < size[:, None]
        predicted = _ranks(scores) < chosen[:, None]
        hits = ops.sum(ops.cast(truth & predicted, self.dtype), axis=-1)
        accuracy = ops.where(bad, float("nan"), ops.divide_no_nan(hits, size))
        weight = ops.cast(present > 0, self.dtype)
        if sample_weight is not None:
            weight = weight * ops.reshape(ops.cast(sample_weight, self.dtype), (-1,))
        accuracy = ops.where(weight > 0, accuracy, 0.0)
        return super().update_state(accuracy, sample_weight=weight)

    def result(self):
        return nan_if_empty(self)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


def _ranks(x):
    """Position of each entry of each row in decreasing order (0 = largest)."""
    _, order = ops.top_k(x, x.shape[-1])
    return ops.cast(ops.argsort(order), x.dtype)
