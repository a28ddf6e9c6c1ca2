"""Sampled masking distributions against their analytic forms (scipy oracles)."""

import itertools

import keras
import numpy as np
import pytest
from scipy import stats

from keras_miam import strategies
from keras_miam.strategies import dynamics_state

N = 40_000
SCORES = [0.9, 0.6, 0.7]
DERIVS = [0.01, 0.08, 0.03]


def np_sample(strategy, n=N, m=3, seed=0, state=None, single_token=False):
    p = strategy.sample(n, m, seed=seed, state=state, single_token=single_token)
    return keras.ops.convert_to_numpy(p).astype("float64")


def reference_ratios(scores, derivs):
    """r_m written independently of the library, straight from design.md."""
    s, d = np.asarray(scores, float), np.asarray(derivs, float)
    rho_s = s / np.prod(s) ** (1 / len(s))
    rho_d = d / np.prod(d) ** (1 / len(d))
    return rho_s / rho_d


def reference_ab(kappa, lam, r):
    return kappa * r**lam, kappa * r ** (-lam)


def mixture_cdf(a, b):
    # P(c_m = 1) = 1/2 under the MIAM corner weights.
    return lambda x: 0.5 * stats.beta.cdf(x, a, 1) + 0.5 * stats.beta.cdf(x, 1, b)


@pytest.mark.parametrize(
    "kappa,lam,scores,derivs",
    [
        (10.0, 1.0, None, None),
        (10.0, 1.0, SCORES, DERIVS),
        (5.0, 2.0, SCORES, DERIVS),
        (20.0, 0.5, [0.5, 0.5, 0.9], [0.2, 0.1, 0.1]),
    ],
)
def test_miam_moments_and_marginals_match_mixprodbeta(kappa, lam, scores, derivs):
    state = None if scores is None else dynamics_state(3, scores, derivs)
    strategy = strategies.MIAM(kappa=kappa, lambda_=lam)
    p = np_sample(strategy, state=state, seed=7)
    r = np.ones(3) if scores is None else reference_ratios(scores, derivs)
    a, b = reference_ab(kappa, lam, r)
    expected = 0.5 / (1 + b) + 0.5 * a / (a + 1)
    np.testing.assert_allclose(p.mean(0), expected, atol=0.01)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(strategy.mean(3, state)), expected, rtol=1e-5
    )
    # `ratios` is the authors' r = rho_s^lambda / rho_d^lambda.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(strategy.ratios(3, state)), r**lam, rtol=1e-5
    )
    for m in range(3):
        result = stats.kstest(p[:, m], mixture_cdf(a[m], b[m]))
        assert result.pvalue > 1e-3, (m, result)


def test_miam_components_are_the_right_betas():
    # M = 1 with a single token: all the mass is on corner 0 -> Beta(1, kappa).
    p = np_sample(strategies.MIAM(kappa=7.0), m=1, single_token=True, seed=3)
    assert stats.kstest(p[:, 0], stats.beta(1, 7.0).cdf).pvalue > 1e-3
    # A wrong component (the flipped exponent of the web demo) is rejected.
    assert stats.kstest(p[:, 0], stats.beta(1, 1 / 7.0).cdf).pvalue < 1e-6
    # M = 1 with many tokens: half Beta(1, kappa), half Beta(kappa, 1).
    p = np_sample(strategies.MIAM(kappa=7.0), m=1, seed=4)
    assert stats.kstest(p[:, 0], mixture_cdf(7.0, 7.0)).pvalue > 1e-3


@pytest.mark.parametrize("single_token", [False, True])
def test_miam_corner_frequencies_match_weights(single_token):
    # With a very sharp kappa every draw sits next to its corner.
    p = np_sample(
        strategies.MIAM(kappa=2000.0), m=3, seed=11, single_token=single_token
    )
    corners = (p > 0.5).astype(int)
    codes = corners @ (2 ** np.arange(3))
    counts = np.bincount(codes, minlength=8)
    weights = np.full(8, 1 / (2 * 6))
    weights[0], weights[7] = (0.5, 0.0) if single_token else (0.25, 0.25)
    assert counts[weights == 0].sum() == 0
    nonzero = weights > 0
    chi2 = stats.chisquare(counts[nonzero], N * weights[nonzero])
    assert chi2.pvalue > 1e-3, (counts, chi2)
    # A wrong rule (uniform corners) would be rejected.
    assert (
        stats.chisquare(
            counts[nonzero], N * np.full(nonzero.sum(), 1 / nonzero.sum())
        ).pvalue
        < 1e-6
    )


