"""Scaling out: MIAM masking under data parallelism on two (virtual) CPU devices.

- JAX: `keras.distribution.DataParallel` over 2 host devices
  (XLA_FLAGS=--xla_force_host_platform_device_count=2, set before JAX is
  imported: hence a subprocess). Runs when KERAS_BACKEND=jax.
- TensorFlow: `tf.distribute.MirroredStrategy` over 2 logical CPU devices
  (configured before TF initialises: a subprocess too). Runs when
  KERAS_BACKEND=tensorflow.

Each subprocess trains the same tiny two-modality model with
`ModalityDynamics` twice, on one device and on two, and reports per epoch
the keep rate per modality that the compiled train step applied (a
pass-through probe layer averages the keep mask into mean-aggregated
variables) and the analytic keep rate 1 - E[p_m] in force
(`MIAMMasking.expected_mask_rates()`). The tests compare both against each
other within binomial tolerance (4.5 sigma, sigma from the strategy's own
variance; on JAX the two runs draw the very same masks), check that the dynamics were updated each epoch in the
distributed run, that evaluation through `MIAMMasking.views` (what
`ModalityDynamics` and `evaluate_subsets` use) gives each view its own
selection, and (TF) that the two replicas draw different masks.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
ROOT = Path(__file__).resolve().parents[1]
MODALITIES = ("a", "b")
COUNTS = {"a": 8, "b": 4}
FEATURES, DIM = 3, 8
N_TRAIN, N_VAL, GLOBAL_BATCH, EPOCHS = 1024, 128, 128, 3
SIGMAS = 4.5


# ----------------------------------------------------------------------------
# Worker side (runs in the subprocess).
# ----------------------------------------------------------------------------
def make_data(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    x = {
        "a": (z[:, None, :1] + 0.3 * rng.normal(size=(n, COUNTS["a"], FEATURES))),
        "b": (z[:, None, 1:] + 0.9 * rng.normal(size=(n, COUNTS["b"], FEATURES))),
    }
    return {k: v.astype("float32") for k, v in x.items()}, (z > 0).astype("float32")


def worker_model():
    import keras_miam as km

    @keras.saving.register_keras_serializable(package="tests_distributed")
    class KeepRateProbe(keras.layers.Layer):
        """Pass-through; in training, adds the keep rate per modality of the
        mask the step applied to mean-aggregated (replica-safe) variables."""

        def build(self, input_shape):
            self.total = self.add_weight(
                name="total",
                shape=(len(MODALITIES),),
                initializer="zeros",
                trainable=False,
                aggregation="mean",
            )
            self.count = self.add_weight(
                name="count",
                shape=(),
                initializer="zeros",
                trainable=False,
                aggregation="mean",
            )

        def call(self, inputs, training=None):
            tokens, keep = inputs
            if training:
                keep = keras.ops.cast(keep, "float32")
                a = COUNTS["a"]
                rates = keras.ops.stack(
                    [keras.ops.mean(keep[:, :a]), keras.ops.mean(keep[:, a:])]
                )
                self.total.assign(self.total + rates)
                self.count.assign(self.count + 1.0)
            return tokens

        def compute_output_shape(self, input_shape):
            return input_shape[0]

    inputs = {m: keras.Input((COUNTS[m], FEATURES), name=m) for m in MODALITIES}
    toks = {m: keras.layers.Dense(DIM, name=f"tok_{m}")(inputs[m]) for m in MODALITIES}
    masking = km.MIAMMasking(
        list(MODALITIES), seed=0, ensure_visible=False, name="masking"
    )
    x, keep = masking(toks)
    x = KeepRateProbe(name="probe")([x, keep])
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(2, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    return model


class RateLogger(keras.callbacks.Callback):
    """Per epoch: measured keep rates, the analytic ones and their variance."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        model = self.model  # JAX: sync before reading / assigning variables
        masking = model.get_layer("masking")
        probe = model.get_layer("probe")
        probe.total.assign(np.zeros(len(MODALITIES), "float32"))
        probe.count.assign(0.0)
        p = masking.sample_probabilities(50_000, seed=epoch).astype("float64")
        counts = np.array([COUNTS[m] for m in MODALITIES], "float64")
        # Variance of one example's keep fraction: Var(1 - p) + E[p (1 - p)] / T.
        variance = p.var(axis=0) + (p * (1 - p)).mean(axis=0) / counts
        self.current = {
            "expected": (1.0 - masking.expected_mask_rates()).tolist(),
            "variance": variance.tolist(),
        }

    def on_epoch_end(self, epoch, logs=None):
        probe = self.model.get_layer("probe")
        total = keras.ops.convert_to_numpy(probe.total)
        count = float(keras.ops.convert_to_numpy(probe.count))
        self.current["measured"] = (total / count).tolist()
        self.current["steps"] = count
        self.epochs.append(self.current)


