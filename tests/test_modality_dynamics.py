"""ModalityDynamics: unimodal scores -> MIAMMasking state, inside compiled fit."""

import keras
import numpy as np
import pytest
from scipy import stats

import keras_miam as km
from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation import view_predictions
from keras_miam.layers import find_masking_layers
from keras_miam.layers import get_masking_layer

MODALITIES = ("strong", "weak")
TOKENS, FEATURES = 4, 3


# ----------------------------------------------------------------------------
# A tiny two-modality task: "strong" alone gives the labels, "weak" is a noisy
# correlate.
# ----------------------------------------------------------------------------
def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    y = (z > 0).astype("float32")
    strong = np.zeros((n, TOKENS, FEATURES), "float32")
    strong[:, :, :2] = z[:, None, :] + 0.05 * rng.normal(size=(n, TOKENS, 2))
    weak = rng.normal(size=(n, TOKENS, FEATURES)).astype("float32")
    weak[:, :, :2] += 0.15 * (2 * y[:, None, :] - 1)
    return {"strong": strong, "weak": weak}, y


@keras.saving.register_keras_serializable(package="tests")
class KeepRateProbe(keras.layers.Layer):
    """Pass-through that records, in training, the keep rate of each modality.

    It sees the keep mask the compiled train step actually applied, so the
    test observes the masking rates in force, not the layer's variables.
    """

    def __init__(self, slices, **kwargs):
        super().__init__(**kwargs)
        self.slices = [tuple(s) for s in slices]

    def build(self, input_shape):
        m = len(self.slices)
        self.total = self.add_weight(
            name="total", shape=(m,), initializer="zeros", trainable=False
        )
        self.count = self.add_weight(
            name="count", shape=(), initializer="zeros", trainable=False
        )

    def call(self, inputs, training=None):
        tokens, keep = inputs
        if training:
            keep = keras.ops.cast(keep, "float32")
            rates = keras.ops.stack(
                [keras.ops.mean(keep[:, a:b]) for a, b in self.slices]
            )
            self.total.assign(self.total + rates)
            self.count.assign(self.count + 1.0)
        return tokens

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "slices": self.slices}


class KeepRateLogger(keras.callbacks.Callback):
    """Logs the measured keep rates and the expected ones (state in force)."""

    def on_epoch_begin(self, epoch, logs=None):
        model = self.model  # JAX: sync before reading / assigning variables
        masking = model.get_layer("masking")
        self.expected = 1.0 - masking.expected_mask_rates()
        probe = model.get_layer("probe")
        probe.total.assign(np.zeros(len(MODALITIES), "float32"))
        probe.count.assign(0.0)

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        probe = model.get_layer("probe")
        rates = keras.ops.convert_to_numpy(probe.total) / float(
            keras.ops.convert_to_numpy(probe.count)
        )
        masking = model.get_layer("masking")
        for i, name in enumerate(MODALITIES):
            logs[f"keep_{name}"] = float(rates[i])
            logs[f"expected_keep_{name}"] = float(self.expected[i])
        logs["ready"] = float(masking.dynamics_state()["ready"])
        logs["num_views"] = float(keras.ops.convert_to_numpy(masking.num_views))


class BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def make_model(
    strategy="miam", head="sigmoid", seed=1, probe=True, masking_name="masking"
):
    inputs = {m: keras.Input((TOKENS, FEATURES), name=m) for m in MODALITIES}
    tokens = {m: keras.layers.Dense(8, name=f"tok_{m}")(inputs[m]) for m in inputs}
    x, keep = km.MIAMMasking(
        list(MODALITIES), strategy=strategy, seed=seed, name=masking_name
    )(tokens)
    if probe:
        slices = [(i * TOKENS, (i + 1) * TOKENS) for i in range(len(MODALITIES))]
        x = KeepRateProbe(slices, name="probe")([x, keep])
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    if head == "sigmoid":
        out = keras.layers.Dense(2, activation="sigmoid")(x)
        loss = "binary_crossentropy"
    elif head == "softmax":
        out = keras.layers.Dense(3, activation="softmax")(x)
        loss = "sparse_categorical_crossentropy"
    else:  # regression
        out = keras.layers.Dense(1)(x)
        loss = "mse"
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.Adam(1e-2), loss)
    return model


X_TRAIN, Y_TRAIN = make_data(1024, seed=0)
X_VAL, Y_VAL = make_data(256, seed=1)


# ----------------------------------------------------------------------------
# The derivative estimate and the AUC.
# ----------------------------------------------------------------------------
def check_estimator_basics(cb):
    """What every derivative estimator (window or EMA, epsilon 1e-3) gives."""
    # Fewer than two scores: epsilon (unknown, the layer stays inactive).
    np.testing.assert_allclose(cb.estimate_derivatives([[0.7, 0.6]]), [1e-3] * 2)
    # Two scores: the plain finite difference, absolute value.
    np.testing.assert_allclose(
        cb.estimate_derivatives([[0.5, 0.9], [0.6, 0.7]]), [0.1, 0.2]
    )
    # A straight line: its slope exactly.
    t = np.arange(6)[:, None]
    lines = np.concatenate([0.5 + 0.02 * t, 0.9 - 0.05 * t], axis=1)
    np.testing.assert_allclose(cb.estimate_derivatives(lines), [0.02, 0.05])


