"""keras_miam.metrics: top-k F1, the rank AUC and MaskedAUC, NaN-aware.

The oracles are brute-force loops over examples and pairs, written from the
definitions (scikit-learn is not a dependency).
"""

import keras
import numpy as np
import pytest

from keras_miam.metrics import MaskedAUC
from keras_miam.metrics import MaskedTopKF1
from keras_miam.metrics import macro_auc
from keras_miam.metrics import micro_auc
from keras_miam.metrics import top_k_f1


def _data(rng, n=40, k=12, nan_fraction=0.2):
    y = (rng.random((n, k)) < 0.3).astype("float64")
    y[rng.random((n, k)) < nan_fraction] = np.nan
    y[0] = np.nan  # an example with no observed output
    y[1, :] = 0.0
    y[1, ::2] = np.nan  # observed, but no positive
    scores = rng.normal(size=(n, k))
    return y, scores


def _brute_top_k_f1(y, scores, k, average):
    hits = predicted = positives = 0
    per_example = []
    for row, score in zip(y, scores):
        seen = [j for j in range(len(row)) if not np.isnan(row[j])]
        if not seen:
            continue
        ranked = sorted(seen, key=lambda j: (-score[j], j))[:k]
        truth = {j for j in seen if row[j] == 1}
        hit = len(set(ranked) & truth)
        hits, predicted, positives = (
            hits + hit,
            predicted + len(ranked),
            positives + len(truth),
        )
        size = len(ranked) + len(truth)
        per_example.append(2 * hit / size if size else 0.0)
    if average == "micro":
        return 2 * hits / (predicted + positives)
    return float(np.mean(per_example))


def _brute_micro_auc(y, scores):
    seen = ~np.isnan(y)
    pos = scores[seen & (y == 1)]
    neg = scores[seen & (y == 0)]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("average", ["samples", "micro"])
@pytest.mark.parametrize("k", [1, 3, 25])
def test_top_k_f1_matches_brute_force(rng, k, average):
    y, scores = _data(rng)
    scores[5, :4] = 0.5  # ties: the lower index first
    expected = _brute_top_k_f1(y, scores, k, average)
    value = top_k_f1(y, scores, k=k, average=average)
    assert value == pytest.approx(expected, rel=1e-6)


def test_top_k_f1_nan_rules_and_errors(rng):
    y, scores = _data(rng)
    # Scores of unobserved targets do not matter.
    changed = np.where(np.isnan(y), 1e9, scores)
    assert top_k_f1(y, changed, k=3) == top_k_f1(y, scores, k=3)
    # A NaN score of an observed target: undefined, NaN (never silent).
    bad = scores.copy()
    bad[3, np.flatnonzero(~np.isnan(y[3]))[0]] = np.nan
    assert np.isnan(top_k_f1(y, bad, k=3))
    assert np.isnan(top_k_f1(y, bad, k=3, average="micro"))
    # A NaN score of an unobserved target is harmless.
    bad = scores.copy()
    bad[np.isnan(y)] = np.nan
    assert top_k_f1(y, bad, k=3) == top_k_f1(y, scores, k=3)
    # Perfect scores at k = number of positives of every example.
    perfect = np.array([[1, 0, 1], [0, 1, 0]], "float64")
    assert top_k_f1(perfect, perfect, k=2) == pytest.approx((1 + 2 / 3) / 2)
    assert top_k_f1(perfect, perfect, k=1) == pytest.approx((2 / 3 + 1) / 2)
    assert np.isnan(top_k_f1(np.full((2, 3), np.nan), np.zeros((2, 3))))
    with pytest.raises(ValueError, match="`k` must be an integer"):
        top_k_f1(perfect, perfect, k=0)
    with pytest.raises(ValueError, match="Unknown average 'macro'"):
        top_k_f1(perfect, perfect, average="macro")
    with pytest.raises(ValueError, match="same shape"):
        top_k_f1(perfect, perfect[:, :2])


