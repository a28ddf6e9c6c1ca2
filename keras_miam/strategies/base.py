"""The base class of masking strategies: distributions over the modality hypercube."""

import inspect
import math

import keras
from keras import ops


def dynamics_state(num_modalities, scores=None, derivatives=None):
    """The dynamics state a strategy reads: float32 tensors `scores` (M,),
    `derivatives` (M,) (ones where not given) and `ready` (1.0 with scores)."""
    ones = [1.0] * num_modalities
    return {
        "scores": ops.convert_to_tensor(ones if scores is None else scores, "float32"),
        "derivatives": ops.convert_to_tensor(
            ones if derivatives is None else derivatives, "float32"
        ),
        "ready": ops.convert_to_tensor(float(scores is not None), "float32"),
    }


def check_range(value, name, low=0.0, high=math.inf, positive=False):
    """`value` as a finite float in [low, high] (and > 0 if `positive`)."""
    value = float(value)
    if not (low <= value <= high and math.isfinite(value)) or (positive and value <= 0):
        expected = "> 0" if positive else f"in [{low}, {high}]"
        raise ValueError(
            f"`{name}` must be a finite number {expected}; received {name}={value}."
        )
    return value


class MaskingStrategy:
    """A distribution over p in [0, 1]^M: the masking rate of each modality.

    Subclasses implement `_sample(batch_size, m, seed, state, single_token)`
    and `mean()` (and `log_prob()` given a density) with `keras.ops` and
    `keras.random` only, so that sampling runs in a compiled train step. A
    strategy holds no training state: MIAM and OPM read the `state` dict
    (`dynamics_state()`) that `keras_miam.layers.MIAMMasking` keeps. The
    config is the constructor's arguments, read from the same attributes.

    Attributes:
        name: the registry name (`keras_miam.strategies.get(name)`).
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
            seed: a `keras.random.SeedGenerator`, an int or None.
            state: the dynamics state (`dynamics_state()`); None: no scores.
            single_token: whether every modality is a single token.
        """
        if not isinstance(seed, keras.random.SeedGenerator):
            seed = keras.random.SeedGenerator(seed)
        return self._sample(batch_size, int(num_modalities), seed, state, single_token)

    def log_prob(self, p, state=None, single_token=False):
        """Log-density of p (shape (..., M)) under the strategy."""
        raise NotImplementedError(
            f"The '{self.name}' strategy has no density on the hypercube; "
            "'dirichlet', 'uniform_hypercube' and the Beta mixtures have one."
        )

    def mean(self, num_modalities, state=None, single_token=False):
        """E[p], shape (M,), computed analytically."""
        raise NotImplementedError

    def get_config(self):
        parameters = inspect.signature(type(self).__init__).parameters.values()
        return {
            p.name: getattr(self, p.name)
            for p in parameters
            if p.kind == p.POSITIONAL_OR_KEYWORD and p.name != "self"
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))
