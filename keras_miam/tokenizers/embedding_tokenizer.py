"""Tokenizer of precomputed embeddings: one token per embedding vector."""

import keras

from keras_miam.tokenizers.tokenizer import Tokenizer


@keras.saving.register_keras_serializable(package="keras_miam")
class EmbeddingTokenizer(Tokenizer):
    """One token from a precomputed embedding vector.

    A `(batch, embedding_dim)` embedding (e.g. a frozen TaxaBind, CLIP or
    audio encoder output) is linearly projected to `embed_dim` and the
    modality embedding, which doubles as the position embedding of this one
    token, is added. The token is unavailable when all of its values are
    missing, e.g. a row of NaN for an observation without audio.

    Args:
        embed_dim: int. The token dimension.
        **kwargs: `nodata`, the initializers and the other arguments of
            `keras_miam.tokenizers.Tokenizer`.

    Call arguments:
        inputs: a `(batch, embedding_dim)` tensor.

    Returns:
        A `(batch, 1, embed_dim)` tensor; its Keras mask is the `(batch, 1)`
        availability.

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

    input_axes = ("embedding_dim",)
    built_for = "embeddings of size {}"

    def _num_tokens(self, shape):
        return 1

    def _build_embeddings(self):
        self.projection = self._projection(self.built_shape[0])

    def _group_values(self, inputs):
        return inputs[:, None, :]

    def _embed(self, values):
        return self.projection(values)
