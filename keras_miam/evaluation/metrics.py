"""The one metric system of `ModalityDynamics`, `evaluate_subsets` and the
Shapley functions: `resolve_metric()` turns `metric=` into a
`keras.metrics.Metric` (one fresh copy per selection) or a function called
on all the predictions of a selection. Keras covers the names it knows;
`OWN_NAMES` add what it cannot do (NaN targets, the exact rank AUC, the
compiled loss as a score)."""

import keras
import numpy as np

from keras_miam.metrics import MaskedTopKF1
from keras_miam.metrics import macro_auc
from keras_miam.metrics import micro_auc

ACCURACIES = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy")
ACCURACIES += ("sparse_categorical_accuracy",)
# Names resolved here, not by `keras.metrics.get`: all higher-is-better.
OWN_NAMES = ("auc", "macro_auc", "micro_auc", "top_k_f1", "loss") + ACCURACIES
LOSS_KINDS = {"binary": "multilabel", "categorical": "multiclass"}
ERROR_LOSSES = ("squared", "absolute", "huber", "log_cosh", "logcosh")


def metric_name(scorer):
    """The name of a resolved metric: a table column, a log key."""
    name = getattr(scorer, "name", None) or getattr(scorer, "__name__", "metric")
    return "metric" if name == "<lambda>" else str(name)


def score(scorer, y_true, y_pred):
    """A resolved metric on whole arrays, as a float (a fresh Keras metric)."""
    if isinstance(scorer, keras.metrics.Metric):
        metric = fresh_metric(scorer)
        metric.update_state(y_true, y_pred)
        value = metric.result()
    else:
        value = scorer(y_true, y_pred)
    return float(np.mean(keras.ops.convert_to_numpy(value)))


def fresh_metric(metric):
    """A new copy of a Keras metric, with its configuration."""
    try:
        return metric.__class__.from_config(metric.get_config())
    except Exception as error:
        raise ValueError(
            f"Could not copy the metric {metric!r} (one fresh copy per "
            "selection is needed): its `from_config(get_config())` fails with "
            f"{type(error).__name__}: {error}"
        ) from error


def metric_direction(metric, mode="auto"):
    """`mode` if "max" or "min"; for "auto", the metric's direction as
    `keras.callbacks.EarlyStopping` reads it ("max", "min" or None)."""
    if mode in ("max", "min"):
        return mode
    if mode != "auto":
        raise ValueError(f"`mode` must be 'auto', 'max' or 'min'; received {mode!r}.")
    own = isinstance(metric, str) and metric.lower() in OWN_NAMES
    if metric is None or own or metric == "reconstruction":
        return "max"
    direction = getattr(_keras_metric(metric), "_direction", None)
    return {"up": "max", "down": "min"}.get(direction)


def _keras_metric(metric):
    """A name `keras.metrics.get` knows, or a `Metric` class, as an instance."""
    if isinstance(metric, str):
        try:
            instance = keras.metrics.get(metric)
        except ValueError as error:
            raise ValueError(
                f"Unknown metric {metric!r}: use None, {', '.join(OWN_NAMES)}, a "
                "name keras.metrics.get() knows, a keras.metrics.Metric or a "
                f"function fn(y_true, y_pred) ({error})."
            ) from error
        instance.name = metric  # as `Model.compile` names it
        return instance
    if isinstance(metric, type) and issubclass(metric, keras.metrics.Metric):
        return metric()
    return metric


