"""Tests of the modality tokenizers (run under every Keras backend)."""

import math

import keras
import numpy as np
import pytest
from keras import ops

import keras_miam as km
from keras_miam.missing import is_missing
from keras_miam.tokenizers import EmbeddingTokenizer
from keras_miam.tokenizers import ImagePatchTokenizer
from keras_miam.tokenizers import TabularTokenizer
from keras_miam.tokenizers import TimeSeriesTokenizer

D = 16


def np_(x):
    return np.asarray(ops.convert_to_numpy(x))


def rng(seed=0):
    return np.random.default_rng(seed)


# One (tokenizer factory, input, number of tokens) per tokenizer.
CASES = {
    "tabular": (
        lambda: TabularTokenizer(D, num_frequencies=8),
        lambda: rng().normal(size=(3, 5)).astype("float32"),
        5,
    ),
    "time_series": (
        lambda: TimeSeriesTokenizer(D, patch_len=4),
        lambda: rng().normal(size=(3, 12, 2)).astype("float32"),
        3,
    ),
    "image": (
        lambda: ImagePatchTokenizer(D, patch_size=4),
        lambda: rng().normal(size=(3, 8, 12, 3)).astype("float32"),
        6,
    ),
    "embedding": (
        lambda: EmbeddingTokenizer(D),
        lambda: rng().normal(size=(3, 7)).astype("float32"),
        1,
    ),
}


@pytest.fixture(params=["mixed_bfloat16", "mixed_float16"])
def mixed_policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


def test_exported_under_km_tokenizers():
    assert km.tokenizers.TabularTokenizer is TabularTokenizer
    assert issubclass(ImagePatchTokenizer, km.tokenizers.Tokenizer)


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_shape_dtype_and_availability(case):
    make, data, num_tokens = CASES[case]
    tokenizer, x = make(), data()
    tokens = tokenizer(x)
    assert tuple(tokens.shape) == (3, num_tokens, D)
    assert keras.backend.standardize_dtype(tokens.dtype) == "float32"
    assert tokenizer.compute_output_shape(x.shape) == (3, num_tokens, D)
    available = tokenizer.compute_availability(x)
    assert keras.backend.standardize_dtype(available.dtype) == "bool"
    assert np_(available).shape == (3, num_tokens)
    assert np_(available).all()
    np.testing.assert_array_equal(np_(tokenizer.compute_mask(x)), np_(available))


@pytest.mark.parametrize("case", ["tabular", "image"])
def test_mixed_precision_dtypes(mixed_policy, case):
    make, data, num_tokens = CASES[case]
    tokenizer, x = make(), data()
    x[0] = np.nan
    tokens = tokenizer(x)
    compute_dtype = mixed_policy.split("_")[1]
    assert keras.backend.standardize_dtype(tokens.dtype) == compute_dtype
    assert tuple(tokens.shape) == (3, num_tokens, D)
    assert np.isfinite(np_(ops.cast(tokens, "float32"))).all()
    x[1].reshape(-1)[0] = 1e5  # beyond float16's range, but a valid value
    assert all(
        keras.backend.standardize_dtype(w.dtype) == "float32" for w in tokenizer.weights
    )
    available = np_(tokenizer.compute_availability(x))
    assert not available[0].any()
    assert available[1:].all()  # missing values are found in float32


def test_missing_value_rule_per_token():
    tokenizer = TimeSeriesTokenizer(D, patch_len=2, nodata=-999.0)
    x = rng().normal(size=(1, 12, 2)).astype("float32")
    x[0, 0:2] = np.nan  # token 0: all NaN -> missing
    x[0, 2:4] = [[np.inf, -np.inf], [np.nan, 1e20]]  # token 1: all missing
    x[0, 4:6] = -999.0  # token 2: all nodata -> missing
    x[0, 6, 0] = np.nan  # token 3: partly missing -> available
    x[0, 8:10] = [[-3e38, np.nan], [2.0, np.nan]]  # token 4: partly missing
    available = np_(tokenizer.compute_availability(x))[0]
    np.testing.assert_array_equal(available, [False, False, False, True, True, True])


def test_partly_missing_values_are_zero_filled():
    tokenizer = ImagePatchTokenizer(D, patch_size=4, nodata=-1)
    x = rng().uniform(1, 5, size=(3, 8, 12, 3)).astype("float32")
    holes = x.copy()
    holes[0, 0, 0, :] = np.nan
    holes[0, 1, 1, 2] = np.inf
    holes[1, 7, 5, 1] = -1  # nodata
    zeros = holes.copy()
    zeros[~np.isfinite(zeros) | (zeros == -1)] = 0.0
    tokens = np_(tokenizer(holes))
    np.testing.assert_allclose(tokens, np_(tokenizer(zeros)), atol=1e-6)
    assert not np.allclose(tokens, np_(tokenizer(x)))
    assert np_(tokenizer.compute_availability(holes)).all()


