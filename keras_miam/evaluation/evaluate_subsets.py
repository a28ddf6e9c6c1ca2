"""The metric of a model for every subset of its inputs, in batched passes."""

import contextlib
import itertools

import keras
import numpy as np
import pandas as pd

from keras_miam.evaluation import metrics as metrics_lib
from keras_miam.utils import model_utils

DEFAULT_BATCH_SIZE = 256
DEFAULT_VIEWS_PER_PASS = 16
TASKS = ("multilabel", "multiclass")


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

    Evaluation is batched (`keras_miam.utils.iter_view_predictions`): a
    block of `batch_size // V` examples is tiled V times (inside the
    compiled function) and scored under V subsets in one forward pass of
    about `batch_size` examples (`MIAMMasking.views`), with V =
    `views_per_pass`; a short last group of subsets is padded to V views,
    so every pass has the same shape and compiles once. Long runs of
    batches go through `predict` (asynchronous, no per-batch state
    round-trip), so the cost is about that of one `predict` pass per subset
    (`benchmarks/evaluation_cost.py`). The layer's visibility is restored
    on exit, also after an error.

    Args:
        model: a Keras model with one `MIAMMasking` layer (e.g.
            `keras_miam.models.MultimodalTransformer`) and one output tensor.
        data: a tuple `(x, y)` of arrays (x may be a dict or list of arrays),
            or a dataset of `(x, y)` batches (`keras.utils.PyDataset`,
            `tf.data.Dataset`, ...), read into memory once.
        metric: None for the default: exact macro AUC over the outputs with
            both classes (`metrics.macro_auc`) for 0/1 targets shaped like
            the output (multi-label sigmoid or binary heads), accuracy for
            class ids (softmax heads); a `MultimodalTransformer`'s `task`
            decides when present. Or 'auc', 'accuracy', another name known
            to `keras.metrics.get` ('mse', ...), a `keras.metrics.Metric`
            (streamed per subset) or a callable `fn(y_true, y_pred)`.
            Built-in and callable metrics collect the predictions of a
            group of V subsets in memory.
        subsets: 'all' (every non-empty subset of modalities: 2^M - 1 rows,
            by size, then in modality order), or a list whose items are a
            modality name, a list/tuple of names, a selection dict
            `{modality: True | False | (T_m,) booleans | token indices}`
            (unlisted modalities hidden), or a `(label, selection)` pair;
            or a dict `{label: selection}`. Unlabelled selections are named
            after what they show, e.g. 'env + climate[12/48]'.
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
    env + climate + image    subset   True     True   True     3  0.8603
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
    layer = model_utils.get_masking_layer(model, masking)
    labels, selections, patterns = _parse_subsets(subsets, layer)
    values, metric_name = evaluate_selections(
        model,
        data,
        selections,
        metric=metric,
        masking=layer,
        batch_size=batch_size,
        views_per_pass=views_per_pass,
        verbose=verbose,
    )
    return _subsets_frame(layer, labels, patterns, values, metric_name, summary)


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
    layer = model_utils.get_masking_layer(model, masking)
    selections = list(selections)
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
    x, y = read_data(data, needs_labels)
    task = getattr(model, "task", None)
    task = task if task in TASKS else None

    chunks = [
        selections[i : i + views_per_pass]
        for i in range(0, len(selections), views_per_pass)
    ]
    count = model_utils.num_examples(x)
    block = min(model_utils.views_batch_size(batch_size, views_per_pass), count)
    progbar = keras.utils.Progbar(
        len(chunks) * -(-count // block), verbose=verbose, unit_name="pass"
    )
    resolved = metric if isinstance(metric, metrics_lib.SubsetMetric) else None
    values = []
    with _preserved_visibility(layer):
        for chunk in chunks:
            # A short last group is padded with copies of its last selection:
            # every pass then has the same shape (no recompilation).
            padded = chunk + chunk[-1:] * (len(chunks[0]) - len(chunk))
            accumulators = None
            passes = model_utils.iter_view_predictions(
                model,
                x,
                padded,
                masking=layer,
                batch_size=batch_size,
                progress=progbar.add if verbose else None,
            )
            with contextlib.closing(passes):
                for _, start, stop, outputs in passes:
                    y_block = None if y is None else y[start:stop]
                    if not all(hasattr(output, "shape") for output in outputs):
                        raise ValueError(
                            "Subset evaluation needs a model with a single "
                            "output tensor; the model returned "
                            f"{type(outputs[0]).__name__}."
                        )
                    if resolved is None:
                        resolved = metrics_lib.resolve_metric(
                            metric,
                            y_block,
                            outputs[0],
                            task=task,
                            from_logits=task is not None,
                        )
                    resolved.check(y_block, outputs[0])
                    if accumulators is None:
                        accumulators = [resolved.accumulator() for _ in chunk]
                    for accumulator, output in zip(accumulators, outputs):
                        accumulator.update(y_block, output)
            values.extend(accumulator.result() for accumulator in accumulators)
    return np.asarray(values, "float64"), resolved.name


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
            model_utils.num_examples(x)  # Checks the leaves agree.
            return x, None
    return model_utils.collect_examples(data, what="`data`")


@contextlib.contextmanager
def _preserved_visibility(layer):
    """Puts the layer's views back as they were on exit (errors too)."""
    patterns = keras.ops.convert_to_numpy(layer.view_patterns)
    num_views = keras.ops.convert_to_numpy(layer.num_views)
    try:
        yield layer
    finally:
        layer.view_patterns.assign(patterns)
        layer.num_views.assign(num_views)


# ----------------------------------------------------------------------
# Subsets and the table.
# ----------------------------------------------------------------------
def _parse_subsets(subsets, layer):
    """Returns labels, selections and (T,) patterns of the requested subsets."""
    if isinstance(subsets, str) and subsets == "all":
        items = [
            (None, list(names))
            for size in range(1, layer.num_modalities + 1)
            for names in itertools.combinations(layer.modalities, size)
        ]
    elif isinstance(subsets, dict):
        items = list(subsets.items())
    elif isinstance(subsets, (list, tuple)):
        items = []
        for item in subsets:
            labelled = (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[0], str)
                and not isinstance(item[1], str)
            )
            items.append(item if labelled else (None, item))
    else:
        raise ValueError(
            "`subsets` must be 'all', a list of selections or a dict "
            f"{{label: selection}}; received {subsets!r}."
        )
    if not items:
        raise ValueError("`subsets` is empty: pass 'all' or at least one selection.")
    labels, selections, patterns = [], [], []
    for label, selection in items:
        if selection is None or (
            isinstance(selection, (list, tuple, dict)) and not selection
        ):
            raise ValueError(
                f"Empty selection {selection!r} in `subsets`: list at least "
                f"one of {layer.modalities} (a dict listing modalities as "
                "False selects nothing)."
            )
        if isinstance(selection, tuple):
            selection = list(selection)
        pattern = layer.visible_pattern(selection)
        labels.append(describe_pattern(layer, pattern) if label is None else str(label))
        selections.append(selection)
        patterns.append(pattern)
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        raise ValueError(
            f"Subset labels must be unique; {duplicated} appear more than "
            "once. Label the selections, e.g. subsets={label: selection}."
        )
    return labels, selections, patterns


