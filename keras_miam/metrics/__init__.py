"""Keras metrics that ignore NaN targets, and the rank-based AUC."""

from keras_miam.metrics.masked_auc import MaskedAUC
from keras_miam.metrics.masked_top_k_f1 import MaskedTopKF1

__all__ = ["MaskedAUC", "MaskedTopKF1"]
