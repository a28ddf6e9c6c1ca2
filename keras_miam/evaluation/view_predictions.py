"""The view engine: a model's outputs, or its metric, under several selections.

`iter_view_predictions()` scores V token selections in one compiled forward
pass per batch: each batch of b examples is tiled V times inside the
compiled function, `MIAMMasking.views()` makes block v of the tiled batch
see selection v, and the outputs are split back into V blocks; long runs of
batches go through `predict`, so scoring V selections costs about V plain
`predict` passes. `score_selections()` accumulates a metric
(`keras_miam.evaluation.metrics`) per selection over those blocks: it is
what `ModalityDynamics`, `evaluate_selections` / `evaluate_subsets` and the
Shapley functions measure with.

Everything works inside `fit` (from a callback) and outside it, on the
TensorFlow, JAX and PyTorch backends.
"""

import contextlib

import keras
import numpy as np

from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation import metrics as metrics_lib
from keras_miam.layers import masking_lookup
from keras_miam.layers.miam_masking import MIAMMasking


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
            batch = data_lib.take_examples(x, slice(start, stop))
        else:
            index = np.concatenate(
                [np.arange(start, stop), np.full(b - (stop - start), start)]
            )
            batch = data_lib.take_examples(x, index)
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
                    data_lib.take_examples(x, slice(start, stop)),
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


def iter_view_predictions(model, x, selections, masking, batch_size=256, progress=None):
    """Yields the model's predictions under several token selections.

    The V selections (at most `masking.max_views` at once; more are done in
    groups) are scored together: each forward pass holds about `batch_size`
    examples, b = max(1, batch_size // V) examples tiled V times (inside the
    compiled function), and `masking.views(selections)` makes block v see
    selection v. So the cost is that of one `predict` pass per selection.
    Long runs of batches go through `model.predict`-style calls
    (asynchronous dispatch, the model state gathered once per call), short
    ones through `predict_on_batch`; the last batch is padded to the full
    size, so one compiled function serves every pass. The layer's prior
    visibility is restored when the iteration ends or is closed (`close()`,
    or garbage collection of an abandoned generator).

    Args:
        model: the Keras model.
        x: the inputs, a numpy structure (see `collect_examples()`).
        selections: a list of V selections, each in a form
            `MIAMMasking.visible_pattern()` accepts (a modality name, a list
            of names, a dict of token selections, or None for everything).
        masking: the model's `MIAMMasking` layer (found by the caller, e.g.
            with `keras_miam.layers.get_masking_layer(model)`).
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
    layer = _the_layer(masking)
    selections = list(selections)
    if not selections:
        raise ValueError("`selections` must hold at least one selection.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received {batch_size}.")
    n = data_lib.num_examples(x)
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


def _the_layer(masking):
    """The `MIAMMasking` layer the engine is given (it does not search models)."""
    if not isinstance(masking, MIAMMasking):
        raise ValueError(
            "`masking` must be the model's MIAMMasking layer (e.g. "
            "`keras_miam.layers.get_masking_layer(model)`); received "
            f"{masking!r}."
        )
    return masking


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
        `data_lib.num_examples(x)` examples.

    Example:

    >>> preds = predict_views(model, x_val, ["env", "image", None])
    >>> env_only, image_only, everything = preds
    """
    layer = masking_lookup.get_masking_layer(model, masking)
    chunks = [[] for _ in selections]
    for views, _, _, blocks in iter_view_predictions(
        model, x, selections, masking=layer, batch_size=batch_size
    ):
        for view, block in zip(views, blocks):
            chunks[view].append(block)
    return [
        keras.tree.map_structure(lambda *parts: np.concatenate(parts, axis=0), *parts)
        for parts in chunks
    ]


def single_output(outputs):
    """The one output array of a model's outputs (a structure with one leaf)."""
    leaves = keras.tree.flatten(outputs)
    if len(leaves) != 1:
        raise ValueError(
            "Scores under selections are measured on single-output models; "
            f"this model returns {len(leaves)} outputs."
        )
    return np.asarray(leaves[0])


def score_selections(
    model,
    x,
    y,
    selections,
    masking,
    metric=None,
    batch_size=256,
    views_per_pass=None,
    progress=None,
    from_logits=None,
):
    """The model's metric under each of several selections, in tiled passes.

    The loop that `ModalityDynamics`, `evaluate_selections` and the Shapley
    functions measure with: selections go `views_per_pass` at a time
    through `iter_view_predictions()` (a short last group padded with its
    last selection, so every pass has one shape). A `keras.metrics.Metric`
    is streamed, one fresh copy per selection; a function is called once
    per selection on all its predictions.

    Args:
        model: the Keras model.
        x: the inputs, a numpy structure (see `data.collect_examples()`).
        y: the labels (numpy), or None for a function that ignores them.
        selections: a list of selections (`MIAMMasking.visible_pattern()`).
        masking: the model's `MIAMMasking` layer.
        metric: what `metrics.resolve_metric()` accepts, resolved on the
            first batch of outputs.
        batch_size: examples per forward pass, tiled copies included.
        views_per_pass: selections per forward pass. Defaults to the
            layer's `max_views`.
        progress: optional callable, called with 1 after each forward pass.
        from_logits: see `metrics.resolve_metric()`.

    Returns:
        `(values, name)`: a float64 array with one value per selection,
        and the metric's name.
    """
    layer = _the_layer(masking)
    selections = list(selections)
    size = min(int(views_per_pass or layer.max_views), len(selections))
    scorer, values = None, []
    for first in range(0, len(selections), size):
        group = selections[first : first + size]
        padded = group + group[-1:] * (size - len(group))
        passes = iter_view_predictions(
            model, x, padded, masking=layer, batch_size=batch_size, progress=progress
        )
        with contextlib.closing(passes):  # the prior visibility comes back
            for _, start, stop, blocks in passes:
                outputs = [single_output(block) for block in blocks[: len(group)]]
                if scorer is None:
                    scorer = metrics_lib.resolve_metric(
                        metric, y, outputs[0], model, from_logits
                    )
                    stream = isinstance(scorer, keras.metrics.Metric)
                if start == 0:
                    states = [
                        metrics_lib.fresh_metric(scorer) if stream else []
                        for _ in group
                    ]
                y_block = None if y is None else y[start:stop]
                for state, output in zip(states, outputs):
                    with _explained(scorer, y_block, output):
                        if stream:
                            state.update_state(y_block, output)
                        else:
                            state.append(output)
        for state in states:
            with _explained(scorer, y, None):
                value = state.result() if stream else scorer(y, np.concatenate(state))
                values.append(float(np.mean(keras.ops.convert_to_numpy(value))))
    return np.asarray(values, "float64"), metrics_lib.metric_name(scorer)


@contextlib.contextmanager
def _explained(scorer, y, output):
    """Turns a metric's failure into a `ValueError` naming the shapes."""
    try:
        yield
    except Exception as error:
        shapes = f"targets of shape {np.shape(y)}"
        if output is not None:
            shapes += f" and model outputs of shape {np.shape(output)}"
        raise ValueError(
            f"The metric '{metrics_lib.metric_name(scorer)}' does not fit the "
            f"model: it failed on {shapes} ({type(error).__name__}: {error})."
        ) from error
