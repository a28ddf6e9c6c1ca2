"""The base class of the modality tokenizers."""

import keras
from keras import ops

from keras_miam.missing import is_missing


def positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int; received {value!r}.")
    return value


@keras.saving.register_keras_serializable(package="keras_miam")
class Tokenizer(keras.layers.Layer):
    """Base class of the modality tokenizers: one modality in, tokens out.

    A tokenizer cuts the input of one modality into tokens (one tabular
    variable, one time segment, one image patch or one embedding each),
    embeds them to `embed_dim`, adds position embeddings and a learned
    modality embedding shared by its tokens, and reports which tokens are
    available.

    Missing data: a value is missing by the rule of
    `keras_miam.missing.is_missing` (NaN, +-inf, `|x| > 1e10`, or `nodata`),
    found in the variable dtype before the cast to the compute dtype. A token
    is unavailable when all of its values are missing; the missing values of
    a partly missing token are replaced by 0 before any arithmetic, so NaN
    reaches neither the tokens nor the gradients. Availability, a
    `(batch, num_tokens)` boolean tensor, is the Keras mask of the output,
    so it reaches `MIAMMasking` in a functional model by itself.

    Subclasses set `input_axes` (the names of the input axes after the batch
    axis) and `built_for` (a description of the built input shape), and
    implement `_group_values` (a reshape to `(batch, num_tokens,
    values_per_token)`), `_num_tokens(shape)`, `_build_embeddings()` and
    `_embed(values)`; `_check_sizes(shape)` may add checks.

    Args:
        embed_dim: int. The token dimension.
        nodata: optional float. A value that also marks missing data, e.g.
            `-1` for int16 GeoPlant Sentinel-2 tiles. Defaults to `None`.
        kernel_initializer: initializer of the projection kernel. Defaults
            to `"glorot_uniform"`.
        bias_initializer: initializer of the projection bias. Defaults to
            `"zeros"`.
        embeddings_initializer: initializer of the position and modality
            embeddings. Defaults to `TruncatedNormal(stddev=0.02)`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `dtype` and `trainable`.

    Call arguments:
        inputs: the modality's input tensor, with missing values encoded as
            NaN, +-inf, `|x| > 1e10` or `nodata`.

    Returns:
        A `(batch, num_tokens, embed_dim)` tensor. `compute_mask(inputs)`
        (or `compute_availability(inputs)`) gives the availability.

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

    input_axes = ()
    built_for = ""

    def __init__(
        self,
        embed_dim,
        nodata=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.embed_dim = positive_int(embed_dim, "embed_dim")
        self.nodata = None if nodata is None else float(nodata)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer or keras.initializers.TruncatedNormal(stddev=0.02)
        )
        self.supports_masking = True

    @property
    def input_dtype(self):
        # Float inputs stay at full precision until missing values are found.
        return self.variable_dtype

    def _check_input_shape(self, shape):
        """Raises a `ValueError` naming both shapes unless `shape` fits."""
        shape = tuple(shape)
        name = f"{type(self).__name__} '{self.name}'"
        axes = ", ".join(("batch",) + self.input_axes)
        if len(shape) != len(self.input_axes) + 1 or None in shape[1:]:
            raise ValueError(
                f"{name} expects a {len(self.input_axes) + 1}-D input ({axes}) "
                f"of known sizes; received shape {shape} (rank {len(shape)})."
            )
        self._check_sizes(name, shape)
        if self.built and shape[1:] != self.built_shape:
            described = self.built_for.format(*self.built_shape)
            raise ValueError(
                f"{name} was built for {described}; received shape {shape}."
            )

    def _check_sizes(self, name, shape):
        pass

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        self.built_shape = tuple(int(d) for d in input_shape[1:])
        self.num_tokens = self._num_tokens(input_shape)
        self._build_embeddings()
        self.modality_embedding = self.add_weight(
            shape=(self.embed_dim,),
            initializer=self.embeddings_initializer,
            name="modality_embedding",
        )

    def _projection(self, input_dim):
        """A `Dense` from `input_dim` values to `embed_dim`, built."""
        projection = keras.layers.Dense(
            self.embed_dim,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="projection",
        )
        projection.build((None, None, input_dim))
        return projection

    def _grouped(self, inputs):
        """The `(batch, num_tokens, values_per_token)` values of `inputs`."""
        inputs = ops.convert_to_tensor(inputs)
        self._check_input_shape(inputs.shape)
        return self._group_values(ops.cast(inputs, self.variable_dtype))

    def _value_availability(self, values):
        return ops.logical_not(is_missing(values, self.nodata))

    def compute_availability(self, inputs):
        """`(batch, num_tokens)` booleans, `False` where a token is missing."""
        return ops.any(self._value_availability(self._grouped(inputs)), axis=-1)

    def compute_mask(self, inputs, previous_mask=None):
        return self.compute_availability(inputs)

    def call(self, inputs):
        values = self._grouped(inputs)
        values = ops.where(self._value_availability(values), values, 0.0)
        tokens = self._embed(ops.cast(values, self.compute_dtype))
        return tokens + ops.cast(self.modality_embedding, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._num_tokens(input_shape), self.embed_dim)

    def get_config(self):
        config = super().get_config()
        serialize = keras.initializers.serialize
        config.update(
            {
                "embed_dim": self.embed_dim,
                "nodata": self.nodata,
                "kernel_initializer": serialize(self.kernel_initializer),
                "bias_initializer": serialize(self.bias_initializer),
                "embeddings_initializer": serialize(self.embeddings_initializer),
            }
        )
        return config
