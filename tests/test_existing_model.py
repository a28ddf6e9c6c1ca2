"""The examples/existing_model.py path: MIAMMasking inside a user's own model."""

import importlib.util
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_miam as km
from tests.conftest import JIT

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "existing_model.py"


def load_example():
    spec = importlib.util.spec_from_file_location("existing_model", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.fixture(scope="module")
def trained():
    """The example's model, trained a few epochs on the example's data."""
    x, y = example.make_data(512, num_species=4, seed=0)
    model = example.build_model(num_species=4, embed_dim=16, seed=0)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-2),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        jit_compile=JIT,
    )
    history = model.fit(x, y, batch_size=64, epochs=6, verbose=0)
    return model, x, y, history.history["loss"]


def keep_mask_model(model):
    """The same layers, read at MIAMMasking's keep mask."""
    _, keep = model.get_layer("miam_masking").output
    return keras.Model(model.inputs, keep)


def test_the_user_model_trains(trained):
    model, x, _, losses = trained
    assert isinstance(model.get_layer("miam_masking"), km.MIAMMasking)
    assert all(np.isnan(value).any() for value in x.values())  # NaN data
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.85 * losses[0], losses
    # NaN never reached the encoders: every weight is finite.
    for weight in model.weights + model.optimizer.variables:
        assert np.isfinite(keras.ops.convert_to_numpy(weight)).all(), weight.path


def test_nothing_observed_gets_one_finite_prediction(trained):
    model, x, _, _ = trained
    batch = {name: value[:8].copy() for name, value in x.items()}
    for name in batch:
        batch[name][:4] = [np.nan, np.inf, -3.4e38, np.nan][list(batch).index(name)]
    logits = keras.ops.convert_to_numpy(model(batch, training=False))
    assert np.isfinite(logits).all()
    np.testing.assert_allclose(logits[1:4], np.repeat(logits[:1], 3, 0), atol=1e-6)
    assert not np.allclose(logits[4], logits[0], atol=1e-4)


def test_masking_applies_during_training_only(trained):
    model, x, _, _ = trained
    batch = {name: value[:256] for name, value in x.items()}
    available = np.stack(
        [~np.isnan(batch[name]).all(axis=1) for name in example.MODALITIES], axis=1
    )
    assert not available.all()
    keep = keep_mask_model(model)
    # Inference: exactly the available modalities are visible.
    at_inference = keras.ops.convert_to_numpy(keep(batch, training=False))
    np.testing.assert_array_equal(at_inference, available)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(batch, training=False)),
        keras.ops.convert_to_numpy(model(batch, training=False)),
    )
    # Training: modalities are hidden at random, never a missing one shown.
    in_training = keras.ops.convert_to_numpy(keep(batch, training=True))
    assert not (in_training & ~available).any()
    assert 0.2 < (available & ~in_training).sum() / available.sum() < 0.9
    assert in_training.any(axis=1)[available.any(axis=1)].all()


def test_missing_modality_is_the_mask_token(trained):
    model, x, _, _ = trained
    batch = {name: value[:8].copy() for name, value in x.items()}
    masking = model.get_layer("miam_masking")
    masking.set_visible(["env", "climate"])
    try:
        hidden = keras.ops.convert_to_numpy(model(batch, training=False))
    finally:
        masking.reset_visible()
    batch["image"][:] = np.nan  # missing in the data = hidden
    missing = keras.ops.convert_to_numpy(model(batch, training=False))
    np.testing.assert_allclose(missing, hidden, rtol=1e-6, atol=1e-6)
    batch["image"][:] = -3.4e38  # any missing marker
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(batch, training=False)), missing, atol=1e-6
    )


def test_script_help_lists_options():
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--epochs" in result.stdout
    assert "MIAMMasking" in result.stdout
    assert "(default: 10)" in result.stdout  # defaults are shown
