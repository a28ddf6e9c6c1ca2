"""Shapley values of tokens or token groups, by permutation sampling."""

import numpy as np
import pandas as pd

from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation import selections as selections_lib
from keras_miam.evaluation.evaluate_subsets import DEFAULT_BATCH_SIZE
from keras_miam.evaluation.evaluate_subsets import evaluate_selections
from keras_miam.layers import masking_lookup

SAMPLINGS = ("antithetic", "stratified", "random")
OTHERS = ("hidden", "visible")


def token_shapley(
    model,
    data,
    groups=None,
    target=None,
    metric=None,
    num_permutations=64,
    sampling="antithetic",
    others="hidden",
    seed=0,
    masking=None,
    batch_size=DEFAULT_BATCH_SIZE,
    views_per_pass=None,
    verbose=1,
    from_logits=None,
):
    """Shapley values of single tokens or named token groups, by sampling.

    The players are G groups of tokens (by default one per token). The
    value of a coalition is the metric on `data` with only its tokens
    visible, or with `target` the model's output for one example. Adding
    the groups of a permutation one by one gives one marginal contribution
    per group (Castro et al., 2009); the estimates sum to v(all) - v({}),
    with a standard error over independent units: `"antithetic"` pairs
    (pi, reversed pi), `"stratified"` blocks of G permutations forming a
    random Latin square (MaskSDM's), or `"random"` permutations.

    Args:
        model: a Keras model with one `MIAMMasking` layer.
        data: `(x, y)` arrays or a dataset of `(x, y)` batches; `x` alone
            with `target`.
        groups: None (one group per token, named `"modality[i]"`), or a
            dict `{name: selection}` of disjoint selections, e.g.
            `{"Bio1-Bio19": {"env": range(19)}, "image": "image"}`.
        target: None (global values of the metric), an example index (a
            single-output model) or `(example_index, output_index)`.
        metric: the metric of global values (see `evaluate_subsets`).
        num_permutations: sampled permutations, rounded up to whole units
            (at least 2 units).
        sampling: `"antithetic"`, `"stratified"` or `"random"`.
        others: tokens in no group are `"hidden"` (default) or always
            `"visible"`.
        seed: seed of the permutations.
        masking: the `MIAMMasking` layer, when the model has several.
        batch_size: examples per forward pass.
        views_per_pass: coalitions per forward pass. Defaults to 16, or
            the layer's `max_views` with `target`.
        verbose: 0, 1 (progress bar) or 2.
        from_logits: whether the outputs are logits (see `evaluate_subsets`).

    Returns:
        A `pandas.DataFrame` indexed by group with columns `value` and
        `std_error`; `frame.attrs` holds `metric` (`"prediction"` with
        `target`), `v_all`, `v_empty`, `num_permutations` and `sampling`.

    Example:

    >>> groups = {"temperature": {"env": range(0, 11)}, "image": "image"}
    >>> keras_miam.explain.token_shapley(model, (x_val, y_val), groups=groups)
    >>> keras_miam.explain.token_shapley(model, x_val, target=(12, 3))

    Reference:
        - Castro, Gomez and Tejada, "Polynomial calculation of the Shapley
          value based on sampling", Computers & Operations Research, 2009.
        - Zbinden et al., "MaskSDM with Shapley values to improve
          flexibility, robustness, and explainability in species
          distribution modeling", Methods in Ecology and Evolution, 2025.
    """
    layer = masking_lookup.get_masking_layer(model, masking)
    names, group_patterns = _parse_groups(layer, groups)
    num_groups = len(names)
    if sampling not in SAMPLINGS:
        raise ValueError(
            f"`sampling` must be one of {SAMPLINGS}; received {sampling!r}."
        )
    if others not in OTHERS:
        raise ValueError(f"`others` must be one of {OTHERS}; received {others!r}.")
    if int(num_permutations) < 2:
        raise ValueError(
            "`num_permutations` must be >= 2 (a standard error needs two "
            f"samples); received {num_permutations}."
        )
    if target is not None:
        if metric is not None:
            raise ValueError(
                "`metric` and `target` are exclusive: with a target, the "
                "value of a coalition is the model's prediction."
            )
        index, output_index = (target, None) if np.ndim(target) == 0 else target
        x, _ = data_lib.read_data(data, needs_labels=False)
        count = data_lib.num_examples(x)
        if not 0 <= int(index) < count:
            raise ValueError(
                f"Example index {index} is out of range: `data` has {count} examples."
            )
        data = (data_lib.take_examples(x, slice(int(index), int(index) + 1)), None)
        metric = _prediction(output_index)
        if views_per_pass is None:
            views_per_pass = layer.max_views

    permutations, units = _permutations(
        num_groups, int(num_permutations), sampling, np.random.default_rng(seed)
    )
    base = ~group_patterns.any(0) if others == "visible" else False
    # coalitions[p, k]: the tokens of the first k groups of permutation p.
    added = np.logical_or.accumulate(group_patterns[permutations], axis=1)
    empty = np.zeros_like(added[:, :1])
    coalitions = np.concatenate([empty, added], axis=1) | base
    unique, inverse = np.unique(
        coalitions.reshape(-1, layer.num_tokens), axis=0, return_inverse=True
    )
    selections = [
        selections_lib.pattern_selection(layer, pattern) for pattern in unique
    ]
    options = (metric, layer, batch_size, views_per_pass, verbose, from_logits)
    values, metric_name = evaluate_selections(model, data, selections, *options)
    chain = values[inverse.reshape(-1)].reshape(len(permutations), num_groups + 1)
    samples = np.empty((len(permutations), num_groups))
    rows = np.arange(len(permutations))[:, None]
    samples[rows, permutations] = np.diff(chain, axis=1)
    unit_means = samples.reshape(units, -1, num_groups).mean(axis=1)
    result = pd.DataFrame(
        {
            "value": unit_means.mean(axis=0),
            "std_error": unit_means.std(axis=0, ddof=1) / np.sqrt(units),
        },
        index=pd.Index(names, name="group"),
    )
    result.attrs.update(metric=metric_name, sampling=sampling)
    result.attrs.update(v_all=float(chain[0, -1]), v_empty=float(chain[0, 0]))
    result.attrs["num_permutations"] = len(permutations)
    return result


