"""Self-supervised any-to-any pre-training: masked token reconstruction."""

import keras
import numpy as np
from keras import ops

from keras_miam.evaluation import view_predictions
from keras_miam.models.multimodal_transformer import MultimodalTransformer
from keras_miam.models.multimodal_transformer import deserialize_tokenizers

# Seed of the fixed split of each modality's tokens into two halves that
# `modality_scores()` uses (one half visible, the other reconstructed).
_SCORE_SPLIT_SEED = 0


@keras.saving.register_keras_serializable(package="keras_miam")
class MultimodalPretrainer(keras.Model):
    """Masked reconstruction of every modality's tokens, with MIAM masking.

    The self-supervised task model of `MultimodalTransformer`: the same
    tokenizers, `MIAMMasking` layer and pre-LayerNorm transformer encoder
    (held by `self.backbone`, a `MultimodalTransformer` whose pooled head is
    not used), followed by one linear reconstruction head per modality that
    predicts, for every token, the values it was made from: one value per
    variable of a table, the `patch_len * channels` values of a series
    segment, the `patch_size^2 * channels` pixels of an image patch, the
    vector of an embedding. The targets are the inputs themselves, which
    the tokenizers expect standardised (zero mean, unit variance per
    variable, channel or band on the training data): the heads predict
    normalised inputs.

    During `fit(x)` (no labels) `MIAMMasking` masks tokens with its
    strategy (MIAM, Uniform, Dirichlet, ... drawn per example over the
    hypercube), and the loss is the mean squared error over the **masked
    tokens whose input is available** only, per value: a token missing in
    the data (NaN) is masked but is no target, and the missing values of a
    partly missing token are left out of its error. The loss of each
    modality is the mean over its counted values; the total is the mean
    over the modalities that have counted values in the batch (so a large
    image does not outweigh a short table). A batch with nothing to
    reconstruct has loss 0. NaN never reaches the loss or the gradients.

    Any-to-any: at inference, `predict(x)` reconstructs every token that is
    missing or hidden (`self.masking.set_visible(...)`) from the visible
    ones, so `predict` with `set_visible(["env"])` predicts the image
    patches from the environmental table.

    Modality scores for MIAM (`modality_scores()`): s_m = 1 / (1 + MSE_m),
    in (0, 1], higher is better, where MSE_m is the reconstruction error of
    modality m's tokens from modality m alone (every other modality
    hidden). The tokens of m are split once, at random with a fixed seed,
    into two halves A and B; A is reconstructed from B and B from A, so
    every token is scored once. This mirrors the supervised s_m (the model
    on modality m alone): a modality the model has learned to read and
    complete well (high s_m, saturating) is masked more by MIAM. A modality
    made of a single token cannot be completed from itself; it is scored
    from all the other modalities instead.
    `km.ModalityDynamics(x_val, metric="reconstruction")` (no labels) reads
    these scores every epoch and drives MIAM's r_m with them.

    Transfer: `to_transformer(num_outputs, ...)` returns a
    `MultimodalTransformer` with the pre-trained tokenizers, mask token and
    encoder (copied weights) and a fresh head, for fine-tuning, or for a
    linear probe with `freeze_encoder=True`.

    Args:
        tokenizers: dict `{modality_name: tokenizer}` (see
            `MultimodalTransformer`).
        strategy: masking strategy of `MIAMMasking`: a name (`"miam"`,
            `"uniform"`, `"dirichlet"`, `"opm"`, ...), a config dict or a
            `keras_miam.strategies.MaskingStrategy`. Defaults to `"miam"`.
        num_layers: int. Transformer blocks. Defaults to `4`.
        num_heads: int. Attention heads. Defaults to `4`.
        intermediate_dim: int. Feed-forward size. Defaults to `None`:
            `2 * D`.
        dropout: float. Dropout of the encoder blocks. Defaults to `0.1`.
        seed: optional int, seeds the masking draws.
        layer_norm_epsilon: float. Epsilon of the layer normalisations.
            Defaults to `1e-5`.
        **kwargs: other keyword arguments passed to `keras.Model`, such as
            `name` and `dtype`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` with exactly the tokenizers'
            keys. Missing values are NaN (or another missing marker, see
            `keras_miam.tokenizers.Tokenizer`).
        training: bool. Masks at random with the strategy when `True`.

    Returns:
        A dict with `"reconstructions"`: `{modality_name: (batch, T_m,
        V_m)}` float32 predicted token values (V_m values per token, in the
        tokenizer's grouping), and `"visible"`: the `(batch, T)` boolean
        keep mask of `MIAMMasking` (`False` = masked or missing; the
        reconstruction targets are the `False` tokens).

    Example:

    ```python
    import keras_miam as km

    x, _, _ = km.datasets.make_synthetic_ecology(8000, modalities=["env", "image"])
    pretrainer = km.models.MultimodalPretrainer(
        tokenizers={
            "env": km.tokenizers.TabularTokenizer(32, num_frequencies=16),
            "image": km.tokenizers.ImagePatchTokenizer(32, patch_size=4),
        },
        strategy="miam",
        num_layers=2,
    )
    pretrainer.compile()  # AdamW(1e-3, weight_decay=0.01)
    dynamics = km.ModalityDynamics(x_val, metric="reconstruction")  # no labels
    pretrainer.fit(x, epochs=10, callbacks=[dynamics])
    model = pretrainer.to_transformer(num_outputs=20)
    model.compile()
    model.fit(x_labelled, y_labelled, epochs=30)
    ```

    Reference:
     - [Zbinden et al., 2026 (MIAM)](https://openreview.net/forum?id=oljjAkgZN4)
     - [He et al., 2022 (MAE)](https://arxiv.org/abs/2111.06377)
     - [Bachmann et al., 2022 (MultiMAE)](https://arxiv.org/abs/2204.01678)
    """

    def __init__(
        self,
        tokenizers,
        strategy="miam",
        num_layers=4,
        num_heads=4,
        intermediate_dim=None,
        dropout=0.1,
        seed=None,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # The backbone checks the arguments and owns the shared blocks; its
        # pooled head (one placeholder output) is never called.
        self.backbone = MultimodalTransformer(
            tokenizers,
            num_outputs=1,
            strategy=strategy,
            num_layers=num_layers,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            seed=seed,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="backbone",
        )
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=float(layer_norm_epsilon),
            dtype=self.dtype_policy,
            name="output_norm",
        )
        self.heads = {}
        self.input_shapes = None

    @property
    def tokenizers(self):
        return self.backbone.tokenizers

    @property
    def modalities(self):
        return self.backbone.modalities

    @property
    def masking(self):
        return self.backbone.masking

    @property
    def strategy(self):
        return self.backbone.masking.strategy

    @property
    def encoder_layers(self):
        return self.backbone.encoder_layers

    @property
    def input_dtype(self):
        return self.variable_dtype

    def build(self, inputs_shape):
        shapes = self.backbone._check_inputs(inputs_shape, what="input shapes")
        self.input_shapes = {
            name: (None,) + tuple(shape)[1:]
            for name, shape in zip(self.modalities, shapes)
        }
        self.backbone.build(self.input_shapes)
        # Unused in pre-training: frozen, so no optimizer sees a gradient-free
        # variable.
        self.backbone.final_norm.trainable = False
        self.backbone.head.trainable = False
        embed_dim = self.backbone.embed_dim
        self.output_norm.build((None, None, embed_dim))
        self.heads = {}
        for name, shape in self.input_shapes.items():
            head = keras.layers.Dense(
                self._values_per_token(name, shape),
                dtype=self.dtype_policy.variable_dtype,
                name=f"{name}_head",
            )
            head.build((None, None, embed_dim))
            self.heads[name] = head
        self.built = True

    def _values_per_token(self, name, shape):
        """V_m: the number of input values grouped in one token of `name`."""
        sample = np.zeros((1,) + tuple(shape)[1:], "float32")
        return int(self.tokenizers[name]._grouped(sample).shape[-1])

    def call(self, inputs, training=None):
        values = self.backbone._check_inputs(inputs)
        tokens, availability = {}, {}
        for name, x in zip(self.modalities, values):
            tokenizer = self.tokenizers[name]
            tokens[name] = tokenizer(x)
            availability[name] = tokenizer.compute_mask(x, None)
        x, keep = self.masking(tokens, mask=availability, training=training)
        for layer in self.encoder_layers:
            x = layer(x, training=training)
        x = self.output_norm(x)
        reconstructions = {}
        for name in self.modalities:
            start, stop = self.masking.token_slices[name]
            reconstructions[name] = self.heads[name](x[:, start:stop])
        return {"reconstructions": reconstructions, "visible": keep}

    def reconstruction_targets(self, inputs):
        """The values each token is made from, and which of them are known.

        Args:
            inputs: dict `{modality_name: tensor}`, as for `call`.

        Returns:
            Two dicts `{modality_name: (batch, T_m, V_m)}`: the target
            values (missing values replaced by 0) and a boolean tensor,
            `True` where the value is available.
        """
        values = self.backbone._check_inputs(inputs)
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

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
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
        """Configures the model for pre-training.

        Args:
            optimizer: `"auto"` (default) for `AdamW(learning_rate=1e-3,
                weight_decay=0.01)`, or any optimizer `keras.Model.compile`
                accepts.
            **kwargs: other `keras.Model.compile` arguments, such as
                `jit_compile`. The loss is the model's own (masked
                reconstruction); `loss` and `metrics` are not accepted.
        """
        for key in ("loss", "metrics"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"MultimodalPretrainer computes its own loss; `{key}` "
                    f"must not be passed to `compile()`; received {kwargs[key]!r}."
                )
            kwargs.pop(key, None)
        if isinstance(optimizer, str) and optimizer == "auto":
            optimizer = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def score_selections(self):
        """The visibility patterns `modality_scores()` evaluates.

        Returns:
            A list of `(modality_name, selection, scored)` triples: the
            selection (a `MIAMMasking.visible_pattern()` dict) and the `(T,)`
            boolean pattern of the tokens of `modality_name` it scores.
        """
        if not self.built:
            raise ValueError(
                "MultimodalPretrainer must be built (called on inputs or "
                "fitted) before `modality_scores()`."
            )
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
        """Reconstruction MSE of each modality (see `modality_scores()`).

        Args:
            x: dict `{modality_name: array}` of validation inputs.
            batch_size: examples per forward pass.

        Returns:
            A `(M,)` float64 numpy array, in `self.modalities` order: the
            mean squared error over the scored, available values of each
            modality (NaN for a modality with no such value in `x`).
        """
        triples = self.score_selections()
        values = self.backbone._check_inputs(x)
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

        For each modality m, the model sees modality m alone, half of its
        tokens at a time (a fixed random split; both halves are scored),
        and MSE_m is the mean squared error of its reconstruction of the
        hidden half, over the available values (NaN inputs never count).
        A one-token modality is reconstructed from all the other
        modalities. Scores are in (0, 1], higher is better, the form
        `MIAMMasking.update_dynamics()` takes.

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

    def to_transformer(
        self,
        num_outputs,
        task="multilabel",
        strategy=None,
        pooling="mean",
        dropout=None,
        freeze_encoder=False,
        **kwargs,
    ):
        """A `MultimodalTransformer` initialised from this pre-trained model.

        The tokenizers, the mask token (and slot embeddings) of the masking
        layer, and the encoder blocks get copies of this model's weights;
        the pooled head (final LayerNorm and Dense) is new. The returned
        model is built, independent of this one (training it leaves the
        pretrainer unchanged), and uncompiled.

        Args:
            num_outputs: int. Number of species or classes.
            task: `"multilabel"` or `"multiclass"`. Defaults to
                `"multilabel"`.
            strategy: masking strategy for fine-tuning. Defaults to `None`:
                the pre-training strategy (fresh dynamics).
            pooling: `"mean"` or `"cls"`. Defaults to `"mean"`.
            dropout: float. Defaults to `None`: the pre-training dropout.
            freeze_encoder: bool. If `True`, the tokenizers, the masking
                layer and the encoder are frozen (`trainable=False`): a
                linear probe that trains the head only. Defaults to `False`
                (fine-tuning of every weight).
            **kwargs: other `MultimodalTransformer` arguments, such as
                `name` or `seed`.

        Returns:
            A built `MultimodalTransformer`.
        """
        if not self.built:
            raise ValueError(
                "MultimodalPretrainer must be built (called on inputs or "
                "fitted) before `to_transformer()`."
            )
        config = self.backbone.get_config()
        for key in ("name", "trainable", "dtype"):
            config.pop(key, None)
        config.update(num_outputs=num_outputs, task=task, pooling=pooling)
        if strategy is not None:
            config["strategy"] = strategy
        if dropout is not None:
            config["dropout"] = dropout
        config.update(kwargs)
        config.setdefault("dtype", self.dtype_policy)
        model = MultimodalTransformer.from_config(config)
        model.build(self.input_shapes)
        for name in self.modalities:
            model.tokenizers[name].set_weights(self.tokenizers[name].get_weights())
        # Copies (NumPy), not the variables' buffers, which JAX may donate.
        model.masking.mask_token.assign(ops.convert_to_numpy(self.masking.mask_token))
        if self.masking.slot_embedding is not None:
            if model.masking.slot_embedding is not None:
                model.masking.slot_embedding.assign(
                    ops.convert_to_numpy(self.masking.slot_embedding)
                )
        for source, target in zip(self.encoder_layers, model.encoder_layers):
            target.set_weights(source.get_weights())
        if freeze_encoder:
            for name in self.modalities:
                model.tokenizers[name].trainable = False
            model.masking.trainable = False
            for layer in model.encoder_layers:
                layer.trainable = False
        return model

    def get_config(self):
        config = super().get_config()
        backbone = self.backbone.get_config()
        config.update(
            {
                key: backbone[key]
                for key in (
                    "tokenizers",
                    "strategy",
                    "num_layers",
                    "num_heads",
                    "intermediate_dim",
                    "dropout",
                    "seed",
                    "layer_norm_epsilon",
                )
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_tokenizers(config))
