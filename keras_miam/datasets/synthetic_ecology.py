"""A seeded multimodal species-distribution testbed with known imbalance."""

import itertools
import numbers

import numpy as np
from scipy import ndimage

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import positive_int

MODALITIES = ("env", "climate", "landsat", "image")
LATENTS = ("temperature", "moisture", "soil", "land_use")
UNIQUE_LATENT = "habitat_texture"
# With `redundancy`, the latent the image texture shares with env (only env
# measures it among the other modalities).
REDUNDANT_LATENT = "soil"
IMBALANCE_PRESETS = {"strong": 3.0, "mild": 1.0}
DEFAULT_MISSING = {"env": 0.05, "climate": 0.02, "landsat": 0.15, "image": 0.2}
CLIMATE_CHANNELS = ("pr", "tas", "tasmax", "tasmin")
LANDSAT_CHANNELS = ("red", "green", "blue", "nir", "swir1", "swir2")
IMAGE_CHANNELS = ("red", "green", "blue", "nir")

# Total logit scale of a species' effects (sd of the linear predictor around
# its intercept), and the fraction of species driven by the image texture.
TOTAL_EFFECT = 2.5
# Observation model (all values already on a roughly standardised scale).
ENV_NOISE = 0.4
CLIMATE_LOADINGS = {"tas": ("temperature", 0.8), "pr": ("moisture", 0.7)}
LANDSAT_VIGOUR = {"moisture": 0.6, "land_use": -0.6}
# Channel means (R, G, B, NIR) of an image: a land-cover colour driven by
# land use and a vegetation-greenness colour driven by moisture, each seen
# through per-site noise (weight, noise sd).
IMAGE_COLOUR = (0.6, 0.4, 0.5, -0.7)  # land-cover direction
IMAGE_GREENNESS = (-0.2, 0.7, -0.5, 0.4)  # vegetation direction
IMAGE_COLOUR_SIGNAL = {"land_use": (0.8, 0.5), "moisture": (0.7, 0.5)}
IMAGE_TEXTURE_GAIN = (-0.5, 0.3, 0.0, 1.0)  # texture weight per channel
IMAGE_PIXEL_NOISE = 0.3
IMAGE_CLUTTER = 0.4

# Independent random streams, so that e.g. the labels do not change when a
# modality subset is requested.
_STREAM_SPECIES, _STREAM_LATENTS, _STREAM_LABELS = 0, 1, 2
_STREAM_MODALITY = {"env": 3, "climate": 4, "landsat": 5, "image": 6}
_STREAM_MISSING = {"env": 7, "climate": 8, "landsat": 9, "image": 10}
_STREAM_CALIBRATION = 11
_CALIBRATION_SIZE = 20000


