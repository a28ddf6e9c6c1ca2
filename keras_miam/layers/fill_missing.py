"""The FillMissing layer: raw modality inputs -> finite values + availability."""

import keras
from keras import ops

from keras_miam.missing import NODATA_THRESHOLD
from keras_miam.missing import is_missing


@keras.saving.register_keras_serializable(package="keras_miam")
class FillMissing(keras.layers.Layer):
    """Replaces missing values by a finite value and reports availability.

    Put it on a modality's raw input, *before* your own encoder of that
    modality: the encoder then only ever sees finite values, and the
    availability goes to `MIAMMasking(..., mask=...)`, which replaces the
    tokens of missing inputs by its mask token. This is the supported way
    to feed data with missing values to a model of your own.

    Before the encoder, because the gradient of a layer placed before
    `MIAMMasking` multiplies by its inputs: a NaN input makes its weights
    NaN even when its output is masked (0 * NaN = NaN).

    Missing values follow `keras_miam.missing.is_missing` (NaN, +-inf,
    `|x| > 1e10` or `nodata`) and are replaced by `fill_value` with
    `ops.where`, before any arithmetic. A token (by default: the whole input of the example) is
    available when at least one of its values is; a token with some values
    missing keeps its other values.

    Integer and boolean inputs are cast to float. Missing values are found
    in the variable dtype (float32 under a mixed precision policy), before
    the cast to the compute dtype.

    Args:
        nodata: optional float. A value that also marks missing data (e.g.
            `-9999`). Defaults to `None`.
        fill_value: float. The value that replaces missing values (`0`, the
            mean of standardised inputs). Defaults to `0.0`.
        token_axis: optional int. `None` (default): the whole input of an
            example is one token, for an encoder that gives one
            `(batch, D)` vector, and the availability has shape `(batch,)`.
            An axis >= 1 (e.g. `1` for `(batch, T, C)` series encoded
            step by step into `(batch, T, D)` tokens): one availability per
            index along that axis, shape `(batch, T)`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            such as `name` and `dtype`.

    Call arguments:
        inputs: a tensor `(batch, ...)`, the raw values of one modality,
            missing values encoded as NaN, +-inf, `|x| > 1e10` or `nodata`.

    Returns:
        `(values, available)`: `values` of the shape of `inputs`, in the
        compute dtype, finite, with missing values replaced by
        `fill_value`; `available` a boolean `(batch,)` (or `(batch, T)`
        with `token_axis`) tensor, `False` where every value is missing.

    Example:

    ```python
    inputs = {"env": keras.Input((20,)), "image": keras.Input((16, 16, 4))}
    env, env_ok = km.layers.FillMissing()(inputs["env"])
    img, img_ok = km.layers.FillMissing()(inputs["image"])
    env = keras.layers.Dense(64, activation="relu")(env)  # finite inputs only
    img = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(img))
    tokens, keep = km.MIAMMasking(["env", "image"])(
        {"env": env, "image": img}, mask={"env": env_ok, "image": img_ok}
    )
    ```
    """

    def __init__(self, nodata=None, fill_value=0.0, token_axis=None, **kwargs):
        super().__init__(**kwargs)
        if nodata is not None:
            nodata = float(nodata)
        fill_value = float(fill_value)
        if not abs(fill_value) <= NODATA_THRESHOLD:
            raise ValueError(
                "`fill_value` must be a finite value of magnitude <= 1e10 (a "
                f"value that is not itself missing); received {fill_value}."
            )
        if token_axis is not None and (
            isinstance(token_axis, bool)
            or not isinstance(token_axis, int)
            or token_axis < 1
        ):
            raise ValueError(
                "`token_axis` must be None (one token per example) or an int "
                f">= 1 (the axis of the tokens); received {token_axis!r}."
            )
        self.nodata = nodata
        self.fill_value = fill_value
        self.token_axis = token_axis
        self.supports_masking = False

    @property
    def input_dtype(self):
        # Keep float inputs at full precision until missing values are found.
        return self.variable_dtype

    def _check_shape(self, shape):
        shape = tuple(shape)
        rank = 2 if self.token_axis is None else self.token_axis + 1
        if len(shape) < rank:
            raise ValueError(
                f"FillMissing '{self.name}' expects inputs of shape (batch, "
                + ("features, ...)" if self.token_axis is None else "...)")
                + (
                    ""
                    if self.token_axis is None
                    else f" with a token axis {self.token_axis}"
                )
                + f"; received shape {shape} (rank {len(shape)})."
            )
        return shape

    def build(self, input_shape):
        self._check_shape(input_shape)
        self.built = True

    def call(self, inputs):
        inputs = ops.convert_to_tensor(inputs)
        self._check_shape(inputs.shape)
        values = ops.cast(inputs, self.variable_dtype)
        present = ops.logical_not(is_missing(values, self.nodata))
        values = ops.where(present, values, ops.full_like(values, self.fill_value))
        rank = len(inputs.shape)
        if self.token_axis is None:
            axes = tuple(range(1, rank))
        else:
            axes = tuple(a for a in range(1, rank) if a != self.token_axis)
        available = ops.any(present, axis=axes) if axes else present
        return ops.cast(values, self.compute_dtype), available

    def compute_output_spec(self, inputs):
        shape = self._check_shape(inputs.shape)
        if self.token_axis is None:
            available_shape = shape[:1]
        else:
            available_shape = (shape[0], shape[self.token_axis])
        return (
            keras.KerasTensor(shape, dtype=self.compute_dtype),
            keras.KerasTensor(available_shape, dtype="bool"),
        )

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "nodata": self.nodata,
                "fill_value": self.fill_value,
                "token_axis": self.token_axis,
            }
        )
        return config
