"""Helpers shared by the tools that evaluate a model under modality selections.

`ModalityDynamics` (unimodal validation scores during `fit`) and the
evaluation / explanation tools (scores of modality subsets) all do the same
three things, implemented once here:

- find the model's `MIAMMasking` layer (`get_masking_layer()`);
- turn validation data into cached numpy arrays (`collect_examples()`,
  `num_examples()`, `take_examples()`);
- score V token selections in one compiled forward pass per batch
  (`iter_view_predictions()`, `predict_views()`): each batch of b examples is
  tiled V times inside the compiled function, `MIAMMasking.views()` makes
  block v of the tiled batch see selection v, and the outputs are split back
  into V blocks; long runs of batches go through `predict`, so scoring V
  selections costs about V plain `predict` passes.

Everything works inside `fit` (from a callback) and outside it, on the
TensorFlow, JAX and PyTorch backends.
"""

import keras
import numpy as np

from keras_miam.layers.miam_masking import MIAMMasking


# ----------------------------------------------------------------------------
# Finding the masking layer.
# ----------------------------------------------------------------------------
def _sublayers(layer):
    # `Model.layers` is public; plain layers keep their tracked sublayers
    # in `_layers` (Keras 3), which also covers layers nested in layers.
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    return list(getattr(layer, "_layers", ()))


def find_masking_layers(model):
    """All `MIAMMasking` layers of a model, nested models and layers included.

    Args:
        model: a Keras model (or layer).

    Returns:
        A list of distinct `MIAMMasking` instances, in depth-first order.
    """
    if isinstance(model, MIAMMasking):
        return [model]
    found, seen = [], set()
    stack = list(reversed(_sublayers(model)))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, MIAMMasking):
            found.append(layer)
        stack.extend(reversed(_sublayers(layer)))
    return found


def get_masking_layer(model, masking=None):
    """The `MIAMMasking` layer of a model.

    Args:
        model: a Keras model.
        masking: None (the model must hold exactly one `MIAMMasking`), a
            layer name, or a `MIAMMasking` instance (which must be part of
            the model).

    Returns:
        The `MIAMMasking` instance.

    Raises:
        ValueError: if no layer matches, or several do and none is named.
    """
    layers = find_masking_layers(model)
    model_name = getattr(model, "name", type(model).__name__)
    if isinstance(masking, MIAMMasking):
        if not any(layer is masking for layer in layers):
            raise ValueError(
                f"The MIAMMasking layer '{masking.name}' passed as `masking` "
                f"is not a layer of the model '{model_name}'."
            )
        return masking
    if masking is not None and not isinstance(masking, str):
        raise ValueError(
            "`masking` must be None, a layer name or a MIAMMasking "
            f"instance; received {masking!r}."
        )
    if not layers:
        raise ValueError(
            f"The model '{model_name}' has no MIAMMasking layer (searched "
            "recursively, nested models included). Modality scores are "
            "measured by hiding modalities with MIAMMasking; add one to the "
            "model."
        )
    if masking is not None:
        named = [layer for layer in layers if layer.name == masking]
        if not named:
            raise ValueError(
                f"No MIAMMasking layer named '{masking}' in the model "
                f"'{model_name}'; its MIAMMasking layers are "
                f"{[layer.name for layer in layers]}."
            )
        return named[0]
    if len(layers) > 1:
        raise ValueError(
            f"The model '{model_name}' has {len(layers)} MIAMMasking layers "
            f"({[layer.name for layer in layers]}); pass the one to use as "
            "`masking` (a layer name or instance)."
        )
    return layers[0]


# ----------------------------------------------------------------------------
# Data.
# ----------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------
# Predictions under several selections at once.
# ----------------------------------------------------------------------------
def tile_examples(x, num_views):
    """Repeats a batch `num_views` times along the batch axis (blocks)."""
    if num_views == 1:
        return x
    return keras.tree.map_structure(
        lambda leaf: np.concatenate([leaf] * num_views, axis=0), x
    )


def sync_model_state(model):
    """Puts the JAX trainer's in-flight state back into the model variables.

    During `fit` the JAX trainer keeps the model state outside the variables;
    reading or assigning a variable before this sync reads stale values, and
    an assignment is silently overwritten. Inside a callback, accessing
    `self.model` does the same. No-op on other backends and outside `fit`.
    """
    sync = getattr(model, "jax_state_sync", None)
    if keras.backend.backend() == "jax" and callable(sync):
        sync()


