"""Tokenizer of precomputed embeddings: one token per embedding vector."""

import keras

from keras_miam.tokenizers.tokenizer import Tokenizer


@keras.saving.register_keras_serializable(package="keras_miam")
class EmbeddingTokenizer(Tokenizer):
    """One token from a precomputed embedding vector.

    A `(batch, embedding_dim)` embedding (e.g. a frozen TaxaBind, CLIP or
    audio encoder output) is linearly projected to `embed_dim` and the
    modality embedding is added; the modality embedding doubles as the
    position embedding of this single token. The embedding is missing when
    all of its values are missing (NaN, +-inf, `|x| > 1e10` or `nodata`),
    e.g. a row of NaN for an observation without audio (see `Tokenizer`).

    Args:
        embed_dim: int. The token dimension `D`.
        kernel_initializer: initializer of the projection kernel. Defaults
            to `"glorot_uniform"`.
        bias_initializer: initializer of the projection bias. Defaults to
            `"zeros"`.
        nodata: optional float. A value that also marks missing data.
            Defaults to `None`.
        embeddings_initializer: initializer of the modality embedding.
            Defaults to `TruncatedNormal(stddev=0.02)`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `dtype` and `trainable`.

    Call arguments:
        inputs: a `(batch, embedding_dim)` tensor.

    Returns:
        A `(batch, 1, embed_dim)` tensor. `compute_mask(inputs)` (or
        `compute_availability(inputs)`) gives the `(batch, 1)` availability.

    Example:

    ```python
    tokenizer = keras_miam.tokenizers.EmbeddingTokenizer(embed_dim=64)
    audio = np.random.normal(size=(8, 512)).astype("float32")
    audio[2] = np.nan                              # no recording
    tokens = tokenizer(audio)                      # (8, 1, 64)
    available = tokenizer.compute_availability(audio)  # [2, 0] False
    ```

    Reference:
     - [Sastry et al., 2025 (TaxaBind)](https://arxiv.org/abs/2411.00683)
    """

    def __init__(
        self,
        embed_dim,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        nodata=None,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(
            embed_dim=embed_dim,
            nodata=nodata,
            embeddings_initializer=embeddings_initializer,
            **kwargs,
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _check_input_shape(self, shape):
        name = f"{type(self).__name__} '{self.name}'"
        if len(shape) != 2:
            raise ValueError(
                f"{name} expects a 2-D input (batch, embedding_dim), one "
                f"precomputed embedding per example; received shape {shape} "
                f"(rank {len(shape)})."
            )
        if shape[-1] is None:
            raise ValueError(
                f"{name} needs a known embedding size (last axis); received "
                f"shape {shape}."
            )
        if self.built and shape[-1] != self.embedding_dim:
            raise ValueError(
                f"{name} was built for embeddings of size "
                f"{self.embedding_dim}; received shape {shape}."
            )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        self.embedding_dim = int(input_shape[-1])
        self.projection = keras.layers.Dense(
            self.embed_dim,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="projection",
        )
        self.projection.build((None, 1, self.embedding_dim))
        self._build_modality_embedding()
        self.built = True

    def _group_values(self, inputs):
        return inputs[:, None, :]

    def _embed(self, values):
        return self.projection(values)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
