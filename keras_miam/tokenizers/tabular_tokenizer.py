"""Tokenizer of tabular data: one token per numerical variable."""

import math

import keras
from keras import ops

from keras_miam.tokenizers.tokenizer import Tokenizer
from keras_miam.tokenizers.tokenizer import positive_int


@keras.saving.register_keras_serializable(package="keras_miam")
class TabularTokenizer(Tokenizer):
    """One token per numerical variable, with periodic embeddings.

    Each variable `x_f` of a `(batch, num_features)` table becomes one token,
    as in MaskSDM: periodic features `v = 2 pi W_f x_f` with `num_frequencies`
    trainable frequencies `W_f ~ N(0, frequency_scale^2)` (truncated at two
    standard deviations), then `[cos v, sin v]` goes through a per-variable
    linear layer and a ReLU. A learned per-variable (position) embedding and
    the modality embedding are added. Variables should be standardised; a
    missing variable gives an unavailable token (see `Tokenizer`).

    Args:
        embed_dim: int. The token dimension.
        num_frequencies: int. Frequencies per variable `K`. Defaults to `48`.
        frequency_scale: float. Standard deviation of the initial
            frequencies. Defaults to `0.01`.
        kernel_initializer: initializer of the per-variable linear kernel.
            Defaults to `None`: uniform in `+-1 / sqrt(2 K)`, as PyTorch's
            `nn.Linear`.
        bias_initializer: initializer of the per-variable bias. Defaults to
            `None`: uniform in `+-1 / sqrt(2 K)`.
        **kwargs: `nodata`, `embeddings_initializer` and the other arguments
            of `keras_miam.tokenizers.Tokenizer`.

    Call arguments:
        inputs: a `(batch, num_features)` tensor.

    Returns:
        A `(batch, num_features, embed_dim)` tensor; its Keras mask is the
        `(batch, num_features)` availability.

    Example:

    ```python
    tokenizer = keras_miam.tokenizers.TabularTokenizer(embed_dim=64)
    x = np.random.normal(size=(8, 40)).astype("float32")
    x[0, 3] = np.nan
    tokens = tokenizer(x)                          # (8, 40, 64)
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
        self.frequencies = self.add_weight(
            shape=(features, k),
            initializer=keras.initializers.TruncatedNormal(stddev=self.frequency_scale),
            name="frequencies",
        )
        self.kernel = self.add_weight(
            shape=(features, 2 * k, self.embed_dim),
            initializer=self.kernel_initializer or default,
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(features, self.embed_dim),
            initializer=self.bias_initializer or default,
            name="bias",
        )
        self.position_embeddings = self.add_weight(
            shape=(features, self.embed_dim),
            initializer=self.embeddings_initializer,
            name="position_embeddings",
        )

    def _group_values(self, inputs):
        return ops.expand_dims(inputs, -1)

    def _embed(self, values):
        angles = (2.0 * math.pi) * values * self.frequencies
        periodic = ops.concatenate([ops.cos(angles), ops.sin(angles)], axis=-1)
        tokens = ops.einsum("bfk,fkd->bfd", periodic, self.kernel)
        return ops.relu(tokens + self.bias) + self.position_embeddings

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_frequencies": self.num_frequencies,
                "frequency_scale": self.frequency_scale,
            }
        )
        return config
