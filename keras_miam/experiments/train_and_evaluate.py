"""Train a MultimodalTransformer with one strategy and score every input subset;
its default tokenizers, chosen from the shapes of the data."""

import math
import time

import keras
import numpy as np

from keras_miam import strategies as strategies_lib
from keras_miam.callbacks.modality_dynamics import ModalityDynamics
from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation.evaluate_subsets import evaluate_selections
from keras_miam.evaluation.evaluate_subsets import evaluate_subsets
from keras_miam.evaluation.metrics import fresh_metric
from keras_miam.models.multimodal_transformer import MultimodalTransformer
from keras_miam.tokenizers import EmbeddingTokenizer
from keras_miam.tokenizers import ImagePatchTokenizer
from keras_miam.tokenizers import TabularTokenizer
from keras_miam.tokenizers import TimeSeriesTokenizer


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

    A `keras_miam.models.MultimodalTransformer`, trained with AdamW (weight
    decay 0.01) and `ModalityDynamics` on `validation`, then scored on `test`
    by `evaluate_subsets`. With `visible`, the paper's per-subset oracle.

    Args:
        train, validation, test: `(x, y)` tuples (x a dict of arrays), or
            streamed `(x, y)` batches that `fit` reads as they are.
        strategy: strategy name, config or instance.
        epochs, batch_size, learning_rate, seed, verbose, callbacks: for
            `fit` (`seed` also seeds the weights and the masking).
        task: "multilabel" (AUC) or "multiclass" (accuracy).
        tokenizers: `{modality: shape} -> {modality: tokenizer}`; defaults
            to `default_tokenizers`.
        model_kwargs, dynamics_kwargs: extra `MultimodalTransformer` and
            `ModalityDynamics` arguments (`num_outputs` defaults to the
            labels' width or largest class id + 1).
        visible: None, or the modalities of an oracle model.
        restore_best: None, or a validation log (e.g. "val_loss") whose best
            epoch's weights are restored after training.
        subsets, metric: the test subsets and metric, see `evaluate_subsets`.
        per_example: draw the strategy's p per example (True) or per batch.
        compile_metrics: optional Keras metrics for `compile` (copied).
        test_metrics: optional `{name: metric}` of extra test scores with
            every modality visible (e.g. `{"top25_f1": "top_k_f1"}`).

    Returns:
        dict with `model`, `history`, `subsets` (the `evaluate_subsets`
        table), `fit_seconds`, `best_epoch` (1-based, or None), `test_scores`.

    Example:

    >>> result = keras_miam.experiments.train_and_evaluate(
    ...     train, val, test, strategy="miam", epochs=3)
    """
    x_shapes, y_shape = data_lib.data_shapes(train, "`train`")
    streamed = not isinstance(train, (tuple, list))
    model_kwargs = dict(model_kwargs or {})
    if "num_outputs" not in model_kwargs:
        if task != "multilabel" and streamed:
            raise ValueError(
                "With streamed `train` data and task='multiclass', set the "
                "number of classes: model_kwargs={'num_outputs': K}."
            )
        width = y_shape[1] if task == "multilabel" else np.max(train[1]) + 1
        model_kwargs["num_outputs"] = int(width)
    keras.utils.set_random_seed(seed)
    oracle = visible is not None
    model = MultimodalTransformer(
        (tokenizers or default_tokenizers)(x_shapes),
        task=task,
        strategy=strategies_lib.Constant(rate=0.0) if oracle else strategy,
        seed=seed,
        **model_kwargs,
    )
    metrics = [  # a copy of each metric object per model
        fresh_metric(m) if isinstance(m, keras.metrics.Metric) else m
        for m in compile_metrics or []
    ]
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=0.01)
    model.compile(optimizer, metrics=metrics or "auto")
    model.masking.per_example = bool(per_example)
    callbacks = list(callbacks or [])
    if oracle:  # built, so that the masking layer takes the selection
        model.build({k: (None, *shape[1:]) for k, shape in x_shapes.items()})
        model.masking.set_visible(list(visible))
    else:
        callbacks.insert(0, ModalityDynamics(validation, **(dynamics_kwargs or {})))
    stopper = restore_best and keras.callbacks.EarlyStopping(
        restore_best,
        mode="min" if "loss" in restore_best else "max",
        patience=epochs + 1,
        restore_best_weights=True,
    )
    callbacks += [stopper] if stopper else []
    inputs = {"x": train, "epochs": epochs, "verbose": verbose}
    if not streamed:
        inputs.update(x=train[0], y=train[1], batch_size=batch_size)
    start = time.perf_counter()
    history = model.fit(**inputs, validation_data=validation, callbacks=callbacks)
    fit_seconds = time.perf_counter() - start
    subsets = [list(visible)] if oracle else subsets
    subsets = evaluate_subsets(
        model, test, metric, subsets, summary=not oracle, verbose=0
    )
    shown = list(visible) if oracle else list(model.masking.modalities)
    best = stopper and stopper.best_weights is not None
    return {
        "model": model,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "subsets": subsets,
        "fit_seconds": fit_seconds,
        "best_epoch": int(stopper.best_epoch) + 1 if best else None,
        "test_scores": {
            str(name): float(
                evaluate_selections(model, test, [shown], m, verbose=0)[0][0]
            )
            for name, m in (test_metrics or {}).items()
        },
    }


def default_tokenizers(
    x, embed_dim=48, max_tokens=16, embedding_modalities=(), num_frequencies=16
):
    """Picks a tokenizer for each modality from its shape.

    (N, F): `TabularTokenizer` (`EmbeddingTokenizer` for names in
    `embedding_modalities`); (N, T, C): `TimeSeriesTokenizer`; (N, H, W, C):
    `ImagePatchTokenizer`, with the smallest patch that divides the steps
    (or H and W) into at most `max_tokens` tokens.

    Args:
        x: dict `{modality: shape}` (the batch entry may be None), or
            `{modality: array}`.
        embed_dim: the token size D shared by all modalities.
        max_tokens: the token budget per series or image modality.
        embedding_modalities: names of (N, E) precomputed embeddings.
        num_frequencies: periodic frequencies of the tabular tokenizer.

    Example:

    >>> tokenizers = keras_miam.experiments.default_tokenizers(
    ...     {"env": (None, 20), "image": (None, 16, 16, 4)})
    >>> {k: type(v).__name__ for k, v in tokenizers.items()}
    {'env': 'TabularTokenizer', 'image': 'ImagePatchTokenizer'}
    """
    tokenizers = {}
    for name, values in x.items():
        shape = tuple(getattr(values, "shape", values))
        kwargs = {"name": f"{name}_tokenizer"}
        if len(shape) == 2 and name in embedding_modalities:
            tokenizer = EmbeddingTokenizer(embed_dim, **kwargs)
        elif len(shape) == 2:
            kwargs["num_frequencies"] = num_frequencies
            tokenizer = TabularTokenizer(embed_dim, **kwargs)
        elif len(shape) in (3, 4):  # steps, or height and width, in patches
            sizes = shape[1:-1]
            fits = [
                p
                for p in range(1, min(sizes))
                if all(d % p == 0 for d in sizes)
                and math.prod(d // p for d in sizes) <= max_tokens
            ]
            kind = TimeSeriesTokenizer if len(shape) == 3 else ImagePatchTokenizer
            tokenizer = kind(embed_dim, (fits or [min(sizes)])[0], **kwargs)
        else:
            raise ValueError(
                f"Modality '{name}': cannot choose a tokenizer for an array of "
                f"shape {shape}; expected (N, F), (N, T, C) or (N, H, W, C)."
            )
        tokenizers[name] = tokenizer
    return tokenizers
