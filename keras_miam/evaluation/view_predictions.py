"""The view engine: each batch tiled V times in one compiled function, where
`MIAMMasking.views()` shows block v selection v (about V `predict` passes)."""

import contextlib
import types

import keras
import numpy as np

from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation import metrics as metrics_lib
from keras_miam.layers import masking_lookup
from keras_miam.layers.miam_masking import MIAMMasking


class _TiledViews(keras.Model):
    """The model on a batch tiled `num_views` times: outputs `(b, V, ...)`."""

    def __init__(self, model, num_views, **kwargs):
        super().__init__(autocast=False, **kwargs)  # inputs reach the model as is
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


def _views_model(model, num_views):
    """The cached `_TiledViews(model, num_views)` (in a namespace, not a dict:
    Keras neither tracks nor saves it)."""
    cache = model.__dict__.setdefault(
        "_keras_miam_views", types.SimpleNamespace(models={})
    ).models
    jit_compile = getattr(model, "jit_compile", "auto")
    run_eagerly = bool(getattr(model, "run_eagerly", False))
    key = (int(num_views), jit_compile, run_eagerly)
    if key not in cache:
        views = _TiledViews(model, num_views, name=f"{model.name}_views_{num_views}")
        views.jit_compile, views.run_eagerly = jit_compile, run_eagerly
        cache[key] = views
    return cache[key]


def iter_view_predictions(
    model, x, selections, masking, batch_size=256, progress=None, views_per_pass=None
):
    """Yields the model's predictions under several token selections.

    V selections (`views_per_pass`, by default the layer's `max_views`)
    share each forward pass of `batch_size // V` examples tiled V times; a
    short last group and the last batch are padded (one compiled shape).
    The visibility comes back when the iteration ends or is closed.

    Args:
        model: the Keras model; `x`, its inputs (a numpy structure).
        selections: a list of selections (`MIAMMasking.visible_pattern()`).
        masking: the model's `MIAMMasking` layer.
        batch_size: examples per forward pass, tiled copies included.
        progress: optional callable, called with 1 after each forward pass.

    Yields:
        `(views, start, stop, outputs)`: a `range` of selection indices, the
        examples `[start, stop)`, one numpy structure per view.
    """
    layer = _the_layer(masking)
    selections = list(selections)
    if not selections:
        raise ValueError("`selections` must hold at least one selection.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received {batch_size}.")
    n = data_lib.num_examples(x)
    v = min(int(views_per_pass or layer.max_views), layer.max_views, len(selections))
    b = min(views_batch_size(batch_size, v), n)  # examples per view and pass
    views_model = _views_model(model, v)
    for first in range(0, len(selections), v):
        group = selections[first : first + v]
        with layer.views(group + group[-1:] * (v - len(group))):
            for start in range(0, n, b):
                stop = min(start + b, n)
                index = np.arange(start, start + b).clip(max=n - 1)
                out = views_model.predict_on_batch(data_lib.take_examples(x, index))
                if progress is not None:
                    progress(1)
                blocks = [
                    keras.tree.map_structure(
                        lambda o, i=i, k=stop - start: o[:k, i], out
                    )
                    for i in range(len(group))
                ]
                yield range(first, first + len(group)), start, stop, blocks


def views_batch_size(batch_size, num_views):
    """Examples per view in a forward pass of about `batch_size` examples."""
    return max(1, int(batch_size) // int(num_views))


def _the_layer(masking):
    if not isinstance(masking, MIAMMasking):
        raise ValueError(
            "`masking` must be the model's MIAMMasking layer (e.g. "
            "`keras_miam.layers.get_masking_layer(model)`); received "
            f"{masking!r}."
        )
    return masking


def predict_views(model, x, selections, masking=None, batch_size=256):
    """The model's predictions under each selection: a list of numpy
    structures like its outputs (the arguments are `iter_view_predictions`';
    `masking`: the layer or its name, when the model has several).

    Example:

    >>> env_only, everything = keras_miam.evaluation.predict_views(
    ...     model, x_val, ["env", None])
    """
    layer = masking_lookup.get_masking_layer(model, masking)
    chunks = [[] for _ in selections]
    for views, _, _, blocks in iter_view_predictions(
        model, x, selections, masking=layer, batch_size=batch_size
    ):
        for view, block in zip(views, blocks):
            chunks[view].append(block)
    return [
        keras.tree.map_structure(lambda *parts: np.concatenate(parts), *parts)
        for parts in chunks
    ]


def single_output(outputs):
    """The one output array of a model's outputs (a structure with one leaf)."""
    leaves = keras.tree.flatten(outputs)
    if len(leaves) != 1:
        raise ValueError(f"Scores need a single-output model; received {len(leaves)}.")
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
    """`(values, metric name)`: the model's metric under each selection.

    `metric` is resolved on the first outputs (`resolve_metric()`); a Keras
    metric streams, one fresh copy per selection; a function sees all of a
    selection's predictions (`y` may be None if it ignores them).
    """
    scorer, states, values = None, {}, []
    n = data_lib.num_examples(x)
    passes = iter_view_predictions(
        model, x, selections, masking, batch_size, progress, views_per_pass
    )
    with contextlib.closing(passes):  # the prior visibility comes back
        for views, start, stop, blocks in passes:
            outputs = [single_output(block) for block in blocks]
            if scorer is None:
                scorer = metrics_lib.resolve_metric(
                    metric, y, outputs[0], model, from_logits
                )
                stream = isinstance(scorer, keras.metrics.Metric)
            y_block = None if y is None else y[start:stop]
            for view, output in zip(views, outputs):
                if start == 0:
                    states[view] = metrics_lib.fresh_metric(scorer) if stream else []
                with _explained(scorer, np.shape(y_block), output.shape):
                    if stream:
                        states[view].update_state(y_block, output)
                    else:
                        states[view].append(output)
            for view in views if stop == n else ():
                state = states.pop(view)
                with _explained(scorer, np.shape(y), (n, *output.shape[1:])):
                    value = (
                        state.result() if stream else scorer(y, np.concatenate(state))
                    )
                    values.append(float(np.mean(keras.ops.convert_to_numpy(value))))
    return np.asarray(values, "float64"), metrics_lib.metric_name(scorer)


@contextlib.contextmanager
def _explained(scorer, y_shape, output_shape):
    """Turns a metric's failure into a `ValueError` naming the shapes."""
    try:
        yield
    except Exception as error:
        raise ValueError(
            f"The metric '{metrics_lib.metric_name(scorer)}' does not fit the "
            f"model: it failed on targets of shape {y_shape} and model outputs "
            f"of shape {output_shape} ({type(error).__name__}: {error})."
        ) from error