def train(scope):
    import keras_miam as km
    from keras_miam.evaluation import view_predictions

    keras.utils.set_random_seed(0)
    x, y = make_data(N_TRAIN, 0)
    x_val, y_val = make_data(N_VAL, 1)
    with scope():
        model = worker_model()
    logger = RateLogger()
    history = model.fit(
        x,
        y,
        batch_size=GLOBAL_BATCH,
        epochs=EPOCHS,
        verbose=0,
        callbacks=[km.ModalityDynamics((x_val, y_val), batch_size=64), logger],
    )
    masking = model.get_layer("masking")
    state = masking.dynamics_state()
    # Views: one tiled forward pass vs one set_visible pass per modality, both
    # in batches of GLOBAL_BATCH examples.
    selections = [[m] for m in MODALITIES]
    views = {m: [] for m in MODALITIES}
    for _, _, _, blocks in view_predictions.iter_view_predictions(
        model, x_val, selections, masking=masking, batch_size=GLOBAL_BATCH
    ):
        for m, block in zip(MODALITIES, blocks):
            views[m].append(np.asarray(block))
    # The same tiled batch through model.predict (a distributed dataset: each
    # replica gets a contiguous half of the batch).
    half = GLOBAL_BATCH // len(MODALITIES)
    tiled = {k: np.concatenate([v[:half]] * len(MODALITIES)) for k, v in x_val.items()}
    with masking.views(selections):
        through_predict = model.predict(tiled, batch_size=GLOBAL_BATCH, verbose=0)
    view_error = predict_view_error = 0.0
    for i, m in enumerate(MODALITIES):
        masking.set_visible([m])
        alone = model.predict(x_val, batch_size=GLOBAL_BATCH, verbose=0)
        masking.reset_visible()
        view_error = max(
            view_error, float(np.abs(np.concatenate(views[m]) - alone).max())
        )
        block = through_predict[i * half : (i + 1) * half]
        predict_view_error = max(
            predict_view_error, float(np.abs(block - alone[:half]).max())
        )
    return {
        "epochs": logger.epochs,
        "loss": [float(v) for v in history.history["loss"]],
        "scores": history.history.get("val_a_auc", [])
        and [history.history["val_a_auc"], history.history["val_b_auc"]],
        "num_updates": state["num_updates"],
        "ready": state["ready"],
        "history_finite": bool(np.all(np.isfinite(state["history"]))),
        "view_error": view_error,
        "predict_view_error": predict_view_error,
    }


def replica_masks_differ(strategy):
    """TF: the keep masks of two replicas fed identical inputs."""
    import tensorflow as tf

    import keras_miam as km

    with strategy.scope():
        layer = km.MIAMMasking(list(MODALITIES), strategy="uniform", seed=0)
        tokens = {m: np.ones((8, COUNTS[m], DIM), "float32") for m in MODALITIES}
        layer(tokens)

    @tf.function
    def step(x):
        return strategy.run(lambda t: layer(t, training=True)[1], args=(x,))

    data = tf.data.Dataset.from_tensors(
        {m: np.ones((16, COUNTS[m], DIM), "float32") for m in MODALITIES}
    )
    batch = next(iter(strategy.experimental_distribute_dataset(data)))
    local = strategy.experimental_local_results(step(batch))
    return bool(not np.array_equal(local[0].numpy(), local[1].numpy()))


def worker(mode):
    """Entry point of the subprocess: prints one JSON line."""
    import contextlib

    result = {"mode": mode}
    if mode == "tf":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        result["replicas"] = strategy.num_replicas_in_sync
        result["single"] = train(contextlib.nullcontext)
        result["distributed"] = train(strategy.scope)
        result["replica_masks_differ"] = replica_masks_differ(strategy)
    else:
        import jax

        result["replicas"] = len(jax.devices())
        result["single"] = train(contextlib.nullcontext)
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=jax.devices())
        )
        result["distributed"] = train(contextlib.nullcontext)
        keras.distribution.set_distribution(None)
    print("RESULT " + json.dumps(result), flush=True)


SCRIPT = r"""
import os, sys
mode = sys.argv[1]
if mode == "tf":
    import tensorflow as tf  # configure two logical CPUs before TF initialises
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, os.environ["KERAS_MIAM_ROOT"])
from tests.test_distributed import worker
worker(mode)
"""


