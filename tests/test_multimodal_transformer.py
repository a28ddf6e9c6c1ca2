"""Tests of MultimodalTransformer (run under every Keras backend)."""

import json
import os

import keras
import numpy as np
import pytest

import keras_miam as km
from keras_miam.losses import MaskedBinaryCrossentropy
from keras_miam.models import MultimodalTransformer
from keras_miam.tokenizers import EmbeddingTokenizer
from keras_miam.tokenizers import ImagePatchTokenizer
from keras_miam.tokenizers import TabularTokenizer
from keras_miam.tokenizers import TimeSeriesTokenizer
from tests.conftest import JIT

D = 16


def jit_compile():
    """`jit_compile` of the training test: compiled on every backend.

    XLA on TensorFlow and JAX. On torch, `jit_compile=True` means
    `torch.compile`, which costs minutes per model on a small CPU: it runs
    when `KERAS_MIAM_TORCH_COMPILE=1` is set; otherwise torch runs eagerly,
    as in the rest of the suite (`tests.conftest.JIT`).
    """
    if keras.backend.backend() == "torch":
        return os.environ.get("KERAS_MIAM_TORCH_COMPILE") == "1"
    return True


def make_tokenizers(dim=D):
    return {
        "env": TabularTokenizer(dim, num_frequencies=8, frequency_scale=0.1),
        "climate": TimeSeriesTokenizer(dim, patch_len=4),
        "image": ImagePatchTokenizer(dim, patch_size=4),
    }


def make_model(**kwargs):
    config = dict(num_outputs=3, num_layers=1, num_heads=2, dropout=0.0, seed=0)
    config.update(kwargs)
    return MultimodalTransformer(make_tokenizers(), **config)


def make_data(n=64, seed=0):
    """A learnable task: each label reads one modality."""
    rng = np.random.default_rng(seed)
    x = {
        "env": rng.normal(size=(n, 5)).astype("float32"),
        "climate": rng.normal(size=(n, 12, 2)).astype("float32"),
        "image": rng.normal(size=(n, 8, 8, 3)).astype("float32"),
    }
    y = np.stack(
        [
            x["env"][:, 0] > 0,
            x["climate"][:, :, 0].mean(axis=1) > 0,
            x["image"][..., 1].mean(axis=(1, 2)) > 0,
        ],
        axis=1,
    ).astype("float32")
    return x, y


def predict(model, x):
    # One batch shape (64) everywhere: a single compiled predict graph.
    return model.predict(x, batch_size=64, verbose=0)


@pytest.fixture(scope="module")
def trained():
    """Trains one model, compiled, on data with missing values.

    Shared by the tests below (training and compiling once keeps the file
    fast); returns the model, its training data, history and the loss on
    the training data before and after training.
    """
    x, y = make_data(256, seed=0)
    rng = np.random.default_rng(2)
    x["image"][rng.random(256) < 0.2] = np.nan  # missing image
    x["env"][rng.random((256, 5)) < 0.1] = np.nan  # missing variables
    x["climate"][:8, :6] = np.nan  # partly missing series
    model = make_model()
    model.compile(
        optimizer=keras.optimizers.AdamW(3e-3, weight_decay=0.01),
        jit_compile=jit_compile(),
    )
    # Keras' torch trainer builds a model before compiling `fit` and
    # `evaluate` but not `predict`; building inside torch.compile fails.
    model.build({name: (None,) + value.shape[1:] for name, value in x.items()})
    initial = binary_crossentropy(y, predict(model, x))
    history = model.fit(x, y, batch_size=32, epochs=12, verbose=0)
    final = binary_crossentropy(y, predict(model, x))
    return model, x, history.history, initial, final


@pytest.fixture
def model(trained):
    return trained[0]


@pytest.fixture(params=["mixed_bfloat16", "mixed_float16"])
def mixed_policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


def binary_crossentropy(y, logits):
    return float(np.mean(np.logaddexp(0, logits) - y * logits))


