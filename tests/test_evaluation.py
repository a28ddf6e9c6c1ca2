"""evaluate_subsets on models whose output is a known function of the tokens."""

import itertools

import keras
import numpy as np
import pandas as pd
import pytest
from keras import ops
from scipy import stats

from keras_miam import MIAMMasking
from keras_miam import ModalityDynamics
from keras_miam.evaluation import evaluate_selections
from keras_miam.evaluation import evaluate_subsets
from keras_miam.evaluation import view_predictions
from keras_miam.metrics import macro_auc
from tests import readout_models
from tests.array_batches import ArrayBatches
from tests.readout_models import mean_prediction
from tests.readout_models import shown

COUNTS = {"a": 2, "b": 3, "c": 1}


def build_model(readout, counts=COUNTS, dim=2, max_views=64):
    return readout_models.build_model(readout, counts, dim=dim, max_views=max_views)


def token_sum(tokens, keep, layer, outputs=1):
    """Sum of the first feature of the visible tokens, repeated per output."""
    total = ops.sum(ops.cast(keep, "float32") * tokens[:, :, 0], axis=1, keepdims=True)
    return ops.repeat(total, outputs, axis=1)


def random_inputs(rng, n, counts=COUNTS, dim=2):
    return readout_models.random_inputs(rng, n, counts, dim)


def subset_rows(frame):
    return frame[frame["kind"] == "subset"]


def by_hand(model, layer, x, y, selection, metric):
    """The metric with `selection` visible: set_visible + predict."""
    layer.set_visible(selection)
    try:
        return metric(y, model.predict(x, verbose=0, batch_size=16))
    finally:
        layer.reset_visible()


def test_every_subset_of_an_additive_model(rng):
    coefs = {"a": 1.0, "b": 2.0, "c": 4.0}
    model, layer = build_model(
        lambda t, k, layer: ops.expand_dims(
            sum(c * shown(k, layer, m) for m, c in coefs.items()), 1
        )
    )
    x = random_inputs(rng, 20)
    frame = evaluate_subsets(
        model, (x, np.zeros((20, 1))), metric=mean_prediction, verbose=0
    )
    rows = subset_rows(frame)
    assert len(rows) == 7
    for label, row in rows.iterrows():
        members = label.split("+")
        assert row["mean_prediction"] == pytest.approx(sum(coefs[m] for m in members))
        assert row["size"] == len(members)
        assert [row[m] for m in "abc"] == [m in members for m in "abc"]
    means = frame[frame["kind"] == "mean"]
    assert list(means.index) == [
        "mean (size 1)",
        "mean (size 2)",
        "mean (size 3)",
        "mean (all subsets)",
    ]
    assert means["mean_prediction"].tolist() == pytest.approx([7 / 3, 14 / 3, 7, 4])
    assert means[["a", "b", "c"]].isna().all().all()
    assert frame.attrs["metric"] == "mean_prediction"


def test_agrees_with_set_visible_and_predict(rng):
    model, layer = build_model(token_sum)
    x, y = random_inputs(rng, 30), rng.normal(size=(30, 1))
    subsets = [
        "a",
        ["b", "c"],
        ("a", "b", "c"),
        {"b": [0, 2]},
        ("first a token and c", {"a": [0], "c": True}),
        {"a": np.array([False, True]), "b": False},
    ]

    def mse(y_true, y_pred):
        return np.mean((y_true - y_pred) ** 2)

    frame = subset_rows(
        evaluate_subsets(
            model,
            (x, y),
            metric=mse,
            subsets=subsets,
            batch_size=8,
            views_per_pass=4,
            verbose=0,
        )
    )
    assert list(frame.index) == [
        "a",
        "b+c",
        "a+b+c",
        "b[2/3]",
        "first a token and c",
        "a[1/2]",
    ]
    for selection, value in zip(subsets, frame["mse"]):
        if isinstance(selection, tuple) and isinstance(selection[1], dict):
            selection = selection[1]
        if isinstance(selection, tuple):
            selection = list(selection)
        assert value == pytest.approx(
            by_hand(model, layer, x, y, selection, mse), rel=1e-5
        )
    # Partial selections: modality columns are the fraction of visible tokens.
    assert frame.loc["b[2/3]", "b"] == pytest.approx(2 / 3)
    assert frame.loc["first a token and c", ["a", "c"]].tolist() == [0.5, 1.0]


