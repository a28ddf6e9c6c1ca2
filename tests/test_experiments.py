"""The experiment runners: train_and_evaluate's results, compare_strategies' table."""

import numpy as np
import pytest

import keras_miam as km
from tests.array_batches import ArrayBatches


def tiny_tokenizers(x):
    return km.experiments.default_tokenizers(x, embed_dim=8, max_tokens=2)


SETTINGS = dict(
    epochs=1,
    batch_size=64,
    tokenizers=tiny_tokenizers,
    model_kwargs={"num_layers": 1, "num_heads": 1},
)


@pytest.fixture(scope="module")
def splits():
    x, y, _ = km.datasets.make_synthetic_ecology(
        240,
        num_species=4,
        modalities=("env", "image"),
        num_env_features=4,
        image_size=8,
        seed=3,
    )
    return km.datasets.split_dataset(x, y, seed=0)


def test_table_and_runs(splits, capsys):
    train, val, test = splits
    table, runs = km.experiments.compare_strategies(
        train, val, test, strategies=["uniform"], oracle=True, verbose=2, **SETTINGS
    )
    mean = table.attrs["mean"]
    assert list(mean.index) == ["uniform", "oracle"]
    assert list(mean.columns) == ["env", "image", "env+image", "average"]
    values = mean.to_numpy()
    assert np.all((values > 0) & (values < 1))
    # The average is the mean of the subset columns; one seed: std 0.
    np.testing.assert_allclose(
        mean["average"], mean[["env", "image", "env+image"]].mean(axis=1)
    )
    assert np.all(table.attrs["std"].to_numpy() == 0)
    assert table.loc["uniform", "env"] == f"{mean.loc['uniform', 'env']:.4f} +- 0.0000"
    # One oracle model per subset, each scored on its own subset only.
    oracles = [r for r in runs if r["strategy"] == "oracle"]
    assert [r["subset"] for r in oracles] == [("env",), ("image",), ("env", "image")]
    for run in oracles:
        frame = run["subsets"]
        assert list(frame.index) == ["+".join(run["subset"])]
        label = "+".join(run["subset"])
        assert mean.loc["oracle", label] == pytest.approx(frame["auc"].iloc[0])
    text = capsys.readouterr().out
    assert f"[uniform seed 0] average {mean.loc['uniform', 'average']:.4f}" in text
    assert f"[oracle seed 0] average {mean.loc['oracle', 'average']:.4f}" in text


def test_strategy_names_must_be_distinct(splits):
    train, val, test = splits
    with pytest.raises(ValueError, match="its own name"):
        km.experiments.compare_strategies(
            train,
            val,
            test,
            strategies=["miam", {"name": "miam", "kappa": 5.0}],
            **SETTINGS,
        )
    with pytest.raises(ValueError, match="its own name"):
        km.experiments.compare_strategies(
            train,
            val,
            test,
            strategies=["oracle"],
            **SETTINGS,
        )


def test_strategies_labelled_by_a_dict(splits):
    """Two configurations of one strategy, each in its own row."""
    train, val, test = splits
    table, runs = km.experiments.compare_strategies(
        train,
        val,
        test,
        verbose=0,
        strategies={"miam": "miam", "miam_lambda3": {"name": "miam", "lambda_": 3.0}},
        **SETTINGS,
    )
    assert list(table.index) == ["miam", "miam_lambda3"]
    assert [r["strategy"] for r in runs] == ["miam", "miam_lambda3"]
    lambdas = [r["model"].masking.strategy.lambda_ for r in runs]
    assert lambdas == [1.0, 3.0]


def test_streamed_data_and_tokenizers_from_shapes(splits):
    import tensorflow as tf

    train, val, test = splits
    seen = []

    def tokenizers(shapes):
        seen.append(shapes)
        return tiny_tokenizers(shapes)

    result = km.experiments.train_and_evaluate(
        ArrayBatches(train, 64),
        tf.data.Dataset.from_tensor_slices(val).batch(32),
        tf.data.Dataset.from_tensor_slices(test).batch(32),
        strategy="miam",
        **{**SETTINGS, "tokenizers": tokenizers},
        verbose=0,
    )
    # The factory gets shapes (a batch of the PyDataset), never arrays.
    image_shape = train[0]["image"].shape[1:]
    assert seen == [{"env": (64, 4), "image": (64, *image_shape)}]
    assert len(result["history"]["val_env_auc"]) == 1
    frame = result["subsets"]
    assert list(frame[frame["kind"] == "subset"].index) == ["env", "image", "env+image"]
    # The tf.data test split is scored like its arrays.
    again = km.evaluation.evaluate_subsets(result["model"], test, verbose=0)
    np.testing.assert_allclose(frame["auc"], again["auc"], rtol=1e-6)
    # tf.data train data: shapes from its element_spec (batch unknown).
    x_shapes, y_shape = km.evaluation.data.data_shapes(
        tf.data.Dataset.from_tensor_slices(train).batch(16)
    )
    assert x_shapes == {"env": (None, 4), "image": (None, *image_shape)}
    assert y_shape == (None, train[1].shape[1])
    assert {k: type(v).__name__ for k, v in tiny_tokenizers(x_shapes).items()} == {
        "env": "TabularTokenizer",
        "image": "ImagePatchTokenizer",
    }
    with pytest.raises(ValueError, match="num_outputs"):
        km.experiments.train_and_evaluate(
            ArrayBatches(train, 64), val, test, task="multiclass", **SETTINGS
        )


def test_compile_metrics_test_metrics_and_best_epoch(splits, capsys):
    """GeoPlant's protocol: metrics during fit, the best-validation weights,
    the test table's metric and the full model's top-k F1."""
    train, val, test = splits
    auc = km.metrics.MaskedAUC(multi_label=True, from_logits=True, name="auc")
    kwargs = dict(
        SETTINGS,
        epochs=2,
        metric="accuracy",
        compile_metrics=[auc, km.metrics.MaskedTopKF1(k=2, name="top2_f1")],
        test_metrics={"top25_f1": "top_k_f1"},
        restore_best="val_loss",
        strategies=["uniform", "miam"],
    )
    table, runs = km.experiments.compare_strategies(
        train, val, test, verbose=2, **kwargs
    )
    text = capsys.readouterr().out
    first, second = runs
    # Each model compiles its own copy of the metrics, logged per epoch.
    for run in runs:
        assert len(run["history"]["auc"]) == 2 and len(run["history"]["val_top2_f1"])
        losses = run["history"]["val_loss"]
        assert run["best_epoch"] == int(np.argmin(losses)) + 1
        assert run["subsets"].attrs["metric"] == "accuracy"
    # The restored weights are the best epoch's: their validation loss.
    model = second["model"]
    loss = model.evaluate(*val, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(loss, min(second["history"]["val_loss"]), rtol=1e-4)
    # The top-25 F1 of the full model (4 species: all are predicted).
    predictions = model.predict(test[0], verbose=0)
    expected = km.metrics.top_k_f1(test[1], predictions, k=4)
    np.testing.assert_allclose(second["test_scores"]["top25_f1"], expected, rtol=1e-5)
    assert f"top25_f1 {second['test_scores']['top25_f1']:.4f}" in text
    assert f"best epoch {second['best_epoch']}" in text
    # Without the options: no best epoch, no extra scores.
    result = km.experiments.train_and_evaluate(train, val, test, verbose=0, **SETTINGS)
    assert result["best_epoch"] is None and result["test_scores"] == {}
    # The model's own compiled metric (its AUC) stays when none is given.
    assert "val_auc" in result["history"] and "val_top2_f1" not in result["history"]