def make_synthetic_ecology(
    num_examples=10000,
    num_species=20,
    modalities=MODALITIES,
    imbalance="strong",
    missing=None,
    seed=0,
    num_env_features=20,
    climate_steps=48,
    landsat_steps=24,
    image_size=16,
    image_species_fraction=0.4,
    prevalence_range=(0.05, 0.5),
    redundancy=None,
    image_code="texture",
):
    """Generates a multimodal presence/absence dataset with a known imbalance.

    GeoPlant's modality kinds at CPU-friendly sizes, every effect returned in
    `info`. Each site has latents `z = (temperature, moisture, soil,
    land_use)` and a habitat latent `h`; species `s` is present with
    probability `sigmoid(b_s + a_env,s * w_s . z + a_img,s * u_s * h)`, `b_s`
    calibrated to a prevalence in `prevalence_range`. A fraction
    `image_species_fraction` of the species respond to `h`, with `a_env =
    2.5 r / sqrt(1 + r^2)` and `a_img = 2.5 / sqrt(1 + r^2)` for the
    imbalance ratio `r`. "env" `(N, num_env_features)` measures `z` (dominant);
    "climate" `(N, climate_steps, 4)` and "landsat" `(N, landsat_steps, 6)`
    are seasonal series of some latents; "image" `(N, image_size,
    image_size, 4)` alone shows `h` (a grating's contrast). With
    `redundancy=rho`, `h = rho * soil + sqrt(1 - rho^2) * u` and `image_code`
    says how the image shows `h`: "texture", "product", "patch_product" or
    "quadrant_product". Missing values are NaN, half whole modalities, half
    partial gaps.

    Args:
        num_examples: int > 0, number of sites.
        num_species: int > 0, number of species (label columns).
        modalities: names among "env", "climate", "landsat", "image".
        imbalance: "strong" (r = 3), "mild" (r = 1), or a float `r` > 0.
        missing: None (env 0.05, climate 0.02, landsat 0.15, image 0.2), a
            float for every modality, or a dict `{modality: rate}`.
        seed: int, seeds every random stream.
        num_env_features: int >= 4, env variables.
        climate_steps: int > 0, monthly steps.
        landsat_steps: int > 0, quarterly steps.
        image_size: int >= 4, patch height and width.
        image_species_fraction: float in [0, 1].
        prevalence_range: (low, high), 0 < low <= high < 1.
        redundancy: None, or a float `rho` in [0, 1].
        image_code: how the image shows `h` (see above).

    Returns:
        `(x, y, info)`: `x` a dict {modality: float32 array}, `y` the
        float32 `(num_examples, num_species)` presences, `info` a JSON-ready
        dict of the ground truth.

    Example:

    >>> x, y, info = keras_miam.datasets.make_synthetic_ecology(256, seed=0)
    >>> x["image"].shape, y.shape
    ((256, 16, 16, 4), (256, 20))

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026.
    """
    num_examples = positive_int(num_examples, "num_examples")
    num_species = positive_int(num_species, "num_species")
    num_env_features = positive_int(num_env_features, "num_env_features", 4)
    climate_steps = positive_int(climate_steps, "climate_steps")
    landsat_steps = positive_int(landsat_steps, "landsat_steps")
    image_size = positive_int(image_size, "image_size", 4)
    modalities = check_modalities(modalities, MODALITIES)
    if isinstance(imbalance, str) and imbalance in IMBALANCE_PRESETS:
        ratio, imbalance_name = IMBALANCE_PRESETS[imbalance], imbalance
    elif _real(imbalance) and np.isfinite(imbalance) and imbalance > 0:
        ratio, imbalance_name = float(imbalance), "custom"
    else:
        raise ValueError(
            "`imbalance` must be 'strong', 'mild' or a positive float (the env "
            f"to image effect ratio); received {imbalance!r}."
        )
    if missing is None:
        rates = {m: DEFAULT_MISSING[m] for m in modalities}
    elif isinstance(missing, dict):
        if unknown := sorted(set(missing) - set(MODALITIES)):
            raise ValueError(
                f"`missing` has unknown modality name(s) {unknown}; expected "
                f"keys among {list(MODALITIES)}."
            )
        rates = {m: float(missing.get(m, 0.0)) for m in modalities}
    else:
        rates = {m: float(missing) for m in modalities}
    if bad := {m: r for m, r in rates.items() if not 0.0 <= r < 1.0}:
        raise ValueError(f"Missing rate(s) {bad} must be in [0, 1).")
    if not 0.0 <= float(image_species_fraction) <= 1.0:
        raise ValueError(
            "`image_species_fraction` must be in [0, 1]; received "
            f"{image_species_fraction!r}."
        )
    low, high = map(float, prevalence_range)
    if not 0.0 < low <= high < 1.0:
        raise ValueError(
            "`prevalence_range` must be (low, high) with 0 < low <= high < 1; "
            f"received {prevalence_range!r}."
        )
    if redundancy is not None and not (_real(redundancy) and 0 <= redundancy <= 1):
        raise ValueError(
            f"`redundancy` must be None or a float in [0, 1]; received {redundancy!r}."
        )
    rho = None if redundancy is None else float(redundancy)
    codes = ("texture", "product", "patch_product", "quadrant_product")
    if image_code not in codes or (image_code != "texture" and rho is None):
        raise ValueError(
            f"`image_code` must be one of {codes}, other than 'texture' only "
            f"with a `redundancy`; received image_code={image_code!r}, "
            f"redundancy={redundancy!r}."
        )

    species = _species_model(
        seed, num_species, ratio, image_species_fraction, low, high
    )
    rng = np.random.default_rng([seed, _STREAM_LATENTS])
    z = rng.standard_normal((num_examples, len(LATENTS)))
    h = rng.standard_normal(num_examples)
    if rho is not None:
        soil = z[:, LATENTS.index(REDUNDANT_LATENT)]
        h = rho * soil + np.sqrt(1.0 - rho**2) * h
    logits = species["intercept"] + z @ species["env_coef"].T
    logits = logits + h[:, None] * species["image_coef"][None, :]
    rng = np.random.default_rng([seed, _STREAM_LABELS])
    y = (rng.random(logits.shape) < _sigmoid(logits)).astype("float32")

    renderers = {
        "env": lambda r: _render_env(r, z, num_env_features),
        "climate": lambda r: _render_climate(r, z, climate_steps),
        "landsat": lambda r: _render_landsat(r, z, landsat_steps),
        "image": lambda r: _render_image(r, z, h, image_size, rho is None, image_code),
    }
    x, modality_info = {}, {}
    for name in modalities:
        rng = np.random.default_rng([seed, _STREAM_MODALITY[name]])
        values, details = renderers[name](rng)
        rng = np.random.default_rng([seed, _STREAM_MISSING[name]])
        values = _apply_missing(rng, name, values, rates[name])
        x[name] = values.astype("float32")
        details.update(
            shape=list(values.shape),
            missing_rate=rates[name],
            nan_fraction=float(np.isnan(values).mean()),
        )
        modality_info[name] = details

    if rho is not None and "image" in modality_info:
        reveals = ([REDUNDANT_LATENT] if rho > 0 else []) + (
            [UNIQUE_LATENT] if rho < 1 else []
        )
        modality_info["image"].update(reveals=reveals, unique=rho < 1)

    info = {
        "seed": int(seed),
        "num_examples": num_examples,
        "num_species": num_species,
        "modalities": modality_info,
        "dominant_modality": "env" if "env" in modalities else None,
        "weak_modality": "image" if "image" in modalities else None,
        "latents": list(LATENTS),
        "unique_latent": UNIQUE_LATENT,
        "redundancy": None
        if rho is None
        else {
            "rho": rho,
            "latent": REDUNDANT_LATENT,
            "image_colour": False,
            "image_code": image_code,
        },
        "imbalance": {
            "name": imbalance_name,
            "ratio": ratio,
            "total_effect": TOTAL_EFFECT,
            "env_scale_image_species": species["env_scale_image"],
            "image_scale": species["image_scale"],
            "env_scale_other_species": TOTAL_EFFECT,
        },
        "missing": dict(rates),
        "species": species["records"],
        "prevalence": [float(v) for v in y.mean(axis=0)],
    }
    return x, y, info


