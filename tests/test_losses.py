"""MaskedBinaryCrossentropy: soft targets in [0, 1], NaN targets ignored."""

import keras
import numpy as np
import pytest

from keras_miam.losses import MaskedBinaryCrossentropy


def reference(y, logits, sample_weight=None):
    """sum(w * bce) / sum(w) over the observed entries, in float64."""
    p = 1.0 / (1.0 + np.exp(-logits))
    seen = ~np.isnan(y)
    t = np.where(seen, y, 0.0)
    bce = -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))
    w = seen * (1.0 if sample_weight is None else sample_weight[:, None])
    return np.sum(w * bce) / np.sum(w)


def test_soft_targets_with_nan_match_a_numpy_reference(rng):
    # SatBird-like encounter rates: soft targets in [0, 1], some unobserved.
    y = rng.random((16, 5))
    y[rng.random(y.shape) < 0.3] = np.nan
    y[0] = np.nan  # an example without any observed target
    logits = rng.normal(size=(16, 5))
    weights = rng.random(16)
    loss = MaskedBinaryCrossentropy(from_logits=True)
    assert float(loss(y, logits)) == pytest.approx(reference(y, logits), rel=1e-5)
    assert float(loss(y, logits, sample_weight=weights)) == pytest.approx(
        reference(y, logits, weights), rel=1e-5
    )
    probabilities = MaskedBinaryCrossentropy()(y, 1.0 / (1.0 + np.exp(-logits)))
    assert float(probabilities) == pytest.approx(reference(y, logits), rel=1e-4)
    # Without NaN it is Keras' own loss, soft targets included.
    full = rng.random((16, 5))
    keras_loss = keras.losses.BinaryCrossentropy(from_logits=True)(full, logits)
    assert float(loss(full, logits)) == pytest.approx(float(keras_loss), rel=1e-5)
    # Nothing observed: loss 0, not NaN.
    assert float(loss(np.full((2, 5), np.nan), logits[:2])) == 0.0


def test_nan_targets_give_finite_training(rng):
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.random((64, 3)).astype("float32")
    y[rng.random(y.shape) < 0.4] = np.nan
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile("adam", MaskedBinaryCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
