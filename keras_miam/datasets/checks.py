"""Input checks and value cleaning shared by the dataset loaders."""

import numbers

import numpy as np

from keras_miam.missing import is_missing


def check_modalities(modalities, known):
    """`modalities` (a name or names) as a tuple, checked against `known`."""
    modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    unknown = [m for m in modalities if m not in known]
    if unknown or not modalities or len(set(modalities)) != len(modalities):
        raise ValueError(
            f"`modalities` must be a non-empty subset of {list(known)}, without "
            f"duplicates; received {list(modalities)} (unknown: {unknown})."
        )
    return modalities


def positive_int(value, name, minimum=1):
    """`value` as an int; a ValueError naming `name` unless an int >= minimum."""
    integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integer or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; received {value!r}."
        )
    return int(value)


def to_float32(values):
    """`values` as float32, NaN where `keras_miam.missing.is_missing`."""
    values = np.asarray(values, "float64")
    return np.where(is_missing(values, xp=np), np.nan, values).astype("float32")
