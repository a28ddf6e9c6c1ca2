"""keras_miam: Modality Imbalance-Aware Masking (MIAM, ICLR 2026) for Keras 3.

    import keras_miam as km
    km.MIAMMasking            # layer: tokens per modality -> masked tokens + keep mask
    km.ModalityDynamics       # callback: per-modality validation scores -> masking state
    km.strategies             # the eight hypercube masking strategies
    km.tokenizers, km.models, km.evaluation, km.explain, km.datasets, km.plotting
"""

import importlib

from keras_miam import strategies
from keras_miam.layers.miam_masking import MIAMMasking
from keras_miam.version import __version__

_SUBMODULES = (
    "callbacks", "datasets", "evaluation", "experiments", "explain", "layers", "models",
    "plotting", "tokenizers", "utils",
)


def __getattr__(name):
    # Submodules load on first use, so `import keras_miam` stays light.
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_miam.{name}")
    if name == "ModalityDynamics":
        from keras_miam.callbacks.modality_dynamics import ModalityDynamics

        return ModalityDynamics
    raise AttributeError(f"module 'keras_miam' has no attribute '{name}'")


__all__ = ["MIAMMasking", "ModalityDynamics", "strategies", "__version__"] + list(
    _SUBMODULES
)
