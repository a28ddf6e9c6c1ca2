"""Datasets: a synthetic multimodal testbed, GeoPlant and TaxaBench loaders.

- `make_synthetic_ecology`: seeded presence/absence data with GeoPlant's
  modality kinds (tabular, monthly and quarterly series, image patches), one
  dominant and one weak-but-unique modality, and realistic NaN missingness.
- `split_dataset`: seeded train/validation/test split of array datasets.
- `load_geoplant`: the GeoPlant / GeoLifeCLEF 2024-2025 presence-absence
  release, streamed as a `keras.utils.PyDataset` (`GeoPlantDataset`).
  `available_modalities` lists the modalities a release has files for;
  `prepare_geoplant` reads a release once into a memory-mapped cache that
  `load_geoplant(cache_dir=...)` streams from.
  The loader, dataset, layout and file readers live in `datasets.geoplant`.
- `load_taxabench`: TaxaBench-8k style per-modality embeddings and labels.

Shared input checks (`check_modalities`, `positive_int`) live in
`datasets.checks`; missing values follow `keras_miam.missing.is_missing`.
"""

from keras_miam._lazy import lazy_exports
from keras_miam.datasets.split_dataset import split_dataset
from keras_miam.datasets.synthetic_ecology import make_synthetic_ecology
from keras_miam.datasets.taxabench import load_taxabench

# The readers of GeoPlant and SatBird load on first use, with their extras.
_LAZY = {
    "GeoPlantCacheError": ".geoplant",
    "GeoPlantDataset": ".geoplant",
    "GeoPlantLayout": ".geoplant",
    "available_modalities": ".geoplant",
    "load_geoplant": ".geoplant",
    "prepare_geoplant": ".geoplant",
    "load_satbird": ".satbird",
}
__getattr__, __dir__ = lazy_exports(
    __name__, _LAZY, extras={".geoplant": "geoplant", ".satbird": "satbird"}
)

__all__ = [
    "GeoPlantCacheError",
    "GeoPlantDataset",
    "GeoPlantLayout",
    "available_modalities",
    "load_geoplant",
    "load_satbird",
    "load_taxabench",
    "make_synthetic_ecology",
    "prepare_geoplant",
    "split_dataset",
]
