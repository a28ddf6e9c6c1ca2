"""Missing data in a user's own model: the README Quickstart, on NaN data.

`FillMissing` before the user's encoders, `MIAMMasking(mask=...)` and
`VisibleMeanPooling`: with NaN in single values, whole modalities and whole
examples, every weight stays finite and every prediction is finite, and
examples with nothing observed get one "nothing observed" prediction.
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_miam as km
from tests.conftest import JIT

N, BATCH, SPECIES = 96, 32, 4


def quickstart_model(hidden=16):
    """The README Quickstart, at test size."""
    inputs = {
        "env": keras.Input((20,), name="env"),
        "image": keras.Input((16, 16, 4), name="image"),
    }
    env_x, env_ok = km.layers.FillMissing()(inputs["env"])
    img_x, img_ok = km.layers.FillMissing()(inputs["image"])
    env = keras.layers.Dense(hidden, activation="relu", name="env_dense")(env_x)
    img = keras.layers.Dense(hidden, activation="relu", name="image_dense")(
        keras.layers.Flatten()(img_x)
    )
    masking = km.MIAMMasking(["env", "image"], strategy="miam", seed=0, name="masking")
    tokens, keep = masking(
        {"env": env, "image": img}, mask={"env": env_ok, "image": img_ok}
    )
    pooled = km.layers.VisibleMeanPooling()(tokens, mask=keep)
    model = keras.Model(inputs, keras.layers.Dense(SPECIES)(pooled))
    model.compile(
        "adamw", keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=JIT
    )
    return model


def make_data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = {
        "env": rng.normal(size=(n, 20)).astype("float32"),
        "image": rng.normal(size=(n, 16, 16, 4)).astype("float32"),
    }
    logits = x["env"][:, :SPECIES] + x["image"][:, :4, :4, 0].mean((1, 2))[:, None]
    y = (logits > 0).astype("float32")
    return x, y


def with_missing(x, seed=1):
    """NaN / inf / nodata in single values (env rows 25 %), whole modalities
    (env of 8-15, image of 16-23) and whole examples (0-7)."""
    rng = np.random.default_rng(seed)
    x = {k: v.copy() for k, v in x.items()}
    rows = rng.uniform(size=len(x["env"])) < 0.25
    x["env"][rows, rng.integers(0, 20, rows.sum())] = np.nan
    x["image"][rng.uniform(size=x["image"].shape) < 0.01] = np.inf
    x["env"][8:16] = np.nan
    x["image"][16:24] = -3.4e38
    for marker, i in zip((np.nan, np.inf, -np.inf, 1e20), range(0, 8, 2)):
        x["env"][i : i + 2] = marker
        x["image"][i : i + 2] = marker
    return x


def all_finite(model):
    return all(
        np.isfinite(ops.convert_to_numpy(v)).all()
        for v in model.weights + model.optimizer.variables
        if "float" in v.dtype
    )


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = quickstart_model()
    x, y = make_data()
    x = with_missing(x)
    val = (x, y)
    history = model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=2,
        validation_data=val,
        callbacks=[km.ModalityDynamics(val)],
        verbose=0,
    )
    return model, x, history.history


def test_quickstart_on_missing_data_keeps_every_weight_finite(trained):
    model, _, history = trained
    assert len(history["loss"]) == 2  # ModalityDynamics did not stop training
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["val_loss"]).all()
    assert np.isfinite(history["val_env_auc"]).all()
    assert all_finite(model)
    assert model.get_layer("masking").dynamics_state()["num_updates"] == 2


def test_nothing_observed_gets_one_finite_prediction(trained):
    model, x, _ = trained
    logits = model.predict(x, batch_size=BATCH, verbose=0)
    assert np.isfinite(logits).all()
    for i in range(1, 8):  # NaN, inf, -inf, nodata: the same prediction
        np.testing.assert_allclose(logits[i], logits[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits[30], logits[0], atol=1e-4)


def test_a_selection_with_nothing_visible_is_finite(trained):
    """`set_visible(["env"])` on examples whose env is missing (8-15)."""
    model, x, _ = trained
    masking = model.get_layer("masking")
    with masking.views([["env"]]):
        logits = model.predict(x, batch_size=BATCH, verbose=0)
    assert np.isfinite(logits).all()
    nothing = model.predict({k: v[:1] for k, v in x.items()}, verbose=0)
    np.testing.assert_allclose(logits[8:16], np.repeat(nothing, 8, 0), atol=1e-5)


def test_limit_global_average_pooling_divides_zero_by_zero():
    """Why the Quickstart uses VisibleMeanPooling: Keras' masked average of
    an example with no visible token is 0 / 0."""
    tokens = np.ones((2, 3, 4), "float32")
    keep = np.array([[True, False, True], [False, False, False]])
    keras_pool = ops.convert_to_numpy(
        keras.layers.GlobalAveragePooling1D()(tokens, mask=keep)
    )
    ours = ops.convert_to_numpy(km.layers.VisibleMeanPooling()(tokens, mask=keep))
    np.testing.assert_allclose(ours[0], keras_pool[0])
    np.testing.assert_allclose(ours[1], np.ones(4))  # mean of all tokens
    assert not np.isfinite(keras_pool[1]).all()


def test_visible_mean_pooling_averages_the_visible_tokens():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(3, 4, 5)).astype("float32")
    keep = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], bool)
    out = ops.convert_to_numpy(km.layers.VisibleMeanPooling()(tokens, mask=keep))
    np.testing.assert_allclose(out[0], tokens[0, [0, 2]].mean(0), rtol=1e-6)
    np.testing.assert_allclose(out[1], tokens[1, 3], rtol=1e-6)
    np.testing.assert_allclose(out[2], tokens[2].mean(0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"mask of shape \(batch, tokens\)"):
        km.layers.VisibleMeanPooling()(tokens, mask=keep[:, :3])


def test_fill_missing_follows_the_tokenizers_rule():
    x = np.array(
        [
            [1.0, np.nan, np.inf, -3.4e38, 1e11, -7.0],
            [np.nan] * 6,
            [-np.inf, 1e20, np.nan, -7.0, -7.0, -7.0],
            [2.0, 1e10, 0.0, 0.0, 0.0, 0.0],  # 1e10 is still a value
        ],
        "float32",
    )
    values, available = km.layers.FillMissing()(x)
    values = ops.convert_to_numpy(values)
    np.testing.assert_array_equal(ops.convert_to_numpy(available), [1, 0, 1, 1])
    np.testing.assert_array_equal(values[0], [1, 0, 0, 0, 0, -7])
    np.testing.assert_array_equal(values[1], np.zeros(6))
    assert values[3, 1] == np.float32(1e10)
    # nodata= and fill_value=, and the availability of one token per step.
    values, available = km.layers.FillMissing(nodata=-7.0, fill_value=0.5)(x)
    np.testing.assert_array_equal(ops.convert_to_numpy(available), [1, 0, 0, 1])
    assert ops.convert_to_numpy(values)[0, -1] == 0.5
    series = np.full((2, 3, 2), np.nan, "float32")
    series[0, 1, 0] = 1.0
    _, available = km.layers.FillMissing(token_axis=1)(series)
    np.testing.assert_array_equal(ops.convert_to_numpy(available), [[0, 1, 0], [0] * 3])
    # Integers are cast to float.
    values, available = km.layers.FillMissing()(np.arange(6).reshape(2, 3))
    assert "float" in str(values.dtype) and ops.convert_to_numpy(available).all()
    layer = km.layers.FillMissing.from_config(
        km.layers.FillMissing(nodata=-9999, token_axis=1).get_config()
    )
    assert (layer.nodata, layer.token_axis) == (-9999.0, 1)
    with pytest.raises(ValueError, match="fill_value"):
        km.layers.FillMissing(fill_value=np.nan)
    with pytest.raises(ValueError, match="token_axis"):
        km.layers.FillMissing(token_axis=0)