def _prediction(output_index):
    """The value of a coalition with `target`: the mean model output."""

    def prediction(y_true, y_pred):
        y_pred = y_pred.reshape(len(y_pred), -1)
        if output_index is None and y_pred.shape[1] != 1:
            raise ValueError(
                f"The model has {y_pred.shape[1]} outputs: say which one to "
                "explain, e.g. target=(example_index, output_index)."
            )
        if not 0 <= (output_index or 0) < y_pred.shape[1]:
            raise ValueError(
                f"Output index {output_index} is out of range for a model "
                f"with {y_pred.shape[1]} outputs."
            )
        return np.mean(y_pred[:, output_index or 0])

    return prediction


def _parse_groups(layer, groups):
    """Group names and their (G, T) token patterns."""
    if groups is None:
        names = [
            name if stop - start == 1 else f"{name}[{i}]"
            for name, (start, stop) in layer.token_slices.items()
            for i in range(stop - start)
        ]
        return names, np.eye(layer.num_tokens, dtype=bool)
    if not isinstance(groups, dict) or not groups:
        raise ValueError(
            f"`groups` must be None or a non-empty dict; received {groups!r}."
        )
    names = [str(name) for name in groups]
    patterns = []
    for name, selection in groups.items():
        pattern = layer.visible_pattern(selection)
        if not pattern.any():
            raise ValueError(f"Group '{name}' selects no token.")
        patterns.append(pattern)
    patterns = np.stack(patterns)
    shared = np.flatnonzero(patterns.sum(axis=0) > 1)
    if shared.size:
        owners = [n for n, p in zip(names, patterns) if p[shared[0]]]
        raise ValueError(
            f"Groups must be disjoint; token {int(shared[0])} belongs to {owners}."
        )
    return names, patterns


def _permutations(num_groups, num_permutations, sampling, rng):
    """(P, G) orders of the groups and the number of independent units."""
    if sampling == "random":
        perms = np.stack([rng.permutation(num_groups) for _ in range(num_permutations)])
        return perms, num_permutations
    if sampling == "antithetic":
        pairs = max(2, -(-num_permutations // 2))
        orders = [rng.permutation(num_groups) for _ in range(pairs)]
        return np.stack([o for order in orders for o in (order, order[::-1])]), pairs
    # Stratified: random Latin squares (rows = permutations, columns =
    # positions); row k puts group symbols[(columns[i] + k) % G] at i.
    blocks = max(2, -(-num_permutations // num_groups))
    shift = np.arange(num_groups)[:, None]
    perms = [
        rng.permutation(num_groups)[(rng.permutation(num_groups) + shift) % num_groups]
        for _ in range(blocks)
    ]
    return np.concatenate(perms), blocks
