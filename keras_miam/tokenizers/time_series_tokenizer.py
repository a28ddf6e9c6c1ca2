"""Tokenizer of multivariate time series: one token per time step or segment."""

import keras
import numpy as np
from keras import ops

from keras_miam.tokenizers.tokenizer import Tokenizer

# GeoPlant cube layouts: the axis order of one survey's cube, and the size of
# the within-year axis (which must follow the year axis in time order).
CUBE_LAYOUTS = {
    # Bioclimatic monthly series [4, 19, 12]: variable, year, month.
    "climate": {"axes": ("channel", "year", "season"), "season": 12},
    # Landsat quarterly series [6, 4, 21]: band, quarter, year.
    "landsat": {"axes": ("channel", "season", "year"), "season": 4},
}


@keras.saving.register_keras_serializable(package="keras_miam")
class TimeSeriesTokenizer(Tokenizer):
    """One token per time step, or per segment of `patch_len` time steps.

    A `(batch, time, channels)` series is cut into `time // patch_len`
    non-overlapping segments; each segment, flattened to
    `patch_len * channels` values, is linearly projected to `embed_dim`.
    Learned temporal position embeddings (one per segment) and the modality
    embedding are added.

    A segment is missing when all of its values are missing (NaN, +-inf,
    `|x| > 1e10` or `nodata`); the missing values of a partly missing segment
    are zero-filled (see `Tokenizer`). GeoPlant cubes are turned into
    time-ordered series by `TimeSeriesTokenizer.cube_to_series`.

    Args:
        embed_dim: int. The token dimension `D`.
        patch_len: int. Time steps per token; must divide the series length.
            Defaults to `1` (one token per time step).
        kernel_initializer: initializer of the projection kernel. Defaults
            to `"glorot_uniform"`.
        bias_initializer: initializer of the projection bias. Defaults to
            `"zeros"`.
        nodata: optional float. A value that also marks missing data.
            Defaults to `None`.
        embeddings_initializer: initializer of the position and modality
            embeddings. Defaults to `TruncatedNormal(stddev=0.02)`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `dtype` and `trainable`.

    Call arguments:
        inputs: a `(batch, time, channels)` tensor, time-ordered.

    Returns:
        A `(batch, time // patch_len, embed_dim)` tensor.
        `compute_mask(inputs)` (or `compute_availability(inputs)`) gives the
        `(batch, time // patch_len)` availability.

    Example:

    ```python
    cubes = np.random.normal(size=(8, 4, 19, 12)).astype("float32")
    series = keras_miam.tokenizers.TimeSeriesTokenizer.cube_to_series(
        cubes, layout="climate"
    )                                              # (8, 228, 4)
    tokenizer = keras_miam.tokenizers.TimeSeriesTokenizer(
        embed_dim=64, patch_len=12
    )
    tokens = tokenizer(series)                     # (8, 19, 64): one per year
    ```

    Reference:
     - [Nie et al., 2023 (PatchTST)](https://arxiv.org/abs/2211.14730)
    """

    def __init__(
        self,
        embed_dim,
        patch_len=1,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        nodata=None,
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
            isinstance(patch_len, bool)
            or not isinstance(patch_len, int)
            or patch_len <= 0
        ):
            raise ValueError(
                f"`patch_len` must be a positive int; received {patch_len!r}."
            )
        self.patch_len = patch_len
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _check_input_shape(self, shape):
        name = f"{type(self).__name__} '{self.name}'"
        if len(shape) != 3:
            raise ValueError(
                f"{name} expects a 3-D input (batch, time, channels); "
                f"received shape {shape} (rank {len(shape)}). Add a channel "
                "axis to a univariate series, and turn GeoPlant cubes into "
                "series with `TimeSeriesTokenizer.cube_to_series`."
            )
        time, channels = shape[1], shape[2]
        if time is None or channels is None:
            raise ValueError(
                f"{name} needs known time and channel axes; received shape {shape}."
            )
        if time % self.patch_len:
            raise ValueError(
                f"{name}: `patch_len={self.patch_len}` must divide the series "
                f"length, but the input has {time} time steps (shape "
                f"{shape}). Use a `patch_len` that divides {time}."
            )
        if self.built and (time, channels) != self.series_shape:
            raise ValueError(
                f"{name} was built for series of shape (batch, "
                f"{self.series_shape[0]}, {self.series_shape[1]}); received "
                f"shape {shape}."
            )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        self.series_shape = (int(input_shape[1]), int(input_shape[2]))
        self.num_tokens = self.series_shape[0] // self.patch_len
        self.projection = keras.layers.Dense(
            self.embed_dim,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="projection",
        )
        self.projection.build(
            (None, self.num_tokens, self.patch_len * self.series_shape[1])
        )
        self.position_embeddings = self.add_weight(
            shape=(self.num_tokens, self.embed_dim),
            initializer=self.embeddings_initializer,
            name="position_embeddings",
        )
        self._build_modality_embedding()
        self.built = True

    def _group_values(self, inputs):
        time, channels = inputs.shape[1], inputs.shape[2]
        return ops.reshape(
            inputs, (-1, time // self.patch_len, self.patch_len * channels)
        )

    def _embed(self, values):
        return self.projection(values) + self.position_embeddings

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] // self.patch_len, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_len": self.patch_len,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config

    @staticmethod
    def cube_to_series(cube, layout):
        """Reshapes GeoPlant time-series cubes to time-ordered series.

        GeoPlant stores one survey's series as a cube whose axes are not in
        time order. This returns `(time, channels)` series, time running
        year by year and, within a year, month by month (or quarter by
        quarter), ready for `TimeSeriesTokenizer`. With `patch_len=12`
        (climate) or `patch_len=4` (Landsat), each token is one year.

        - `"climate"`: bioclimatic monthly cubes `[4, 19, 12]` = (variable,
          year, month) -> `(228, 4)`.
        - `"landsat"`: Landsat quarterly cubes `[6, 4, 21]` = (band,
          quarter, year) -> `(84, 6)`.

        Args:
            cube: array-like, one cube `(channels, a, b)` or a batch of cubes
                `(batch, channels, a, b)` in the layout's axis order. The
                numbers of channels and years may differ from GeoPlant's;
                the within-year axis must have 12 months (climate) or 4
                quarters (Landsat).
            layout: `"climate"` or `"landsat"`.

        Returns:
            A NumPy array `(time, channels)` or `(batch, time, channels)`,
            with the cube's dtype.

        Example:

        >>> cube = np.arange(4 * 19 * 12).reshape(4, 19, 12)
        >>> series = TimeSeriesTokenizer.cube_to_series(cube, "climate")
        >>> series.shape
        (228, 4)
        >>> series[13].tolist() == cube[:, 1, 1].tolist()  # year 1, month 1
        True
        """
        if layout not in CUBE_LAYOUTS:
            raise ValueError(
                f"Unknown cube `layout` {layout!r}; expected one of "
                f"{sorted(CUBE_LAYOUTS)}."
            )
        spec = CUBE_LAYOUTS[layout]
        cube = np.asarray(cube)
        if cube.ndim not in (3, 4):
            raise ValueError(
                f"`cube_to_series` expects one {layout} cube of rank 3 "
                f"{spec['axes']} or a batch of rank 4; received shape "
                f"{cube.shape}."
            )
        batched = cube.ndim == 4
        if not batched:
            cube = cube[None]
        season_axis = 1 + spec["axes"].index("season")
        year_axis = 1 + spec["axes"].index("year")
        if cube.shape[season_axis] != spec["season"]:
            raise ValueError(
                f"A {layout} cube has axes {spec['axes']} with "
                f"{spec['season']} entries on the season axis; received shape "
                f"{cube.shape[1:]}, which has {cube.shape[season_axis]} there."
                " Check the axis order of the cube."
            )
        # (batch, channel, ., .) -> (batch, year, season, channel).
        series = np.transpose(cube, (0, year_axis, season_axis, 1))
        series = series.reshape(cube.shape[0], -1, cube.shape[1])
        return series if batched else series[0]
