"""MIAMMasking: masking rates, missing data, guarantees, state, serialization."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_miam as km
from keras_miam import strategies
from tests.conftest import JIT
from tests.conftest import to_numpy

MODALITIES = ["a", "b", "c"]
COUNTS = {"a": 8, "b": 4, "c": 6}
D = 8


def make_tokens(batch, rng, counts=COUNTS, dim=D):
    return {
        m: rng.normal(size=(batch, t, dim)).astype("float32") for m, t in counts.items()
    }


def modality_keep_rates(layer, keep):
    keep = to_numpy(keep)
    return np.array(
        [keep[:, slice(*layer.token_slices[m])].mean() for m in layer.modalities]
    )


def test_empirical_masking_rate_equals_expected_rate(rng):
    layer = km.MIAMMasking(MODALITIES, strategy="miam", seed=1, ensure_visible=False)
    x = make_tokens(20_000, rng)
    layer(x)
    layer.update_dynamics(scores=[0.9, 0.6, 0.7], derivatives=[0.01, 0.08, 0.03])
    _, keep = layer(x, training=True)
    expected = layer.expected_mask_rates()
    np.testing.assert_allclose(
        1 - modality_keep_rates(layer, keep), expected, atol=0.01
    )
    assert expected[0] > expected[1]  # the dominant modality is masked more


@pytest.mark.parametrize(
    "name", ["uniform", "dirichlet", "modality_dropout", "uniform_hypercube"]
)
def test_masking_rate_matches_each_strategy(rng, name):
    layer = km.MIAMMasking(MODALITIES, strategy=name, seed=2, ensure_visible=False)
    _, keep = layer(make_tokens(10_000, rng), training=True)
    np.testing.assert_allclose(
        1 - modality_keep_rates(layer, keep), layer.expected_mask_rates(), atol=0.015
    )


def test_missing_and_non_finite_tokens_are_always_masked(rng):
    layer = km.MIAMMasking(MODALITIES, strategy="uniform", seed=3)
    x = make_tokens(512, rng)
    avail = {m: rng.uniform(size=(512, t)) > 0.3 for m, t in COUNTS.items()}
    x["b"][:7, 1] = np.nan
    x["c"][:5, 2, 3] = np.inf
    allowed = np.concatenate([avail[m] for m in MODALITIES], axis=1)
    allowed[:7, COUNTS["a"] + 1] = False
    allowed[:5, COUNTS["a"] + COUNTS["b"] + 2] = False
    for training in (True, False):
        out, keep = layer(x, mask=avail, training=training)
        keep = to_numpy(keep)
        assert not np.any(keep & ~allowed)
        assert np.all(np.isfinite(to_numpy(out)))
    np.testing.assert_array_equal(to_numpy(layer(x, mask=avail)[1]), allowed)


def test_at_least_one_available_token_stays_visible_even_when_p_is_one(rng):
    layer = km.MIAMMasking(MODALITIES, strategy=strategies.Constant(rate=1.0), seed=4)
    x = make_tokens(1000, rng)
    avail = {m: rng.uniform(size=(1000, t)) > 0.8 for m, t in COUNTS.items()}
    allowed = np.concatenate([avail[m] for m in MODALITIES], axis=1)
    _, keep = layer(x, mask=avail, training=True)
    keep = to_numpy(keep)
    has_any = allowed.any(1)
    np.testing.assert_array_equal(keep.sum(1), has_any.astype(int))
    assert not np.any(keep & ~allowed)
    # Without the guarantee everything is masked.
    bare = km.MIAMMasking(
        MODALITIES, strategy=strategies.Constant(rate=1.0), ensure_visible=False
    )
    assert to_numpy(bare(x, training=True)[1]).sum() == 0


def test_nothing_random_happens_at_inference(rng):
    layer = km.MIAMMasking(MODALITIES, seed=5)
    x = make_tokens(64, rng)
    out1, keep1 = layer(x, training=False)
    out2, keep2 = layer(x)
    np.testing.assert_array_equal(to_numpy(out1), to_numpy(out2))
    assert to_numpy(keep1).all() and to_numpy(keep2).all()
    np.testing.assert_allclose(
        to_numpy(out1), np.concatenate([x[m] for m in MODALITIES], 1), rtol=1e-6
    )
    # ... while training masks at random.
    _, keep3 = layer(x, training=True)
    assert not to_numpy(keep3).all()


def test_per_batch_draws_share_p(rng):
    x = {"a": rng.normal(size=(256, 64, 4)).astype("float32")}
    rates = {}
    for per_example in (True, False):
        layer = km.MIAMMasking(
            ["a"], strategy="uniform", seed=6, per_example=per_example
        )
        rates[per_example] = to_numpy(layer(x, training=True)[1]).mean(1)
    assert rates[True].std() > 0.2
    assert rates[False].std() < 0.1


@keras.saving.register_keras_serializable(package="keras_miam_tests")
def mean_prediction(y_true, y_pred):
    return y_pred


def keep_rate_model(strategy="miam", counts=COUNTS, seed=0, jit_compile=JIT):
    """A model whose metrics report the keep rate the compiled step applies."""
    inputs = {m: keras.Input((t, D), name=m) for m, t in counts.items()}
    layer = km.MIAMMasking(list(counts), strategy=strategy, seed=seed, name="masking")
    tokens, keep = layer(inputs)
    keep = ops.cast(keep, "float32")
    outputs = {
        "y": keras.layers.Dense(1, name="y")(
            keras.layers.GlobalAveragePooling1D()(tokens)
        )
    }
    for m in counts:
        start, stop = layer.token_slices[m]
        outputs[f"keep_{m}"] = keras.layers.Identity(name=f"keep_{m}")(
            ops.mean(keep[:, start:stop], axis=1, keepdims=True)
        )
    model = keras.Model(inputs, outputs)
    rate = lambda name: keras.metrics.MeanMetricWrapper(mean_prediction, name=name)
    model.compile(
        optimizer="adam",
        loss={"y": "mse"},
        metrics={f"keep_{m}": [rate("rate")] for m in counts},
        jit_compile=jit_compile,
    )
    return model, layer


def fit_data(n, counts=COUNTS):
    rng = np.random.default_rng(0)
    x = {m: rng.normal(size=(n, t, D)).astype("float32") for m, t in counts.items()}
    y = {"y": rng.normal(size=(n, 1)).astype("float32")}
    y.update({f"keep_{m}": np.zeros((n, 1), "float32") for m in counts})
    return x, y


class UpdateAt(keras.callbacks.Callback):
    """Calls update_dynamics at a given epoch start or batch end."""

    def __init__(self, scores, derivatives, epoch=None, batch=None):
        super().__init__()
        self.args = (scores, derivatives)
        self.epoch, self.batch = epoch, batch
        self.current_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch
        if epoch == self.epoch:
            self.model.get_layer("masking").update_dynamics(*self.args)

    def on_train_batch_end(self, batch, logs=None):
        if self.current_epoch == 0 and batch == self.batch:
            self.model.get_layer("masking").update_dynamics(*self.args)


def test_update_dynamics_between_epochs_changes_the_compiled_draws():
    model, layer = keep_rate_model()
    x, y = fit_data(2048)
    scores, derivs = [0.95, 0.3, 0.5], [0.001, 0.2, 0.05]
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=256,
        verbose=0,
        callbacks=[UpdateAt(scores, derivs, epoch=1)],
    )
    mask_rate = {m: 1 - np.array(history.history[f"keep_{m}_rate"]) for m in COUNTS}
    # Epoch 0: Beta hypercube, equal rates; epoch 1: the dominant 'a' masked more.
    assert abs(mask_rate["a"][0] - mask_rate["b"][0]) < 0.05
    assert mask_rate["a"][1] > mask_rate["b"][1] + 0.2
    expected = layer.expected_mask_rates()
    assert abs(mask_rate["a"][1] - expected[0]) < 0.05


def test_update_dynamics_between_batches_changes_the_compiled_draws():
    x, y = fit_data(2560)
    rates = {}
    for update in (False, True):
        model, _ = keep_rate_model(seed=3)
        callbacks = (
            [UpdateAt([0.95, 0.3, 0.5], [0.001, 0.2, 0.05], batch=0)] if update else []
        )
        history = model.fit(
            x, y, epochs=1, batch_size=128, verbose=0, callbacks=callbacks
        )
        rates[update] = 1 - history.history["keep_a_rate"][0]
    assert rates[True] > rates[False] + 0.15


def test_gradients_reach_the_mask_token(rng):
    model, layer = keep_rate_model(strategy=strategies.Constant(rate=0.9))
    x, y = fit_data(256)
    before = to_numpy(layer.mask_token).copy()
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert np.abs(to_numpy(layer.mask_token) - before).max() > 1e-4


def test_non_finite_tokens_reach_neither_outputs_nor_gradients(rng):
    """Tokens holding NaN or inf, fed straight into the layer, are masked:
    the loss, the mask token, the slot embedding and every layer after the
    masking stay finite through training, and the predictions too."""
    inputs = {m: keras.Input((t, D), name=m) for m, t in COUNTS.items()}
    tokens, _ = km.MIAMMasking(MODALITIES, seed=0, name="masking")(inputs)
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(tokens))
    model = keras.Model(inputs, out)
    model.compile("adam", "mse", jit_compile=JIT)
    x = make_tokens(128, rng)
    x["a"][0, 0, 0] = np.nan
    x["b"][1, 2, :] = np.inf
    x["c"][2, :, 3] = -np.inf
    history = model.fit(
        x, rng.normal(size=(128, 1)), batch_size=64, epochs=2, verbose=0
    )
    assert np.all(np.isfinite(history.history["loss"]))
    for weight in model.trainable_weights:
        assert np.all(np.isfinite(to_numpy(weight))), weight.path
    assert np.all(np.isfinite(model.predict(x, verbose=0)))


def test_set_visible_in_compiled_predict(rng):
    inputs = {m: keras.Input((t, D), name=m) for m, t in COUNTS.items()}
    layer = km.MIAMMasking(MODALITIES, positional_mask_tokens=False, name="masking")
    tokens, keep = layer(inputs)
    keep_f = ops.cast(ops.expand_dims(keep, -1), tokens.dtype)
    pooled = ops.sum(tokens * keep_f, axis=1) / ops.maximum(
        ops.sum(keep_f, axis=1), 1.0
    )
    model = keras.Model(inputs, pooled)
    model.compile(jit_compile=JIT)
    x = make_tokens(96, rng)
    layer.set_visible(["b"])
    only_b = model.predict(x, batch_size=32, verbose=0)
    np.testing.assert_allclose(only_b, x["b"].mean(1), rtol=1e-5, atol=1e-5)
    layer.set_visible({"a": [0, 1], "c": False})
    part = model.predict(x, batch_size=32, verbose=0)
    np.testing.assert_allclose(part, x["a"][:, :2].mean(1), rtol=1e-5, atol=1e-5)
    layer.reset_visible()
    full = model.predict(x, batch_size=32, verbose=0)
    np.testing.assert_allclose(
        full,
        np.concatenate([x[m] for m in MODALITIES], 1).mean(1),
        rtol=1e-5,
        atol=1e-5,
    )
    # Several views in one pass: block v of the batch sees selection v.
    tiled = {m: np.concatenate([v, v]) for m, v in x.items()}
    with layer.views([["a"], ["c"]]):
        both = model.predict(tiled, batch_size=192, verbose=0)
    np.testing.assert_allclose(both[:96], x["a"].mean(1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(both[96:], x["c"].mean(1), rtol=1e-5, atol=1e-5)
    assert to_numpy(layer(x)[1]).all()  # views were reset


def keep_mask_model(rng):
    inputs = keras.Input((6, D))
    masking = km.MIAMMasking(["x"], return_keep_mask=False, seed=0)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(masking(inputs)))
    x = rng.normal(size=(4, 6, D)).astype("float32")
    x[:, :2] = np.nan  # missing tokens: replaced by the mask token
    return model, masking, x


def test_without_keep_mask_the_keras_mask_hides_masked_tokens(rng):
    """`return_keep_mask=False`: the keep mask is the tokens' Keras mask, so
    `GlobalAveragePooling1D` averages the kept tokens only."""
    model, masking, x = keep_mask_model(rng)
    np.testing.assert_allclose(
        to_numpy(model(x)), x[:, 2:].mean(1), rtol=1e-5, atol=1e-6
    )
    masking.set_visible({"x": [5]})
    np.testing.assert_allclose(to_numpy(model(x)), x[:, 5], rtol=1e-5, atol=1e-6)


def test_without_keep_mask_a_compiled_predict_hides_masked_tokens(rng):
    """Also inside a compiled `predict` (TensorFlow's graph optimizer once
    turned the missing-value test into one that NaN passes)."""
    model, _, x = keep_mask_model(rng)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), x[:, 2:].mean(1), rtol=1e-5, atol=1e-6
    )


def test_a_saved_model_carries_no_evaluation_selection(tmp_path, rng):
    """Issue #24.1: a model saved while a selection is set loads with every
    token visible (the ready model and a user's functional model). Eager
    calls: compiled `predict` under a selection is tested above."""
    x = {"a": rng.normal(size=(8, 3, D)).astype("float32")}
    x["b"] = rng.normal(size=(8, 2, D)).astype("float32")
    inputs = {m: keras.Input(v.shape[1:], name=m) for m, v in x.items()}
    tokens, keep = km.MIAMMasking(["a", "b"], seed=0, name="masking")(inputs)
    pooled = km.layers.VisibleMeanPooling()(tokens, mask=keep)
    functional = keras.Model(inputs, keras.layers.Dense(2)(pooled))
    env = rng.normal(size=(8, 5)).astype("float32")
    ready = km.models.MultimodalTransformer(
        {
            "env": km.tokenizers.TabularTokenizer(D),
            "b": km.tokenizers.EmbeddingTokenizer(D),
        },
        num_outputs=2,
        num_layers=1,
    )
    data = {"env": env, "b": x["b"][:, 0]}
    for model, inputs in ((functional, x), (ready, data)):
        everything = to_numpy(model(inputs))
        layer = km.layers.get_masking_layer(model)
        layer.set_visible(["b"])
        assert not np.allclose(to_numpy(model(inputs)), everything)
        path = str(tmp_path / f"{model.name}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(
            to_numpy(loaded(inputs)), everything, rtol=1e-5, atol=1e-6
        )


def test_sequential_and_subclassed_models(rng):
    x = rng.normal(size=(128, 6, D)).astype("float32")
    y = rng.normal(size=(128, 1)).astype("float32")
    seq = keras.Sequential(
        [
            keras.Input((6, D)),
            km.MIAMMasking(["x"], strategy="uniform", return_keep_mask=False, seed=0),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )
    seq.compile("adam", "mse", jit_compile=JIT)
    seq.fit(x, y, epochs=1, verbose=0)
    assert seq.predict(x, verbose=0).shape == (128, 1)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.masking = km.MIAMMasking(["a", "b"], seed=0)
            self.head = keras.layers.Dense(1)

        def call(self, inputs, training=None):
            tokens, keep = self.masking(inputs, training=training)
            return self.head(ops.mean(tokens, axis=1))

    sub = Sub()
    data = {"a": x, "b": x[:, :2]}
    sub.compile("adam", "mse", jit_compile=JIT)
    sub.fit(data, y, epochs=1, verbose=0)
    assert sub.predict(data, verbose=0).shape == (128, 1)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(rng, policy):
    keras.mixed_precision.set_global_policy(policy)
    layer = km.MIAMMasking(MODALITIES, seed=0)
    out, keep = layer(make_tokens(16, rng), training=True)
    assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]
    assert keras.backend.standardize_dtype(keep.dtype) == "bool"
    assert layer.mask_token.dtype == "float32"
    assert np.all(np.isfinite(to_numpy(ops.cast(out, "float32"))))


def test_serialization_round_trip(rng, tmp_path):
    layer = km.MIAMMasking(MODALITIES, strategy={"name": "miam", "kappa": 4.0}, seed=8)
    x = make_tokens(32, rng)
    layer(x)
    clone = km.MIAMMasking.from_config(layer.get_config())
    clone(x)
    np.testing.assert_array_equal(
        layer.sample_probabilities(100, seed=1), clone.sample_probabilities(100, seed=1)
    )
    np.testing.assert_array_equal(
        to_numpy(layer(x, training=True)[1]), to_numpy(clone(x, training=True)[1])
    )
    assert clone.strategy == layer.strategy

    model, mlayer = keep_rate_model()
    xs, _ = fit_data(64)
    mlayer.update_dynamics([0.9, 0.5, 0.6], [0.01, 0.1, 0.02])
    mlayer.update_dynamics([0.91, 0.55, 0.62], [0.01, 0.05, 0.02])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    restored = loaded.get_layer("masking")
    before, after = mlayer.dynamics_state(), restored.dynamics_state()
    for key in ("scores", "derivatives", "history"):
        np.testing.assert_array_equal(before[key], after[key])
    assert after["num_updates"] == 2 and after["ready"]
    np.testing.assert_allclose(restored.mask_ratios(), mlayer.mask_ratios())
    np.testing.assert_allclose(
        to_numpy(loaded(xs)["y"]), to_numpy(model(xs)["y"]), rtol=1e-6
    )


def test_dynamics_helpers(rng):
    layer = km.MIAMMasking(["a", "b"], history_size=3)
    layer(make_tokens(4, rng, {"a": 2, "b": 2}))
    np.testing.assert_array_equal(layer.mask_ratios(), [1.0, 1.0])
    for k in range(4):
        layer.update_dynamics([0.5 + 0.1 * k, 0.5], [0.1, 0.1])
    np.testing.assert_allclose(
        layer.dynamics_history()[:, 0], [0.6, 0.7, 0.8], rtol=1e-6
    )
    p = layer.sample_probabilities(1000, seed=0)
    assert p.shape == (1000, 2) and p.min() >= 0 and p.max() <= 1
    layer.reset_dynamics()
    assert not layer.dynamics_state()["ready"] and len(layer.dynamics_history()) == 0


def test_bad_input_errors(rng):
    x = make_tokens(4, rng)
    with pytest.raises(ValueError, match="missing: \\['c'\\], unexpected: \\['z'\\]"):
        km.MIAMMasking(MODALITIES)({"a": x["a"], "b": x["b"], "z": x["c"]})
    with pytest.raises(ValueError, match="a list of 3 in the order"):
        km.MIAMMasking(MODALITIES)([x["a"], x["b"]])
    with pytest.raises(ValueError, match="same embedding size.*'a': 8, 'b': 8, 'c': 5"):
        km.MIAMMasking(MODALITIES)({**x, "c": x["c"][..., :5]})
    with pytest.raises(ValueError, match="shape \\(batch, tokens, dim\\)"):
        km.MIAMMasking(["a"])({"a": np.zeros((2, 3, 4, 5), "float32")})
    with pytest.raises(ValueError, match="non-empty list"):
        km.MIAMMasking([])
    with pytest.raises(ValueError, match="unique"):
        km.MIAMMasking(["a", "a"])
    with pytest.raises(ValueError, match="Unknown masking strategy 'best'"):
        km.MIAMMasking(MODALITIES, strategy="best")
    with pytest.raises(ValueError, match="kappa"):
        km.MIAMMasking(MODALITIES, strategy={"name": "miam", "kappa": 0.0})
    layer = km.MIAMMasking(MODALITIES)
    with pytest.raises(ValueError, match="must be built"):
        layer.update_dynamics([1, 1, 1], [1, 1, 1])
    layer(x)
    with pytest.raises(ValueError, match="finite"):
        layer.update_dynamics([0.5, np.nan, 0.5], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match=">= 0"):
        layer.update_dynamics([0.5, -0.1, 0.5], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="one value per modality"):
        layer.update_dynamics([0.5, 0.5], [0.1, 0.1])
    with pytest.raises(ValueError, match="Unknown modality 'd'"):
        layer.set_visible(["a", "d"])
    with pytest.raises(ValueError, match="empty selection"):
        layer.set_visible([])
    with pytest.raises(ValueError, match="must be in \\[0, 4\\)"):
        layer.set_visible({"b": [4]})
