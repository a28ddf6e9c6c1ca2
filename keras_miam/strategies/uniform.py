"""One uniform masking rate shared by all modalities (MaskSDM)."""

import keras
from keras import ops

from keras_miam.strategies.base import MaskingStrategy


@keras.saving.register_keras_serializable(package="keras_miam")
class Uniform(MaskingStrategy):
    """Draws u ~ U(0, 1) once per example and sets p_m = u for every m.

    The distribution lives on the diagonal of the hypercube.

    Example:

    >>> p = keras_miam.strategies.Uniform().sample(1000, 3, seed=0)
    >>> p.shape
    (1000, 3)

    Reference:
        Zbinden et al., "MaskSDM with Shapley values to improve flexibility,
        robustness, and explainability in species distribution modeling",
        Methods in Ecology and Evolution, 2025.
    """

    name = "uniform"

    def _sample(self, batch_size, m, seed, state, single_token):
        return ops.repeat(keras.random.uniform((batch_size, 1), seed=seed), m, axis=1)

    def mean(self, num_modalities, state=None, single_token=False):
        return ops.full((num_modalities,), 0.5, "float32")
