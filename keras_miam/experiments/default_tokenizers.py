"""A tokenizer per modality, chosen from the shape of its data."""

from keras_miam.tokenizers import EmbeddingTokenizer
from keras_miam.tokenizers import ImagePatchTokenizer
from keras_miam.tokenizers import TabularTokenizer
from keras_miam.tokenizers import TimeSeriesTokenizer


def default_tokenizers(
    x, embed_dim=48, max_tokens=16, embedding_modalities=(), num_frequencies=16
):
    """Picks a tokenizer for each modality from its shape.

    (N, F): `TabularTokenizer`, or `EmbeddingTokenizer` for names in
    `embedding_modalities`; (N, T, C): `TimeSeriesTokenizer`, and (N, H, W,
    C): `ImagePatchTokenizer`, with the smallest patch that divides the
    steps (or H and W) and gives at most `max_tokens` tokens.

    Args:
        x: dict `{modality: shape}` (the batch entry may be None), or
            `{modality: array}` or anything with a `shape`.
        embed_dim: the token size D shared by all modalities.
        max_tokens: the token budget per series or image modality.
        embedding_modalities: names of (N, E) precomputed embeddings.
        num_frequencies: periodic frequencies of the tabular tokenizer.

    Returns:
        dict `{modality: tokenizer}` in the order of `x`.

    Example:

    >>> shapes = {"env": (None, 20), "climate": (None, 48, 4),
    ...           "image": (None, 16, 16, 4)}
    >>> tokenizers = keras_miam.experiments.default_tokenizers(shapes)
    >>> {k: type(v).__name__ for k, v in tokenizers.items()}
    {'env': 'TabularTokenizer', 'climate': 'TimeSeriesTokenizer', 'image': 'ImagePatchTokenizer'}
    """
    tokenizers = {}
    for name, values in x.items():
        shape = tuple(getattr(values, "shape", values))
        tokenizer_name = f"{name}_tokenizer"
        if len(shape) == 2 and name in embedding_modalities:
            tokenizer = EmbeddingTokenizer(embed_dim, name=tokenizer_name)
        elif len(shape) == 2:
            tokenizer = TabularTokenizer(
                embed_dim, num_frequencies=num_frequencies, name=tokenizer_name
            )
        elif len(shape) == 3:
            steps = shape[1]
            patch_len = next(
                d for d in range(-(-steps // max_tokens), steps + 1) if steps % d == 0
            )
            tokenizer = TimeSeriesTokenizer(
                embed_dim, patch_len=patch_len, name=tokenizer_name
            )
        elif len(shape) == 4:
            height, width = shape[1:3]
            patch = next(
                (
                    p
                    for p in range(1, min(height, width) + 1)
                    if height % p == 0
                    and width % p == 0
                    and (height // p) * (width // p) <= max_tokens
                ),
                min(height, width),
            )
            tokenizer = ImagePatchTokenizer(
                embed_dim, patch_size=patch, name=tokenizer_name
            )
        else:
            raise ValueError(
                f"Modality '{name}': cannot choose a tokenizer for an array of "
                f"shape {shape}; expected (N, F), (N, T, C) or (N, H, W, C)."
            )
        tokenizers[name] = tokenizer
    return tokenizers
