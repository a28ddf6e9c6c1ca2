"""The MultimodalBackbone: tokenizers -> MIAMMasking -> transformer encoder."""

import json
import os

import keras
from keras import ops

from keras_miam.layers.miam_masking import MIAMMasking


class PresetMixin:
    """`save_to_preset(dir)` / `from_preset(dir)`: a config and a weights file.

    keras-hub's `Backbone` offers the same, but subclassing it would import
    keras-hub (and TensorFlow) with `import keras_miam`.
    """

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
        """Builds the model saved in `preset_dir` with its weights, uncompiled."""
        with open(os.path.join(preset_dir, "config.json")) as f:
            config = json.load(f)
        model = keras.saving.deserialize_keras_object(config)
        if not isinstance(model, cls):
            raise ValueError(
                f"The preset in {preset_dir} holds a {type(model).__name__}, "
                f"not a {cls.__name__}."
            )
        model.load_weights(os.path.join(preset_dir, "model.weights.h5"))
        return model


@keras.saving.register_keras_serializable(package="keras_miam")
class MultimodalBackbone(PresetMixin, keras.Model):
    """Tokenizers -> `MIAMMasking` -> pre-LayerNorm transformer encoder.

    Each named input goes through its tokenizer; `MIAMMasking` replaces the
    masked tokens (drawn from the strategy in training; missing tokens and
    tokens outside the evaluation selection always) by its learned mask
    token, so shapes stay static and a missing token equals a hidden one;
    pre-LayerNorm `keras_hub.layers.TransformerEncoder` blocks (keras-hub is
    imported when the backbone is built) mix all tokens. The tasks
    `MultimodalTransformer` and `MultimodalPretrainer` sit on a backbone:
    fine-tuning is the supervised task on a pre-trained backbone, a linear
    probe the same with `backbone.trainable = False`.

    Args:
        tokenizers: dict `{modality_name: tokenizer}` of Keras layers giving
            `(batch, T_m, D)` (or `(batch, D)`) tokens of one size `D`, their
            availability as Keras mask (see `keras_miam.tokenizers`), in
            token order.
        strategy: a `MIAMMasking` strategy: a name (`"miam"`, `"uniform"`,
            ...), a config dict or a `keras_miam.strategies.MaskingStrategy`.
            Defaults to `"miam"`.
        num_layers: int. Transformer blocks. Defaults to `4` (MaskSDM: 7).
        num_heads: int. Attention heads. Defaults to `4` (MaskSDM: 8).
        intermediate_dim: int. Feed-forward size. Defaults to `None`: `2 * D`.
        dropout: float. Dropout of the encoder blocks. Defaults to `0.1`.
        cls_token: bool. Prepends a learned, always kept CLS token.
            Defaults to `False`.
        seed: optional int, seeds the masking draws.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        **kwargs: other `keras.Model` arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` with exactly the tokenizers'
            keys; missing values are NaN (see `keras_miam.missing`).
        training: bool. Masks at random with the strategy when `True`.

    Returns:
        `(tokens, keep)`: encoded tokens `(batch, T, D)` and the boolean keep
        mask `(batch, T)` (`T` counts the CLS token when there is one).

    Example:

    ```python
    backbone = keras_miam.models.MultimodalBackbone(
        {"env": keras_miam.tokenizers.TabularTokenizer(64),
         "image": keras_miam.tokenizers.ImagePatchTokenizer(64, patch_size=8)},
        num_layers=2,
    )
    model = keras_miam.models.MultimodalTransformer(backbone=backbone, num_outputs=20)
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
        if not isinstance(tokenizers, dict) or not tokenizers:
            raise ValueError(
                "`tokenizers` must be a non-empty dict {modality_name: "
                f"tokenizer layer}}; received {tokenizers!r}."
            )
        for name, tokenizer in tokenizers.items():
            if not isinstance(name, str) or not isinstance(
                tokenizer, keras.layers.Layer
            ):
                raise ValueError(
                    "`tokenizers` maps modality names (str) to Keras layers; "
                    f"received {name!r}: {tokenizer!r}."
                )
        dims = {n: getattr(t, "embed_dim", None) for n, t in tokenizers.items()}
        if len({d for d in dims.values() if d is not None}) > 1:
            raise ValueError(
                "All tokenizers must produce tokens of the same size; received "
                f"embed_dim {dims}. Use one `embed_dim` for every tokenizer."
            )
        if num_layers < 1 or num_heads < 1 or not 0 <= dropout < 1:
            raise ValueError(
                "`num_layers` and `num_heads` must be >= 1 and `dropout` in "
                f"[0, 1); received num_layers={num_layers}, "
                f"num_heads={num_heads}, dropout={dropout}."
            )
        self.tokenizers = dict(tokenizers)
        self.modalities = list(tokenizers)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_dim = intermediate_dim
        self.dropout = float(dropout)
        self.cls_token = bool(cls_token)
        self.seed = seed
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.masking = MIAMMasking(
            self.modalities,
            strategy,
            seed=seed,
            dtype=self.dtype_policy,
            name="masking",
        )
        self.encoder_layers = []

    @property
    def input_dtype(self):
        # Float inputs reach the tokenizers at full precision: they find the
        # missing values before casting to the compute dtype.
        return self.variable_dtype

    def ordered(self, inputs, what="inputs"):
        """`inputs`' values in modality order; refuses other keys."""
        keys = list(inputs) if isinstance(inputs, dict) else None
        if keys is None or sorted(map(str, keys)) != sorted(self.modalities):
            missing = [m for m in self.modalities if keys is None or m not in keys]
            extra = sorted(str(k) for k in keys or () if k not in self.tokenizers)
            raise ValueError(
                f"{type(self).__name__} expects {what} as a dict for exactly "
                f"the modalities {self.modalities}; received "
                f"{type(inputs).__name__} (missing: {missing}, unexpected: "
                f"{extra}). Pass NaN for a missing modality, do not leave its "
                "key out."
            )
        return [inputs[name] for name in self.modalities]

    def build(self, inputs_shape):
        import keras_hub  # on first use: it imports TensorFlow

        token_shapes = {}
        for name, shape in zip(self.modalities, self.ordered(inputs_shape, "shapes")):
            shape = (None,) + tuple(shape)[1:]
            tokenizer = self.tokenizers[name]
            if not tokenizer.built:
                tokenizer.build(shape)
            spec = tokenizer.compute_output_spec(
                keras.KerasTensor(shape, dtype=tokenizer.compute_dtype)
            )
            token_shapes[name] = tuple(spec.shape)
        self.masking.build(token_shapes)
        self.embed_dim = self.masking.embed_dim
        if self.cls_token:
            self.cls = self.add_weight(
                shape=(self.embed_dim,),
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="cls_token",
            )
        num_tokens = self.masking.num_tokens + self.cls_token
        self.encoder_layers = []
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
            layer.build((None, num_tokens, self.embed_dim))
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
        config = super().get_config()
        config.update(
            {
                "tokenizers": {
                    name: keras.saving.serialize_keras_object(tokenizer)
                    for name, tokenizer in self.tokenizers.items()
                },
                "strategy": self.masking.get_config()["strategy"],
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "cls_token": self.cls_token,
                "seed": self.seed,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["tokenizers"] = {
            name: keras.saving.deserialize_keras_object(tokenizer)
            for name, tokenizer in config["tokenizers"].items()
        }
        return cls(**config)
