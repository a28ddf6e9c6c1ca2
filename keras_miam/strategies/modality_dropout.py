"""Modality dropout (ModDrop): hypercube corners only."""

import keras
from keras import ops

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import as_seed
from keras_miam.strategies.base import check_probability


@keras.saving.register_keras_serializable(package="keras_miam")
class ModalityDropout(MaskingStrategy):
    """Drops each modality independently: p_m = 1 with probability `rate`, else 0.

    All the mass sits on the 2^M corners of the hypercube. An example whose
    modalities are all dropped keeps one token visible through
    `MIAMMasking(ensure_visible=True)`.

    Args:
        rate: probability of dropping a modality, in [0, 1]. Defaults to 0.5.

    Example:

    >>> p = ModalityDropout(rate=0.5).sample(1000, num_modalities=3, seed=0)
    >>> sorted(set(keras.ops.convert_to_numpy(p).ravel().tolist()))
    [0.0, 1.0]

    Reference:
        Neverova et al., "ModDrop: adaptive multi-modal gesture
        recognition", IEEE TPAMI 2015.
    """

    name = "modality_dropout"

    def __init__(self, rate=0.5):
        self.rate = check_probability(rate, "rate")

    def sample(
        self, batch_size, num_modalities, seed=None, state=None, single_token=False
    ):
        u = keras.random.uniform((batch_size, num_modalities), seed=as_seed(seed))
        return ops.cast(u < self.rate, "float32")

    def mean(self, num_modalities, state=None, single_token=False):
        return ops.full((num_modalities,), self.rate, "float32")

    def get_config(self):
        return {"rate": self.rate}
