"""Masking strategies: distributions over the modality hypercube [0, 1]^M.

Every strategy draws p = (p_1, ..., p_M), the masking probability of each
modality, per example; `MIAMMasking` then masks each token of modality m
with probability p_m. `get(name_or_config)` builds one from a registry name,
a config dict or an instance.
"""

import keras

from keras_miam.strategies.base import MaskingStrategy
from keras_miam.strategies.base import dynamics_state
from keras_miam.strategies.beta_hypercube import BetaHypercube
from keras_miam.strategies.constant import Constant
from keras_miam.strategies.dirichlet import Dirichlet
from keras_miam.strategies.miam import MIAM
from keras_miam.strategies.modality_dropout import ModalityDropout
from keras_miam.strategies.opm import OPM
from keras_miam.strategies.uniform import Uniform
from keras_miam.strategies.uniform_hypercube import UniformHypercube

ALL_STRATEGIES = (
    Constant,
    Uniform,
    Dirichlet,
    ModalityDropout,
    OPM,
    UniformHypercube,
    BetaHypercube,
    MIAM,
)
STRATEGIES = {cls.name: cls for cls in ALL_STRATEGIES}


def serialize(strategy):
    """Returns the Keras config dict of a strategy."""
    return keras.saving.serialize_keras_object(strategy)


def deserialize(config):
    """Builds a strategy from `serialize()`'s output."""
    return keras.saving.deserialize_keras_object(config)


def get(identifier):
    """Returns a strategy from a name, a config dict or an instance.

    Args:
        identifier: one of 'constant', 'uniform', 'dirichlet',
            'modality_dropout', 'opm', 'uniform_hypercube', 'beta_hypercube',
            'miam' (case-insensitive, '-' or ' ' read as '_'); a dict
            `{"name": ..., **kwargs}` or the output of `serialize()`; or a
            `MaskingStrategy` instance (returned as is).

    Example:

    >>> get("miam")
    MIAM(kappa=10.0, lambda_=1.0, epsilon=1e-06, max_ratio=1000.0)
    >>> get({"name": "constant", "rate": 0.5})
    Constant(rate=0.5)
    """
    if isinstance(identifier, MaskingStrategy):
        return identifier
    if isinstance(identifier, str):
        key = identifier.strip().lower().replace("-", "_").replace(" ", "_")
        if key not in STRATEGIES:
            raise ValueError(
                f"Unknown masking strategy '{identifier}'. Expected one of "
                f"{sorted(STRATEGIES)}, a config dict or a MaskingStrategy."
            )
        return STRATEGIES[key]()
    if isinstance(identifier, dict):
        if "class_name" in identifier:
            return deserialize(identifier)
        if "name" in identifier:
            kwargs = dict(identifier)
            cls = STRATEGIES.get(str(kwargs.pop("name")).lower())
            if cls is None:
                return get(identifier["name"])  # raises the clear error
            return cls(**kwargs)
    raise ValueError(
        "Expected a strategy name, a config dict or a MaskingStrategy; "
        f"received {identifier!r}."
    )


__all__ = [cls.__name__ for cls in ALL_STRATEGIES] + [
    "MaskingStrategy",
    "dynamics_state",
    "get",
    "serialize",
    "deserialize",
]
