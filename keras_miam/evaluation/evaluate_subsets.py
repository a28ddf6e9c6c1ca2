"""The metric of a model for every subset of its inputs, in batched passes."""

import keras
import numpy as np
import pandas as pd

from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation import metrics as metrics_lib
from keras_miam.evaluation import selections as selections_lib
from keras_miam.evaluation import view_predictions
from keras_miam.layers import masking_lookup

DEFAULT_BATCH_SIZE = 256
DEFAULT_VIEWS_PER_PASS = 16


def evaluate_subsets(
    model,
    data,
    metric=None,
    subsets="all",
    masking=None,
    batch_size=DEFAULT_BATCH_SIZE,
    views_per_pass=None,
    summary=True,
    verbose=1,
):
    """Evaluates a model with only a subset of its inputs visible, per subset.

    One model trained with MIAM (or any masking strategy) accepts any subset
    of its tokens: hidden tokens are replaced by the mask token, exactly as
    missing inputs are. This function scores the model on `data` for every
    non-empty subset of modalities (the columns of the paper's tables), or
    for a given list of subsets, including partial inputs inside a
    modality (a time window, the centre patch of an image, a group of
    variables).

    Evaluation is batched
    (`keras_miam.evaluation.view_predictions.iter_view_predictions`): a
    block of `batch_size // V` examples is tiled V times (inside the
    compiled function) and scored under V subsets in one forward pass of
    about `batch_size` examples (`MIAMMasking.views`), with V =
    `views_per_pass`; a short last group of subsets is padded to V views,
    so every pass has the same shape and compiles once. Long runs of
    batches go through `predict` (asynchronous, no per-batch state
    round-trip), so the cost is about that of one `predict` pass per subset
    (`benchmarks/evaluation_cost.py`). The layer's visibility is restored
    on exit, also after an error (what it was: everything, or a
    `set_visible()` selection).

    Args:
        model: a Keras model with one `MIAMMasking` layer (e.g.
            `keras_miam.models.MultimodalTransformer`) and one output tensor.
        data: a tuple `(x, y)` of arrays (x may be a dict or list of arrays),
            or a dataset of `(x, y)` batches (`keras.utils.PyDataset`,
            `tf.data.Dataset`, ...), read into memory once.
        metric: what `keras_miam.evaluation.resolve_metric` accepts, the
            one metric system `ModalityDynamics` and the Shapley functions
            use too. None for the default: exact macro AUC over the outputs
            with both classes (`metrics.macro_auc`) for multi-label or
            binary heads, top-1 accuracy for multi-class heads (the head
            is read from the model's `task`, its compiled loss, its output
            activation, else its outputs and the labels). Or 'auc' (one-vs-
            rest for class ids), 'accuracy' (top-1 on a multi-class head;
            the binary accuracy over all outputs on a multi-label head,
            logits cut at 0 and probabilities at 0.5), 'binary_accuracy',
            'categorical_accuracy', 'loss' (the compiled loss as
            1 / (1 + loss)), a name added with `register_metric`, another
            name known to `keras.metrics.get` ('mse', ...), a
            `keras.metrics.Metric` (streamed per subset) or a callable
            `fn(y_true, y_pred)`. Built-in and callable metrics collect
            the predictions of a group of V subsets in memory.
        subsets: 'all' (every non-empty subset of modalities: 2^M - 1 rows,
            by size, then in modality order), or a list whose items are a
            modality name, a list/tuple of names, a selection dict
            `{modality: True | False | (T_m,) booleans | token indices}`
            (unlisted modalities hidden), or a `(label, selection)` pair;
            or a dict `{label: selection}`. Unlabelled selections are named
            after what they show, e.g. 'env+climate[12/48]'
            (`selections.pattern_label`).
        masking: the `MIAMMasking` layer, when the model has several.
        batch_size: examples per forward pass, as in `model.predict`: each
            pass holds V views of `batch_size // V` examples (at least 1).
            Larger values help on accelerators; on a CPU, 128-256 is
            usually fastest.
        views_per_pass: V, subsets per forward pass, at most the layer's
            `max_views`. Defaults to `min(16, max_views, number of
            subsets)`.
        summary: whether to append the summary rows (mean per subset size,
            mean over all subsets).
        verbose: 0 (silent), 1 (progress bar) or 2 (one line at the end).

    Returns:
        A `pandas.DataFrame` indexed by subset label, with columns `kind`
        ('subset' for a subset row, 'mean' for a summary row), one column
        per modality (True when any of its tokens is visible; the fraction
        of its visible tokens instead when some selection shows part of a
        modality; missing in summary rows), `size` (the number of
        modalities shown) and the metric. The summary rows come last:
        'mean (size k)' for each size k, and 'mean (all subsets)', the
        average over the subset rows as in the paper's tables. Keep the
        subset rows with `frame[frame.kind == "subset"]`.
        `frame.attrs["metric"]` is the metric's name.

    Example:

    >>> frame = evaluate_subsets(model, (x_test, y_test))
    >>> print(frame)
                               kind    env  climate  image  size     auc
    subset
    env                      subset   True    False  False     1  0.8112
    climate                  subset  False     True  False     1  0.7701
    ...
    env+climate+image        subset   True     True   True     3  0.8603
    mean (size 1)              mean   <NA>     <NA>   <NA>     1  0.7548
    mean (size 2)              mean   <NA>     <NA>   <NA>     2  0.8310
    mean (size 3)              mean   <NA>     <NA>   <NA>     3  0.8603
    mean (all subsets)         mean   <NA>     <NA>   <NA>  <NA>  0.8077
    >>> evaluate_subsets(model, (x_test, y_test), subsets={
    ...     "2010-2018": {"climate": np.arange(10, 19)},
    ...     "centre patch": {"image": [27, 28, 35, 36]},
    ... })

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Tables 1-2: one
        column per input subset and their average).
    """
    labels, modalities, fractions, values, metric_name = _evaluate(
        model, data, subsets, metric, masking, batch_size, views_per_pass, verbose
    )
    # The table, from the scores and what each subset shows.
    reserved = {"kind", "size", metric_name}
    clash = sorted(reserved.intersection(modalities))
    if clash:
        raise ValueError(
            f"Modality names {clash} clash with the table's columns {sorted(reserved)}."
        )
    partial = bool(np.any((fractions > 0) & (fractions < 1)))
    columns = {"kind": ["subset"] * len(labels)}
    for j, name in enumerate(modalities):
        column = fractions[:, j] if partial else fractions[:, j] > 0
        columns[name] = pd.array(column, dtype="Float64" if partial else "boolean")
    sizes = (fractions > 0).sum(axis=1)
    columns["size"] = pd.array(sizes, dtype="Int64")
    columns[metric_name] = values
    frame = pd.DataFrame(columns, index=pd.Index(labels, name="subset"))
    if summary:
        rows = [
            (f"mean (size {size})", size, values[sizes == size].mean())
            for size in np.unique(sizes)
        ]
        rows.append(("mean (all subsets)", pd.NA, values.mean()))
        taken = sorted(set(labels).intersection(label for label, _, _ in rows))
        if taken:
            raise ValueError(
                f"Subset labels {taken} are reserved for the summary rows; "
                "rename them or pass summary=False."
            )
        means = pd.DataFrame(
            {
                "kind": ["mean"] * len(rows),
                "size": pd.array([size for _, size, _ in rows], dtype="Int64"),
                metric_name: [value for _, _, value in rows],
            },
            index=pd.Index([label for label, _, _ in rows], name="subset"),
        )
        frame = pd.concat([frame, means])
        for name in modalities:
            frame[name] = frame[name].astype("Float64" if partial else "boolean")
        frame["size"] = frame["size"].astype("Int64")
    frame = frame[["kind", *modalities, "size", metric_name]]
    frame.attrs["metric"] = metric_name
    return frame


