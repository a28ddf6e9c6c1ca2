"""Faults: interrupted training resumes with the MIAM state; models move across backends.

1. Interruption. `keras.callbacks.BackupAndRestore(save_freq=<steps>)` saves
   the weights, the optimizer state and the MIAM dynamics (layer variables)
   every few steps. A run interrupted mid-epoch and restarted restores them
   exactly, the dynamics keep one score per epoch (no update lost or
   repeated), and the final model matches an uninterrupted run within a
   documented tolerance. Not exact, by Keras design: the restart resumes at
   the *start* of the interrupted epoch with the mid-epoch weights (Keras
   3.15 stores the batch but only restores the epoch), so a few batches are
   replayed; and random-generator states (`SeedGenerator`) are not part of
   saved weights, so the masks drawn after the restart differ from those of
   the uninterrupted run.
2. Portability. A `.keras` model saved under one backend loads under the
   others and predicts the same (rtol 1e-4, atol 1e-5: different float32
   kernels). The current backend saves a `MultimodalTransformer` with
   weights and MIAM state fixed by seeds, then spawns a subprocess under a
   partner backend, which loads that file (after `import keras_miam` only)
   and predicts, then builds the same model and saves it. The current
   backend loads that file, checks its weights and MIAM state, and compares
   its predictions with its own. The partner rotates (tensorflow -> jax -> torch ->
   tensorflow), so the three runs of the suite cover all six directions.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import keras_miam as km
from tests.conftest import JIT

BACKEND = keras.backend.backend()
ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------
# 1. Interruption and BackupAndRestore.
# ----------------------------------------------------------------------------
MODALITIES = ("strong", "weak")
TOKENS, FEATURES, DIM = 4, 3, 8
BATCH, STEPS, EPOCHS = 32, 8, 4
SAVE_FREQ = 3  # steps
INTERRUPT = (2, 5)  # (epoch, batch): mid-epoch, after the backup at batch 3 of epoch 2
# Final-result tolerance vs the uninterrupted run. The restart replays the
# first batches of the interrupted epoch and draws other masks, so results
# differ by about half an epoch of extra training: measured |delta| of the
# validation loss 0.032-0.033 (the restarted run lower) and of the unimodal
# AUCs 0.0005-0.024 on the three backends (see docs/robustness.md).
FINAL_LOSS_ATOL = 0.08
FINAL_SCORE_ATOL = 0.06


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    strong = (z[:, None, :1] + 0.1 * rng.normal(size=(n, TOKENS, FEATURES))).astype(
        "float32"
    )
    weak = (0.4 * z[:, None, 1:] + rng.normal(size=(n, TOKENS, FEATURES))).astype(
        "float32"
    )
    return {"strong": strong, "weak": weak}, (z > 0).astype("float32")


X, Y = make_data(BATCH * STEPS, seed=0)
X_VAL, Y_VAL = make_data(512, seed=1)


def make_model():
    inputs = {m: keras.Input((TOKENS, FEATURES), name=m) for m in MODALITIES}
    toks = {
        m: km.tokenizers.TimeSeriesTokenizer(DIM, name=f"tok_{m}")(inputs[m])
        for m in MODALITIES
    }
    x, _ = km.MIAMMasking(list(MODALITIES), seed=3, name="masking")(toks)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(2, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", jit_compile=JIT)
    return model


def snapshot(model):
    """Every saved variable: model weights, optimizer state (MIAM state included)."""
    values = {
        f"model/{i}/{v.path}": ops.convert_to_numpy(v)
        for i, v in enumerate(model.weights)
    }
    values.update(
        {
            f"optimizer/{i}/{v.path}": ops.convert_to_numpy(v)
            for i, v in enumerate(model.optimizer.variables)
        }
    )
    return values


class Interrupt(keras.callbacks.Callback):
    """Raises at (epoch, batch), after snapshotting the state at each backup step."""

    def __init__(self, at, save_freq):
        super().__init__()
        self.at, self.save_freq = at, save_freq
        self.epoch = 0
        self.saved = None
        self.steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps % self.save_freq == 0:  # BackupAndRestore saved just now
            self.saved = snapshot(self.model)
        if (self.epoch, batch) == self.at:
            raise RuntimeError("simulated preemption")


class RecordRestored(keras.callbacks.Callback):
    """Snapshots the state right after BackupAndRestore restored it."""

    def on_train_begin(self, logs=None):
        self.restored = snapshot(self.model)


def fit(model, callbacks):
    return model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=[km.ModalityDynamics((X_VAL, Y_VAL)), *callbacks],
    ).history


def scramble(model):
    """Simulates a fresh process: every variable changed, MIAM state forgotten."""
    rng = np.random.default_rng(99)
    for v in model.trainable_weights + model.optimizer.variables:
        v.assign(rng.normal(size=v.shape).astype(v.dtype) if "float" in v.dtype else v)
    model.get_layer("masking").reset_dynamics()


def validation_loss(model):
    p = np.clip(model.predict(X_VAL, verbose=0), 1e-7, 1 - 1e-7)
    return float(-np.mean(Y_VAL * np.log(p) + (1 - Y_VAL) * np.log(1 - p)))


def all_state(model):
    """Every variable a fresh model starts from: weights, seed-generator
    states (in `model.variables`) and the optimizer's."""
    return list(model.variables) + list(model.optimizer.variables)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    # One model object serves both runs (one compiled train step, not two):
    # it is put back into its initial state, seed generators included, which
    # is what a fresh model built from the same seeds would be.
    keras.utils.set_random_seed(0)
    model = make_model()
    model.optimizer.build(model.trainable_variables)
    initial = [ops.convert_to_numpy(v) for v in all_state(model)]

    reference_history = fit(model, [])
    reference = {
        "state": model.get_layer("masking").dynamics_state(),
        "validation_loss": validation_loss(model),
    }

    for v, value in zip(all_state(model), initial):
        v.assign(value)
    backup = str(tmp_path_factory.mktemp("backup"))
    interrupt = Interrupt(INTERRUPT, SAVE_FREQ)
    with pytest.raises(RuntimeError, match="simulated preemption"):
        fit(
            model,
            [keras.callbacks.BackupAndRestore(backup, save_freq=SAVE_FREQ), interrupt],
        )
    interrupted_state = model.get_layer("masking").dynamics_state()
    scramble(model)
    record = RecordRestored()
    resumed_history = fit(
        model, [keras.callbacks.BackupAndRestore(backup, save_freq=SAVE_FREQ), record]
    )
    return {
        "reference": reference,
        "reference_history": reference_history,
        "model": model,
        "resumed_history": resumed_history,
        "saved": interrupt.saved,
        "restored": record.restored,
        "interrupted_state": interrupted_state,
    }


