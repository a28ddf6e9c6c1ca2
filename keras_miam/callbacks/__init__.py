"""Keras callbacks of keras_miam."""

from keras_miam.callbacks.modality_dynamics import ModalityDynamics

__all__ = ["ModalityDynamics"]
