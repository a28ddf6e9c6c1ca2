"""GeoPlant / GeoLifeCLEF 2024-2025 presence-absence surveys.

- `load_geoplant` (`loader`): a split as a `GeoPlantDataset` (`dataset`),
  read from the release's files or from a cache.
- `prepare_geoplant` (`cache`): reads a release once into a memory-mapped
  array cache (also `python -m keras_miam.datasets.geoplant prepare ROOT
  CACHE`).
- `GeoPlantLayout` (`layout`) finds the files of a release;
  `available_modalities` (`sources`) lists the modalities it has files for.

Inside: `readers` (CSV, cube and patch readers), `sources` (the files of a
split, read by row), `plan` (surveys, validation part, species, labels),
`statistics` (normalisation).
"""

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
