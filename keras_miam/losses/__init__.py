"""Keras losses that ignore NaN targets."""

from keras_miam.losses.masked_binary_crossentropy import MaskedBinaryCrossentropy

__all__ = ["MaskedBinaryCrossentropy"]
