"""`metric=` of `ModalityDynamics`, `evaluate_subsets` and the Shapley
functions: `resolve_metric()` and what it reads from the model."""

import keras
import numpy as np

from keras_miam.metrics import MaskedTopKF1
from keras_miam.metrics import macro_auc
from keras_miam.metrics import micro_auc

# Names resolved here, not by `keras.metrics.get`: all higher-is-better.
OWN_NAMES = ("auc", "macro_auc", "micro_auc", "top_k_f1", "loss", "accuracy", "acc")
OWN_NAMES += ("binary_accuracy",)


def metric_name(scorer):
    """A resolved metric's name: a table column, a log key."""
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
    """`mode`, or for "auto" the direction `keras.callbacks.EarlyStopping`
    reads from a Keras metric: "max", "min" or None (a function)."""
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
    """A `Metric` class or a name `keras.metrics.get` knows as an instance; a
    function or `Metric` instance as is."""
    if isinstance(metric, type) and issubclass(metric, keras.metrics.Metric):
        return metric()
    if callable(metric):
        return metric
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


def compiled_loss(model):
    """The compiled loss of a single-output model, or None."""
    loss = getattr(model, "loss", None)
    loss = list(loss.values()) if isinstance(loss, dict) else loss
    if isinstance(loss, (list, tuple)):
        loss = loss[0] if len(loss) == 1 else None
    return keras.losses.get(loss) if isinstance(loss, str) else loss


def _task(model, y, y_pred):
    """ "multilabel", "multiclass" or None: the model's `task`, else read
    from the labels (class ids, one-hot or 0/1) and the outputs."""
    if getattr(model, "task", None) in ("multilabel", "multiclass"):
        return model.task
    width, y = y_pred.shape[1], y.reshape(len(y), -1)
    if width > 1 and y.shape[1] == 1:
        return "multiclass"  # class ids
    if y.shape[1] != width or not np.isin(y[~np.isnan(y)], (0, 1)).all():
        return None
    if width > 1 and (y.sum(1) == 1).all():  # one-hot: unless sigmoid outputs
        probabilities = np.all((y_pred >= 0) & (y_pred <= 1))
        if not probabilities or np.allclose(y_pred.sum(1), 1.0, atol=1e-3):
            return "multiclass"
    return "multilabel"


def _from_logits(model, y_pred):
    """The compiled loss's `from_logits`, True for a model with a `task`,
    False for outputs in [0, 1], else None."""
    config = getattr(compiled_loss(model), "get_config", dict)()
    if "from_logits" in config:
        return bool(config["from_logits"])
    if getattr(model, "task", None) is not None:
        return True
    return False if np.all((y_pred >= 0) & (y_pred <= 1)) else None


def _class_ids(y, width, name):
    y = np.reshape(y, -1)
    if np.any(y % 1) or np.any(y < 0) or np.any(y >= width):
        raise ValueError(
            f"The metric '{name}' needs class ids in [0, {width}) or one-hot "
            f"labels; received {np.unique(y)[:5].tolist()}."
        )
    return y.astype("int64")


def resolve_metric(metric, y_true, y_pred, model=None, from_logits=None):
    """Turns `metric=` into a scorer, checked against the labels and outputs.

    Args:
        metric: None (`"auc"` for multi-label heads, `"accuracy"` for
            multi-class ones); `"auc"` (exact, NaN targets left out,
            one-vs-rest for class ids), `"micro_auc"`, `"top_k_f1"`
            (`MaskedTopKF1(k=25)`), `"accuracy"`, `"binary_accuracy"`,
            `"loss"` (`1 / (1 + loss)`, as `"loss_score"`); a name
            `keras.metrics.get` knows, a `keras.metrics.Metric` or a
            function `fn(y_true, y_pred)`.
        y_true: all the labels, or None for a function that ignores them.
        y_pred: a batch of the model's outputs.
        model: the model: its `task` and compiled loss.
        from_logits: whether the outputs are logits (thresholds at 0, else
            0.5); None reads the compiled loss, the `task`, the outputs.
    """
    if callable(metric) and not isinstance(metric, str):
        return _keras_metric(metric)
    if y_true is None:
        raise ValueError(f"The metric {metric!r} needs labels: pass `(x, y)` data.")
    if metric is not None and str(metric).lower() not in OWN_NAMES:
        return _keras_metric(metric)
    y_pred = np.reshape(y_pred, (len(y_pred), -1))
    y = np.asarray(y_true, "float64")
    width, task = y_pred.shape[1], _task(model, y, y_pred)
    if metric is None and task is None:
        raise ValueError(
            f"metric=None: could not choose a metric for labels {y.shape} and "
            f"outputs {y_pred.shape}; pass `metric=`, e.g. metric='loss'."
        )
    name = metric.lower() if metric else {"multilabel": "auc"}.get(task, "accuracy")
    if name in ("auc", "macro_auc", "micro_auc"):
        one_vs_rest = width > 1 and y.size == len(y)

        def auc(y_true, y_pred):
            if one_vs_rest:  # class ids: the AUC of their one-hot labels
                y_true = np.eye(width)[_class_ids(y_true, width, name)]
            return (micro_auc if name == "micro_auc" else macro_auc)(y_true, y_pred)

        auc.__name__ = name
        auc(y, np.zeros((len(y), width)))  # checks the labels now
        return auc
    if name == "top_k_f1":
        return MaskedTopKF1(k=25)
    if name == "loss":
        return _loss_score(model)
    if name != "binary_accuracy" and task == "multiclass":
        if y.size == len(y):
            _class_ids(y, width, name)
            return keras.metrics.SparseCategoricalAccuracy(name=name)
        return keras.metrics.CategoricalAccuracy(name=name)
    if y.reshape(len(y), -1).shape[1] != width or not np.isin(y, (0, 1)).all():
        held = "NaN" if np.isnan(y).any() else np.unique(y)[:5].tolist()
        raise ValueError(
            f"The metric '{name}' needs 0/1 labels for the {width} outputs (NaN "
            "only with 'auc', 'micro_auc' or 'top_k_f1'; for a regression, "
            f"metric='loss'); received labels {y.shape} that hold {held}."
        )
    from_logits = _from_logits(model, y_pred) if from_logits is None else from_logits
    if from_logits is None:
        raise ValueError(
            f"The metric '{name}' thresholds a multi-label or binary head's "
            "outputs, outside [0, 1]: no threshold without logits. Pass "
            "`from_logits=True`, use a sigmoid output, or metric='auc'."
        )
    threshold = 0.0 if from_logits else 0.5
    return keras.metrics.BinaryAccuracy(name=name, threshold=threshold)


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