def test_restart_restores_weights_optimizer_and_miam_state_exactly(runs):
    saved, restored = runs["saved"], runs["restored"]
    assert saved is not None and saved.keys() == restored.keys()
    for key in saved:
        np.testing.assert_array_equal(restored[key], saved[key], err_msg=key)
    dynamics = [
        k
        for k in saved
        if k.split("/")[-1] in ("score_history", "scores", "num_updates")
    ]
    assert len(dynamics) == 3
    # The backup was taken in epoch 2, after the updates of epochs 0 and 1.
    assert runs["interrupted_state"]["num_updates"] == INTERRUPT[0]


def test_resumed_dynamics_keep_one_score_per_epoch(runs):
    reference = runs["reference"]["state"]
    resumed = runs["model"].get_layer("masking").dynamics_state()
    assert reference["num_updates"] == resumed["num_updates"] == EPOCHS
    # Epochs finished before the backup are bitwise those of the uninterrupted run.
    done = INTERRUPT[0]
    np.testing.assert_array_equal(
        resumed["history"][:done], reference["history"][:done]
    )
    np.testing.assert_array_equal(
        resumed["history"][:done], runs["interrupted_state"]["history"]
    )
    # The resumed fit ran the remaining epochs only, and logged the dynamics.
    assert len(runs["resumed_history"]["loss"]) == EPOCHS - done
    assert len(runs["resumed_history"]["val_weak_auc"]) == EPOCHS - done
    assert resumed["ready"]