def test_derivative_estimator_on_known_sequences():
    cb = km.ModalityDynamics((X_VAL, Y_VAL), smoothing=3, epsilon=1e-3)
    check_estimator_basics(cb)
    # Window 3: (s_t - s_{t-2}) / 2, the middle score does not matter.
    noisy = np.array([[0.1], [0.5], [0.9], [0.2], [0.5]])
    np.testing.assert_allclose(cb.estimate_derivatives(noisy), [0.2])
    # Window 4: least-squares weights (-3, -1, 1, 3) / 10.
    cb4 = km.ModalityDynamics((X_VAL, Y_VAL), smoothing=4)
    expected = abs(np.dot([-3, -1, 1, 3], noisy[-4:, 0]) / 10)
    np.testing.assert_allclose(cb4.estimate_derivatives(noisy), [expected])
    # Plateaus are floored at epsilon; the result is strictly positive.
    flat = np.array([[0.8, 0.3], [0.8, 0.3], [0.80001, 0.3]])
    d = cb.estimate_derivatives(flat)
    np.testing.assert_allclose(d, [1e-3, 1e-3])
    assert np.all(d > 0)
    # Measured every 2 epochs: per epoch.
    cb2 = km.ModalityDynamics((X_VAL, Y_VAL), every=2)
    np.testing.assert_allclose(cb2.estimate_derivatives([[0.5], [0.7]]), [0.1])


def test_ema_derivative_on_known_sequences():
    cb = km.ModalityDynamics((X_VAL, Y_VAL), ema_decay=0.5, epsilon=1e-3)
    assert km.ModalityDynamics((X_VAL, Y_VAL)).ema_decay is None  # the default
    check_estimator_basics(cb)
    # Differences 0.4, 0.4, -0.7, 0.3 weighted 1/8, 1/4, 1/2, 1 (sum 15/8):
    # every difference counts, the latest most (the window of 3 says 0.2).
    noisy = np.array([[0.1], [0.5], [0.9], [0.2], [0.5]])
    expected = (0.4 / 8 + 0.4 / 4 - 0.7 / 2 + 0.3) / (15 / 8)
    np.testing.assert_allclose(cb.estimate_derivatives(noisy), [abs(expected)])
    # A jump then a plateau: the EMA decays geometrically, the window of 3
    # drops to the floor two updates after the jump.
    jump = np.array([[0.5], [0.6]] + [[0.6]] * 3)
    window = km.ModalityDynamics((X_VAL, Y_VAL), epsilon=1e-3)
    np.testing.assert_allclose(window.estimate_derivatives(jump), [1e-3])
    np.testing.assert_allclose(
        cb.estimate_derivatives(jump), [0.1 * 0.125 / (15 / 8)], rtol=1e-6
    )
    # Measured every 2 epochs: per epoch.
    cb2 = km.ModalityDynamics((X_VAL, Y_VAL), every=2, ema_decay=0.9)
    np.testing.assert_allclose(cb2.estimate_derivatives([[0.5], [0.7]]), [0.1])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"smoothing": 1},
        {"epsilon": 0.0},
        {"epsilon": float("nan")},
        {"every": 0},
        {"warmup_epochs": -1},
        {"batch_size": 0},
        {"max_validation_samples": 0},
        {"verbose": 2},
        {"ema_decay": 0.0},
        {"ema_decay": 1.0},
        {"ema_decay": "0.5"},
        {"ema_decay": True},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        km.ModalityDynamics((X_VAL, Y_VAL), **kwargs)


# ----------------------------------------------------------------------------
# Training scenarios. Compiling a model costs seconds, so one MIAM model is
# trained once (module fixture) and reused by the later scenarios; each of
# them starts from `reset_dynamics()`.
# ----------------------------------------------------------------------------
def fit(model, epochs, callbacks, batch_size=64):
    return model.fit(
        X_TRAIN,
        Y_TRAIN,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=callbacks,
    ).history


@pytest.fixture(scope="module")
def miam_run():
    keras.utils.set_random_seed(0)
    # lambda_ = 2 widens the gap between the masking rates (the test's
    # margin against sampling noise); the dynamics are the default ones.
    model = make_model(strategy=km.strategies.MIAM(kappa=10.0, lambda_=2.0))
    history = fit(model, 6, [km.ModalityDynamics((X_VAL, Y_VAL)), KeepRateLogger()])
    layer = model.get_layer("masking")
    state = layer.dynamics_state()
    patterns = keras.ops.convert_to_numpy(layer.view_patterns)
    return model, history, state, patterns