def test_miam_masks_a_dominant_modality_more():
    # Modality 0: high score, flat (dominant); modality 1: low score, improving.
    state = dynamics_state(2, scores=[0.9, 0.6], derivatives=[0.005, 0.05])
    strategy = strategies.MIAM()
    r = keras.ops.convert_to_numpy(strategy.ratios(2, state))
    assert r[0] > 1 > r[1]
    p = np_sample(strategy, m=2, state=state)
    assert p[:, 0].mean() > p[:, 1].mean() + 0.1


def test_miam_without_scores_and_with_lambda_zero_is_the_beta_hypercube():
    state = dynamics_state(3, SCORES, DERIVS)
    beta = np_sample(strategies.BetaHypercube(kappa=10.0), seed=5)
    no_scores = np_sample(strategies.MIAM(kappa=10.0), seed=5)
    lam0 = np_sample(strategies.MIAM(kappa=10.0, lambda_=0.0), seed=5, state=state)
    np.testing.assert_allclose(no_scores, beta, atol=1e-6)
    np.testing.assert_allclose(lam0, beta, atol=1e-6)
    # The Beta hypercube ignores scores.
    np.testing.assert_allclose(
        np_sample(strategies.BetaHypercube(), seed=5, state=state), beta, atol=1e-6
    )


def test_ratio_guards_keep_r_positive_and_finite():
    strategy = strategies.MIAM()
    state = dynamics_state(3, scores=[0.0, 1e-12, 1e6], derivatives=[0.0, 0.0, 1e9])
    r = keras.ops.convert_to_numpy(strategy.ratios(3, state))
    assert np.all(np.isfinite(r)) and np.all(r > 0)
    p = np_sample(strategy, n=1000, state=state)
    assert np.all(np.isfinite(p)) and p.min() >= 0 and p.max() <= 1


def _integrate_2d(log_prob_fn, n=600):
    grid = (np.arange(n) + 0.5) / n
    pp = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    density = np.exp(keras.ops.convert_to_numpy(log_prob_fn(pp.astype("float32"))))
    return density.mean()


@pytest.mark.parametrize(
    "strategy,state",
    [
        (strategies.UniformHypercube(), None),
        (strategies.BetaHypercube(kappa=4.0), None),
        (strategies.MIAM(kappa=4.0), dynamics_state(2, [0.9, 0.6], [0.02, 0.04])),
    ],
)
def test_log_prob_integrates_to_one(strategy, state):
    total = _integrate_2d(lambda p: strategy.log_prob(p, state))
    assert abs(total - 1.0) < 0.01, total


def test_single_token_log_prob_integrates_to_one_and_has_no_all_ones_mass():
    strategy = strategies.MIAM(kappa=4.0)
    total = _integrate_2d(lambda p: strategy.log_prob(p, single_token=True))
    assert abs(total - 1.0) < 0.01
    near_ones = np.array([[0.999, 0.999]], "float32")
    near_zeros = np.array([[0.001, 0.001]], "float32")
    lp = lambda v: float(
        keras.ops.convert_to_numpy(strategy.log_prob(v, single_token=True))[0]
    )
    assert lp(near_zeros) > lp(near_ones) + 5


def test_dirichlet_log_prob_integrates_on_the_simplex_and_marginals():
    strategy = strategies.Dirichlet(alpha=2.0)
    n = 4000
    x = (np.arange(n) + 0.5) / n
    pp = np.stack([x, 1 - x], -1).astype("float32")
    total = np.exp(keras.ops.convert_to_numpy(strategy.log_prob(pp))).mean()
    assert abs(total - 1.0) < 0.01
    p = np_sample(strategies.Dirichlet(alpha=1.5), m=4, seed=2)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert stats.kstest(p[:, 0], stats.beta(1.5, 4.5).cdf).pvalue > 1e-3


def test_tfp_oracle_log_densities():
    tfp = pytest.importorskip(
        "tensorflow_probability.substrates.numpy",
        reason="tensorflow-probability's numpy substrate is not importable",
    )
    tfd = tfp.distributions
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, size=(200, 3)).astype("float32")
    state = dynamics_state(3, SCORES, DERIVS)
    strategy = strategies.MIAM(kappa=6.0, lambda_=1.5)
    a, b = reference_ab(6.0, 1.5, reference_ratios(SCORES, DERIVS))
    corners = np.array(list(itertools.product([0, 1], repeat=3)))
    weights = np.full(8, 1 / 12)
    weights[0] = weights[-1] = 0.25
    conc1 = np.where(corners == 1, a, 1.0)  # Beta(a, 1) or Beta(1, b)
    conc0 = np.where(corners == 1, 1.0, b)
    oracle = tfd.MixtureSameFamily(
        tfd.Categorical(probs=weights), tfd.Independent(tfd.Beta(conc1, conc0), 1)
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(strategy.log_prob(p, state)),
        oracle.log_prob(p.astype("float64")),
        rtol=2e-4,
        atol=2e-4,
    )
    dirichlet = strategies.Dirichlet(alpha=2.5)
    q = rng.dirichlet([1, 1, 1], size=50).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(dirichlet.log_prob(q)),
        tfd.Dirichlet([2.5] * 3).log_prob(q.astype("float64")),
        rtol=1e-3,
        atol=1e-3,
    )


