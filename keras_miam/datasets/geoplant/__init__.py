"""GeoPlant / GeoLifeCLEF 2024-2025 presence-absence surveys (see `loader`)."""

from keras_miam.datasets.geoplant.cache import GeoPlantCacheError
from keras_miam.datasets.geoplant.cache import prepare_geoplant
from keras_miam.datasets.geoplant.dataset import GeoPlantDataset
from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.loader import load_geoplant
from keras_miam.datasets.geoplant.sources import GEOPLANT_MODALITIES
from keras_miam.datasets.geoplant.sources import available_modalities

__all__ = [
    "GEOPLANT_MODALITIES",
    "GeoPlantCacheError",
    "GeoPlantDataset",
    "GeoPlantLayout",
    "available_modalities",
    "load_geoplant",
    "prepare_geoplant",
]
