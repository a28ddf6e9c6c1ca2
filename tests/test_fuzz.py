"""Property-based fuzzing (hypothesis) of the masking strategies and MIAMMasking.

Properties checked on every generated case:

- every strategy's sampled p is finite, in [0, 1], of shape (B, M), with the
  structure of its distribution (constant, shared rate, simplex, corners);
  its analytic mean is finite and in [0, 1]; MIAM's ratios are finite,
  positive, inside [1 / max_ratio, max_ratio] and geometric-mean normalised;
  OPM never drops every modality of an example;
- `MIAMMasking` never keeps a missing (or non-finite) token, keeps at least
  one token of every example that has an available token (and none of an
  example that has none), returns finite tokens equal to the input where
  kept and to the mask token (+ slot embedding) elsewhere, keeps exactly the
  available tokens at inference, and reads `set_views` blocks correctly;
- `update_dynamics` either refuses a score vector with a clear error or
  stores a state whose ratios and expected rates are finite;
- `visible_pattern` agrees with a reference built from the selection.

Scores and parameters include 0, 1e-30, 1e30, equal values and random
magnitudes; availability masks include examples with every token missing;
token values include NaN, +-inf, 1e30 and 1e-30.

Profiles. The default "ci" profile generates >= 1,000 cases in total
(deterministic: `derandomize=True`, no deadline). `KERAS_MIAM_FUZZ=long`
generates ten times more, with fresh random examples on each run.

Speed. Each case is one vectorised call: hypothesis draws parameters and
masks, the call samples a whole batch. On JAX and TensorFlow the sampling
runs in one compiled function per shape (`jax.jit`, with cheap XLA CPU
options, or `tf.function`); the strategies' numeric parameters go in as
tensors, so one program serves every drawn value. Every new shape costs an
XLA compilation (seconds each on a CPU) on JAX, so on the compiled backends
the batch is fixed at 64 examples, the strategies see M in {1, 2, 6} and
the layer structure (M, tokens per modality) is drawn from a fixed bank
covering the edges (M = 1 and 6, modalities of 1 and 10 tokens, all
single-token); on torch, which runs eagerly, B in 1..64, M in 1..6 and
token counts in 1..10 are drawn freely.
"""

import functools
import os

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from keras import ops

import keras_miam as km
from keras_miam import strategies
from keras_miam.missing import is_missing

BACKEND = keras.backend.backend()
COMPILED = BACKEND in ("jax", "tensorflow")

# ----------------------------------------------------------------------------
# Profiles.
# ----------------------------------------------------------------------------
PROFILE = os.environ.get("KERAS_MIAM_FUZZ", "ci").strip().lower() or "ci"
if PROFILE not in ("ci", "long"):
    raise ValueError(f"KERAS_MIAM_FUZZ must be 'ci' or 'long'; received {PROFILE!r}.")
settings.register_profile(
    "keras_miam_ci",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "keras_miam_long",
    parent=settings.get_profile("keras_miam_ci"),
    derandomize=False,
)
SCALE = 10 if PROFILE == "long" else 1

# Cases per test in the "ci" profile (sum >= 1000).
CASES = {
    "strategies": 250,
    "masking": 250,
    "dynamics": 200,
    "patterns": 300,
    "quickstart": 12,
}


def fuzz(test):
    return settings(
        settings.get_profile(f"keras_miam_{PROFILE}"),
        max_examples=CASES[test] * SCALE,
    )


# ----------------------------------------------------------------------------
# Compiled, shape-stable calls.
# ----------------------------------------------------------------------------
BATCH = 64  # the compiled batch on JAX / TensorFlow
COMPILED_M = (1, 2, 6)  # the modality counts drawn there
FAST_XLA = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}


def compile_fn(fn):
    """One compiled program per call site (its shapes never change)."""
    if BACKEND == "jax":
        import jax

        jitted = jax.jit(fn)
        cache = {}

        def call(*args):
            if "exe" not in cache:
                cache["exe"] = jitted.lower(*args).compile(compiler_options=FAST_XLA)
            return cache["exe"](*args)

        return call
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=False, reduce_retracing=True)
    return fn


def tensors(tree):
    return keras.tree.map_structure(lambda v: ops.convert_to_tensor(v), tree)


