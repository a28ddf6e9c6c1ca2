"""`(x, y)` data, or datasets of batches, read into numpy arrays once."""

import keras
import numpy as np


def _to_array(x):
    try:
        array = np.asarray(keras.ops.convert_to_numpy(x))
    except Exception:  # e.g. a tf.Tensor under another backend
        array = np.asarray(x)
    return array.astype(keras.config.floatx()) if array.dtype == "float64" else array


def num_examples(x):
    """The number of examples of a (nested) structure of arrays."""
    sizes = {int(np.shape(leaf)[0]) for leaf in keras.tree.flatten(x)}
    if len(sizes) != 1:
        raise ValueError(
            "Every input array must have the same number of examples (first "
            f"dimension); received sizes {sorted(sizes)}."
        )
    return sizes.pop()


def take_examples(x, index):
    """Selects examples (a slice or an index array) in every leaf of `x`."""
    return keras.tree.map_structure(lambda leaf: leaf[index], x)


def _split_xy(element, what):
    if isinstance(element, (tuple, list)) and len(element) == 2:
        return element
    if isinstance(element, (tuple, list)) and len(element) == 3:
        raise ValueError(
            f"{what} has sample weights (x, y, sample_weight); they are not "
            "supported: pass (x, y)."
        )
    raise ValueError(
        f"{what} must be a tuple (x, y) with labels; received a "
        f"{type(element).__name__} (inputs without labels?)."
    )


def check_xy(data, what="Validation data"):
    """Checks the form of `(x, y)` data without reading it."""
    if data is None:
        raise ValueError(f"{what} is required; received None.")
    if isinstance(data, (tuple, list)):
        _split_xy(data, what)
    elif isinstance(data, (np.ndarray, dict)) or hasattr(data, "shape"):
        raise ValueError(
            f"{what} must be a tuple (x, y) with labels, or a dataset of (x, y) "
            f"batches; received {type(data).__name__} (inputs without labels?)."
        )


def _batches(data, what):
    """The `(x, y)` batches of a dataset, and whether it has a length."""
    if not hasattr(data, "__iter__") and not hasattr(data, "__getitem__"):
        raise ValueError(
            f"{what} must be a tuple (x, y) or an iterable of (x, y) batches; "
            f"received {type(data).__name__}."
        )
    try:
        len(data)
    except TypeError:
        return iter(data), False
    if hasattr(data, "__getitem__") and not hasattr(data, "__iter__"):
        return (data[i] for i in range(len(data))), True  # keras.utils.PyDataset
    return iter(data), True


def collect_examples(data, max_examples=None, seed=0, what="Validation data"):
    """Reads `(x, y)` data into numpy arrays, once.

    Args:
        data: `(x, y)` arrays or tensors, or an iterable of `(x, y)` batches
            (`tf.data.Dataset`, `PyDataset`, `DataLoader`, a generator),
            read to the end, or to `max_examples` without a length.
        max_examples: optional cap: a larger set is subsampled in order,
            without replacement, with `seed` (the same subset every epoch).
        seed: the subsampling seed.
        what: the name used in error messages.

    Returns:
        `(x, y)` numpy structures (float64 leaves become `floatx`).
    """
    check_xy(data, what)
    if max_examples is not None and int(max_examples) < 1:
        raise ValueError(
            f"`max_examples` must be None or >= 1; received {max_examples}."
        )
    if isinstance(data, (tuple, list)):
        x, y = _split_xy(data, what)
        x, y = (
            keras.tree.map_structure(_to_array, x),
            None if y is None else _to_array(y),
        )
    else:
        batches, has_length = _batches(data, what)
        if not has_length and max_examples is None:
            raise ValueError(
                f"{what} is an iterable without a length (it may be infinite); "
                "set `max_validation_samples` to bound how much of it is read."
            )
        xs, ys, count = [], [], 0
        for element in batches:
            bx, by = _split_xy(tuple(element), what)
            xs.append(keras.tree.map_structure(_to_array, bx))
            ys.append(_to_array(by))
            count += num_examples(xs[-1])
            if not has_length and count >= int(max_examples):
                break
        if not xs:
            raise ValueError(f"{what} is empty.")
        x = keras.tree.map_structure(lambda *leaves: np.concatenate(leaves), *xs)
        y = np.concatenate(ys)
    if y is None:
        raise ValueError(f"{what} has no labels (y is None).")
    n = num_examples(x)
    if n == 0:
        raise ValueError(f"{what} is empty.")
    if len(y) != n:
        raise ValueError(f"{what}: x has {n} examples but y has {len(y)}.")
    if max_examples is not None and n > int(max_examples):
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(n, int(max_examples), replace=False))
        x, y = take_examples(x, index), y[index]
    return x, y


def read_data(data, needs_labels=True):
    """`(x, y)` numpy structures; without `needs_labels`, `x` alone is read
    too (y is then None)."""
    if not needs_labels:
        if isinstance(data, (tuple, list)) and len(data) == 2 and data[1] is None:
            data = data[0]
        if isinstance(data, (np.ndarray, dict)) or hasattr(data, "shape"):
            x = keras.tree.map_structure(np.asarray, data)
            num_examples(x)
            return x, None
    return collect_examples(data, what="`data`")


def check_model_inputs(model, x, what="`validation_data`"):
    """Compares inputs `x` with a functional model's inputs (keys, count)."""
    try:
        spec = model.input
    except (AttributeError, ValueError):
        return  # subclassed model: its first call checks the inputs
    if isinstance(spec, (list, tuple)) and isinstance(x, dict):
        spec = {getattr(t, "name", None): t for t in spec}
    if isinstance(spec, dict):
        if not isinstance(x, dict):
            raise ValueError(
                f"The model takes a dict of inputs with the keys {sorted(spec)}; "
                f"{what} x is a {type(x).__name__}."
            )
        missing, extra = sorted(set(spec) - set(x)), sorted(set(x) - set(spec))
        if missing or extra:
            raise ValueError(
                f"The inputs of {what} do not match the model's inputs "
                f"{sorted(spec)}: missing {missing}, unexpected {extra}."
            )
    elif isinstance(spec, (list, tuple)) and len(spec) > 1:
        count = len(x) if isinstance(x, (list, tuple)) else 1
        if count != len(spec):
            raise ValueError(
                f"The model takes {len(spec)} inputs; {what} x has {count}."
            )


def _shape_of(leaf):
    shape = getattr(leaf, "shape", None)
    shape = np.shape(leaf) if shape is None else shape
    return tuple(None if d is None else int(d) for d in shape)


def data_shapes(data, what="`data`"):
    """The shapes `(x_shapes, y_shape)` of `(x, y)` data, from the arrays, an
    `element_spec` or the first batch (a one-shot iterator is refused)."""
    check_xy(data, what)
    if isinstance(data, (tuple, list)):
        element = data
    elif hasattr(data, "element_spec"):
        element = data.element_spec
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        element = data[0]
    elif hasattr(data, "__iter__") and iter(data) is not data:
        element = next(iter(data))
    else:
        raise ValueError(
            f"{what} is a one-shot iterator ({type(data).__name__}); pass "
            "`(x, y)` arrays, a `tf.data.Dataset`, a `keras.utils.PyDataset` "
            "or another re-iterable dataset of batches."
        )
    x, y = _split_xy(tuple(element), what)
    return keras.tree.map_structure(_shape_of, x), _shape_of(y)
