"""Exact Shapley values of the modalities, by masking."""

import math

import numpy as np
import pandas as pd

from keras_miam.evaluation import selections as selections_lib
from keras_miam.evaluation.evaluate_subsets import DEFAULT_BATCH_SIZE
from keras_miam.evaluation.evaluate_subsets import evaluate_selections
from keras_miam.layers import masking_lookup


def modality_shapley(
    model,
    data,
    metric=None,
    baseline=None,
    masking=None,
    batch_size=DEFAULT_BATCH_SIZE,
    views_per_pass=None,
    verbose=1,
    from_logits=None,
):
    """Exact Shapley values of the modalities for a metric, by masking.

    The players are the M modalities; the value of a coalition S is the
    metric of the model with only the modalities in S visible (the others
    are replaced by the mask token, as missing inputs are):
    v(S) = metric(model | S). Every one of the 2^M coalitions is evaluated
    with `evaluate_selections` (2^M - 1 subsets plus the empty one, in
    batched passes, with the metric system of `evaluate_subsets`), then

        phi_m = sum_{S not containing m} |S|! (M - |S| - 1)! / M!
                * (v(S + {m}) - v(S)).

    The empty coalition v({}) is, by default, the metric of the model with
    every token masked: its prediction with no input at all, i.e. what it
    learned as the prior (for AUC, constant predictions give 0.5). Pass
    `baseline` to use another reference value instead (e.g. 0.5 for AUC,
    or the prevalence-only score). The values satisfy efficiency:
    sum_m phi_m = v(all) - v({}).

    Args:
        model: a Keras model with one `MIAMMasking` layer.
        data: `(x, y)` arrays, a `keras.utils.PyDataset` or a
            `tf.data.Dataset` of `(x, y)` batches.
        metric: the value function's metric; see `evaluate_subsets`
            (default: macro AUC for multi-label heads, accuracy for
            classification heads).
        baseline: None (v({}) = the metric with every token masked) or a
            float used as v({}).
        masking: the `MIAMMasking` layer, when the model has several.
        batch_size: examples per forward pass (see `evaluate_subsets`).
        views_per_pass: coalitions per forward pass.
        verbose: 0, 1 (progress bar) or 2.

    Returns:
        A `pandas.DataFrame` indexed by modality with the column `value`
        (phi_m). `frame.attrs` holds `metric`, `v_all` (all modalities
        visible), `v_empty` and `baseline` ('masked' or 'given').

    Example:

    >>> phi = modality_shapley(model, (x_test, y_test))
    >>> phi
                 value
    modality
    env       0.112
    climate   0.071
    image     0.027
    >>> phi["value"].sum(), phi.attrs["v_all"] - phi.attrs["v_empty"]
    (0.210, 0.210)

    Reference:
        - Shapley, "A value for n-person games", Contributions to the Theory
          of Games II, 1953.
        - Zbinden et al., "MaskSDM with Shapley values to improve flexibility,
          robustness, and explainability in species distribution
          modeling", Methods in Ecology and Evolution, 2025.
    """
    layer = masking_lookup.get_masking_layer(model, masking)
    names = layer.modalities
    m = len(names)
    subsets = selections_lib.all_subsets(names, include_empty=baseline is None)
    values, metric_name = evaluate_selections(
        model,
        data,
        [selections_lib.subset_selection(names, subset) for subset in subsets],
        metric=metric,
        masking=layer,
        batch_size=batch_size,
        views_per_pass=views_per_pass,
        verbose=verbose,
        from_logits=from_logits,
    )
    value = np.full(1 << m, np.nan)  # v(S), S as a bit mask over `names`
    for subset, v in zip(subsets, values):
        value[sum(1 << names.index(name) for name in subset)] = v
    if baseline is not None:
        value[0] = float(baseline)
    phi = np.zeros(m)
    for code in range((1 << m) - 1):
        size = bin(code).count("1")
        weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
        for i in range(m):
            if not code >> i & 1:
                phi[i] += weight * (value[code | 1 << i] - value[code])
    result = pd.DataFrame({"value": phi}, index=pd.Index(names, name="modality"))
    result.attrs.update(
        {
            "metric": metric_name,
            "v_all": float(value[-1]),
            "v_empty": float(value[0]),
            "baseline": "masked" if baseline is None else "given",
        }
    )
    return result
