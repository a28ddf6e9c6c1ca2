"""Determinism: the same seeds give the same masks and the same training curve.

Scope and limits (see docs/robustness.md):

- On one backend and one machine, a seeded `MIAMMasking` (or an unseeded
  one after `keras.utils.set_random_seed`) draws the same masks, and two
  `fit` runs started from the same seeds give the same losses, weights and
  MIAM dynamics. On CPU we observe bitwise equality; the tests allow a
  relative tolerance of 1e-6 (losses, dynamics) and 1e-5 (weights), the
  order of float32 rounding, for multi-threaded reductions whose order may
  vary with the thread pool (TensorFlow's inter-op parallelism; on GPUs,
  atomics in reductions and some cuDNN / cuBLAS kernels).
- The random streams are backend-specific: the same seed gives different
  masks under TensorFlow, JAX and torch.
"""

import keras
import numpy as np
from keras import ops

import keras_miam as km
from tests.conftest import JIT

MODALITIES = ("a", "b")
TOKENS, FEATURES, DIM = 4, 3, 8
LOSS_RTOL = 1e-6
WEIGHT_RTOL, WEIGHT_ATOL = 1e-5, 1e-7


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    x = {
        "a": (z[:, None, :1] + 0.3 * rng.normal(size=(n, TOKENS, FEATURES))).astype(
            "float32"
        ),
        "b": (z[:, None, 1:] + 0.8 * rng.normal(size=(n, TOKENS, FEATURES))).astype(
            "float32"
        ),
    }
    x["b"][rng.uniform(size=(n, TOKENS)) < 0.2] = np.nan  # missing tokens
    y = (z > 0).astype("float32")
    return x, y


X, Y = make_data(256, seed=0)
X_VAL, Y_VAL = make_data(128, seed=1)


def tokens(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return {m: rng.normal(size=(n, TOKENS, DIM)).astype("float32") for m in MODALITIES}


def keep_masks(layer, x, calls=3):
    return [ops.convert_to_numpy(layer(x, training=True)[1]) for _ in range(calls)]


def test_a_seeded_layer_draws_the_same_masks():
    x = tokens()
    first = keep_masks(km.MIAMMasking(list(MODALITIES), seed=7), x)
    second = keep_masks(km.MIAMMasking(list(MODALITIES), seed=7), x)
    other = keep_masks(km.MIAMMasking(list(MODALITIES), seed=8), x)
    for a, b, c in zip(first, second, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    # Successive calls advance the stream.
    assert not np.array_equal(first[0], first[1])


def test_set_random_seed_makes_unseeded_layers_repeatable():
    x = tokens()
    runs = []
    for seed in (3, 3, 4):
        keras.utils.set_random_seed(seed)
        runs.append(keep_masks(km.MIAMMasking(list(MODALITIES)), x))
    for a, b, c in zip(*runs):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_dynamic_state_draws_are_repeatable():
    x = tokens()
    masks = []
    for _ in range(2):
        layer = km.MIAMMasking(list(MODALITIES), seed=11)
        layer(x)
        layer.update_dynamics([0.9, 0.6], [0.01, 0.05])
        masks.append(keep_masks(layer, x))
        p = layer.sample_probabilities(64, seed=5)
        # sample_probabilities uses its own seed: the training stream is untouched.
        np.testing.assert_array_equal(p, layer.sample_probabilities(64, seed=5))
    for a, b in zip(*masks):
        np.testing.assert_array_equal(a, b)


def make_model():
    inputs = {m: keras.Input((TOKENS, FEATURES), name=m) for m in MODALITIES}
    toks = {
        m: km.tokenizers.TimeSeriesTokenizer(DIM, name=f"tok_{m}")(inputs[m])
        for m in MODALITIES
    }
    x, _ = km.MIAMMasking(list(MODALITIES), name="masking")(
        toks
    )  # seed from set_random_seed
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dropout(0.2)(x)  # another random layer
    outputs = keras.layers.Dense(2, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", jit_compile=JIT)
    return model


def train(seed):
    keras.utils.set_random_seed(seed)
    model = make_model()
    history = model.fit(
        X,
        Y,
        batch_size=32,
        epochs=3,
        shuffle=True,
        verbose=0,
        callbacks=[km.ModalityDynamics((X_VAL, Y_VAL))],
    )
    weights = [ops.convert_to_numpy(w) for w in model.weights]
    return history.history, weights, model.get_layer("masking").dynamics_state()


def test_same_seeds_give_the_same_training_curve():
    history_1, weights_1, state_1 = train(seed=1)
    history_2, weights_2, state_2 = train(seed=1)
    assert set(history_1) >= {"loss", "val_a_auc", "val_b_auc", "a_mask_ratio"}
    for key in history_1:
        np.testing.assert_allclose(
            history_1[key], history_2[key], rtol=LOSS_RTOL, err_msg=key
        )
    assert len(weights_1) == len(weights_2)
    for w1, w2 in zip(weights_1, weights_2):
        np.testing.assert_allclose(w1, w2, rtol=WEIGHT_RTOL, atol=WEIGHT_ATOL)
    np.testing.assert_allclose(state_1["history"], state_2["history"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(
        state_1["derivatives"], state_2["derivatives"], rtol=LOSS_RTOL
    )
    assert state_1["num_updates"] == state_2["num_updates"] == 3
    # The curve is not trivially constant: training moved the loss.
    assert history_1["loss"][-1] < history_1["loss"][0]
