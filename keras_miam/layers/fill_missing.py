"""The FillMissing layer: raw modality inputs -> finite values + availability."""

import keras
from keras import ops

from keras_miam.missing import NODATA_THRESHOLD
from keras_miam.missing import is_missing


@keras.saving.register_keras_serializable(package="keras_miam")
class FillMissing(keras.layers.Layer):
    """Replaces missing values by a finite value and reports availability.

    Put it on a modality's raw input, before your own encoder of it: the
    encoder sees only finite values (a NaN input makes the gradient NaN even
    where the output is masked) and the availability goes to
    `keras_miam.layers.MIAMMasking(..., mask=...)`. Missing values
    (`keras_miam.missing.is_missing`, or `nodata`) are found in the variable
    dtype; a token is available when at least one of its values is.

    Args:
        nodata: optional float, a value that also marks missing data.
        fill_value: float, the value that replaces missing values. Defaults
            to `0.0`.
        token_axis: optional int. `None` (default): the input of an example
            is one token. An axis >= 1: one token per index along it.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a tensor `(batch, ...)`, the raw values of one modality.

    Returns:
        `(values, available)`: finite values of the shape of `inputs`, and
        the boolean availability, `(batch,)` or `(batch, T)`.

    Example:

    ```python
    env, env_ok = keras_miam.layers.FillMissing()(keras.Input((20,)))
    env = keras.layers.Dense(64, activation="relu")(env)  # finite inputs only
    tokens, keep = keras_miam.layers.MIAMMasking(["env"])(env, mask=env_ok)
    ```
    """

    def __init__(self, nodata=None, fill_value=0.0, token_axis=None, **kwargs):
        super().__init__(**kwargs)
        if not abs(float(fill_value)) <= NODATA_THRESHOLD:
            raise ValueError(
                "`fill_value` must be a finite value of magnitude <= 1e10 (not "
                f"itself missing); received {fill_value}."
            )
        if token_axis is not None and (type(token_axis) is not int or token_axis < 1):
            raise ValueError(
                "`token_axis` must be None (one token per example) or an int "
                f">= 1 (the axis of the tokens); received {token_axis!r}."
            )
        self.nodata = None if nodata is None else float(nodata)
        self.fill_value = float(fill_value)
        self.token_axis = token_axis

    @property
    def input_dtype(self):
        # Missing values are found before the cast to the compute dtype.
        return self.variable_dtype

    def compute_output_spec(self, inputs):
        shape = tuple(inputs.shape)
        axis = self.token_axis or 0
        if len(shape) < max(2, axis + 1):
            raise ValueError(
                f"FillMissing '{self.name}' expects inputs of shape (batch, "
                f"...) of rank >= {max(2, axis + 1)} (token_axis="
                f"{self.token_axis}); received shape {shape}."
            )
        tokens = (shape[axis],) if axis else ()
        return (
            keras.KerasTensor(shape, dtype=self.compute_dtype),
            keras.KerasTensor(shape[:1] + tokens, dtype="bool"),
        )

    def call(self, inputs):
        inputs = ops.convert_to_tensor(inputs)
        self.compute_output_spec(inputs)
        values = ops.cast(inputs, self.variable_dtype)
        present = ops.logical_not(is_missing(values, self.nodata))
        values = ops.where(present, values, ops.full_like(values, self.fill_value))
        axes = tuple(a for a in range(1, len(values.shape)) if a != self.token_axis)
        available = ops.any(present, axis=axes) if axes else present
        return ops.cast(values, self.compute_dtype), available

    def get_config(self):
        return {
            **super().get_config(),
            "nodata": self.nodata,
            "fill_value": self.fill_value,
            "token_axis": self.token_axis,
        }
