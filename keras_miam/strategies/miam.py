"""MIAM: a mixture of product Beta distributions driven by modality dynamics."""

import itertools

import keras
import numpy as np
from keras import ops

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import as_seed
from keras_miam.strategies.base import check_positive
from keras_miam.strategies.base import check_probability

# Corners are enumerated for `log_prob` (2^M of them) and encoded as integers
# for sampling; both stay cheap well beyond the modality counts of practice.
MAX_MODALITIES = 20


def corner_weights(num_modalities, single_token=False, priority_mass=0.5):
    """Mixture weights of the all-zeros, all-ones and every other corner.

    Args:
        num_modalities: M.
        single_token: merge the all-ones corner (which would mask every
            token) into the all-zeros corner.
        priority_mass: the total weight of the all-zeros and all-ones
            corners, split equally; the rest is shared by the 2^M - 2
            mixed corners. `2 / 2**M` gives every corner the same weight.

    Returns:
        (w_zeros, w_ones, w_other): w_other is the weight of EACH mixed
        corner. Sums to one.
    """
    n_other = 2 ** int(num_modalities) - 2
    if n_other == 0:  # M = 1: the two corners only
        priority_mass = 1.0
    w_zeros = w_ones = priority_mass / 2.0
    w_other = (1.0 - priority_mass) / n_other if n_other else 0.0
    if single_token:
        w_zeros, w_ones = w_zeros + w_ones, 0.0
    return w_zeros, w_ones, w_other


