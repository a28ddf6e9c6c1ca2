"""Constant masking rate (MAE)."""

import keras
from keras import ops

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import check_range


@keras.saving.register_keras_serializable(package="keras_miam")
class Constant(MaskingStrategy):
    """Masks every token with the same fixed probability: p_m = rate for all m.

    Args:
        rate: the masking probability, in [0, 1]. Defaults to 0.75.

    Example:

    >>> p = keras_miam.strategies.Constant(rate=0.5).sample(4, 3, seed=0)
    >>> keras.ops.convert_to_numpy(p).tolist()[0]
    [0.5, 0.5, 0.5]

    Reference:
        He et al., "Masked Autoencoders Are Scalable Vision Learners",
        CVPR 2022.
    """

    name = "constant"

    def __init__(self, rate=0.75):
        self.rate = check_range(rate, "rate", high=1.0)

    def _sample(self, batch_size, m, seed, state, single_token):
        return ops.full((batch_size, m), self.rate, "float32")

    def mean(self, num_modalities, state=None, single_token=False):
        return ops.full((num_modalities,), self.rate, "float32")