def _species_model(seed, num_species, ratio, image_fraction, low, high):
    """Draws the species' effects and calibrates their intercepts."""
    rng = np.random.default_rng([seed, _STREAM_SPECIES])
    num_latents = len(LATENTS)
    directions = np.zeros((num_species, num_latents))
    for s in range(num_species):
        drivers = rng.choice(num_latents, size=2, replace=False)
        weights = rng.normal(size=2)
        directions[s, drivers] = weights / np.linalg.norm(weights)
    num_image = int(round(image_fraction * num_species))
    image_species = np.zeros(num_species, bool)
    image_species[rng.choice(num_species, size=num_image, replace=False)] = True
    signs = rng.choice([-1.0, 1.0], size=num_species)
    target = rng.uniform(low, high, size=num_species)

    env_scale_image = TOTAL_EFFECT * ratio / np.sqrt(1.0 + ratio**2)
    image_scale = TOTAL_EFFECT / np.sqrt(1.0 + ratio**2)
    env_scale = np.where(image_species, env_scale_image, TOTAL_EFFECT)
    env_coef = directions * env_scale[:, None]
    image_coef = np.where(image_species, signs * image_scale, 0.0)

    # Intercepts: mean sigmoid over a fixed reference sample hits the target
    # prevalence, so the species model does not depend on num_examples.
    ref = np.random.default_rng([seed, _STREAM_CALIBRATION])
    eta = ref.standard_normal((_CALIBRATION_SIZE, num_latents)) @ env_coef.T
    eta = eta + ref.standard_normal((_CALIBRATION_SIZE, 1)) * image_coef
    lo = np.full(num_species, -20.0)
    hi = np.full(num_species, 20.0)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        too_high = _sigmoid(eta + mid).mean(axis=0) > target
        hi = np.where(too_high, mid, hi)
        lo = np.where(too_high, lo, mid)
    intercept = 0.5 * (lo + hi)

    records = []
    for s in range(num_species):
        effects = {
            name: float(env_coef[s, l])
            for l, name in enumerate(LATENTS)
            if env_coef[s, l] != 0.0
        }
        drivers = list(effects)
        if image_coef[s] != 0.0:
            drivers.append(UNIQUE_LATENT)
        records.append(
            {
                "intercept": float(intercept[s]),
                "target_prevalence": float(target[s]),
                "latent_effects": effects,
                "texture_effect": float(image_coef[s]),
                "image_driven": bool(image_species[s]),
                "drivers": drivers,
            }
        )
    return {
        "intercept": intercept,
        "env_coef": env_coef,
        "image_coef": image_coef,
        "env_scale_image": float(env_scale_image),
        "image_scale": float(image_scale),
        "records": records,
    }


