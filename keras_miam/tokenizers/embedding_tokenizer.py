"""Tokenizer of precomputed embeddings: one token per embedding vector."""

import keras

from keras_miam.tokenizers.tokenizer import Tokenizer


@keras.saving.register_keras_serializable(package="keras_miam")
class EmbeddingTokenizer(Tokenizer):
    """One token from a precomputed embedding vector (e.g. TaxaBind's).

    The `(batch, embedding_dim)` embedding is projected to `embed_dim`, plus
    the modality embedding; a row of missing values gives an unavailable
    token.

    Args:
        embed_dim: int. The token dimension.
        **kwargs: arguments of `keras_miam.tokenizers.Tokenizer`.

    Example:

    ```python
    tokenizer = keras_miam.tokenizers.EmbeddingTokenizer(embed_dim=64)
    audio = np.random.normal(size=(8, 512)).astype("float32")
    audio[2] = np.nan  # no recording
    tokens = tokenizer(audio)  # (8, 1, 64)
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
