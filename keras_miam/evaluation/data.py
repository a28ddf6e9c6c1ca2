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


def check_xy(data, what="Validation data"):
    """Checks the form of `(x, y)` data, or of a dataset, without reading it."""
    if data is None:
        raise ValueError(f"{what} is required; received None.")
    pair = isinstance(data, (tuple, list))
    if pair and len(data) == 3:
        raise ValueError(
            f"{what} has sample weights (x, y, sample_weight); they are not "
            "supported: pass (x, y)."
        )
    if (pair and len(data) != 2) or (
        not pair
        and (isinstance(data, (np.ndarray, dict)) or hasattr(data, "shape"))
        or not hasattr(data, "__iter__")
    ):
        raise ValueError(
            f"{what} must be a tuple (x, y) with labels, or a dataset of (x, y) "
            f"batches; received {type(data).__name__} (inputs without labels?)."
        )
    return data


def collect_examples(data, max_examples=None, seed=0, what="Validation data"):
    """Reads `(x, y)` data into numpy arrays (float64 as `floatx`), once.

    Args:
        data: `(x, y)` arrays or tensors, or an iterable of `(x, y)` batches
            (`tf.data.Dataset`, `PyDataset`, `DataLoader`, a generator),
            read to the end, or to `max_examples` without a length.
        max_examples: optional cap: a larger set is subsampled in order,
            without replacement, with `seed` (the same subset every epoch).
        seed: the subsampling seed.
        what: the name used in error messages.
    """
    check_xy(data, what)
    if isinstance(data, (tuple, list)):
        batches = [data]
    else:
        try:
            len(data)
        except TypeError:
            if max_examples is None:
                raise ValueError(
                    f"{what} is an iterable without a length (it may be "
                    "infinite); set `max_validation_samples` to bound how much "
                    "of it is read."
                ) from None
        batches, count = [], 0
        for element in data:
            batches.append(check_xy(element, what))
            count += num_examples(element[0])
            if max_examples is not None and count >= int(max_examples):
                break
    if not batches or any(y is None for _, y in batches):
        raise ValueError(f"{what} is empty, or has no labels (y is None).")
    x, y = keras.tree.map_structure(
        lambda *leaves: np.concatenate([_to_array(leaf) for leaf in leaves]),
        *[tuple(batch) for batch in batches],
    )
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
    """`(x, y)` numpy structures (`x` alone too, y None, without labels)."""
    if not needs_labels:
        if isinstance(data, (tuple, list)) and len(data) == 2 and data[1] is None:
            data = data[0]
        if isinstance(data, (np.ndarray, dict)) or hasattr(data, "shape"):
            x = keras.tree.map_structure(np.asarray, data)
            num_examples(x)
            return x, None
    return collect_examples(data, what="`data`")


def check_model_inputs(model, x, what="`validation_data`"):
    """Compares the keys of inputs `x` with a functional model's dict inputs."""
    try:
        spec = model.input
    except (AttributeError, ValueError):
        return  # subclassed model: its first call checks the inputs
    if isinstance(spec, (list, tuple)) and isinstance(x, dict):
        spec = {getattr(t, "name", None): t for t in spec}
    if isinstance(spec, dict) and not isinstance(x, dict):
        raise ValueError(
            f"The model takes a dict of inputs with the keys {sorted(spec)}; "
            f"{what} x is a {type(x).__name__}."
        )
    if isinstance(spec, dict) and set(spec) != set(x):
        raise ValueError(
            f"The inputs of {what} do not match the model's inputs "
            f"{sorted(spec)}: missing {sorted(set(spec) - set(x))}, unexpected "
            f"{sorted(set(x) - set(spec))}."
        )


def data_shapes(data, what="`data`"):
    """The shapes `(x_shapes, y_shape)` of `(x, y)` data, from the arrays, an
    `element_spec` or the first batch (a one-shot iterator is refused)."""
    check_xy(data, what)
    spec = data if isinstance(data, (tuple, list)) else None
    spec = spec or getattr(data, "element_spec", None)
    if spec is None and iter(data) is data:
        raise ValueError(
            f"{what} is a one-shot iterator ({type(data).__name__}); pass "
            "`(x, y)` arrays, a `tf.data.Dataset`, a `keras.utils.PyDataset` "
            "or another re-iterable dataset of batches."
        )
    shapes = keras.tree.map_structure(
        lambda leaf: tuple(None if d is None else int(d) for d in leaf.shape),
        check_xy(spec or next(iter(data)), what),
    )
    return tuple(shapes)
