"""Datasets: the synthetic testbed, splits, GeoPlant, SatBird and TaxaBench.

The readers of GeoPlant and SatBird load on first use, with their extras.
"""

from keras_miam._lazy import lazy_exports
from keras_miam.datasets.split_dataset import split_dataset
from keras_miam.datasets.synthetic_ecology import make_synthetic_ecology
from keras_miam.datasets.taxabench import load_taxabench

_GEOPLANT = ("GeoPlantCacheError", "GeoPlantDataset", "GeoPlantLayout")
_GEOPLANT += ("available_modalities", "load_geoplant", "prepare_geoplant")
_LAZY = {**dict.fromkeys(_GEOPLANT, ".geoplant"), "load_satbird": ".satbird"}
__getattr__, __dir__ = lazy_exports(
    __name__, _LAZY, extras={".geoplant": "geoplant", ".satbird": "satbird"}
)
__all__ = ["load_taxabench", "make_synthetic_ecology", "split_dataset", *_LAZY]
