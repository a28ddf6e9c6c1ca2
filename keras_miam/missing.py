"""The one missing-value rule of keras_miam, for numpy arrays and tensors."""

from keras import ops

# Values whose magnitude exceeds this are nodata fill values (GeoPlant tables
# use e.g. -3.4e38 or 1e20), whatever a layer's `nodata` setting.
NODATA_THRESHOLD = 1e10


def is_missing(x, nodata=None, xp=ops):
    """Returns where `x` holds a missing value.

    A value is missing when it is NaN, +-inf, has a magnitude above `1e10`
    (nodata fill values such as -3.4e38) or equals `nodata` when it is set.
    Tokenizers, `FillMissing`, `MIAMMasking` and the dataset loaders all
    read missing values through this function.

    Args:
        x: array or tensor of floats.
        nodata: optional float, a value that also marks missing data.
        xp: the array namespace, `keras.ops` (default) for tensors or `numpy`
            for arrays.

    Returns:
        A boolean array or tensor of the shape of `x`.

    Example:

    >>> import numpy as np
    >>> is_missing(np.array([1.0, -3.4e38, np.inf, np.nan]), xp=np).tolist()
    [False, True, True, True]
    """
    # Not `not |x| <= T`: TensorFlow's graph optimizer rewrites that into
    # `|x| > T`, which is False for NaN.
    missing = xp.logical_or(
        xp.logical_not(xp.isfinite(x)), xp.greater(xp.abs(x), NODATA_THRESHOLD)
    )
    if nodata is not None:
        missing = xp.logical_or(missing, xp.equal(x, nodata))
    return missing
