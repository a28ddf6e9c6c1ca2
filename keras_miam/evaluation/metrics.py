"""The metric system of `ModalityDynamics`, `evaluate_subsets` and the
Shapley functions: `resolve_metric()` and what it reads from the model."""

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
    return metric.__class__.from_config(metric.get_config())


def metric_direction(metric, mode="auto"):
    """`mode`, or for "auto" the direction `EarlyStopping` reads ("max",
    "min" or None)."""
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
    return _metric_class(metric)


def _metric_class(metric):
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
    """Whether the outputs are logits: `from_logits`, the compiled loss's,
    True for a model with a `task`, False for outputs in [0, 1], else None."""
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
            f"The metric '{name}' needs 0/1 labels for the {width} outputs (a "
            f"multi-label or binary head); received shape {y.shape}.{hint}"
        )
    seen = ~np.isnan(y)
    if not allow_nan and not seen.all():
        raise ValueError(
            f"The metric '{name}' needs 0/1 labels; the labels hold NaN (only "
            "'auc', 'micro_auc' and 'top_k_f1' leave them out)."
        )
    if not np.isin(y[seen], (0.0, 1.0)).all():
        raise ValueError(
            f"The metric '{name}' needs 0/1 labels (NaN: unobserved); received "
            f"{np.unique(y[seen])[:5].tolist()}. Regression: metric='loss'."
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
            f"The metric '{name}' needs class ids in [0, {width}) or one-hot "
            f"labels; received {y.shape}, {np.unique(y)[:5].tolist()}."
        )
    return y.astype("int64")


def default_metric(y_true, y_pred, task):
    """'auc' for multi-label heads, 'accuracy' for multi-class heads."""
    if task in ("multilabel", "multiclass"):
        return "auc" if task == "multilabel" else "accuracy"
    if task == "regression":
        raise ValueError(
            "metric=None: could not choose a metric for a regression head; pass "
            "`metric=`, e.g. metric='loss'."
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
        f"metric=None: no default metric for labels {y.shape} and outputs "
        f"{y_pred.shape} (AUC: 0/1 labels; accuracy: class ids). Pass `metric=`."
    )


def resolve_metric(metric, y_true, y_pred, model=None, from_logits=None):
    """Turns `metric=` into a scorer, checked against the labels and outputs.

    Args:
        metric: None (macro AUC for multi-label heads, accuracy for
            multi-class ones, read from the model's `task`, compiled loss,
            else the outputs and labels); `"auc"` (exact `macro_auc`, NaN
            targets left out, one-vs-rest for class ids), `"micro_auc"`,
            `"top_k_f1"` (`MaskedTopKF1(k=25)`), an accuracy name, `"loss"`
            (`1 / (1 + loss)`, named `"loss_score"`), a name
            `keras.metrics.get` knows, a `keras.metrics.Metric` or a
            function `fn(y_true, y_pred)`.
        y_true: all the labels, or None for a function that ignores them.
        y_pred: a batch of the model's outputs.
        model: the model (its head and compiled loss).
        from_logits: whether the outputs are logits (thresholded accuracies
            cut at 0, else 0.5); None reads it with `from_logits_of`.

    Returns:
        A `keras.metrics.Metric` or a function; `metric_name()` names it.
    """
    if callable(metric) and not isinstance(metric, str):
        return _metric_class(metric)
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
            raise ValueError(f"The metric '{name}': no output has both classes.")

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
                f"The metric '{name}' needs a classification head; this one is "
                "a regression. Use metric='loss'."
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
                f"The metric '{name}' thresholds a multi-label or binary head's "
                "outputs, outside [0, 1]: no threshold without logits. Pass "
                "`from_logits=True`, use a sigmoid output, or metric='auc'."
            )
        threshold = 0.0 if from_logits else 0.5
        return keras.metrics.BinaryAccuracy(name=name, threshold=threshold)
    if width < 2:
        raise ValueError(
            f"The metric '{name}' needs several class outputs; the model has "
            "one. Use 'binary_accuracy' or 'auc'."
        )
    if _class_ids(y_true, width, name) is None:
        raise ValueError(
            f"The metric '{name}' needs class ids or one-hot labels; received "
            f"shape {np.shape(y_true)} (multi-label? use metric='auc')."
        )
    if np.ndim(y_true) == 2 and np.shape(y_true)[1] == width:
        return keras.metrics.CategoricalAccuracy(name=name)
    return keras.metrics.SparseCategoricalAccuracy(name=name)


def _loss_score(model):
    loss = compiled_loss(model)
    if not callable(loss):
        raise ValueError(
            "metric='loss' needs a compiled single-output loss; the model's "
            f"loss is {getattr(model, 'loss', None)!r}."
        )

    def loss_score(y_true, y_pred):
        value = float(np.mean(keras.ops.convert_to_numpy(loss(y_true, y_pred))))
        if value < 0:
            raise ValueError(f"metric='loss' needs a loss >= 0; received {value}.")
        return 1.0 / (1.0 + value)

    return loss_score
