"""Top-k F1 (GeoLifeCLEF's score), NaN targets ignored."""

import keras
from keras import ops

from keras_miam.metrics.masked_targets import nan_if_empty
from keras_miam.metrics.masked_targets import observed
from keras_miam.metrics.masked_targets import ranked_scores

AVERAGES = ("samples", "micro")


@keras.saving.register_keras_serializable(package="keras_miam")
class MaskedTopKF1(keras.metrics.Mean):
    """F1 of the `k` highest-scored outputs of each example, NaN targets ignored.

    Each example predicts its `k` highest-scored observed outputs.
    `average="samples"`: the mean F1 over examples with an observed output
    (GeoLifeCLEF's); `"micro"`: `2 sum |P & T| / (sum |P| + sum |T|)`. A NaN
    score of an observed target gives NaN.

    Args:
        k: int, outputs predicted per example. Defaults to 25.
        average: `"samples"` or `"micro"`. Defaults to `"samples"`.
        name, dtype: as for Keras metrics.

    Example:

    >>> metric = keras_miam.metrics.MaskedTopKF1(k=2)
    >>> metric.update_state(
    ...     np.array([[1, 0, 1, 0], [0, 1, 0, np.nan]]),
    ...     np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.9, 0.3, 1.0]]))
    >>> round(float(metric.result()), 4)  # (1/2 + 2/3) / 2
    0.5833

    Reference:
        Picek et al., "GeoPlant: Spatial Plant Species Prediction Dataset",
        NeurIPS 2024 Datasets and Benchmarks.
    """

    def __init__(self, k=25, average="samples", name="top_k_f1", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"`k` must be an integer >= 1; received {k!r}.")
        if average not in AVERAGES:
            raise ValueError(
                f"Unknown average {average!r}; expected one of {list(AVERAGES)}."
            )
        self.k, self.average = k, average
        self._direction = "up"  # read by keras.callbacks.EarlyStopping

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, seen = observed(y_true, self.dtype)
        scores, bad = ranked_scores(y_pred, seen, "MaskedTopKF1")
        num_outputs = y_true.shape[-1]
        _, index = ops.top_k(scores, min(self.k, num_outputs))
        predicted = ops.max(ops.one_hot(index, num_outputs, dtype=self.dtype), axis=1)
        predicted = predicted * seen
        positive = ops.cast(ops.equal(y_true, 1.0), self.dtype)
        sizes = ops.sum(predicted, axis=-1) + ops.sum(positive, axis=-1)
        f1 = ops.divide_no_nan(2.0 * ops.sum(predicted * positive, axis=-1), sizes)
        # Micro: the mean of the F1s weighted by their sizes.
        weight = ops.max(seen, axis=-1) if self.average == "samples" else sizes
        if sample_weight is not None:
            weight = weight * ops.reshape(ops.cast(sample_weight, self.dtype), (-1,))
        f1 = ops.where(bad, ops.cast(float("nan"), self.dtype), f1)
        return super().update_state(f1, sample_weight=weight)

    def result(self):
        return nan_if_empty(self)

    def get_config(self):
        return {**super().get_config(), "k": self.k, "average": self.average}


def top_k_f1(y_true, y_score, k=25, average="samples"):
    """`MaskedTopKF1` of whole arrays, as a float.

    Example:

    >>> keras_miam.metrics.top_k_f1([[1, 0, 1]], [[0.9, 0.8, 0.1]], k=1)
    0.6666...
    """
    metric = MaskedTopKF1(k=k, average=average)
    metric.update_state(y_true, y_score)
    return float(ops.convert_to_numpy(metric.result()))