# A `predict` call has a fixed cost (TensorFlow builds a tf.data pipeline for
# it: about 0.1 s on a CPU), so it is used for runs of at least this many
# batches; shorter runs go through `predict_on_batch`.
MIN_PREDICT_BATCHES = 16
# Outputs held at once by one `predict` call, in bytes (its slab of examples
# is sized from the first batch's outputs).
MAX_PREDICT_BYTES = 1 << 28
_CACHE_ATTRIBUTE = "_keras_miam_views_models"


class _TiledViews(keras.Model):
    """Scores a batch under `num_views` selections in one compiled call.

    The batch is tiled `num_views` times inside the compiled function (so
    the host sends b examples, not V * b), the model sees V contiguous
    blocks (which `MIAMMasking.views()` shows different tokens), and the
    outputs come back as `(b, V, ...)`: `predict` can then run the whole
    data as usual, asynchronously and with the model state gathered once.
    It has no weights of its own: they are the model's.
    """

    def __init__(self, model, num_views, **kwargs):
        # autocast=False: the inputs reach the model untouched.
        super().__init__(autocast=False, **kwargs)
        self.inner_model = model
        self.num_views = int(num_views)

    def call(self, inputs):
        v = self.num_views
        tiled = keras.tree.map_structure(
            lambda leaf: keras.ops.concatenate([leaf] * v, axis=0), inputs
        )
        outputs = self.inner_model(tiled, training=False)

        def split(output):
            shape = (v, -1) + tuple(keras.ops.shape(output)[1:])
            return keras.ops.moveaxis(keras.ops.reshape(output, shape), 0, 1)

        return keras.tree.map_structure(split, outputs)


class _ViewsModels:
    """The `_TiledViews` of a model, by number of views (a plain object, so
    Keras neither tracks nor saves it)."""

    def __init__(self):
        self.models = {}


def _views_model(model, num_views):
    """The cached `_TiledViews(model, num_views)`, compiled once per shape."""
    cache = getattr(model, _CACHE_ATTRIBUTE, None)
    if not isinstance(cache, _ViewsModels):
        cache = _ViewsModels()
        setattr(model, _CACHE_ATTRIBUTE, cache)
    jit_compile = getattr(model, "jit_compile", "auto")
    run_eagerly = bool(getattr(model, "run_eagerly", False))
    key = (int(num_views), jit_compile, run_eagerly)
    views_model = cache.models.get(key)
    if views_model is None:
        views_model = _TiledViews(
            model, num_views, name=f"{model.name}_views_{num_views}"
        )
        views_model.jit_compile = jit_compile
        views_model.run_eagerly = run_eagerly
        cache.models[key] = views_model
    return views_model


class _PassCounter(keras.callbacks.Callback):
    """Reports each finished batch of a `predict` call to `progress`."""

    async_safe = True  # Like Keras' progress bar: no sync per batch.

    def __init__(self, progress):
        super().__init__()
        self.progress = progress

    def on_predict_batch_end(self, batch, logs=None):
        self.progress(1)


