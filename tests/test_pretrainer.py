"""Tests of MultimodalPretrainer (run under every Keras backend)."""

import json
import os

import keras
import numpy as np
import pytest

import keras_miam as km
from keras_miam.models import MultimodalPretrainer
from keras_miam.models import MultimodalTransformer
from keras_miam.tokenizers import EmbeddingTokenizer
from keras_miam.tokenizers import ImagePatchTokenizer
from keras_miam.tokenizers import TabularTokenizer
from keras_miam.tokenizers import TimeSeriesTokenizer
from tests.conftest import JIT

D = 16


def make_tokenizers():
    return {
        "env": TabularTokenizer(D, num_frequencies=8, frequency_scale=0.1),
        "climate": TimeSeriesTokenizer(D, patch_len=4),
        "image": ImagePatchTokenizer(D, patch_size=4),
    }


def make_data(n=96, seed=0):
    """env: 6 variables, copies of 2 latents; climate and image: noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    env = np.repeat(latent, 3, axis=1) + 0.1 * rng.normal(size=(n, 6))
    climate = rng.normal(size=(n, 8, 2))
    image = rng.normal(size=(n, 8, 8, 2))
    return {
        "env": env.astype("float32"),
        "climate": climate.astype("float32"),
        "image": image.astype("float32"),
    }


def make_model(strategy="uniform", **kwargs):
    kwargs.setdefault("num_layers", 1)
    kwargs.setdefault("num_heads", 2)
    return MultimodalPretrainer(make_tokenizers(), strategy=strategy, seed=0, **kwargs)


def built_model(x, **kwargs):
    model = make_model(**kwargs)
    model({k: v[:2] for k, v in x.items()})
    return model


def test_outputs_one_reconstruction_per_token_value():
    x = make_data(4)
    model = built_model(x)
    out = model(x)
    recon = out["reconstructions"]
    # Values per token: 1 per variable, patch_len * channels per segment,
    # patch_size^2 * channels per patch.
    assert tuple(recon["env"].shape) == (4, 6, 1)
    assert tuple(recon["climate"].shape) == (4, 2, 8)
    assert tuple(recon["image"].shape) == (4, 4, 32)
    assert tuple(out["visible"].shape) == (4, 12)
    assert np.all(keras.ops.convert_to_numpy(out["visible"]))
    targets, known = model.reconstruction_targets(x)
    # The image target of patch (0, 1) is the pixels of rows 0-3, cols 4-7.
    expected = x["image"][0, 0:4, 4:8, :].reshape(-1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(targets["image"])[0, 1], expected
    )


def test_loss_counts_masked_available_values_only():
    x = make_data(4)
    x["env"][0, 0] = np.nan  # a missing value of a masked token
    x["image"][1] = np.nan  # a missing image: no target at all
    model = built_model(x)
    rng = np.random.default_rng(0)
    recon = {
        name: rng.normal(size=(4, *shape)).astype("float32")
        for name, shape in (("env", (6, 1)), ("climate", (2, 8)), ("image", (4, 32)))
    }
    visible = rng.random((4, 12)) < 0.5
    loss = model.compute_loss(
        x=x, y=None, y_pred={"reconstructions": recon, "visible": visible}
    )
    # NumPy reference: per modality, mean squared error over the masked
    # values that are not NaN; then the mean over modalities.
    slices = {"env": (0, 6), "climate": (6, 8), "image": (8, 12)}
    grouped = {
        "env": x["env"][:, :, None],
        "climate": x["climate"].reshape(4, 2, 8),
        "image": x["image"]
        .reshape(4, 2, 4, 2, 4, 2)
        .transpose(0, 1, 3, 2, 4, 5)
        .reshape(4, 4, 32),
    }
    per_modality = []
    for name, (start, stop) in slices.items():
        weight = ~visible[:, start:stop, None] & ~np.isnan(grouped[name])
        error = (recon[name] - np.nan_to_num(grouped[name])) ** 2
        per_modality.append(error[weight].mean())
    loss = float(keras.ops.convert_to_numpy(loss))
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, np.mean(per_modality), rtol=1e-5)
    # Everything visible: nothing to reconstruct, loss 0.
    zero = model.compute_loss(
        x=x, y_pred={"reconstructions": recon, "visible": np.ones((4, 12), bool)}
    )
    assert float(keras.ops.convert_to_numpy(zero)) == 0.0


def test_fit_without_labels_learns_and_scores_rank_modalities():
    # env is 3 noisy copies of 2 latents, so its hidden variables can be
    # completed from the visible ones; climate and image are pure noise.
    # Seeded: the unseeded initializers would otherwise draw from whatever
    # the tests before left in the global random state (over seeds 0-7 on
    # torch, 0-2 on jax and tensorflow, env's lead was 0.023 to 0.15).
    keras.utils.set_random_seed(0)
    x = make_data(256)
    x["image"][:16] = np.nan
    x["env"][16:32, 2] = np.nan
    model = make_model(strategy="miam")
    model.compile(
        optimizer=keras.optimizers.AdamW(3e-3, weight_decay=0.01), jit_compile=JIT
    )
    history = model.fit(x, epochs=12, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]
    weights = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert all(np.all(np.isfinite(w)) for w in weights)
    scores = model.modality_scores(make_data(128, seed=1))
    # Noise cannot be completed: MSE >= 1, score <= 0.5.
    assert scores[1] < 0.52 and scores[2] < 0.52
    assert scores[0] > max(scores[1], scores[2]) + 0.02


def test_fit_rejects_labels_and_compile_rejects_a_loss():
    x = make_data(8)
    model = make_model()
    with pytest.raises(ValueError, match="loss"):
        model.compile(loss="mse")
    model.compile(jit_compile=JIT)
    with pytest.raises(ValueError, match="without targets"):
        model.fit(x, np.zeros((8, 3), "float32"), epochs=1, verbose=0)


def test_modality_scores_match_a_numpy_reference():
    x = make_data(40)
    x["image"][:5] = np.nan
    model = built_model(x)
    errors = model.modality_errors(x, batch_size=16)
    scores = model.modality_scores(x, batch_size=16)
    np.testing.assert_allclose(scores, 1.0 / (1.0 + errors))
    assert np.all((scores > 0) & (scores <= 1))
    # Reference for "image": per selection (half of its patches visible,
    # every other modality hidden), the error of the hidden half.
    targets, known = model.reconstruction_targets(x)
    target = keras.ops.convert_to_numpy(targets["image"])
    known = keras.ops.convert_to_numpy(known["image"])
    total, count = 0.0, 0
    for name, selection, scored in model.score_selections():
        if name != "image":
            continue
        model.masking.set_visible(selection)
        recon = model.predict(x, verbose=0)["reconstructions"]["image"]
        model.masking.reset_visible()
        weight = known & scored[8:12][None, :, None]
        total += float(((recon - target) ** 2)[weight].sum())
        count += int(weight.sum())
    np.testing.assert_allclose(errors[2], total / count, rtol=1e-5)
    halves = [s for n, _, s in model.score_selections() if n == "image"]
    assert len(halves) == 2 and not np.any(halves[0] & halves[1])
    np.testing.assert_array_equal(halves[0] | halves[1], np.arange(12) >= 8)


def test_one_token_modality_is_scored_from_the_others():
    rng = np.random.default_rng(0)
    x = {
        "env": rng.normal(size=(16, 4)).astype("float32"),
        "audio": rng.normal(size=(16, 5)).astype("float32"),
    }
    model = MultimodalPretrainer(
        {"env": TabularTokenizer(D), "audio": EmbeddingTokenizer(D)},
        num_layers=1,
        num_heads=2,
    )
    model(x)
    selections = {n: s for n, s, _ in model.score_selections()}
    assert selections["audio"] == {"env": True}
    assert model.modality_scores(x).shape == (2,)


def test_reconstruction_scores_drive_miam_during_fit():
    x, x_val = make_data(64), make_data(32, seed=1)
    model = make_model(strategy="miam")
    model.compile(jit_compile=JIT)
    history = model.fit(
        x,
        epochs=3,
        batch_size=16,
        callbacks=[km.ModalityDynamics(x_val, metric="reconstruction")],
        verbose=0,
    )
    state = model.masking.dynamics_state()
    assert state["num_updates"] == 3 and state["ready"]
    # The stored scores are the model's reconstruction scores after the
    # last epoch, and they are what the logs show.
    np.testing.assert_allclose(state["scores"], model.modality_scores(x_val), rtol=1e-5)
    logged = [history.history[f"val_{m}_reconstruction"] for m in model.modalities]
    np.testing.assert_allclose(np.array(logged)[:, -1], state["scores"], rtol=1e-6)
    np.testing.assert_allclose(state["history"], np.array(logged).T, rtol=1e-6)
    ratios = model.masking.mask_ratios()
    assert not np.allclose(ratios, 1.0)  # MIAM's r_m moved from 1
    np.testing.assert_allclose(
        [history.history[f"{m}_mask_ratio"][-1] for m in model.modalities],
        ratios,
        rtol=1e-5,
    )


def test_reconstruction_metric_needs_a_pretrainer():
    x = make_data(16)
    y = np.zeros((16, 2), "float32")
    model = MultimodalTransformer(make_tokenizers(), num_outputs=2, num_layers=1)
    model.compile(jit_compile=JIT)
    callback = km.ModalityDynamics((x, y), metric="reconstruction")
    with pytest.raises(ValueError, match="modality_scores"):
        model.fit(x, y, epochs=1, batch_size=8, callbacks=[callback], verbose=0)


def test_fine_tuning_trains_the_pretrained_backbone_itself():
    """Fine-tuning is the supervised task on the same backbone: no copy."""
    x = make_data(32)
    y = (np.random.default_rng(0).random((32, 3)) < 0.5).astype("float32")
    pretrainer = built_model(x)
    model = MultimodalTransformer(backbone=pretrainer.backbone, num_outputs=3)
    assert model.backbone is pretrainer.backbone
    encoder = [w.copy() for w in pretrainer.encoder_layers[0].get_weights()]
    model.compile(jit_compile=JIT)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = pretrainer.encoder_layers[0].get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(encoder, after))
    np.testing.assert_array_equal(model.encoder_layers[0].get_weights()[0], after[0])


def test_linear_probe_trains_the_head_only():
    x = make_data(32)
    y = (np.random.default_rng(0).random((32, 3)) < 0.5).astype("float32")
    pretrainer = built_model(x)
    model = pretrainer.to_transformer(3, freeze_backbone=True)
    model(x)  # built: its head has weights
    trainable = {w.path.split("/")[-2] for w in model.trainable_weights}
    assert trainable == {"final_norm", "head"}
    encoder = [w.copy() for w in model.encoder_layers[0].get_weights()]
    head = model.head.get_weights()[0].copy()
    model.compile(jit_compile=JIT)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(encoder, model.encoder_layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head, model.head.get_weights()[0])


def test_presets_of_the_backbone_and_both_tasks(tmp_path):
    x = make_data(16)
    pretrainer = built_model(x)
    pretrainer.masking.set_visible(["env"])  # not saved with the preset
    model = MultimodalTransformer(backbone=pretrainer.backbone, num_outputs=2)
    model(x)
    pretrainer.masking.reset_visible()
    expected = model.predict(x, verbose=0)
    pretrainer.masking.set_visible(["env"])
    for obj in (pretrainer.backbone, pretrainer, model):
        path = str(tmp_path / type(obj).__name__)
        obj.save_to_preset(path)
        loaded = type(obj).from_preset(path)
        assert type(loaded) is type(obj) and loaded.masking.visible_pattern(None).all()
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded.masking.view_patterns), 1.0
        )
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-5)
    backbone = km.models.MultimodalBackbone.from_preset(
        str(tmp_path / "MultimodalBackbone")
    )
    probe = MultimodalTransformer(backbone=backbone, num_outputs=2)
    probe.compile(jit_compile=JIT)
    assert np.isfinite(probe.fit(x, np.ones((16, 2)), verbose=0).history["loss"]).all()
    with pytest.raises(ValueError, match="holds a MultimodalBackbone"):
        MultimodalPretrainer.from_preset(str(tmp_path / "MultimodalBackbone"))


OTHER = {"torch": "jax", "jax": "tensorflow", "tensorflow": "torch"}
LOAD_AND_TRAIN = """
import sys, numpy as np, keras, keras_miam as km
model = km.models.MultimodalTransformer.from_preset(sys.argv[1])
x = {k: v for k, v in np.load(sys.argv[2]).items()}
np.save(sys.argv[3], model.predict(x, verbose=0))
model.compile()
loss = model.fit(x, np.ones((16, 2)), verbose=0).history["loss"]
assert np.isfinite(loss).all(), loss
"""


def test_a_preset_saved_here_loads_and_trains_under_another_backend(tmp_path):
    import subprocess
    import sys

    x = make_data(16)
    model = MultimodalTransformer(make_tokenizers(), num_outputs=2, num_layers=1)
    model(x)
    model.save_to_preset(str(tmp_path / "preset"))
    np.savez(tmp_path / "x.npz", **x)
    env = {**os.environ, "KERAS_BACKEND": OTHER[keras.backend.backend()]}
    subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_TRAIN,
            str(tmp_path / "preset"),
            str(tmp_path / "x.npz"),
            str(tmp_path / "y.npy"),
        ],
        env=env,
        check=True,
        timeout=600,
    )
    np.testing.assert_allclose(
        np.load(tmp_path / "y.npy"), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5
    )


def test_save_and_load(tmp_path):
    x = make_data(32)
    model = make_model(strategy="miam", num_layers=2)
    model.compile(jit_compile=JIT)
    model.fit(x, epochs=1, batch_size=16, verbose=0)
    model.masking.update_dynamics([0.9, 0.5, 0.4], [0.01, 0.02, 0.05])
    path = os.path.join(tmp_path, "pretrainer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, MultimodalPretrainer)
    assert json.loads(json.dumps(loaded.get_config())) == json.loads(
        json.dumps(model.get_config())
    )
    expected = model.predict(x, verbose=0)["reconstructions"]
    received = loaded.predict(x, verbose=0)["reconstructions"]
    for name in model.modalities:
        np.testing.assert_allclose(received[name], expected[name], atol=1e-5)
    np.testing.assert_allclose(
        loaded.masking.mask_ratios(), model.masking.mask_ratios()
    )
    loaded.fit(x, epochs=1, batch_size=16, verbose=0)  # the optimizer resumes
    transferred = MultimodalTransformer(backbone=loaded.backbone, num_outputs=2)
    path = os.path.join(tmp_path, "transferred.keras")
    transferred.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), transferred.predict(x, verbose=0), atol=1e-5
    )


def test_exported_and_documented():
    assert km.models.MultimodalPretrainer is MultimodalPretrainer
    assert "Reference" in MultimodalPretrainer.__doc__
