"""Shapley values on models built so that the true values are known."""

import itertools
import math

import numpy as np
import pytest
from keras import ops

from keras_miam.explain import modality_shapley
from keras_miam.explain import token_shapley
from tests.readout_models import build_model
from tests.readout_models import mean_prediction
from tests.readout_models import random_inputs
from tests.readout_models import shown


def exact_shapley(value, players):
    """Shapley values by enumeration: value(frozenset) -> float."""
    n = len(players)
    phi = {}
    for player in players:
        rest = [p for p in players if p != player]
        phi[player] = sum(
            math.factorial(len(s))
            * math.factorial(n - len(s) - 1)
            / math.factorial(n)
            * (value(frozenset(s) | {player}) - value(frozenset(s)))
            for size in range(n)
            for s in itertools.combinations(rest, size)
        )
    return phi


# A game on modalities: a and b only count together (interchangeable), c
# adds 1.5, d is ignored (null player).
COUNTS = {"a": 2, "b": 1, "c": 3, "d": 1}


def game(tokens, keep, layer):
    a, b, c = (shown(keep, layer, m) for m in "abc")
    return ops.expand_dims(2.0 * a * b + 1.5 * c + 0.25, 1)


def game_value(coalition):
    return (
        2.0 * ("a" in coalition and "b" in coalition) + 1.5 * ("c" in coalition) + 0.25
    )


def test_modality_shapley_axioms(rng):
    model, _ = build_model(game, COUNTS)
    x = random_inputs(rng, 10, COUNTS)
    phi = modality_shapley(model, (x, np.zeros(10)), metric=mean_prediction, verbose=0)
    values = phi["value"]
    assert list(phi.index) == ["a", "b", "c", "d"]
    # Known values (additive in c, interaction split between a and b).
    assert values.to_dict() == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.5, "d": 0.0})
    assert values["a"] == pytest.approx(values["b"])  # symmetry
    assert values["d"] == pytest.approx(0.0, abs=1e-7)  # null player
    # Efficiency, with v({}) evaluated with every token masked.
    assert phi.attrs["v_empty"] == pytest.approx(0.25)
    assert phi.attrs["v_all"] == pytest.approx(3.75)
    assert values.sum() == pytest.approx(phi.attrs["v_all"] - phi.attrs["v_empty"])
    # A given baseline replaces v({}): only efficiency's total moves (to c).
    given = modality_shapley(
        model,
        (x, np.zeros(10)),
        metric=mean_prediction,
        baseline=1.25,
        verbose=0,
    )
    assert given.attrs["v_empty"] == 1.25 and given.attrs["baseline"] == "given"
    assert given["value"].sum() == pytest.approx(3.75 - 1.25)
    assert given["value"].to_dict() == pytest.approx(
        exact_shapley(lambda s: 1.25 if not s else game_value(s), list("abcd"))
    )


# A nonlinear game on 5 tokens: square of the sum of visible token values.
TOKENS = {"u": 3, "v": 2}


def squared_sum(tokens, keep, layer):
    total = ops.sum(ops.cast(keep, "float32") * tokens[:, :, 0], axis=1)
    return ops.stack([total**2, total], axis=1)


def token_values_by_hand(model, layer, x, players, output):
    """v(S) of every coalition of single tokens: set_visible + a call."""
    cache = {}

    def value(coalition):
        key = frozenset(coalition)
        if key not in cache:
            pattern = np.isin(np.arange(layer.num_tokens), sorted(key))
            selection = {m: pattern[a:b] for m, (a, b) in layer.token_slices.items()}
            layer.set_visible(selection)
            cache[key] = ops.convert_to_numpy(model(x))[:, output].mean()
            layer.reset_visible()
        return cache[key]

    return exact_shapley(value, players)


