"""`check_data`: a model's data checked before any compiled step."""

import keras
import numpy as np


def static_shape(x):
    """`x`'s shape as a tuple (None for unknown dims), None if rank unknown."""
    try:
        return tuple(None if d is None else int(d) for d in np.shape(x))
    except (TypeError, ValueError):
        return None


def _numbers(value, where, what, hint):
    """`value` as an array, or a `ValueError` unless it holds numbers."""
    value = value if hasattr(value, "dtype") else np.asarray(value)
    try:
        dtype = keras.backend.standardize_dtype(value.dtype)
    except ValueError:
        dtype = "object"
    if not dtype.startswith(("float", "int", "uint", "bool", "bfloat")):
        raise ValueError(
            f"{where}: {what} must hold numbers ({hint}); received dtype {value.dtype}."
        )
    return value


def _format(shape):
    dims = ["batch" if shape[0] is None else str(shape[0])] + list(map(str, shape[1:]))
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _same(shape, expected):
    return len(shape) == len(expected) and all(
        a is None or b is None or a == b for a, b in zip(shape, expected)
    )


def check_keys(x, expected, where, name="x"):
    """Refuses `x` unless it is a dict with exactly the keys `expected`."""
    keys = list(map(str, x)) if isinstance(x, dict) else []
    if not isinstance(x, dict) or sorted(keys) != sorted(expected):
        raise ValueError(
            f"{where} expects `{name}` as a dict for exactly the inputs "
            f"{list(expected)}; received {sorted(keys) if keys else type(x).__name__}"
            f" (missing: {[k for k in expected if k not in keys]}, unexpected: "
            f"{sorted(set(keys) - set(expected))}). Pass NaN for a missing "
            "modality, do not leave its key out."
        )


def _input_checks(model):
    """{input name: check(shape)}: the tokenizers' own checks for a task
    model, else the `Input` shapes of a functional model with dict inputs."""
    if hasattr(model, "backbone"):
        return {n: t._check_input_shape for n, t in model.tokenizers.items()}
    try:
        inputs = model.input
    except (AttributeError, ValueError):
        return None

    def expects(expected):
        def check(shape):
            if not _same(shape, (None,) + expected[1:]):
                raise ValueError(
                    f"expected shape {_format(expected)}; received shape {shape}."
                )

        return check

    if isinstance(inputs, dict):
        return {name: expects(tuple(t.shape)) for name, t in inputs.items()}


def _sparse_loss(model):
    loss = getattr(model, "loss", None)
    return isinstance(loss, keras.losses.SparseCategoricalCrossentropy) or (
        loss == "sparse_categorical_crossentropy"
    )


def _num_outputs(model):
    if hasattr(model, "num_outputs"):
        return model.num_outputs
    outputs = getattr(model, "outputs", None) if model.built else None
    if outputs and len(outputs) == 1 and len(outputs[0].shape) == 2:
        return outputs[0].shape[1]


def check_target_shape(model, shape, outputs, name="targets"):
    """Refuses targets that the outputs `(batch, k)` do not take: class ids
    `(batch,)` / `(batch, 1)` for a sparse loss or a multiclass task,
    `(batch, k)` unless the loss is sparse, `(batch,)` for one output."""
    if not shape or outputs is None or len(outputs) != 2:
        return
    batch, k = outputs
    sparse = _sparse_loss(model)
    ids = sparse or getattr(model, "task", None) == "multiclass"
    allowed = [] if sparse else [(batch, k)]
    allowed += [(batch,), (batch, 1)] if ids else [(batch,)] if k == 1 else []
    if not any(_same(shape, a) for a in allowed):
        task = f"(task='{getattr(model, 'task', '')}', num_outputs={k})"
        who = f"The model '{model.name}'"
        who = type(model).__name__ + task if hasattr(model, "task") else who
        raise ValueError(
            f"{who} expects targets of shape "
            f"{' or '.join(_format((None,) + a[1:]) for a in allowed)}, "
            f"{'integer class ids' if ids else 'one 0/1 (or NaN) column per output'}"
            f"; received {name} of shape {shape} for outputs of shape {outputs}."
        )


