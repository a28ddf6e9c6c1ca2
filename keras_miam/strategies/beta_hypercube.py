"""The static Beta hypercube: MixProdBeta with r_m = 1."""

import keras

from keras_miam.strategies.miam import MIAM


@keras.saving.register_keras_serializable(package="keras_miam")
class BetaHypercube(MIAM):
    """`keras_miam.strategies.MIAM` with lambda = 0: every r_m = 1.

    Beta(1, kappa) near corner 0 and Beta(kappa, 1) near corner 1 for every
    modality, whatever the scores (the last ablation step before MIAM).

    Args:
        kappa: Beta sharpness, > 0. Defaults to 10.
        priority_corners_mass: total weight of the all-zeros and all-ones
            corners, in [0, 1]. Defaults to 0.5.

    Example:

    >>> strategy = keras_miam.strategies.BetaHypercube(kappa=10.0)
    >>> keras.ops.convert_to_numpy(strategy.mean(2)).round(3).tolist()
    [0.5, 0.5]

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (ablation).
    """

    name = "beta_hypercube"
    dynamic = False

    def __init__(self, kappa=10.0, priority_corners_mass=0.5):
        super().__init__(kappa, 0.0, priority_corners_mass=priority_corners_mass)
