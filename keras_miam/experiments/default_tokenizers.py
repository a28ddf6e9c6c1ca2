"""A tokenizer per modality, chosen from the shape of its data."""

import numbers

import numpy as np

from keras_miam.tokenizers import EmbeddingTokenizer
from keras_miam.tokenizers import ImagePatchTokenizer
from keras_miam.tokenizers import TabularTokenizer
from keras_miam.tokenizers import TimeSeriesTokenizer


def _largest_divisor_at_least(n, minimum):
    """The smallest divisor of n that is >= minimum (n itself at worst)."""
    for d in range(max(1, minimum), n + 1):
        if n % d == 0:
            return d
    return n


def _shape(value):
    """A shape given as a tuple of ints (None allowed), or an array's shape."""
    if isinstance(value, (tuple, list)) and all(
        d is None or isinstance(d, numbers.Integral) for d in value
    ):
        return tuple(value)
    shape = getattr(value, "shape", None)
    return tuple(np.shape(value) if shape is None else shape)


def default_tokenizers(
    x, embed_dim=48, max_tokens=16, embedding_modalities=(), num_frequencies=16
):
    """Picks a tokenizer for each modality from its shape.

    - (N, F): `TabularTokenizer` (one token per variable), or
      `EmbeddingTokenizer` (one token) for names in `embedding_modalities`;
    - (N, T, C): `TimeSeriesTokenizer` with the smallest `patch_len` that
      divides T and gives at most `max_tokens` tokens;
    - (N, H, W, C): `ImagePatchTokenizer` with the smallest square patch
      that divides H and W and gives at most `max_tokens` tokens.

    Args:
        x: dict `{modality: shape}`, a shape being a tuple whose first
            entry is the batch (any value, None too), e.g. `(None, 20)`; or
            `{modality: array}` (its shape is read), or anything with a
            `shape` (a `tf.TensorSpec`, a `keras.KerasTensor`).
        embed_dim: the token size D shared by all modalities.
        max_tokens: the token budget per series or image modality.
        embedding_modalities: names of (N, E) modalities holding
            precomputed embeddings (one token each).
        num_frequencies: periodic frequencies of the tabular tokenizer.

    Returns:
        dict `{modality: tokenizer}` in the order of `x`.

    Example:

    >>> shapes = {"env": (None, 20), "climate": (None, 48, 4),
    ...           "image": (None, 16, 16, 4)}
    >>> {k: type(v).__name__ for k, v in default_tokenizers(shapes).items()}
    {'env': 'TabularTokenizer', 'climate': 'TimeSeriesTokenizer', 'image': 'ImagePatchTokenizer'}

    Reference:
        Zbinden et al., "MaskSDM with Shapley values ...", 2025 (one token
        per variable); Dosovitskiy et al., ICLR 2021 (image patches).
    """
    tokenizers = {}
    for name, values in x.items():
        shape = _shape(values)
        if len(shape) == 2:
            if name in embedding_modalities:
                tokenizers[name] = EmbeddingTokenizer(
                    embed_dim, name=f"{name}_tokenizer"
                )
            else:
                tokenizers[name] = TabularTokenizer(
                    embed_dim, num_frequencies=num_frequencies, name=f"{name}_tokenizer"
                )
        elif len(shape) == 3:
            steps = shape[1]
            patch_len = _largest_divisor_at_least(steps, -(-steps // max_tokens))
            tokenizers[name] = TimeSeriesTokenizer(
                embed_dim, patch_len=patch_len, name=f"{name}_tokenizer"
            )
        elif len(shape) == 4:
            side = min(shape[1], shape[2])
            patch = side
            for p in range(1, side + 1):
                if shape[1] % p == 0 and shape[2] % p == 0:
                    if (shape[1] // p) * (shape[2] // p) <= max_tokens:
                        patch = p
                        break
            tokenizers[name] = ImagePatchTokenizer(
                embed_dim, patch_size=patch, name=f"{name}_tokenizer"
            )
        else:
            raise ValueError(
                f"Modality '{name}': cannot choose a tokenizer for an array of "
                f"shape {shape}; expected (N, F), (N, T, C) or (N, H, W, C)."
            )
    return tokenizers