def test_integer_images_with_nodata():
    tokenizer = ImagePatchTokenizer(D, patch_size=4, nodata=-1)
    x = rng().integers(0, 3000, size=(3, 8, 12, 3)).astype("int16")
    x[1, :4, 4:8] = -1  # one whole patch of nodata (as GeoPlant tiffs)
    tokens = tokenizer(x)
    assert keras.backend.standardize_dtype(tokens.dtype) == "float32"
    expected = np.ones((3, 6), bool)
    expected[1, 1] = False
    np.testing.assert_array_equal(np_(tokenizer.compute_availability(x)), expected)


# Flatten drops the tokenizer's Keras mask on purpose: gradients flow
# through every token here, missing ones included.
@pytest.mark.filterwarnings("ignore:.*does not support masking")
@pytest.mark.parametrize("case", sorted(CASES))
def test_nan_never_reaches_outputs_or_gradients(case):
    make, data, _ = CASES[case]
    tokenizer, x = make(), data()
    x.reshape(3, -1)[0] = np.nan  # example 0: everything missing
    x.reshape(3, -1)[1, ::2] = np.nan  # example 1: partly missing
    x.reshape(3, -1)[2, :1] = np.inf
    inputs = keras.Input(x.shape[1:])
    tokens = tokenizer(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(tokens))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    assert np.isfinite(np_(tokenizer(x))).all()
    loss = model.train_on_batch(x, np.ones((3, 1), "float32"))
    assert np.isfinite(loss)
    for weight in model.weights:
        assert np.isfinite(np_(weight)).all(), weight.path


def test_keras_mask_propagates_to_miam_masking():
    """In a functional model, availability reaches MIAMMasking by itself."""
    env = keras.Input((5,), name="env")
    image = keras.Input((8, 12, 3), name="image")
    tokens = {
        "env": CASES["tabular"][0]()(env),
        "image": CASES["image"][0]()(image),
    }
    _, keep = km.MIAMMasking(["env", "image"])(tokens)
    model = keras.Model({"env": env, "image": image}, keep)
    x = {"env": CASES["tabular"][1](), "image": CASES["image"][1]()}
    x["env"][0, 1] = np.nan
    x["image"][1, :4, 4:8] = np.nan  # patch (0, 1) of example 1
    expected = np.ones((3, 11), bool)
    expected[0, 1] = False
    expected[1, 5 + 1] = False
    np.testing.assert_array_equal(model.predict_on_batch(x), expected)


