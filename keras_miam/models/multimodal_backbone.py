"""The MultimodalBackbone: tokenizers -> MIAMMasking -> transformer encoder."""

import json
import os

import keras
from keras import ops

from keras_miam.layers.miam_masking import MIAMMasking
from keras_miam.models.checks import check_keys


class PresetMixin:
    """`save_to_preset(dir)` / `from_preset(dir)`, as keras-hub's `Backbone`
    (not subclassed: keras-hub imports TensorFlow)."""

    # Inputs reach the tokenizers at full precision: they find missing values.
    input_dtype = property(lambda self: self.variable_dtype)

    def save_to_preset(self, preset_dir):
        """Saves the config (`config.json`) and weights to `preset_dir`."""
        if not self.built:
            raise ValueError(f"{type(self).__name__} must be built before saving.")
        os.makedirs(preset_dir, exist_ok=True)
        config = keras.saving.serialize_keras_object(self)  # with build_config
        config.pop("compile_config", None)
        with open(os.path.join(preset_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        self.save_weights(os.path.join(preset_dir, "model.weights.h5"))

    @classmethod
    def from_preset(cls, preset_dir):
        """The model saved in `preset_dir`, with its weights, uncompiled."""
        with open(os.path.join(preset_dir, "config.json")) as f:
            model = keras.saving.deserialize_keras_object(json.load(f))
        if not isinstance(model, cls):
            raise ValueError(
                f"The preset in {preset_dir} holds a {type(model).__name__}, "
                f"not a {cls.__name__}."
            )
        model.load_weights(os.path.join(preset_dir, "model.weights.h5"))
        return model


@keras.saving.register_keras_serializable(package="keras_miam")
class MultimodalBackbone(PresetMixin, keras.Model):
    """Tokenizers, `MIAMMasking` and a pre-LayerNorm transformer encoder.

    `MIAMMasking` replaces the masked tokens (drawn in training; missing ones
    and those outside the evaluation selection always) by a learned mask
    token; `keras_hub.layers.TransformerEncoder` blocks follow.

    Args:
        tokenizers: dict `{modality_name: tokenizer}` of Keras layers giving
            `(batch, T_m, D)` (or `(batch, D)`) tokens of one size `D` and
            their availability as Keras mask (see `keras_miam.tokenizers`).
        strategy: a `MIAMMasking` strategy: a name, a config dict or a
            `keras_miam.strategies.MaskingStrategy`. Defaults to `"miam"`.
        num_layers: int. Transformer blocks. Defaults to `4`.
        num_heads: int. Attention heads. Defaults to `4`.
        intermediate_dim: int. Feed-forward size. Defaults to `2 * D`.
        dropout: float. Dropout of the encoder blocks. Defaults to `0.1`.
        cls_token: bool. Prepends a learned, always kept CLS token.
        seed: optional int, seeds the masking draws.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        **kwargs: other `keras.Model` arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` with exactly the tokenizers'
            keys; missing values are NaN (see `keras_miam.missing`).
        training: bool. Masks at random with the strategy when `True`.

    Returns:
        `(tokens, keep)`: the encoded tokens `(batch, T, D)` and the boolean
        keep mask `(batch, T)`, the CLS token first when there is one.

    Example:

    ```python
    tokenizers = {
        "env": keras_miam.tokenizers.TabularTokenizer(64),
        "image": keras_miam.tokenizers.ImagePatchTokenizer(64, patch_size=8),
    }
    backbone = keras_miam.models.MultimodalBackbone(tokenizers, num_layers=2)
    tokens, keep = backbone({"env": env, "image": images})
    backbone.save_to_preset("./miam_backbone")
    ```

    Reference:
     - [Zbinden et al., 2026 (MIAM)](https://openreview.net/forum?id=oljjAkgZN4)
     - [Zbinden et al., 2025 (MaskSDM)](https://arxiv.org/abs/2503.13057)
    """

    def __init__(
        self,
        tokenizers,
        strategy="miam",
        num_layers=4,
        num_heads=4,
        intermediate_dim=None,
        dropout=0.1,
        cls_token=False,
        seed=None,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        items = tokenizers.items() if isinstance(tokenizers, dict) else [(0, 0)]
        dims = {n: getattr(t, "embed_dim", None) for n, t in items}
        if len(set(dims.values()) - {None}) > 1 or not all(
            isinstance(t, keras.layers.Layer) for _, t in items
        ):
            raise ValueError(
                "`tokenizers` must map modality names to Keras layers giving tokens "
                f"of one size; received {tokenizers!r} (embed_dim {dims})."
            )
        self.tokenizers, self.modalities = dict(tokenizers), list(tokenizers)
        self.num_layers, self.num_heads, self.dropout = num_layers, num_heads, dropout
        self.intermediate_dim, self.seed = intermediate_dim, seed
        self.cls_token, self.layer_norm_epsilon = bool(cls_token), layer_norm_epsilon
        policy = self.dtype_policy
        self.masking = MIAMMasking(
            self.modalities, strategy, seed, dtype=policy, name="masking"
        )
        self.encoder_layers = []

    def ordered(self, inputs, what="inputs"):
        """`inputs`' values in modality order; refuses other keys."""
        check_keys(inputs, self.modalities, type(self).__name__, what)
        return [inputs[name] for name in self.modalities]

    def build(self, inputs_shape):
        import keras_hub  # on first use: it imports TensorFlow

        token_shapes = {}
        for name, shape in zip(self.modalities, self.ordered(inputs_shape, "shapes")):
            tokenizer, shape = self.tokenizers[name], (None,) + tuple(shape)[1:]
            if not tokenizer.built:
                tokenizer.build(shape)
            spec = tokenizer.compute_output_spec(keras.KerasTensor(shape))
            token_shapes[name] = tuple(spec.shape)
        self.masking.build(token_shapes)
        self.embed_dim = self.masking.embed_dim
        if self.cls_token:
            self.cls = self.add_weight(
                shape=(self.embed_dim,),
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="cls_token",
            )
        self.encoder_layers = []
        shape = (None, self.masking.num_tokens + self.cls_token, self.embed_dim)
        for i in range(self.num_layers):
            layer = keras_hub.layers.TransformerEncoder(
                intermediate_dim=self.intermediate_dim or 2 * self.embed_dim,
                num_heads=self.num_heads,
                dropout=self.dropout,
                layer_norm_epsilon=self.layer_norm_epsilon,
                normalize_first=True,
                dtype=self.dtype_policy,
                name=f"transformer_layer_{i}",
            )
            layer.build(shape)
            self.encoder_layers.append(layer)
        self.built = True

    def call(self, inputs, training=None):
        tokens, available = {}, {}
        for name, x in zip(self.modalities, self.ordered(inputs)):
            try:
                tokens[name] = self.tokenizers[name](x)
            except ValueError as error:  # name the modality, not the layer
                raise ValueError(f"Modality '{name}': {error}") from None
            available[name] = self.tokenizers[name].compute_mask(x, None)
        x, keep = self.masking(tokens, mask=available, training=training)
        if self.cls_token:
            batch = ops.shape(x)[0]
            cls = ops.broadcast_to(ops.cast(self.cls, x.dtype), (batch, 1, x.shape[-1]))
            x = ops.concatenate([cls, x], axis=1)
            keep = ops.concatenate([ops.ones((batch, 1), "bool"), keep], axis=1)
        for layer in self.encoder_layers:
            x = layer(x, training=training)
        return x, keep

    def get_config(self):
        return {
            **super().get_config(),
            "tokenizers": keras.saving.serialize_keras_object(self.tokenizers),
            "strategy": self.masking.get_config()["strategy"],
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "cls_token": self.cls_token,
            "seed": self.seed,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config):
        tokenizers = keras.saving.deserialize_keras_object(config["tokenizers"])
        return cls(**{**config, "tokenizers": tokenizers})