def test_exposes_the_masking_layer(model):
    assert isinstance(model.masking, km.MIAMMasking)
    assert model.masking.modalities == ["env", "climate", "image"]
    assert model.masking.token_slices == {
        "env": (0, 5),
        "climate": (5, 8),
        "image": (8, 12),
    }
    assert type(model.masking.strategy).__name__ == "MIAM"


def test_output_shape_and_dtype(model):
    x, _ = make_data(64)
    logits = predict(model, x)
    assert logits.shape == (64, 3)
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()


def test_missing_modality_equals_hidden_modality(model):
    x, _ = make_data(64)
    missing = {**x, "image": np.full_like(x["image"], np.nan)}
    from_nan = predict(model, missing)
    model.masking.set_visible(["env", "climate"])
    try:
        hidden = predict(model, x)
    finally:
        model.masking.reset_visible()
    full = predict(model, x)
    assert np.isfinite(from_nan).all()
    np.testing.assert_allclose(from_nan, hidden, rtol=1e-5, atol=1e-6)
    assert not np.allclose(from_nan, full, atol=1e-4)


def test_every_modality_missing_gives_a_finite_prediction(model):
    x, _ = make_data(64)
    for name in x:
        x[name][:2] = np.nan  # examples 0 and 1 have no data at all
    logits = predict(model, x)
    assert np.isfinite(logits).all()
    # Both see only mask tokens: the same "no information" prediction.
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits[0], logits[2], atol=1e-4)


def test_partly_missing_inputs_give_finite_predictions(model):
    x, _ = make_data(64)
    rng = np.random.default_rng(1)
    for name in x:
        x[name][rng.random(x[name].shape) < 0.3] = np.nan
    x["env"][3, 2] = np.inf
    x["image"][4, :4] = -1e30
    assert np.isfinite(predict(model, x)).all()


def test_position_information_matters(model):
    """Moving whole tokens changes the output: only positions tell them apart.

    Attention is permutation-equivariant and mean pooling symmetric, so
    without position embeddings these permutations would not change it.
    """
    x, _ = make_data(64)
    base = predict(model, x)
    # Reverse the order of the three 4-step segments of the series.
    segments = x["climate"].reshape(64, 3, 4, 2)[:, ::-1].reshape(64, 12, 2)
    # Swap the two rows of 4x4 patches.
    patch_rows = np.roll(x["image"], 4, axis=1)
    for name, permuted in (("climate", segments), ("image", patch_rows)):
        moved = predict(model, {**x, name: permuted})
        assert np.abs(moved - base).max() > 1e-4, name


def test_fit_learns_with_missing_data(trained):
    model, _, history, initial, final = trained
    assert model.jit_compile == jit_compile()
    assert np.isfinite(history["loss"]).all()
    assert history["auc"][-1] > history["auc"][0]
    assert final < 0.7 * initial, (initial, final)
    for weight in model.weights:  # NaN inputs gave finite gradients
        assert np.isfinite(keras.ops.convert_to_numpy(weight)).all(), weight.path


def test_save_and_load_predict_identically(trained, tmp_path):
    model, x, *_ = trained
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, MultimodalTransformer)
    assert isinstance(loaded.masking, km.MIAMMasking)
    assert list(loaded.tokenizers) == ["env", "climate", "image"]
    assert json.dumps(loaded.get_config()) == json.dumps(model.get_config())
    # The default loss and metric (NaN targets ignored) travel with the file.
    assert isinstance(loaded.loss, MaskedBinaryCrossentropy)
    assert isinstance(loaded.loss, keras.losses.BinaryCrossentropy)
    assert "keras_miam>MaskedAUC" in json.dumps(loaded.get_compile_config())
    np.testing.assert_array_equal(predict(loaded, x), predict(model, x))