def _predict_slabs(views_model, x, n, b, progress):
    """Yields `(start, stop, outputs)` for all n examples, b per pass.

    The first batch goes through `predict_on_batch` (it checks the inputs,
    compiles, and sizes the slabs); the remaining full batches through
    `predict`, a slab at a time, when there are at least
    `MIN_PREDICT_BATCHES` of them; the last, partial batch is padded to b
    examples (one compiled shape for every pass).
    """

    def on_batch(start, stop):
        if stop - start == b:
            batch = take_examples(x, slice(start, stop))
        else:
            index = np.concatenate(
                [np.arange(start, stop), np.full(b - (stop - start), start)]
            )
            batch = take_examples(x, index)
        outputs = views_model.predict_on_batch(batch)
        if progress is not None:
            progress(1)
        return keras.tree.map_structure(
            lambda out: np.asarray(out)[: stop - start], outputs
        )

    full = n // b * b
    outputs = on_batch(0, b)
    yield 0, b, outputs
    if (full - b) // b >= MIN_PREDICT_BATCHES:
        batch_bytes = sum(out.nbytes for out in keras.tree.flatten(outputs))
        slab = max(MIN_PREDICT_BATCHES, MAX_PREDICT_BYTES // batch_bytes) * b
        callbacks = [_PassCounter(progress)] if progress is not None else []
        for start in range(b, full, slab):
            stop = min(start + slab, full)
            try:
                outputs = views_model.predict(
                    take_examples(x, slice(start, stop)),
                    batch_size=b,
                    verbose=0,
                    callbacks=callbacks,
                )
            finally:
                # JAX: `predict` detaches the variables while it runs; after
                # an interruption, put back the last state it computed.
                sync_model_state(views_model)
            yield start, stop, outputs
    else:
        for start in range(b, full, b):
            yield start, start + b, on_batch(start, start + b)
    if full < n:
        yield full, n, on_batch(full, n)


def iter_view_predictions(
    model, x, selections, masking=None, batch_size=256, progress=None
):
    """Yields the model's predictions under several token selections.

    The V selections (at most `masking.max_views` at once; more are done in
    groups) are scored together: each forward pass holds about `batch_size`
    examples, b = max(1, batch_size // V) examples tiled V times (inside the
    compiled function), and `masking.views(selections)` makes block v see
    selection v. So the cost is that of one `predict` pass per selection.
    Long runs of batches go through `model.predict`-style calls
    (asynchronous dispatch, the model state gathered once per call), short
    ones through `predict_on_batch`; the last batch is padded to the full
    size, so one compiled function serves every pass. The views are reset
    when the iteration ends or is closed (`close()`, or garbage collection
    of an abandoned generator).

    Args:
        model: the Keras model.
        x: the inputs, a numpy structure (see `collect_examples()`).
        selections: a list of V selections, each in a form
            `MIAMMasking.visible_pattern()` accepts (a modality name, a list
            of names, a dict of token selections, or None for everything).
        masking: the `MIAMMasking` layer, its name, or None (see
            `get_masking_layer()`).
        batch_size: examples per forward pass, tiled copies included.
        progress: optional callable, called with 1 after each forward pass
            (e.g. `keras.utils.Progbar.add`).

    Yields:
        `(views, start, stop, outputs)`: `views` a `range` of selection
        indices, `[start, stop)` the examples (one batch, or a slab of
        batches), and `outputs` a list with, for each view in `views`, the
        predictions (a numpy structure like the model's outputs) for those
        examples.
    """
    layer = (
        masking
        if isinstance(masking, MIAMMasking)
        else (get_masking_layer(model, masking))
    )
    selections = list(selections)
    if not selections:
        raise ValueError("`selections` must hold at least one selection.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received {batch_size}.")
    n = num_examples(x)
    sync_model_state(model)
    for first in range(0, len(selections), layer.max_views):
        group = selections[first : first + layer.max_views]
        views = range(first, first + len(group))
        v = len(group)
        b = min(views_batch_size(batch_size, v), n)
        views_model = _views_model(model, v)
        with layer.views(group):
            for start, stop, outputs in _predict_slabs(views_model, x, n, b, progress):
                blocks = [
                    keras.tree.map_structure(lambda out, i=i: out[:, i], outputs)
                    for i in range(v)
                ]
                yield views, start, stop, blocks


def views_batch_size(batch_size, num_views):
    """Examples per view in a forward pass of about `batch_size` examples."""
    return max(1, int(batch_size) // int(num_views))


def predict_views(model, x, selections, masking=None, batch_size=256):
    """The model's predictions on `x` under each of several selections.

    See `iter_view_predictions()`: one compiled forward pass per tiled batch
    scores every selection at once.

    Args:
        model: the Keras model.
        x: the inputs, a numpy structure.
        selections: a list of V selections (see
            `MIAMMasking.visible_pattern()`).
        masking: the `MIAMMasking` layer, its name, or None.
        batch_size: examples per forward pass, tiled copies included.

    Returns:
        A list of V numpy structures like the model's outputs, each with all
        `num_examples(x)` examples.

    Example:

    >>> preds = predict_views(model, x_val, ["env", "image", None])
    >>> env_only, image_only, everything = preds
    """
    chunks = [[] for _ in selections]
    for views, _, _, blocks in iter_view_predictions(
        model, x, selections, masking=masking, batch_size=batch_size
    ):
        for view, block in zip(views, blocks):
            chunks[view].append(block)
    return [
        keras.tree.map_structure(lambda *parts: np.concatenate(parts, axis=0), *parts)
        for parts in chunks
    ]
