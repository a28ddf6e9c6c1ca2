"""Checks of a model's data before any compiled step, and the JAX state guard."""

import keras
import numpy as np


def static_shape(x):
    """`x`'s shape as a tuple (None for unknown dims), None if rank unknown."""
    shape = getattr(x, "shape", None)
    try:
        shape = np.shape(x) if shape is None else shape
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        return None


def _numeric(x):
    dtype = getattr(x, "dtype", None)
    try:
        dtype = keras.backend.standardize_dtype(
            np.asarray(x).dtype if dtype is None else dtype
        )
    except ValueError:
        return False
    return dtype == "bool" or dtype.startswith(("float", "int", "uint", "bfloat"))


def _format(shape):
    dims = ["batch" if shape[0] is None else str(shape[0])]
    dims += [str(d) for d in shape[1:]]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _input_checks(model):
    """{input name: check(shape)}: each tokenizer's own check for a task
    model, else the shapes of a functional model's `Input`s."""
    backbone = getattr(model, "backbone", None)
    if backbone is not None:
        return {n: t._check_input_shape for n, t in backbone.tokenizers.items()}
    try:
        inputs = model.input
    except (AttributeError, ValueError):
        return None
    if not isinstance(inputs, dict):
        return None

    def expects(expected):
        def check(shape):
            if len(shape) != len(expected) or any(
                a is not None and b is not None and a != b
                for a, b in zip(shape[1:], expected[1:])
            ):
                raise ValueError(
                    f"expected shape {_format(expected)}; received shape {shape}."
                )

        return check

    return {name: expects(tuple(t.shape)) for name, t in inputs.items()}


def sparse_loss(model):
    loss = getattr(model, "loss", None)
    return isinstance(loss, keras.losses.SparseCategoricalCrossentropy) or (
        loss == "sparse_categorical_crossentropy"
    )


def check_target_shape(model, shape, outputs, name="targets"):
    """Refuses targets of another shape than the outputs `(batch, k)` take.

    Class ids `(batch,)` / `(batch, 1)` are taken by a sparse loss or a
    multiclass task; `(batch, k)` unless the loss is sparse; `(batch,)`
    for one output.
    """
    if shape is None or outputs is None or len(outputs) != 2:
        return
    batch, k = outputs
    sparse = sparse_loss(model)
    ids = sparse or getattr(model, "task", None) == "multiclass"
    allowed = [] if sparse else [(batch, k)]
    allowed += [(batch,), (batch, 1)] if ids else [(batch,)] if k == 1 else []
    if not any(
        len(a) == len(shape)
        and all(x is None or y is None or x == y for x, y in zip(a, shape))
        for a in allowed
    ):
        what = "integer class ids" if ids else "one 0/1 (or NaN) column per output"
        raise ValueError(
            f"{_describe(model)} expects targets of shape "
            f"{' or '.join(_format((None,) + a[1:]) for a in allowed)}, {what}; "
            f"received {name} of shape {shape} for outputs of shape {outputs}."
        )


def _describe(model):
    if hasattr(model, "task"):
        return (
            f"{type(model).__name__}(task='{model.task}', "
            f"num_outputs={model.num_outputs})"
        )
    return f"The model '{model.name}'"


def _check_target_values(model, y, where, name):
    y = np.asarray(y)
    if not sparse_loss(model):
        if np.isinf(y).any():
            raise ValueError(
                f"{where}: {name} must be 0/1 (or in [0, 1]), or NaN where a "
                "target is unknown; received infinite values."
            )
        return
    num_outputs = _outputs(model, len(y))[1]
    ignore = getattr(model.loss, "ignore_class", None)
    ids = y[y != ignore] if ignore is not None else y.reshape(-1)
    bad = ~np.isfinite(ids) | (ids != np.floor(ids)) | (ids < 0)
    bad |= ids >= num_outputs
    if bad.any():
        raise ValueError(
            f"{where}: {name} must be integer class ids in [0, {num_outputs}); "
            f"received {ids[bad][:5].tolist()}."
        )


def _outputs(model, n):
    if hasattr(model, "num_outputs"):
        return (n, model.num_outputs)
    output = getattr(model, "outputs", None)
    if not model.built or not output or len(output) != 1:
        return None
    return (n,) + tuple(output[0].shape)[1:]


