"""Ready-to-train models built from tokenizers and `MIAMMasking`."""

from keras_miam.models.masked_auc import MaskedAUC
from keras_miam.models.masked_binary_crossentropy import MaskedBinaryCrossentropy
from keras_miam.models.masked_top_k_f1 import MaskedTopKF1
from keras_miam.models.multimodal_pretrainer import MultimodalPretrainer
from keras_miam.models.multimodal_transformer import MultimodalTransformer

__all__ = [
    "MaskedAUC",
    "MaskedBinaryCrossentropy",
    "MaskedTopKF1",
    "MultimodalPretrainer",
    "MultimodalTransformer",
]
