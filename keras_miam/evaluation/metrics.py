"""Metrics for subset evaluation: names, Keras metrics and callables."""

import keras
import numpy as np
from scipy import stats

AUC_NAMES = ("auc", "macro_auc")
ACCURACY_NAMES = ("accuracy", "acc")


def macro_auc(y_true, y_score):
    """Exact ROC AUC averaged over the outputs that have both classes.

    Per output, the AUC is the Mann-Whitney statistic (ties count one half),
    so it is exact (no thresholds) and identical for logits and
    probabilities. Outputs where every example is positive, or every
    example negative, have no AUC and are left out of the average, as in
    MaskSDM and MIAM ("macro-averaged over species present in the evaluated
    split"). A NaN target means "not observed" (e.g. a species not surveyed
    at a site): each output's AUC is computed over the examples where it is
    observed. A NaN score for an observed target leaves its output, and so
    the average, NaN.

    Args:
        y_true: 0/1 targets (NaN: unobserved), `(N,)` or `(N, K)`.
        y_score: scores of the same shape (or `(N, 1)` for `(N,)` targets).

    Returns:
        float, the mean AUC over the outputs with both classes.

    Example:

    >>> y_true = [[1, 0], [0, 0], [1, 1]]
    >>> macro_auc(y_true, [[0.9, 0.2], [0.1, 0.4], [0.8, 0.3]])
    0.75
    >>> macro_auc([[1, 0], [0, np.nan], [1, 1]], [[0.9, 0.2], [0.1, 0.4], [0.8, 0.3]])
    1.0

    Reference:
        Hanley and McNeil, "The meaning and use of the area under a ROC
        curve", Radiology 1982.
    """
    y_true = np.asarray(y_true, "float64")
    y_score = np.asarray(y_score)
    if not np.issubdtype(y_score.dtype, np.floating):
        y_score = y_score.astype("float64")
    y_true = y_true.reshape(len(y_true), -1)
    y_score = y_score.reshape(len(y_score), -1)
    if y_true.shape != y_score.shape:
        raise ValueError(
            "`y_true` and `y_score` must have the same shape; received "
            f"{y_true.shape} and {y_score.shape}."
        )
    observed = ~np.isnan(y_true)
    if not np.all(np.isin(y_true[observed], (0.0, 1.0))):
        raise ValueError(
            "AUC needs 0/1 targets (NaN for unobserved ones); received "
            f"values {np.unique(y_true[observed])[:5].tolist()}..."
        )
    positives = np.sum(y_true == 1.0, axis=0)
    negatives = np.sum(y_true == 0.0, axis=0)
    valid = (positives > 0) & (negatives > 0)
    if not np.any(valid):
        raise ValueError(
            "AUC is undefined: no output has both positive and negative "
            f"examples among these {len(y_true)} examples."
        )
    # One row per output, contiguous (ranking along rows is faster than along
    # the strided example axis); scores ranked in their own dtype (a cast to
    # float64 would not change their order). Ties share their average rank.
    scores = np.ascontiguousarray(y_score[:, valid].T)
    labels = np.ascontiguousarray(y_true[:, valid].T)
    seen = observed[:, valid].T
    bad = np.any(np.isnan(scores) & seen, axis=1)  # NaN scores: no AUC.
    if np.all(seen):
        ranks = stats.rankdata(scores, axis=1)
    else:  # unobserved targets take no rank
        ranks = stats.rankdata(
            np.where(seen, scores, np.nan), axis=1, nan_policy="omit"
        )
    rank_sums = np.sum(np.where(labels == 1.0, ranks, 0.0), axis=1)
    pos, neg = positives[valid], negatives[valid]
    auc = (rank_sums - pos * (pos + 1) / 2) / (pos * neg)
    auc[bad] = np.nan
    return float(np.mean(auc))


