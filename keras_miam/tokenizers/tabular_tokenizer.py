"""Tokenizer of tabular data: one token per numerical variable."""

import math

import keras
from keras import ops

from keras_miam.tokenizers.tokenizer import Tokenizer
from keras_miam.tokenizers.tokenizer import positive_int


@keras.saving.register_keras_serializable(package="keras_miam")
class TabularTokenizer(Tokenizer):
    """One token per numerical variable, with periodic embeddings (MaskSDM).

    Each standardised variable `x_f` of a `(batch, num_features)` table gives
    `v = 2 pi W_f x_f` with `num_frequencies` trainable frequencies `W_f ~
    N(0, frequency_scale^2)` (truncated at 2 sigma); `[cos v, sin v]` goes
    through a per-variable linear layer and a ReLU, then a per-variable
    position embedding and the modality embedding are added.

    Args:
        embed_dim: int. The token dimension.
        num_frequencies: int. Frequencies per variable `K`. Defaults to `48`.
        frequency_scale: float. Standard deviation of the initial
            frequencies. Defaults to `0.01`.
        kernel_initializer: initializer of the per-variable kernel.
            Defaults to uniform in `+-1 / sqrt(2 K)`, as `torch.nn.Linear`.
        bias_initializer: initializer of the per-variable bias. Defaults to
            uniform in `+-1 / sqrt(2 K)`.
        **kwargs: arguments of `keras_miam.tokenizers.Tokenizer`.

    Example:

    ```python
    tokenizer = keras_miam.tokenizers.TabularTokenizer(embed_dim=64)
    x = np.random.normal(size=(8, 40)).astype("float32")
    x[0, 3] = np.nan
    tokens = tokenizer(x)  # (8, 40, 64)
    available = tokenizer.compute_availability(x)  # (8, 40), [0, 3] False
    ```

    Reference:
     - [Gorishniy et al., 2022](https://arxiv.org/abs/2203.05556)
     - [Zbinden et al., 2025 (MaskSDM)](https://arxiv.org/abs/2503.13057)
    """

    input_axes = ("num_features",)
    built_for = "{} features"

    def __init__(
        self,
        embed_dim,
        num_frequencies=48,
        frequency_scale=0.01,
        kernel_initializer=None,
        bias_initializer=None,
        **kwargs,
    ):
        super().__init__(
            embed_dim,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            **kwargs,
        )
        self.num_frequencies = positive_int(num_frequencies, "num_frequencies")
        if not frequency_scale > 0:
            raise ValueError(
                f"`frequency_scale` must be positive; received {frequency_scale!r}."
            )
        self.frequency_scale = float(frequency_scale)

    def _num_tokens(self, shape):
        return shape[1]

    def _build_embeddings(self):
        features, k = self.num_tokens, self.num_frequencies
        limit = 1.0 / math.sqrt(2 * k)
        default = keras.initializers.RandomUniform(-limit, limit)
        frequencies = keras.initializers.TruncatedNormal(stddev=self.frequency_scale)
        self.frequencies = self._weight("frequencies", (features, k), frequencies)
        self.kernel = self._weight(
            "kernel",
            (features, 2 * k, self.embed_dim),
            self.kernel_initializer or default,
        )
        self.bias = self._weight(
            "bias", (features, self.embed_dim), self.bias_initializer or default
        )
        self.position_embeddings = self._weight(
            "position_embeddings", (features, self.embed_dim)
        )

    def _group_values(self, inputs):
        return ops.expand_dims(inputs, -1)

    def _embed(self, values):
        angles = (2.0 * math.pi) * values * self.frequencies
        periodic = ops.concatenate([ops.cos(angles), ops.sin(angles)], axis=-1)
        tokens = ops.einsum("bfk,fkd->bfd", periodic, self.kernel)
        return ops.relu(tokens + self.bias) + self.position_embeddings

    def get_config(self):
        return {
            **super().get_config(),
            "num_frequencies": self.num_frequencies,
            "frequency_scale": self.frequency_scale,
        }
