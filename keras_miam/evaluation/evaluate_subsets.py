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

    Hidden tokens become the mask token, as missing inputs do: every
    non-empty subset of modalities (the paper's tables), or given selections.

    Args:
        model: a Keras model with one `MIAMMasking` layer and one output.
        data: `(x, y)` arrays, or a dataset of `(x, y)` batches, read once.
        metric: None, a name, a `keras.metrics.Metric` or a function
            `fn(y_true, y_pred)`: see `keras_miam.evaluation.resolve_metric`.
        subsets: `"all"` (the 2^M - 1 subsets, by size); a list of names,
            lists of names, selection dicts `{modality: bool | token indices
            | (T_m,) booleans}` or `(label, selection)` pairs; or a dict
            `{label: selection}`. Unlabelled ones are named after what they
            show, e.g. `"env+climate[12/48]"`.
        masking: the `MIAMMasking` layer, when the model has several.
        batch_size: examples per forward pass, tiled copies included.
        views_per_pass: subsets per forward pass, at most (and by default
            up to 16) the layer's `max_views`.
        summary: whether to append the mean rows (per size, and overall).
        verbose: 0 (silent), 1 (progress bar) or 2.
        from_logits: whether the outputs are logits (None: from the model).

    Returns:
        A `pandas.DataFrame` indexed by subset label: `kind` (`"subset"` or
        `"mean"`), one column per modality (shown, or its shown fraction),
        `size` and the metric (named in `frame.attrs["metric"]`).

    Example:

    >>> frame = keras_miam.evaluation.evaluate_subsets(model, (x_test, y_test))
    >>> keras_miam.evaluation.evaluate_subsets(model, (x_test, y_test), subsets={
    ...     "2010-2018": {"climate": np.arange(10, 19)},
    ...     "centre patch": {"image": [27, 28, 35, 36]}})

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Tables 1-2).
    """
    layer = masking_lookup.get_masking_layer(model, masking)
    labels, selections, fractions = selections_lib.parse_subsets(subsets, layer)
    options = (metric, layer, batch_size, views_per_pass, verbose, from_logits)
    values, name = evaluate_selections(model, data, selections, *options)
    columns = {"kind", "size", name}.intersection(layer.modalities)
    if columns:
        raise ValueError(
            f"Modality names {sorted(columns)} clash with the table's columns."
        )
    partial = np.any((fractions > 0) & (fractions < 1))
    shown = fractions if partial else fractions > 0
    sizes = pd.array((fractions > 0).sum(axis=1), dtype="Int64")
    frame = pd.DataFrame(
        {
            "kind": "subset",
            **{m: pd.array(c) for m, c in zip(layer.modalities, shown.T)},
            "size": sizes,
            name: values,
        },
        index=pd.Index(labels, name="subset"),
    )
    if summary:
        means = frame.groupby("size")[name].mean()
        rows = [f"mean (size {k})" for k in means.index] + ["mean (all subsets)"]
        if set(labels).intersection(rows):
            raise ValueError(f"Subset labels {rows} are reserved for the summary rows.")
        summary_rows = pd.DataFrame(
            {
                "kind": "mean",
                "size": pd.array([*means.index, pd.NA], dtype="Int64"),
                name: [*means, values.mean()],
            },
            index=pd.Index(rows, name="subset"),
        )
        frame = pd.concat([frame, summary_rows])[frame.columns]
    frame.attrs["metric"] = name
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
    """`(values, metric name)`: the metric for each of a list of token
    selections, as float64. The arguments are `evaluate_subsets`'; with a
    function metric that ignores the labels, `data` may be `x` alone.

    Example:

    >>> values, name = keras_miam.evaluation.evaluate_selections(
    ...     model, (x, y), [["env"], ["image"]])
    """
    layer = masking_lookup.get_masking_layer(model, masking)
    if not selections:
        raise ValueError("Nothing to evaluate: the list of selections is empty.")
    views = int(views_per_pass or min(DEFAULT_VIEWS_PER_PASS, layer.max_views))
    if not 1 <= views <= layer.max_views:
        raise ValueError(
            f"`views_per_pass` must be between 1 and the layer's max_views="
            f"{layer.max_views}; received {views_per_pass}."
        )
    function = callable(metric) and not isinstance(metric, (type, keras.metrics.Metric))
    if not function:
        metrics_lib.metric_direction(metric)  # an unknown name fails here
    x, y = data_lib.read_data(data, needs_labels=not function)
    count, views = data_lib.num_examples(x), min(views, len(selections))
    block = min(view_predictions.views_batch_size(batch_size, views), count)
    passes = -(-len(selections) // views) * -(-count // block)
    progbar = keras.utils.Progbar(passes, verbose=verbose, unit_name="pass")
    progress = progbar.add if verbose else None
    options = (metric, batch_size, views, progress, from_logits)
    return view_predictions.score_selections(model, x, y, selections, layer, *options)