def test_dominant_modality_is_masked_more_in_the_compiled_train_step(miam_run):
    _, history, state, patterns = miam_run
    epochs = 6
    keys = [f"val_{m}_auc" for m in MODALITIES]
    keys += [f"{m}_mask_ratio" for m in MODALITIES]
    keys += [f"{m}_score_derivative" for m in MODALITIES]
    for key in keys:  # History: one finite value per epoch
        assert len(history[key]) == epochs, key
        assert np.all(np.isfinite(history[key])), key
    assert min(history["val_strong_auc"]) > 0.9
    assert max(history["val_weak_auc"]) < 0.85

    # One score after the first epoch: no derivative yet, r = 1, so the
    # first two epochs train with equal masking.
    assert history["strong_mask_ratio"][0] == history["weak_mask_ratio"][0] == 1.0
    for epoch in (0, 1):
        assert history["expected_keep_strong"][epoch] == pytest.approx(
            history["expected_keep_weak"][epoch]
        )
    # Then the dominant modality (high, flat score) has r > 1.
    assert history["strong_mask_ratio"][-1] > 1.0 > history["weak_mask_ratio"][-1]

    # The masking that the compiled train step applied follows the state in
    # force (expected keep rate = 1 - E[p_m] from the layer's variables at
    # the start of the epoch). A lost update (r = 1 in the step, or a state
    # one epoch late) fails these checks.
    late = slice(2, epochs)
    for m in MODALITIES:
        measured, expected = history[f"keep_{m}"], history[f"expected_keep_{m}"]
        for epoch in range(2, epochs):
            assert measured[epoch] == pytest.approx(expected[epoch], abs=0.08), (
                epoch,
                m,
            )
        assert np.mean(measured[late]) == pytest.approx(
            np.mean(expected[late]), abs=0.04
        ), m
    gap = np.mean(history["keep_weak"][late]) - np.mean(history["keep_strong"][late])
    expected_gap = np.mean(history["expected_keep_weak"][late]) - np.mean(
        history["expected_keep_strong"][late]
    )
    assert expected_gap > 0.1
    assert gap > 0.5 * expected_gap

    # The layer holds the history (what was logged); the views are reset.
    assert state["num_updates"] == epochs and state["ready"]
    np.testing.assert_allclose(
        state["history"],
        np.stack([history["val_strong_auc"], history["val_weak_auc"]], 1),
        rtol=1e-6,
    )
    assert history["num_views"] == [1.0] * epochs
    np.testing.assert_array_equal(patterns, 1.0)


def test_warmup_and_every(miam_run):
    model = miam_run[0]
    layer = model.get_layer("masking")
    layer.reset_dynamics()
    epochs = 5
    dynamics = km.ModalityDynamics((X_VAL, Y_VAL), warmup_epochs=3, every=2)
    history = fit(model, epochs, [dynamics, KeepRateLogger()])
    # Updates at the end of epochs 0, 2, 4; keys at every epoch.
    assert layer.dynamics_state()["num_updates"] == 3
    for key in ("val_strong_auc", "weak_mask_ratio", "strong_score_derivative"):
        assert len(history[key]) == epochs
    assert history["val_strong_auc"][1] == history["val_strong_auc"][0]
    # r = 1 while warming up: epochs 1-3 train with the state of epochs 0-2.
    assert history["ready"] == [0.0, 0.0, 1.0, 1.0, 1.0]
    for epoch in (0, 1):
        assert history["strong_mask_ratio"][epoch] == 1.0
        assert history["weak_mask_ratio"][epoch] == 1.0
    for epoch in (0, 1, 2):
        assert history["expected_keep_strong"][epoch] == pytest.approx(
            history["expected_keep_weak"][epoch]
        )
    assert history["strong_mask_ratio"][2] != 1.0
    # The derivative of two scores two epochs apart, per epoch.
    for m in MODALITIES:
        s = history[f"val_{m}_auc"]
        assert history[f"{m}_score_derivative"][2] == pytest.approx(
            max(abs(s[2] - s[0]) / 2, 1e-3), rel=1e-5
        )


def test_opm_reads_the_scores():
    model = make_model(strategy="opm")
    history = fit(
        model,
        4,
        [km.ModalityDynamics((X_VAL, Y_VAL)), KeepRateLogger()],
        batch_size=128,
    )
    s_strong = np.array(history["val_strong_auc"])
    s_weak = np.array(history["val_weak_auc"])
    # OPM's rho from the stored scores, once two scores exist.
    np.testing.assert_allclose(
        history["strong_mask_ratio"][1:], (s_strong / s_weak)[1:], rtol=1e-5
    )
    np.testing.assert_allclose(
        history["weak_mask_ratio"][1:], (s_weak / s_strong)[1:], rtol=1e-5
    )
    # Before (the layer is ready at the end of epoch 2) every modality is
    # dropped at q_base, as in the authors' code; then the strong modality
    # is dropped in some steps and the weak one never.
    assert max(history["keep_strong"][:2] + history["keep_weak"][:2]) < 0.95
    assert history["keep_weak"][2:] == [1.0] * 2
    assert max(history["keep_strong"][2:]) < 0.95


# ----------------------------------------------------------------------------
# Save / reload / resume.
# ----------------------------------------------------------------------------
def assert_same_state(a, b):
    assert a["num_updates"] == b["num_updates"]
    assert a["ready"] == b["ready"]
    for key in ("scores", "derivatives", "history"):
        np.testing.assert_array_equal(a[key], b[key])


def test_save_reload_and_resume(miam_run, tmp_path):
    model = miam_run[0]
    layer = model.get_layer("masking")
    layer.reset_dynamics()
    fit(model, 2, [km.ModalityDynamics((X_VAL, Y_VAL))], batch_size=128)
    before = layer.dynamics_state()
    assert before["num_updates"] == 2 and before["ready"]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    loaded_layer = loaded.get_layer("masking")
    assert_same_state(loaded_layer.dynamics_state(), before)
    np.testing.assert_allclose(loaded_layer.mask_ratios(), layer.mask_ratios())

    loaded.fit(
        X_TRAIN,
        Y_TRAIN,
        batch_size=128,
        epochs=1,
        verbose=0,
        callbacks=[km.ModalityDynamics((X_VAL, Y_VAL))],
    )
    after = loaded_layer.dynamics_state()
    assert after["num_updates"] == 3 and after["ready"]
    np.testing.assert_array_equal(after["history"][:2], before["history"])
    # The new derivative used the two stored scores and the new one.
    cb = km.ModalityDynamics((X_VAL, Y_VAL))
    np.testing.assert_allclose(
        after["derivatives"], cb.estimate_derivatives(after["history"]), rtol=1e-6
    )


class StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def test_backup_and_restore_restores_the_dynamics(miam_run, tmp_path):
    model = miam_run[0]
    layer = model.get_layer("masking")
    layer.reset_dynamics()
    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(
            model,
            3,
            [
                km.ModalityDynamics((X_VAL, Y_VAL)),
                keras.callbacks.BackupAndRestore(backup),
                StopAfter(1),
            ],
        )
    interrupted = layer.dynamics_state()
    assert interrupted["num_updates"] == 2
    layer.reset_dynamics()  # forget; the backup must bring it back
    history = fit(
        model,
        3,
        [km.ModalityDynamics((X_VAL, Y_VAL)), keras.callbacks.BackupAndRestore(backup)],
    )
    assert len(history["val_strong_auc"]) == 1  # resumed at the last epoch
    state = layer.dynamics_state()
    assert state["num_updates"] == 3
    np.testing.assert_array_equal(state["history"][:2], interrupted["history"])


# ----------------------------------------------------------------------------
# Scores against references computed one modality at a time.
# ----------------------------------------------------------------------------
def reference_predictions(model, x, layer=None):
    """Predictions with `set_visible([m])`, in batches of 256 examples (the
    same compiled shape as the callback's tiled 2 x 128 batches)."""
    layer = layer or get_masking_layer(model)
    preds = {}
    for m in layer.modalities:
        layer.set_visible([m])
        preds[m] = np.concatenate(
            [
                model.predict_on_batch(data_lib.take_examples(x, slice(i, i + 256)))
                for i in range(0, data_lib.num_examples(x), 256)
            ]
        )
        layer.reset_visible()
    return preds


def measure(callback, model):
    callback.set_model(model)
    callback.on_train_begin()
    logs = {}
    callback.on_epoch_end(0, logs)
    callback.on_train_end()
    return logs


def bce(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_scores_match_one_modality_at_a_time(miam_run):
    model = miam_run[0]
    preds = reference_predictions(model, X_VAL)
    metrics = {
        "auc": "auc",
        "kauc": keras.metrics.AUC(multi_label=True, name="kauc"),
        "binary_accuracy": "binary_accuracy",
        "loss_score": "loss",
    }
    for name, metric in metrics.items():
        logs = measure(km.ModalityDynamics((X_VAL, Y_VAL), metric=metric), model)
        for m in MODALITIES:
            p = preds[m]
            if name == "auc":
                expected = np.mean(
                    [
                        stats.mannwhitneyu(
                            p[Y_VAL[:, j] == 1, j], p[Y_VAL[:, j] == 0, j]
                        ).statistic
                        / (Y_VAL[:, j].sum() * (1 - Y_VAL[:, j]).sum())
                        for j in range(2)
                    ]
                )
            elif name == "kauc":
                ref = keras.metrics.AUC(multi_label=True)
                ref.update_state(Y_VAL, p)
                expected = float(keras.ops.convert_to_numpy(ref.result()))
            elif name == "binary_accuracy":
                expected = np.mean((p > 0.5) == (Y_VAL > 0.5))
            else:
                expected = 1.0 / (1.0 + bce(Y_VAL, p))
            assert logs[f"val_{m}_{name}"] == pytest.approx(expected, abs=1e-5), (
                name,
                m,
            )
        assert abs(logs[f"val_strong_{name}"] - logs[f"val_weak_{name}"]) > 1e-2


def test_last_batch_is_padded_and_views_match_set_visible(miam_run):
    model = miam_run[0]
    preds = reference_predictions(model, X_VAL)
    # Forward passes of 100 = 2 views x 50 examples; 256 = 5 x 50 + 6: the
    # last batch is padded.
    views = view_predictions.predict_views(
        model, X_VAL, list(MODALITIES), batch_size=100
    )
    for m, view in zip(MODALITIES, views):
        assert view.shape == preds[m].shape
        np.testing.assert_allclose(view, preds[m], atol=1e-5)
    layer = model.get_layer("masking")
    assert float(keras.ops.convert_to_numpy(layer.num_views)) == 1.0


def test_nan_validation_labels_are_left_out_of_the_auc(miam_run):
    """Unobserved labels (NaN) are left out of each output's AUC; other
    metrics refuse them with a clear error."""
    model = miam_run[0]
    preds = reference_predictions(model, X_VAL)
    y_val = Y_VAL.copy()
    y_val[np.random.default_rng(5).uniform(size=y_val.shape) < 0.3] = np.nan
    logs = measure(km.ModalityDynamics((X_VAL, y_val)), model)
    for m in MODALITIES:
        p = preds[m]
        expected = []
        for j in range(2):
            seen = ~np.isnan(y_val[:, j])
            yj, pj = y_val[seen, j], p[seen, j]
            u = stats.mannwhitneyu(pj[yj == 1], pj[yj == 0]).statistic
            expected.append(u / ((yj == 1).sum() * (yj == 0).sum()))
        assert logs[f"val_{m}_auc"] == pytest.approx(np.mean(expected), abs=1e-6)
    with pytest.raises(ValueError, match="hold NaN"):
        measure(km.ModalityDynamics((X_VAL, y_val), metric="binary_accuracy"), model)


def test_default_metric_from_the_head(miam_run):
    cb = km.ModalityDynamics((X_VAL, Y_VAL))
    measure(cb, miam_run[0])
    assert cb.metric_name == "auc"

    y_class = np.argmax(Y_VAL, axis=1) + (Y_VAL[:, 0] * Y_VAL[:, 1]).astype(int)
    model = make_model(head="softmax", probe=False)
    preds = reference_predictions(model, X_VAL)
    cb = km.ModalityDynamics((X_VAL, y_class))
    logs = measure(cb, model)
    assert cb.metric_name == "accuracy"
    for m in MODALITIES:
        expected = np.mean(np.argmax(preds[m], -1) == y_class)
        assert logs[f"val_{m}_accuracy"] == pytest.approx(expected, abs=1e-6)


def test_multimodal_transformer_logits_head():
    tokenizers = {m: km.tokenizers.EmbeddingTokenizer(8) for m in MODALITIES}
    model = km.models.MultimodalTransformer(
        tokenizers, num_outputs=2, num_layers=1, num_heads=1, seed=0
    )
    model.compile()
    x = {m: X_VAL[m][:, 0, :] for m in MODALITIES}
    model.build({m: (None, FEATURES) for m in MODALITIES})
    preds = reference_predictions(model, x, model.masking)
    cb = km.ModalityDynamics((x, Y_VAL), metric="binary_accuracy")
    logs = measure(cb, model)
    for m in MODALITIES:
        # Logits: thresholded at 0 (the compiled loss has from_logits=True).
        expected = np.mean((preds[m] > 0) == (Y_VAL > 0.5))
        assert logs[f"val_{m}_binary_accuracy"] == pytest.approx(expected, abs=1e-6)
    cb = km.ModalityDynamics((x, Y_VAL))
    measure(cb, model)
    assert cb.metric_name == "auc"


# ----------------------------------------------------------------------------
# Finding the layer.
# ----------------------------------------------------------------------------
def test_finds_the_masking_layer_in_nested_models():
    inner = make_model(probe=False)
    inputs = {m: keras.Input((TOKENS, FEATURES), name=m) for m in MODALITIES}
    outer = keras.Model(inputs, inner(inputs))
    assert get_masking_layer(outer) is inner.get_layer("masking")

    class Wrapper(keras.layers.Layer):  # a plain layer holding the masking
        def __init__(self):
            super().__init__()
            self.masking = km.MIAMMasking(list(MODALITIES), name="wrapped")

    holder = keras.Sequential([Wrapper()])
    assert find_masking_layers(holder)[0].name == "wrapped"

    other = km.MIAMMasking(list(MODALITIES), name="other")
    with pytest.raises(ValueError, match="not a layer of the model"):
        get_masking_layer(outer, other)
    with pytest.raises(ValueError, match="No MIAMMasking layer named"):
        get_masking_layer(outer, "nope")


def two_maskings_model():
    inputs = {m: keras.Input((TOKENS, FEATURES), name=m) for m in MODALITIES}
    tokens = {m: keras.layers.Dense(8)(inputs[m]) for m in MODALITIES}
    a, _ = km.MIAMMasking(list(MODALITIES), name="first")(tokens)
    b, _ = km.MIAMMasking(list(MODALITIES), name="second")(tokens)
    x = keras.layers.Flatten()(keras.layers.Concatenate()([a, b]))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="sigmoid")(x))
    model.compile("adam", "binary_crossentropy")
    return model


