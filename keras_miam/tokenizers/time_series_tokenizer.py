"""Tokenizer of multivariate time series: one token per time segment."""

import keras
from keras import ops

from keras_miam.tokenizers.tokenizer import Tokenizer
from keras_miam.tokenizers.tokenizer import positive_int


@keras.saving.register_keras_serializable(package="keras_miam")
class TimeSeriesTokenizer(Tokenizer):
    """One token per segment of `patch_len` time steps, as in PatchTST.

    Each segment of a time-ordered `(batch, time, channels)` series,
    flattened, is projected to `embed_dim`; learned temporal position
    embeddings and the modality embedding are added.

    Args:
        embed_dim: int. The token dimension.
        patch_len: int. Time steps per token; must divide the series length.
            Defaults to `1`.
        **kwargs: arguments of `keras_miam.tokenizers.Tokenizer`.

    Example:

    ```python
    # 19 years of 12 monthly values of 4 climate variables, a token a year.
    series = np.random.normal(size=(8, 228, 4)).astype("float32")
    tokenizer = keras_miam.tokenizers.TimeSeriesTokenizer(64, patch_len=12)
    tokens = tokenizer(series)  # (8, 19, 64)
    ```

    Reference:
     - [Nie et al., 2023 (PatchTST)](https://arxiv.org/abs/2211.14730)
    """

    input_axes = ("time", "channels")
    built_for = "series of shape (batch, {}, {})"

    def __init__(self, embed_dim, patch_len=1, **kwargs):
        super().__init__(embed_dim, **kwargs)
        self.patch_len = positive_int(patch_len, "patch_len")

    def _check_sizes(self, name, shape):
        if shape[1] % self.patch_len:
            raise ValueError(
                f"{name}: `patch_len={self.patch_len}` must divide the series "
                f"length; received shape {shape}."
            )

    def _num_tokens(self, shape):
        return shape[1] // self.patch_len

    def _build_embeddings(self):
        self.projection = self._projection(self.patch_len * self.built_shape[1])
        self.position_embeddings = self._weight(
            "position_embeddings", (self.num_tokens, self.embed_dim)
        )

    def _group_values(self, inputs):
        time, channels = inputs.shape[1:]
        shape = (-1, time // self.patch_len, self.patch_len * channels)
        return ops.reshape(inputs, shape)

    def _embed(self, values):
        return self.projection(values) + self.position_embeddings

    def get_config(self):
        return {**super().get_config(), "patch_len": self.patch_len}