def test_default_metric_is_macro_auc_on_a_designed_case(rng):
    # Tokens of a carry the label, those of c its opposite, b a constant:
    # AUC = 1 with a visible, else 0 with c visible, else 0.5 (ties).
    n = 40
    labels = rng.permutation(np.repeat([0.0, 1.0], n // 2))
    x = {
        "a": np.repeat(labels[:, None, None], 2, axis=1) * np.ones((1, 1, 2)),
        "b": np.full((n, 3, 2), 0.5),
        "c": (1.0 - labels)[:, None, None] * np.ones((1, 1, 2)),
    }
    x = {m: v.astype("float32") for m, v in x.items()}
    # A second output with a single class in the split is left out.
    y = np.stack([labels, np.zeros(n)], axis=1)
    model, _ = build_model(lambda t, k, layer: token_sum(t, k, layer, outputs=2))
    frame = subset_rows(evaluate_subsets(model, (x, y), verbose=0))
    expected = {
        "a": 1.0,
        "b": 0.5,
        "c": 0.0,
        "a+b": 1.0,
        "a+c": 1.0,
        "b+c": 0.0,
        "a+b+c": 1.0,
    }
    assert frame["auc"].to_dict() == pytest.approx(expected)


def test_default_metric_is_accuracy_for_class_ids(rng):
    def class_scores(tokens, keep, layer):
        # Scores of 3 classes from the visible tokens of a and b.
        visible = ops.cast(keep, "float32")[:, :, None] * tokens
        return ops.concatenate(
            [
                ops.sum(visible[:, 0:2], 1)[:, :1],
                ops.sum(visible[:, 2:5], 1),
            ],
            axis=1,
        )

    model, layer = build_model(class_scores)
    x, y = random_inputs(rng, 50), rng.integers(0, 3, size=50)
    frame = subset_rows(
        evaluate_subsets(model, (x, y), subsets=["a", ["a", "b"]], verbose=0)
    )

    def top1(y_true, y_pred):
        return np.mean(np.argmax(y_pred, axis=1) == y_true)

    assert frame.attrs["metric"] == "accuracy"
    for selection, value in zip(["a", ["a", "b"]], frame["accuracy"]):
        assert value == pytest.approx(by_hand(model, layer, x, y, selection, top1))


def test_keras_metric_is_streamed_per_subset(rng):
    model, layer = build_model(token_sum)
    x, y = random_inputs(rng, 25), rng.normal(size=(25, 1))
    frame = subset_rows(
        evaluate_subsets(
            model,
            (x, y),
            metric=keras.metrics.MeanAbsoluteError(),
            batch_size=10,
            verbose=0,
        )
    )
    for label, value in frame["mean_absolute_error"].items():
        expected = by_hand(
            model,
            layer,
            x,
            y,
            label.split("+"),
            lambda t, p: np.mean(np.abs(t - p)),
        )
        assert value == pytest.approx(expected, rel=1e-5)


def test_batching_does_not_change_values_and_visibility_is_restored(rng):
    model, layer = build_model(token_sum, max_views=8)
    x, y = random_inputs(rng, 23), rng.normal(size=(23, 1))
    layer.set_visible(["b"])
    before = ops.convert_to_numpy(layer.view_patterns).copy()
    runs = [
        evaluate_subsets(
            model,
            (x, y),
            metric="mse",
            batch_size=b,
            views_per_pass=v,
            verbose=0,
        )["mse"].to_numpy()
        for b, v in [(64, 8), (8, 3), (12, 1)]
    ]
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-5)
    np.testing.assert_allclose(runs[2], runs[0], rtol=1e-5)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer.view_patterns), before)
    assert float(ops.convert_to_numpy(layer.num_views)) == 1.0
    with pytest.raises(ValueError, match="views_per_pass"):
        evaluate_subsets(model, (x, y), metric="mse", views_per_pass=9, verbose=0)


