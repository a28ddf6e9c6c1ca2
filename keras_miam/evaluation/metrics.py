"""The one metric system of keras_miam: what a score under a selection is.

`ModalityDynamics`, `evaluate_subsets` / `evaluate_selections` and the
Shapley functions all turn their `metric=` argument into a `SubsetMetric`
with `resolve_metric()`, so the same name gives the same number
everywhere. It covers:

- the head (`infer_head()`): the task (multi-label, multi-class,
  regression) and whether the outputs are logits, read from the model's
  `task` attribute, its compiled loss, its output activation, else its
  outputs;
- the default metric (`default_metric_name()`): exact macro AUC for
  multi-label heads, top-1 accuracy for multi-class heads;
- the labels each metric needs (checked once, on all the labels);
- one rule for logits: thresholded accuracies cut at 0 for logits and at
  0.5 for probabilities; AUC ranks, top-1 takes the argmax, so neither
  depends on it;
- `"loss"`: the compiled loss as a score, 1 / (1 + loss);
- which metrics are higher-is-better (`SubsetMetric.higher_is_better`;
  `ModalityDynamics` refuses the others);
- named metrics added with `register_metric()`.
"""

import keras
import numpy as np

from keras_miam.evaluation import ranking_metrics
from keras_miam.evaluation.ranking_metrics import macro_auc

AUC_NAMES = ("auc", "macro_auc")
ACCURACY_NAMES = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "binary_accuracy": "binary_accuracy",
    "categorical_accuracy": "categorical_accuracy",
    "sparse_categorical_accuracy": "sparse_categorical_accuracy",
}
LOSS_NAME = "loss"
TASKS = ("multilabel", "multiclass", "regression")
_TASK_ALIASES = {
    "multilabel": "multilabel",
    "multi_label": "multilabel",
    "binary": "multilabel",
    "multiclass": "multiclass",
    "multi_class": "multiclass",
    "classification": "multiclass",
    "regression": "regression",
}
# Keras metrics where lower is better.
_ERROR_METRICS = tuple(
    getattr(keras.metrics, name)
    for name in (
        "MeanSquaredError",
        "MeanAbsoluteError",
        "MeanAbsolutePercentageError",
        "MeanSquaredLogarithmicError",
        "RootMeanSquaredError",
        "LogCoshError",
        "Hinge",
        "SquaredHinge",
        "CategoricalHinge",
        "BinaryCrossentropy",
        "CategoricalCrossentropy",
        "SparseCategoricalCrossentropy",
        "KLDivergence",
        "Poisson",
    )
    if hasattr(keras.metrics, name)
)


# ----------------------------------------------------------------------------
# Numbers.
# ----------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------
# The head.
# ----------------------------------------------------------------------------
class Head:
    """What a model's outputs are: the task and whether they are logits.

    Args:
        task: "multilabel", "multiclass", "regression" or None (unknown).
        from_logits: True (logits), False (probabilities) or None
            (unknown: thresholded accuracies are then refused).
    """

    def __init__(self, task=None, from_logits=None):
        self.task = task
        self.from_logits = from_logits

    def __repr__(self):
        return f"Head(task={self.task!r}, from_logits={self.from_logits!r})"


