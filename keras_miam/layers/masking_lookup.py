"""Finding the `MIAMMasking` layer of a model (nested models included)."""

import keras

from keras_miam.layers.miam_masking import MIAMMasking


def _sublayers(layer):
    # `Model.layers` is public; plain layers keep their tracked sublayers
    # in `_layers` (Keras 3), which also covers layers nested in layers.
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    return list(getattr(layer, "_layers", ()))


def find_masking_layers(model):
    """All `MIAMMasking` layers of a model, nested models and layers included.

    Args:
        model: a Keras model (or layer).

    Returns:
        A list of distinct `MIAMMasking` instances, in depth-first order.
    """
    if isinstance(model, MIAMMasking):
        return [model]
    found, seen = [], set()
    stack = list(reversed(_sublayers(model)))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, MIAMMasking):
            found.append(layer)
        stack.extend(reversed(_sublayers(layer)))
    return found


def get_masking_layer(model, masking=None):
    """The `MIAMMasking` layer of a model.

    Args:
        model: a Keras model.
        masking: None (the model must hold exactly one `MIAMMasking`), a
            layer name, or a `MIAMMasking` instance (which must be part of
            the model).

    Returns:
        The `MIAMMasking` instance.

    Raises:
        ValueError: if no layer matches, or several do and none is named.
    """
    layers = find_masking_layers(model)
    model_name = getattr(model, "name", type(model).__name__)
    if isinstance(masking, MIAMMasking):
        if not any(layer is masking for layer in layers):
            raise ValueError(
                f"The MIAMMasking layer '{masking.name}' passed as `masking` "
                f"is not a layer of the model '{model_name}'."
            )
        return masking
    if masking is not None and not isinstance(masking, str):
        raise ValueError(
            "`masking` must be None, a layer name or a MIAMMasking "
            f"instance; received {masking!r}."
        )
    if not layers:
        raise ValueError(
            f"The model '{model_name}' has no MIAMMasking layer (searched "
            "recursively, nested models included). Modality scores are "
            "measured by hiding modalities with MIAMMasking; add one to the "
            "model."
        )
    if masking is not None:
        named = [layer for layer in layers if layer.name == masking]
        if not named:
            raise ValueError(
                f"No MIAMMasking layer named '{masking}' in the model "
                f"'{model_name}'; its MIAMMasking layers are "
                f"{[layer.name for layer in layers]}."
            )
        return named[0]
    if len(layers) > 1:
        raise ValueError(
            f"The model '{model_name}' has {len(layers)} MIAMMasking layers "
            f"({[layer.name for layer in layers]}); pass the one to use as "
            "`masking` (a layer name or instance)."
        )
    return layers[0]