def test_visibility_is_restored_after_an_error(rng):
    model, layer = build_model(token_sum)
    x, y = random_inputs(rng, 10), rng.normal(size=(10, 1))

    def broken(y_true, y_pred):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match="boom"):
        evaluate_subsets(model, (x, y), metric=broken, verbose=0)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer.view_patterns), 1.0)
    assert float(ops.convert_to_numpy(layer.num_views)) == 1.0


def scored_by_hand(model, layer, x, selections):
    """Predictions per selection: set_visible + predict."""
    try:
        outputs = []
        for selection in selections:
            layer.set_visible(selection)
            outputs.append(model.predict(x, verbose=0, batch_size=16))
        return outputs
    finally:
        layer.reset_visible()


def test_view_predictions_match_set_visible(rng):
    model, layer = build_model(lambda t, k, layer: token_sum(t, k, layer, outputs=2))
    x = random_inputs(rng, 23)
    selections = ["a", ["b", "c"], {"a": [1], "b": [0, 2]}]
    passes = []
    chunks = list(
        view_predictions.iter_view_predictions(
            model, x, selections, layer, batch_size=6, progress=passes.append
        )
    )
    # b = 6 // 3 = 2 examples per view: 12 passes, the last one padded.
    assert sum(passes) == 12
    spans = [(start, stop) for _, start, stop, _ in chunks]
    assert spans == [(i, min(i + 2, 23)) for i in range(0, 23, 2)]
    for view, expected in enumerate(scored_by_hand(model, layer, x, selections)):
        got = np.concatenate([blocks[view] for _, _, _, blocks in chunks])
        assert got.shape == (23, 2)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer.view_patterns), 1.0)


def test_the_engine_is_given_the_layer(rng):
    """The engine does not search models: it takes the MIAMMasking layer;
    `predict_views` (for users) still finds it."""
    model, layer = build_model(token_sum)
    x = random_inputs(rng, 8)
    for bad in (None, "masking", model):
        with pytest.raises(ValueError, match="must be the model's MIAMMasking"):
            next(view_predictions.iter_view_predictions(model, x, ["a"], bad))
        with pytest.raises(ValueError, match="must be the model's MIAMMasking"):
            view_predictions.score_selections(model, x, None, ["a"], bad)
    found = view_predictions.predict_views(model, x, ["a", "b"])
    given = view_predictions.predict_views(model, x, ["a", "b"], masking=layer)
    for a, b in zip(found, given):
        np.testing.assert_array_equal(a, b)


def test_an_error_between_passes_leaves_the_model_intact(rng):
    model, layer = build_model(token_sum)
    x = random_inputs(rng, 20)
    weights = [w.copy() for w in model.get_weights()]
    before = model.predict(x, verbose=0)
    done = []

    def interrupt(count):
        done.append(count)
        if len(done) == 4:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        for _ in view_predictions.iter_view_predictions(
            model, x, ["a", "b"], layer, batch_size=4, progress=interrupt
        ):
            pass
    np.testing.assert_array_equal(ops.convert_to_numpy(layer.view_patterns), 1.0)
    assert float(ops.convert_to_numpy(layer.num_views)) == 1.0
    for old, new in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(new, old)
    np.testing.assert_allclose(model.predict(x, verbose=0), before, rtol=1e-6)


