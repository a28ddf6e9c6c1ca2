"""Tokenizer of images: one token per non-overlapping square patch."""

import keras
from keras import ops

from keras_miam.tokenizers.tokenizer import Tokenizer
from keras_miam.tokenizers.tokenizer import positive_int


@keras.saving.register_keras_serializable(package="keras_miam")
class ImagePatchTokenizer(Tokenizer):
    """One token per non-overlapping `patch_size x patch_size` patch, as ViT.

    Each patch of a channels-last `(batch, height, width, channels)` image,
    flattened, is projected to `embed_dim`, in row-major order; learned row
    and column position embeddings and the modality embedding are added. An
    input that looks channels-first is refused.

    Args:
        embed_dim: int. The token dimension.
        patch_size: int. Side of the patches; must divide height and width.
        **kwargs: arguments of `keras_miam.tokenizers.Tokenizer` (e.g.
            `nodata=-1` for int16 GeoPlant Sentinel-2 tiles).

    Example:

    ```python
    tokenizer = keras_miam.tokenizers.ImagePatchTokenizer(64, patch_size=8)
    images = np.random.normal(size=(2, 64, 64, 4)).astype("float32")
    tokens = tokenizer(images)  # (2, 64, 64)
    ```

    Reference:
     - [Dosovitskiy et al., 2021 (ViT)](https://arxiv.org/abs/2010.11929)
    """

    input_axes = ("height", "width", "channels")
    built_for = "images of shape (batch, {}, {}, {})"

    def __init__(self, embed_dim, patch_size, **kwargs):
        super().__init__(embed_dim, **kwargs)
        self.patch_size = positive_int(patch_size, "patch_size")

    def _check_sizes(self, name, shape):
        height, width, channels = shape[1:]
        if height <= 16 and width >= 2 * height and channels >= 2 * height:
            raise ValueError(
                f"{name} expects channels-last images (batch, height, width, "
                f"channels), but shape {shape} looks channels-first. Transpose "
                "the images, e.g. `np.transpose(x, (0, 2, 3, 1))`."
            )
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"{name}: `patch_size={self.patch_size}` must divide the image "
                f"height and width; received shape {shape}."
            )

    def _num_tokens(self, shape):
        return (shape[1] // self.patch_size) * (shape[2] // self.patch_size)

    def _build_embeddings(self):
        height, width, channels = self.built_shape
        self.grid_shape = rows, columns = (
            height // self.patch_size,
            width // self.patch_size,
        )
        self.projection = self._projection(self.patch_size**2 * channels)
        self.row_embeddings = self._weight("row_embeddings", (rows, 1, self.embed_dim))
        self.column_embeddings = self._weight(
            "column_embeddings", (1, columns, self.embed_dim)
        )

    def _group_values(self, inputs):
        height, width, channels = inputs.shape[1:]
        size = self.patch_size
        rows, columns = height // size, width // size
        patches = ops.reshape(inputs, (-1, rows, size, columns, size, channels))
        patches = ops.transpose(patches, (0, 1, 3, 2, 4, 5))
        return ops.reshape(patches, (-1, rows * columns, size * size * channels))

    def _embed(self, values):
        positions = self.row_embeddings + self.column_embeddings
        positions = ops.reshape(positions, (self.num_tokens, self.embed_dim))
        return self.projection(values) + positions

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}
