"""Tokenizer of tabular data: one token per numerical variable."""

import math

import keras
from keras import ops

from keras_miam.tokenizers.tokenizer import Tokenizer


@keras.saving.register_keras_serializable(package="keras_miam")
class TabularTokenizer(Tokenizer):
    """One token per numerical variable, with periodic embeddings.

    Each variable `x_f` of a `(batch, num_features)` table becomes one token,
    as in MaskSDM: periodic features `v = 2 pi W_f x_f` with `num_frequencies`
    trainable frequencies per variable, `W_f ~ N(0, frequency_scale^2)`
    (truncated at two standard deviations), then `[cos v, sin v]` goes
    through a per-variable linear layer (an einsum over a
    `(num_features, 2 * num_frequencies, embed_dim)` kernel) and a ReLU.
    A learned per-variable embedding (the position embedding) and the
    modality embedding are added.

    Variables should be standardised (zero mean, unit variance on the
    training split). A variable that is NaN, +-inf, `|x| > 1e10` or `nodata`
    is missing: its token's availability is `False` (see `Tokenizer`).

    Args:
        embed_dim: int. The token dimension `D`.
        num_frequencies: int. Frequencies per variable `K`. Defaults to `48`.
        frequency_scale: float. Standard deviation of the initial
            frequencies. Defaults to `0.01`.
        kernel_initializer: initializer of the per-variable linear kernel.
            Defaults to `None`: uniform in `+-1 / sqrt(2 K)` (as PyTorch's
            `nn.Linear`, per variable).
        bias_initializer: initializer of the per-variable bias. Defaults to
            `None`: uniform in `+-1 / sqrt(2 K)`.
        nodata: optional float. A value that also marks missing data.
            Defaults to `None`.
        embeddings_initializer: initializer of the variable and modality
            embeddings. Defaults to `TruncatedNormal(stddev=0.02)`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `dtype` and `trainable`.

    Call arguments:
        inputs: a `(batch, num_features)` tensor.

    Returns:
        A `(batch, num_features, embed_dim)` tensor. `compute_mask(inputs)`
        (or `compute_availability(inputs)`) gives the `(batch, num_features)`
        availability.

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

    def __init__(
        self,
        embed_dim,
        num_frequencies=48,
        frequency_scale=0.01,
        kernel_initializer=None,
        bias_initializer=None,
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
        if (
            isinstance(num_frequencies, bool)
            or not isinstance(num_frequencies, int)
            or num_frequencies <= 0
        ):
            raise ValueError(
                "`num_frequencies` must be a positive int; received "
                f"{num_frequencies!r}."
            )
        if not frequency_scale > 0:
            raise ValueError(
                f"`frequency_scale` must be positive; received {frequency_scale!r}."
            )
        self.num_frequencies = num_frequencies
        self.frequency_scale = float(frequency_scale)
        self.kernel_initializer = (
            None
            if kernel_initializer is None
            else keras.initializers.get(kernel_initializer)
        )
        self.bias_initializer = (
            None
            if bias_initializer is None
            else keras.initializers.get(bias_initializer)
        )

    def _check_input_shape(self, shape):
        if len(shape) != 2:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects a 2-D input "
                "(batch, num_features), one column per variable; received "
                f"shape {shape} (rank {len(shape)})."
            )
        if shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' needs a known number "
                f"of features (last axis); received shape {shape}."
            )
        if self.built and shape[-1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' was built for "
                f"{self.num_features} features; received shape {shape}."
            )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        self.num_features = int(input_shape[-1])
        limit = 1.0 / math.sqrt(2 * self.num_frequencies)
        default = keras.initializers.RandomUniform(-limit, limit)
        self.frequencies = self.add_weight(
            shape=(self.num_features, self.num_frequencies),
            initializer=keras.initializers.TruncatedNormal(stddev=self.frequency_scale),
            name="frequencies",
        )
        self.kernel = self.add_weight(
            shape=(self.num_features, 2 * self.num_frequencies, self.embed_dim),
            initializer=self.kernel_initializer or default,
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(self.num_features, self.embed_dim),
            initializer=self.bias_initializer or default,
            name="bias",
        )
        self.position_embeddings = self.add_weight(
            shape=(self.num_features, self.embed_dim),
            initializer=self.embeddings_initializer,
            name="position_embeddings",
        )
        self._build_modality_embedding()
        self.built = True

    def _group_values(self, inputs):
        return ops.expand_dims(inputs, -1)

    def _embed(self, values):
        angles = (2.0 * math.pi) * values * self.frequencies
        periodic = ops.concatenate([ops.cos(angles), ops.sin(angles)], axis=-1)
        tokens = ops.einsum("bfk,fkd->bfd", periodic, self.kernel)
        tokens = ops.relu(tokens + self.bias)
        return tokens + self.position_embeddings

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_frequencies": self.num_frequencies,
                "frequency_scale": self.frequency_scale,
                "kernel_initializer": (
                    None
                    if self.kernel_initializer is None
                    else keras.initializers.serialize(self.kernel_initializer)
                ),
                "bias_initializer": (
                    None
                    if self.bias_initializer is None
                    else keras.initializers.serialize(self.bias_initializer)
                ),
            }
        )
        return config