def accuracy(y_true, y_pred, threshold=0.5):
    """Top-1 accuracy from class ids or one-hot targets, or binary accuracy.

    Args:
        y_true: class ids `(N,)` / `(N, 1)`, or one-hot `(N, K)`; for a
            single-output head, 0/1 targets.
        y_pred: scores `(N, K)`: the argmax is the predicted class. With
            `K = 1`, `y_pred > threshold` is the predicted class.
        threshold: decision threshold of a single-output head (0.5 for
            probabilities, 0 for logits).

    Returns:
        float, the fraction of correct predictions.

    Example:

    >>> accuracy([2, 0], [[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]])
    0.5
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    y_pred = y_pred.reshape(len(y_pred), -1)
    if y_pred.shape[1] == 1:
        predicted = (y_pred[:, 0] > threshold).astype("int64")
        return float(np.mean(predicted == y_true.reshape(-1)))
    if y_true.ndim == 2 and y_true.shape[1] == y_pred.shape[1] > 1:
        y_true = np.argmax(y_true, axis=1)
    return float(np.mean(np.argmax(y_pred, axis=1) == y_true.reshape(-1)))


def _is_binary(values):
    return bool(np.all((values == 0) | (values == 1)))


def _is_binary_or_unobserved(values):
    """0/1 targets where NaN (unobserved) is allowed: presence/absence."""
    return bool(np.all((values == 0) | (values == 1) | np.isnan(values)))


def _is_integer(values):
    return np.issubdtype(values.dtype, np.integer) or bool(
        np.all(np.mod(values, 1) == 0)
    )


def _as_2d(values):
    values = np.asarray(values)
    return values.reshape(len(values), -1) if values.ndim != 2 else values


class SubsetMetric:
    """How the metric of one subset is accumulated over batches.

    `accumulator()` returns a fresh object with `update(y_true, y_pred)`
    (one batch) and `result()` (a float); `check(y_true, y_pred)` raises a
    `ValueError` when the metric does not fit the targets or the model
    output.

    Args:
        name: the column name of the metric.
        fn: `fn(y_true, y_pred) -> float` on the whole data (predictions
            are collected); exclusive with `keras_metric`.
        keras_metric: a `keras.metrics.Metric`, cloned per subset and
            updated batch by batch (streaming, constant memory).
        check: optional `check(y_true, y_pred)` raising `ValueError`.
        needs_labels: whether the metric reads the targets.
        user_defined: if True, any error of the metric is re-raised as a
            `ValueError` naming the shapes it failed on.

    Example:

    >>> metric = SubsetMetric("mean_prediction", fn=lambda y, p: p.mean())
    >>> accumulator = metric.accumulator()
    >>> accumulator.update(None, np.array([[1.0], [3.0]]))
    >>> accumulator.result()
    2.0
    """

    def __init__(
        self,
        name,
        fn=None,
        keras_metric=None,
        check=None,
        needs_labels=True,
        user_defined=False,
    ):
        self.name = name
        self.fn = fn
        self.keras_metric = keras_metric
        self._check = check
        self.needs_labels = needs_labels
        self.user_defined = user_defined

    def check(self, y_true, y_pred):
        """Raises a `ValueError` if the metric does not fit this batch."""
        if self._check is not None:
            self._check(y_true, y_pred)

    def accumulator(self):
        """A fresh accumulator: `update(y_true, y_pred)`, `result()`."""
        if self.keras_metric is not None:
            accumulator = _StreamingAccumulator(self.keras_metric)
        else:
            accumulator = _CollectingAccumulator(self.fn)
        if self.user_defined:
            return _ExplainingAccumulator(accumulator, self.name)
        return accumulator


class _StreamingAccumulator:
    def __init__(self, metric):
        self.metric = type(metric).from_config(metric.get_config())

    def update(self, y_true, y_pred):
        self.metric.update_state(y_true, y_pred)

    def result(self):
        return float(keras.ops.convert_to_numpy(self.metric.result()))


class _CollectingAccumulator:
    def __init__(self, fn):
        self.fn = fn
        self.y_true, self.y_pred = [], []

    def update(self, y_true, y_pred):
        if y_true is not None:
            self.y_true.append(y_true)
        self.y_pred.append(y_pred)

    def result(self):
        y_true = np.concatenate(self.y_true) if self.y_true else None
        value = self.fn(y_true, np.concatenate(self.y_pred))
        return float(np.mean(keras.ops.convert_to_numpy(value)))


class _ExplainingAccumulator:
    """Turns a user metric's failure into a clear `ValueError`."""

    def __init__(self, accumulator, name):
        self.accumulator = accumulator
        self.name = name
        self.shapes = None

    def update(self, y_true, y_pred):
        self.shapes = (np.shape(y_true), np.shape(y_pred))
        try:
            self.accumulator.update(y_true, y_pred)
        except Exception as error:  # noqa: BLE001 (re-raised as ValueError)
            raise self._error(error) from error

    def result(self):
        try:
            return self.accumulator.result()
        except Exception as error:  # noqa: BLE001 (re-raised as ValueError)
            raise self._error(error) from error

    def _error(self, error):
        y_shape, p_shape = self.shapes or (None, None)
        return ValueError(
            f"The metric '{self.name}' does not fit the model: it failed on "
            f"targets of shape {y_shape} and model outputs of shape {p_shape} "
            f"({type(error).__name__}: {error})."
        )


