"""MIAM: a mixture of product Beta distributions driven by modality dynamics."""

import itertools

import keras
import numpy as np
from keras import ops

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import check_range

MAX_MODALITIES = 20  # `log_prob` enumerates the 2^M corners.


@keras.saving.register_keras_serializable(package="keras_miam")
class MIAM(MaskingStrategy):
    """Modality Imbalance-Aware Masking: MixProdBeta with dynamic ratios r_m.

    p ~ sum_c w_c prod_m f(p_m | c_m) over the corners c of {0, 1}^M, with

        f(p_m | c_m = 0) = Beta(p_m; 1, kappa / r_m)
        f(p_m | c_m = 1) = Beta(p_m; kappa * r_m, 1)
        r_m = rho_s,m^lambda_s / rho_d,m^lambda_d,
        rho_s,m = s_m / geomean(s),  rho_d,m = d_m / geomean(d),

    where s_m is the unimodal validation score of modality m and d_m its
    absolute rate of change (fed by `keras_miam.ModalityDynamics`). The
    all-zeros and all-ones corners weigh `priority_corners_mass / 2` each;
    the other corners share the rest equally. A dominant modality (high,
    stable score: r_m > 1) is masked more. Before any scores r_m = 1 (the
    Beta hypercube). With single-token modalities the all-ones corner is
    merged into the all-zeros one.

    Args:
        kappa: Beta sharpness, > 0. Defaults to 10.
        lambda_: exponent of both ratios (the paper's lambda), >= 0.
            Defaults to 1 (0 gives the Beta hypercube).
        epsilon: lower bound of s and d before normalisation, > 0.
        max_ratio: bound on r_m and 1 / r_m, >= 1.
        lambda_s: exponent of rho_s, >= 0. Defaults to `lambda_`.
        lambda_d: exponent of rho_d, >= 0. Defaults to `lambda_`.
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
        self.kappa = check_range(kappa, "kappa", positive=True)
        self.lambda_ = check_range(lambda_, "lambda_")
        lambda_s, lambda_d = (lambda_ if v is None else v for v in (lambda_s, lambda_d))
        self.lambda_s = check_range(lambda_s, "lambda_s")
        self.lambda_d = check_range(lambda_d, "lambda_d")
        self.epsilon = check_range(epsilon, "epsilon", positive=True)
        self.max_ratio = check_range(max_ratio, "max_ratio", low=1.0)
        self.priority_corners_mass = check_range(
            priority_corners_mass, "priority_corners_mass", high=1.0
        )

    def ratios(self, num_modalities, state=None):
        """r_m = rho_s^lambda_s / rho_d^lambda_d, (M,): ones before scores."""
        ones = ops.ones((num_modalities,), "float32")
        if state is None:
            return ones
        log_s, log_d = (
            ops.log(ops.maximum(ops.cast(state[key], "float32"), self.epsilon))
            for key in ("scores", "derivatives")
        )
        log_r = self.lambda_s * (log_s - ops.mean(log_s)) - self.lambda_d * (
            log_d - ops.mean(log_d)
        )
        bound = np.log(self.max_ratio)
        r = ops.exp(ops.clip(log_r, -bound, bound))
        return ops.where(state["ready"] > 0.5, r, ones)

    def beta_parameters(self, num_modalities, state=None):
        """(a, b), each (M,): Beta(a, 1) near corner 1, Beta(1, b) near 0."""
        r = self.ratios(num_modalities, state)
        return self.kappa * r, self.kappa / r

    def corner_weights(self, num_modalities, single_token=False):
        """(w_zeros, w_ones, w_other): w_other is the weight of EACH other corner."""
        if not 1 <= int(num_modalities) <= MAX_MODALITIES:
            raise ValueError(
                f"MixProdBeta supports 1 to {MAX_MODALITIES} modalities; "
                f"received num_modalities={num_modalities}."
            )
        n_other = 2 ** int(num_modalities) - 2
        mass = self.priority_corners_mass if n_other else 1.0
        w_other = (1.0 - mass) / n_other if n_other else 0.0
        return (mass, 0.0, w_other) if single_token else (mass / 2, mass / 2, w_other)

    def _sample(self, batch_size, m, seed, state, single_token):
        w_zeros, w_ones, _ = self.corner_weights(m, single_token)
        kind = keras.random.uniform((batch_size, 1), seed=seed)
        mixed = 0.0
        if m > 1:  # A mixed corner, uniformly: an integer in [1, 2^M - 2] as bits.
            k = keras.random.randint((batch_size, 1), 1, 2**m - 1, "int32", seed)
            powers = ops.convert_to_tensor(2 ** np.arange(m), "int32")
            mixed = ops.cast(ops.mod(ops.floor_divide(k, powers), 2), "float32")
        corners = ops.where(
            kind < w_zeros, 0.0, ops.where(kind < w_zeros + w_ones, 1.0, mixed)
        )
        a, b = self.beta_parameters(m, state)
        # Exact: Beta(a, 1) = U^(1/a), Beta(1, b) = 1 - U^(1/b).
        log_u = ops.log(keras.random.uniform((batch_size, m), 1e-12, 1.0, seed=seed))
        p = ops.where(corners > 0.5, ops.exp(log_u / a), -ops.expm1(log_u / b))
        return ops.clip(p, 0.0, 1.0)

    def log_prob(self, p, state=None, single_token=False):
        p = ops.convert_to_tensor(p, "float32")
        m = int(p.shape[-1])
        w_zeros, w_ones, w_other = self.corner_weights(m, single_token)
        a, b = self.beta_parameters(m, state)
        q = ops.clip(p, 1e-12, 1.0 - 1e-7)
        log_f1 = ops.log(a) + (a - 1.0) * ops.log(q)  # Beta(a, 1)
        log_f0 = ops.log(b) + (b - 1.0) * ops.log1p(-q)  # Beta(1, b)
        corners = np.array(list(itertools.product([0, 1], repeat=m)), "float32")
        weights = np.full(len(corners), w_other)
        weights[0], weights[-1] = w_zeros, w_ones
        with np.errstate(divide="ignore"):
            log_w = np.log(weights).astype("float32")
        per_corner = (
            ops.matmul(log_f1, corners.T) + ops.matmul(log_f0, 1.0 - corners.T) + log_w
        )
        inside = ops.all(ops.logical_and(p >= 0.0, p <= 1.0), axis=-1)
        return ops.where(inside, ops.logsumexp(per_corner, axis=-1), float("-inf"))

    def mean(self, num_modalities, state=None, single_token=False):
        m = int(num_modalities)
        w_zeros, w_ones, w_other = self.corner_weights(m, single_token)
        p_one = w_ones + w_other * (2 ** (m - 1) - 1)
        a, b = self.beta_parameters(m, state)
        # E[Beta(a, 1)] = a / (a + 1) as 1 / (1 + 1 / a): an overflowing a
        # (kappa * r^lambda beyond float32) gives 1, not NaN.
        return p_one / (1.0 + 1.0 / a) + (1.0 - p_one) / (1.0 + b)
