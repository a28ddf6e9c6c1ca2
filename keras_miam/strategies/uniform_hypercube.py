"""Independent uniform masking rates (MIAM paper ablation)."""

import keras
from keras import ops

from keras_miam.strategies.uniform import Uniform


@keras.saving.register_keras_serializable(package="keras_miam")
class UniformHypercube(Uniform):
    """Draws p_m ~ U(0, 1) independently for every modality.

    Full support on [0, 1]^M with no preference for corners: the first
    step of the paper's ablation from Uniform to MIAM.

    Example:

    >>> p = keras_miam.strategies.UniformHypercube().sample(1000, 3, seed=0)
    >>> p.shape
    (1000, 3)

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (ablation).
    """

    name = "uniform_hypercube"

    def _sample(self, batch_size, m, seed, state, single_token):
        return keras.random.uniform((batch_size, m), seed=seed)

    def log_prob(self, p, state=None, single_token=False):
        p = ops.convert_to_tensor(p, "float32")
        inside = ops.all(ops.logical_and(p >= 0.0, p <= 1.0), axis=-1)
        return ops.where(inside, 0.0, float("-inf"))
