"""Evaluation of a model on subsets of its inputs (missing modalities, parts).

from keras_miam.evaluation import evaluate_subsets
frame = evaluate_subsets(model, (x_test, y_test))   # every modality subset
"""

from keras_miam.evaluation.evaluate_subsets import describe_pattern
from keras_miam.evaluation.evaluate_subsets import evaluate_selections
from keras_miam.evaluation.evaluate_subsets import evaluate_subsets
from keras_miam.evaluation.metrics import SubsetMetric
from keras_miam.evaluation.metrics import accuracy
from keras_miam.evaluation.metrics import macro_auc
from keras_miam.evaluation.metrics import prediction_metric
from keras_miam.evaluation.metrics import resolve_metric

__all__ = [
    "SubsetMetric",
    "accuracy",
    "describe_pattern",
    "evaluate_selections",
    "evaluate_subsets",
    "macro_auc",
    "prediction_metric",
    "resolve_metric",
]