def check_data(model, x, y=None, call="fit", name="x"):
    """Checks a model's inputs and targets before `fit`, `evaluate`, `predict`.

    The tasks run it at each call; run it on your own functional model with
    dict inputs, whose bad inputs Keras refuses differently on each backend.
    It checks the inputs' keys, dtypes and shapes, the number of examples,
    the target shape and values (infinite, class ids out of range); a
    `tf.data.Dataset` through its element spec; generators are not read.

    Args:
        model: a Keras model.
        x: dict `{input_name: array}`, or a `tf.data.Dataset`.
        y: optional targets.
        call: the entry point named in errors. Defaults to `"fit"`.
        name: the argument named in errors. Defaults to `"x"`.

    Returns:
        The number of examples, or None when not known without reading data.
    """
    where = f"{type(model).__name__}.{call}()"
    target_name = "targets `y`" if name == "x" else f"targets of `{name}`"
    spec = getattr(x, "element_spec", None) if y is None else None
    if spec is not None:
        x, y = (tuple(spec) + (None,))[:2] if isinstance(spec, tuple) else (spec, None)
        target_name = "targets of the dataset"
    checks = _input_checks(model)
    if checks is None or not (
        isinstance(x, (dict, np.ndarray, list, tuple)) or keras.ops.is_tensor(x)
    ):
        return None  # a generator or PyDataset: checked when the step is traced
    check_keys(x, list(checks), where, name)
    sizes = {}
    for key, check in checks.items():
        hint = "float, int or bool; NaN for missing values"
        value = _numbers(x[key], where, f"input '{key}' of `{name}`", hint)
        shape = static_shape(value)
        try:
            check(shape) if shape is not None else None
        except ValueError as error:
            raise ValueError(f"{where}: input '{key}' of `{name}`: {error}") from None
        if shape and shape[0] is not None:
            sizes[key] = shape[0]
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"{where} expects the same number of examples for every modality of "
            f"`{name}`; received {', '.join(f'{k!r}: {n}' for k, n in sizes.items())}."
        )
    n = next(iter(sizes.values()), None)
    if n == 0 and not call.startswith("predict"):
        raise ValueError(
            f"{where} received 0 examples in `{name}` (every input has shape "
            "(0, ...)); pass at least one example."
        )
    if y is None or isinstance(y, (dict, tuple, list)) and spec is not None:
        return n
    hint = "0/1, [0, 1] or NaN for multilabel, integer class ids for multiclass"
    y = _numbers(y, where, target_name, hint)
    shape, k = static_shape(y), _num_outputs(model)
    if n is not None and shape and shape[0] != n:
        raise ValueError(
            f"{where}: {target_name} has {shape[0]} rows for {n} examples of "
            "inputs; pass one target row per example."
        )
    if shape and k is not None:
        check_target_shape(model, shape, (shape[0], k), target_name)
    if isinstance(y, np.ndarray) and not _sparse_loss(model) and np.isinf(y).any():
        raise ValueError(
            f"{where}: {target_name} must be 0/1 (or in [0, 1]), or NaN where "
            "a target is unknown; received infinite values."
        )
    if not isinstance(y, np.ndarray) or not _sparse_loss(model):
        return n  # the values of backend tensors are not read here
    ignore = getattr(model.loss, "ignore_class", None)
    ids = y[y != ignore] if ignore is not None else y.reshape(-1)
    bad = ~np.isfinite(ids) | (ids != np.floor(ids)) | (ids < 0) | (ids >= (k or 0))
    if k is not None and bad.any():
        raise ValueError(
            f"{where}: {target_name} must be integer class ids in [0, {k}); "
            f"received {ids[bad][:5].tolist()}."
        )
    return n
