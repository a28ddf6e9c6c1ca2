"""Normalisation statistics of the GeoPlant modalities, from training surveys."""

import warnings

import numpy as np

from keras_miam.datasets.geoplant.readers import CLIMATE_VARIABLES
from keras_miam.datasets.geoplant.readers import IMAGE_CHANNELS
from keras_miam.datasets.geoplant.readers import LANDSAT_BANDS

CHANNELS = dict(climate=CLIMATE_VARIABLES, landsat=LANDSAT_BANDS, image=IMAGE_CHANNELS)
MIN_SURVEYS = 5  # statistics on fewer training surveys warn


def compute_stats(source, rows, modalities, sample_size=1024, seed=0):
    """JSON-ready per-channel `np.nanmean` and `np.nanstd` of training surveys.

    "env" reads every survey of `rows`, the series and images a seeded
    sample of `sample_size`. A channel with fewer than two values raises,
    fewer than `MIN_SURVEYS` surveys warn, a constant channel gets std 1.
    """
    rows = sample = np.asarray(rows)
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
                f"The '{name}' statistics rest on {num_surveys} of the {len(values)} "
                f"training surveys read; channel(s) {thin[:8]} have fewer than 2 "
                "values. Leave the modality out, hold out fewer surveys, or pass `stats`."
            )
        if num_surveys < MIN_SURVEYS:
            warnings.warn(
                f"The '{name}' normalisation statistics rest on {num_surveys} "
                f"training survey(s) of the {len(values)} read."
            )
        mean, std = np.nanmean(flat, axis=0), np.nanstd(flat, axis=0)
        std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        arrays = dict(mean=mean, std=std, count=count)
        stats[name] = {k: v.tolist() for k, v in arrays.items()}
        stats[name]["num_surveys"] = num_surveys
        key = {"env": "columns", "image": "size"}.get(name, "num_steps")
        stats[name][key] = list(channels) if name == "env" else int(values.shape[1])
    return stats
