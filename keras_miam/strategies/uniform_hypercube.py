"""Independent uniform masking rates (MIAM paper ablation)."""

import keras
from keras import ops

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import as_seed


@keras.saving.register_keras_serializable(package="keras_miam")
class UniformHypercube(MaskingStrategy):
    """Draws p_m ~ U(0, 1) independently for every modality.

    Full support on [0, 1]^M with no preference for corners: the first
    step of the paper's ablation from Uniform to MIAM.

    Example:

    >>> p = UniformHypercube().sample(1000, num_modalities=3, seed=0)
    >>> p.shape
    (1000, 3)

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (ablation).
    """

    name = "uniform_hypercube"

    def sample(
        self, batch_size, num_modalities, seed=None, state=None, single_token=False
    ):
        return keras.random.uniform((batch_size, num_modalities), seed=as_seed(seed))

    def log_prob(self, p, state=None, single_token=False):
        p = ops.convert_to_tensor(p, "float32")
        inside = ops.all(ops.logical_and(p >= 0.0, p <= 1.0), axis=-1)
        return ops.where(inside, 0.0, float("-inf"))

    def mean(self, num_modalities, state=None, single_token=False):
        return ops.full((num_modalities,), 0.5, "float32")