def numpy(tree):
    return keras.tree.map_structure(lambda v: np.asarray(ops.convert_to_numpy(v)), tree)


def seed_state(generator, seed):
    return np.array(
        [seed, 0], dtype=keras.backend.standardize_dtype(generator.state.dtype)
    )


# ----------------------------------------------------------------------------
# Drawn values.
# ----------------------------------------------------------------------------
SPECIAL = [0.0, 1e-30, 1e-6, 0.5, 1.0, 1e30]
score_value = st.one_of(
    st.sampled_from(SPECIAL),
    st.floats(0.0, 1.0),
    st.floats(-30.0, 30.0).map(lambda e: float(10.0**e)),
)


def score_vectors(m):
    """Length-m non-negative vectors: equal values, special values, mixtures."""
    return st.one_of(
        st.lists(score_value, min_size=m, max_size=m),
        score_value.map(lambda v: [v] * m),
    )


def log_uniform(low, high):
    return st.floats(np.log10(low), np.log10(high)).map(lambda e: float(10.0**e))


# Parameters of each strategy, set as attributes (tensors on compiled
# backends) on a default instance. The drawn values are first checked by the
# real constructor in the test.
PARAMETERS = {
    "constant": {"rate": st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))},
    "uniform": {},
    "dirichlet": {"alpha": log_uniform(1e-3, 1e3)},
    "modality_dropout": {
        "rate": st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
    },
    "opm": {
        "q_base": st.floats(0.0, 1.0),
        "strength": st.floats(0.0, 10.0),
        "p_exe": st.one_of(st.just(1.0), st.floats(0.0, 1.0)),
    },
    "uniform_hypercube": {},
    # kappa * max_ratio**lambda stays below the float32 maximum here (see
    # test_miam_mean_with_overflowing_beta_parameters for beyond).
    "beta_hypercube": {"kappa": log_uniform(1e-3, 1e6)},
    "miam": {"kappa": log_uniform(1e-3, 1e6), "lambda_": st.floats(0.0, 8.0)},
}
SINGLE_TOKEN_VARIANTS = {"miam", "beta_hypercube"}


@st.composite
def strategy_cases(draw):
    m = draw(st.sampled_from(COMPILED_M) if COMPILED else st.integers(1, 6))
    params = {
        name: {attr: draw(values) for attr, values in attrs.items()}
        for name, attrs in PARAMETERS.items()
    }
    return {
        "m": m,
        "batch": BATCH if COMPILED else draw(st.integers(1, 64)),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "params": params,
        "scores": draw(score_vectors(m)),
        "derivatives": draw(score_vectors(m)),
        "ready": draw(st.sampled_from([0.0, 1.0])),
    }


@functools.cache
def strategy_program(m, batch):
    """Samples every strategy (and its mean) for M = m in one program."""
    generator = keras.random.SeedGenerator(0)

    def run(seed, params, scores, derivatives, ready):
        state = {"scores": scores, "derivatives": derivatives, "ready": ready}
        out = {}
        with keras.StatelessScope(state_mapping=[(generator.state, seed)]):
            for name, attrs in params.items():
                strategy = strategies.get(name)
                for attr, value in attrs.items():
                    setattr(strategy, attr, value)
                singles = (False, True) if name in SINGLE_TOKEN_VARIANTS else (False,)
                for single in singles:
                    key = name + ("+single_token" if single else "")
                    out[key] = strategy.sample(
                        batch, m, seed=generator, state=state, single_token=single
                    )
                    out[key + "/mean"] = strategy.mean(m, state, single_token=single)
                if name == "miam":
                    out["miam/ratios"] = strategy.ratios(m, state)
                if name == "opm":
                    out["opm/q"] = strategy.drop_probabilities(m, state)
        return out

    return compile_fn(run), generator


