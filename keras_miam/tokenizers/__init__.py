"""Modality tokenizers: a modality's input -> tokens + per-token availability."""

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
