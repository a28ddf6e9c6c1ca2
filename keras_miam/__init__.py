"""keras_miam: Modality Imbalance-Aware Masking (MIAM, ICLR 2026) for Keras 3.

    import keras_miam as km
    km.MIAMMasking            # layer: tokens per modality -> masked tokens + keep mask
    km.ModalityDynamics       # callback: per-modality validation scores -> masking state
    km.strategies             # the eight hypercube masking strategies
    km.tokenizers, km.models, km.evaluation, km.explain, km.datasets, km.plotting,
    km.experiments

Every submodule is imported here, so that `keras.saving.load_model` finds the
registered classes (layers, tokenizers, models, strategies) right after
`import keras_miam`.
"""

from keras_miam import callbacks
from keras_miam import datasets
from keras_miam import evaluation
from keras_miam import experiments
from keras_miam import explain
from keras_miam import layers
from keras_miam import losses
from keras_miam import metrics
from keras_miam import models
from keras_miam import plotting
from keras_miam import strategies
from keras_miam import tokenizers
from keras_miam.callbacks.modality_dynamics import ModalityDynamics
from keras_miam.layers.miam_masking import MIAMMasking
from keras_miam.version import __version__

__all__ = [
    "MIAMMasking",
    "ModalityDynamics",
    "__version__",
    "callbacks",
    "datasets",
    "evaluation",
    "experiments",
    "explain",
    "layers",
    "losses",
    "metrics",
    "models",
    "plotting",
    "strategies",
    "tokenizers",
]
