"""Normalisation statistics of the GeoPlant modalities, from training surveys."""

import warnings

import numpy as np

from keras_miam.datasets.geoplant.readers import CLIMATE_VARIABLES
from keras_miam.datasets.geoplant.readers import IMAGE_CHANNELS
from keras_miam.datasets.geoplant.readers import LANDSAT_BANDS

CHANNELS = {
    "climate": CLIMATE_VARIABLES,
    "landsat": LANDSAT_BANDS,
    "image": IMAGE_CHANNELS,
}
# Statistics resting on fewer training surveys than this warn, with the count.
MIN_SURVEYS = 5


def compute_stats(source, rows, modalities, sample_size=1024, seed=0):
    """Per-channel nan-aware mean and std of the training surveys.

    "env" is read for every survey in `rows`, the series and images for a
    seeded sample of `sample_size`. A channel with fewer than two values
    raises; fewer than `MIN_SURVEYS` surveys warn; a constant channel gets
    std 1. Returns a JSON-ready `{modality: {"mean", "std", "count",
    "num_surveys", and "columns", "num_steps" or "size"}}`.
    """
    rows = np.asarray(rows)
    sample = rows
    if len(rows) > sample_size:
        rng = np.random.default_rng([seed, 1])
        sample = np.sort(rng.choice(rows, sample_size, replace=False))
    stats = {}
    for name in modalities:
        values = source.read(name, rows if name == "env" else sample)
        flat = values.reshape(-1, values.shape[-1]).astype("float64")
        count = np.sum(~np.isnan(flat), axis=0)
        channels = source.env_columns if name == "env" else CHANNELS[name]
        num_surveys = int(np.sum(~np.isnan(values.reshape(len(values), -1)).all(1)))
        thin = [str(c) for c, n in zip(channels, count) if n < 2]
        if thin:
            raise ValueError(
                f"The '{name}' statistics rest on {num_surveys} of the "
                f"{len(values)} training surveys read, and the channel(s) "
                f"{thin[:8]} have fewer than 2 values: they cannot be "
                "normalised. Leave the modality out, use other training data "
                "(e.g. a smaller validation_fraction), or pass `stats`."
            )
        if num_surveys < MIN_SURVEYS:
            warnings.warn(
                f"The '{name}' normalisation statistics rest on {num_surveys} "
                f"training survey(s) (of {len(values)} read); they may not "
                "describe the validation and test surveys."
            )
        mean = np.nanmean(flat, axis=0)
        std = np.nanstd(flat, axis=0)
        std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        stats[name] = {
            "mean": mean.tolist(),
            "std": std.tolist(),
            "count": count.tolist(),
            "num_surveys": num_surveys,
        }
        if name == "env":
            stats[name]["columns"] = list(channels)
        elif name == "image":
            stats[name]["size"] = int(values.shape[1])
        else:
            stats[name]["num_steps"] = int(values.shape[1])
    return stats


def check_stats(stats, modalities):
    """Raises a ValueError when `stats` lacks one of `modalities`."""
    missing = [m for m in modalities if m not in stats]
    if missing:
        raise ValueError(
            f"`stats` has no statistics for {missing}; compute them with "
            "load_geoplant(root, 'train', modalities=...) using the same "
            "modalities and pass its `.stats`."
        )
