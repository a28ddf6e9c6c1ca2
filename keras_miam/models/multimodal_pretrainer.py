"""Self-supervised any-to-any pre-training: masked token reconstruction."""

import keras
import numpy as np
from keras import ops

from keras_miam.evaluation import view_predictions
from keras_miam.models.task import Task

# Seed of the fixed split of each modality's tokens into two halves that
# `modality_scores()` uses (one half visible, the other reconstructed).
_SCORE_SPLIT_SEED = 0


@keras.saving.register_keras_serializable(package="keras_miam")
class MultimodalPretrainer(Task):
    """Masked reconstruction of every modality's tokens on a `MultimodalBackbone`.

    One linear head per modality predicts, for every token, the values it
    was made from (a table variable, a series segment, an image patch, an
    embedding): the standardised inputs themselves. `fit(x)` takes no
    labels; the loss is the mean squared error over the **masked tokens
    whose input is available** (missing values never count), averaged per
    modality, then over the modalities present in the batch (0 when there is
    nothing to reconstruct). `predict(x)` reconstructs every missing or
    hidden token from the visible ones (any-to-any).

    `modality_scores(x)` gives MIAM's s_m = 1 / (1 + MSE_m), MSE_m being the
    error on modality m from modality m alone (half its tokens from the
    other half, with a fixed split; a one-token modality from the others):
    `keras_miam.ModalityDynamics(x_val, metric="reconstruction")` drives
    MIAM with them, without labels. Fine-tune with
    `MultimodalTransformer(backbone=pretrainer.backbone, num_outputs=n)`.

    Args:
        tokenizers: dict `{modality_name: tokenizer}` for a new backbone, or
            `None` with `backbone`.
        backbone: optional `MultimodalBackbone`.
        **kwargs: the new backbone's arguments (`strategy`, `num_layers`,
            `num_heads`, `intermediate_dim`, `dropout`, `seed`,
            `layer_norm_epsilon`), and `name`, `dtype`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` with exactly the tokenizers'
            keys. Missing values are NaN.
        training: bool. Masks at random with the strategy when `True`.

    Returns:
        A dict: `"reconstructions"`, `{modality_name: (batch, T_m, V_m)}`
        float32 predicted token values, and `"visible"`, the `(batch, T)`
        keep mask of `MIAMMasking` (the targets are the `False` tokens).

    Example:

    ```python
    pretrainer = keras_miam.models.MultimodalPretrainer(
        {"env": keras_miam.tokenizers.TabularTokenizer(32),
         "image": keras_miam.tokenizers.ImagePatchTokenizer(32, patch_size=4)},
        num_layers=2,
    )
    pretrainer.compile()
    dynamics = keras_miam.ModalityDynamics(x_val, metric="reconstruction")
    pretrainer.fit(x, epochs=10, callbacks=[dynamics])
    model = keras_miam.models.MultimodalTransformer(
        backbone=pretrainer.backbone, num_outputs=20
    )
    ```

    Reference:
     - [Zbinden et al., 2026 (MIAM)](https://openreview.net/forum?id=oljjAkgZN4)
     - [He et al., 2022 (MAE)](https://arxiv.org/abs/2111.06377)
     - [Bachmann et al., 2022 (MultiMAE)](https://arxiv.org/abs/2204.01678)
    """

    def __init__(self, tokenizers=None, backbone=None, **kwargs):
        super().__init__(tokenizers, backbone, **kwargs)
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=self.backbone.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="output_norm",
        )
        self.heads = {}
        self._build_on_a_built_backbone()

    def build(self, inputs_shape):
        if not self.backbone.built:
            self.backbone.build(inputs_shape)
        embed_dim = self.backbone.embed_dim
        self.output_norm.build((None, None, embed_dim))
        self.heads = {}
        shapes = self.backbone.ordered(inputs_shape, "shapes")
        for name, shape in zip(self.modalities, shapes):
            # V_m: the number of input values grouped in one token.
            sample = np.zeros((1,) + tuple(shape)[1:], "float32")
            values = int(self.tokenizers[name]._grouped(sample).shape[-1])
            head = keras.layers.Dense(
                values, dtype=self.dtype_policy.variable_dtype, name=f"{name}_head"
            )
            head.build((None, None, embed_dim))
            self.heads[name] = head
        self.built = True

    def call(self, inputs, training=None):
        x, keep = self.backbone(inputs, training=training)
        offset = int(self.backbone.cls_token)
        x, keep = self.output_norm(x[:, offset:]), keep[:, offset:]
        reconstructions = {}
        for name in self.modalities:
            start, stop = self.masking.token_slices[name]
            reconstructions[name] = self.heads[name](x[:, start:stop])
        return {"reconstructions": reconstructions, "visible": keep}

    def reconstruction_targets(self, inputs):
        """Two dicts `{modality_name: (batch, T_m, V_m)}`: the values each
        token is made from (missing ones as 0) and where they are known."""
        values = self.backbone.ordered(inputs)
        targets, known = {}, {}
        for name, x in zip(self.modalities, values):
            tokenizer = self.tokenizers[name]
            grouped = ops.cast(tokenizer._grouped(x), "float32")
            available = tokenizer._value_availability(grouped)
            targets[name] = ops.where(available, grouped, ops.zeros_like(grouped))
            known[name] = available
        return targets, known

    def _modality_errors(self, inputs, outputs):
        """Per modality: (sum of squared errors, number of counted values)."""
        targets, known = self.reconstruction_targets(inputs)
        visible = outputs["visible"]
        errors = {}
        for name in self.modalities:
            start, stop = self.masking.token_slices[name]
            masked = ops.logical_not(ops.cast(visible[:, start:stop], "bool"))
            weight = ops.cast(
                ops.logical_and(known[name], ops.expand_dims(masked, -1)), "float32"
            )
            prediction = ops.cast(outputs["reconstructions"][name], "float32")
            squared = ops.square(prediction - targets[name]) * weight
            errors[name] = (ops.sum(squared), ops.sum(weight))
        return errors

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, **kwargs):
        if y is not None:
            raise ValueError(
                "MultimodalPretrainer is self-supervised: call `fit(x)` "
                "without targets (the inputs are the targets); received "
                f"targets of shape {tuple(getattr(y, 'shape', ()))}."
            )
        if sample_weight is not None:
            raise ValueError(
                "MultimodalPretrainer does not take `sample_weight`; every "
                "masked, available value counts once."
            )
        errors = self._modality_errors(x, y_pred)
        total, count = 0.0, 0.0
        for squared, weight in errors.values():
            present = ops.cast(weight > 0, "float32")
            total = total + present * squared / ops.maximum(weight, 1.0)
            count = count + present
        loss = total / ops.maximum(count, 1.0)
        losses = self.losses
        if losses:
            loss = loss + ops.sum([ops.cast(v, "float32") for v in losses])
        return loss

    def compile(self, optimizer="auto", **kwargs):
        """Configures the model: `optimizer="auto"` is `AdamW(1e-3,
        weight_decay=0.01)`; the loss is the model's own (no `loss` or
        `metrics`); other `keras.Model.compile` arguments pass through."""
        for key in ("loss", "metrics"):
            if kwargs.pop(key, None) is not None:
                raise ValueError(
                    f"MultimodalPretrainer computes its own loss; `{key}` "
                    "must not be passed to `compile()`."
                )
        super().compile(optimizer, **kwargs)

    def score_selections(self):
        """`(modality_name, selection, scored)` triples that
        `modality_scores()` evaluates: a `MIAMMasking.visible_pattern()`
        selection and the `(T,)` boolean pattern of the tokens it scores."""
        if not self.built:
            raise ValueError("MultimodalPretrainer must be built before scoring.")
        rng = np.random.default_rng(_SCORE_SPLIT_SEED)
        layer = self.masking
        triples = []
        for name in self.modalities:
            start, stop = layer.token_slices[name]
            count = stop - start
            if count == 1:
                others = [m for m in self.modalities if m != name]
                scored = np.zeros(layer.num_tokens, bool)
                scored[start:stop] = True
                triples.append((name, {m: True for m in others}, scored))
                continue
            order = rng.permutation(count)
            halves = (np.sort(order[: count // 2]), np.sort(order[count // 2 :]))
            for shown, hidden in (halves, halves[::-1]):
                scored = np.zeros(layer.num_tokens, bool)
                scored[start + hidden] = True
                triples.append((name, {name: shown}, scored))
        return triples

    def modality_errors(self, x, batch_size=256):
        """The `(M,)` reconstruction MSE_m of `modality_scores()` over the
        scored, available values (NaN for a modality with none in `x`)."""
        triples = self.score_selections()
        values = self.backbone.ordered(x)
        x = {name: np.asarray(v) for name, v in zip(self.modalities, values)}
        predictions = view_predictions.predict_views(
            self, x, [selection for _, selection, _ in triples], batch_size=batch_size
        )
        targets, known = self.reconstruction_targets(x)
        sums = dict.fromkeys(self.modalities, 0.0)
        counts = dict.fromkeys(self.modalities, 0.0)
        for (name, _, scored), output in zip(triples, predictions):
            start, stop = self.masking.token_slices[name]
            target = keras.ops.convert_to_numpy(targets[name])
            weight = (
                keras.ops.convert_to_numpy(known[name])
                & scored[start:stop][None, :, None]
            )
            error = (output["reconstructions"][name].astype("float64") - target) ** 2
            sums[name] += float(np.sum(error, where=weight))
            counts[name] += float(weight.sum())
        return np.array(
            [sums[m] / counts[m] if counts[m] > 0 else np.nan for m in self.modalities]
        )

    def modality_scores(self, x, batch_size=256):
        """Per-modality reconstruction scores s_m = 1 / (1 + MSE_m).

        MSE_m is the error of the reconstruction of modality m's hidden
        half from its other half (a fixed random split, both halves
        scored; a one-token modality from the other modalities), over the
        available values. Scores are in (0, 1], higher is better.

        Args:
            x: dict `{modality_name: array}` of validation inputs.
            batch_size: examples per forward pass.

        Returns:
            A `(M,)` float64 numpy array, in `self.modalities` order.

        Raises:
            ValueError: when a modality has no available value to score.
        """
        errors = self.modality_errors(x, batch_size=batch_size)
        if np.any(np.isnan(errors)):
            empty = [m for m, e in zip(self.modalities, errors) if np.isnan(e)]
            raise ValueError(
                "Cannot score the reconstruction of the modalities "
                f"{empty}: the data have no available value for them."
            )
        return 1.0 / (1.0 + errors)

    def to_transformer(self, num_outputs, freeze_backbone=False, **kwargs):
        """`MultimodalTransformer(backbone=self.backbone, ...)`: fine-tuning
        (or, with `freeze_backbone=True`, a linear probe) on this model's
        backbone, shared, not copied. `kwargs`: `task`, `pooling`, `name`."""
        from keras_miam.models.multimodal_transformer import MultimodalTransformer

        self.backbone.trainable = not freeze_backbone
        return MultimodalTransformer(
            backbone=self.backbone, num_outputs=num_outputs, **kwargs
        )
