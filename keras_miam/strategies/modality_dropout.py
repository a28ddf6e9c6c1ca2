"""Modality dropout (ModDrop): hypercube corners only."""

import keras
from keras import ops

from keras_miam.strategies.constant import Constant


@keras.saving.register_keras_serializable(package="keras_miam")
class ModalityDropout(Constant):
    """Drops each modality independently: p_m = 1 with probability `rate`, else 0.

    All the mass sits on the 2^M corners of the hypercube. An example whose
    modalities are all dropped keeps one token visible through
    `keras_miam.layers.MIAMMasking(ensure_visible=True)`.

    Args:
        rate: probability of dropping a modality, in [0, 1]. Defaults to 0.5.

    Example:

    >>> p = keras_miam.strategies.ModalityDropout(rate=0.5).sample(1000, 3, seed=0)
    >>> sorted(set(keras.ops.convert_to_numpy(p).ravel().tolist()))
    [0.0, 1.0]

    Reference:
        Neverova et al., "ModDrop: adaptive multi-modal gesture
        recognition", IEEE TPAMI 2015.
    """

    name = "modality_dropout"

    def __init__(self, rate=0.5):
        super().__init__(rate)

    def _sample(self, batch_size, m, seed, state, single_token):
        u = keras.random.uniform((batch_size, m), seed=seed)
        return ops.cast(u < self.rate, "float32")
