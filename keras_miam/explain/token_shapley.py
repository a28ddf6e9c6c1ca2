"""Shapley values of tokens or token groups, by permutation sampling."""

import numpy as np
import pandas as pd

from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation import selections as selections_lib
from keras_miam.evaluation.evaluate_subsets import evaluate_selections
from keras_miam.layers import masking_lookup


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
    **kwargs,
):
    """Shapley values of single tokens or named token groups, by sampling.

    A coalition of token groups is worth the metric on `data` with only its
    tokens visible (with `target`, the model's output for one example). The
    estimates sum to v(all) - v({}), with a standard error.

    Args:
        model: a Keras model with one `MIAMMasking` layer.
        data: `(x, y)` arrays or a dataset of `(x, y)` batches; `x` alone
            with `target`.
        groups: None (one group per token, named `"modality[i]"`), or a
            dict `{name: selection}` of disjoint selections, e.g.
            `{"Bio1-Bio19": {"env": range(19)}, "image": "image"}`.
        target: None (global values of `metric`), an example index (a
            single-output model) or `(example_index, output_index)`.
        metric: the metric of global values (see `evaluate_subsets`).
        num_permutations: sampled permutations, rounded up to whole units
            (at least 2 units).
        sampling: `"antithetic"` (pairs of a permutation and its reverse),
            `"stratified"` (blocks of G permutations forming a random Latin
            square, MaskSDM's) or `"random"`.
        others: tokens in no group are `"hidden"` (default) or `"visible"`.
        seed: seed of the permutations.
        masking: the `MIAMMasking` layer, when the model has several.
        **kwargs: `batch_size`, `views_per_pass` (defaults to 16, or the
            layer's `max_views` with `target`), `verbose` and `from_logits`
            of `keras_miam.evaluation.evaluate_subsets`.

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
     - [Zbinden et al., 2025 (MaskSDM)](https://arxiv.org/abs/2503.13057)
    """
    layer = masking_lookup.get_masking_layer(model, masking)
    names, patterns = _parse_groups(layer, groups)
    num_permutations = int(num_permutations)
    if num_permutations < 2 or others not in ("hidden", "visible"):
        raise ValueError(
            "`num_permutations` must be >= 2 (a standard error needs two samples) "
            f"and `others` 'hidden' or 'visible'; received {num_permutations}, "
            f"{others!r}."
        )
    rng = np.random.default_rng(seed)
    permutations, units = _permutations(len(names), num_permutations, sampling, rng)
    if target is not None:
        if metric is not None:
            raise ValueError(
                "`metric` and `target` are exclusive: with a target, the "
                "value of a coalition is the model's prediction."
            )
        index, output_index = (target, None) if np.ndim(target) == 0 else target
        x, _ = data_lib.read_data(data, needs_labels=False)
        if not 0 <= int(index) < (count := data_lib.num_examples(x)):
            raise ValueError(
                f"Example index {index} is out of range: {count} examples."
            )
        data = (data_lib.take_examples(x, slice(int(index), int(index) + 1)), None)
        metric = _prediction(output_index)
        kwargs.setdefault("views_per_pass", layer.max_views)
    # coalitions[p, k]: the tokens of the first k groups of permutation p.
    added = np.logical_or.accumulate(patterns[permutations], axis=1)
    coalitions = np.concatenate([np.zeros_like(added[:, :1]), added], axis=1)
    coalitions |= ~patterns.any(0) if others == "visible" else False
    unique, inverse = np.unique(
        coalitions.reshape(-1, layer.num_tokens), axis=0, return_inverse=True
    )
    selections = [selections_lib.pattern_selection(layer, p) for p in unique]
    values, metric_name = evaluate_selections(
        model, data, selections, metric, layer, **kwargs
    )
    chain = values[inverse.reshape(-1)].reshape(len(permutations), len(names) + 1)
    samples = np.empty((len(permutations), len(names)))
    samples[np.arange(len(permutations))[:, None], permutations] = np.diff(chain)
    unit_means = samples.reshape(units, -1, len(names)).mean(axis=1)
    errors = unit_means.std(axis=0, ddof=1) / np.sqrt(units)
    result = pd.DataFrame({"value": unit_means.mean(axis=0), "std_error": errors})
    result.index = pd.Index(names, name="group")
    result.attrs.update(metric=metric_name, sampling=sampling, v_all=chain[0, -1])
    result.attrs.update(v_empty=chain[0, 0], num_permutations=len(permutations))
    return result


def _prediction(output_index):
    """The value of a coalition with `target`: the mean model output."""

    def prediction(y_true, y_pred):
        y_pred = y_pred.reshape(len(y_pred), -1)
        if not 0 <= (output_index or 0) < y_pred.shape[1] or (
            output_index is None and y_pred.shape[1] != 1
        ):
            raise ValueError(
                f"The model has {y_pred.shape[1]} outputs: pass target=(example, "
                f"output) with output in [0, {y_pred.shape[1]}); received {output_index}."
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
    patterns = np.stack([layer.visible_pattern(s) for s in groups.values()])
    if not patterns.any(1).all():
        raise ValueError(
            f"Group '{names[np.argmin(patterns.any(1))]}' selects no token."
        )
    shared = np.flatnonzero(patterns.sum(axis=0) > 1)
    if shared.size:
        owners = [n for n, p in zip(names, patterns) if p[shared[0]]]
        raise ValueError(
            f"Groups must be disjoint; token {int(shared[0])} belongs to {owners}."
        )
    return names, patterns


def _permutations(g, n, sampling, rng):
    """(P, g) orders of the g groups (n sampled) and the number of units."""
    if sampling == "random":
        return np.stack([rng.permutation(g) for _ in range(n)]), n
    if sampling == "antithetic":
        orders = [rng.permutation(g) for _ in range(max(2, -(-n // 2)))]
        return np.stack([o for p in orders for o in (p, p[::-1])]), len(orders)
    if sampling != "stratified":
        raise ValueError(
            "`sampling` must be 'antithetic', 'stratified' or 'random'; "
            f"received {sampling!r}."
        )
    # Random Latin squares (rows = permutations, columns = positions): row
    # k of a block puts group symbols[(columns[i] + k) % g] at position i.
    shift = np.arange(g)[:, None]
    k = max(2, -(-n // g))
    blocks = [rng.permutation(g)[(rng.permutation(g) + shift) % g] for _ in range(k)]
    return np.concatenate(blocks), k