def test_resumed_run_matches_the_uninterrupted_run_within_tolerance(runs):
    model = runs["model"]
    ref_loss, loss = runs["reference"]["validation_loss"], validation_loss(model)
    assert abs(ref_loss - loss) < FINAL_LOSS_ATOL, (ref_loss, loss)
    ref_state = runs["reference"]["state"]
    state = model.get_layer("masking").dynamics_state()
    np.testing.assert_allclose(
        state["scores"], ref_state["scores"], atol=FINAL_SCORE_ATOL
    )
    # Both learned (chance: loss 0.69, AUC 0.5). The strong modality alone
    # predicts its label only: macro AUC about 0.75.
    assert ref_loss < 0.45 and loss < 0.45
    assert state["scores"][0] > 0.7 and ref_state["scores"][0] > 0.7


# ----------------------------------------------------------------------------
# 2. A .keras file saved under one backend, loaded under the others.
# ----------------------------------------------------------------------------
SUBPROCESS_SCRIPT = r"""
import json, os, sys
import numpy as np
import keras
import keras_miam  # what a user imports; nothing else from keras_miam yet
out, here_file = sys.argv[1], sys.argv[2]
info = {"backend": keras.backend.backend(), "keras": keras.__version__}
try:
    loaded = keras.saving.load_model(here_file)
    info["loads_after_import_keras_miam_only"] = True
except Exception as error:
    info["loads_after_import_keras_miam_only"] = False
    info["load_error"] = f"{type(error).__name__}: {str(error)[:300]}"
sys.path.insert(0, os.environ["KERAS_MIAM_ROOT"])
from tests.test_faults import portable_model, portable_inputs
from tests.test_faults import portable_functional_model, portable_targets
if not info["loads_after_import_keras_miam_only"]:
    import keras_miam.models, keras_miam.tokenizers  # the workaround
    loaded = keras.saving.load_model(here_file)
np.save(os.path.join(out, "loaded_predictions.npy"), loaded.predict(portable_inputs(), verbose=0))
portable_model().save(os.path.join(out, "model.keras"))
trained = portable_model()  # trained here: its optimizer has state
trained.fit(portable_inputs(), portable_targets(), epochs=1, verbose=0)
trained.save(os.path.join(out, "trained.keras"))
functional = portable_functional_model()
functional.fit(portable_inputs(), portable_targets(), epochs=1, verbose=0)
functional.save(os.path.join(out, "functional.keras"))
info["jit_compile"] = bool(trained.jit_compile)
with open(os.path.join(out, "info.json"), "w") as f:
    json.dump(info, f)
"""
# One partner backend per run keeps this to one subprocess: across the three
# runs of the suite (tensorflow -> jax -> torch -> tensorflow) every ordered
# pair of backends is checked once in each direction. KERAS_MIAM_ALL_BACKENDS=1
# checks both other backends in every run.
PARTNER = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[BACKEND]
OTHER_BACKENDS = (
    [b for b in ("tensorflow", "jax", "torch") if b != BACKEND]
    if os.environ.get("KERAS_MIAM_ALL_BACKENDS") == "1"
    else [PARTNER]
)
RTOL, ATOL = 1e-4, 1e-5


