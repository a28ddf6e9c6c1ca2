"""Ready-to-train models built from tokenizers and `MIAMMasking`."""

from keras_miam.models.multimodal_transformer import MultimodalTransformer

__all__ = ["MultimodalTransformer"]