def _render_env(rng, z, num_features):
    latent_index = np.arange(num_features) % len(LATENTS)
    loadings = rng.uniform(0.7, 1.0, num_features)
    loadings *= rng.choice([-1.0, 1.0], num_features)
    values = z[:, latent_index] * loadings
    values += ENV_NOISE * rng.standard_normal(values.shape)
    names = [
        f"{LATENTS[l]}_{j // len(LATENTS) + 1}" for j, l in enumerate(latent_index)
    ]
    variables = [
        {"name": n, "latent": LATENTS[l], "loading": float(w)}
        for n, l, w in zip(names, latent_index, loadings)
    ]
    details = {
        "kind": "tabular",
        "channels": names,
        "reveals": list(LATENTS),
        "unique": False,
        "variables": variables,
        "noise_sd": ENV_NOISE,
    }
    return values, details


def _render_climate(rng, z, steps):
    n = z.shape[0]
    month = np.arange(steps) % 12
    season = -np.cos(2 * np.pi * month / 12.0)  # coldest in January
    wet = np.sin(2 * np.pi * month / 12.0)
    temp_latent, temp_w = CLIMATE_LOADINGS["tas"]
    moist_latent, moist_w = CLIMATE_LOADINGS["pr"]
    continentality = rng.standard_normal((n, 1))
    tas_offset = 0.5 * rng.standard_normal((n, 1))
    pr_offset = 0.6 * rng.standard_normal((n, 1))
    # AR(1) weather anomalies with stationary sd 0.4.
    shocks = rng.standard_normal((n, steps))
    anomaly = np.empty((n, steps))
    anomaly[:, 0] = shocks[:, 0]
    for t in range(1, steps):
        anomaly[:, t] = 0.5 * anomaly[:, t - 1] + np.sqrt(0.75) * shocks[:, t]
    tas = (
        temp_w * z[:, [LATENTS.index(temp_latent)]]
        + tas_offset
        + (0.9 + 0.25 * continentality) * season
        + 0.4 * anomaly
    )
    tasmax = tas + 0.35 + 0.1 * season + 0.15 * rng.standard_normal((n, steps))
    tasmin = tas - 0.35 + 0.15 * rng.standard_normal((n, steps))
    pr = (
        moist_w * z[:, [LATENTS.index(moist_latent)]]
        + pr_offset
        + 0.4 * wet
        + 0.8 * rng.standard_normal((n, steps))
    )
    values = np.stack([pr, tas, tasmax, tasmin], axis=-1)
    details = {
        "kind": "time_series",
        "channels": list(CLIMATE_CHANNELS),
        "time_unit": "month",
        "reveals": [temp_latent, moist_latent],
        "unique": False,
        "channel_loadings": {
            "pr": {moist_latent: moist_w},
            "tas": {temp_latent: temp_w},
            "tasmax": {temp_latent: temp_w},
            "tasmin": {temp_latent: temp_w},
        },
    }
    return values, details


