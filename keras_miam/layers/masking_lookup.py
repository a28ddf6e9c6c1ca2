"""Finding the `MIAMMasking` layer of a model (nested models included)."""

import keras

from keras_miam.layers.miam_masking import MIAMMasking


def find_masking_layers(model):
    """All distinct `MIAMMasking` layers of a model (or layer), depth first,
    nested models and layers included."""
    found, seen, stack = [], set(), [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, MIAMMasking):
            found.append(layer)
        # `Model.layers` is public; plain layers track sublayers in `_layers`.
        children = layer.layers if isinstance(layer, keras.Model) else None
        stack.extend(reversed(children or getattr(layer, "_layers", [])))
    return found


def get_masking_layer(model, masking=None):
    """The `MIAMMasking` layer of a Keras model: the only one (`masking=None`),
    the one of that name (a string) or `masking` itself (an instance)."""
    layers = find_masking_layers(model)
    names = [layer.name for layer in layers]
    where = f"model '{getattr(model, 'name', type(model).__name__)}'"
    if isinstance(masking, MIAMMasking):
        if not any(layer is masking for layer in layers):
            raise ValueError(
                f"The MIAMMasking layer '{masking.name}' passed as `masking` "
                f"is not a layer of the {where}."
            )
        return masking
    if not layers:
        raise ValueError(
            f"The {where} has no MIAMMasking layer (nested models "
            "included); modality scores are measured by hiding modalities "
            "with MIAMMasking: add one to the model."
        )
    if masking is not None and masking not in names:
        raise ValueError(
            f"No MIAMMasking layer named '{masking}' in the {where}; its "
            f"MIAMMasking layers are {names}."
        )
    if masking is None and len(layers) > 1:
        raise ValueError(
            f"The {where} has {len(layers)} MIAMMasking layers "
            f"{names}; pass the one to use as `masking` (a name or instance)."
        )
    return layers[names.index(masking) if masking else 0]
