"""keras_miam: Modality Imbalance-Aware Masking (MIAM, ICLR 2026) for Keras 3.

    import keras_miam as km
    km.MIAMMasking            # layer: tokens per modality -> masked tokens + keep mask
    km.ModalityDynamics       # callback: per-modality validation scores -> masking state
    km.strategies             # the eight hypercube masking strategies
    km.tokenizers, km.models, km.metrics, km.losses, km.evaluation,
    km.explain, km.datasets, km.plotting, km.experiments

The packages that define registered classes (layers, tokenizers, strategies,
models, metrics, losses) are imported here, so that `keras.saving.load_model`
finds them right after `import keras_miam`. `datasets`, `evaluation`,
`experiments`, `explain` and `plotting` load on first use.
"""

from keras_miam import callbacks
from keras_miam import layers
from keras_miam import losses
from keras_miam import metrics
from keras_miam import models
from keras_miam import strategies
from keras_miam import tokenizers
from keras_miam._lazy import lazy_exports
from keras_miam.callbacks.modality_dynamics import ModalityDynamics
from keras_miam.layers.miam_masking import MIAMMasking
from keras_miam.version import __version__

_LAZY = ("datasets", "evaluation", "experiments", "explain", "plotting")
__getattr__, __dir__ = lazy_exports(__name__, submodules=_LAZY)

__all__ = [
    "MIAMMasking",
    "ModalityDynamics",
    "__version__",
    "callbacks",
    "layers",
    "losses",
    "metrics",
    "models",
    "strategies",
    "tokenizers",
    *_LAZY,
]
