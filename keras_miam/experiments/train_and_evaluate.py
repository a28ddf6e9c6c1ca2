"""Train a MultimodalTransformer with one strategy and score every input subset."""

import time

import keras
import numpy as np

from keras_miam import strategies as strategies_lib
from keras_miam.callbacks.modality_dynamics import ModalityDynamics
from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation.evaluate_subsets import evaluate_selections
from keras_miam.evaluation.evaluate_subsets import evaluate_subsets
from keras_miam.experiments.default_tokenizers import default_tokenizers
from keras_miam.models.multimodal_transformer import MultimodalTransformer


def train_and_evaluate(
    train,
    validation,
    test,
    strategy="miam",
    epochs=10,
    batch_size=128,
    task="multilabel",
    tokenizers=None,
    model_kwargs=None,
    dynamics_kwargs=None,
    visible=None,
    learning_rate=1e-3,
    seed=0,
    verbose=1,
    callbacks=None,
    restore_best=None,
    subsets="all",
    per_example=True,
    metric=None,
    compile_metrics=None,
    test_metrics=None,
):
    """Trains one model under a masking strategy and evaluates every subset.

    The model is a `keras_miam.models.MultimodalTransformer` trained with
    AdamW (weight decay 0.01) and a `ModalityDynamics` callback on
    `validation`; `test` is read only at the end, by `evaluate_subsets`.
    With `visible`, the model is the paper's per-subset oracle: trained and
    evaluated on those modalities only, without masking.

    Args:
        train, validation, test: `(x, y)` tuples (x a dict of arrays), or
            streamed `(x, y)` batches that `fit` reads as they are.
        strategy: strategy name, config or instance.
        epochs, batch_size, learning_rate: training settings.
        task: "multilabel" (AUC) or "multiclass" (accuracy).
        tokenizers: a callable `{modality: shape} -> {modality: tokenizer}`;
            defaults to `default_tokenizers`.
        model_kwargs: extra `MultimodalTransformer` arguments (`num_outputs`
            defaults to the labels' width or largest class id + 1).
        dynamics_kwargs: extra `ModalityDynamics` arguments.
        visible: None, or the list of modalities of an oracle model.
        seed: seeds weights, masking and shuffling.
        verbose: 0 silent, 1 a progress bar per epoch.
        callbacks: optional extra Keras callbacks.
        restore_best: None, or a validation log (e.g. "val_loss") whose best
            epoch's weights are restored after training.
        subsets: the test subsets, as `evaluate_subsets` takes them.
        per_example: draw the strategy's p per example (True) or per batch.
        metric: the test metric, as `evaluate_subsets` takes it.
        compile_metrics: optional Keras metrics for `compile` (copied).
        test_metrics: optional `{name: metric}` of extra test scores with
            every modality visible (e.g. `{"top25_f1": "top_k_f1"}`).

    Returns:
        dict with `model`, `history`, `subsets` (the `evaluate_subsets`
        DataFrame), `fit_seconds`, `best_epoch` (1-based, or None) and
        `test_scores`.

    Example:

    >>> x, y, _ = keras_miam.datasets.make_synthetic_ecology(3000)
    >>> train, val, test = keras_miam.datasets.split_dataset(x, y)
    >>> result = keras_miam.experiments.train_and_evaluate(
    ...     train, val, test, strategy="miam", epochs=3,
    ...     restore_best="val_loss", test_metrics={"top25_f1": "top_k_f1"})
    >>> result["subsets"]  # one row per subset of modalities

    """
    x_shapes, y_shape = data_lib.data_shapes(train, "`train`")
    streamed = not isinstance(train, (tuple, list))
    model_kwargs = dict(model_kwargs or {})
    if "num_outputs" not in model_kwargs:
        if task == "multilabel":
            model_kwargs["num_outputs"] = int(y_shape[1])
        elif streamed:
            raise ValueError(
                "With streamed `train` data and task='multiclass', set the "
                "number of classes: model_kwargs={'num_outputs': K}."
            )
        else:
            model_kwargs["num_outputs"] = int(np.max(train[1])) + 1
    keras.utils.set_random_seed(seed)
    oracle = visible is not None
    if oracle:
        strategy = strategies_lib.Constant(rate=0.0)
    model = MultimodalTransformer(
        (tokenizers or default_tokenizers)(x_shapes),
        task=task,
        strategy=strategy,
        seed=seed,
        **model_kwargs,
    )
    if compile_metrics:  # a copy of each metric object per model
        compile_metrics = [
            type(m).from_config(m.get_config())
            if isinstance(m, keras.metrics.Metric)
            else m
            for m in compile_metrics
        ]
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01),
        metrics=compile_metrics or "auto",
        jit_compile="auto",
    )
    model.masking.per_example = bool(per_example)
    if oracle:
        # Build, so the masking layer can take the selection.
        model.build({k: (None, *shape[1:]) for k, shape in x_shapes.items()})
        model.masking.set_visible(list(visible))
        callbacks = list(callbacks or [])
    else:
        dynamics = ModalityDynamics(validation, **(dynamics_kwargs or {}))
        callbacks = [dynamics, *(callbacks or [])]
    stopper = None
    if restore_best is not None:
        stopper = keras.callbacks.EarlyStopping(
            monitor=restore_best,
            mode="min" if "loss" in restore_best else "max",
            patience=epochs + 1,
            restore_best_weights=True,
        )
        callbacks.append(stopper)
    inputs = {"x": train}
    if not streamed:
        inputs = {"x": train[0], "y": train[1], "batch_size": batch_size}
    start = time.perf_counter()
    history = model.fit(
        **inputs,
        validation_data=validation,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=True,
    )
    fit_seconds = time.perf_counter() - start
    subsets = evaluate_subsets(
        model,
        test,
        metric=metric,
        subsets=[list(visible)] if oracle else subsets,
        summary=not oracle,
        verbose=0,
    )
    shown = list(visible) if oracle else list(model.masking.modalities)
    test_scores = {}
    for name, test_metric in (test_metrics or {}).items():
        values, _ = evaluate_selections(
            model, test, [shown], metric=test_metric, verbose=0
        )
        test_scores[str(name)] = float(values[0])
    best_epoch = None
    if stopper is not None and stopper.best_weights is not None:
        best_epoch = int(stopper.best_epoch) + 1
    return {
        "model": model,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "subsets": subsets,
        "fit_seconds": fit_seconds,
        "best_epoch": best_epoch,
        "test_scores": test_scores,
    }
