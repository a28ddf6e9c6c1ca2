"""The VisibleMeanPooling layer: mean over visible tokens, finite when none is."""

import keras
from keras import ops


def visible_mean(x, keep):
    """Mean of `x` `(batch, T, D)` over the tokens where `keep` `(batch, T)`
    is True; over all tokens where no token of the example is. In float32."""
    x = ops.cast(x, "float32")
    if keep is None:
        return ops.mean(x, axis=1)
    weights = ops.cast(keep, "float32")
    any_visible = ops.any(ops.cast(keep, "bool"), axis=1, keepdims=True)
    weights = ops.where(any_visible, weights, ops.ones_like(weights))
    total = ops.sum(x * weights[:, :, None], axis=1)
    return total / ops.sum(weights, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="keras_miam")
class VisibleMeanPooling(keras.layers.Layer):
    """Mean over the visible tokens; over all tokens when none is visible.

    The pooling after `keras_miam.layers.MIAMMasking`: it equals
    `keras.layers.GlobalAveragePooling1D()(tokens, mask=keep)` except for an
    example with no visible token, where that layer divides 0 by 0 and this
    one averages the mask tokens (a finite "nothing observed" prediction).
    The mean is computed in float32.

    Call arguments:
        inputs: tokens, `(batch, T, D)`.
        mask: optional boolean `(batch, T)`, `True` = visible.

    Returns:
        `(batch, D)`, in the compute dtype.

    Example:

    ```python
    tokens, keep = keras_miam.layers.MIAMMasking(["env", "image"])(features)
    pooled = keras_miam.layers.VisibleMeanPooling()(tokens, mask=keep)
    ```
    """

    def compute_output_spec(self, inputs, mask=None):
        shape = tuple(inputs.shape)
        received = None if mask is None else tuple(mask.shape)
        bad_mask = received is not None and len(received) != 2
        bad_mask |= any(a and b and a != b for a, b in zip(received or (), shape))
        if len(shape) != 3 or bad_mask:
            raise ValueError(
                f"VisibleMeanPooling '{self.name}' expects tokens of shape "
                "(batch, tokens, dim) and a mask of shape (batch, tokens), one "
                f"boolean per token; received shapes {shape} and {received}."
            )
        return keras.KerasTensor((shape[0], shape[2]), dtype=self.compute_dtype)

    def call(self, inputs, mask=None):
        self.compute_output_spec(inputs, mask)
        return ops.cast(visible_mean(inputs, mask), self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return None
