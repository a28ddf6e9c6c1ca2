"""A multimodal backbone and the tasks on top of it, ready to train."""

from keras_miam.losses import MaskedBinaryCrossentropy
from keras_miam.metrics import MaskedAUC
from keras_miam.metrics import MaskedTopKF1
from keras_miam.models.checks import check_data
from keras_miam.models.multimodal_backbone import MultimodalBackbone
from keras_miam.models.multimodal_pretrainer import MultimodalPretrainer
from keras_miam.models.multimodal_transformer import MultimodalTransformer

__all__ = [
    "MaskedAUC",
    "MaskedBinaryCrossentropy",
    "MaskedTopKF1",
    "MultimodalBackbone",
    "MultimodalPretrainer",
    "MultimodalTransformer",
    "check_data",
]
