"""Contributions of modalities and tokens, measured by masking.

from keras_miam.explain import modality_shapley, token_shapley
modality_shapley(model, (x_test, y_test))          # exact, 2^M subsets
token_shapley(model, (x_test, y_test), groups=...)  # permutation sampling
"""

from keras_miam.explain.modality_shapley import modality_shapley
from keras_miam.explain.token_shapley import token_shapley

__all__ = ["modality_shapley", "token_shapley"]