def compiled_loss(model):
    """The compiled loss of a single-output model, or None."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict):
        loss = list(loss.values())
    if isinstance(loss, (list, tuple)):
        loss = loss[0] if len(loss) == 1 else None
    return keras.losses.get(loss) if isinstance(loss, str) else loss


def _task_of(model, y_pred):
    """ "multilabel", "multiclass", "regression" or None, from the model."""
    task = str(getattr(model, "task", "")).lower()
    if task in ("multilabel", "multiclass"):
        return task
    name = _loss_name(compiled_loss(model))
    if "crossentropy" in name:
        return LOSS_KINDS.get(name.removeprefix("sparse_").split("_")[0])
    if any(key in name for key in ERROR_LOSSES):
        return "regression"
    if np.all((y_pred >= 0) & (y_pred <= 1)):
        one = y_pred.shape[1] > 1 and np.allclose(y_pred.sum(1), 1.0, atol=1e-3)
        return "multiclass" if one else "multilabel"
    return None


def _loss_name(loss):
    name = getattr(getattr(loss, "fn", loss), "__name__", None)
    return str(name or getattr(loss, "name", "")).lower()


def from_logits_of(model, y_pred, from_logits=None):
    """Whether the outputs are logits (the one place this is read):
    `from_logits`, else the compiled loss's, else True for a model with a
    `task` (`MultimodalTransformer`), False for outputs in [0, 1] (a sigmoid
    or softmax output), else None (unknown)."""
    if from_logits is not None:
        return bool(from_logits)
    loss = compiled_loss(model)
    if isinstance(loss, keras.losses.Loss) and "from_logits" in loss.get_config():
        return bool(loss.get_config()["from_logits"])
    if "crossentropy" in _loss_name(loss):
        return False  # a loss function's default
    if getattr(model, "task", None) is not None:
        return True
    return False if np.all((y_pred >= 0) & (y_pred <= 1)) else None


def _binary(y, width, name, allow_nan):
    """Checks 0/1 labels `(N, width)` (NaN: unobserved, with `allow_nan`)."""
    y = np.asarray(y, "float64")
    if y.ndim == 1 and width == 1:
        y = y[:, None]
    if y.shape[1:] != (width,):
        hint = " Class ids? Use metric='accuracy'." if y.ndim == 1 else ""
        raise ValueError(
            f"The metric '{name}' compares 0/1 labels with the {width} outputs "
            f"of the model (a multi-label or binary head); the labels have "
            f"shape {y.shape}.{hint}"
        )
    seen = ~np.isnan(y)
    if not allow_nan and not seen.all():
        raise ValueError(
            f"The metric '{name}' needs 0/1 labels; the labels hold NaN "
            "(unobserved entries), which only 'auc', 'micro_auc' and "
            "'top_k_f1' leave out."
        )
    if not np.isin(y[seen], (0.0, 1.0)).all():
        raise ValueError(
            f"The metric '{name}' needs 0/1 labels (NaN: unobserved); the "
            f"labels hold {np.unique(y[seen])[:5].tolist()}. For a regression "
            "head use metric='loss' or an error metric."
        )
    return y


def _class_ids(y, width, name):
    """Class ids `(N,)` from ids or one-hot labels; None for other 2-D labels."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == width > 1:
        one_hot = np.isin(y, (0, 1)).all() and (y.sum(1) == 1).all()
        return np.argmax(y, 1) if one_hot else None
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or np.any(y % 1) or np.any(y < 0) or np.any(y >= width):
        raise ValueError(
            f"The metric '{name}' needs integer class ids in [0, {width}) for "
            f"a {width}-output head, or one-hot labels; the labels have shape "
            f"{y.shape} and values {np.unique(y)[:5].tolist()}."
        )
    return y.astype("int64")


def default_metric(y_true, y_pred, task):
    """'auc' for multi-label heads, 'accuracy' for multi-class heads."""
    if task in ("multilabel", "multiclass"):
        return "auc" if task == "multilabel" else "accuracy"
    if task == "regression":
        raise ValueError(
            "metric=None: could not choose a metric for this regression head "
            "(the defaults are AUC for multi-label and accuracy for "
            "multi-class heads); pass `metric=`, e.g. metric='loss'."
        )
    y = np.asarray(y_true)
    y2 = y.reshape(len(y), -1)
    seen = ~np.isnan(y2.astype("float64"))
    if y2.shape[1:] == y_pred.shape[1:] and np.isin(y2[seen], (0, 1)).all():
        one_hot = y_pred.shape[1] > 1 and (y2.sum(1) == 1).all()
        return "accuracy" if one_hot else "auc"
    if y_pred.shape[1] > 1 and y.size == len(y) and not np.any(y % 1):
        return "accuracy"
    raise ValueError(
        f"metric=None: could not choose a default metric for labels of shape "
        f"{y.shape} and outputs of shape {y_pred.shape} (AUC needs 0/1 labels, "
        "one per output; accuracy, class ids). Pass `metric=`, e.g. 'loss'."
    )


