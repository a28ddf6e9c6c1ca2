"""SatBird's metrics (top-k accuracy, MAE) against hand-computed values."""

import keras
import numpy as np
import pytest

from keras_miam.metrics import MaskedMeanAbsoluteError
from keras_miam.metrics import MaskedTopKAccuracy

Y_TRUE = np.array(
    [
        [0.9, 0.0, 0.5, 0.3, 0.0, 0.1],  # 4 species observed
        [0.0, 0.4, np.nan, 0.0, 0.2, 0.0],  # 2 observed, species 2 unknown
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # none observed: skipped
    ],
    "float32",
)
Y_PRED = np.array(
    [
        [0.2, 0.8, 0.7, 0.1, 0.0, 0.6],  # order 1, 2, 5, 0, 3, 4
        [0.1, 0.3, 0.99, 0.5, 0.05, 0.2],  # observed order 3, 1, 5, 0, 4
        [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],
    ],
    "float32",
)


def result(metric, y_true=Y_TRUE, y_pred=Y_PRED, sample_weight=None):
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return float(keras.ops.convert_to_numpy(metric.result()))


@pytest.mark.parametrize(
    "k, expected",
    [
        # Row 0, adaptive k = 4: truth {0, 2, 3, 5}, predicted {1, 2, 5, 0}: 3/4.
        # Row 1, k = 2: truth {1, 4}, predicted {3, 1} (2 is unknown): 1/2.
        (None, (3 / 4 + 1 / 2) / 2),
        # k = 2: truth {0, 2} and predicted {1, 2}: 1/2; row 1 as above.
        (2, (1 / 2 + 1 / 2) / 2),
        # k = 3: truth {0, 2, 3}, predicted {1, 2, 5}: 1/3; row 1: m = 2 true
        # species {1, 4} among predicted {3, 1, 5}: 1/2.
        (3, (1 / 3 + 1 / 2) / 2),
        # k = 10 >= 6 species: every observed species is predicted.
        (10, 1.0),
    ],
)
def test_top_k_accuracy_by_hand(k, expected):
    assert result(MaskedTopKAccuracy(k=k)) == pytest.approx(expected, abs=1e-6)
    logits = np.log(Y_PRED + 1e-3) - np.log1p(-Y_PRED + 1e-3)
    assert result(MaskedTopKAccuracy(k=k), y_pred=logits) == pytest.approx(
        expected, abs=1e-6
    )


def test_top_k_accuracy_weights_names_and_streaming():
    weighted = result(MaskedTopKAccuracy(), sample_weight=np.array([1.0, 3.0, 5.0]))
    assert weighted == pytest.approx((3 / 4 * 1 + 1 / 2 * 3) / 4)
    metric = MaskedTopKAccuracy(k=3)
    assert metric.name == "top3" and MaskedTopKAccuracy().name == "topk"
    metric.update_state(Y_TRUE[:1], Y_PRED[:1])
    metric.update_state(Y_TRUE[1:], Y_PRED[1:])
    assert float(metric.result()) == pytest.approx((1 / 3 + 1 / 2) / 2)
    metric.reset_state()
    assert np.isnan(float(metric.result()))  # no example with an observed species
    bad = Y_PRED.copy()
    bad[0, 3] = np.nan  # a NaN score of an observed species
    assert np.isnan(result(MaskedTopKAccuracy(), y_pred=bad))
    unknown = Y_PRED.copy()
    unknown[1, 2] = np.nan  # the score of an unknown species is ignored
    assert result(MaskedTopKAccuracy(), y_pred=unknown) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="`k` must be None or an integer >= 1"):
        MaskedTopKAccuracy(k=0)
    with pytest.raises(ValueError, match=r"same shape; received \(3, 6\) and"):
        MaskedTopKAccuracy().update_state(Y_TRUE, Y_PRED[:, :4])