@pytest.mark.parametrize("sampling", ["antithetic", "stratified", "random"])
def test_local_token_shapley_converges_to_exact_values(rng, sampling):
    model, layer = build_model(squared_sum, TOKENS)
    x = random_inputs(rng, 4, TOKENS)
    one = {m: v[2:3] for m, v in x.items()}
    exact = token_values_by_hand(model, layer, one, list(range(5)), output=0)
    small, large = (
        token_shapley(
            model,
            x,
            target=(2, 0),
            num_permutations=n,
            sampling=sampling,
            seed=1,
            verbose=0,
        )
        for n in (20, 320)
    )
    assert list(large.index) == ["u[0]", "u[1]", "u[2]", "v[0]", "v[1]"]
    estimate, error = large["value"].to_numpy(), large["std_error"].to_numpy()
    truth = np.array([exact[i] for i in range(5)])
    assert np.all(np.abs(estimate - truth) <= 4 * error + 1e-4)
    assert np.mean(error) < 0.6 * np.mean(small["std_error"])
    # Efficiency holds for every permutation, hence exactly.
    assert estimate.sum() == pytest.approx(
        large.attrs["v_all"] - large.attrs["v_empty"], rel=1e-5
    )
    assert large.attrs["v_empty"] == pytest.approx(0.0, abs=1e-6)
    assert large.attrs["metric"] == "prediction"


def test_global_group_shapley_matches_enumeration(rng):
    model, layer = build_model(squared_sum, TOKENS)
    x = random_inputs(rng, 16, TOKENS)
    groups = {
        "u01": {"u": [0, 1]},
        "u2": {"u": np.array([False, False, True])},
        "v": "v",
    }
    members = {"u01": [0, 1], "u2": [2], "v": [3, 4]}

    def value(coalition):
        tokens = sorted(t for g in coalition for t in members[g])
        pattern = np.isin(np.arange(5), tokens)
        layer.set_visible({m: pattern[a:b] for m, (a, b) in layer.token_slices.items()})
        out = ops.convert_to_numpy(model(x))[:, 0].mean()
        layer.reset_visible()
        return out

    exact = exact_shapley(value, list(groups))
    phi = token_shapley(
        model,
        (x, np.zeros(16)),
        groups=groups,
        metric=lambda y, p: np.mean(p[:, 0]),
        num_permutations=60,
        sampling="stratified",
        verbose=0,
    )
    assert phi.attrs["num_permutations"] == 60
    for name in groups:
        assert abs(phi.loc[name, "value"] - exact[name]) <= (
            4 * phi.loc[name, "std_error"] + 1e-4
        )


def test_tokens_outside_groups_can_stay_visible(rng):
    model, _ = build_model(squared_sum, TOKENS)
    x = random_inputs(rng, 3, TOKENS)
    # With one player, its Shapley value is v(all) - v({}) exactly.
    phi = token_shapley(
        model,
        x,
        groups={"v": "v"},
        target=(0, 1),
        others="visible",
        num_permutations=2,
        verbose=0,
    )
    u_sum = x["u"][0, :, 0].sum()
    assert phi.attrs["v_empty"] == pytest.approx(u_sum, rel=1e-5)
    assert phi.loc["v", "value"] == pytest.approx(x["v"][0, :, 0].sum(), rel=1e-4)


def test_bad_inputs_raise_clear_errors(rng):
    model, _ = build_model(squared_sum, TOKENS)
    x = random_inputs(rng, 3, TOKENS)
    with pytest.raises(ValueError, match="disjoint"):
        token_shapley(model, x, target=(0, 0), groups={"u": "u", "u0": {"u": [0]}})
    with pytest.raises(ValueError, match="selects no token"):
        token_shapley(model, x, target=(0, 0), groups={"none": {"u": False}})
    with pytest.raises(ValueError, match="Unknown modality"):
        token_shapley(model, x, target=(0, 0), groups={"w": "w"})
    with pytest.raises(ValueError, match="sampling"):
        token_shapley(model, x, target=(0, 0), sampling="latin")
    with pytest.raises(ValueError, match="exclusive"):
        token_shapley(model, x, target=(0, 0), metric="mse")
    with pytest.raises(ValueError, match="out of range"):
        token_shapley(model, x, target=(5, 0), verbose=0)
    with pytest.raises(ValueError, match="2 outputs"):
        token_shapley(model, x, target=0, verbose=0)
    with pytest.raises(ValueError, match="num_permutations"):
        token_shapley(model, x, target=(0, 0), num_permutations=1)
    with pytest.raises(ValueError, match="labels"):
        token_shapley(model, x, verbose=0)
    with pytest.raises(ValueError, match="labels"):
        modality_shapley(model, x, verbose=0)
