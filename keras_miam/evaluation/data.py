"""Reading `(x, y)` data into numpy arrays, once, for measuring a model.

`collect_examples()` reads arrays or a dataset of batches (`tf.data`,
`keras.utils.PyDataset`, a torch `DataLoader`, a generator); `read_data()`
also takes inputs without labels; `num_examples()` and `take_examples()`
count and slice nested structures of arrays.
"""

import keras
import numpy as np


def _to_array(x):
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        array = x
    else:
        try:
            array = np.asarray(keras.ops.convert_to_numpy(x))
        except Exception:  # e.g. a tf.Tensor under another backend
            array = np.asarray(x)
    if array.dtype == np.float64:
        array = array.astype(keras.config.floatx())
    return array


def num_examples(x):
    """The number of examples of a (nested) structure of arrays.

    Raises:
        ValueError: if the leaves disagree on their first dimension.
    """
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
        return element[0], element[1]
    if isinstance(element, (tuple, list)) and len(element) == 3:
        raise ValueError(
            f"{what} has sample weights (x, y, sample_weight); they are not "
            "supported: pass (x, y)."
        )
    raise ValueError(
        f"{what} must be a tuple (x, y) with labels; received "
        + (
            f"a {type(element).__name__} of length {len(element)}."
            if isinstance(element, (tuple, list))
            else f"{type(element).__name__} (inputs without labels?)."
        )
    )


def check_xy(data, what="Validation data"):
    """Checks the form of `(x, y)` data without reading it.

    Raises:
        ValueError: for None, inputs without labels (a bare array or dict, or
            a 1-tuple), or sample weights.
    """
    if data is None:
        raise ValueError(f"{what} is required; received None.")
    if isinstance(data, (tuple, list)):
        _split_xy(data, what)
        return
    if isinstance(data, (np.ndarray, dict)) or hasattr(data, "shape"):
        raise ValueError(
            f"{what} must be a tuple (x, y) with labels, or a dataset of "
            f"(x, y) batches; received {type(data).__name__} (inputs "
            "without labels?)."
        )


def collect_examples(data, max_examples=None, seed=0, what="Validation data"):
    """Reads `(x, y)` data into numpy arrays, once.

    Args:
        data: a tuple `(x, y)` of arrays / tensors (x may be a dict or list
            of arrays), or an iterable of `(x, y)` batches (a
            `tf.data.Dataset`, a `keras.utils.PyDataset`, a torch
            `DataLoader`, a generator), read to the end, or until
            `max_examples` examples when it has no length.
        max_examples: optional cap. A larger set is subsampled without
            replacement with `seed` (a fixed subset, so scores measured at
            different epochs are comparable); the order is kept.
        seed: the subsampling seed.
        what: the name used in error messages.

    Returns:
        `(x, y)` numpy structures (float64 leaves become `floatx`).

    Raises:
        ValueError: for missing labels, sample weights, empty data, or
            leaves with different numbers of examples.
    """
    check_xy(data, what)
    if max_examples is not None and int(max_examples) < 1:
        raise ValueError(
            f"`max_examples` must be None or >= 1; received {max_examples}."
        )
    if isinstance(data, (tuple, list)):
        x, y = _split_xy(data, what)
        x = keras.tree.map_structure(_to_array, x)
        y = _to_array(y)
    else:
        if not hasattr(data, "__iter__") and not hasattr(data, "__getitem__"):
            raise ValueError(
                f"{what} must be a tuple (x, y) or an iterable of (x, y) "
                f"batches; received {type(data).__name__}."
            )
        has_length = True
        try:
            len(data)
        except TypeError:
            has_length = False
        if not has_length and max_examples is None:
            raise ValueError(
                f"{what} is an iterable without a length (it may be "
                "infinite); set `max_validation_samples` to bound how much "
                "of it is read."
            )
        if (
            hasattr(data, "__len__")
            and hasattr(data, "__getitem__")
            and not (hasattr(data, "__iter__"))
        ):
            batches = (data[i] for i in range(len(data)))
        else:
            batches = iter(data)
        xs, ys, count = [], [], 0
        for element in batches:
            bx, by = _split_xy(tuple(element), what)
            bx = keras.tree.map_structure(_to_array, bx)
            by = _to_array(by)
            xs.append(bx)
            ys.append(by)
            count += num_examples(bx)
            if not has_length and count >= int(max_examples):
                break
        if not xs:
            raise ValueError(f"{what} is empty.")
        x = keras.tree.map_structure(
            lambda *leaves: np.concatenate(leaves, axis=0), *xs
        )
        y = np.concatenate(ys, axis=0)
    if y is None:
        raise ValueError(f"{what} has no labels (y is None).")
    n = num_examples(x)
    if n == 0:
        raise ValueError(f"{what} is empty.")
    if int(np.shape(y)[0]) != n:
        raise ValueError(f"{what}: x has {n} examples but y has {np.shape(y)[0]}.")
    if max_examples is not None and n > int(max_examples):
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(n, int(max_examples), replace=False))
        x, y = take_examples(x, index), y[index]
    return x, y