@keras.saving.register_keras_serializable(package="keras_miam")
class MIAM(MaskingStrategy):
    """Modality Imbalance-Aware Masking: MixProdBeta with dynamic ratios r_m.

    p ~ sum_c w_c prod_m f(p_m | c_m) over the corners c of {0, 1}^M, with

        f(p_m | c_m = 0) = Beta(p_m; 1, kappa / r_m)
        f(p_m | c_m = 1) = Beta(p_m; kappa * r_m, 1)
        r_m = rho_s,m^lambda_s / rho_d,m^lambda_d,
        rho_s,m = s_m / geomean(s),  rho_d,m = d_m / geomean(d),

    w_c = `priority_corners_mass / 2` for the all-zeros and all-ones
    corners, the rest shared equally by the other corners. s_m is the
    unimodal validation score of modality m and d_m the absolute rate of
    change of s_m (kept by `MIAMMasking`, fed by `ModalityDynamics`). A
    dominant modality (high score, low derivative: r_m > 1) is masked more.
    Before any scores exist r_m = 1 (the Beta hypercube). When every
    modality is a single token, the all-ones corner is merged into the
    all-zeros one. Sampling is exact: Beta(a, 1) = U^(1/a) and
    Beta(1, b) = 1 - U^(1/b) for U ~ U(0, 1).

    Args:
        kappa: Beta sharpness, > 0. Defaults to 10.
        lambda_: exponent of both ratios (the paper's lambda), >= 0.
            Defaults to 1 (0 gives the Beta hypercube).
        epsilon: lower bound of s and d before normalisation, > 0.
        max_ratio: bound on r_m and 1 / r_m, >= 1.
        lambda_s: exponent of rho_s, >= 0. Defaults to `lambda_`
            (0: the derivative-only ablation).
        lambda_d: exponent of rho_d, >= 0. Defaults to `lambda_`
            (0: the score-only ablation).
        priority_corners_mass: total weight of the all-zeros and all-ones
            corners, in [0, 1]. Defaults to 0.5 (1/4 each); `2 / 2**M`
            weighs every corner the same.

    Example:

    >>> strategy = keras_miam.strategies.MIAM(kappa=10.0, lambda_=1.0)
    >>> state = keras_miam.strategies.dynamics_state(
    ...     3, scores=[0.9, 0.6, 0.6], derivatives=[0.01, 0.05, 0.05])
    >>> p = strategy.sample(10000, 3, seed=0, state=state)
    >>> m = keras.ops.convert_to_numpy(keras.ops.mean(p, axis=0))
    >>> bool(m[0] > m[1])  # the dominant first modality is masked more
    True

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026.
    """

    name = "miam"
    dynamic = True

    def __init__(
        self,
        kappa=10.0,
        lambda_=1.0,
        epsilon=1e-6,
        max_ratio=1e3,
        lambda_s=None,
        lambda_d=None,
        priority_corners_mass=0.5,
    ):
        self.kappa = check_positive(kappa, "kappa")
        self.lambda_ = _check_exponent(lambda_, "lambda_")
        self.lambda_s = _check_exponent(
            self.lambda_ if lambda_s is None else lambda_s, "lambda_s"
        )
        self.lambda_d = _check_exponent(
            self.lambda_ if lambda_d is None else lambda_d, "lambda_d"
        )
        self.priority_corners_mass = check_probability(
            priority_corners_mass, "priority_corners_mass"
        )
        self.epsilon = check_positive(epsilon, "epsilon")
        self.max_ratio = check_positive(max_ratio, "max_ratio")
        if self.max_ratio < 1.0:
            raise ValueError(f"`max_ratio` must be >= 1; received {max_ratio}.")

    # -- the dynamics ------------------------------------------------------
    def ratios(self, num_modalities, state=None):
        """r_m = rho_s^lambda_s / rho_d^lambda_d, (M,): ones before scores."""
        ones = ops.ones((num_modalities,), "float32")
        if state is None:
            return ones
        log_s = ops.log(ops.maximum(ops.cast(state["scores"], "float32"), self.epsilon))
        log_d = ops.log(
            ops.maximum(ops.cast(state["derivatives"], "float32"), self.epsilon)
        )
        log_r = self.lambda_s * (log_s - ops.mean(log_s)) - self.lambda_d * (
            log_d - ops.mean(log_d)
        )
        log_r = ops.clip(log_r, -np.log(self.max_ratio), np.log(self.max_ratio))
        return ops.where(state["ready"] > 0.5, ops.exp(log_r), ones)

    def beta_parameters(self, num_modalities, state=None):
        """(a, b), each (M,): Beta(a, 1) near corner 1, Beta(1, b) near 0."""
        r = self.ratios(num_modalities, state)
        return self.kappa * r, self.kappa / r

    def corner_weights(self, num_modalities, single_token=False):
        return corner_weights(num_modalities, single_token, self.priority_corners_mass)

    # -- the distribution --------------------------------------------------
    def _check_m(self, num_modalities):
        if not 1 <= int(num_modalities) <= MAX_MODALITIES:
            raise ValueError(
                f"MixProdBeta supports 1 to {MAX_MODALITIES} modalities; "
                f"received num_modalities={num_modalities}."
            )

    def sample_corners(self, batch_size, num_modalities, seed, single_token):
        """Corners c in {0, 1}^M drawn with the weights w_c, float32 (B, M)."""
        m = int(num_modalities)
        w_zeros, w_ones, _ = self.corner_weights(m, single_token)
        kind = keras.random.uniform((batch_size, 1), seed=seed)
        if m > 1:
            # A mixed corner, uniformly: an integer in [1, 2^M - 2] read as bits.
            k = keras.random.randint(
                (batch_size, 1), 1, 2**m - 1, dtype="int32", seed=seed
            )
            powers = ops.convert_to_tensor(2 ** np.arange(m), dtype="int32")
            mixed = ops.cast(ops.mod(ops.floor_divide(k, powers), 2), "float32")
        else:
            mixed = ops.zeros((batch_size, 1), "float32")
        zeros = ops.zeros_like(mixed)
        return ops.where(
            kind < w_zeros,
            zeros,
            ops.where(kind < w_zeros + w_ones, zeros + 1.0, mixed),
        )

    def sample(
        self, batch_size, num_modalities, seed=None, state=None, single_token=False
    ):
        self._check_m(num_modalities)
        seed = as_seed(seed)
        corners = self.sample_corners(batch_size, num_modalities, seed, single_token)
        a, b = self.beta_parameters(num_modalities, state)
        u = keras.random.uniform(
            (batch_size, num_modalities), minval=1e-12, maxval=1.0, seed=seed
        )
        log_u = ops.log(u)
        near_one = ops.exp(log_u / a)  # Beta(a, 1)
        near_zero = -ops.expm1(log_u / b)  # Beta(1, b)
        p = ops.where(corners > 0.5, near_one, near_zero)
        return ops.clip(p, 0.0, 1.0)

    def log_prob(self, p, state=None, single_token=False):
        p = ops.convert_to_tensor(p, "float32")
        m = int(p.shape[-1])
        self._check_m(m)
        a, b = self.beta_parameters(m, state)
        inside = ops.all(ops.logical_and(p >= 0.0, p <= 1.0), axis=-1)
        q = ops.clip(p, 1e-12, 1.0 - 1e-7)
        log_f1 = ops.log(a) + (a - 1.0) * ops.log(q)  # Beta(a, 1)
        log_f0 = ops.log(b) + (b - 1.0) * ops.log1p(-q)  # Beta(1, b)
        corners = np.array(list(itertools.product([0, 1], repeat=m)), "float32")
        w_zeros, w_ones, w_other = self.corner_weights(m, single_token)
        weights = np.full(len(corners), w_other, "float64")
        weights[0], weights[-1] = w_zeros, w_ones
        with np.errstate(divide="ignore"):
            log_w = np.log(weights).astype("float32")
        per_corner = (
            ops.matmul(log_f1, corners.T)
            + ops.matmul(log_f0, (1.0 - corners).T)
            + log_w
        )
        value = ops.logsumexp(per_corner, axis=-1)
        return ops.where(inside, value, float("-inf"))

    def mean(self, num_modalities, state=None, single_token=False):
        m = int(num_modalities)
        w_zeros, w_ones, w_other = self.corner_weights(m, single_token)
        p_one = w_ones + w_other * (2 ** (m - 1) - 1)
        a, b = self.beta_parameters(m, state)
        # E[Beta(a, 1)] = a / (a + 1), written 1 / (1 + 1 / a) so that an
        # overflowing a (kappa * r^lambda beyond float32) gives 1, not NaN.
        return p_one / (1.0 + 1.0 / a) + (1.0 - p_one) / (1.0 + b)

    def get_config(self):
        return {
            "kappa": self.kappa,
            "lambda_": self.lambda_,
            "epsilon": self.epsilon,
            "max_ratio": self.max_ratio,
            "lambda_s": self.lambda_s,
            "lambda_d": self.lambda_d,
            "priority_corners_mass": self.priority_corners_mass,
        }


def _check_exponent(value, name):
    value = float(value)
    if not (value >= 0.0 and np.isfinite(value)):
        raise ValueError(f"`{name}` must be a finite number >= 0; received {value}.")
    return value
