"""Dirichlet masking rates (MultiMAE / 4M)."""

import math

import keras
from keras import ops

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import check_range


@keras.saving.register_keras_serializable(package="keras_miam")
class Dirichlet(MaskingStrategy):
    """Draws p ~ Dirichlet(alpha * 1_M): the masking rates sum to one.

    `log_prob` is the density with respect to the Lebesgue measure on the
    simplex (the first M - 1 coordinates).

    Args:
        alpha: the concentration, > 0. Defaults to 1.0 (uniform on the
            simplex).

    Example:

    >>> p = keras_miam.strategies.Dirichlet(alpha=1.0).sample(1000, 3, seed=0)
    >>> p.shape
    (1000, 3)

    Reference:
        Bachmann et al., "MultiMAE: Multi-modal Multi-task Masked
        Autoencoders", ECCV 2022; Mizrahi et al., "4M: Massively Multimodal
        Masked Modeling", NeurIPS 2023.
    """

    name = "dirichlet"

    def __init__(self, alpha=1.0):
        self.alpha = check_range(alpha, "alpha", positive=True)

    def _sample(self, batch_size, m, seed, state, single_token):
        g = keras.random.gamma((batch_size, m), alpha=self.alpha, seed=seed)
        g = ops.maximum(ops.cast(g, "float32"), 1e-30)
        return g / ops.sum(g, axis=1, keepdims=True)

    def log_prob(self, p, state=None, single_token=False):
        p = ops.convert_to_tensor(p, "float32")
        m = p.shape[-1]
        log_p = ops.log(ops.maximum(p, 1e-30))
        value = ops.sum((self.alpha - 1.0) * log_p, axis=-1)
        value += math.lgamma(m * self.alpha) - m * math.lgamma(self.alpha)
        inside = ops.logical_and(
            ops.all(p >= 0.0, axis=-1), ops.abs(ops.sum(p, axis=-1) - 1.0) < 1e-4
        )
        return ops.where(inside, value, float("-inf"))

    def mean(self, num_modalities, state=None, single_token=False):
        return ops.full((num_modalities,), 1.0 / num_modalities, "float32")
