"""Dirichlet masking rates (MultiMAE / 4M)."""

import math

import keras
from keras import ops

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import as_seed
from keras_miam.strategies.base import check_positive


@keras.saving.register_keras_serializable(package="keras_miam")
class Dirichlet(MaskingStrategy):
    """Draws p ~ Dirichlet(alpha * 1_M): the masking rates sum to one.

    Sampled from normalised Gamma(alpha, 1) variates. The density is with
    respect to the Lebesgue measure on the simplex (the first M - 1
    coordinates), which is what `log_prob` returns.

    Args:
        alpha: the concentration, > 0. Defaults to 1.0 (uniform on the
            simplex).

    Example:

    >>> p = Dirichlet(alpha=1.0).sample(1000, num_modalities=3, seed=0)
    >>> p.shape
    (1000, 3)

    Reference:
        Bachmann et al., "MultiMAE: Multi-modal Multi-task Masked
        Autoencoders", ECCV 2022; Mizrahi et al., "4M: Massively Multimodal
        Masked Modeling", NeurIPS 2023.
    """

    name = "dirichlet"

    def __init__(self, alpha=1.0):
        self.alpha = check_positive(alpha, "alpha")

    def sample(
        self, batch_size, num_modalities, seed=None, state=None, single_token=False
    ):
        g = keras.random.gamma(
            (batch_size, num_modalities), alpha=self.alpha, seed=as_seed(seed)
        )
        g = ops.maximum(ops.cast(g, "float32"), 1e-30)
        return g / ops.sum(g, axis=1, keepdims=True)

    def log_prob(self, p, state=None, single_token=False):
        p = ops.convert_to_tensor(p, "float32")
        m = p.shape[-1]
        log_norm = math.lgamma(m * self.alpha) - m * math.lgamma(self.alpha)
        inside = ops.logical_and(
            ops.all(p >= 0.0, axis=-1),
            ops.abs(ops.sum(p, axis=-1) - 1.0) < 1e-4,
        )
        if self.alpha == 1.0:
            value = ops.zeros_like(p[..., 0]) + log_norm
        else:
            value = log_norm + ops.sum(
                (self.alpha - 1.0) * ops.log(ops.maximum(p, 1e-30)), axis=-1
            )
        return ops.where(inside, value, float("-inf"))

    def mean(self, num_modalities, state=None, single_token=False):
        return ops.full((num_modalities,), 1.0 / num_modalities, "float32")

    def get_config(self):
        return {"alpha": self.alpha}