def check_data(model, x, y=None, call="fit", name="x"):
    """Checks a model's inputs and targets before `fit` / `evaluate` / `predict`.

    Works on `keras_miam.models` tasks and on a user's built functional model
    with a dict of named inputs. It checks the keys, the dtypes (numbers),
    the shapes (each tokenizer's check, or the model's `Input` shapes), the
    number of examples per modality and per target, the target width
    against the outputs (class ids for a sparse loss), infinite targets
    and class ids out of range. A `tf.data.Dataset` is checked through its
    element spec (no batch is read); other iterables are not read.

    Args:
        model: the Keras model.
        x: inputs, dict `{name: array}`, or a `tf.data.Dataset`.
        y: optional targets.
        call: the entry point (`"fit"`, `"predict"`, ...): only `predict`
            accepts 0 examples. Defaults to `"fit"`.
        name: the argument named in errors. Defaults to `"x"`.

    Returns:
        The number of examples, or None when not known without reading data.

    Raises:
        ValueError: saying what was received and what was expected.

    Example:

    ```python
    keras_miam.models.check_data(model, {"env": env, "image": images}, y)
    model.fit({"env": env, "image": images}, y)
    ```
    """
    where = f"{type(model).__name__}.{call}()"
    spec = getattr(x, "element_spec", None) if y is None else None
    if isinstance(spec, tuple):
        x, y = (tuple(spec) + (None,))[:2]
        name, target_name = name, "targets of the dataset"
    elif spec is not None:
        x = spec
    else:
        target_name = "targets `y`" if name == "x" else f"targets of `{name}`"
    checks = _input_checks(model)
    if checks is None:
        return None
    if not isinstance(x, dict) and not (
        isinstance(x, (np.ndarray, list, tuple)) or keras.ops.is_tensor(x)
    ):
        return None  # a generator or PyDataset: not read here
    if not isinstance(x, dict) or set(map(str, x)) != set(checks):
        received = sorted(map(str, x)) if isinstance(x, dict) else type(x).__name__
        missing = [k for k in checks if not isinstance(x, dict) or k not in x]
        raise ValueError(
            f"{where} expects `{name}` as a dict for exactly the inputs "
            f"{list(checks)}; received {received} (missing: {missing}). Pass "
            "NaN for a missing modality, do not leave its key out."
        )
    sizes = {}
    for key, check in checks.items():
        value = x[key]
        if not _numeric(value):
            dtype = getattr(value, "dtype", None) or np.asarray(value).dtype
            raise ValueError(
                f"{where}: input '{key}' of `{name}` must hold numbers (float, "
                f"int or bool; NaN for missing values); received dtype {dtype}."
            )
        shape = static_shape(value)
        if shape is None:
            continue
        try:
            check(shape)
        except ValueError as error:
            raise ValueError(f"{where}: input '{key}' of `{name}`: {error}") from None
        sizes[key] = shape[0] if shape else None
    known = {k: n for k, n in sizes.items() if n is not None}
    if spec is None and len(set(known.values())) > 1:
        raise ValueError(
            f"{where} expects the same number of examples for every modality "
            f"of `{name}`; received "
            + ", ".join(f"'{k}': {n}" for k, n in known.items())
            + "."
        )
    n = None if spec is not None else next(iter(known.values()), None)
    if n == 0 and not call.startswith("predict"):
        raise ValueError(
            f"{where} received 0 examples in `{name}` (every input has shape "
            "(0, ...)); pass at least one example."
        )
    if y is None or isinstance(y, (dict, tuple, list)) and spec is not None:
        return n
    if not _numeric(y):
        raise ValueError(
            f"{where}: {target_name} must hold numbers (0/1, values in [0, 1] "
            "or NaN for multilabel, integer class ids for multiclass); "
            f"received dtype {getattr(y, 'dtype', None) or np.asarray(y).dtype}."
        )
    shape = static_shape(y)
    if n is not None and shape and shape[0] != n:
        raise ValueError(
            f"{where}: {target_name} has {shape[0]} rows for {n} examples of "
            "inputs; pass one target row per example."
        )
    if shape:
        check_target_shape(model, shape, _outputs(model, shape[0]), target_name)
    if isinstance(y, (np.ndarray, list)):
        _check_target_values(model, y, where, target_name)
    return n