def portable_inputs():
    rng = np.random.default_rng(5)
    x = {
        "env": rng.normal(size=(6, 5)).astype("float32"),
        "series": rng.normal(size=(6, 8, 2)).astype("float32"),
        "image": rng.normal(size=(6, 8, 8, 3)).astype("float32"),
    }
    x["env"][0, 1] = np.nan
    x["series"][1] = np.nan  # a missing modality
    x["image"][2, :4] = -3.4e38  # nodata
    for name in x:
        x[name][3] = np.nan  # an example with nothing
    return x


def portable_targets():
    return (np.arange(18).reshape(6, 3) % 2).astype("float32")


def portable_functional_model():
    """A user's functional model (the Quickstart pattern), compiled with
    Keras' defaults: `"adamw"` and `jit_compile="auto"`."""
    inputs = {
        "env": keras.Input((5,), name="env"),
        "series": keras.Input((8, 2), name="series"),
        "image": keras.Input((8, 8, 3), name="image"),
    }
    features, available = {}, {}
    for name, value in inputs.items():
        value, available[name] = km.layers.FillMissing()(value)
        value = keras.layers.Flatten()(value) if len(value.shape) > 2 else value
        features[name] = keras.layers.Dense(8, name=f"{name}_dense")(value)
    tokens, keep = km.MIAMMasking(list(inputs), seed=0)(features, mask=available)
    pooled = km.layers.VisibleMeanPooling()(tokens, mask=keep)
    model = keras.Model(inputs, keras.layers.Dense(3)(pooled))
    model.compile("adamw", keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def portable_model():
    """A MultimodalTransformer with weights and MIAM state fixed by seeds only."""
    model = km.models.MultimodalTransformer(
        {
            "env": km.tokenizers.TabularTokenizer(8, num_frequencies=4),
            "series": km.tokenizers.TimeSeriesTokenizer(8, patch_len=2),
            "image": km.tokenizers.ImagePatchTokenizer(8, patch_size=4),
        },
        num_outputs=3,
        num_layers=1,
        num_heads=2,
        seed=0,
    )
    model.compile()
    model(portable_inputs())
    rng = np.random.default_rng(0)
    for v in model.trainable_weights:
        v.assign(0.3 * rng.normal(size=v.shape).astype("float32"))
    model.masking.update_dynamics([0.8, 0.6, 0.55], [0.01, 0.05, 0.02])
    model.masking.update_dynamics([0.85, 0.62, 0.6], [0.02, 0.04, 0.03])
    return model


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory):
    """Saves the portable model here, then runs SUBPROCESS_SCRIPT under both
    other backends (in parallel): each loads this file, then saves its own."""
    here = tmp_path_factory.mktemp(f"saved_{BACKEND}")
    model = portable_model()
    model.save(here / "model.keras")
    reference = model.predict(portable_inputs(), verbose=0)
    procs = {}
    for backend in OTHER_BACKENDS:
        out = tmp_path_factory.mktemp(f"saved_{backend}")
        env = dict(
            os.environ,
            KERAS_BACKEND=backend,
            KERAS_MIAM_ROOT=str(ROOT),
            TF_CPP_MIN_LOG_LEVEL="3",
            CUDA_VISIBLE_DEVICES="",
        )
        procs[backend] = (
            out,
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    SUBPROCESS_SCRIPT,
                    str(out),
                    str(here / "model.keras"),
                ],
                env=env,
                cwd=str(ROOT),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
    results = {}
    for backend, (out, proc) in procs.items():
        log, _ = proc.communicate(timeout=400)
        assert proc.returncode == 0, f"the {backend} subprocess failed:\n{log[-3000:]}"
        results[backend] = {
            "dir": out,
            "info": json.loads((out / "info.json").read_text()),
        }
    return {"here": reference, "elsewhere": results}


