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
    from_logits=None,
):
    """Evaluates a model with only a subset of its inputs visible, per subset.

    A model trained with `keras_miam.MIAMMasking` accepts any subset of its
    tokens: hidden tokens become the mask token, as missing inputs do. This
    scores the model on `data` for every non-empty subset of modalities
    (the columns of the paper's tables), or for given selections, partial
    ones included (a time window, an image's centre patch). V =
    `views_per_pass` subsets share one compiled forward pass of about
    `batch_size` examples (`MIAMMasking.views`), so the cost is about one
    `predict` pass per subset. The layer's visibility is restored on exit.

    Args:
        model: a Keras model with one `MIAMMasking` layer and one output.
        data: `(x, y)` arrays (x may be a dict or list), or a dataset of
            `(x, y)` batches (`tf.data.Dataset`, `keras.utils.PyDataset`,
            ...), read into memory once.
        metric: see `keras_miam.evaluation.resolve_metric`: None (exact
            macro AUC for multi-label heads, accuracy for multi-class
            heads), a name (`"auc"`, `"accuracy"`, `"loss"`, `"top_k_f1"`,
            any name `keras.metrics.get` knows), a `keras.metrics.Metric`
            (a fresh copy per subset) or a function `fn(y_true, y_pred)`.
            The same metric gives the same number in
            `keras_miam.ModalityDynamics` and the Shapley functions.
        subsets: `"all"` (the 2^M - 1 non-empty subsets, by size, then in
            modality order); a list of modality names, lists of names,
            selection dicts `{modality: True | False | token indices |
            (T_m,) booleans}` or `(label, selection)` pairs; or a dict
            `{label: selection}`. Unlabelled selections are named after
            what they show, e.g. `"env+climate[12/48]"`.
        masking: the `MIAMMasking` layer, when the model has several.
        batch_size: examples per forward pass, tiled copies included.
        views_per_pass: subsets per forward pass, at most the layer's
            `max_views`. Defaults to `min(16, max_views)`.
        summary: whether to append the mean rows (per subset size, and
            over all subsets, as in the paper's tables).
        verbose: 0 (silent), 1 (progress bar) or 2.
        from_logits: whether the outputs are logits, for thresholded
            accuracies. None reads it from the model (its compiled loss,
            its output activation).

    Returns:
        A `pandas.DataFrame` indexed by subset label, with columns `kind`
        (`"subset"` or `"mean"`), one per modality (True when shown; the
        fraction of its tokens shown when some selection is partial),
        `size` and the metric; `frame.attrs["metric"]` is its name.

    Example:

    >>> frame = keras_miam.evaluation.evaluate_subsets(model, (x_test, y_test))
    >>> frame[frame.kind == "subset"]["auc"]
    >>> keras_miam.evaluation.evaluate_subsets(model, (x_test, y_test), subsets={
    ...     "2010-2018": {"climate": np.arange(10, 19)},
    ...     "centre patch": {"image": [27, 28, 35, 36]}})

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Tables 1-2).
    """
    labels, modalities, fractions, values, metric_name = _evaluate(
        model,
        data,
        subsets,
        metric,
        masking,
        batch_size,
        views_per_pass,
        verbose,
        from_logits=from_logits,
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
    from_logits=None,
):
    """The metric for each of a list of token selections (no table).

    The engine behind `evaluate_subsets`, `modality_shapley` and
    `token_shapley`; the arguments are `evaluate_subsets`'. A function
    metric may ignore the labels: `data` may then be `x` alone.

    Returns:
        `(values, metric_name)`: one float64 value per selection.

    Example:

    >>> values, name = keras_miam.evaluation.evaluate_selections(
    ...     model, (x, y), [["env"], ["image"]])
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
        from_logits=from_logits,
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
    from_logits=None,
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
    plain_function = callable(metric) and not isinstance(
        metric, (type, keras.metrics.Metric)
    )
    if not plain_function:
        metrics_lib.metric_direction(metric)  # an unknown name fails here
    x, y = data_lib.read_data(data, needs_labels=not plain_function)
    count = data_lib.num_examples(x)
    block = min(view_predictions.views_batch_size(batch_size, views_per_pass), count)
    num_groups = -(-len(selections) // views_per_pass)
    progbar = keras.utils.Progbar(
        num_groups * -(-count // block), verbose=verbose, unit_name="pass"
    )
    values, metric_name = view_predictions.score_selections(
        model,
        x,
        y,
        selections,
        metric=metric,
        masking=layer,
        batch_size=batch_size,
        views_per_pass=views_per_pass,
        progress=progbar.add if verbose else None,
        from_logits=from_logits,
    )
    return labels, list(layer.modalities), fractions, values, metric_name
