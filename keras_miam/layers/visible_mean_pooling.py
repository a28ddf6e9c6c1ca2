"""The VisibleMeanPooling layer: mean over visible tokens, finite when none is."""

import keras
from keras import ops


def visible_mean(x, keep):
    """Mean of `x` (batch, T, D) over the tokens where `keep` (batch, T) is
    True; over all tokens where no token of the example is kept. In float32."""
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

    The pooling to put after `MIAMMasking`, in place of
    `keras.layers.GlobalAveragePooling1D()(tokens, mask=keep)`: that layer
    divides 0 by 0, hence predicts NaN, for an example with no visible
    token (every modality missing, or `set_visible(["env"])` on an example
    whose env is missing). Here such an example averages all its tokens,
    which `MIAMMasking` has replaced by its mask tokens: the prediction is
    finite, the same for every such example, and is the model's learned
    "nothing observed" prediction. Elsewhere it equals
    `GlobalAveragePooling1D(tokens, mask=keep)`. The mean is computed in
    float32 (mixed precision: the result is cast to the compute dtype).

    `MultimodalTransformer(pooling="mean")` pools the same way.

    Args:
        **kwargs: keyword arguments passed to `keras.layers.Layer`, such as
            `name` and `dtype`.

    Call arguments:
        inputs: tokens, `(batch, T, D)`.
        mask: optional boolean `(batch, T)`, True = visible (the keep mask
            returned by `MIAMMasking`). `None`: the mean of all tokens.

    Returns:
        `(batch, D)`, in the compute dtype.

    Example:

    ```python
    tokens, keep = km.MIAMMasking(["env", "image"])(features, mask=available)
    pooled = km.layers.VisibleMeanPooling()(tokens, mask=keep)
    ```
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _check_shapes(self, shape, mask_shape):
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(
                f"VisibleMeanPooling '{self.name}' expects tokens of shape "
                f"(batch, tokens, dim); received shape {shape}."
            )
        if mask_shape is not None:
            mask_shape = tuple(mask_shape)
            if len(mask_shape) != 2 or any(
                a is not None and b is not None and a != b
                for a, b in zip(mask_shape, shape[:2])
            ):
                raise ValueError(
                    f"VisibleMeanPooling '{self.name}' expects a mask of shape "
                    f"(batch, tokens) = {shape[:2]}, one boolean per token; "
                    f"received shape {mask_shape}."
                )
        return shape

    def call(self, inputs, mask=None):
        self._check_shapes(
            inputs.shape, None if mask is None else ops.convert_to_tensor(mask).shape
        )
        return ops.cast(visible_mean(inputs, mask), self.compute_dtype)

    def compute_output_spec(self, inputs, mask=None):
        shape = self._check_shapes(inputs.shape, None if mask is None else mask.shape)
        return keras.KerasTensor((shape[0], shape[2]), dtype=self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return None