@fuzz("strategies")
@given(case=strategy_cases())
def test_every_strategy_samples_finite_probabilities(case):
    m, batch = case["m"], case["batch"]
    # The drawn parameters are valid for the real constructors.
    for name, attrs in case["params"].items():
        strategies.get({"name": name, **attrs})
    program, generator = strategy_program(m, batch)
    params = case["params"]
    args = (
        seed_state(generator, case["seed"]),
        tensors(keras.tree.map_structure(np.float32, params)) if COMPILED else params,
        np.asarray(case["scores"], "float32"),
        np.asarray(case["derivatives"], "float32"),
        np.float32(case["ready"]),
    )
    if COMPILED:
        args = tensors(args)
    else:
        args = (args[0], args[1], *tensors(list(args[2:])))
    out = numpy(program(*args))

    for key, value in out.items():
        if "/" in key:
            continue
        p = value
        assert p.shape == (batch, m), key
        assert np.all(np.isfinite(p)), (key, p)
        assert np.all((p >= 0) & (p <= 1)), (key, p.min(), p.max())
        mean = out[key + "/mean"]
        assert mean.shape == (m,) and np.all(np.isfinite(mean)), (key, mean)
        assert np.all((mean >= 0) & (mean <= 1)), (key, mean)

    np.testing.assert_array_equal(
        out["constant"], np.float32(params["constant"]["rate"])
    )
    np.testing.assert_array_equal(out["uniform"], out["uniform"][:, :1].repeat(m, 1))
    np.testing.assert_allclose(out["dirichlet"].sum(1), 1.0, atol=1e-5)
    for name in ("modality_dropout", "opm"):
        assert set(np.unique(out[name])) <= {0.0, 1.0}, name
    if m >= 2:
        # OPM never drops every modality of an example; once scores exist it
        # never drops the weakest modality.
        assert not np.any(out["opm"].all(axis=1))
        floored = np.maximum(np.asarray(case["scores"], "float32"), np.float32(1e-6))
        weakest = floored == floored.min()
        if case["ready"]:
            assert not np.any(out["opm"][:, weakest])
    else:
        # A single modality is never dropped.
        assert not np.any(out["opm"])
    ratios = out["miam/ratios"]
    max_ratio = strategies.MIAM().max_ratio
    assert np.all(np.isfinite(ratios)) and np.all(ratios > 0), ratios
    assert np.all(ratios <= max_ratio * 1.0001) and np.all(ratios >= 0.9999 / max_ratio)
    if not case["ready"]:
        np.testing.assert_array_equal(ratios, 1.0)
    elif np.all(np.abs(np.log(ratios)) < np.log(max_ratio) - 1e-3):
        assert abs(np.sum(np.log(ratios))) < 1e-4 * m * (
            1 + np.abs(np.log(ratios)).max()
        )


# ----------------------------------------------------------------------------
# MIAMMasking.
# ----------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="keras_miam_fuzz")
class StateRates(strategies.MaskingStrategy):
    """A test strategy: p_m = min(s_m, 1), read from the layer's score state.

    Lets hypothesis set p exactly (0, 1e-30, 1, ...) through
    `update_dynamics`, to fuzz the layer's keep-mask logic on its own.
    """

    name = "state_rates"

    def sample(
        self, batch_size, num_modalities, seed=None, state=None, single_token=False
    ):
        p = ops.minimum(ops.cast(state["scores"], "float32"), 1.0)
        return ops.broadcast_to(p[None, :], (batch_size, num_modalities))

    def mean(self, num_modalities, state=None, single_token=False):
        return ops.minimum(ops.cast(state["scores"], "float32"), 1.0)


# (token counts per modality): the edges of M in 1..6 and of 1..10 tokens.
STRUCTURE_BANK = ((1,), (1, 1, 1), (4, 1), (2, 10, 1, 4, 7, 5))
DIM = 3
LAYER_KINDS = ("rates", "rates_no_guarantee", "miam")


def make_layer(kind, m):
    names = [f"m{i}" for i in range(m)]
    if kind.startswith("rates"):
        return km.MIAMMasking(
            names,
            strategy=StateRates(),
            seed=0,
            ensure_visible=kind == "rates",
        )
    return km.MIAMMasking(names, strategy="miam", seed=1)


