"""Top-k F1 (GeoLifeCLEF's score), NaN targets ignored."""

import keras
from keras import ops

AVERAGES = ("samples", "micro")


@keras.saving.register_keras_serializable(package="keras_miam")
class MaskedTopKF1(keras.metrics.Metric):
    """F1 of the `k` highest-scored outputs of each example, NaN targets ignored.

    Each example predicts its `k` highest-scored observed outputs (NaN
    targets never count). `average="samples"`: the mean F1 over examples
    with an observed output (GeoLifeCLEF's); `"micro"`: `2 sum |P & T| /
    (sum |P| + sum |T|)`. A NaN score of an observed target gives NaN.

    Args:
        k: int, outputs predicted per example. Defaults to 25.
        average: `"samples"` or `"micro"`. Defaults to `"samples"`.
        name: str. Defaults to `"top_k_f1"`.
        dtype: dtype of the metric's state. Defaults to `None`.

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
        self.k = k
        self._direction = "up"  # read by keras.callbacks.EarlyStopping
        self.average = average
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(ops.convert_to_tensor(y_true), self.dtype)
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), self.dtype)
        if len(y_true.shape) != 2 or tuple(y_true.shape[1:]) != tuple(y_pred.shape[1:]):
            raise ValueError(
                "MaskedTopKF1 needs (batch, outputs) targets and scores of the "
                f"same shape; received {y_true.shape} and {y_pred.shape}."
            )
        num_outputs = y_true.shape[-1]
        observed = ops.logical_not(ops.isnan(y_true))
        positive = ops.cast(ops.equal(y_true, 1.0), self.dtype)
        bad = ops.any(ops.logical_and(ops.isnan(y_pred), observed), axis=-1)
        lowest = ops.cast(float("-inf"), self.dtype)
        ranked = ops.where(observed, ops.nan_to_num(y_pred, nan=0.0), lowest)
        _, index = ops.top_k(ranked, min(self.k, num_outputs))
        predicted = ops.max(ops.one_hot(index, num_outputs, dtype=self.dtype), axis=1)
        predicted = predicted * ops.cast(observed, self.dtype)
        hits = ops.sum(predicted * positive, axis=-1)
        sizes = ops.sum(predicted, axis=-1) + ops.sum(positive, axis=-1)
        weight = ops.ones_like(hits)
        if sample_weight is not None:
            weight = weight * ops.reshape(ops.cast(sample_weight, self.dtype), (-1,))
        if self.average == "samples":
            weight = weight * ops.cast(ops.any(observed, axis=-1), self.dtype)
            hits, sizes = ops.divide_no_nan(2.0 * hits, sizes), ops.ones_like(hits)
        else:
            hits = 2.0 * hits
        hits = ops.where(bad, ops.cast(float("nan"), self.dtype), hits)
        self.total.assign_add(ops.sum(hits * weight))
        self.count.assign_add(ops.sum(sizes * weight))

    def result(self):
        return ops.where(
            ops.greater(self.count, 0.0),
            ops.divide_no_nan(self.total, self.count),
            ops.cast(float("nan"), self.dtype),
        )

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