def resolve_metric(metric, y_true, y_pred, model=None, from_logits=None):
    """Turns `metric=` into a scorer, checked against the labels and outputs.

    Args:
        metric: None (exact macro AUC for multi-label heads, top-1 accuracy
            for multi-class ones; the head is read from the model's `task`,
            compiled loss, else the outputs and labels);
            `"auc"` (`keras_miam.metrics.macro_auc`: exact, NaN targets left
            out, one-vs-rest for class ids), `"micro_auc"`, `"top_k_f1"`
            (`MaskedTopKF1(k=25)`), `"accuracy"` (top-1, or binary on a
            multi-label head), `"binary_accuracy"`, `"categorical_accuracy"`,
            `"sparse_categorical_accuracy"`, `"loss"` (the compiled loss as
            `1 / (1 + loss)`, named `"loss_score"`); a name
            `keras.metrics.get` knows; a `keras.metrics.Metric` (with its
            own `from_logits`); or a function `fn(y_true, y_pred)`.
        y_true: all the labels, or None for a function that ignores them.
        y_pred: a batch of the model's outputs.
        model: the model (its head and compiled loss).
        from_logits: whether the outputs are logits (thresholded accuracies
            cut at 0, else 0.5); None reads it with `from_logits_of`.

    Returns:
        A `keras.metrics.Metric` or a function; `metric_name()` names it.
    """
    if isinstance(metric, type) and issubclass(metric, keras.metrics.Metric):
        return metric()
    if callable(metric) and not isinstance(metric, (str, type)):
        return metric
    if y_true is None:
        raise ValueError(f"The metric {metric!r} needs labels: pass `(x, y)` data.")
    if isinstance(metric, str) and metric.lower() not in OWN_NAMES:
        return _keras_metric(metric)
    if metric is not None and not isinstance(metric, str):
        raise ValueError(
            "`metric` must be None, a name, a keras.metrics.Metric or a function "
            f"fn(y_true, y_pred); received {metric!r}."
        )
    y_pred = np.reshape(y_pred, (len(y_pred), -1))
    width = y_pred.shape[1]
    task = _task_of(model, y_pred)
    name = default_metric(y_true, y_pred, task) if metric is None else metric.lower()
    if name in ("auc", "macro_auc"):
        y = np.asarray(y_true)
        one_vs_rest = width > 1 and (y.ndim == 1 or y.shape[1] == 1)
        if one_vs_rest:  # class ids: the AUC of their one-hot labels
            y = np.eye(width)[_class_ids(y, width, name)]
        y = _binary(y, width, name, allow_nan=True)
        if not ((y == 1).any(0) & (y == 0).any(0)).any():
            raise ValueError(
                f"The metric '{name}' needs, for at least one output, positive "
                "and negative examples in the labels; none has both."
            )

        def auc(y_true, y_pred):
            if one_vs_rest:
                y_true = np.eye(width)[_class_ids(y_true, width, name)]
            return macro_auc(y_true, y_pred)

        auc.__name__ = name
        return auc
    if name in ("micro_auc", "top_k_f1"):
        _binary(y_true, width, name, allow_nan=True)
        return micro_auc if name == "micro_auc" else MaskedTopKF1(k=25)
    if name == "loss":
        return _loss_score(model)
    return _accuracy(
        name, y_true, y_pred, task, from_logits_of(model, y_pred, from_logits)
    )


def _accuracy(name, y_true, y_pred, task, from_logits):
    width = y_pred.shape[1]
    if name in ("accuracy", "acc"):
        if task == "regression":
            raise ValueError(
                f"The metric '{name}' needs a classification head; this head "
                "is a regression (its compiled loss is an error). Use "
                "metric='loss'."
            )
        binary = task == "multilabel" or width == 1
        binary = binary or (task is None and _class_ids(y_true, width, name) is None)
        kind = "binary_accuracy" if binary else "categorical_accuracy"
    else:
        kind = name
    if kind == "binary_accuracy":
        _binary(y_true, width, name, allow_nan=False)
        if from_logits is None:
            raise ValueError(
                f"The metric '{name}' thresholds the outputs of a multi-label "
                "or binary head, which are outside [0, 1], and nothing says "
                "they are logits: there is no threshold to use. Pass "
                "`from_logits=True`, compile a loss with `from_logits=True`, "
                "use a sigmoid output, or metric='auc'."
            )
        threshold = 0.0 if from_logits else 0.5
        return keras.metrics.BinaryAccuracy(name=name, threshold=threshold)
    if width < 2:
        raise ValueError(
            f"The metric '{name}' takes the argmax of several class outputs; "
            "the model has one output. Use 'binary_accuracy' or 'auc'."
        )
    if _class_ids(y_true, width, name) is None:
        raise ValueError(
            f"The metric '{name}' needs class ids or one-hot labels for a "
            f"{width}-class head; the labels have shape {np.shape(y_true)} "
            "(rows with several or no 1s are multi-label: use metric='auc')."
        )
    if np.ndim(y_true) == 2 and np.shape(y_true)[1] == width:
        return keras.metrics.CategoricalAccuracy(name=name)
    return keras.metrics.SparseCategoricalAccuracy(name=name)


def _loss_score(model):
    loss = compiled_loss(model)
    if not callable(loss):
        raise ValueError(
            "metric='loss' uses the compiled loss of a single-output model; "
            f"the model's loss is {getattr(model, 'loss', None)!r}. Compile the "
            "model with a loss, or pass a metric."
        )

    def loss_score(y_true, y_pred):
        value = float(np.mean(keras.ops.convert_to_numpy(loss(y_true, y_pred))))
        if value < 0:
            raise ValueError(
                "metric='loss' needs a loss >= 0 (the score is 1 / (1 + loss)); "
                f"the compiled loss gives {value}."
            )
        return 1.0 / (1.0 + value)

    return loss_score
