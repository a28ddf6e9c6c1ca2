"""Modality tokenizers: raw modality inputs -> tokens + per-token availability.

Every tokenizer follows one missing-data rule (see `Tokenizer`): NaN, +-inf,
`|x| > 1e10` and `nodata` values are missing; a token whose values are all
missing is unavailable (`compute_mask` / `compute_availability` return
`False` for it, and `MIAMMasking` replaces it by the mask token); the missing
values of a partly missing token are zero-filled.
"""

from keras_miam.tokenizers.embedding_tokenizer import EmbeddingTokenizer
from keras_miam.tokenizers.image_patch_tokenizer import ImagePatchTokenizer
from keras_miam.tokenizers.tabular_tokenizer import TabularTokenizer
from keras_miam.tokenizers.time_series_tokenizer import TimeSeriesTokenizer
from keras_miam.tokenizers.tokenizer import Tokenizer

__all__ = [
    "EmbeddingTokenizer",
    "ImagePatchTokenizer",
    "TabularTokenizer",
    "TimeSeriesTokenizer",
    "Tokenizer",
]