def test_named_masking_layer_among_several():
    model = two_maskings_model()
    logs = measure(km.ModalityDynamics((X_VAL, Y_VAL), masking="second"), model)
    assert model.get_layer("second").dynamics_state()["num_updates"] == 1
    assert model.get_layer("first").dynamics_state()["num_updates"] == 0
    assert np.isfinite(logs["val_weak_auc"])


# ----------------------------------------------------------------------------
# Bad input: a ValueError at construction or at train begin, before any step.
# ----------------------------------------------------------------------------
def test_bad_validation_data_and_metrics_are_refused_at_construction():
    with pytest.raises(ValueError, match="required"):
        km.ModalityDynamics(None)
    with pytest.raises(ValueError, match="without labels"):
        km.ModalityDynamics(X_VAL)
    with pytest.raises(ValueError, match="with labels"):
        km.ModalityDynamics((X_VAL,))
    with pytest.raises(ValueError, match="sample weights"):
        km.ModalityDynamics((X_VAL, Y_VAL, np.ones(len(Y_VAL))))
    with pytest.raises(ValueError, match="lower is better"):
        km.ModalityDynamics((X_VAL, Y_VAL), metric="mse")
    with pytest.raises(ValueError, match="Unknown metric"):
        km.ModalityDynamics((X_VAL, Y_VAL), metric="no_such_metric")


def plain_model():
    inputs = {m: keras.Input((TOKENS, FEATURES), name=m) for m in MODALITIES}
    x = keras.layers.Flatten()(keras.layers.Concatenate()(list(inputs.values())))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="sigmoid")(x))
    model.compile("adam", "binary_crossentropy")
    return model


_MODELS = {}


def cached_model(kind):
    # Failing before the first step leaves a model untouched: reuse them.
    if kind not in _MODELS:
        keras.utils.set_random_seed(0)
        _MODELS[kind] = {
            "sigmoid": lambda: make_model(probe=False),
            "regression": lambda: make_model(head="regression", probe=False),
            "no_masking": plain_model,
            "two_maskings": two_maskings_model,
        }[kind]()
    return _MODELS[kind]


Y_REGRESSION = np.random.default_rng(0).normal(size=(len(Y_VAL), 1)).astype("float32")


