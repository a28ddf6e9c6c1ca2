"""Ready-to-train models built from tokenizers and `MIAMMasking`."""

from keras_miam.losses import MaskedBinaryCrossentropy
from keras_miam.metrics import MaskedAUC
from keras_miam.metrics import MaskedTopKF1
from keras_miam.models.multimodal_pretrainer import MultimodalPretrainer
from keras_miam.models.multimodal_transformer import MultimodalTransformer

__all__ = [
    "MaskedAUC",
    "MaskedBinaryCrossentropy",
    "MaskedTopKF1",
    "MultimodalPretrainer",
    "MultimodalTransformer",
]