def test_keras_mask_drives_mask_aware_layers():
    inputs = keras.Input((12, 2))
    tokens = CASES["time_series"][0]()(inputs)
    pooled = keras.layers.GlobalAveragePooling1D()(tokens)
    model = keras.Model(inputs, [tokens, pooled])
    x = CASES["time_series"][1]()
    x[0, 4:8] = np.nan  # segment 1 of example 0
    tokens, pooled = model.predict_on_batch(x)
    expected = tokens[0, [0, 2]].mean(axis=0)
    np.testing.assert_allclose(pooled[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled[1], tokens[1].mean(axis=0), rtol=1e-5)


def test_tabular_periodic_embedding_formula():
    tokenizer = TabularTokenizer(D, num_frequencies=8, frequency_scale=0.5)
    x = CASES["tabular"][1]()
    tokens = np_(tokenizer(x))
    w = np_(tokenizer.frequencies)
    assert w.shape == (5, 8)
    assert np.abs(w).max() <= 2 * 0.5 + 1e-6  # truncated normal
    v = 2 * math.pi * w[None] * x[:, :, None]
    periodic = np.concatenate([np.cos(v), np.sin(v)], axis=-1)
    hidden = np.einsum("bfk,fkd->bfd", periodic, np_(tokenizer.kernel))
    expected = (
        np.maximum(hidden + np_(tokenizer.bias), 0)
        + np_(tokenizer.position_embeddings)
        + np_(tokenizer.modality_embedding)
    )
    np.testing.assert_allclose(tokens, expected, rtol=1e-4, atol=1e-5)


def test_time_series_token_is_projection_of_its_segment():
    tokenizer = TimeSeriesTokenizer(D, patch_len=4)
    x = CASES["time_series"][1]()
    tokens = np_(tokenizer(x))
    kernel, bias = (np_(w) for w in tokenizer.projection.weights)
    segment = x[:, 4:8].reshape(3, 8)  # second segment, time-major
    expected = (
        segment @ kernel
        + bias
        + np_(tokenizer.position_embeddings)[1]
        + np_(tokenizer.modality_embedding)
    )
    np.testing.assert_allclose(tokens[:, 1], expected, rtol=1e-5, atol=1e-5)


def test_image_tokens_are_row_major_patches():
    tokenizer = ImagePatchTokenizer(D, patch_size=4)
    x = np.zeros((3, 8, 12, 3), "float32")
    x[0, 4:8, 8:12] = np.nan  # patch at row 1, column 2 -> token 1 * 3 + 2
    available = np_(tokenizer.compute_availability(x))[0]
    np.testing.assert_array_equal(available, [True] * 5 + [False])


@pytest.mark.parametrize("case", ["time_series", "image"])
def test_position_information_matters(case):
    make, data, num_tokens = CASES[case]
    tokenizer, x = make(), data()
    tokens = np_(tokenizer(x))
    if case == "time_series":
        # Reverse the order of the 3 segments of 4 time steps.
        permuted = x.reshape(3, 3, 4, 2)[:, ::-1].reshape(x.shape)
    else:
        # Swap the two rows of 4x4 patches.
        permuted = np.concatenate([x[:, 4:], x[:, :4]], axis=1)
    order = {"time_series": [2, 1, 0], "image": [3, 4, 5, 0, 1, 2]}[case]
    moved = np_(tokenizer(permuted))
    # Contents move with the patches but position embeddings stay in place.
    assert not np.allclose(moved, tokens[:, order], atol=1e-4)
    stripped = tokens - np_(tokenizer(np.zeros_like(x)))
    moved_stripped = moved - np_(tokenizer(np.zeros_like(x)))
    np.testing.assert_allclose(moved_stripped, stripped[:, order], atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trip(case):
    make, data, _ = CASES[case]
    tokenizer, x = make(), data()
    tokens = np_(tokenizer(x))
    config = keras.saving.serialize_keras_object(tokenizer)
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(tokenizer)
    assert clone.get_config() == tokenizer.get_config()
    assert clone.built  # from the build config
    clone.set_weights(tokenizer.get_weights())
    np.testing.assert_allclose(np_(clone(x)), tokens, atol=1e-6)


@pytest.mark.parametrize(
    "make, shape, message",
    [
        (lambda: TabularTokenizer(D), (2, 5, 1), "expects a 2-D input"),
        (lambda: EmbeddingTokenizer(D), (2, 1, 8), "expects a 2-D input"),
        (lambda: TimeSeriesTokenizer(D), (2, 12), "expects a 3-D input"),
        (lambda: ImagePatchTokenizer(D, 4), (2, 8, 8), "expects a 4-D"),
        (lambda: ImagePatchTokenizer(D, 8), (2, 4, 64, 64), "channels-first"),
        (lambda: ImagePatchTokenizer(D, 8), (2, 3, 32, 32), "channels-first"),
        (lambda: ImagePatchTokenizer(D, 5), (2, 64, 64, 4), "must divide"),
        (lambda: ImagePatchTokenizer(D, 8), (2, 64, 60, 4), "must divide"),
        (lambda: TimeSeriesTokenizer(D, 5), (2, 228, 4), "must divide"),
    ],
)
def test_bad_inputs_raise_clear_errors(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make()(np.zeros(shape, "float32"))


def test_channels_last_feature_maps_are_accepted():
    # Small grids with many channels (e.g. CNN features) are channels-last.
    tokenizer = ImagePatchTokenizer(D, patch_size=1)
    tokenizer.build((None, 4, 4, 64))
    assert tokenizer.num_tokens == 16


@pytest.mark.parametrize(
    "case, shape, message",
    [
        ("tabular", (3, 6), r"'env' was built for 5 features; received shape \(3, 6\)"),
        ("time_series", (3, 8, 2), r"built for series of shape \(batch, 12, 2\)"),
        ("image", (3, 8, 8, 3), r"built for images of shape \(batch, 8, 12, 3\)"),
        ("embedding", (3, 6), r"built for embeddings of size 7; received"),
    ],
)
def test_shape_changes_after_build_raise(case, shape, message):
    make, data, _ = CASES[case]
    tokenizer = type(make())(**{**make().get_config(), "name": "env"})
    tokenizer(data())
    with pytest.raises(ValueError, match=message):
        tokenizer(np.zeros(shape, "float32"))
    with pytest.raises(ValueError, match=message):
        tokenizer.compute_availability(np.zeros(shape, "float32"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_availability_follows_the_one_missing_value_rule(case):
    """A token is missing where `is_missing` (numpy) holds for all its values."""
    make, data, num_tokens = CASES[case]
    tokenizer = type(make())(**{**make().get_config(), "nodata": -7.0})
    x = data()
    flat = x.reshape(3, -1)
    holes = rng(1).random(flat.shape) < 0.5
    flat[holes] = rng(2).choice([np.nan, np.inf, -np.inf, 3e38, -7.0], holes.sum())
    flat[0] = rng(3).choice([np.nan, -np.inf, -2e10, -7.0], flat.shape[1])
    flat[2, 1:] = np.nan
    missing = is_missing(x, nodata=-7.0, xp=np)
    expected = ~np_(tokenizer._group_values(missing)).all(axis=-1)
    assert expected.shape == (3, num_tokens) and not expected[0].any()
    np.testing.assert_array_equal(np_(tokenizer.compute_availability(x)), expected)
    np.testing.assert_array_equal(
        np_(is_missing(ops.convert_to_tensor(x), -7.0)), missing
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TabularTokenizer(0), "`embed_dim` must be a positive int"),
        (lambda: TabularTokenizer(8, num_frequencies=0), "`num_frequencies`"),
        (lambda: TabularTokenizer(8, frequency_scale=0), "`frequency_scale`"),
        (lambda: TimeSeriesTokenizer(8, patch_len=0), "`patch_len`"),
        (lambda: ImagePatchTokenizer(8, patch_size=2.5), "`patch_size`"),
    ],
)
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()