def test_multiclass_with_cls_pooling_and_embeddings():
    rng = np.random.default_rng(0)
    # 8 features: the projections have the shapes of the series tokenizer's,
    # whose initialisation is compiled already (JAX builds op by op).
    x = {
        "audio": rng.normal(size=(64, 8)).astype("float32"),
        "location": rng.normal(size=(64, 8)).astype("float32"),
    }
    y = (x["location"][:, 0] > 0).astype("int32") + 2 * (x["audio"][:, 0] > 0)
    x["audio"][:4] = np.nan  # no recording
    model = MultimodalTransformer(
        {"audio": EmbeddingTokenizer(D), "location": EmbeddingTokenizer(D)},
        num_outputs=4,
        task="multiclass",
        pooling="cls",
        num_layers=1,
        num_heads=2,
        strategy="uniform",
    )
    model.compile(jit_compile=JIT)
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert "accuracy" in history.history
    x["location"][:4] = np.nan  # examples 0-3: nothing at all
    logits = model.predict(x, verbose=0)
    assert logits.shape == (64, 4)
    assert np.isfinite(logits).all()
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-5, atol=1e-6)


def test_mixed_precision(mixed_policy):
    # dropout > 0: with dropout 0, Keras' attention calls
    # jax.nn.dot_product_attention, which rejects float16 on CPU.
    model = make_model(dropout=0.1)
    x, _ = make_data(8)
    x["image"][0] = np.nan
    logits = model.predict_on_batch(x)
    assert logits.shape == (8, 3)
    assert logits.dtype == np.float32  # the head computes in float32
    assert np.isfinite(logits).all()
    compute_dtype = mixed_policy.split("_")[1]
    assert model.encoder_layers[0].compute_dtype == compute_dtype
    assert model.masking.compute_dtype == compute_dtype
    assert model.tokenizers["env"].compute_dtype == compute_dtype


@pytest.mark.parametrize(
    "inputs, message",
    [
        (lambda x: {k: x[k] for k in ("env", "climate")}, r"missing: \['image'\]"),
        (lambda x: {**x, "sound": x["env"]}, r"unexpected: \['sound'\]"),
        (lambda x: [x["env"], x["climate"], x["image"]], "as a dict"),
        (lambda x: {**x, "env": x["env"][:, :, None]}, "expects a 2-D input"),
        (lambda x: {**x, "climate": x["climate"][:, :, 0]}, "expects a 3-D"),
        (
            lambda x: {**x, "image": np.transpose(x["image"], (0, 3, 1, 2))},
            "looks channels-first",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(inputs, message):
    x, _ = make_data(4)
    with pytest.raises(ValueError, match=message):
        make_model()(inputs(x))


def test_bad_inputs_after_build_raise_clear_errors(model):
    x, _ = make_data(4)
    with pytest.raises(ValueError, match=r"missing: \['climate'\]"):
        model({"env": x["env"], "image": x["image"]})
    with pytest.raises(ValueError, match="must divide"):
        model({**x, "image": np.zeros((4, 10, 10, 3), "float32")})


def test_image_patch_size_must_divide_images():
    tokenizers = make_tokenizers()
    tokenizers["image"] = ImagePatchTokenizer(D, patch_size=3)
    model = MultimodalTransformer(tokenizers, num_outputs=3, num_layers=1)
    with pytest.raises(ValueError, match="`patch_size=3` must divide"):
        model(make_data(4)[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"tokenizers": {**make_tokenizers(), "image": ImagePatchTokenizer(8, 4)}},
            "tokens of one size; received .*'image': 8",
        ),
        ({"tokenizers": {}}, "non-empty"),
        ({"tokenizers": {"env": "tabular"}}, "to Keras layers"),
        ({"task": "regression"}, "`task` must be 'multilabel' or"),
        ({"pooling": "max"}, "`pooling` 'mean' or 'cls'.*received .*'max'"),
        ({"num_outputs": 0}, "`num_outputs` a positive int; .*num_outputs=0"),
        ({"strategy": "random"}, "Unknown masking strategy"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    config = {"tokenizers": make_tokenizers(), "num_outputs": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        MultimodalTransformer(**config)
