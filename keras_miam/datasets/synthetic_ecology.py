"""A seeded multimodal species-distribution testbed with known imbalance."""

import numbers

import numpy as np
from scipy import ndimage

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import positive_int

MODALITIES = ("env", "climate", "landsat", "image")
LATENTS = ("temperature", "moisture", "soil", "land_use")
IMBALANCE_PRESETS = {"strong": 3.0, "mild": 1.0}
DEFAULT_MISSING = {"env": 0.05, "climate": 0.02, "landsat": 0.15, "image": 0.2}
IMAGE_CODES = ("texture", "product", "patch_product", "quadrant_product")
# The latents each modality shows (the image's colour is off with `redundancy`).
REVEALS = {
    "env": list(LATENTS),
    "climate": ["temperature", "moisture"],
    "landsat": ["moisture", "land_use"],
    "image": ["land_use", "moisture", "habitat_texture"],
}
# Logit scale of a species' effects (sd of its predictor around the intercept).
TOTAL_EFFECT = 2.5
# Image channel (R, G, B, NIR) directions: land cover (driven by land use),
# vegetation greenness (by moisture), and the texture's gain.
IMAGE_COLOUR = np.array([0.6, 0.4, 0.5, -0.7])
IMAGE_GREEN = np.array([-0.2, 0.7, -0.5, 0.4])
IMAGE_TEXTURE_GAIN = np.array([-0.5, 0.3, 0.0, 1.0])


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

    GeoPlant's modality kinds at CPU-friendly sizes. Each site has latents
    `z = (temperature, moisture, soil, land_use)` and a habitat latent `h`;
    species `s` is present with probability `sigmoid(b_s + a_env * w_s . z +
    a_img * u_s * h)`, `b_s` calibrated to a prevalence in `prevalence_range`.
    A fraction `image_species_fraction` of the species respond to `h`, with
    `a_env = 2.5 r / sqrt(1 + r^2)` and `a_img = 2.5 / sqrt(1 + r^2)` for the
    imbalance ratio `r`. "env" `(N, num_env_features)` measures `z`
    (dominant); "climate" `(N, climate_steps, 4)` and "landsat" `(N,
    landsat_steps, 6)` are seasonal series of some latents; "image" `(N,
    image_size, image_size, 4)` alone shows `h` (a grating's contrast). With
    `redundancy=rho`, `h = rho * soil + sqrt(1 - rho^2) * u`, the image's
    colour carries no latent, and `image_code` says how the image shows `h`.
    Missing values are NaN: half whole modalities, half partial gaps. Each
    random stream has its own seed, so the labels do not depend on the
    modalities requested.

    Args:
        num_examples: int > 0, number of sites.
        num_species: int > 0, number of species (label columns).
        modalities: names among "env", "climate", "landsat", "image".
        imbalance: "strong" (r = 3), "mild" (r = 1), or a float `r` > 0.
        missing: None (env 0.05, climate 0.02, landsat 0.15, image 0.2), a
            float for every modality, or a dict `{modality: rate}`.
        seed: int, seeds every random stream.
        num_env_features: int >= 4; climate_steps: int > 0 (months);
            landsat_steps: int > 0 (quarters); image_size: int >= 4.
        image_species_fraction: float in [0, 1].
        prevalence_range: (low, high), 0 < low <= high < 1.
        redundancy: None, or a float `rho` in [0, 1].
        image_code: "texture", or with `redundancy` "product",
            "patch_product" or "quadrant_product".

    Returns:
        `(x, y, info)`: `x` a dict {modality: float32 array}, `y` the float32
        `(num_examples, num_species)` presences, `info` a JSON-ready dict of
        the ground truth: "latents", "dominant_modality", "weak_modality",
        "imbalance", "redundancy", "modalities" (each one's "nan_fraction",
        the latents it "reveals", whether it is "unique", env's
        "variables") and "species" (each one's "intercept",
        "target_prevalence", "latent_effects", "texture_effect",
        "image_driven").

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
    if missing is None:
        missing = DEFAULT_MISSING
    elif not isinstance(missing, dict):
        missing = dict.fromkeys(modalities, missing)
    if unknown := sorted(set(missing) - set(MODALITIES)):
        raise ValueError(
            f"`missing` has unknown modality name(s) {unknown}; expected keys "
            f"among {list(MODALITIES)}."
        )
    rates = {m: float(missing.get(m, 0.0)) for m in modalities}
    if bad := {m: r for m, r in rates.items() if not 0.0 <= r < 1.0}:
        raise ValueError(f"Missing rate(s) {bad} must be in [0, 1).")
    ratio = IMBALANCE_PRESETS.get(imbalance, imbalance)
    low, high = map(float, prevalence_range)
    if not (_real(ratio) and 0 < ratio < np.inf):
        raise ValueError(
            f"`imbalance` must be 'strong', 'mild' or a float > 0; received {imbalance!r}."
        )
    if not 0 <= image_species_fraction <= 1:
        raise ValueError(
            f"`image_species_fraction` must be in [0, 1]; received {image_species_fraction!r}."
        )
    if not 0 < low <= high < 1:
        raise ValueError(
            f"`prevalence_range` must be 0 < low <= high < 1; received {prevalence_range!r}."
        )
    if redundancy is not None and not (_real(redundancy) and 0 <= redundancy <= 1):
        raise ValueError(
            f"`redundancy` must be None or a float in [0, 1]; received {redundancy!r}."
        )
    codes = IMAGE_CODES if redundancy is not None else IMAGE_CODES[:1]
    if image_code not in codes:
        raise ValueError(
            f"`image_code` must be one of {codes} ('texture' unless a `redundancy` "
            f"is given); received {image_code!r}."
        )
    ratio = float(ratio)
    rho = None if redundancy is None else float(redundancy)
    intercept, env_coef, image_coef, image_scale, target, image_species = (
        _species_model(seed, num_species, ratio, image_species_fraction, low, high)
    )
    rng = np.random.default_rng([seed, 1])
    z = rng.standard_normal((num_examples, len(LATENTS)))
    h = rng.standard_normal(num_examples)
    if rho is not None:
        h = rho * z[:, LATENTS.index("soil")] + np.sqrt(1.0 - rho**2) * h
    logits = intercept + z @ env_coef.T
    logits = logits + h[:, None] * image_coef[None, :]
    rng = np.random.default_rng([seed, 2])
    y = (rng.random(logits.shape) < _sigmoid(logits)).astype("float32")
    renderers = {
        "env": lambda r: _render_env(r, z, num_env_features),
        "climate": lambda r: _render_climate(r, z, climate_steps),
        "landsat": lambda r: _render_landsat(r, z, landsat_steps),
        "image": lambda r: _render_image(r, z, h, image_size, rho is None, image_code),
    }
    x, modality_info = {}, {}
    for name in modalities:
        stream = MODALITIES.index(name)
        values, details = renderers[name](np.random.default_rng([seed, 3 + stream]))
        rng = np.random.default_rng([seed, 7 + stream])
        values = _apply_missing(rng, name, values, rates[name])
        x[name] = values.astype("float32")
        details.update(reveals=REVEALS[name], unique=name == "image")
        modality_info[name] = dict(details, nan_fraction=float(np.isnan(values).mean()))
    if rho is not None and "image" in modality_info:
        reveals = ["soil"] * (rho > 0) + ["habitat_texture"] * (rho < 1)
        modality_info["image"].update(reveals=reveals, unique=rho < 1)
    species = [
        {
            "intercept": float(b),
            "target_prevalence": float(t),
            "latent_effects": {k: float(e) for k, e in zip(LATENTS, w) if e != 0.0},
            "texture_effect": float(u),
            "image_driven": bool(d),
        }
        for b, t, w, u, d in zip(intercept, target, env_coef, image_coef, image_species)
    ]
    info = {
        "latents": list(LATENTS),
        "dominant_modality": "env" if "env" in modalities else None,
        "weak_modality": "image" if "image" in modalities else None,
        "imbalance": {"ratio": ratio, "image_scale": image_scale},
        "redundancy": None if rho is None else {"rho": rho, "image_code": image_code},
        "modalities": modality_info,
        "species": species,
    }
    return x, y, info


def _species_model(seed, num_species, ratio, image_fraction, low, high):
    """Draws the species' effects and calibrates their intercepts."""
    rng = np.random.default_rng([seed, 0])
    directions = np.zeros((num_species, len(LATENTS)))
    for s in range(num_species):
        drivers = rng.choice(len(LATENTS), size=2, replace=False)
        weights = rng.normal(size=2)
        directions[s, drivers] = weights / np.linalg.norm(weights)
    num_image = int(round(image_fraction * num_species))
    image_species = np.zeros(num_species, bool)
    image_species[rng.choice(num_species, size=num_image, replace=False)] = True
    signs = rng.choice([-1.0, 1.0], size=num_species)
    target = rng.uniform(low, high, size=num_species)
    env_scale = TOTAL_EFFECT * ratio / np.sqrt(1.0 + ratio**2)
    image_scale = TOTAL_EFFECT / np.sqrt(1.0 + ratio**2)
    env_coef = directions * np.where(image_species, env_scale, TOTAL_EFFECT)[:, None]
    image_coef = np.where(image_species, signs * image_scale, 0.0)
    # Intercepts by bisection: the mean sigmoid over a fixed reference sample
    # hits the target prevalence, whatever num_examples.
    reference = np.random.default_rng([seed, 11])
    eta = reference.standard_normal((20000, len(LATENTS))) @ env_coef.T
    eta = eta + reference.standard_normal((20000, 1)) * image_coef
    lo, hi = np.full(num_species, -20.0), np.full(num_species, 20.0)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        too_high = _sigmoid(eta + mid).mean(axis=0) > target
        hi = np.where(too_high, mid, hi)
        lo = np.where(too_high, lo, mid)
    intercept = 0.5 * (lo + hi)
    return intercept, env_coef, image_coef, float(image_scale), target, image_species


def _render_env(rng, z, num_features):
    latent_index = np.arange(num_features) % len(LATENTS)
    loadings = rng.uniform(0.7, 1.0, num_features)
    loadings *= rng.choice([-1.0, 1.0], num_features)
    values = z[:, latent_index] * loadings
    values += 0.4 * rng.standard_normal(values.shape)
    variables = [
        {"latent": LATENTS[i], "loading": float(w)}
        for i, w in zip(latent_index, loadings)
    ]
    return values, {"variables": variables}


def _render_climate(rng, z, steps):
    n = z.shape[0]
    month = np.arange(steps) % 12
    season = -np.cos(2 * np.pi * month / 12.0)  # coldest in January
    wet = np.sin(2 * np.pi * month / 12.0)
    continentality = rng.standard_normal((n, 1))
    tas_offset = 0.5 * rng.standard_normal((n, 1))
    pr_offset = 0.6 * rng.standard_normal((n, 1))
    # AR(1) weather anomalies with stationary sd 1.
    shocks = rng.standard_normal((n, steps))
    anomaly = np.empty((n, steps))
    anomaly[:, 0] = shocks[:, 0]
    for t in range(1, steps):
        anomaly[:, t] = 0.5 * anomaly[:, t - 1] + np.sqrt(0.75) * shocks[:, t]
    tas = 0.8 * z[:, [0]] + tas_offset + (0.9 + 0.25 * continentality) * season
    tas = tas + 0.4 * anomaly
    tasmax = tas + 0.35 + 0.1 * season + 0.15 * rng.standard_normal((n, steps))
    tasmin = tas - 0.35 + 0.15 * rng.standard_normal((n, steps))
    pr = 0.7 * z[:, [1]] + pr_offset + 0.4 * wet + 0.8 * rng.standard_normal((n, steps))
    return np.stack([pr, tas, tasmax, tasmin], axis=-1), {}


def _render_landsat(rng, z, steps):
    n = z.shape[0]
    season = np.sin(2 * np.pi * (np.arange(steps) % 4 + 0.5) / 4.0)  # Q2-Q3 green
    moisture, land_use = z[:, [1]], z[:, [3]]
    vigour = 0.6 * moisture - 0.6 * land_use + 0.6 * rng.standard_normal((n, 1))
    wetness = moisture + 0.6 * rng.standard_normal((n, 1))
    noise = 0.5 * rng.standard_normal((6, n, steps))
    bands = [
        -0.5 * vigour - 0.3 * season + noise[0],  # red
        0.2 * vigour + 0.1 * season + noise[1],  # green
        -0.3 * vigour + noise[2],  # blue
        0.7 * vigour + (0.5 + 0.2 * vigour) * season + noise[3],  # nir
        -0.6 * wetness + noise[4],  # swir1
        -0.4 * wetness + 0.4 * land_use + noise[5],  # swir2
    ]
    return np.stack(bands, axis=-1), {}


def _render_image(rng, z, h, size, colour_signal, code):
    n = z.shape[0]
    means = 0.0
    for latent, w, direction in zip((3, 1), (0.8, 0.7), (IMAGE_COLOUR, IMAGE_GREEN)):
        colour = w * z[:, latent] * float(colour_signal)
        colour = colour + 0.5 * rng.standard_normal(n)
        means = means + colour[:, None] * direction[None, :]
    quadrants, half = 0.0, size // 2
    if code in ("product", "quadrant_product"):
        sign = rng.choice([-1.0, 1.0], n)
        colour = (
            (means if code == "product" else 0.0)
            + (sign + 0.5 * rng.standard_normal(n))[:, None] * IMAGE_COLOUR
            + (sign * h + 0.5 * rng.standard_normal(n))[:, None] * IMAGE_GREEN
        )
        if code == "product":
            means = colour
        else:
            quadrants = np.zeros((n, size, size, 4))
            quadrants[:, :half, :half, :] = colour[:, None, None, :]
        h = np.zeros_like(h)  # constant contrast: the grating shows nothing
    if code == "patch_product":
        # Quadrants top-left, top-right, bottom-left, bottom-right.
        sign = rng.choice([-1.0, 1.0], (n, 4))
        offsets = sign.copy()
        offsets[:, 3] = sign[:, 0] * h
        offsets = offsets + 0.3 * rng.standard_normal((n, 4))
        blocks = [half, size - half]
        field = offsets.reshape(n, 2, 2).repeat(blocks, axis=1).repeat(blocks, axis=2)
        quadrants = field[..., None] * IMAGE_GREEN
        h = np.zeros_like(h)

    theta = rng.uniform(0.0, np.pi, n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    freq = rng.uniform(0.18, 0.32, n)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    coord = np.cos(theta)[:, None, None] * cols + np.sin(theta)[:, None, None] * rows
    grating = np.sin(2 * np.pi * freq[:, None, None] * coord + phase[:, None, None])
    contrast = 0.15 + 0.85 * _sigmoid(1.7 * h)
    texture = (contrast[:, None, None] * grating)[..., None] * IMAGE_TEXTURE_GAIN
    clutter = _smooth_field(rng, n, size) * 0.4
    values = means[:, None, None, :] + texture + clutter[..., None] + quadrants
    values += 0.3 * rng.standard_normal(values.shape)
    return values, {}


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
    n = values.shape[0]
    absent_rate = rate / 2.0
    partial_rate = (rate - absent_rate) / (1.0 - absent_rate)
    absent = rng.random(n) < absent_rate
    if name == "env":
        holes = rng.random(values.shape) < partial_rate
    elif name in ("climate", "landsat"):  # every channel of a time step
        holes = (rng.random(values.shape[:2]) < partial_rate)[..., None]
    else:
        # A fraction of the images is partly cloudy; in those, a blob of a
        # jittered area fraction is missing.
        size = values.shape[1]
        cloudy_rate = min(1.0, partial_rate / 0.3)
        cloudy = rng.random(n) < cloudy_rate
        cover = partial_rate / cloudy_rate * rng.uniform(0.5, 1.5, n)
        fraction = np.clip(cover, 0.0, 1.0)
        field = _smooth_field(rng, n, size).reshape(n, -1)
        field += 1e-6 * rng.standard_normal(field.shape)  # break ties
        # The blob: the pixels above the field's (1 - fraction) quantile.
        rank = np.argsort(np.argsort(field, axis=1), axis=1)
        blob = rank >= np.round((1.0 - fraction) * size * size)[:, None]
        holes = (blob & cloudy[:, None]).reshape(n, size, size, 1)
    values[np.broadcast_to(holes, values.shape)] = np.nan
    values[absent] = np.nan
    return values


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
