"""Helpers shared across keras_miam (model introspection, multi-view prediction)."""

from keras_miam.utils.model_utils import collect_examples
from keras_miam.utils.model_utils import find_masking_layers
from keras_miam.utils.model_utils import get_masking_layer
from keras_miam.utils.model_utils import iter_view_predictions
from keras_miam.utils.model_utils import num_examples
from keras_miam.utils.model_utils import predict_views
from keras_miam.utils.model_utils import sync_model_state
from keras_miam.utils.model_utils import take_examples
from keras_miam.utils.model_utils import tile_examples
from keras_miam.utils.model_utils import views_batch_size

__all__ = [
    "collect_examples",
    "find_masking_layers",
    "get_masking_layer",
    "iter_view_predictions",
    "num_examples",
    "predict_views",
    "sync_model_state",
    "take_examples",
    "tile_examples",
    "views_batch_size",
]