def test_a_model_evaluated_by_subsets_still_saves(rng, tmp_path):
    # List inputs, serializable layers: save and reload after the views
    # model has been cached on the model.
    counts = {"a": 2, "b": 3}
    inputs = [keras.Input((t, 4), name=m) for m, t in counts.items()]
    masking = MIAMMasking(list(counts), return_keep_mask=False, seed=1)
    pooled = keras.layers.GlobalAveragePooling1D()(masking(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(pooled))
    x = [rng.normal(size=(40, t, 4)).astype("float32") for t in (2, 3)]
    y = (rng.random((40, 3)) < 0.5).astype("float32")
    before = evaluate_subsets(model, (x, y), metric="auc", batch_size=8, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert len(loaded.weights) == len(model.weights)
    after = evaluate_subsets(loaded, (x, y), metric="auc", batch_size=8, verbose=0)
    np.testing.assert_allclose(after["auc"], before["auc"], rtol=1e-6)
    # AUC by hand for one subset.
    by_hand_auc = by_hand(model, masking, x, y, ["b"], macro_auc)
    assert before.loc["b", "auc"] == pytest.approx(by_hand_auc, rel=1e-6)


def test_datasets_give_the_values_of_arrays(rng):
    model, _ = build_model(token_sum)
    x, y = random_inputs(rng, 21), rng.normal(size=(21, 1)).astype("float32")
    expected = evaluate_subsets(model, (x, y), metric="mae", verbose=0)["mae"]
    from_pydataset = evaluate_subsets(
        model, ArrayBatches((x, y), 6), metric="mae", verbose=0
    )["mae"]
    np.testing.assert_allclose(from_pydataset, expected, rtol=1e-5)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="importing TensorFlow under another backend costs ~10 s",
)
def test_tf_data_gives_the_values_of_arrays(rng):
    import tensorflow as tf

    model, _ = build_model(token_sum)
    x, y = random_inputs(rng, 21), rng.normal(size=(21, 1)).astype("float32")
    expected = evaluate_subsets(model, (x, y), metric="mae", verbose=0)["mae"]
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    from_tf = evaluate_subsets(model, dataset, metric="mae", verbose=0)["mae"]
    np.testing.assert_allclose(from_tf, expected, rtol=1e-5)


def test_evaluate_selections_can_hide_everything(rng):
    model, _ = build_model(token_sum)
    x = random_inputs(rng, 6)
    nothing = {"a": False, "b": False, "c": False}
    values, name = evaluate_selections(
        model,
        (x, np.zeros(6)),
        [nothing, ["a", "b", "c"]],
        metric=mean_prediction,
        verbose=0,
    )
    expected = np.mean(sum(x[m][:, :, 0].sum(1) for m in "abc"))
    assert values.tolist() == pytest.approx([0.0, expected], rel=1e-5)
    assert name == "mean_prediction"


def test_macro_auc_matches_pairwise_counting(rng):
    y = rng.integers(0, 2, size=(30, 3))
    y[:, 2] = 1  # single class: ignored
    scores = np.round(rng.normal(size=(30, 3)), 1)  # with ties
    expected = []
    for k in range(2):
        pos, neg = scores[y[:, k] == 1, k], scores[y[:, k] == 0, k]
        pairs = [(p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg)]
        expected.append(np.mean(pairs))
    assert macro_auc(y, scores) == pytest.approx(np.mean(expected))
    # Ranks in the scores' own dtype: the same value from float32 scores.
    assert macro_auc(y, scores.astype("float32")) == pytest.approx(np.mean(expected))
    # A NaN score leaves its output without an AUC (and the mean too).
    scores[3, 0] = np.nan
    assert np.isnan(macro_auc(y, scores))


def test_macro_auc_leaves_out_unobserved_targets(rng):
    y = rng.integers(0, 2, size=(40, 3)).astype("float64")
    scores = np.round(rng.normal(size=(40, 3)) + y, 1)  # with ties
    y[rng.uniform(size=y.shape) < 0.3] = np.nan
    y[:, 2] = np.where(np.isnan(y[:, 2]), np.nan, 1.0)  # one class observed
    expected = []
    for k in range(2):
        seen = ~np.isnan(y[:, k])
        yk, sk = y[seen, k], scores[seen, k]
        expected.append(
            stats.mannwhitneyu(sk[yk == 1], sk[yk == 0]).statistic
            / ((yk == 1).sum() * (yk == 0).sum())
        )
    assert macro_auc(y, scores) == pytest.approx(np.mean(expected), abs=1e-12)
    # Scores of unobserved targets do not matter, even NaN ones...
    scores[np.isnan(y)] = np.nan
    assert macro_auc(y, scores) == pytest.approx(np.mean(expected), abs=1e-12)
    # ... but a NaN score for an observed target gives no AUC.
    scores[np.flatnonzero(~np.isnan(y[:, 0]))[0], 0] = np.nan
    assert np.isnan(macro_auc(y, scores))
    with pytest.raises(ValueError, match="0/1 labels"):
        macro_auc([[0.5], [1.0]], [[0.1], [0.2]])
    with pytest.raises(ValueError, match="undefined"):
        macro_auc([[np.nan], [1.0]], [[0.1], [0.2]])


def test_bad_inputs_raise_clear_errors(rng):
    model, _ = build_model(lambda t, k, layer: token_sum(t, k, layer, outputs=3))
    x = random_inputs(rng, 12)
    multi_hot = rng.integers(0, 2, size=(12, 3))
    multi_hot[:2] = 1
    class_ids = rng.integers(0, 3, size=12)
    with pytest.raises(ValueError, match="Unknown modality 'image'"):
        evaluate_subsets(model, (x, multi_hot), subsets=["a", "image"], verbose=0)
    with pytest.raises(ValueError, match="`subsets` is empty"):
        evaluate_subsets(model, (x, multi_hot), subsets=[], verbose=0)
    with pytest.raises(ValueError, match="Empty selection"):
        evaluate_subsets(model, (x, multi_hot), subsets=["a", []], verbose=0)
    with pytest.raises(ValueError, match="multi-label"):
        evaluate_subsets(model, (x, multi_hot), metric="accuracy", verbose=0)
    # AUC on class ids is one-vs-rest: the macro AUC of the one-hot labels.
    one_vs_rest = evaluate_subsets(model, (x, class_ids), metric="auc", verbose=0)
    one_hot = evaluate_subsets(
        model, (x, np.eye(3)[class_ids]), metric="auc", verbose=0
    )
    np.testing.assert_allclose(one_vs_rest["auc"], one_hot["auc"], rtol=1e-12)
    with pytest.raises(ValueError, match="class ids"):
        evaluate_subsets(model, (x, class_ids + 3), metric="auc", verbose=0)
    with pytest.raises(ValueError, match="could not choose a metric"):
        evaluate_subsets(model, (x, rng.normal(size=(12, 3))), verbose=0)
    with pytest.raises(ValueError, match="labels"):
        evaluate_subsets(model, x, verbose=0)
    with pytest.raises(ValueError, match="labels"):
        evaluate_subsets(model, (x, None), verbose=0)
    with pytest.raises(ValueError, match="does not fit the model"):
        evaluate_subsets(
            model,
            (x, rng.normal(size=(12, 5))),
            verbose=0,
            metric=keras.metrics.MeanSquaredError(),
        )
    with pytest.raises(ValueError, match="unique"):
        evaluate_subsets(model, (x, multi_hot), subsets=["a", ["a"]], verbose=0)
    with pytest.raises(ValueError, match="12 examples but y has 5"):
        evaluate_subsets(model, (x, multi_hot[:5]), verbose=0)
    assert isinstance(evaluate_subsets(model, (x, multi_hot), verbose=0), pd.DataFrame)


def test_views_restore_the_prior_visibility(rng):
    model, layer = build_model(token_sum)
    x = random_inputs(rng, 4)
    layer.set_visible(["c"])
    only_c = model.predict(x, verbose=0)
    layer.set_visible(["b"])
    only_b = model.predict(x, verbose=0)
    with layer.views([["a"], ["c"]]):
        assert float(ops.convert_to_numpy(layer.num_views)) == 2.0
        with layer.views(["c"]):
            np.testing.assert_allclose(model.predict(x, verbose=0), only_c)
        # The enclosing views are back: 2 blocks, a then c.
        assert float(ops.convert_to_numpy(layer.num_views)) == 2.0
        np.testing.assert_array_equal(
            ops.convert_to_numpy(layer.view_patterns)[:2],
            [layer.visible_pattern("a"), layer.visible_pattern("c")],
        )
    # Then the set_visible(["b"]) selection, not everything.
    assert float(ops.convert_to_numpy(layer.num_views)) == 1.0
    np.testing.assert_allclose(model.predict(x, verbose=0), only_b)
    with pytest.raises(RuntimeError, match="inside"):
        with layer.views(["a"]):
            raise RuntimeError("inside")
    np.testing.assert_allclose(model.predict(x, verbose=0), only_b)
    layer.reset_visible()


def test_selection_vocabulary_round_trips(rng):
    from keras_miam.evaluation import selections

    _, layer = build_model(token_sum)
    for subset in selections.all_subsets(layer.modalities, include_empty=True):
        label = selections.subset_label(subset)
        assert selections.parse_label(label) == subset
        pattern = layer.visible_pattern(
            selections.subset_selection(layer.modalities, subset)
        )
        assert selections.pattern_label(layer, pattern) == label
        again = layer.visible_pattern(selections.pattern_selection(layer, pattern))
        np.testing.assert_array_equal(again, pattern)
    assert selections.subset_label(("a", "b")) == "a+b"
    assert selections.parse_label("a + b") == ("a", "b")  # older tables
    assert selections.pattern_label(layer, layer.visible_pattern({"b": [0, 2]})) == (
        "b[2/3]"
    )
    assert len(selections.all_subsets("abc")) == 7


@pytest.mark.parametrize("name", ["top_k_f1", "micro_auc"])
def test_ranking_metrics_are_metric_names(rng, name):
    import keras_miam

    model, layer = build_model(lambda t, k, layer: token_sum(t, k, layer, outputs=30))
    x = random_inputs(rng, 20)
    y = (rng.random((20, 30)) < 0.2).astype("float32")
    y[rng.random((20, 30)) < 0.1] = np.nan
    frame = subset_rows(
        evaluate_subsets(
            model, (x, y), metric=name, subsets=["a", ["b", "c"]], verbose=0
        )
    )
    fn = getattr(keras_miam.metrics, name)
    for selection, value in zip(["a", ["b", "c"]], frame[name]):
        expected = by_hand(model, layer, x, y, selection, fn)
        assert value == pytest.approx(expected, rel=1e-6)
    # ModalityDynamics accepts it too (higher is better).
    assert ModalityDynamics((x, y), metric=name).metric == name


def test_from_logits_declares_a_logits_model(rng):
    """A logits model with a custom loss function: metric='accuracy' needs
    `from_logits=True`, then gives what its sigmoid twin gives, in
    evaluate_subsets, the callback and the Shapley functions."""
    from keras_miam.explain import modality_shapley

    def two_sums(t, k, layer):
        return token_sum(t, k, layer, outputs=2) - ops.convert_to_tensor([[0.0, 0.3]])

    logits, _ = build_model(two_sums)
    twin, _ = build_model(lambda t, k, layer: ops.sigmoid(two_sums(t, k, layer)))

    def my_loss(y_true, y_pred):
        return ops.mean(ops.binary_crossentropy(y_true, y_pred, from_logits=True))

    logits.compile("adam", my_loss)
    x = random_inputs(rng, 30)
    y = (rng.random((30, 2)) < 0.5).astype("float32")
    y[:2] = [[1, 1], [0, 0]]  # multi-label rows
    with pytest.raises(ValueError, match="from_logits=True"):
        evaluate_subsets(logits, (x, y), metric="accuracy", verbose=0)
    got = evaluate_subsets(
        logits, (x, y), metric="accuracy", from_logits=True, verbose=0
    )
    expected = evaluate_subsets(twin, (x, y), metric="accuracy", verbose=0)
    np.testing.assert_allclose(got["accuracy"], expected["accuracy"])
    assert got["accuracy"].nunique() > 2  # the subsets differ
    phi = modality_shapley(logits, (x, y), "accuracy", verbose=0, from_logits=True)
    phi_twin = modality_shapley(twin, (x, y), "accuracy", verbose=0)
    np.testing.assert_allclose(phi["value"], phi_twin["value"], atol=1e-12)
    logs = []
    for model, kwargs in ((logits, {"from_logits": True}), (twin, {})):
        callback = ModalityDynamics((x, y), metric="accuracy", **kwargs)
        callback.set_model(model)
        callback.on_train_begin()
        logs.append({})
        callback.on_epoch_end(0, logs[-1])
    for m in COUNTS:
        assert logs[0][f"val_{m}_accuracy"] == logs[1][f"val_{m}_accuracy"]
        assert logs[0][f"val_{m}_accuracy"] == pytest.approx(got.loc[m, "accuracy"])