@functools.cache
def masking_program(counts, batch):
    """The layers of LAYER_KINDS on one structure, called statelessly."""
    m = len(counts)
    names = [f"m{i}" for i in range(m)]
    layers = {kind: make_layer(kind, m) for kind in LAYER_KINDS}
    shapes = {n: (batch, c, DIM) for n, c in zip(names, counts)}
    for layer in layers.values():
        layer.build(shapes)

    def run(variables, x, avail):
        out = {}
        for kind, layer in layers.items():
            trainable, non_trainable = variables[kind]
            out[kind], _ = layer.stateless_call(
                trainable, non_trainable, x, mask=avail, training=True
            )
        # Inference through views (the "inference" variables hold them).
        trainable, non_trainable = variables["inference"]
        out["inference"], _ = layers["rates"].stateless_call(
            trainable, non_trainable, x, mask=avail, training=False
        )
        return out

    return compile_fn(run), layers


@st.composite
def masking_cases(draw):
    if COMPILED:
        counts = draw(st.sampled_from(STRUCTURE_BANK))
        batch = BATCH
    else:
        m = draw(st.integers(1, 6))
        counts = tuple(draw(st.lists(st.integers(1, 10), min_size=m, max_size=m)))
        batch = draw(st.integers(1, 64))
    m = len(counts)
    rate = st.sampled_from([0.0, 1e-30, 0.5, 1.0 - 1e-7, 1.0]) | st.floats(0.0, 1.0)
    return {
        "counts": counts,
        "batch": batch,
        "seed": draw(st.integers(0, 2**31 - 1)),
        "data_seed": draw(st.integers(0, 2**31 - 1)),
        # Fractions of: missing tokens, examples with every token missing,
        # modalities missing as a whole, non-finite / extreme values.
        "p_missing_token": draw(st.sampled_from([0.0, 0.3, 0.9, 1.0])),
        "p_missing_example": draw(st.sampled_from([0.0, 0.2, 1.0])),
        "p_missing_modality": draw(st.sampled_from([0.0, 0.3])),
        "p_bad_value": draw(st.sampled_from([0.0, 0.05, 0.5])),
        "rates": draw(
            st.one_of(
                st.lists(rate, min_size=m, max_size=m), rate.map(lambda v: [v] * m)
            )
        ),
        "scores": draw(score_vectors(m)),
        "derivatives": draw(score_vectors(m)),
        "ready": draw(st.booleans()),
        "views": draw(st.integers(1, 4)),
    }


BAD_VALUES = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 1e-30, 0.0], "float32")


def make_batch(case):
    """Tokens (with NaN / inf / extreme values) and availability masks."""
    rng = np.random.default_rng(case["data_seed"])
    counts, b = case["counts"], case["batch"]
    names = [f"m{i}" for i in range(len(counts))]
    x, avail = {}, {}
    example_missing = rng.uniform(size=b) < case["p_missing_example"]
    for name, c in zip(names, counts):
        values = rng.normal(size=(b, c, DIM)).astype("float32")
        bad = rng.uniform(size=values.shape) < case["p_bad_value"]
        values[bad] = rng.choice(BAD_VALUES, size=int(bad.sum()))
        ok = rng.uniform(size=(b, c)) >= case["p_missing_token"]
        ok &= rng.uniform(size=(b, 1)) >= case["p_missing_modality"]
        ok &= ~example_missing[:, None]
        x[name], avail[name] = values, ok
    return names, x, avail


def layer_variables(layer, case, kind, rng, selections=None):
    """(trainable, non_trainable) values for a stateless call: a random mask
    token and slot embedding, the drawn dynamics state (as `update_dynamics`
    stores it), the drawn views and seed."""
    m, t = layer.num_modalities, layer.num_tokens
    scores = case["rates"] if kind.startswith("rates") else case["scores"]
    derivatives = np.ones(m) if kind.startswith("rates") else case["derivatives"]
    history = np.zeros((layer.history_size, m), "float32")
    history[-1] = scores
    views = np.ones((layer.max_views, t), "float32")
    if selections:
        views[: len(selections)] = [layer.visible_pattern(s) for s in selections]
    state = {
        "scores": np.asarray(scores, "float32"),
        "derivatives": np.asarray(derivatives, "float32"),
        "dynamics_ready": np.float32(case["ready"] or kind.startswith("rates")),
        "score_history": history,
        "num_updates": np.float32(1.0),
        "view_patterns": views,
        "num_views": np.float32(len(selections) if selections else 1),
        "seed_generator_state": seed_state(layer.seed_generator, case["seed"]),
    }
    trainable = [
        rng.normal(size=tuple(v.shape)).astype("float32")
        for v in layer.trainable_variables
    ]
    non_trainable = [state[v.name] for v in layer.non_trainable_variables]
    return trainable, non_trainable


