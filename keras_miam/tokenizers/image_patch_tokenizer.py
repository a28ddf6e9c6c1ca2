"""Tokenizer of images: one token per non-overlapping square patch."""

import keras
from keras import ops

from keras_miam.tokenizers.tokenizer import Tokenizer
from keras_miam.tokenizers.tokenizer import positive_int


@keras.saving.register_keras_serializable(package="keras_miam")
class ImagePatchTokenizer(Tokenizer):
    """One token per non-overlapping `patch_size x patch_size` image patch.

    A channels-last image is cut into a grid of patches, as in ViT; each
    patch, flattened to `patch_size^2 * channels` values, is linearly
    projected to `embed_dim`. Tokens are in row-major order. Learned 2-D
    position embeddings (a row table plus a column table) and the modality
    embedding are added. A patch whose values are all missing is unavailable
    (see `Tokenizer`), so images should be standardised per band first.

    Args:
        embed_dim: int. The token dimension.
        patch_size: int. Side of the square patches; must divide the height
            and the width of the images.
        **kwargs: `nodata` (e.g. `-1` for int16 GeoPlant Sentinel-2 tiles),
            the initializers and the other arguments of
            `keras_miam.tokenizers.Tokenizer`.

    Call arguments:
        inputs: a `(batch, height, width, channels)` tensor. An input that
            looks channels-first (a "height" of at most 16, at least 2 times
            smaller than both other axes, e.g. `(batch, 4, 64, 64)`) is
            refused with a `ValueError`.

    Returns:
        A `(batch, num_patches, embed_dim)` tensor; its Keras mask is the
        `(batch, num_patches)` availability.

    Example:

    ```python
    tokenizer = keras_miam.tokenizers.ImagePatchTokenizer(
        embed_dim=64, patch_size=8
    )
    images = np.random.normal(size=(2, 64, 64, 4)).astype("float32")
    tokens = tokenizer(images)                     # (2, 64, 64)
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
        self.grid_shape = (height // self.patch_size, width // self.patch_size)
        self.projection = self._projection(self.patch_size**2 * channels)
        self.row_embeddings = self.add_weight(
            shape=(self.grid_shape[0], 1, self.embed_dim),
            initializer=self.embeddings_initializer,
            name="row_embeddings",
        )
        self.column_embeddings = self.add_weight(
            shape=(1, self.grid_shape[1], self.embed_dim),
            initializer=self.embeddings_initializer,
            name="column_embeddings",
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
        config = super().get_config()
        config["patch_size"] = self.patch_size
        return config