def test_simple_strategies_match_their_definitions():
    c = np_sample(strategies.Constant(rate=0.3), n=10)
    np.testing.assert_allclose(c, 0.3, atol=1e-7)
    u = np_sample(strategies.Uniform(), seed=1)
    np.testing.assert_allclose(u[:, 0], u[:, 1])
    assert stats.kstest(u[:, 0], "uniform").pvalue > 1e-3
    h = np_sample(strategies.UniformHypercube(), seed=1)
    for m in range(3):
        assert stats.kstest(h[:, m], "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(h.T)[0, 1]) < 0.03
    d = np_sample(strategies.ModalityDropout(rate=0.3), seed=2)
    assert set(np.unique(d)) == {0.0, 1.0}
    np.testing.assert_allclose(d.mean(0), 0.3, atol=0.01)
    # Independent drops: the joint frequency is the product.
    assert abs((d[:, 0] * d[:, 1]).mean() - 0.09) < 0.01


def test_opm_follows_the_drop_rule():
    scores = np.array([0.9, 0.6, 0.75])
    rho = np.array(
        [np.mean([scores[m] / scores[j] for j in range(3) if j != m]) for m in range(3)]
    )
    q = np.where(rho > 1, 0.5 * (1 + 0.5 * np.tanh(rho - 1)), 0.0)
    strategy = strategies.OPM()
    state = dynamics_state(3, scores)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(strategy.drop_probabilities(3, state)), q, rtol=1e-5
    )
    # Draw many batches: dropping happens in a fraction p_exe of them.
    seed = keras.random.SeedGenerator(3)
    draws = [
        keras.ops.convert_to_numpy(strategy.sample(200, 3, seed=seed, state=state))
        for _ in range(300)
    ]
    executed = np.array([d.any() for d in draws])
    assert abs(executed.mean() - 0.7) < 0.09
    dropped = np.concatenate([d for d, e in zip(draws, executed) if e])
    np.testing.assert_allclose(dropped.mean(0), q, atol=0.02)
    # The weakest modality is never dropped, so no example loses everything.
    assert dropped[:, 1].max() == 0
    # No scores yet: every modality is drawn for dropping with probability
    # q_base in the executed batches (the authors' code), and an example that
    # would lose every modality keeps one: q_base - q_base^3 / 3 each.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(strategy.drop_probabilities(3)), [0.5] * 3
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(strategy.drop_probabilities(3, dynamics_state(3))),
        [0.5] * 3,
    )
    draws = [
        keras.ops.convert_to_numpy(strategy.sample(200, 3, seed=seed))
        for _ in range(200)
    ]
    dropped = np.concatenate([d for d in draws if d.any()])
    np.testing.assert_allclose(dropped.mean(0), 0.5 - 0.125 / 3, atol=0.03)
    assert not dropped.all(axis=1).any()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(strategy.mean(3)), 0.7 * (0.5 - 0.125 / 3), rtol=1e-5
    )
    # One modality: never dropped.
    one = keras.ops.convert_to_numpy(strategy.sample(500, 1, seed=seed))
    assert one.max() == 0


def test_serialization_round_trip_gives_identical_samples():
    state = dynamics_state(3, SCORES, DERIVS)
    for name, cls in strategies.STRATEGIES.items():
        original = strategies.get(name)
        restored = strategies.deserialize(strategies.serialize(original))
        assert isinstance(restored, cls) and restored == original
        assert type(cls.from_config(original.get_config())) is cls
        np.testing.assert_array_equal(
            np_sample(original, n=64, seed=9, state=state),
            np_sample(restored, n=64, seed=9, state=state),
        )
    custom = strategies.get({"name": "miam", "kappa": 3.0, "lambda_": 2.0})
    assert strategies.deserialize(strategies.serialize(custom)).kappa == 3.0


