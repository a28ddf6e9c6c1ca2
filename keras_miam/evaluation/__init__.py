"""Measuring a model under masking selections: subsets, the metric, the engine."""

from keras_miam.evaluation.data import collect_examples
from keras_miam.evaluation.evaluate_subsets import evaluate_selections
from keras_miam.evaluation.evaluate_subsets import evaluate_subsets
from keras_miam.evaluation.metrics import metric_direction
from keras_miam.evaluation.metrics import resolve_metric
from keras_miam.evaluation.selections import all_subsets
from keras_miam.evaluation.selections import parse_label
from keras_miam.evaluation.selections import pattern_label
from keras_miam.evaluation.selections import subset_label
from keras_miam.evaluation.view_predictions import iter_view_predictions
from keras_miam.evaluation.view_predictions import predict_views
from keras_miam.evaluation.view_predictions import score_selections

__all__ = [
    "all_subsets",
    "collect_examples",
    "evaluate_selections",
    "evaluate_subsets",
    "iter_view_predictions",
    "metric_direction",
    "parse_label",
    "pattern_label",
    "predict_views",
    "resolve_metric",
    "score_selections",
    "subset_label",
]
