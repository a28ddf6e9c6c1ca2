"""The static Beta hypercube: MixProdBeta with r_m = 1."""

import keras
from keras import ops

from keras_miam.strategies.miam import MIAM


@keras.saving.register_keras_serializable(package="keras_miam")
class BetaHypercube(MIAM):
    """MixProdBeta with every r_m = 1: corner-anchored, not imbalance-aware.

    The same mixture of product Beta distributions as `MIAM`, with
    Beta(1, kappa) near corner 0 and Beta(kappa, 1) near corner 1 for every
    modality, whatever the scores: the last ablation step before MIAM.

    Args:
        kappa: Beta sharpness, > 0. Defaults to 10.
        priority_corners_mass: total weight of the all-zeros and all-ones
            corners, in [0, 1]. Defaults to 0.5.

    Example:

    >>> p = BetaHypercube(kappa=10.0).sample(1000, num_modalities=3, seed=0)
    >>> p.shape
    (1000, 3)

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (ablation).
    """

    name = "beta_hypercube"
    dynamic = False

    def __init__(self, kappa=10.0, priority_corners_mass=0.5):
        super().__init__(
            kappa=kappa, lambda_=0.0, priority_corners_mass=priority_corners_mass
        )

    def ratios(self, num_modalities, state=None):
        return ops.ones((num_modalities,), "float32")

    def get_config(self):
        return {
            "kappa": self.kappa,
            "priority_corners_mass": self.priority_corners_mass,
        }
