"""Masking strategies: distributions of the per-modality masking rates p
over the hypercube [0, 1]^M, one draw per example."""

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

ALL_STRATEGIES = (Constant, Uniform, Dirichlet, ModalityDropout, OPM)
ALL_STRATEGIES += (UniformHypercube, BetaHypercube, MIAM)
STRATEGIES = {cls.name: cls for cls in ALL_STRATEGIES}
serialize = keras.saving.serialize_keras_object
deserialize = keras.saving.deserialize_keras_object


def get(identifier):
    """Returns a strategy from a name, a config dict or an instance.

    Args:
        identifier: a registry name (`"miam"`, `"opm"`, ...; '-' or ' ' read
            as '_'), a dict `{"name": ..., **kwargs}`, the output of
            `serialize()` or a `MaskingStrategy` (returned as is).

    Example:

    >>> keras_miam.strategies.get({"name": "constant", "rate": 0.5})
    Constant(rate=0.5)
    """
    if isinstance(identifier, MaskingStrategy):
        return identifier
    if isinstance(identifier, dict) and "class_name" in identifier:
        return deserialize(identifier)
    kwargs = {}
    if isinstance(identifier, dict) and "name" in identifier:
        kwargs = dict(identifier)
        identifier = kwargs.pop("name")
    if not isinstance(identifier, str):
        raise ValueError(
            "Expected a strategy name, a config dict or a MaskingStrategy; "
            f"received {identifier!r}."
        )
    key = identifier.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in STRATEGIES:
        raise ValueError(
            f"Unknown masking strategy '{identifier}'. Expected one of "
            f"{sorted(STRATEGIES)}, a config dict or a MaskingStrategy."
        )
    return STRATEGIES[key](**kwargs)


__all__ = ["MaskingStrategy", "deserialize", "dynamics_state", "get", "serialize"]
__all__ += [cls.__name__ for cls in ALL_STRATEGIES]