def evaluate_selections(
    model,
    data,
    selections,
    metric=None,
    masking=None,
    batch_size=DEFAULT_BATCH_SIZE,
    views_per_pass=None,
    verbose=1,
):
    """The metric for each of a list of token selections (no table).

    The engine behind `evaluate_subsets`, `modality_shapley` and
    `token_shapley`: selections are scored V at a time, each block of
    examples tiled V times under `MIAMMasking.views`, and each metric is
    accumulated block by block. See `evaluate_subsets` for the arguments.

    Args:
        model: a Keras model with one `MIAMMasking` layer.
        data: `(x, y)` arrays or a dataset of `(x, y)` batches; arrays `x`
            alone (or `(x, None)`) when the metric needs no labels.
        selections: list of selections `MIAMMasking.visible_pattern`
            accepts (a dict listing every modality with False hides all).
        metric: see `evaluate_subsets`, or a `metrics.SubsetMetric`.
        masking: the `MIAMMasking` layer, when the model has several.
        batch_size: examples per forward pass (V views of
            `batch_size // V` examples).
        views_per_pass: selections per forward pass.
        verbose: 0, 1 or 2 (progress bar over forward passes).

    Returns:
        `(values, metric_name)`: a float64 numpy array with one value per
        selection, and the metric's name.

    Example:

    >>> values, name = evaluate_selections(model, (x, y), [["env"], ["image"]])
    """
    scored = _evaluate(
        model,
        data,
        list(selections),
        metric,
        masking,
        batch_size,
        views_per_pass,
        verbose,
        as_subsets=False,
    )
    _, _, _, values, metric_name = scored
    return values, metric_name


