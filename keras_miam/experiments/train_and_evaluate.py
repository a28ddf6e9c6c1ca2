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

    The model is `keras_miam.models.MultimodalTransformer`; a
    `ModalityDynamics` callback measures the unimodal validation scores
    every epoch (they drive MIAM and OPM and are logged for every strategy,
    so the per-modality learning curves can be compared). The test split is
    only used at the end, by `evaluate_subsets`.

    With `visible` (a modality subset), the model is an *oracle* for that
    subset: trained and evaluated with only those modalities visible and no
    random masking (`Constant(rate=0)`), as the paper's per-subset oracle.

    Args:
        train, validation, test: `(x, y)` tuples (x a dict of arrays), or
            streamed data: a `keras.utils.PyDataset` or a `tf.data.Dataset`
            of `(x, y)` batches (x a dict), which `fit` reads as it is
            (`batch_size` and the shuffling are then the dataset's). The
            validation and test data are read into arrays, once, by
            `ModalityDynamics` and `evaluate_subsets`.
        strategy: strategy name, config or instance.
        epochs, batch_size, learning_rate: training settings (AdamW with
            weight decay 0.01).
        task: "multilabel" (AUC) or "multiclass" (accuracy).
        tokenizers: a callable `shapes -> {modality: tokenizer}`, called
            with `{modality: shape}` (shape tuples, the first entry the
            number of examples or the batch size, possibly None); defaults
            to `default_tokenizers`.
        model_kwargs: extra `MultimodalTransformer` arguments. Its
            `num_outputs` defaults to the labels' width (multilabel) or
            their largest class id + 1 (multiclass: set it for streamed
            data, whose labels are not read in advance).
        dynamics_kwargs: extra `ModalityDynamics` arguments.
        visible: None, or the list of modalities of an oracle model.
        seed: seeds weights, masking and shuffling.
        verbose: 0 silent, 1 a progress bar per epoch.
        callbacks: optional list of extra Keras callbacks (after the
            `ModalityDynamics` callback, so they see its logs).
        restore_best: None (keep the last epoch's weights), or the name of
            a validation log (e.g. "val_loss", or "val_image_auc" as
            logged by `ModalityDynamics`): the weights of the epoch where
            it is best (lowest for losses, highest otherwise) are restored
            at the end of training (`keras.callbacks.EarlyStopping` with
            `restore_best_weights=True`, never stopping early), as the
            authors' best-validation checkpoint.
        subsets: the test subsets of a jointly trained model, as
            `evaluate_subsets` takes them (e.g. a dict `{label: selection}`
            with partial inputs). Defaults to "all" (every modality subset).
        per_example: draw the strategy's p once per example (True, the
            default) or once per batch (False: `MIAMMasking(per_example=
            False)`, as the authors' sampler).
        metric: the test metric of the subset table, what
            `evaluate_subsets` takes (None: macro AUC for multilabel,
            accuracy for multiclass). The validation metric of
            `ModalityDynamics` is set in `dynamics_kwargs`.
        compile_metrics: optional Keras metrics given to `compile` instead
            of the model's defaults (logged in `history` on the training and
            validation data, e.g. `[km.metrics.MaskedTopKF1(k=25)]`); metric
            objects are copied for each model.
        test_metrics: optional dict `{name: metric}` of extra test scores
            of the model with every modality visible, each metric what
            `evaluate_subsets` takes (e.g. `{"top25_f1": "top_k_f1"}`,
            GeoLifeCLEF's samples-averaged top-25 F1).

    Returns:
        dict with `model`, `history` (dict of per-epoch logs), `subsets`
        (the `evaluate_subsets` DataFrame on the test split, or for an
        oracle the single row of its subset), `fit_seconds`,
        `best_epoch` (the 1-based epoch whose weights `restore_best`
        restored, else None) and `test_scores` (`{name: value}` of
        `test_metrics`, empty without).

    Example:

    >>> x, y, _ = km.datasets.make_synthetic_ecology(3000)
    >>> train, val, test = km.datasets.split_dataset(x, y)
    >>> result = train_and_evaluate(train, val, test, strategy="miam", epochs=3)
    >>> result["subsets"]  # one row per subset of modalities
    >>> # The best-validation checkpoint, and GeoLifeCLEF's top-25 F1:
    >>> result = train_and_evaluate(train, val, test, restore_best="val_loss",
    ...                             test_metrics={"top25_f1": "top_k_f1"})
    >>> result["best_epoch"], result["test_scores"]["top25_f1"]

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (protocol).
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
    callbacks_extra = callbacks
    keras.utils.set_random_seed(seed)
    oracle = visible is not None
    if oracle:
        strategy = strategies_lib.Constant(rate=0.0)
    make_tokenizers = tokenizers or default_tokenizers
    model = MultimodalTransformer(
        make_tokenizers(x_shapes),
        task=task,
        strategy=strategy,
        seed=seed,
        **model_kwargs,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01),
        # The model's own metrics (its AUC or accuracy) unless others are given.
        metrics=[_fresh_metric(m) for m in compile_metrics]
        if compile_metrics
        else "auto",
        jit_compile="auto",
    )
    model.masking.per_example = bool(per_example)
    callbacks = []
    if oracle:
        # Build, so the masking layer can take the selection.
        model.build({k: (None, *shape[1:]) for k, shape in x_shapes.items()})
        model.masking.set_visible(list(visible))
    else:
        callbacks.append(ModalityDynamics(validation, **(dynamics_kwargs or {})))
    callbacks.extend(callbacks_extra or [])
    stopper = None
    if restore_best is not None:
        stopper = keras.callbacks.EarlyStopping(
            monitor=restore_best,
            mode="min" if "loss" in restore_best else "max",
            patience=epochs + 1,
            restore_best_weights=True,
        )
        callbacks.append(stopper)
    start = time.perf_counter()
    if streamed:
        inputs = {"x": train}
    else:
        inputs = {"x": train[0], "y": train[1], "batch_size": batch_size}
    history = model.fit(
        **inputs,
        validation_data=validation,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=True,
    )
    fit_seconds = time.perf_counter() - start
    if oracle:
        subsets = evaluate_subsets(
            model,
            test,
            metric=metric,
            subsets=[list(visible)],
            summary=False,
            verbose=0,
        )
    else:
        subsets = evaluate_subsets(
            model, test, metric=metric, subsets=subsets, verbose=0
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


def _fresh_metric(metric):
    """A copy of a Keras metric object (one per model), names kept as they are."""
    if isinstance(metric, keras.metrics.Metric):
        return type(metric).from_config(metric.get_config())
    return metric