def _render_landsat(rng, z, steps):
    n = z.shape[0]
    quarter = np.arange(steps) % 4
    season = np.sin(2 * np.pi * (quarter + 0.5) / 4.0)  # green in Q2-Q3
    moisture = z[:, [LATENTS.index("moisture")]]
    land_use = z[:, [LATENTS.index("land_use")]]
    vigour = sum(w * z[:, [LATENTS.index(name)]] for name, w in LANDSAT_VIGOUR.items())
    vigour = vigour + 0.6 * rng.standard_normal((n, 1))
    wetness = moisture + 0.6 * rng.standard_normal((n, 1))

    def noise():
        return 0.5 * rng.standard_normal((n, steps))

    red = -0.5 * vigour - 0.3 * season + noise()
    green = 0.2 * vigour + 0.1 * season + noise()
    blue = -0.3 * vigour + noise()
    nir = 0.7 * vigour + (0.5 + 0.2 * vigour) * season + noise()
    swir1 = -0.6 * wetness + noise()
    swir2 = -0.4 * wetness + 0.4 * land_use + noise()
    values = np.stack([red, green, blue, nir, swir1, swir2], axis=-1)
    details = {
        "kind": "time_series",
        "channels": list(LANDSAT_CHANNELS),
        "time_unit": "quarter",
        "reveals": ["moisture", "land_use"],
        "unique": False,
        "vigour_loadings": dict(LANDSAT_VIGOUR),
        "channel_loadings": {
            "red": {k: -0.5 * w for k, w in LANDSAT_VIGOUR.items()},
            "green": {k: 0.2 * w for k, w in LANDSAT_VIGOUR.items()},
            "blue": {k: -0.3 * w for k, w in LANDSAT_VIGOUR.items()},
            "nir": {k: 0.7 * w for k, w in LANDSAT_VIGOUR.items()},
            "swir1": {"moisture": -0.6},
            "swir2": {"moisture": -0.4, "land_use": 0.4},
        },
    }
    return values, details


