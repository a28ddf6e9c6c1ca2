from keras_miam.layers.fill_missing import FillMissing
from keras_miam.layers.masking_lookup import find_masking_layers
from keras_miam.layers.masking_lookup import get_masking_layer
from keras_miam.layers.miam_masking import MIAMMasking
from keras_miam.layers.visible_mean_pooling import VisibleMeanPooling

__all__ = [
    "FillMissing",
    "MIAMMasking",
    "VisibleMeanPooling",
    "find_masking_layers",
    "get_masking_layer",
]