@pytest.mark.parametrize(
    "case, kind, match",
    [
        ("no_masking", "no_masking", "no MIAMMasking layer"),
        ("two_maskings", "two_maskings", "2 MIAMMasking layers"),
        ("wrong_keys", "sigmoid", "missing \\['weak'\\], unexpected \\['other'\\]"),
        ("labels_mismatch", "sigmoid", "x has 256 examples but y has 10"),
        ("auc_on_regression", "regression", "0/1 labels"),
        ("default_on_regression", "regression", "could not choose a metric"),
        ("accuracy_on_regression", "regression", "regression"),
        ("accuracy_on_logits", "regression", "no threshold"),
    ],
)
def test_bad_input_raises_at_train_begin(case, kind, match):
    model = cached_model(kind)
    x_val, y_val, kwargs = X_VAL, Y_VAL, {}
    y_train = Y_TRAIN
    if case == "wrong_keys":
        x_val = {"strong": X_VAL["strong"], "other": X_VAL["weak"]}
    elif case == "labels_mismatch":
        y_val = Y_VAL[:10]
    elif kind == "regression":
        y_train = Y_TRAIN[:, :1]
        y_val = Y_VAL[:, :1] if case == "accuracy_on_logits" else Y_REGRESSION
        kwargs["metric"] = {
            "auc_on_regression": "auc",
            "accuracy_on_regression": "accuracy",
            "accuracy_on_logits": "binary_accuracy",
        }.get(case)
    counter = BatchCounter()
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=match):
        model.fit(
            X_TRAIN,
            y_train,
            batch_size=256,
            epochs=1,
            verbose=0,
            callbacks=[km.ModalityDynamics((x_val, y_val), **kwargs), counter],
        )
    assert counter.batches == 0
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


# ----------------------------------------------------------------------------
# Data helpers.
# ----------------------------------------------------------------------------
def test_collect_examples_subsamples_a_fixed_subset_and_reads_iterables():
    x, y = data_lib.collect_examples((X_VAL, Y_VAL), max_examples=50, seed=3)
    x2, y2 = data_lib.collect_examples((X_VAL, Y_VAL), max_examples=50, seed=3)
    assert data_lib.num_examples(x) == 50
    np.testing.assert_array_equal(x["weak"], x2["weak"])
    np.testing.assert_array_equal(y, y2)

    batches = [
        (data_lib.take_examples(X_VAL, slice(i, i + 64)), Y_VAL[i : i + 64])
        for i in range(0, 256, 64)
    ]

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            return batches[index]

    x3, y3 = data_lib.collect_examples(Batches())
    np.testing.assert_array_equal(x3["strong"], X_VAL["strong"])
    np.testing.assert_array_equal(y3, Y_VAL)
    with pytest.raises(ValueError, match="without a length"):
        data_lib.collect_examples(iter(batches))
    x4, _ = data_lib.collect_examples(iter(batches), max_examples=100)
    # Reading stops after the batch that reaches 100; then a fixed subsample.
    assert data_lib.num_examples(x4) == 100


# ----------------------------------------------------------------------------
# One metric system: the callback and evaluate_subsets give the same number.
# ----------------------------------------------------------------------------
def quickstart_logits_model():
    """The README Quickstart pattern: one token per modality, a Dense head
    returning logits, `BinaryCrossentropy(from_logits=True)`."""
    inputs = {m: keras.Input((TOKENS, FEATURES), name=m) for m in MODALITIES}
    tokens = {
        m: keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(inputs[m]))
        for m in MODALITIES
    }
    masking = km.MIAMMasking(list(MODALITIES), strategy="miam", seed=0)
    x, keep = masking(tokens)
    pooled = keras.layers.GlobalAveragePooling1D()(x, mask=keep)
    model = keras.Model(inputs, keras.layers.Dense(2)(pooled))
    model.compile("adamw", keras.losses.BinaryCrossentropy(from_logits=True))
    return model


Y_CLASS = np.argmax(Y_VAL, axis=1) + (Y_VAL[:, 0] * Y_VAL[:, 1]).astype(int)


@pytest.mark.parametrize(
    "case, metric, name",
    [
        ("multilabel", None, "auc"),
        ("multiclass", "accuracy", "accuracy"),
        ("logits", "accuracy", "accuracy"),
        ("multilabel", "loss", "loss_score"),
    ],
)
def test_callback_and_evaluate_subsets_agree(case, metric, name):
    keras.utils.set_random_seed(0)
    if case == "logits":
        model, y = quickstart_logits_model(), Y_VAL
    elif case == "multiclass":
        model, y = make_model(head="softmax", probe=False), Y_CLASS
    else:
        model, y = make_model(probe=False), Y_VAL
    callback = km.ModalityDynamics((X_VAL, y), metric=metric, epsilon=1e-9)
    logs = measure(callback, model)
    assert callback.metric_name == name
    frame = km.evaluation.evaluate_subsets(
        model,
        (X_VAL, y),
        metric=metric,
        subsets=list(MODALITIES),
        summary=False,
        verbose=0,
    )
    assert frame.attrs["metric"] == name
    preds = reference_predictions(model, X_VAL)
    for m in MODALITIES:
        # Stored as float32 by the layer.
        assert logs[f"val_{m}_{name}"] == pytest.approx(frame.loc[m, name], abs=1e-6)
        if case == "logits":  # binary accuracy of logits: cut at 0
            expected = np.mean((preds[m] > 0) == (Y_VAL > 0.5))
            assert frame.loc[m, name] == pytest.approx(expected, abs=1e-12)
        elif case == "multiclass":
            expected = np.mean(np.argmax(preds[m], -1) == Y_CLASS)
            assert frame.loc[m, name] == pytest.approx(expected, abs=1e-12)
        elif name == "loss_score":
            expected = 1.0 / (1.0 + bce(Y_VAL, preds[m]))
            assert frame.loc[m, name] == pytest.approx(expected, abs=1e-5)
    assert 0 < frame[name].min() and frame[name].max() <= 1