def _render_image(rng, z, h, size, colour_signal=True, code="texture"):
    n = z.shape[0]
    means = 0.0
    for (latent, (weight, noise)), direction in zip(
        IMAGE_COLOUR_SIGNAL.items(), (IMAGE_COLOUR, IMAGE_GREENNESS)
    ):
        colour = weight * z[:, LATENTS.index(latent)] * float(colour_signal)
        colour = colour + noise * rng.standard_normal(n)
        means = means + colour[:, None] * np.asarray(direction)[None, :]

    quadrants = None
    half = size // 2
    if code in ("product", "quadrant_product"):
        sign = rng.choice([-1.0, 1.0], n)
        colour = (
            (means if code == "product" else 0.0)
            + (sign + 0.5 * rng.standard_normal(n))[:, None] * np.asarray(IMAGE_COLOUR)
            + (sign * h + 0.5 * rng.standard_normal(n))[:, None]
            * np.asarray(IMAGE_GREENNESS)
        )
        if code == "product":
            means = colour
        else:
            quadrants = np.zeros((n, size, size, len(IMAGE_CHANNELS)))
            quadrants[:, :half, :half, :] = colour[:, None, None, :]
        h = np.zeros_like(h)  # constant contrast: the grating shows nothing
    if code == "patch_product":
        # Quadrants top-left, top-right, bottom-left, bottom-right.
        sign = rng.choice([-1.0, 1.0], (n, 4))
        offsets = sign.copy()
        offsets[:, 3] = sign[:, 0] * h
        offsets = offsets + 0.3 * rng.standard_normal((n, 4))
        field = np.zeros((n, size, size))
        halves = (slice(0, half), slice(half, None))
        for q, (rows, cols) in enumerate(itertools.product(halves, repeat=2)):
            field[:, rows, cols] = offsets[:, q, None, None]
        quadrants = field[..., None] * np.asarray(IMAGE_GREENNESS)
        h = np.zeros_like(h)

    theta = rng.uniform(0.0, np.pi, n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    freq = rng.uniform(0.18, 0.32, n)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    coord = (
        np.cos(theta)[:, None, None] * cols[None]
        + np.sin(theta)[:, None, None] * rows[None]
    )
    grating = np.sin(2 * np.pi * freq[:, None, None] * coord + phase[:, None, None])
    contrast = 0.15 + 0.85 * _sigmoid(1.7 * h)
    texture = (contrast[:, None, None] * grating)[..., None]
    texture = texture * np.asarray(IMAGE_TEXTURE_GAIN)

    clutter = _smooth_field(rng, n, size) * IMAGE_CLUTTER
    values = means[:, None, None, :] + texture + clutter[..., None]
    if quadrants is not None:
        values = values + quadrants
    values += IMAGE_PIXEL_NOISE * rng.standard_normal(values.shape)
    details = {
        "kind": "image",
        "channels": list(IMAGE_CHANNELS),
        "reveals": (list(IMAGE_COLOUR_SIGNAL) if colour_signal else [])
        + [UNIQUE_LATENT],
        "unique": True,
        "colour_signal_on": bool(colour_signal),
        "unique_latent": UNIQUE_LATENT,
        "colour_loadings": dict(zip(IMAGE_CHANNELS, IMAGE_COLOUR)),
        "colour_signal": {
            latent: {
                "weight": w,
                "noise_sd": sd,
                "direction": dict(zip(IMAGE_CHANNELS, direction)),
            }
            for (latent, (w, sd)), direction in zip(
                IMAGE_COLOUR_SIGNAL.items(), (IMAGE_COLOUR, IMAGE_GREENNESS)
            )
        },
        "texture": {
            "pattern": "sinusoidal grating, random orientation and phase",
            "frequency_range": [0.18, 0.32],
            "contrast": "0.15 + 0.85 * sigmoid(1.7 * habitat_texture)",
            "channel_gain": dict(zip(IMAGE_CHANNELS, IMAGE_TEXTURE_GAIN)),
        },
        "clutter_sd": IMAGE_CLUTTER,
        "pixel_noise_sd": IMAGE_PIXEL_NOISE,
    }
    return values, details


def _smooth_field(rng, n, size):
    """Unit-variance low-frequency random field of shape (n, size, size)."""
    coarse = max(2, size // 4)
    field = rng.standard_normal((n, coarse, coarse))
    field = ndimage.zoom(field, (1, size / coarse, size / coarse), order=1)
    field = field[:, :size, :size]
    return field / field.std(axis=(1, 2), keepdims=True).clip(1e-6)


def _apply_missing(rng, name, values, rate):
    """Writes NaN at an expected fraction `rate` of the entries."""
    if rate <= 0.0:
        return values
    values = values.copy()
    n = values.shape[0]
    absent_rate = rate / 2.0
    partial_rate = (rate - absent_rate) / (1.0 - absent_rate)
    absent = rng.random(n) < absent_rate
    if name == "env":
        holes = rng.random(values.shape) < partial_rate
    elif name in ("climate", "landsat"):
        holes = rng.random(values.shape[:2]) < partial_rate
        holes = np.broadcast_to(holes[..., None], values.shape)
    else:
        # A fraction of the images is partly cloudy; in those, a blob of a
        # jittered area fraction (mean `cover`) is missing.
        size = values.shape[1]
        cloudy_rate = min(1.0, partial_rate / 0.3)
        cover = partial_rate / cloudy_rate
        cloudy = rng.random(n) < cloudy_rate
        fraction = np.clip(cover * rng.uniform(0.5, 1.5, n), 0.0, 1.0)
        field = _smooth_field(rng, n, size).reshape(n, -1)
        field += 1e-6 * rng.standard_normal(field.shape)  # break ties
        order = np.sort(field, axis=1)
        k = np.clip(np.round((1.0 - fraction) * size * size), 0, size * size)
        k = k.astype(int)
        threshold = np.where(
            k < size * size,
            np.take_along_axis(order, np.minimum(k, size * size - 1)[:, None], 1)[:, 0],
            np.inf,
        )
        blob = field >= threshold[:, None]
        holes = (blob & cloudy[:, None]).reshape(n, size, size)
        holes = np.broadcast_to(holes[..., None], values.shape)
    values[holes] = np.nan
    values[absent] = np.nan
    return values


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