def read_data(data, needs_labels=True):
    """`(x, y)` numpy structures from `(x, y)` data (or `x` alone).

    Args:
        data: `(x, y)` arrays (x may be a dict or list of arrays), or a
            dataset of `(x, y)` batches (`keras.utils.PyDataset`,
            `tf.data.Dataset`, ...), read into memory once; without
            `needs_labels`, also `x` alone or `(x, None)` as arrays.
        needs_labels: whether targets are required.

    Returns:
        `(x, y)`, y None when absent.
    """
    if not needs_labels:
        if isinstance(data, (tuple, list)) and len(data) == 2 and data[1] is None:
            data = data[0]
        if isinstance(data, (np.ndarray, dict)) or hasattr(data, "shape"):
            x = keras.tree.map_structure(np.asarray, data)
            num_examples(x)  # Checks the leaves agree.
            return x, None
    return collect_examples(data, what="`data`")


def check_model_inputs(model, x, what="`validation_data`"):
    """Compares the structure of inputs `x` with a functional model's inputs.

    Raises:
        ValueError: for a dict with other keys, or another number of inputs.
        Subclassed models are not checked (their first call is).
    """
    try:
        spec = model.input
    except (AttributeError, ValueError):
        return  # subclassed model: the probe forward pass checks the inputs
    if isinstance(spec, dict):
        if not isinstance(x, dict):
            raise ValueError(
                "The model takes a dict of inputs with the keys "
                f"{sorted(spec)}; {what} x is a "
                f"{type(x).__name__}."
            )
        missing = sorted(set(spec) - set(x))
        extra = sorted(set(x) - set(spec))
        if missing or extra:
            raise ValueError(
                f"The inputs of {what} do not match the model's "
                f"inputs {sorted(spec)}: missing {missing}, unexpected {extra}."
            )
    elif isinstance(spec, (list, tuple)) and len(spec) > 1:
        if isinstance(x, dict):
            names = [getattr(t, "name", None) for t in spec]
            if set(x) != set(names):
                raise ValueError(
                    f"The model takes the inputs {names}; {what} x "
                    f"has the keys {sorted(x)}."
                )
        elif not isinstance(x, (list, tuple)) or len(x) != len(spec):
            raise ValueError(
                f"The model takes {len(spec)} inputs; {what} x is "
                + (
                    f"a {type(x).__name__} of {len(x)}."
                    if isinstance(x, (list, tuple))
                    else f"a single {type(x).__name__}."
                )
            )


def _shape_of(leaf):
    shape = getattr(leaf, "shape", None)
    if shape is None:
        shape = np.shape(leaf)
    return tuple(None if d is None else int(d) for d in shape)


def data_shapes(data, what="`data`"):
    """The shapes of `(x, y)` data, without reading it all.

    Args:
        data: `(x, y)` arrays; a `tf.data.Dataset` of `(x, y)` batches (its
            `element_spec` is read: the batch dimension may be None); a
            `keras.utils.PyDataset` or any sequence of batches (its first
            batch is read); or a re-iterable of batches (a torch
            `DataLoader`: its first batch is read).
        what: the name used in error messages.

    Returns:
        `(x_shapes, y_shape)`: `x_shapes` the structure of x (e.g. a dict
        `{modality: shape}`) with shape tuples as leaves, the first
        dimension being the number of examples (arrays) or the batch size
        (None when unknown); `y_shape` a tuple.

    Raises:
        ValueError: for data without labels, or a one-shot iterator (a
            generator would lose its first batch).
    """
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