def test_a_function_or_keras_metric_drives_the_callback():
    # A function (its direction given with mode=) and a Keras metric are
    # scored by the callback as evaluate_subsets scores them.
    model = make_model(probe=False)
    preds = reference_predictions(model, X_VAL)

    def mean_output(y_true, y_pred):
        return np.mean(y_pred)

    logs = measure(
        km.ModalityDynamics((X_VAL, Y_VAL), metric=mean_output, mode="max"), model
    )
    for m in MODALITIES:
        assert logs[f"val_{m}_mean_output"] == pytest.approx(
            np.mean(preds[m]), rel=1e-5
        )
    with pytest.raises(ValueError, match="unknown direction"):
        km.ModalityDynamics((X_VAL, Y_VAL), metric=mean_output)
    with pytest.raises(ValueError, match="lower is better"):
        km.ModalityDynamics((X_VAL, Y_VAL), metric=mean_output, mode="min")
    with pytest.raises(ValueError, match="lower is better"):
        km.ModalityDynamics((X_VAL, Y_VAL), metric=keras.metrics.MeanSquaredError())


def test_mask_ratio_log_is_the_strategy_ratio_not_a_token_fraction():
    model = make_model(probe=False)
    layer = get_masking_layer(model)
    callback = km.ModalityDynamics((X_VAL, Y_VAL))
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(2):
        logs = {}
        callback.on_epoch_end(epoch, logs)
    ratios = layer.mask_ratios()
    for i, m in enumerate(MODALITIES):
        assert logs[f"{m}_mask_ratio"] == pytest.approx(float(ratios[i]))
    # r_m = rho_s / rho_d: geometric-mean normalised, so the product is 1
    # and one modality is above 1 (not a fraction of tokens).
    values = [logs[f"{m}_mask_ratio"] for m in MODALITIES]
    assert np.prod(values) == pytest.approx(1.0, rel=1e-4)
    assert max(values) > 1.0


# ----------------------------------------------------------------------------
# The chance-corrected score, the noise floor, the callback order, and the
# promise (issue #23).
# ----------------------------------------------------------------------------
def test_chance_levels_and_rescaled_scores_follow_the_formula():
    from keras_miam.callbacks import modality_dynamics as md

    ids, one_hot = np.array([0, 2, 1]), np.eye(4)[[0, 3, 1]]
    multi = np.array([[1, 1, 0], [0, 1, 1]])
    assert md.chance_level("auc", multi, 3) == 0.5
    assert md.chance_level("accuracy", ids, 3) == pytest.approx(1 / 3)
    assert md.chance_level("sparse_categorical_accuracy", one_hot, 4) == 0.25
    assert md.chance_level("accuracy", multi, 3) is None  # binary accuracy
    assert md.chance_level("loss_score", multi, 3, prior_score=0.4) == 0.4
    assert md.chance_level("top_k_f1", multi, 3) is None
    np.testing.assert_allclose(
        md.rescale_score("auc", [0.5, 0.75, 1.0], 0.5), [0, 0.5, 1]
    )
    np.testing.assert_allclose(
        md.rescale_score("accuracy", [0.25, 0.625], 0.25), [0.0, 0.5]
    )
    # Loss score 1 / (1 + L) against the prior's L0 = 1.5: 1 - L / L0.
    losses = np.array([1.5, 0.75, 0.0])
    np.testing.assert_allclose(
        md.rescale_score("loss_score", 1 / (1 + losses), 1 / 2.5), [0.0, 0.5, 1.0]
    )


def test_callback_uses_the_chance_level_of_its_metric():
    model = make_model(probe=False, head="softmax")
    y_val = np.argmax(Y_VAL, axis=1)  # 2 classes of the 3 outputs
    cases = [
        ("accuracy", "auto", 1 / 3),
        ("accuracy", 0.2, 0.2),
        ("accuracy", None, None),
    ]
    for metric, chance, expected in cases:
        callback = km.ModalityDynamics((X_VAL, y_val), metric=metric, chance=chance)
        callback.set_model(model)
        callback.on_train_begin()
        assert callback._chance_value == (
            expected if expected is None else pytest.approx(expected)
        )
    # "loss": the loss of predicting the label prior (two classes at their
    # validation frequencies) is the chance level.
    callback = km.ModalityDynamics((X_VAL, y_val), metric="loss", chance="auto")
    callback.set_model(model)
    callback.on_train_begin()
    freq = np.bincount(y_val, minlength=3) / len(y_val)
    prior_loss = -np.mean(np.log(np.clip(freq, 1e-6, 1)[y_val]))
    assert callback._chance_value == pytest.approx(1 / (1 + prior_loss), rel=1e-3)


