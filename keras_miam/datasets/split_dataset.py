"""Seeded split of array datasets into parts, at random or by spatial blocks."""

import numpy as np


def split_dataset(
    x,
    y=None,
    fractions=(0.7, 0.15, 0.15),
    seed=0,
    spatial_block=None,
    coordinates=None,
):
    """Splits aligned arrays, at random or by spatial blocks, into parts.

    Every array is indexed with the same seeded selection. At random, part
    sizes are `floor(fraction * N)`, the remainder going to the first part.
    By spatial blocks, square cells of `spatial_block` degrees are shuffled
    and dealt out whole (sizes follow the fractions up to one cell), so that
    no cell is shared between parts. Every part gets at least one example.

    Args:
        x: an array, or a dict {name: array}, all of first dimension N.
        y: optional array of first dimension N (labels).
        fractions: at least two positive floats summing to 1.
        seed: int, seeds the permutation (of examples, or of cells).
        spatial_block: optional float > 0, the cell size in degrees.
        coordinates: with `spatial_block`, the `(N, 2)` longitudes and
            latitudes, or a table with "lon" and "lat" columns.

    Returns:
        A tuple of one `(x_part, y_part)` per fraction (`y_part` None
        without `y`); `x_part` has the type of `x`.

    Example:

    >>> x = {"env": np.zeros((100, 3)), "image": np.zeros((100, 4, 4, 4))}
    >>> train, val, test = split_dataset(x, np.zeros((100, 5)))
    >>> train[0]["env"].shape, val[1].shape, test[1].shape
    ((70, 3), (15, 5), (15, 5))
    """
    arrays = x if isinstance(x, dict) else {"x": x}
    lengths = {k: len(v) for k, v in arrays.items()}
    if y is not None:
        lengths["y (labels)"] = len(y)
    if len(set(lengths.values())) != 1:
        raise ValueError(
            "All arrays must have the same number of examples (first "
            f"dimension); received lengths {lengths}."
        )
    n, y = len(next(iter(arrays.values()))), None if y is None else np.asarray(y)
    fractions = [float(f) for f in fractions]
    if len(fractions) < 2 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            "`fractions` must hold at least two positive values that sum to 1; "
            f"received {fractions}."
        )
    sizes = [max(1, int(np.floor(f * n))) for f in fractions]
    sizes[0] = n - sum(sizes[1:])
    if n < len(fractions) or sizes[0] < 1:
        raise ValueError(
            f"Cannot split {n} examples into non-empty parts of {fractions}."
        )
    if spatial_block is None:
        order = np.random.default_rng(seed).permutation(n)
        indices = [np.sort(i) for i in np.split(order, np.cumsum(sizes)[:-1])]
    else:
        indices = spatial_parts(coordinates, spatial_block, fractions, n, seed)
    parts = [{k: np.asarray(v)[i] for k, v in arrays.items()} for i in indices]
    return tuple(
        (part if isinstance(x, dict) else part["x"], None if y is None else y[i])
        for part, i in zip(parts, indices)
    )


def spatial_parts(coordinates, spatial_block, fractions, n, seed):
    """Example indices of each part: whole cells of `spatial_block` degrees."""
    if not 0 < float(spatial_block) < np.inf:
        raise ValueError(
            "`spatial_block` must be a cell size of degrees > 0; received "
            f"{spatial_block!r}."
        )
    if coordinates is None:
        raise ValueError(
            "`spatial_block` needs `coordinates`: the (N, 2) longitudes and "
            "latitudes of the examples, or a table with 'lon' and 'lat' columns."
        )
    if hasattr(coordinates, "columns"):
        missing = {"lon", "lat"} - set(coordinates.columns)
        if missing:
            raise ValueError(
                f"`coordinates` lacks the column(s) {sorted(missing)}; it has "
                f"{list(coordinates.columns)}, and needs 'lon' and 'lat'."
            )
        coordinates = coordinates[["lon", "lat"]]
    coordinates = np.asarray(coordinates, "float64")
    if coordinates.shape != (n, 2) or not np.all(np.isfinite(coordinates)):
        raise ValueError(
            f"`coordinates` must be the ({n}, 2) finite longitudes and latitudes "
            f"of the examples; received shape {coordinates.shape}, with "
            f"{np.sum(~np.isfinite(coordinates).all(axis=-1))} non-finite row(s)."
        )
    cells = np.floor(coordinates / float(spatial_block)).astype("int64")
    _, cell, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    if len(counts) < len(fractions):
        raise ValueError(
            f"The examples fall in {len(counts)} cell(s) of {spatial_block} "
            f"degrees, fewer than the {len(fractions)} parts; use a smaller "
            "`spatial_block`."
        )
    # Each cell goes to the part its middle example falls in (cells shuffled);
    # a part left empty takes the last cell of the part with the most cells.
    order = np.random.default_rng(seed).permutation(len(counts))
    middle = np.cumsum(counts[order]) - counts[order] / 2.0
    part_of = np.searchsorted(np.cumsum(fractions)[:-1] * n, middle, side="right")
    for p in range(len(fractions)):
        if not np.any(part_of == p):
            donor = np.argmax(np.bincount(part_of, minlength=len(fractions)))
            part_of[np.flatnonzero(part_of == donor)[-1]] = p
    example_part = part_of[np.argsort(order)][cell.reshape(-1)]
    return [np.flatnonzero(example_part == p) for p in range(len(fractions))]