@pytest.mark.parametrize("lam_s,lam_d", [(1.0, 0.0), (0.0, 1.0), (3.0, 0.5)])
def test_separate_exponents_follow_the_authors_formula(lam_s, lam_d):
    # r_m = rho_s^lambda_s / rho_d^lambda_d; Beta(kappa r, 1), Beta(1, kappa / r).
    s, d = np.asarray(SCORES), np.asarray(DERIVS)
    rho_s, rho_d = s / stats.gmean(s), d / stats.gmean(d)
    r = rho_s**lam_s / rho_d**lam_d
    strategy = strategies.MIAM(kappa=4.0, lambda_s=lam_s, lambda_d=lam_d)
    state = dynamics_state(3, SCORES, DERIVS)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(strategy.ratios(3, state)), r, rtol=1e-5
    )
    p = np_sample(strategy, state=state, seed=11)
    for m in range(3):
        assert stats.kstest(p[:, m], mixture_cdf(4.0 * r[m], 4.0 / r[m])).pvalue > 1e-3
    # lambda_ sets both; an explicit lambda_s / lambda_d wins; all serialised.
    both = strategies.MIAM(lambda_=2.0)
    assert (both.lambda_s, both.lambda_d) == (2.0, 2.0)
    restored = strategies.deserialize(strategies.serialize(strategy))
    assert (restored.lambda_s, restored.lambda_d) == (lam_s, lam_d)


@pytest.mark.parametrize("mass", [0.5, 0.25, 0.9, 0.0])
def test_priority_corners_mass_sets_the_corner_weights(mass):
    # M = 3: all-zeros and all-ones get mass / 2 each, the 6 mixed corners
    # share the rest; 2 / 2^M = 0.25 weighs every corner 1/8.
    strategy = strategies.MIAM(kappa=200.0, priority_corners_mass=mass)
    w0, w1, w_other = strategy.corner_weights(3)
    np.testing.assert_allclose([w0, w1, w_other], [mass / 2, mass / 2, (1 - mass) / 6])
    # Sampled corners (kappa = 200 puts p within 0.03 of its corner).
    corners = np.round(np_sample(strategy, seed=3)).astype(int)
    codes = corners @ [1, 2, 4]
    counts = np.bincount(codes, minlength=8)
    expected = np.array([w0] + [w_other] * 6 + [w1]) * N
    keep = expected > 0
    assert counts[~keep].sum() == 0
    assert stats.chisquare(counts[keep], expected[keep]).pvalue > 1e-3
    # The analytic mean and the density agree with the weights.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(strategy.mean(3)),
        corners.mean(0),
        atol=0.01,
    )
    restored = strategies.deserialize(strategies.serialize(strategy))
    assert restored.priority_corners_mass == mass
    # M = 1: the two corners, 1/2 each, whatever the mass.
    np.testing.assert_allclose(strategy.corner_weights(1), [0.5, 0.5, 0.0])


def test_get_accepts_names_and_rejects_unknown_ones():
    assert isinstance(strategies.get("Modality-Dropout"), strategies.ModalityDropout)
    assert isinstance(strategies.get("uniform hypercube"), strategies.UniformHypercube)
    # A config dict's name is read the same way; the config is the arguments.
    beta = strategies.get({"name": "Beta-Hypercube", "kappa": 2.0})
    assert repr(beta) == "BetaHypercube(kappa=2.0, priority_corners_mass=0.5)"
    with pytest.raises(ValueError, match="Unknown masking strategy 'mae'"):
        strategies.get("mae")
    with pytest.raises(ValueError, match="Expected a strategy name"):
        strategies.get(3)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: strategies.MIAM(kappa=0), "kappa"),
        (lambda: strategies.MIAM(kappa=-1.0), "kappa"),
        (lambda: strategies.MIAM(kappa=float("nan")), "kappa"),
        (lambda: strategies.MIAM(lambda_=-1.0), "lambda_"),
        (lambda: strategies.MIAM(lambda_s=float("inf")), "lambda_s"),
        (lambda: strategies.MIAM(lambda_d=-0.5), "lambda_d"),
        (lambda: strategies.MIAM(priority_corners_mass=1.5), "priority_corners"),
        (lambda: strategies.BetaHypercube(priority_corners_mass=-0.1), "priority"),
        (lambda: strategies.BetaHypercube(kappa=0.0), "kappa"),
        (lambda: strategies.Constant(rate=1.5), "rate"),
        (lambda: strategies.Dirichlet(alpha=0.0), "alpha"),
        (lambda: strategies.OPM(p_exe=2.0), "p_exe"),
    ],
)
def test_bad_parameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_strategies_without_density_say_so():
    with pytest.raises(NotImplementedError, match="no density"):
        strategies.Uniform().log_prob(np.zeros((1, 2), "float32"))