def test_noise_estimate_and_noise_floor():
    cb = km.ModalityDynamics((X_VAL, Y_VAL), epsilon=1e-3)
    # A line has no second differences: no noise.
    line = 0.5 + 0.01 * np.arange(6)[:, None]
    np.testing.assert_allclose(cb.estimate_noise(line), [0.0], atol=1e-12)
    # Fewer than three scores: unknown, zero.
    np.testing.assert_allclose(cb.estimate_noise([[0.5], [0.6]]), [0.0])
    # A line plus independent noise of scale sigma: sigma, from the last 6
    # scores (sampled: the estimate is unbiased for sigma^2).
    rng = np.random.default_rng(0)
    sigma = 0.02
    runs = 0.3 + 0.01 * np.arange(6)[:, None] + sigma * rng.normal(size=(6, 20000))
    assert np.mean(cb.estimate_noise(runs) ** 2) == pytest.approx(sigma**2, rel=0.03)
    # Known second differences: (0.1 - 0.2 + 0.1) ... -> sqrt(mean(d2^2) / 6).
    scores = np.array([[0.1], [0.2], [0.1], [0.2], [0.1], [0.2], [0.1]])
    np.testing.assert_allclose(cb.estimate_noise(scores), [0.2 / np.sqrt(6)])
    # The derivative floor is the slope's standard error, sigma / sqrt(sum t^2)
    # (window of 3: t = -1, 0, 1), never below epsilon.
    flat = np.full((3, 2), 0.4)
    np.testing.assert_allclose(
        cb.estimate_derivatives(flat, noise=[0.02, 0.0]), [0.02 / np.sqrt(2), 1e-3]
    )
    ema = km.ModalityDynamics((X_VAL, Y_VAL), ema_decay=0.5)
    w = np.array([1.0, 2.0]) / 3.0  # 2 differences, weights 0.5, 1, normalised
    np.testing.assert_allclose(
        ema.estimate_derivatives(flat, noise=[0.02, 0.0]),
        [0.02 * np.sqrt(2 * np.sum(w * w)), 1e-3],
    )


@pytest.mark.parametrize(
    "kwargs", [{"chance": "half"}, {"chance": 1.0}, {"noise_floor": "yes"}]
)
def test_bad_chance_and_noise_arguments(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        km.ModalityDynamics((X_VAL, Y_VAL), **kwargs)


@pytest.mark.parametrize("first", [True, False])
def test_every_callback_sees_the_keys_whatever_the_order(first, tmp_path):
    keras.utils.set_random_seed(0)
    model = make_model(probe=False)
    csv = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    stop = keras.callbacks.EarlyStopping(
        monitor="val_strong_auc", mode="max", patience=10, restore_best_weights=True
    )
    dynamics = km.ModalityDynamics((X_VAL, Y_VAL))
    callbacks = [dynamics, csv, stop] if first else [csv, stop, dynamics]
    import warnings

    with warnings.catch_warnings():
        # EarlyStopping warns when its key is missing.
        warnings.filterwarnings("error", message="Early stopping conditioned")
        history = model.fit(
            X_TRAIN,
            Y_TRAIN,
            epochs=3,
            batch_size=128,
            verbose=0,
            validation_data=(X_VAL, Y_VAL),
            callbacks=callbacks,
        ).history
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    for m in MODALITIES:
        for key in ("val_{}_auc", "{}_mask_ratio", "{}_score_derivative"):
            assert key.format(m) in header and key.format(m) in history
        assert f"{m}_score_noise" in header
    assert stop.best_weights is not None
    assert stop.best == pytest.approx(max(history["val_strong_auc"]))
    # One measurement per epoch, whichever hook made it; the restored
    # weights carry the masking state of the best epoch.
    num_updates = get_masking_layer(model).dynamics_state()["num_updates"]
    assert num_updates == stop.best_epoch + 1


def test_the_chance_corrected_estimator_masks_the_dominant_modality_more():
    # The promise: "modalities that perform strongly and learn stably are
    # masked more often". "strong" gives the labels; "weak" is pure noise,
    # at chance throughout. The chance-corrected, noise-floored estimator
    # keeps r_strong > 1 on average (geometric mean) over epochs 2..E.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train = {
        "strong": X_TRAIN["strong"],
        "weak": rng.normal(size=X_TRAIN["weak"].shape).astype("float32"),
    }
    x_val = {
        "strong": X_VAL["strong"],
        "weak": rng.normal(size=X_VAL["weak"].shape).astype("float32"),
    }
    model = make_model(probe=False)
    history = model.fit(
        x_train,
        Y_TRAIN,
        epochs=6,
        batch_size=128,
        verbose=0,
        validation_data=(x_val, Y_VAL),
        callbacks=[
            km.ModalityDynamics((x_val, Y_VAL), chance="auto", noise_floor=True)
        ],
    ).history
    assert max(history["val_weak_auc"]) < 0.6  # stuck near chance
    r = np.asarray(history["strong_mask_ratio"][1:])
    assert np.exp(np.mean(np.log(r))) > 1.0, r


def test_dynamics_plot_names_its_metric_and_skips_the_unmeasured_derivative():
    plotting = pytest.importorskip("keras_miam.plotting")
    logs = {
        "val_env_auc": [0.6, 0.7, 0.72],
        "val_image_auc": [0.5, 0.51, 0.5],
        "env_score_derivative": [1e-3, 0.1, 0.06],
        "image_score_derivative": [1e-3, 0.01, 0.005],
        "env_mask_ratio": [1.0, 0.8, 1.3],
        "image_mask_ratio": [1.0, 1.25, 0.77],
    }
    figure = plotting.plot_dynamics(logs)
    score, derivative, ratio = figure.axes
    assert "auc" in score.get_ylabel() and "auc" in figure._suptitle.get_text()
    # Epochs are whole numbers.
    figure.canvas.draw()
    ticks = [t for t in score.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    # The first epoch's derivative (the floor, nothing measured) is not drawn.
    for line in derivative.get_lines():
        assert np.isnan(line.get_ydata()[0]) and np.isfinite(line.get_ydata()[1:]).all()
    assert len(ratio.get_lines()) == 3  # two modalities and r = 1
