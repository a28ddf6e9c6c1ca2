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

    A tokenizer cuts a modality's input into tokens, embeds them to
    `embed_dim`, adds position embeddings and a learned modality embedding,
    and gives each token's availability as the Keras mask of its output. A
    token is unavailable when all its values are missing
    (`keras_miam.missing.is_missing`, or `nodata`, found in the variable
    dtype); missing values are replaced by 0 before any arithmetic, so NaN
    reaches neither the tokens nor the gradients. Subclasses set
    `input_axes` and `built_for` and implement `_num_tokens(shape)`,
    `_build_embeddings()`, `_group_values(inputs)` (to `(batch, num_tokens,
    values)`) and `_embed(values)`.

    Args:
        embed_dim: int. The token dimension.
        nodata: optional float, a value that also marks missing data.
        kernel_initializer: initializer of the projection kernel. Defaults
            to `"glorot_uniform"`.
        bias_initializer: initializer of the projection bias. Defaults to
            `"zeros"`.
        embeddings_initializer: initializer of the position and modality
            embeddings. Defaults to `TruncatedNormal(stddev=0.02)`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: the modality's input tensor.

    Returns:
        `(batch, num_tokens, embed_dim)` tokens; their Keras mask
        (`compute_availability(inputs)`) is the availability.

    Example:

    ```python
    tokenizer = keras_miam.tokenizers.TabularTokenizer(embed_dim=32)
    x = np.array([[0.3, np.nan, 1.2]], "float32")
    tokens = tokenizer(x)  # (1, 3, 32), finite
    available = tokenizer.compute_availability(x)  # [[True, False, True]]
    ```
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

    @property
    def input_dtype(self):
        # Float inputs stay at full precision until missing values are found.
        return self.variable_dtype

    def _check_input_shape(self, shape):
        shape = tuple(shape)
        name = f"{type(self).__name__} '{self.name}'"
        if len(shape) != len(self.input_axes) + 1 or None in shape[1:]:
            raise ValueError(
                f"{name} expects a {len(self.input_axes) + 1}-D input "
                f"({', '.join(('batch',) + self.input_axes)}) of known sizes; "
                f"received shape {shape} (rank {len(shape)})."
            )
        self._check_sizes(name, shape)
        if self.built and shape[1:] != self.built_shape:
            raise ValueError(
                f"{name} was built for {self.built_for.format(*self.built_shape)}"
                f"; received shape {shape}."
            )

    def _check_sizes(self, name, shape):
        pass

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        self.built_shape = tuple(int(d) for d in input_shape[1:])
        self.num_tokens = self._num_tokens(input_shape)
        self._build_embeddings()
        self.modality_embedding = self._weight("modality_embedding", (self.embed_dim,))

    def _weight(self, name, shape, initializer=None):
        initializer = initializer or self.embeddings_initializer
        return self.add_weight(shape=shape, initializer=initializer, name=name)

    def _projection(self, input_dim):
        """A built `Dense` from `input_dim` values to `embed_dim`."""
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
        """The `(batch, num_tokens, values_per_token)` values and presence."""
        inputs = ops.convert_to_tensor(inputs)
        self._check_input_shape(inputs.shape)
        values = self._group_values(ops.cast(inputs, self.variable_dtype))
        return values, ops.logical_not(is_missing(values, self.nodata))

    def compute_mask(self, inputs, previous_mask=None):
        """`(batch, num_tokens)` booleans, `False` where a token is missing."""
        return ops.any(self._grouped(inputs)[1], axis=-1)

    compute_availability = compute_mask

    def call(self, inputs):
        values, present = self._grouped(inputs)
        tokens = self._embed(
            ops.cast(ops.where(present, values, 0.0), self.compute_dtype)
        )
        return tokens + ops.cast(self.modality_embedding, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._num_tokens(input_shape), self.embed_dim)

    def get_config(self):
        serialize = keras.initializers.serialize
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "nodata": self.nodata,
            "kernel_initializer": serialize(self.kernel_initializer),
            "bias_initializer": serialize(self.bias_initializer),
            "embeddings_initializer": serialize(self.embeddings_initializer),
        }