def satbird_top_k(y, pred, k):
    """SatBird's trainer metric (CustomTopK, CustomTop10), one example at a time."""
    scores = []
    for target, scored in zip(y, pred):
        n = int(np.count_nonzero(target))
        if n == 0:
            continue
        m = n if k is None else min(k, n)
        truth = set(np.argsort(-target, kind="stable")[:m])
        chosen = set(np.argsort(-scored, kind="stable")[: n if k is None else k])
        scores.append(len(truth & chosen) / m)
    return np.mean(scores)


@pytest.mark.parametrize("k", [None, 3, 10])
def test_top_k_accuracy_matches_satbird_on_random_rates(k):
    rng = np.random.default_rng(0)
    y = rng.uniform(size=(32, 25)) * (rng.uniform(size=(32, 25)) < 0.4)
    y[0] = 0.0
    pred = rng.uniform(size=y.shape)
    expected = satbird_top_k(y, pred, k)
    assert result(MaskedTopKAccuracy(k=k), y, pred) == pytest.approx(expected)


def test_mae_by_hand():
    y_true = np.array([[0.5, np.nan], [0.0, 1.0]], "float32")
    y_pred = np.array([[0.25, 0.9], [0.5, 0.5]], "float32")
    assert result(MaskedMeanAbsoluteError(), y_true, y_pred) == pytest.approx(1.25 / 3)
    logits = np.log(y_pred) - np.log1p(-y_pred)
    metric = MaskedMeanAbsoluteError(from_logits=True)
    assert result(metric, y_true, logits) == pytest.approx(1.25 / 3, abs=1e-6)
    weighted = result(MaskedMeanAbsoluteError(), y_true, y_pred, np.array([1.0, 3.0]))
    assert weighted == pytest.approx((0.25 + 3 * (0.5 + 0.5)) / (1 + 3 * 2))
    assert MaskedMeanAbsoluteError().name == "mae"


@pytest.mark.parametrize(
    "metric",
    [MaskedTopKAccuracy(k=30, name="top30"), MaskedMeanAbsoluteError(from_logits=True)],
)
def test_metrics_serialize(metric):
    config = keras.saving.serialize_keras_object(metric)
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(metric) and clone.get_config() == metric.get_config()


def test_soft_targets_in_fit_evaluate_and_evaluate_subsets():
    import keras_miam as km

    rng = np.random.default_rng(0)
    x = {
        "env": rng.normal(size=(64, 5)).astype("float32"),
        "image": rng.normal(size=(64, 4, 4, 4)).astype("float32"),
    }
    y = rng.uniform(size=(64, 12)) * (rng.uniform(size=(64, 12)) < 0.5)
    y = y.astype("float32")  # encounter rates: soft targets in [0, 1]
    model = km.models.MultimodalTransformer(
        km.experiments.default_tokenizers(x, embed_dim=8),
        num_outputs=12,
        num_layers=1,
        num_heads=1,
        seed=0,
    )
    # The default loss: MaskedBinaryCrossentropy(from_logits=True).
    model.compile(metrics=[MaskedMeanAbsoluteError(from_logits=True)])
    # (ModalityDynamics with MaskedTopKAccuracy: see the example's dry run.)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    logits = keras.ops.convert_to_numpy(model.predict(x, verbose=0))
    probs = 1 / (1 + np.exp(-logits.astype("float64")))
    logs = model.evaluate(x, y, batch_size=32, return_dict=True, verbose=0)
    assert logs["mae"] == pytest.approx(np.abs(probs - y).mean(), rel=1e-4)
    bce = -(y * np.log(probs) + (1 - y) * np.log1p(-probs)).mean()
    assert logs["loss"] == pytest.approx(bce, rel=1e-4)
    frame = km.evaluation.evaluate_subsets(
        model, (x, y), metric=MaskedTopKAccuracy(k=3), summary=False, verbose=0
    )
    assert list(frame["size"]) == [1, 1, 2]
    both = frame[frame["size"] == 2]["top3"].iloc[0]
    assert both == pytest.approx(satbird_top_k(y, logits, 3), abs=1e-6)