def run_worker(mode):
    env = dict(
        os.environ,
        KERAS_MIAM_ROOT=str(ROOT),
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
    )
    if mode == "jax":
        env.update(
            KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"
        )
    else:
        env.update(KERAS_BACKEND="tensorflow")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


# ----------------------------------------------------------------------------
# Test side.
# ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def result():
    if BACKEND == "jax":
        return run_worker("jax")
    if BACKEND == "tensorflow":
        return run_worker("tf")
    pytest.skip(
        "data parallelism is tested under JAX (keras.distribution) and "
        "TensorFlow (tf.distribute); torch users run DDP themselves "
        "(docs/scaling_out.md)"
    )


def effective_examples(label):
    """Independent examples per epoch. Under tf.distribute the replicas share
    one random stream (see test_replicas_draw_different_masks), so the two
    halves of a global batch draw the same numbers: half as many."""
    return (
        N_TRAIN // 2
        if (label == "two devices" and BACKEND == "tensorflow")
        else N_TRAIN
    )


def check_rates(run, label):
    for epoch, e in enumerate(run["epochs"]):
        measured, expected = np.array(e["measured"]), np.array(e["expected"])
        sigma = np.sqrt(np.array(e["variance"]) / effective_examples(label))
        assert e["steps"] == N_TRAIN // GLOBAL_BATCH
        assert np.all(np.abs(measured - expected) < SIGMAS * sigma), (
            label,
            epoch,
            measured,
            expected,
            sigma,
        )


def test_two_devices_are_used(result):
    assert result["replicas"] == 2


def test_keep_rates_match_the_analytic_rates_on_one_and_two_devices(result):
    check_rates(result["single"], "single device")
    check_rates(result["distributed"], "two devices")
    # ... and each other, epoch by epoch (same dynamics schedule).
    for single, dist in zip(
        result["single"]["epochs"], result["distributed"]["epochs"]
    ):
        variance = np.array(single["variance"])
        sigma = np.sqrt(
            variance / N_TRAIN + variance / effective_examples("two devices")
        )
        diff = np.abs(np.array(single["measured"]) - np.array(dist["measured"]))
        assert np.all(diff < SIGMAS * sigma), (single, dist)
        if BACKEND == "jax":
            # One SPMD program over the global batch: the very same masks.
            np.testing.assert_allclose(dist["measured"], single["measured"], atol=1e-6)


def test_modality_dynamics_update_the_distributed_masking(result):
    run = result["distributed"]
    assert run["num_updates"] == EPOCHS and run["ready"] and run["history_finite"]
    assert len(run["scores"][0]) == EPOCHS
    # The updates changed the masking in force: the analytic rates moved
    # after the first epochs, and the measured rates followed them.
    first, last = (
        np.array(run["epochs"][0]["expected"]),
        np.array(run["epochs"][-1]["expected"]),
    )
    assert np.abs(first - last).max() > 0.02, (first, last)
    assert np.all(np.isfinite(run["loss"])) and run["loss"][-1] < run["loss"][0]


def test_views_score_each_selection_on_one_device(result):
    run = result["single"]
    assert run["view_error"] < 1e-5 and run["predict_view_error"] < 1e-5


def test_views_score_each_selection_on_two_devices(result):
    """The path of ModalityDynamics / evaluate_subsets (predict_on_batch).

    Under tf.distribute, Keras' predict_on_batch hands the whole batch to
    every replica and concatenates their outputs (R x redundant work, R x
    rows); the first rows, which keras_miam reads, are right."""
    assert result["distributed"]["view_error"] < 1e-5


@pytest.mark.xfail(
    BACKEND == "tensorflow",
    strict=True,
    reason="library limit (reported): under tf.distribute each replica reads its "
    "*local* batch as the V view blocks (MIAMMasking computes the view index "
    "from the local batch size), so a tiled batch fed through model.predict / "
    "evaluate (a distributed dataset) mixes the selections",
)
def test_views_through_a_distributed_predict(result):
    assert result["distributed"]["predict_view_error"] < 1e-5


@pytest.mark.xfail(
    BACKEND == "tensorflow",
    strict=True,
    reason="Keras limit (reported): under tf.distribute every replica draws from "
    "the same SeedGenerator state, so replicas fed identical inputs draw "
    "identical masks (Keras' own Dropout does the same)",
)
def test_replicas_draw_different_masks(result):
    if BACKEND != "tensorflow":
        pytest.skip(
            "JAX DataParallel draws one global (sharded) mask: nothing to compare"
        )
    assert result["replica_masks_differ"]
