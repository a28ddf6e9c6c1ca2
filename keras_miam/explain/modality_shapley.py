"""Exact Shapley values of the modalities, by masking."""

import math

import numpy as np
import pandas as pd

from keras_miam.evaluation import selections as selections_lib
from keras_miam.evaluation.evaluate_subsets import evaluate_selections
from keras_miam.layers import masking_lookup


def modality_shapley(model, data, metric=None, baseline=None, masking=None, **kwargs):
    """Exact Shapley values of the modalities for a metric, by masking.

    v(S) is the metric with only the modalities S visible, for all 2^M
    coalitions S (v({}): all masked, or `baseline`). The values sum to
    v(all) - v({}).

    Args:
        model: a Keras model with one `MIAMMasking` layer.
        data: `(x, y)` arrays or a dataset of `(x, y)` batches.
        metric: the value function's metric (see `evaluate_subsets`).
        baseline: None, or a float used as v({}).
        masking: the `MIAMMasking` layer, when the model has several.
        **kwargs: `batch_size`, `views_per_pass`, `verbose` and `from_logits`
            of `keras_miam.evaluation.evaluate_subsets`.

    Returns:
        A `pandas.DataFrame` indexed by modality with the column `value`;
        `frame.attrs` holds `metric`, `v_all`, `v_empty` and `baseline`
        (`"masked"` or `"given"`).

    Example:

    >>> phi = keras_miam.explain.modality_shapley(model, (x_test, y_test))
    >>> phi["value"].sum(), phi.attrs["v_all"] - phi.attrs["v_empty"]

    Reference:
     - Shapley, "A value for n-person games", 1953.
     - [Zbinden et al., 2025 (MaskSDM)](https://arxiv.org/abs/2503.13057)
    """
    layer = masking_lookup.get_masking_layer(model, masking)
    names, m = layer.modalities, len(layer.modalities)
    subsets = selections_lib.all_subsets(names, include_empty=baseline is None)
    selections = [selections_lib.subset_selection(names, s) for s in subsets]
    values, metric_name = evaluate_selections(
        model, data, selections, metric, layer, **kwargs
    )
    value = np.full(1 << m, np.nan)  # v(S), S as a bit mask over `names`
    for subset, v in zip(subsets, values):
        value[sum(1 << names.index(name) for name in subset)] = v
    if baseline is not None:
        value[0] = float(baseline)
    phi = np.zeros(m)
    for code in range((1 << m) - 1):
        weight = 1 / (m * math.comb(m - 1, bin(code).count("1")))
        for i in range(m):
            if not code >> i & 1:
                phi[i] += weight * (value[code | 1 << i] - value[code])
    result = pd.DataFrame({"value": phi}, index=pd.Index(names, name="modality"))
    result.attrs.update(metric=metric_name, v_all=value[-1], v_empty=value[0])
    result.attrs["baseline"] = "masked" if baseline is None else "given"
    return result
