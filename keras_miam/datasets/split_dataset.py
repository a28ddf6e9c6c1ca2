"""Seeded random split of array datasets into train/validation/test parts."""

import numbers

import numpy as np


def split_dataset(x, y=None, fractions=(0.7, 0.15, 0.15), seed=0):
    """Splits examples at random into parts of the given fractions.

    Every array in `x` (an array or a dict of arrays) and `y` is indexed
    with the same seeded permutation, so examples stay aligned across
    modalities. Part sizes are `floor(fraction * N)`, the remainder going to
    the first part, and every part gets at least one example.

    Args:
        x: a numpy array, or a dict {name: array}, all with the same first
            dimension N.
        y: optional array with first dimension N (labels).
        fractions: sequence of at least two positive floats summing to 1.
        seed: int, seeds the permutation.

    Returns:
        A tuple with one `(x_part, y_part)` pair per fraction (`y_part` is
        None when `y` is None), e.g. `(train, val, test)` for three
        fractions. `x_part` has the type of `x`.

    Example:

    >>> x = {"env": np.zeros((100, 3)), "image": np.zeros((100, 4, 4, 4))}
    >>> train, val, test = split_dataset(x, np.zeros((100, 5)))
    >>> train[0]["env"].shape, val[1].shape, test[1].shape
    ((70, 3), (15, 5), (15, 5))

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026.
    """
    arrays = x if isinstance(x, dict) else {None: x}
    if not arrays:
        raise ValueError("`x` is an empty dict; expected at least one array.")
    lengths = {k: len(v) for k, v in arrays.items()}
    if y is not None:
        lengths["y"] = len(y)
    if len(set(lengths.values())) != 1:
        raise ValueError(
            "All arrays must have the same number of examples (first "
            f"dimension); received lengths {lengths}."
        )
    n = next(iter(lengths.values()))
    fractions = [float(f) for f in fractions]
    if len(fractions) < 2 or any(f <= 0 for f in fractions):
        raise ValueError(
            f"`fractions` must hold at least two positive values; received {fractions}."
        )
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(
            f"`fractions` must sum to 1; received {fractions} (sum "
            f"{sum(fractions):.6g})."
        )
    if n < len(fractions):
        raise ValueError(
            f"Cannot split {n} examples into {len(fractions)} non-empty parts."
        )
    if not isinstance(seed, numbers.Integral):
        raise ValueError(f"`seed` must be an integer; received {seed!r}.")
    sizes = [max(1, int(np.floor(f * n))) for f in fractions]
    sizes[0] = n - sum(sizes[1:])
    if sizes[0] < 1:
        raise ValueError(
            f"Cannot split {n} examples into parts of fractions {fractions}."
        )
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0] + sizes)
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        index = np.sort(order[start:stop])
        part = {k: np.asarray(v)[index] for k, v in arrays.items()}
        x_part = part[None] if None in part else part
        y_part = None if y is None else np.asarray(y)[index]
        parts.append((x_part, y_part))
    return tuple(parts)