def _evaluate(
    model,
    data,
    subsets,
    metric,
    masking,
    batch_size,
    views_per_pass,
    verbose,
    as_subsets=True,
):
    """The subsets' labels, modalities, fractions shown, scores and metric name.

    `subsets` as `evaluate_subsets` takes them (`as_subsets`), or a list of
    selections as `evaluate_selections` does. The model goes down once:
    its layer found, the selections read against it, scored by the engine.
    """
    layer = masking_lookup.get_masking_layer(model, masking)
    if as_subsets:
        labels, selections, fractions = selections_lib.parse_subsets(subsets, layer)
    else:
        labels, fractions, selections = None, None, subsets
        if not selections:
            raise ValueError("Nothing to evaluate: the list of subsets is empty.")
        for selection in selections:
            layer.visible_pattern(selection)  # Validates names and indices.
    if views_per_pass is None:
        views_per_pass = min(DEFAULT_VIEWS_PER_PASS, layer.max_views)
    views_per_pass = int(views_per_pass)
    if not 1 <= views_per_pass <= layer.max_views:
        raise ValueError(
            f"`views_per_pass` must be between 1 and the layer's max_views="
            f"{layer.max_views}; received {views_per_pass}."
        )
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received {batch_size}.")
    views_per_pass = min(views_per_pass, len(selections))
    needs_labels = not (
        isinstance(metric, metrics_lib.SubsetMetric) and not metric.needs_labels
    )
    metrics_lib.check_metric(metric)
    x, y = data_lib.read_data(data, needs_labels)
    count = data_lib.num_examples(x)
    block = min(view_predictions.views_batch_size(batch_size, views_per_pass), count)
    num_groups = -(-len(selections) // views_per_pass)
    progbar = keras.utils.Progbar(
        num_groups * -(-count // block), verbose=verbose, unit_name="pass"
    )
    values, resolved = view_predictions.score_selections(
        model,
        x,
        y,
        selections,
        metric=metric,
        masking=layer,
        batch_size=batch_size,
        views_per_pass=views_per_pass,
        progress=progbar.add if verbose else None,
    )
    return labels, list(layer.modalities), fractions, values, resolved.name