def compiled_loss(model):
    """The model's compiled loss (one output), or None."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict) and len(loss) == 1:
        loss = next(iter(loss.values()))
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    return loss


def _loss_name(loss):
    if loss is None:
        return ""
    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)  # "mse" -> mean_squared_error
        except ValueError:
            return loss.lower()
        if loss is None:
            return ""
    fn = getattr(loss, "fn", None)
    if fn is not None and hasattr(fn, "__name__"):
        return fn.__name__.lower()
    if isinstance(loss, keras.losses.Loss):
        return str(loss.name).lower()
    return str(getattr(loss, "__name__", "")).lower()


def _output_activation(model):
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1:
        return None
    layer = model.layers[-1] if model.layers else None
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def infer_head(model, outputs):
    """The `Head` of a model, from the model and a batch of its outputs.

    The task comes from the model's `task` attribute (as
    `MultimodalTransformer.task`), else its compiled loss (binary /
    categorical cross-entropy, an error loss), else its output activation
    (sigmoid, softmax), else the outputs (in [0, 1]: rows summing to 1 are
    multi-class, others multi-label). Whether the outputs are logits comes
    from the compiled loss's `from_logits`, else a sigmoid / softmax output
    (probabilities), else a model that declares a `task` (its head returns
    logits, as `MultimodalTransformer`'s does), else outputs in [0, 1]
    (probabilities); otherwise it is unknown.

    Args:
        model: a Keras model, or None (only the outputs are read).
        outputs: a batch of the model's outputs.

    Returns:
        a `Head`.
    """
    outputs = _as_2d(np.asarray(outputs))
    loss = compiled_loss(model)
    name = _loss_name(loss)
    from_logits = None
    if isinstance(loss, keras.losses.Loss):
        from_logits = loss.get_config().get("from_logits")
    elif "crossentropy" in name:
        from_logits = False
    activation = _output_activation(model) if model is not None else None
    if from_logits is None and activation in ("sigmoid", "softmax"):
        from_logits = False
    declared = _TASK_ALIASES.get(str(getattr(model, "task", "")).lower())
    if from_logits is None and declared is not None:
        from_logits = True
    task = declared
    if task is None and name:
        if "binary" in name and "crossentropy" in name:
            task = "multilabel"
        elif "categorical" in name and "crossentropy" in name:
            task = "multiclass"
        elif any(
            key in name
            for key in ("squared", "absolute", "huber", "log_cosh", "logcosh")
        ):
            task = "regression"
    if task is None and activation == "sigmoid":
        task = "multilabel"
    if task is None and activation == "softmax":
        task = "multiclass"
    in_unit = bool(np.all((outputs >= 0) & (outputs <= 1)))
    if task is None and in_unit:
        rows_sum_to_one = outputs.shape[-1] > 1 and bool(
            np.allclose(outputs.sum(-1), 1.0, atol=1e-3)
        )
        task = "multiclass" if rows_sum_to_one else "multilabel"
    if from_logits is None and in_unit:
        from_logits = False
    return Head(task, from_logits)


# ----------------------------------------------------------------------------
# Labels.
# ----------------------------------------------------------------------------
def _as_2d(values):
    values = np.asarray(values)
    return values.reshape(len(values), -1) if values.ndim != 2 else values


def _is_binary(values):
    return bool(np.all((values == 0) | (values == 1)))


def _is_integer(values):
    return np.issubdtype(values.dtype, np.integer) or bool(
        np.all(np.mod(values, 1) == 0)
    )


def _unobserved(y):
    return (
        np.isnan(y) if np.issubdtype(y.dtype, np.floating) else np.zeros(y.shape, bool)
    )


def _binary_labels(y, width, metric, allow_nan):
    """0/1 labels (N, width); NaN kept (float) with `allow_nan`."""
    y = np.asarray(y)
    if y.ndim == 1 and width == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != width:
        hint = (
            " The labels look like class ids: use metric='accuracy'."
            if y.ndim == 1 and width > 1
            else ""
        )
        raise ValueError(
            f"The metric '{metric}' compares 0/1 labels with the {width} "
            f"outputs of the model (a multi-label or binary head); the labels "
            f"have shape {y.shape}.{hint}"
        )
    unobserved = _unobserved(y)
    if np.any(unobserved) and not allow_nan:
        raise ValueError(
            f"The metric '{metric}' needs 0/1 labels; the labels hold NaN "
            "(unobserved entries), which only metric='auc' (the default for "
            "multi-label heads) leaves out."
        )
    if not _is_binary(y[~unobserved]):
        raise ValueError(
            f"The metric '{metric}' needs 0/1 labels (presence/absence; NaN "
            "for unobserved ones); the labels hold other values (e.g. "
            f"{np.unique(y[~unobserved])[:5].tolist()}). For a regression "
            "head use metric='loss' or an error metric."
        )
    return y.astype("float64") if allow_nan else y.astype(bool)


def _class_ids(y, width, metric):
    """Class ids (N,) from ids or one-hot labels; None if neither form."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == width and width > 1:
        if _is_binary(y) and np.all(y.sum(1) == 1):
            return np.argmax(y, axis=1)
        return None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        return None
    if not _is_integer(y) or np.any(y < 0) or np.any(y >= width):
        raise ValueError(
            f"The metric '{metric}' needs integer class ids in [0, {width}) "
            f"for a {width}-output head (or one-hot labels); the labels hold "
            f"{np.unique(y)[:5].tolist()}..."
        )
    return y.astype("int64")


# ----------------------------------------------------------------------------
# SubsetMetric: how a score is accumulated over batches.
# ----------------------------------------------------------------------------
class SubsetMetric:
    """How the metric of one selection is accumulated over batches.

    `accumulator()` returns a fresh object with `update(y_true, y_pred)`
    (one batch) and `result()` (a float); `check(y_true, y_pred)` raises a
    `ValueError` when the metric does not fit the labels or the model
    output (it is called once, with all the labels and a batch of
    outputs).

    Args:
        name: the metric's name (a table column, a log key).
        fn: `fn(y_true, y_pred) -> float` on the whole data (predictions
            are collected).
        keras_metric: a `keras.metrics.Metric`, copied per selection and
            updated batch by batch (streaming, constant memory).
        per_example: `fn(y_true, y_pred) -> values`, averaged over all the
            values (streaming); `transform(mean)` then gives the score.
        transform: optional `fn(float) -> float` applied to the result.
        check: optional `check(y_true, y_pred)` raising `ValueError`.
        needs_labels: whether the metric reads the labels.
        user_defined: if True, any error of the metric is re-raised as a
            `ValueError` naming the shapes it failed on.
        higher_is_better: True, False (an error: `ModalityDynamics` refuses
            it) or None (unknown). Defaults to None.
        batch_probe: whether one batch is enough to compute the metric
            (False for AUC: a batch may lack positives). Defaults to True.
        modality_scores: instead of `fn` / `keras_metric` / `per_example`,
            `fn(model, x, y, layer) -> (M,) scores`, each modality of
            `layer` scored alone by the metric itself (e.g. a model's own
            reconstruction score); `ModalityDynamics` calls it in place of
            scoring single-modality views (the other tools do not take such
            a metric).

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
        per_example=None,
        transform=None,
        check=None,
        needs_labels=True,
        user_defined=False,
        higher_is_better=None,
        batch_probe=True,
        modality_scores=None,
    ):
        ways = (fn, keras_metric, per_example, modality_scores)
        if sum(x is not None for x in ways) != 1:
            raise ValueError(
                "A SubsetMetric needs exactly one of `fn`, `keras_metric`, "
                "`per_example` and `modality_scores`."
            )
        self.name = name
        self.fn = fn
        self.keras_metric = keras_metric
        self.per_example = per_example
        self.transform = transform
        self._check = check
        self.needs_labels = needs_labels
        self.user_defined = user_defined
        self.higher_is_better = higher_is_better
        self.batch_probe = batch_probe
        self.modality_scores = modality_scores

    def check(self, y_true, y_pred):
        """Raises a `ValueError` if the metric does not fit the labels."""
        if self._check is not None:
            self._check(y_true, y_pred)

    def accumulator(self):
        """A fresh accumulator: `update(y_true, y_pred)`, `result()`."""
        if self.modality_scores is not None:
            raise ValueError(
                f"The metric '{self.name}' scores modalities itself "
                "(`modality_scores`): only ModalityDynamics takes it."
            )
        if self.keras_metric is not None:
            accumulator = _StreamingAccumulator(self.keras_metric)
        elif self.per_example is not None:
            accumulator = _MeanAccumulator(self.per_example)
        else:
            accumulator = _CollectingAccumulator(self.fn)
        if self.transform is not None:
            accumulator = _Transformed(accumulator, self.transform)
        if self.user_defined:
            return _ExplainingAccumulator(accumulator, self.name)
        return accumulator

    def __repr__(self):
        return f"SubsetMetric({self.name!r})"


class _StreamingAccumulator:
    def __init__(self, metric):
        try:
            self.metric = type(metric).from_config(metric.get_config())
        except Exception as error:
            raise ValueError(
                f"Could not copy the metric {metric!r} (one fresh copy per "
                "selection is needed): its `from_config(get_config())` fails "
                f"with {type(error).__name__}: {error}"
            ) from error

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


class _MeanAccumulator:
    def __init__(self, fn):
        self.fn = fn
        self.total, self.count = 0.0, 0

    def update(self, y_true, y_pred):
        values = np.asarray(self.fn(y_true, y_pred), "float64")
        self.total += float(np.sum(values))
        self.count += values.size

    def result(self):
        return self.total / self.count


class _Transformed:
    def __init__(self, accumulator, transform):
        self.accumulator = accumulator
        self.transform = transform

    def update(self, y_true, y_pred):
        self.accumulator.update(y_true, y_pred)

    def result(self):
        return float(self.transform(self.accumulator.result()))


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


# ----------------------------------------------------------------------------
# The built-in metrics, by name: `make(name, head, y_true, y_pred, model)`.
# ----------------------------------------------------------------------------
def _auc(name, head, y_true, y_pred, model):
    width = _as_2d(y_pred).shape[1]
    y = np.asarray(y_true)
    one_vs_rest = width > 1 and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1))
    if one_vs_rest:  # class ids of a multi-class head: AUC one-vs-rest
        _class_ids(y, width, "auc")

        def fn(y_batch, p):
            return macro_auc(np.eye(width)[_class_ids(y_batch, width, "auc")], p)

        labels = np.eye(width)[_class_ids(y, width, "auc")]
    else:
        fn = macro_auc
        labels = _binary_labels(y, width, "auc", allow_nan=True)
    if not np.any(np.any(labels == 1, axis=0) & np.any(labels == 0, axis=0)):
        raise ValueError(
            "metric 'auc' needs, for at least one output, both positive and "
            "negative examples in the labels; none has both."
        )
    return SubsetMetric("auc", fn=fn, higher_is_better=True, batch_probe=False)


def _accuracy(name, head, y_true, y_pred, model):
    width = _as_2d(y_pred).shape[1]
    kind = {"binary_accuracy": "binary", "accuracy": None}.get(name, "top1")
    if kind is None:
        if head.task == "regression":
            raise ValueError(
                "metric 'accuracy' needs a classification head; this head is a "
                "regression (its compiled loss is an error). Use metric='loss'."
            )
        if head.task == "multiclass":
            kind = "top1"
        elif head.task == "multilabel" or width == 1:
            kind = "binary"
        elif _class_ids(y_true, width, name) is not None:
            kind = "top1"
        else:
            kind = "binary"
    if kind == "binary":
        _binary_labels(y_true, width, name, allow_nan=False)
        if head.from_logits is None:
            raise ValueError(
                f"metric '{name}' on 0/1 (multi-label or binary) labels "
                "thresholds probabilities, but the model's outputs are outside "
                "[0, 1] and nothing says they are logits (no compiled loss "
                "with `from_logits=True`): there is no threshold to use. Use a "
                "sigmoid output or a from_logits loss, or metric='auc'."
            )
        threshold = 0.0 if head.from_logits else 0.5

        def fn(y, p):
            hit = (_as_2d(p) > threshold) == _binary_labels(y, width, name, False)
            return float(np.mean(hit))

        return SubsetMetric(name, fn=fn, higher_is_better=True)
    if width < 2:
        raise ValueError(
            f"metric '{name}' takes the argmax of several class outputs; the "
            "model has a single output. Use 'binary_accuracy' or 'auc'."
        )
    if _class_ids(y_true, width, name) is None:
        raise ValueError(
            f"metric '{name}' needs integer class ids or one-hot labels for a "
            f"{width}-class head; the labels have shape {np.shape(y_true)} "
            "(rows with several or no 1s are multi-label: use metric='auc')."
        )

    def fn(y, p):
        return float(
            np.mean(np.argmax(_as_2d(p), axis=1) == _class_ids(y, width, name))
        )

    return SubsetMetric(name, fn=fn, higher_is_better=True)


def _loss(name, head, y_true, y_pred, model):
    loss = compiled_loss(model)
    if loss is None or isinstance(loss, (dict, list, tuple)):
        raise ValueError(
            "metric='loss' uses the compiled loss of a single-output model; "
            f"the model's loss is {loss!r}. Compile the model with a loss, or "
            "pass a metric."
        )
    if isinstance(loss, str):
        loss = keras.losses.get(loss)

    def per_example(y, p):
        y = keras.ops.convert_to_tensor(y)
        p = keras.ops.convert_to_tensor(p, "float32")
        values = loss.call(y, p) if isinstance(loss, keras.losses.Loss) else loss(y, p)
        return keras.ops.convert_to_numpy(values)

    def score(mean_loss):
        if mean_loss < 0:
            raise ValueError(
                "metric='loss' needs a loss >= 0 (the score is 1 / (1 + loss)); "
                f"the compiled loss gives {mean_loss}."
            )
        return 1.0 / (1.0 + mean_loss)

    return SubsetMetric(
        "loss_score", per_example=per_example, transform=score, higher_is_better=True
    )


def _ranking(name, head, y_true, y_pred, model):
    """GeoLifeCLEF's `top_k_f1` (k = 25, per example) and `micro_auc`."""
    _binary_labels(y_true, _as_2d(y_pred).shape[1], name, allow_nan=True)
    fn = getattr(ranking_metrics, name)
    return SubsetMetric(name, fn=fn, higher_is_better=True, batch_probe=False)


_REGISTRY = {}


def register_metric(name, make, higher_is_better=True):
    """Adds a named metric that `metric=name` resolves to, everywhere.

    Args:
        name: the name (case-insensitive).
        make: `make(name, head, y_true, y_pred, model) -> SubsetMetric`,
            called once per measurement set-up with all the labels, a
            batch of outputs, the model's `Head` and the model (so a
            metric may be supplied by the model). It checks the labels
            (raising `ValueError`). A `SubsetMetric` may be given instead.
        higher_is_better: whether the score grows with quality (required by
            `ModalityDynamics`).

    Example:

    >>> register_metric(
    ...     "mean_prediction",
    ...     SubsetMetric("mean_prediction", fn=lambda y, p: np.mean(p),
    ...                  needs_labels=False, higher_is_better=True),
    ... )
    """
    if not callable(make) and not isinstance(make, SubsetMetric):
        raise ValueError(
            f"`make` must be a callable or a SubsetMetric; received {make!r}."
        )
    _REGISTRY[str(name).lower()] = (make, higher_is_better)


for _name in AUC_NAMES:
    register_metric(_name, _auc)
for _name in ACCURACY_NAMES:
    register_metric(_name, _accuracy)
register_metric(LOSS_NAME, _loss)
register_metric("top_k_f1", _ranking)
register_metric("micro_auc", _ranking)


def _registered(metric):
    return _REGISTRY.get(metric.lower()) if isinstance(metric, str) else None


def ready_metric(metric):
    """The `SubsetMetric` that `metric` is without seeing outputs, or None.

    A `SubsetMetric`, or a name registered with a `SubsetMetric` (not a
    factory), is ready; names resolved against the head are not.
    """
    if isinstance(metric, SubsetMetric):
        return metric
    entry = _registered(metric)
    if entry is not None and isinstance(entry[0], SubsetMetric):
        return entry[0]
    return None


def _user_metric(metric):
    """A user's Keras metric, metric name or function as a `SubsetMetric`."""
    name = None
    if isinstance(metric, str):
        name = metric
        try:
            metric = keras.metrics.get(metric)
        except ValueError as error:
            raise ValueError(
                f"Unknown metric {metric!r}: use None, 'auc', 'accuracy', "
                "'binary_accuracy', 'categorical_accuracy', 'loss', a name "
                "keras.metrics.get() knows, a keras.metrics.Metric or a function "
                f"fn(y_true, y_pred) ({error})."
            ) from error
    if isinstance(metric, type) and issubclass(metric, keras.metrics.Metric):
        metric = metric()
    if isinstance(metric, keras.metrics.Metric):
        return SubsetMetric(
            name or metric.name,
            keras_metric=metric,
            user_defined=True,
            higher_is_better=False if isinstance(metric, _ERROR_METRICS) else None,
        )
    if callable(metric):
        name = name or getattr(metric, "__name__", "metric")
        name = "metric" if name == "<lambda>" else name
        return SubsetMetric(name, fn=metric, user_defined=True)
    raise ValueError(
        "`metric` must be None, a name, a keras.metrics.Metric, a SubsetMetric "
        f"or a function fn(y_true, y_pred); received {metric!r}."
    )


def check_metric(metric, higher_is_better=False):
    """Checks `metric=` before any model or data is seen.

    Args:
        metric: what `resolve_metric()` accepts.
        higher_is_better: if True, metrics known to be errors (lower is
            better, e.g. `MeanSquaredError`) are refused.

    Raises:
        ValueError: for an unknown name or a bad type, or an error metric
            when `higher_is_better`.
    """
    if metric is None or isinstance(metric, SubsetMetric):
        better = None if metric is None else metric.higher_is_better
    elif _registered(metric) is not None:
        better = _registered(metric)[1]
    else:
        better = _user_metric(metric).higher_is_better
    if higher_is_better and better is False:
        name = getattr(metric, "name", metric)
        raise ValueError(
            f"The metric '{name}' is an error (lower is better); a modality "
            "score must grow with quality. Use metric='loss' (score "
            "1 / (1 + loss)) or a higher-is-better metric."
        )


def default_metric_name(y_true, y_pred, head=None):
    """'auc' for multi-label heads, 'accuracy' for multi-class heads.

    Args:
        y_true: the labels.
        y_pred: a batch of the model's outputs.
        head: the model's `Head` (see `infer_head()`); when its task is
            unknown, the labels decide: 0/1 labels shaped like the outputs
            get 'auc', class ids or one-hot labels 'accuracy'.

    Returns:
        'auc' or 'accuracy'.
    """
    task = None if head is None else head.task
    if task == "multilabel":
        return "auc"
    if task == "multiclass":
        return "accuracy"
    if task == "regression":
        raise ValueError(
            "metric=None: could not choose a metric for this regression head "
            "(AUC needs a sigmoid / multi-label head, accuracy a softmax / "
            "multi-class head); pass `metric=`, e.g. metric='loss'."
        )
    y, p = np.asarray(y_true), _as_2d(y_pred)
    y2 = _as_2d(y) if y.ndim else y
    if y2.shape[1:] == p.shape[1:] and _is_binary(y2[~_unobserved(y2)]):
        one_hot = p.shape[1] > 1 and np.all(y2.sum(axis=1) == 1)
        return "accuracy" if one_hot else "auc"
    if p.shape[1] > 1 and y.size == len(y) and _is_integer(y):
        return "accuracy"
    raise ValueError(
        "metric=None: could not choose a default metric for labels of shape "
        f"{y.shape} (e.g. {np.unique(y)[:5].tolist()}) and outputs of shape "
        f"{p.shape}: the defaults are AUC (0/1 labels, one per output) and "
        "accuracy (class ids). Pass `metric=`, e.g. 'loss', 'mse' or a "
        "keras.metrics.Metric."
    )


def resolve_metric(metric, y_true, y_pred, model=None, head=None):
    """Turns `metric=` into a `SubsetMetric`, against the head and the labels.

    Args:
        metric: None (see `default_metric_name()`); a registered name:
            'auc' / 'macro_auc' (exact macro AUC, `macro_auc()`; one-vs-rest
            for class ids), 'accuracy' (top-1 for multi-class heads, binary
            accuracy over all outputs for multi-label heads),
            'binary_accuracy', 'categorical_accuracy',
            'sparse_categorical_accuracy', 'loss' (the compiled loss as
            1 / (1 + loss)), 'top_k_f1' (k = 25) and 'micro_auc'
            (`ranking_metrics`, GeoLifeCLEF's), or a name added with
            `register_metric()`; any
            other name `keras.metrics.get()` knows ('mse', ...); a
            `keras.metrics.Metric` (copied and streamed per selection); a
            function `fn(y_true, y_pred)` returning a number or one number
            per example (averaged), called on all the predictions; or a
            `SubsetMetric` (returned as is).
        y_true: all the labels (checked), or None for label-free metrics.
        y_pred: a batch of the model's outputs.
        model: the model (its head, its compiled loss for 'loss').
        head: a `Head`, instead of inferring it from `model` and `y_pred`.

    Returns:
        a `SubsetMetric`.

    Example:

    >>> metric = resolve_metric("accuracy", y_val, model.predict(x_val[:32]),
    ...                         model=model)
    """
    if isinstance(metric, SubsetMetric):
        return metric
    if y_true is None:
        raise ValueError(f"The metric {metric!r} needs labels: pass `(x, y)` data.")
    if not hasattr(y_pred, "shape"):
        raise ValueError(
            "Scores under selections need a model with a single output tensor; "
            f"the model returned {type(y_pred).__name__}."
        )
    y_pred = np.asarray(y_pred)
    if head is None:
        head = infer_head(model, y_pred)
    if metric is None:
        metric = default_metric_name(y_true, y_pred, head)
    entry = _registered(metric)
    if entry is None:
        return _user_metric(metric)
    make, higher_is_better = entry
    if isinstance(make, SubsetMetric):
        resolved = make
    else:
        if y_pred.ndim > 2:
            raise ValueError(
                f"The metric '{metric}' is computed on (batch, outputs) "
                f"predictions; the model returns shape {y_pred.shape}. Pass a "
                "keras.metrics.Metric instance instead."
            )
        resolved = make(str(metric).lower(), head, y_true, y_pred, model)
    if resolved.higher_is_better is None:
        resolved.higher_is_better = higher_is_better
    return resolved


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
