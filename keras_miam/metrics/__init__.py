"""Keras metrics that ignore NaN targets, and the exact rank-based AUC."""

from keras_miam.metrics.masked_auc import MaskedAUC
from keras_miam.metrics.masked_mean_absolute_error import MaskedMeanAbsoluteError
from keras_miam.metrics.masked_top_k_accuracy import MaskedTopKAccuracy
from keras_miam.metrics.masked_top_k_f1 import MaskedTopKF1
from keras_miam.metrics.masked_top_k_f1 import top_k_f1
from keras_miam.metrics.rank_auc import macro_auc
from keras_miam.metrics.rank_auc import micro_auc

__all__ = [
    "MaskedAUC",
    "MaskedMeanAbsoluteError",
    "MaskedTopKAccuracy",
    "MaskedTopKF1",
    "macro_auc",
    "micro_auc",
    "top_k_f1",
]
