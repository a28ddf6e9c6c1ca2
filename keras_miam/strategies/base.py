"""The base class of masking strategies: distributions over the modality hypercube."""

import keras
from keras import ops


def as_seed(seed):
    """Returns something `keras.random` accepts as a seed.

    A `keras.random.SeedGenerator` (what layers hold) is passed through; an int
    or None becomes a fresh `SeedGenerator`, so eager calls with the same int
    give the same draws.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return seed
    return keras.random.SeedGenerator(seed)


def dynamics_state(num_modalities, scores=None, derivatives=None):
    """Builds the dynamics state dict a strategy reads.

    Args:
        num_modalities: M.
        scores: optional length-M unimodal scores s_m.
        derivatives: optional length-M |d s_m / d epoch|.

    Returns:
        dict with float32 tensors `scores` (M,), `derivatives` (M,) and
        `ready` (scalar, 1.0 when scores exist, else 0.0).
    """
    ready = 0.0 if scores is None else 1.0
    if scores is None:
        scores = [1.0] * num_modalities
    if derivatives is None:
        derivatives = [1.0] * num_modalities
    return {
        "scores": ops.convert_to_tensor(scores, dtype="float32"),
        "derivatives": ops.convert_to_tensor(derivatives, dtype="float32"),
        "ready": ops.convert_to_tensor(ready, dtype="float32"),
    }


class MaskingStrategy:
    """A distribution D over p in [0, 1]^M: the masking rate of each modality.

    Subclasses implement `sample()` (and `log_prob()` where D has a density)
    with `keras.ops` / `keras.random` only, so that sampling runs inside a
    compiled train step on every backend. A strategy holds no training
    state: dynamic strategies (MIAM, OPM) read a `state` dict (see
    `dynamics_state()`) that `MIAMMasking` keeps in non-trainable variables.

    Attributes:
        name: the registry name (`strategies.get(name)`).
        dynamic: whether `sample()` reads unimodal scores from `state`.
    """

    name = None
    dynamic = False

    def sample(
        self, batch_size, num_modalities, seed=None, state=None, single_token=False
    ):
        """Draws p of shape (batch_size, num_modalities), float32.

        Args:
            batch_size: number of draws (int or scalar tensor).
            num_modalities: M (int).
            seed: a `keras.random.SeedGenerator`, an int, or None.
            state: dynamics state dict (see `dynamics_state()`); None means
                no scores yet.
            single_token: True when every modality is a single token
                (MixProdBeta then merges the all-ones corner into the
                all-zeros corner).
        """
        raise NotImplementedError

    def log_prob(self, p, state=None, single_token=False):
        """Log-density of p (shape (..., M)) under the strategy."""
        raise NotImplementedError(
            f"The '{self.name}' strategy has no density on the hypercube "
            "(it is a point mass or puts its mass on corners or a line); "
            "`log_prob` exists for 'dirichlet', 'uniform_hypercube', "
            "'beta_hypercube' and 'miam'."
        )

    def mean(self, num_modalities, state=None, single_token=False):
        """E[p], shape (M,), computed analytically."""
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and (self.get_config() == other.get_config())

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


def check_probability(value, name, low=0.0, high=1.0):
    value = float(value)
    if not (low <= value <= high):
        raise ValueError(
            f"`{name}` must be in [{low}, {high}]; received {name}={value}."
        )
    return value


def check_positive(value, name):
    value = float(value)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(
            f"`{name}` must be a finite number > 0; received {name}={value}."
        )
    return value