def _check_auc(y_true, y_pred):
    y, p = _as_2d(y_true), _as_2d(y_pred)
    if y.shape != p.shape:
        hint = (
            " The targets look like class ids: use metric='accuracy'."
            if y.shape[1] == 1 and p.shape[1] > 1
            else ""
        )
        raise ValueError(
            "AUC needs 0/1 targets with one column per model output (a "
            f"multi-label or binary head); received targets of shape "
            f"{np.shape(y_true)} for outputs of shape {np.shape(y_pred)}.{hint}"
        )
    if not _is_binary_or_unobserved(np.asarray(y, "float64")):
        raise ValueError(
            "AUC needs 0/1 targets (presence/absence; NaN for unobserved "
            "ones); received values such "
            f"as {np.unique(y)[:5].tolist()}."
        )


def _check_accuracy(y_true, y_pred):
    y, p = np.asarray(y_true), _as_2d(y_pred)
    k = p.shape[1]
    if k == 1:
        if y.size != len(p) or not _is_binary(y):
            raise ValueError(
                "Accuracy of a single-output head needs one 0/1 target per "
                f"example; received targets of shape {y.shape}."
            )
        return
    if y.ndim == 2 and y.shape[1] == k:
        rows = y.sum(axis=1)
        if not (_is_binary(y) and np.all(rows == 1)):
            raise ValueError(
                "Accuracy needs class ids or one-hot targets; these targets "
                "have rows with several (or no) 1s, i.e. a multi-label task: "
                "use metric='auc'."
            )
        return
    if y.size != len(p) or not _is_integer(y):
        raise ValueError(
            f"Accuracy of a {k}-class head needs integer class ids (N,) or "
            f"one-hot targets (N, {k}); received targets of shape {y.shape}."
        )
    if y.min() < 0 or y.max() >= k:
        raise ValueError(
            f"Class ids must be in [0, {k}) for a {k}-output head; received "
            f"ids from {y.min()} to {y.max()}."
        )


def default_metric_name(y_true, y_pred, task=None):
    """'auc' for 0/1 targets shaped like the output, else 'accuracy'.

    Args:
        y_true: a batch of targets.
        y_pred: the model's outputs for it.
        task: the model's task when it declares one ('multilabel' or
            'multiclass', as `MultimodalTransformer` does).

    Returns:
        'auc' (multi-label sigmoid or binary heads) or 'accuracy' (softmax
        heads: class ids, or one-hot targets).
    """
    if task == "multilabel":
        return "auc"
    if task == "multiclass":
        return "accuracy"
    y, p = np.asarray(y_true), _as_2d(y_pred)
    if _as_2d(y).shape == p.shape and _is_binary_or_unobserved(
        np.asarray(y, "float64")
    ):
        one_hot = p.shape[1] > 1 and np.all(_as_2d(y).sum(axis=1) == 1)
        return "accuracy" if one_hot else "auc"
    if p.shape[1] > 1 and y.size == len(p) and _is_integer(y):
        return "accuracy"
    raise ValueError(
        "Cannot choose a default metric for targets of shape "
        f"{y.shape} (e.g. {np.unique(y)[:5].tolist()}) and outputs of shape "
        f"{p.shape}: the defaults are AUC (0/1 targets, one per output) and "
        "accuracy (class ids). Pass `metric=`, e.g. 'mse' or a "
        "keras.metrics.Metric."
    )