def view_selections(layer, rng, views):
    selections = []
    for _ in range(views):
        chosen = [n for n in layer.modalities if rng.uniform() < 0.6] or [
            layer.modalities[0]
        ]
        selections.append(
            {
                n: rng.uniform(size=layer.token_counts[i]) < 0.7
                for i, n in enumerate(layer.modalities)
                if n in chosen
            }
        )
    return selections


@fuzz("masking")
@given(case=masking_cases())
def test_masking_never_keeps_missing_tokens_and_keeps_one_per_example(case):
    counts, b = case["counts"], case["batch"]
    program, layers = masking_program(counts, b)
    names, x, avail = make_batch(case)
    rng = np.random.default_rng(case["seed"])
    variables = {
        kind: layer_variables(layer, case, kind, rng) for kind, layer in layers.items()
    }
    selections = view_selections(layers["rates"], rng, case["views"])
    variables["inference"] = layer_variables(
        layers["rates"], case, "rates", rng, selections
    )
    out = numpy(program(tensors(variables), tensors(x), tensors(avail)))

    clean = np.concatenate([x[n] for n in names], axis=1)
    allowed = np.concatenate([avail[n] for n in names], axis=1)
    allowed &= ~np.any(is_missing(clean, xp=np), axis=-1)
    clean = np.where(np.isfinite(clean), clean, 0.0)
    has_token = allowed.any(axis=1)
    modality_of = np.repeat(np.arange(len(counts)), counts)

    for kind, (tokens, keep) in out.items():
        layer = layers["rates" if kind == "inference" else kind]
        trainable = dict(
            zip([v.name for v in layer.trainable_variables], variables[kind][0])
        )
        fill = trainable["mask_token"] + trainable["slot_embedding"]
        assert keep.shape == allowed.shape and tokens.shape == clean.shape
        assert not np.any(keep & ~allowed), kind
        assert np.all(np.isfinite(tokens)), kind
        np.testing.assert_array_equal(tokens[keep], clean[keep])
        np.testing.assert_allclose(
            tokens, np.where(keep[..., None], clean, fill[None]), rtol=1e-6, atol=0
        )
        if kind in ("rates", "miam"):
            np.testing.assert_array_equal(keep.any(axis=1), has_token, err_msg=kind)

    # Inference keeps exactly the available tokens of the selected view.
    pattern = np.stack([layers["rates"].visible_pattern(s) for s in selections])
    view_index = np.arange(b) * len(selections) // b
    np.testing.assert_array_equal(out["inference"][1], allowed & pattern[view_index])

    # Exact p: p = 0 keeps every available token, p = 1 none (but the rescue).
    p = np.minimum(np.asarray(case["rates"], "float32"), 1.0)[modality_of]
    for kind in ("rates", "rates_no_guarantee"):
        keep = out[kind][1]
        assert np.all(keep[:, p == 0] == allowed[:, p == 0]), kind
        kept_at_one = keep[:, p == 1].sum(axis=1)
        if kind == "rates_no_guarantee":
            assert not np.any(kept_at_one)
        else:
            assert np.all(kept_at_one <= 1)
            rescued = kept_at_one == 1
            assert np.all(keep[rescued].sum(axis=1) == 1)


# ----------------------------------------------------------------------------
# update_dynamics: refuse clearly or keep a usable state.
# ----------------------------------------------------------------------------
F32_MAX = float(np.finfo("float32").max)
raw_value = st.one_of(
    st.sampled_from([0.0, -0.0, 1e-30, 1e30, -1e-30, -1.0, np.nan, np.inf, -np.inf]),
    st.floats(0.0, 1.0),
    st.floats(-30.0, 30.0).map(lambda e: float(10.0**e)),
)


