"""Input checks shared by the dataset loaders: modalities and counts."""

import numbers


def check_modalities(modalities, known):
    """Validates a selection of modality names against the known ones.

    Shared by the dataset loaders: a single name is read as a one-element
    selection, and the order of `modalities` is kept.

    Args:
        modalities: a modality name, or a sequence of names.
        known: sequence of the names the loader supports.

    Returns:
        The tuple of selected names.

    Raises:
        ValueError: when a name is unknown, the selection is empty or it has
            duplicates.

    Example:

    >>> check_modalities("image", ("env", "image"))
    ('image',)
    >>> check_modalities(["env", "sound"], ("env", "image"))
    Traceback (most recent call last):
    ...
    ValueError: Unknown modality name(s) ['sound']. Expected a non-empty subset of ['env', 'image'].
    """  # noqa: E501
    if isinstance(modalities, str):
        modalities = (modalities,)
    modalities = tuple(modalities)
    if not modalities:
        raise ValueError(
            f"`modalities` is empty. Expected a non-empty subset of {list(known)}."
        )
    unknown = [m for m in modalities if m not in known]
    if unknown:
        raise ValueError(
            f"Unknown modality name(s) {unknown}. Expected a non-empty subset "
            f"of {list(known)}."
        )
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"`modalities` has duplicates: {list(modalities)}.")
    return modalities


def positive_int(value, name, minimum=1):
    """Returns `value` as an int, or raises if it is not an integer >= minimum.

    Args:
        value: the value to check (booleans are refused).
        name: str, the argument's name, for the error message.
        minimum: int, the smallest accepted value. Defaults to 1.

    Example:

    >>> positive_int(3, "batch_size")
    3
    >>> positive_int(0, "batch_size")
    Traceback (most recent call last):
    ...
    ValueError: `batch_size` must be an integer >= 1; received 0.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; received {value!r}."
        )
    return int(value)
