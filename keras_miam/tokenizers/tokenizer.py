"""The base class of modality tokenizers: missing values, availability, embeddings."""

import keras
from keras import ops

# Values whose magnitude exceeds this are nodata fill values (GeoPlant tables
# use e.g. -3.4e38 or 1e20), whatever the tokenizer's `nodata` setting.
NODATA_THRESHOLD = 1e10


@keras.saving.register_keras_serializable(package="keras_miam")
class Tokenizer(keras.layers.Layer):
    """Base class of the modality tokenizers: one modality in, tokens out.

    A tokenizer turns the raw input of one modality into a sequence of
    `embed_dim`-dimensional tokens (one tabular variable, one time step or
    segment, one image patch, one precomputed embedding = one token), adds its
    own position embeddings and a learned modality embedding (a `(embed_dim,)`
    vector shared by all its tokens), and reports which tokens are available.

    This class holds the missing-data rule, in one place for every tokenizer:

    - a *value* is missing when it is NaN, +-inf, has a magnitude above
      `1e10` (nodata fill values), or equals `nodata` when `nodata` is set;
    - a *token* is missing when ALL of its values are missing: its
      availability is `False`, and `MIAMMasking` replaces it by the mask
      token (at training and at inference);
    - the missing values of a token that is only partly missing are replaced
      by `0` (the training mean of standardised inputs), so the token is
      computed from its available values only;
    - missing values are replaced with `ops.where` before any arithmetic, so
      NaN reaches neither the tokens nor the gradients;
    - missing values are detected in the variable dtype (float32 under a
      mixed precision policy), before inputs are cast to the compute dtype,
      so a valid value too large for float16 is not taken for a missing
      one. Inputs are expected to be standardised, as for any neural
      network: under `"mixed_float16"` a value beyond float16's range
      (65504) still overflows once cast.

    Availability is a `(batch, num_tokens)` boolean tensor (`True` =
    available). It is returned by `compute_availability(inputs)` (explicit
    use) and by `compute_mask(inputs)`, so Keras' automatic mask propagation
    delivers it to `MIAMMasking(mask=...)` in a functional model without any
    plumbing.

    Subclasses implement `build(input_shape)` (calling
    `self._build_modality_embedding()`), `_check_input_shape(shape)` (raise
    a `ValueError` that says what was wrong and what was expected),
    `_group_values(inputs)` (a reshape to `(batch, num_tokens,
    values_per_token)`), `_embed(values)` (clean values to content tokens
    plus position embeddings) and `compute_output_shape(input_shape)`.

    Args:
        embed_dim: int. The token dimension `D`.
        nodata: optional float. A value that also marks missing data (e.g.
            `-1` for int16 GeoPlant Sentinel-2 tiles). Defaults to `None`.
        embeddings_initializer: initializer of the modality and position
            embeddings. Defaults to `TruncatedNormal(stddev=0.02)`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `dtype` and `trainable`.

    Call arguments:
        inputs: the modality's raw input tensor (see each subclass), with
            missing values encoded as NaN, +-inf, `|x| > 1e10` or `nodata`.

    Example:

    ```python
    tokenizer = keras_miam.tokenizers.TabularTokenizer(embed_dim=32)
    x = np.array([[0.3, np.nan, 1.2]], "float32")
    tokens = tokenizer(x)                           # (1, 3, 32), finite
    available = tokenizer.compute_availability(x)  # [[True, False, True]]
    ```

    Reference:
     - [Zbinden et al., 2025 (MaskSDM)](https://arxiv.org/abs/2503.13057)
    """

    def __init__(
        self,
        embed_dim,
        nodata=None,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            isinstance(embed_dim, bool)
            or not isinstance(embed_dim, int)
            or embed_dim <= 0
        ):
            raise ValueError(
                f"`embed_dim` must be a positive int; received {embed_dim!r}."
            )
        if nodata is not None:
            nodata = float(nodata)
        self.embed_dim = embed_dim
        self.nodata = nodata
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = True

    @property
    def input_dtype(self):
        # Keep float inputs at full precision until missing values are found.
        return self.variable_dtype

    def _build_modality_embedding(self):
        self.modality_embedding = self.add_weight(
            shape=(self.embed_dim,),
            initializer=self.embeddings_initializer,
            name="modality_embedding",
        )

    def _check_input_shape(self, shape):
        raise NotImplementedError(
            f"{type(self).__name__} must implement `_check_input_shape()`."
        )

    def _group_values(self, inputs):
        raise NotImplementedError(
            f"{type(self).__name__} must implement `_group_values()`."
        )

    def _embed(self, values):
        raise NotImplementedError(f"{type(self).__name__} must implement `_embed()`.")

    def _value_availability(self, values):
        """Elementwise `True` where a value is present (the rule above)."""
        # One comparison covers NaN (compares False), +-inf and nodata fills.
        available = ops.less_equal(ops.abs(values), NODATA_THRESHOLD)
        if self.nodata is not None:
            available = ops.logical_and(available, ops.not_equal(values, self.nodata))
        return available

    def _grouped(self, inputs):
        inputs = ops.convert_to_tensor(inputs)
        self._check_input_shape(tuple(inputs.shape))
        return self._group_values(ops.cast(inputs, self.variable_dtype))

    def compute_availability(self, inputs):
        """Per-token availability of `inputs`.

        Args:
            inputs: the modality's raw input, as passed to the layer.

        Returns:
            A `(batch, num_tokens)` boolean tensor, `False` where every value
            of the token is missing.
        """
        values = self._grouped(inputs)
        return ops.any(self._value_availability(values), axis=-1)

    def compute_mask(self, inputs, previous_mask=None):
        return self.compute_availability(inputs)

    def call(self, inputs):
        values = self._grouped(inputs)
        available = self._value_availability(values)
        values = ops.where(available, values, ops.zeros_like(values))
        tokens = self._embed(ops.cast(values, self.compute_dtype))
        return tokens + ops.cast(self.modality_embedding, tokens.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embed_dim": self.embed_dim,
                "nodata": self.nodata,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
