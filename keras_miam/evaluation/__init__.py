"""Measuring a model under masking selections: subsets, the metric, the engine.

- `evaluate_subsets.py`: `evaluate_subsets` (the table), `evaluate_selections`;
- `metrics.py`: `resolve_metric`, the one metric system, shared with
  `ModalityDynamics` and `keras_miam.explain`;
- `selections.py`: subset <-> token pattern <-> label ('env+image');
- `view_predictions.py`: the engine, V selections per compiled forward pass;
- `data.py`: `(x, y)` data or datasets of batches read into arrays once.
"""

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
from keras_miam.metrics import macro_auc
from keras_miam.metrics import micro_auc
from keras_miam.metrics import top_k_f1

__all__ = [
    "all_subsets",
    "collect_examples",
    "evaluate_selections",
    "evaluate_subsets",
    "iter_view_predictions",
    "macro_auc",
    "metric_direction",
    "micro_auc",
    "parse_label",
    "pattern_label",
    "predict_views",
    "resolve_metric",
    "score_selections",
    "subset_label",
    "top_k_f1",
]