@pytest.mark.parametrize("source", OTHER_BACKENDS)
def test_a_model_saved_under_another_backend_predicts_the_same(exchanged, source):
    out = exchanged["elsewhere"][source]["dir"]
    assert exchanged["elsewhere"][source]["info"]["backend"] == source
    loaded = keras.saving.load_model(out / "model.keras")
    x = portable_inputs()
    predictions = loaded.predict(x, verbose=0)
    assert np.all(np.isfinite(predictions))
    # The file holds exactly the model built here from the same seeds (the
    # other backend built it)...
    here = portable_model()
    assert len(loaded.weights) == len(here.weights)
    for a, b in zip(loaded.weights, here.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
    # ... and predicts what this backend predicts with it.
    np.testing.assert_allclose(predictions, exchanged["here"], rtol=RTOL, atol=ATOL)
    # The MIAM state and strategy travelled too.
    state, expected = loaded.masking.dynamics_state(), here.masking.dynamics_state()
    np.testing.assert_array_equal(state["history"], expected["history"])
    assert state["num_updates"] == 2 and state["ready"]
    np.testing.assert_allclose(
        loaded.masking.mask_ratios(), here.masking.mask_ratios(), rtol=1e-6
    )
    assert loaded.masking.strategy == here.masking.strategy
    # Example 3 (nothing available) gets the "no information" prediction, not example 4's.
    assert not np.allclose(predictions[3], predictions[4], atol=1e-4)


@pytest.mark.parametrize("target", OTHER_BACKENDS)
def test_a_model_saved_here_predicts_the_same_under_another_backend(exchanged, target):
    out = exchanged["elsewhere"][target]["dir"]
    np.testing.assert_allclose(
        np.load(out / "loaded_predictions.npy"), exchanged["here"], rtol=RTOL, atol=ATOL
    )


def test_load_model_after_import_keras_miam(exchanged):
    """A fresh process that only ran `import keras_miam` loads the file (the
    registered classes must not wait for a lazy submodule import)."""
    for target, result in exchanged["elsewhere"].items():
        info = result["info"]
        assert info["loads_after_import_keras_miam_only"], (
            target,
            info.get("load_error"),
        )


@pytest.mark.parametrize("source", OTHER_BACKENDS)
def test_a_transformer_saved_under_another_backend_trains_here(exchanged, source):
    """`load_model` compiles it for this backend: the optimizer is this
    backend's class (a torch file stores TorchAdamW), with its saved state,
    and `jit_compile` is what `"auto"` means here, not the value resolved
    under the other backend (JAX's True would mean torch.compile on torch)."""
    out = exchanged["elsewhere"][source]["dir"]
    loaded = keras.saving.load_model(out / "trained.keras")
    here = portable_model()
    assert type(loaded.optimizer) is type(here.optimizer)
    assert loaded.jit_compile == here.jit_compile
    assert int(ops.convert_to_numpy(loaded.optimizer.iterations)) == 1  # kept
    before = [ops.convert_to_numpy(v) for v in loaded.trainable_weights]
    history = loaded.fit(portable_inputs(), portable_targets(), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert int(ops.convert_to_numpy(loaded.optimizer.iterations)) == 3
    changed = [
        not np.allclose(ops.convert_to_numpy(v), b)
        for v, b in zip(loaded.trainable_weights, before)
    ]
    assert sum(changed) > len(changed) // 2
    # Saved again here, it reloads here as it is.
    loaded.save(out / "again.keras")
    assert keras.saving.load_model(out / "again.keras").jit_compile == here.jit_compile


@pytest.mark.parametrize("source", OTHER_BACKENDS)
def test_a_functional_model_from_another_backend_trains_after_compile(
    exchanged, source
):
    """The documented way for a user's own model, whose compile Keras
    restores as saved (another backend's optimizer class, resolved
    `jit_compile`): `load_model(..., compile=False)`, then `compile()`."""
    out = exchanged["elsewhere"][source]["dir"]
    loaded = keras.saving.load_model(out / "functional.keras", compile=False)
    loaded.compile("adamw", keras.losses.BinaryCrossentropy(from_logits=True))
    history = loaded.fit(portable_inputs(), portable_targets(), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(loaded.predict(portable_inputs(), verbose=0)).all()
