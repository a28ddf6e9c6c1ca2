"""Measuring a model under masking selections: subsets, metrics, the engine.

from keras_miam.evaluation import evaluate_subsets
frame = evaluate_subsets(model, (x_test, y_test))   # every modality subset

- `evaluate_subsets.py`: `evaluate_subsets` (the table), `evaluate_selections`
  (one value per selection);
- `metrics.py`: the one metric system (`resolve_metric`, `SubsetMetric`,
  `register_metric`, the head, the label checks, `accuracy`), shared with
  `ModalityDynamics` and `keras_miam.explain`;
- `ranking_metrics.py`: `macro_auc`, and GeoLifeCLEF's `top_k_f1` and
  `micro_auc` (numpy, NaN targets left out; also metric names:
  `metric="top_k_f1"`);
- `selections.py`: subset <-> token pattern <-> label ('env+image');
- `view_predictions.py`: the engine, V selections per compiled forward pass
  (`predict_views`, `score_selections`);
- `data.py`: `(x, y)` data or datasets of batches read into arrays once.
"""

from keras_miam.evaluation.data import collect_examples
from keras_miam.evaluation.evaluate_subsets import evaluate_selections
from keras_miam.evaluation.evaluate_subsets import evaluate_subsets
from keras_miam.evaluation.metrics import Head
from keras_miam.evaluation.metrics import SubsetMetric
from keras_miam.evaluation.metrics import accuracy
from keras_miam.evaluation.metrics import infer_head
from keras_miam.evaluation.metrics import prediction_metric
from keras_miam.evaluation.metrics import register_metric
from keras_miam.evaluation.metrics import resolve_metric
from keras_miam.evaluation.ranking_metrics import macro_auc
from keras_miam.evaluation.ranking_metrics import micro_auc
from keras_miam.evaluation.ranking_metrics import top_k_f1
from keras_miam.evaluation.selections import all_subsets
from keras_miam.evaluation.selections import parse_label
from keras_miam.evaluation.selections import pattern_label
from keras_miam.evaluation.selections import subset_label
from keras_miam.evaluation.view_predictions import iter_view_predictions
from keras_miam.evaluation.view_predictions import predict_views
from keras_miam.evaluation.view_predictions import score_selections

__all__ = [
    "Head",
    "SubsetMetric",
    "accuracy",
    "all_subsets",
    "collect_examples",
    "evaluate_selections",
    "evaluate_subsets",
    "infer_head",
    "iter_view_predictions",
    "macro_auc",
    "micro_auc",
    "parse_label",
    "pattern_label",
    "predict_views",
    "prediction_metric",
    "register_metric",
    "resolve_metric",
    "score_selections",
    "subset_label",
    "top_k_f1",
]
