"""Self-supervised any-to-any pre-training: masked token reconstruction."""

import keras
import numpy as np
from keras import ops

from keras_miam.models.checks import static_shape
from keras_miam.models.multimodal_transformer import MultimodalTransformer
from keras_miam.models.task import Task


@keras.saving.register_keras_serializable(package="keras_miam")
class MultimodalPretrainer(Task):
    """Masked reconstruction of every modality's tokens on a `MultimodalBackbone`.

    One linear head per modality predicts each token's input values. `fit(x)`
    takes no labels: the loss is the squared error over the masked tokens'
    available values, averaged per modality, then over the modalities present
    in the batch. `modality_scores(x)` gives MIAM's label-free scores, for
    `keras_miam.ModalityDynamics(x_val, metric="reconstruction")`.

    Args:
        tokenizers: dict `{modality_name: tokenizer}` for a new backbone.
        backbone: a `keras_miam.models.MultimodalBackbone` instead, shared.
        **kwargs: `MultimodalBackbone` arguments, `name` and `dtype`.

    Call arguments:
        inputs: dict `{modality_name: tensor}`; missing values are NaN.
        training: bool. Masks at random with the strategy when `True`.

    Returns:
        A dict: `"reconstructions"`, `{modality_name: (batch, T_m, V_m)}`
        float32 token values, and `"visible"`, the `(batch, T)` keep mask of
        `MIAMMasking` (the targets are the `False` tokens).

    Example:

    ```python
    pretrainer = keras_miam.models.MultimodalPretrainer(tokenizers, num_layers=2)
    pretrainer.compile()
    dynamics = keras_miam.ModalityDynamics(x_val, metric="reconstruction")
    pretrainer.fit(x, epochs=10, callbacks=[dynamics])
    model = pretrainer.to_transformer(num_outputs=20)  # fine-tuning
    ```

    Reference:
     - [He et al., 2022 (MAE)](https://arxiv.org/abs/2111.06377)
     - [Bachmann et al., 2022 (MultiMAE)](https://arxiv.org/abs/2204.01678)
     - [Zbinden et al., 2026 (MIAM)](https://openreview.net/forum?id=oljjAkgZN4)
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
        self.output_norm.build((None, None, embed_dim := self.backbone.embed_dim))
        for name, shape in zip(self.modalities, self.backbone.ordered(inputs_shape)):
            values, _ = self.tokenizers[name]._grouped(np.zeros((1, *shape[1:])))
            self.heads[name] = keras.layers.Dense(  # V_m: values per token
                values.shape[-1],
                dtype=self.dtype_policy.variable_dtype,
                name=f"{name}_head",
            )
            self.heads[name].build((None, None, embed_dim))
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
        targets, known = {}, {}
        for name, x in zip(self.modalities, self.backbone.ordered(inputs)):
            values, known[name] = self.tokenizers[name]._grouped(x)
            targets[name] = ops.where(known[name], ops.cast(values, "float32"), 0.0)
        return targets, known

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, **kwargs):
        if y is not None or sample_weight is not None:
            raise ValueError(
                "MultimodalPretrainer is self-supervised: call `fit(x)` without "
                f"targets or `sample_weight`; received targets of shape {static_shape(y)}."
            )
        targets, known = self.reconstruction_targets(x)
        total, count = 0.0, 0.0
        for name in self.modalities:
            start, stop = self.masking.token_slices[name]
            visible = y_pred["visible"][:, start:stop, None]
            hidden = ops.logical_not(ops.cast(visible, "bool"))
            weight = ops.cast(ops.logical_and(known[name], hidden), "float32")
            prediction = ops.cast(y_pred["reconstructions"][name], "float32")
            squared = ops.sum(ops.square(prediction - targets[name]) * weight)
            present = ops.cast(ops.sum(weight) > 0, "float32")
            total = total + present * squared / ops.maximum(ops.sum(weight), 1.0)
            count = count + present
        loss = total / ops.maximum(count, 1.0)
        return loss + sum(ops.cast(v, "float32") for v in self.losses)

    def compile(self, optimizer="auto", **kwargs):
        """`Task.compile`, without `loss` or `metrics`: the loss is built in."""
        if kwargs.get("loss") is not None or kwargs.get("metrics") is not None:
            raise ValueError(
                "MultimodalPretrainer computes its own loss; pass no `loss` or "
                f"`metrics` to `compile()`; received {kwargs}."
            )
        super().compile(optimizer, **kwargs)

    def score_selections(self):
        """`(modality, selection, scored tokens (T,))` of `modality_scores()`:
        each half of a modality's tokens (a fixed random split) is scored from
        the other half; a one-token modality from the other modalities."""
        if not self.built:
            raise ValueError("MultimodalPretrainer must be built before scoring.")
        rng, triples = np.random.default_rng(0), []
        tokens = np.arange(self.masking.num_tokens)
        for name, (start, stop) in self.masking.token_slices.items():
            if stop - start == 1:
                others = {m: True for m in self.modalities if m != name}
                triples.append((name, others, tokens == start))
                continue
            order, half = rng.permutation(stop - start), (stop - start) // 2
            halves = np.sort(order[:half]), np.sort(order[half:])
            for shown, hidden in (halves, halves[::-1]):
                triples.append((name, {name: shown}, np.isin(tokens, start + hidden)))
        return triples

    def modality_errors(self, x, batch_size=256):
        """The `(M,)` reconstruction MSE_m of `modality_scores()` over the
        scored, available values (NaN for a modality with none in `x`)."""
        from keras_miam.evaluation.view_predictions import predict_views

        triples = self.score_selections()
        x = dict(zip(self.modalities, map(np.asarray, self.backbone.ordered(x))))
        predictions = predict_views(
            self, x, [s for _, s, _ in triples], None, batch_size
        )
        targets, known = self.reconstruction_targets(x)
        sums, counts = np.zeros((2, len(self.modalities)))
        for (name, _, scored), output in zip(triples, predictions):
            start, stop = self.masking.token_slices[name]
            weight = ops.convert_to_numpy(known[name]) & scored[None, start:stop, None]
            target = ops.convert_to_numpy(targets[name])
            error = (output["reconstructions"][name].astype("float64") - target) ** 2
            sums[self.modalities.index(name)] += np.sum(error, where=weight)
            counts[self.modalities.index(name)] += weight.sum()
        return np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)

    def modality_scores(self, x, batch_size=256):
        """MIAM's label-free scores s_m = 1 / (1 + MSE_m) of the validation
        inputs `x`, a `(M,)` array in (0, 1]: MSE_m is `modality_errors(x)`,
        a modality's hidden tokens reconstructed from its other tokens."""
        errors = self.modality_errors(x, batch_size=batch_size)
        if np.isnan(errors).any():
            empty = [m for m, e in zip(self.modalities, errors) if np.isnan(e)]
            raise ValueError(
                f"Cannot score the reconstruction of the modalities {empty}: "
                "the data have no available value for them."
            )
        return 1.0 / (1.0 + errors)

    def to_transformer(self, num_outputs, freeze_backbone=False, **kwargs):
        """A `MultimodalTransformer` on this backbone (shared, not copied):
        fine-tuning, or a linear probe with `freeze_backbone=True`.
        `kwargs`: `task`, `pooling`, `name`."""
        self.backbone.trainable = not freeze_backbone
        kwargs.update(backbone=self.backbone, num_outputs=num_outputs)
        return MultimodalTransformer(**kwargs)
