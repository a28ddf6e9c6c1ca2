"""GeoPlant / GeoLifeCLEF 2024-2025 presence-absence surveys.

- `load_geoplant`: a split streamed as a `keras.utils.PyDataset`
  (`GeoPlantDataset`), read from the release's files or from a cache.
- `prepare_geoplant`: reads the release once into a memory-mapped array
  cache (also `python -m keras_miam.datasets.geoplant prepare ROOT CACHE`).
- `GeoPlantLayout`: finds the file families of a release;
  `available_modalities` lists the modalities it has files for.

Modules: `loader` (load_geoplant), `dataset` (GeoPlantDataset), `layout`
(GeoPlantLayout), `readers` (CSV, cube and patch readers), `cache`
(prepare_geoplant and the cache reader).
"""

from keras_miam.datasets.geoplant.cache import GeoPlantCacheError
from keras_miam.datasets.geoplant.cache import prepare_geoplant
from keras_miam.datasets.geoplant.dataset import GeoPlantDataset
from keras_miam.datasets.geoplant.layout import GeoPlantLayout
from keras_miam.datasets.geoplant.loader import GEOPLANT_MODALITIES
from keras_miam.datasets.geoplant.loader import available_modalities
from keras_miam.datasets.geoplant.loader import load_geoplant

__all__ = [
    "GEOPLANT_MODALITIES",
    "GeoPlantCacheError",
    "GeoPlantDataset",
    "GeoPlantLayout",
    "available_modalities",
    "load_geoplant",
    "prepare_geoplant",
]
