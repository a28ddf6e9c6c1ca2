"""Experiment runners: train with a strategy, compare strategies, as in the paper."""

from keras_miam.experiments.compare_strategies import compare_strategies
from keras_miam.experiments.compare_strategies import subset_scores
from keras_miam.experiments.train_and_evaluate import default_tokenizers
from keras_miam.experiments.train_and_evaluate import train_and_evaluate

__all__ = [
    "compare_strategies",
    "default_tokenizers",
    "subset_scores",
    "train_and_evaluate",
]
