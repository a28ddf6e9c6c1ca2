"""Shapley values of modalities (exact) and tokens (sampled), by masking."""

from keras_miam.explain.modality_shapley import modality_shapley
from keras_miam.explain.token_shapley import token_shapley

__all__ = ["modality_shapley", "token_shapley"]
