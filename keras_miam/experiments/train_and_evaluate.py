"""Train a MultimodalTransformer with one strategy and score every input subset."""

import time

import keras
import numpy as np

from keras_miam import strategies as strategies_lib
from keras_miam.callbacks.modality_dynamics import ModalityDynamics
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
        train, validation, test: `(x, y)` tuples, x a dict of arrays.
        strategy: strategy name, config or instance.
        epochs, batch_size, learning_rate: training settings (AdamW with
            weight decay 0.01).
        task: "multilabel" (AUC) or "multiclass" (accuracy).
        tokenizers: a callable `x -> {modality: tokenizer}`; defaults to
            `default_tokenizers`.
        model_kwargs: extra `MultimodalTransformer` arguments.
        dynamics_kwargs: extra `ModalityDynamics` arguments.
        visible: None, or the list of modalities of an oracle model.
        seed: seeds weights, masking and shuffling.
        verbose: 0 silent, 1 a progress bar per epoch.

    Returns:
        dict with `model`, `history` (dict of per-epoch logs), `subsets`
        (the `evaluate_subsets` DataFrame on the test split, or for an
        oracle the single row of its subset) and `fit_seconds`.

    Example:

    >>> x, y, _ = km.datasets.make_synthetic_ecology(3000)
    >>> train, val, test = km.datasets.split_dataset(x, y)
    >>> result = train_and_evaluate(train, val, test, strategy="miam", epochs=3)
    >>> result["subsets"]  # one row per subset of modalities

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (protocol).
    """
    x_train, y_train = train
    keras.utils.set_random_seed(seed)
    oracle = visible is not None
    if oracle:
        strategy = strategies_lib.Constant(rate=0.0)
    make_tokenizers = tokenizers or default_tokenizers
    model = MultimodalTransformer(
        make_tokenizers(x_train),
        num_outputs=int(np.shape(y_train)[1])
        if task == "multilabel"
        else int(np.max(y_train)) + 1,
        task=task,
        strategy=strategy,
        seed=seed,
        **(model_kwargs or {}),
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01),
        jit_compile="auto",
    )
    callbacks = []
    if oracle:
        model(
            {k: np.asarray(v[:2]) for k, v in x_train.items()}
        )  # build, so the masking layer can take the selection
        model.masking.set_visible(list(visible))
    else:
        callbacks.append(ModalityDynamics(validation, **(dynamics_kwargs or {})))
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        validation_data=validation,
        epochs=epochs,
        batch_size=batch_size,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=True,
    )
    fit_seconds = time.perf_counter() - start
    if oracle:
        subsets = evaluate_subsets(
            model, test, subsets=[list(visible)], summary=False, verbose=0
        )
    else:
        subsets = evaluate_subsets(model, test, verbose=0)
    return {
        "model": model,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "subsets": subsets,
        "fit_seconds": fit_seconds,
    }
