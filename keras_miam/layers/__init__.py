from keras_miam.layers.miam_masking import MIAMMasking

__all__ = ["MIAMMasking"]