@functools.cache
def dynamics_layers():
    tokens = {
        "a": np.zeros((1, 2, 2), "float32"),
        "b": np.zeros((1, 1, 2), "float32"),
        "c": np.zeros((1, 3, 2), "float32"),
    }
    layers = {}
    for name in ("miam", "opm"):
        layer = km.MIAMMasking(["a", "b", "c"], strategy=name, history_size=2)
        layer(tokens)
        layers[name] = layer
    return layers


@fuzz("dynamics")
@given(
    scores=st.lists(raw_value, min_size=3, max_size=3),
    derivatives=st.lists(raw_value, min_size=3, max_size=3),
    name=st.sampled_from(["miam", "opm"]),
)
def test_update_dynamics_refuses_clearly_or_keeps_a_usable_state(
    scores, derivatives, name
):
    layer = dynamics_layers()[name]
    layer.reset_dynamics()
    valid = all(np.isfinite(v) and v >= 0 for v in scores + derivatives)
    if not valid:
        with pytest.raises(ValueError, match="scores|derivatives"):
            layer.update_dynamics(scores, derivatives)
        assert layer.dynamics_state()["num_updates"] == 0
        return
    layer.update_dynamics(scores, derivatives)
    state = layer.dynamics_state()
    assert state["ready"] and state["num_updates"] == 1
    np.testing.assert_array_equal(state["scores"], np.float32(scores))
    np.testing.assert_array_equal(state["history"][-1], np.float32(scores))
    ratios = layer.mask_ratios()
    rates = layer.expected_mask_rates()
    # MIAM's r_m > 0; OPM's rho_m >= 0 (about 0 for a modality far behind).
    assert np.all(np.isfinite(ratios)) and np.all(
        ratios > 0 if name == "miam" else ratios >= 0
    )
    assert np.all(np.isfinite(rates)) and np.all((rates >= 0) & (rates <= 1)), rates


# ----------------------------------------------------------------------------
# visible_pattern.
# ----------------------------------------------------------------------------
PATTERN_COUNTS = {"a": 1, "b": 4, "c": 10}


@functools.cache
def pattern_layer():
    layer = km.MIAMMasking(list(PATTERN_COUNTS))
    layer({m: np.zeros((1, c, 2), "float32") for m, c in PATTERN_COUNTS.items()})
    return layer


@st.composite
def selections(draw):
    chosen = draw(
        st.lists(st.sampled_from(list(PATTERN_COUNTS)), min_size=1, unique=True)
    )
    selection = {}
    for name in chosen:
        count = PATTERN_COUNTS[name]
        selection[name] = draw(
            st.one_of(
                st.booleans(),
                st.lists(st.booleans(), min_size=count, max_size=count).map(np.array),
                st.lists(st.integers(0, count - 1), max_size=count),
            )
        )
    return selection


@fuzz("patterns")
@given(selection=selections())
def test_visible_pattern_matches_the_selection(selection):
    layer = pattern_layer()
    pattern = layer.visible_pattern(selection)
    offset = 0
    for name, count in PATTERN_COUNTS.items():
        part = pattern[offset : offset + count]
        offset += count
        value = selection.get(name, False)
        expected = np.zeros(count, bool)
        if isinstance(value, bool):
            expected[:] = value
        elif isinstance(value, np.ndarray):
            expected = value
        else:
            expected[list(value)] = True
        np.testing.assert_array_equal(part, expected, err_msg=name)
    assert pattern.dtype == bool and pattern.shape == (sum(PATTERN_COUNTS.values()),)


# ----------------------------------------------------------------------------
# Limits found by the fuzzer, fixed (targeted regressions).
# ----------------------------------------------------------------------------
def test_miam_mean_with_overflowing_beta_parameters():
    """kappa * r**lambda would pass float32's maximum (valid kappa and
    lambda): r**lambda is clipped at `max_ratio`, so the Beta parameters and
    the mean stay finite."""
    strategy = strategies.MIAM(kappa=10.0, lambda_=16.0)
    state = strategies.dynamics_state(2, scores=[1.0, 1e-3], derivatives=[1e-3, 1.0])
    a, b = ops.convert_to_numpy(strategy.beta_parameters(2, state))
    # Unclipped, r_0**16 = (1e3)**16 = 1e48 overflows float32.
    np.testing.assert_allclose([a[0], b[1]], 10.0 * strategy.max_ratio, rtol=1e-5)
    mean = ops.convert_to_numpy(strategy.mean(2, state))
    assert np.all(np.isfinite(mean)), mean


