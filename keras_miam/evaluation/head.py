"""What a model's outputs are: the task of its head and whether they are logits.

`infer_head()` reads it from the model's `task` attribute, its compiled loss,
its output activation, else its outputs; `keras_miam.evaluation.metrics`
chooses and checks its metrics from it (the default metric, the threshold of
thresholded accuracies, `"loss"`).
"""

import keras
import numpy as np

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
    outputs = np.asarray(outputs)
    if outputs.ndim != 2:
        outputs = outputs.reshape(len(outputs), -1)
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