def describe_pattern(layer, pattern):
    """A readable label for a token pattern: 'env + climate[12/48]'.

    Args:
        layer: a built `MIAMMasking`.
        pattern: (T,) booleans.

    Returns:
        str; '(nothing)' when no token is visible.
    """
    parts = []
    for name, (start, stop) in layer.token_slices.items():
        shown = int(np.sum(pattern[start:stop]))
        if shown == stop - start:
            parts.append(name)
        elif shown:
            parts.append(f"{name}[{shown}/{stop - start}]")
    return " + ".join(parts) if parts else "(nothing)"


def _subsets_frame(layer, labels, patterns, values, metric_name, summary):
    reserved = {"kind", "size", metric_name}
    clash = sorted(reserved.intersection(layer.modalities))
    if clash:
        raise ValueError(
            f"Modality names {clash} clash with the table's columns {sorted(reserved)}."
        )
    fractions = np.array(
        [
            [pattern[a:b].mean() for a, b in layer.token_slices.values()]
            for pattern in patterns
        ]
    )
    partial = bool(np.any((fractions > 0) & (fractions < 1)))
    columns = {"kind": ["subset"] * len(labels)}
    for j, name in enumerate(layer.modalities):
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
        for name in layer.modalities:
            frame[name] = frame[name].astype("Float64" if partial else "boolean")
        frame["size"] = frame["size"].astype("Int64")
    frame = frame[["kind", *layer.modalities, "size", metric_name]]
    frame.attrs["metric"] = metric_name
    return frame