def prediction_metric(output_index=None):
    """The mean model output (of one output column): needs no labels.

    Args:
        output_index: which output column; None for a single-output model.

    Returns:
        a `SubsetMetric` named 'prediction'.
    """

    def check(y_true, y_pred):
        p = _as_2d(y_pred)
        if output_index is None and p.shape[1] != 1:
            raise ValueError(
                f"The model has {p.shape[1]} outputs: say which one to "
                "explain, e.g. target=(example_index, output_index)."
            )
        if output_index is not None and not 0 <= output_index < p.shape[1]:
            raise ValueError(
                f"Output index {output_index} is out of range for a model "
                f"with {p.shape[1]} outputs."
            )

    def fn(y_true, y_pred):
        return np.mean(_as_2d(y_pred)[:, output_index or 0])

    return SubsetMetric("prediction", fn=fn, check=check, needs_labels=False)


def resolve_metric(metric, y_true, y_pred, task=None, from_logits=False):
    """Turns a metric name, Keras metric or callable into a `SubsetMetric`.

    Args:
        metric: None (AUC or accuracy, see `default_metric_name()`); 'auc'
            (exact macro AUC, `macro_auc()`); 'accuracy'; any other name
            `keras.metrics.get()` knows ('mse', 'mae', ...); a
            `keras.metrics.Metric` instance (cloned and streamed per
            subset); a callable `fn(y_true, y_pred)` returning a number or
            one number per example (averaged); or a `SubsetMetric`.
        y_true: a batch of targets (for the default and the checks).
        y_pred: the model's outputs for it.
        task: the model's task, if it declares one.
        from_logits: whether the model outputs logits (the threshold of
            single-output accuracy is then 0 instead of 0.5).

    Returns:
        a `SubsetMetric`.
    """
    if isinstance(metric, SubsetMetric):
        return metric
    if metric is None:
        metric = default_metric_name(y_true, y_pred, task=task)
    if isinstance(metric, str):
        key = metric.lower()
        if key in AUC_NAMES:
            return SubsetMetric("auc", fn=macro_auc, check=_check_auc)
        if key in ACCURACY_NAMES:
            threshold = 0.0 if from_logits else 0.5

            def fn(y, p):
                return accuracy(y, p, threshold=threshold)

            return SubsetMetric("accuracy", fn=fn, check=_check_accuracy)
        try:
            resolved = keras.metrics.get(metric)
        except ValueError as error:
            raise ValueError(
                f"Unknown metric '{metric}': use 'auc', 'accuracy', a name "
                "keras.metrics.get() knows, a keras.metrics.Metric or a "
                "callable fn(y_true, y_pred)."
            ) from error
        if isinstance(resolved, keras.metrics.Metric):
            return SubsetMetric(metric, keras_metric=resolved, user_defined=True)
        return SubsetMetric(metric, fn=resolved, user_defined=True)
    if isinstance(metric, keras.metrics.Metric):
        return SubsetMetric(metric.name, keras_metric=metric, user_defined=True)
    if callable(metric):
        name = getattr(metric, "__name__", "metric")
        name = "metric" if name == "<lambda>" else name
        return SubsetMetric(name, fn=metric, user_defined=True)
    raise ValueError(
        "`metric` must be None, a name, a keras.metrics.Metric or a callable "
        f"fn(y_true, y_pred); received {metric!r}."
    )
