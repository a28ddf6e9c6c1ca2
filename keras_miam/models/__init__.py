"""Ready-to-train models built from tokenizers and `MIAMMasking`."""

from keras_miam.models.multimodal_transformer import MaskedAUC
from keras_miam.models.multimodal_transformer import MaskedBinaryCrossentropy
from keras_miam.models.multimodal_transformer import MultimodalTransformer

__all__ = ["MaskedAUC", "MaskedBinaryCrossentropy", "MultimodalTransformer"]
