"""Tokenizer of images: one token per non-overlapping square patch."""

import keras
from keras import ops

from keras_miam.tokenizers.tokenizer import Tokenizer

# An input whose "height" is at most this and at least 2 times smaller than
# both other axes looks like (batch, channels, height, width).
_MAX_CHANNELS_FIRST = 16


@keras.saving.register_keras_serializable(package="keras_miam")
class ImagePatchTokenizer(Tokenizer):
    """One token per non-overlapping `patch_size x patch_size` image patch.

    A channels-last `(batch, height, width, channels)` image is cut into a
    `(height // patch_size) x (width // patch_size)` grid of patches (as in
    ViT); each patch, flattened to `patch_size^2 * channels` values, is
    linearly projected to `embed_dim`. Tokens are in row-major order (row by
    row, left to right). Learned 2-D position embeddings (a row table plus a
    column table, summed) and the modality embedding are added.

    A patch is missing when all of its values are missing (NaN, +-inf,
    `|x| > 1e10` or `nodata`, e.g. `nodata=-1` for int16 GeoPlant Sentinel-2
    tiles); the missing values of a partly missing patch are zero-filled
    (see `Tokenizer`), so images should be standardised per band first.

    Args:
        embed_dim: int. The token dimension `D`.
        patch_size: int. Side of the square patches; must divide the height
            and the width of the images.
        nodata: optional float. A pixel value that marks missing data.
            Defaults to `None`.
        kernel_initializer: initializer of the projection kernel. Defaults
            to `"glorot_uniform"`.
        bias_initializer: initializer of the projection bias. Defaults to
            `"zeros"`.
        embeddings_initializer: initializer of the position and modality
            embeddings. Defaults to `TruncatedNormal(stddev=0.02)`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `dtype` and `trainable`.

    Call arguments:
        inputs: a `(batch, height, width, channels)` tensor (channels last).
            An input that looks channels-first (a "height" of at most 16
            that is at least 2 times smaller than both other axes, e.g.
            `(batch, 4, 64, 64)`) is rejected with a `ValueError`.

    Returns:
        A `(batch, num_patches, embed_dim)` tensor. `compute_mask(inputs)`
        (or `compute_availability(inputs)`) gives the
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

    def __init__(
        self,
        embed_dim,
        patch_size,
        nodata=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(
            embed_dim=embed_dim,
            nodata=nodata,
            embeddings_initializer=embeddings_initializer,
            **kwargs,
        )
        if (
            isinstance(patch_size, bool)
            or not isinstance(patch_size, int)
            or patch_size <= 0
        ):
            raise ValueError(
                f"`patch_size` must be a positive int; received {patch_size!r}."
            )
        self.patch_size = patch_size
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _check_input_shape(self, shape):
        name = f"{type(self).__name__} '{self.name}'"
        if len(shape) != 4:
            raise ValueError(
                f"{name} expects a 4-D channels-last input (batch, height, "
                f"width, channels); received shape {shape} (rank "
                f"{len(shape)})."
            )
        height, width, channels = shape[1], shape[2], shape[3]
        if None in (height, width, channels):
            raise ValueError(
                f"{name} needs known height, width and channels; received "
                f"shape {shape}."
            )
        if (
            height <= _MAX_CHANNELS_FIRST
            and width >= 2 * height
            and channels >= 2 * height
        ):
            raise ValueError(
                f"{name} expects channels-last images (batch, height, width, "
                f"channels), but shape {shape} looks channels-first (batch, "
                f"channels={height}, height={width}, width={channels}). "
                "Transpose the images, e.g. `np.transpose(x, (0, 2, 3, 1))`."
            )
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"{name}: `patch_size={self.patch_size}` must divide the image "
                f"height and width, but the images are {height}x{width} "
                f"(shape {shape}). Use a `patch_size` that divides both, or "
                "crop the images."
            )
        if self.built and (height, width, channels) != self.image_shape:
            raise ValueError(
                f"{name} was built for images of shape (batch, "
                f"{', '.join(str(s) for s in self.image_shape)}); received "
                f"shape {shape}."
            )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        self.image_shape = tuple(int(s) for s in input_shape[1:])
        height, width, channels = self.image_shape
        self.grid_shape = (height // self.patch_size, width // self.patch_size)
        self.num_tokens = self.grid_shape[0] * self.grid_shape[1]
        self.projection = keras.layers.Dense(
            self.embed_dim,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="projection",
        )
        self.projection.build((None, self.num_tokens, self.patch_size**2 * channels))
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
        self._build_modality_embedding()
        self.built = True

    def _group_values(self, inputs):
        height, width, channels = inputs.shape[1:]
        size = self.patch_size
        rows, columns = height // size, width // size
        patches = ops.reshape(inputs, (-1, rows, size, columns, size, channels))
        patches = ops.transpose(patches, (0, 1, 3, 2, 4, 5))
        return ops.reshape(patches, (-1, rows * columns, size * size * channels))

    def _embed(self, values):
        positions = ops.reshape(
            self.row_embeddings + self.column_embeddings,
            (self.num_tokens, self.embed_dim),
        )
        return self.projection(values) + positions

    def compute_output_shape(self, input_shape):
        num_tokens = (input_shape[1] // self.patch_size) * (
            input_shape[2] // self.patch_size
        )
        return (input_shape[0], num_tokens, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