def test_update_dynamics_refuses_scores_beyond_float32():
    """A finite float64 score above the float32 maximum becomes inf when
    stored; it must be refused like any other non-finite score."""
    layer = dynamics_layers()["miam"]
    layer.reset_dynamics()
    with pytest.raises(ValueError, match="scores"):
        layer.update_dynamics([1e39, 0.5, 0.5], [0.1, 0.1, 0.1])


# ----------------------------------------------------------------------------
# The README Quickstart (FillMissing -> user Dense -> MIAMMasking ->
# VisibleMeanPooling), trained and evaluated on random missingness.
# ----------------------------------------------------------------------------
QS_BATCH = 16


@functools.cache
def quickstart_model():
    """One small Quickstart model per run (one compiled step per backend)."""
    inputs = {
        "env": keras.Input((6,), name="env"),
        "image": keras.Input((4, 4, 2), name="image"),
    }
    env_x, env_ok = km.layers.FillMissing()(inputs["env"])
    img_x, img_ok = km.layers.FillMissing()(inputs["image"])
    env = keras.layers.Dense(8, activation="relu")(env_x)
    img = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(img_x))
    masking = km.MIAMMasking(["env", "image"], seed=0, name="masking")
    tokens, keep = masking(
        {"env": env, "image": img}, mask={"env": env_ok, "image": img_ok}
    )
    pooled = km.layers.VisibleMeanPooling()(tokens, mask=keep)
    model = keras.Model(inputs, keras.layers.Dense(3)(pooled))
    model.compile("adamw", keras.losses.BinaryCrossentropy(from_logits=True))
    return model


MARKERS = (np.nan, np.inf, -np.inf, -3.4e38, 1e11)


@st.composite
def missingness(draw):
    """Per case: a seed, a rate of single missing values, of whole missing
    modalities and of whole missing examples, and which markers are used."""
    return {
        "seed": draw(st.integers(0, 2**16)),
        "values": draw(st.sampled_from([0.0, 0.05, 0.5, 1.0])),
        "modalities": draw(st.sampled_from([0.0, 0.3, 1.0])),
        "examples": draw(st.sampled_from([0.0, 0.25, 1.0])),
        "markers": draw(st.lists(st.sampled_from(range(5)), min_size=1, max_size=5)),
        "scores": draw(st.sampled_from([None, (1.0, 0.0), (0.9, 0.6), (1e-30, 1e30)])),
    }


@fuzz("quickstart")
@given(case=missingness())
def test_quickstart_stays_finite_under_any_missingness(case):
    model = quickstart_model()
    rng = np.random.default_rng(case["seed"])
    x = {
        "env": rng.normal(size=(QS_BATCH, 6)).astype("float32"),
        "image": rng.normal(size=(QS_BATCH, 4, 4, 2)).astype("float32"),
    }
    markers = np.array([MARKERS[i] for i in case["markers"]], "float32")
    for value in x.values():
        flat = value.reshape(QS_BATCH, -1)
        hit = rng.uniform(size=flat.shape) < case["values"]
        flat[hit] = rng.choice(markers, size=hit.sum())
        flat[rng.uniform(size=QS_BATCH) < case["modalities"]] = rng.choice(markers)
    nothing = rng.uniform(size=QS_BATCH) < case["examples"]
    for value in x.values():
        value.reshape(QS_BATCH, -1)[nothing] = rng.choice(markers)
    y = (rng.uniform(size=(QS_BATCH, 3)) < 0.5).astype("float32")
    masking = model.get_layer("masking")
    if case["scores"] is not None:
        masking.update_dynamics(case["scores"], [0.01, 0.02])
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss), (loss, case)
    for v in model.weights + model.optimizer.variables:
        assert np.isfinite(ops.convert_to_numpy(v)).all(), (v.path, case)
    logits = model.predict_on_batch(x)
    assert np.isfinite(logits).all(), case
    with masking.views([["env"]]):  # nothing visible where env is missing
        assert np.isfinite(model.predict_on_batch(x)).all(), case