def test_micro_auc_matches_brute_force(rng):
    y, scores = _data(rng)
    scores = np.round(scores, 1)  # ties count one half
    assert micro_auc(y, scores) == pytest.approx(_brute_micro_auc(y, scores))
    assert micro_auc(y, scores) != pytest.approx(macro_auc(y, scores))
    bad = scores.copy()
    bad[np.isnan(y)] = np.nan
    assert micro_auc(y, bad) == micro_auc(y, scores)
    with pytest.raises(ValueError, match="undefined"):
        micro_auc(np.ones((3, 2)), np.zeros((3, 2)))


@pytest.mark.parametrize("average", ["samples", "micro"])
def test_keras_top_k_f1_streams_over_batches(rng, average):
    y, scores = _data(rng, n=50)
    metric = MaskedTopKF1(k=3, average=average)
    for start in range(0, 50, 16):  # batches, one of them smaller
        metric.update_state(y[start : start + 16], scores[start : start + 16])
    expected = _brute_top_k_f1(y, scores, 3, average)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    metric.reset_state()
    assert np.isnan(float(metric.result()))  # nothing seen: undefined
    restored = MaskedTopKF1.from_config(metric.get_config())
    assert (restored.k, restored.average) == (3, average)
    with pytest.raises(ValueError, match="Unknown average"):
        MaskedTopKF1(average="macro")


def _multilabel_model(num_inputs, num_outputs):
    inputs = keras.Input((num_inputs,))
    outputs = keras.layers.Dense(num_outputs)(inputs)
    return keras.Model(inputs, outputs)


def test_metrics_during_fit_and_evaluate_ignore_nan_targets(rng):
    from keras_miam.losses import MaskedBinaryCrossentropy

    keras.utils.set_random_seed(0)
    x = rng.normal(size=(96, 5)).astype("float32")
    logits = x @ rng.normal(size=(5, 8))
    y = (logits > 0.5).astype("float32")
    y[rng.random(y.shape) < 0.25] = np.nan
    model = _multilabel_model(5, 8)
    model.compile(
        optimizer="adam",
        loss=MaskedBinaryCrossentropy(from_logits=True),
        metrics=[
            MaskedTopKF1(k=2),
            MaskedTopKF1(k=2, average="micro", name="micro_f1"),
            MaskedAUC(multi_label=True, from_logits=True, num_thresholds=2000),
        ],
        jit_compile="auto",
    )
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["top_k_f1"]))
    assert 0.0 < history.history["micro_f1"][-1] <= 1.0
    scores = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    predictions = model.predict(x, verbose=0)
    assert scores["top_k_f1"] == pytest.approx(top_k_f1(y, predictions, k=2), rel=1e-5)
    assert scores["micro_f1"] == pytest.approx(
        top_k_f1(y, predictions, k=2, average="micro"), rel=1e-5
    )
    auc = [v for k, v in scores.items() if "auc" in k][0]
    assert auc == pytest.approx(macro_auc(y, predictions), abs=2e-3)


def test_masked_auc_averages_defined_outputs_and_is_nan_when_undefined():
    y = np.array([[1, 1, 0], [0, 1, np.nan], [1, 1, 0], [0, 1, 0]], "float32")
    scores = np.array(
        [[0.9, 0.1, 0.2], [0.2, 0.3, 0.9], [0.8, 0.7, 0.4], [0.1, 0.4, 0.3]],
        "float32",
    )
    metric = MaskedAUC(multi_label=True, num_thresholds=1000)
    metric.update_state(y, scores)
    # Output 0 has AUC 1; outputs 1 (all positive) and 2 (all negative) are
    # undefined and left out (Keras' AUC would average in two zeros).
    assert float(metric.result()) == pytest.approx(1.0)
    assert float(metric.result()) == pytest.approx(macro_auc(y, scores))
    undefined = MaskedAUC(multi_label=True)
    undefined.update_state(y[:, 1:2], scores[:, 1:2])
    assert np.isnan(float(undefined.result()))
    pooled = MaskedAUC(multi_label=False, num_thresholds=1000)
    pooled.update_state(y, scores)
    assert float(pooled.result()) == pytest.approx(micro_auc(y, scores), abs=2e-3)
    assert np.isnan(float(MaskedAUC(multi_label=False).result()))  # nothing seen
