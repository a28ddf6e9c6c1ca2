"""OPM: score-driven modality dropping (On-the-fly Prediction Modulation)."""

import keras
from keras import ops

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import check_range


@keras.saving.register_keras_serializable(package="keras_miam")
class OPM(MaskingStrategy):
    """Drops dominant modalities with a probability that grows with their lead.

    With scores s_m (fed by `keras_miam.ModalityDynamics`) and
    rho_m = mean_{j != m} s_m / s_j, modality m is dropped (p_m = 1) with
    probability q_m = q_base * (1 + strength * tanh(rho_m - 1)) if
    rho_m > 1, else 0 (`q_base` before any scores, as in the authors' code),
    in a fraction `p_exe` of the calls of `sample` (batches). An example
    that would lose every modality keeps one, chosen uniformly.

    Args:
        q_base: base drop probability, in [0, 1]. Defaults to 0.5.
        strength: modulation strength, >= 0. Defaults to 0.5.
        p_exe: fraction of steps where dropping is applied. Defaults to 0.7.
        epsilon: lower bound applied to scores.

    Example:

    >>> state = keras_miam.strategies.dynamics_state(2, scores=[0.9, 0.6])
    >>> p = keras_miam.strategies.OPM().sample(1000, 2, seed=0, state=state)
    >>> float(keras.ops.max(p[:, 1]))  # the weaker modality is never dropped
    0.0

    Reference:
        Wei et al., "On-the-fly Modulation for Balanced Multimodal
        Learning", IEEE TPAMI 2024 (code: GeWu-Lab/BML_TPAMI2024).
    """

    name = "opm"
    dynamic = True

    def __init__(self, q_base=0.5, strength=0.5, p_exe=0.7, epsilon=1e-6):
        self.q_base = check_range(q_base, "q_base", high=1.0)
        self.strength = check_range(strength, "strength")
        self.p_exe = check_range(p_exe, "p_exe", high=1.0)
        self.epsilon = float(epsilon)

    def ratios(self, num_modalities, state=None):
        """rho_m, shape (M,): ones before any scores exist."""
        ones = ops.ones((num_modalities,), "float32")
        if state is None or num_modalities < 2:
            return ones
        s = ops.maximum(ops.cast(state["scores"], "float32"), self.epsilon)
        pairwise = ops.expand_dims(s, 1) / ops.expand_dims(s, 0)  # s_m / s_j
        # The diagonal left out: s_m / s_m = 1 subtracted can turn negative.
        others = ops.logical_not(ops.cast(ops.eye(num_modalities), "bool"))
        rho = ops.sum(ops.where(others, pairwise, 0.0), axis=1) / (num_modalities - 1)
        return ops.where(state["ready"] > 0.5, rho, ones)

    def drop_probabilities(self, num_modalities, state=None):
        """q_m, shape (M,): `q_base` for every modality before any scores."""
        if num_modalities < 2:
            return ops.zeros((num_modalities,), "float32")
        rho = self.ratios(num_modalities, state)
        q = self.q_base * (1.0 + self.strength * ops.tanh(rho - 1.0))
        q = ops.clip(ops.where(rho > 1.0, q, 0.0), 0.0, 1.0)
        before = ops.full((num_modalities,), self.q_base, "float32")
        return before if state is None else ops.where(state["ready"] > 0.5, q, before)

    def _sample(self, batch_size, m, seed, state, single_token):
        q = self.drop_probabilities(m, state)
        execute = keras.random.uniform((1, 1), seed=seed) < self.p_exe
        u = keras.random.uniform((batch_size, m), seed=seed)
        drop = ops.logical_and(u < q, execute)
        if m > 1:  # Never every modality: one, chosen uniformly, is spared.
            spared = keras.random.uniform((batch_size, m), seed=seed)
            spared = ops.one_hot(ops.argmax(spared, axis=1), m) > 0.5
            everything = ops.all(drop, axis=1, keepdims=True)
            drop = ops.logical_and(
                drop, ops.logical_not(ops.logical_and(everything, spared))
            )
        return ops.cast(drop, "float32")

    def mean(self, num_modalities, state=None, single_token=False):
        q = self.drop_probabilities(num_modalities, state)
        if num_modalities > 1:
            q = q - ops.prod(q) / num_modalities
        return self.p_exe * q
