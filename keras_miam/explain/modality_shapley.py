"""Exact Shapley values of the modalities, by masking."""

import itertools
import math

import numpy as np
import pandas as pd

from keras_miam.evaluation.evaluate_subsets import DEFAULT_BATCH_SIZE
from keras_miam.evaluation.evaluate_subsets import evaluate_subsets
from keras_miam.utils import model_utils


def modality_shapley(
    model,
    data,
    metric=None,
    baseline=None,
    masking=None,
    batch_size=DEFAULT_BATCH_SIZE,
    views_per_pass=None,
    verbose=1,
):
    """Exact Shapley values of the modalities for a metric, by masking.

    The players are the M modalities; the value of a coalition S is the
    metric of the model with only the modalities in S visible (the others
    are replaced by the mask token, as missing inputs are):
    v(S) = metric(model | S). Every one of the 2^M coalitions is evaluated
    with `evaluate_subsets` (2^M - 1 subsets plus the empty one, in
    batched passes), then

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
    layer = model_utils.get_masking_layer(model, masking)
    names = layer.modalities
    m = len(names)
    subsets = []
    for size in range(0 if baseline is None else 1, m + 1):
        for members in itertools.combinations(range(m), size):
            selection = {name: i in members for i, name in enumerate(names)}
            label = " + ".join(names[i] for i in members) or "(nothing)"
            subsets.append((label, selection))
    frame = evaluate_subsets(
        model,
        data,
        metric=metric,
        subsets=subsets,
        masking=layer,
        batch_size=batch_size,
        views_per_pass=views_per_pass,
        summary=False,
        verbose=verbose,
    )
    metric_name = frame.attrs["metric"]
    shown = frame[names].to_numpy(dtype=bool)
    codes = shown @ (1 << np.arange(m))  # Coalition as a bit mask.
    value = np.full(1 << m, np.nan)
    value[codes] = frame[metric_name].to_numpy()
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
