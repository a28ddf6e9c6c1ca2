"""OPM: score-driven modality dropping (On-the-fly Prediction Modulation)."""

import keras
from keras import ops

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import as_seed
from keras_miam.strategies.base import check_probability


@keras.saving.register_keras_serializable(package="keras_miam")
class OPM(MaskingStrategy):
    """Drops dominant modalities with a probability that grows with their lead.

    With unimodal scores s_m (kept by `MIAMMasking`, fed by
    `ModalityDynamics`):

        rho_m = mean_{j != m} s_m / s_j
        q_m = q_base * (1 + strength * tanh(rho_m - 1))  if rho_m > 1 else 0

    clipped to [0, 1]. In a fraction `p_exe` of the train steps (one draw
    per call of `sample`, i.e. per batch) each modality m of each example
    is dropped (p_m = 1) with probability q_m; otherwise nothing is
    dropped. Once scores exist the weakest modality has rho <= 1, so it is
    never dropped and no example loses every modality. Before any scores
    exist (the first epoch, with `ModalityDynamics`) every modality is
    dropped with probability `q_base`, as in the authors' code; an example
    whose draw would drop every modality keeps one of them, chosen
    uniformly, so that no example ever loses every modality (a modality m is
    then dropped with probability `q_m - prod(q) / M` in an executed step).
    With a single modality nothing is ever dropped.

    Args:
        q_base: base drop probability, in [0, 1]. Defaults to 0.5.
        strength: modulation strength, >= 0. Defaults to 0.5.
        p_exe: fraction of steps where dropping is applied. Defaults to 0.7.
        epsilon: lower bound applied to scores.

    Example:

    >>> state = dynamics_state(2, scores=[0.9, 0.6])
    >>> p = OPM().sample(1000, 2, seed=0, state=state)
    >>> float(keras.ops.max(p[:, 1]))  # the weaker modality is never dropped
    0.0

    Reference:
        Wei et al., "On-the-fly Modulation for Balanced Multimodal
        Learning", IEEE TPAMI 2024 (code: GeWu-Lab/BML_TPAMI2024).
    """

    name = "opm"
    dynamic = True

    def __init__(self, q_base=0.5, strength=0.5, p_exe=0.7, epsilon=1e-6):
        self.q_base = check_probability(q_base, "q_base")
        self.strength = check_probability(strength, "strength", 0.0, float("inf"))
        self.p_exe = check_probability(p_exe, "p_exe")
        self.epsilon = float(epsilon)

    def ratios(self, num_modalities, state=None):
        """rho_m, shape (M,): ones before any scores exist."""
        ones = ops.ones((num_modalities,), "float32")
        if state is None or num_modalities < 2:
            return ones
        s = ops.maximum(ops.cast(state["scores"], "float32"), self.epsilon)
        pairwise = ops.expand_dims(s, 1) / ops.expand_dims(s, 0)  # s_m / s_j
        # Leave the diagonal out instead of subtracting s_m / s_m = 1, which
        # cancels to a small negative number in float32 for a modality far
        # behind the others.
        others = ops.logical_not(ops.cast(ops.eye(num_modalities), "bool"))
        rho = ops.sum(ops.where(others, pairwise, 0.0), axis=1) / (num_modalities - 1)
        return ops.where(state["ready"] > 0.5, rho, ones)

    def drop_probabilities(self, num_modalities, state=None):
        """q_m, shape (M,): `q_base` for every modality before any scores."""
        rho = self.ratios(num_modalities, state)
        q = self.q_base * (1.0 + self.strength * ops.tanh(rho - 1.0))
        q = ops.clip(ops.where(rho > 1.0, q, 0.0), 0.0, 1.0)
        if num_modalities < 2:
            return ops.zeros((num_modalities,), "float32")
        before = ops.full((num_modalities,), self.q_base, "float32")
        if state is None:
            return before
        return ops.where(state["ready"] > 0.5, q, before)

    def sample(
        self, batch_size, num_modalities, seed=None, state=None, single_token=False
    ):
        seed = as_seed(seed)
        q = self.drop_probabilities(num_modalities, state)
        execute = keras.random.uniform((1, 1), seed=seed) < self.p_exe
        u = keras.random.uniform((batch_size, num_modalities), seed=seed)
        drop = ops.logical_and(u < q, execute)
        if num_modalities > 1:
            # Never every modality: an example that would lose them all
            # keeps one, chosen uniformly.
            spared = ops.one_hot(
                ops.argmax(
                    keras.random.uniform((batch_size, num_modalities), seed=seed),
                    axis=1,
                ),
                num_modalities,
            )
            everything = ops.all(drop, axis=1, keepdims=True)
            drop = ops.logical_and(
                drop, ops.logical_not(ops.logical_and(everything, spared > 0.5))
            )
        return ops.cast(drop, "float32")

    def mean(self, num_modalities, state=None, single_token=False):
        q = self.drop_probabilities(num_modalities, state)
        if num_modalities > 1:
            q = q - ops.prod(q) / num_modalities
        return self.p_exe * q

    def get_config(self):
        return {
            "q_base": self.q_base,
            "strength": self.strength,
            "p_exe": self.p_exe,
            "epsilon": self.epsilon,
        }
