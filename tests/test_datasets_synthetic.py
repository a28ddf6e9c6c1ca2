"""Tests of the synthetic ecology generator and of split_dataset."""

import json

import numpy as np
import pytest
from scipy import ndimage
from scipy.stats import rankdata

from keras_miam.datasets import make_synthetic_ecology
from keras_miam.datasets import split_dataset

N = 4000

# nan-aware reductions over fully missing rows (absent modalities) warn.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Mean of empty slice"),
    pytest.mark.filterwarnings("ignore:Degrees of freedom"),
]


def _auc(score, labels):
    """Rank (Mann-Whitney) AUC, ignoring non-finite scores."""
    ok = np.isfinite(score)
    score, labels = score[ok], labels[ok]
    ranks = rankdata(score)
    pos = labels.sum()
    neg = len(labels) - pos
    return (ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg)


def _env_latents(x, info):
    """Latent estimates from env: mean of variable / loading per latent."""
    variables = info["modalities"]["env"]["variables"]
    estimates = []
    for latent in info["latents"]:
        cols = [
            x["env"][:, j] / v["loading"]
            for j, v in enumerate(variables)
            if v["latent"] == latent
        ]
        estimates.append(np.nanmean(np.stack(cols, 1), axis=1))
    return np.stack(estimates, 1)


def _texture_energy(x):
    """Log energy of the high-passed NIR channel (the texture contrast)."""
    nir = x["image"][..., 3]
    filled = np.where(np.isnan(nir), np.nanmean(nir, axis=(1, 2), keepdims=True), nir)
    high = nir - ndimage.uniform_filter(filled, size=(1, 3, 3))
    with np.errstate(all="ignore"):
        return np.log(np.nanvar(high, axis=(1, 2)))


def _oracle_aucs(x, y, info):
    """Per image-driven species: (env oracle AUC, image oracle AUC)."""
    z = _env_latents(x, info)
    texture = _texture_energy(x)
    pairs = []
    for s, record in enumerate(info["species"]):
        if not record["image_driven"]:
            continue
        w = np.array([record["latent_effects"].get(l, 0.0) for l in info["latents"]])
        env_auc = _auc(z @ w, y[:, s])
        image_auc = _auc(np.sign(record["texture_effect"]) * texture, y[:, s])
        pairs.append((env_auc, image_auc))
    return np.array(pairs)


@pytest.fixture(scope="module")
def strong():
    return make_synthetic_ecology(N, seed=0)


def test_shapes_dtypes_and_json_info(strong):
    x, y, info = strong
    assert set(x) == {"env", "climate", "landsat", "image"}
    assert x["env"].shape == (N, 20)
    assert x["climate"].shape == (N, 48, 4)
    assert x["landsat"].shape == (N, 24, 6)
    assert x["image"].shape == (N, 16, 16, 4)
    assert all(v.dtype == np.float32 for v in x.values())
    assert y.shape == (N, 20) and y.dtype == np.float32
    assert set(np.unique(y)) == {0.0, 1.0}
    info = json.loads(json.dumps(info))
    assert info["dominant_modality"] == "env"
    assert info["weak_modality"] == "image"
    assert info["modalities"]["image"]["unique"] is True
    assert len(info["species"]) == 20
    assert sum(r["image_driven"] for r in info["species"]) == 8


def test_deterministic_for_a_seed():
    a = make_synthetic_ecology(300, seed=3)
    b = make_synthetic_ecology(300, seed=3)
    c = make_synthetic_ecology(300, seed=4)
    for name in a[0]:
        np.testing.assert_array_equal(a[0][name], b[0][name])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert not np.array_equal(a[1], c[1])


def test_nan_rates_near_configured(strong):
    x, _, info = strong
    for name, rate in {
        "env": 0.05,
        "climate": 0.02,
        "landsat": 0.15,
        "image": 0.2,
    }.items():
        frac = np.isnan(x[name]).mean()
        assert abs(frac - rate) < 0.02, (name, frac, rate)
        assert info["modalities"][name]["nan_fraction"] == pytest.approx(frac)
    # Both mechanisms are present: whole-modality absence and partial gaps.
    image_nan = np.isnan(x["image"]).reshape(N, -1).mean(axis=1)
    assert 0.05 < (image_nan == 1).mean() < 0.15
    assert ((image_nan > 0) & (image_nan < 1)).mean() > 0.05
    step_nan = np.isnan(x["landsat"]).all(axis=2).mean(axis=1)
    assert ((step_nan > 0) & (step_nan < 1)).mean() > 0.5
    # A time step is missing for all of its channels at once.
    partial = np.isnan(x["landsat"]).any(axis=2) & ~np.isnan(x["landsat"]).all(axis=2)
    assert not partial.any()


def test_missing_options():
    x, _, info = make_synthetic_ecology(2000, missing=0.0, seed=1)
    assert not any(np.isnan(v).any() for v in x.values())
    x, _, _ = make_synthetic_ecology(2000, missing={"image": 0.5}, seed=1)
    assert abs(np.isnan(x["image"]).mean() - 0.5) < 0.04
    assert not np.isnan(x["env"]).any()


def test_modality_subset_keeps_labels():
    x3, y3, info3 = make_synthetic_ecology(500, modalities=("env", "climate", "image"))
    x4, y4, _ = make_synthetic_ecology(500)
    assert set(x3) == {"env", "climate", "image"}
    np.testing.assert_array_equal(y3, y4)
    np.testing.assert_array_equal(x3["image"], x4["image"])
    x1, _, info1 = make_synthetic_ecology(100, modalities=("climate",))
    assert set(x1) == {"climate"}
    assert info1["dominant_modality"] is None and info1["weak_modality"] is None


def test_label_prevalence_range(strong):
    _, y, info = strong
    prevalence = y.mean(axis=0)
    assert prevalence.min() > 0.03 and prevalence.max() < 0.55
    targets = np.array([r["target_prevalence"] for r in info["species"]])
    assert np.all((targets >= 0.05) & (targets <= 0.5))
    np.testing.assert_allclose(prevalence, targets, atol=0.04)


def test_signal_dominant_beats_weak_beats_chance(strong):
    x, y, info = strong
    # Dominant modality: the oracle env score predicts every species well.
    z = _env_latents(x, info)
    env_aucs = []
    for s, record in enumerate(info["species"]):
        w = np.array([record["latent_effects"].get(l, 0.0) for l in info["latents"]])
        env_aucs.append(_auc(z @ w, y[:, s]))
    assert np.mean(env_aucs) > 0.8
    # Weak modality: the texture carries the habitat signal, above chance.
    pairs = _oracle_aucs(x, y, info)
    env_auc, image_auc = pairs.mean(axis=0)
    assert image_auc > 0.55
    assert env_auc - image_auc > 0.15
    # Climate and landsat are redundant with env: informative, but less.
    climate_score = np.nanmean(x["climate"][..., 1], axis=1)  # tas
    temperature_species = [
        s
        for s, r in enumerate(info["species"])
        if abs(r["latent_effects"].get("temperature", 0.0)) > 1.0
    ]
    for s in temperature_species:
        sign = np.sign(info["species"][s]["latent_effects"]["temperature"])
        assert 0.55 < _auc(sign * climate_score, y[:, s]) < env_aucs[s] + 0.02


def test_weak_modality_information_is_unique(strong):
    x, y, info = strong
    texture = _texture_energy(x)
    z = _env_latents(x, info)
    ok = np.isfinite(texture) & np.isfinite(z).all(axis=1)
    # No env latent estimate tracks the habitat texture.
    for j in range(z.shape[1]):
        assert abs(np.corrcoef(texture[ok], z[ok, j])[0, 1]) < 0.06
    # Species without a texture effect get nothing from the texture.
    free = [s for s, r in enumerate(info["species"]) if not r["image_driven"]]
    assert all(abs(_auc(texture, y[:, s]) - 0.5) < 0.05 for s in free)


def test_mild_is_less_imbalanced_than_strong(strong):
    x_s, y_s, info_s = strong
    x_m, y_m, info_m = make_synthetic_ecology(N, imbalance="mild", seed=0)
    gap_strong = np.subtract(*_oracle_aucs(x_s, y_s, info_s).mean(axis=0))
    gap_mild = np.subtract(*_oracle_aucs(x_m, y_m, info_m).mean(axis=0))
    assert gap_mild < gap_strong - 0.1
    assert info_s["imbalance"]["ratio"] == 3.0
    assert info_m["imbalance"]["ratio"] == 1.0
    _, _, info_f = make_synthetic_ecology(10, imbalance=2.0)
    assert info_f["imbalance"]["image_scale"] == pytest.approx(2.5 / np.sqrt(5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"modalities": ("env", "sound")}, "sound"),
        ({"modalities": ()}, "empty"),
        ({"num_examples": 0}, "num_examples"),
        ({"num_examples": -5}, "num_examples"),
        ({"num_examples": 2.5}, "num_examples"),
        ({"imbalance": "extreme"}, "extreme"),
        ({"imbalance": -1.0}, "imbalance"),
        ({"imbalance": float("nan")}, "imbalance"),
        ({"missing": {"radar": 0.1}}, "radar"),
        ({"missing": 1.5}, "Missing rate"),
        ({"num_species": 0}, "num_species"),
        ({"image_size": 2}, "image_size"),
        ({"prevalence_range": (0.6, 0.2)}, "prevalence_range"),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic_ecology(**{"num_examples": 10, **kwargs})


def test_redundancy_off_by_default_leaves_output_unchanged():
    # The default and redundancy=None are the same call; the option only
    # adds the (None) record to info.
    x0, y0, info0 = make_synthetic_ecology(300, imbalance="mild", seed=4)
    x1, y1, info1 = make_synthetic_ecology(
        300, imbalance="mild", seed=4, redundancy=None
    )
    for name in x0:
        np.testing.assert_array_equal(x0[name], x1[name])
    np.testing.assert_array_equal(y0, y1)
    assert info0 == info1 and info0["redundancy"] is None
    assert info0["modalities"]["image"]["reveals"][:2] == ["land_use", "moisture"]


def test_redundancy_one_image_shows_env_soil_only_nonlinearly():
    x, y, info = make_synthetic_ecology(
        N, imbalance="mild", redundancy=1.0, image_species_fraction=1.0, seed=0
    )
    assert info["redundancy"] == {"rho": 1.0, "image_code": "texture"}
    assert info["modalities"]["image"]["reveals"] == ["soil"]
    assert info["modalities"]["image"]["unique"] is False
    z = _env_latents(x, info)
    texture = _texture_energy(x)
    soil = info["latents"].index("soil")
    ok = np.isfinite(texture) & np.isfinite(z).all(axis=1)
    # The texture contrast is a (nonlinear) view of env's soil latent ...
    assert np.corrcoef(texture[ok], z[ok, soil])[0, 1] > 0.5
    # ... and of no other latent.
    for j in range(z.shape[1]):
        if j != soil:
            assert abs(np.corrcoef(texture[ok], z[ok, j])[0, 1]) < 0.06
    # No linear shortcut: the channel means predict no species, while the
    # texture energy predicts those driven by soil through the image.
    # (|AUC - 0.5| of a channel mean is sampling noise: about 0.01 at
    # N = 4000, and it halves at N = 20000.)
    means = np.nanmean(x["image"], axis=(1, 2))
    ok = np.isfinite(means).all(axis=1)
    linear = np.array(
        [
            [abs(_auc(means[ok, c], y[ok, s]) - 0.5) for c in range(4)]
            for s in range(y.shape[1])
        ]
    )
    assert linear.mean() < 0.02 and linear.max() < 0.08
    aucs = [
        _auc(np.sign(r["texture_effect"]) * texture, y[:, s])
        for s, r in enumerate(info["species"])
    ]
    assert np.mean(aucs) > 0.6
    # Labels are linear in the env latents: env's linear oracle is as good
    # as it gets, well above the image's.
    env_aucs = []
    for s, r in enumerate(info["species"]):
        w = np.array([r["latent_effects"].get(l, 0.0) for l in info["latents"]])
        w[soil] += r["texture_effect"]
        env_aucs.append(_auc(z @ w, y[:, s]))
    assert np.mean(env_aucs) > np.mean(aucs) + 0.1


def test_redundancy_interpolates_to_a_unique_latent():
    x, y, info = make_synthetic_ecology(N, redundancy=0.0, seed=0)
    assert info["modalities"]["image"]["reveals"] == ["habitat_texture"]
    assert info["modalities"]["image"]["unique"] is True
    z = _env_latents(x, info)
    texture = _texture_energy(x)
    ok = np.isfinite(texture) & np.isfinite(z).all(axis=1)
    assert abs(np.corrcoef(texture[ok], z[ok, 2])[0, 1]) < 0.06
    # The colour is off with the option, whatever rho: the labels do not
    # change (only the image's rendering does).
    x_default, y_default, _ = make_synthetic_ecology(N, seed=0)
    np.testing.assert_array_equal(y, y_default)
    means = np.nanmean(x["image"], axis=(1, 2))
    means_default = np.nanmean(x_default["image"], axis=(1, 2))
    land_use = z[:, 3]
    rows = np.isfinite(means).all(axis=1) & np.isfinite(land_use)
    rows_default = np.isfinite(means_default).all(axis=1) & np.isfinite(land_use)
    r_off = abs(np.corrcoef(means[rows, 0], land_use[rows])[0, 1])
    r_on = abs(
        np.corrcoef(means_default[rows_default, 0], land_use[rows_default])[0, 1]
    )
    assert r_off < 0.06 < 0.3 < r_on


def test_product_code_has_no_linear_shortcut_but_a_quadratic_one():
    x, y, info = make_synthetic_ecology(
        N,
        imbalance="mild",
        modalities=("env", "image"),
        redundancy=1.0,
        image_code="product",
        image_species_fraction=1.0,
        seed=0,
    )
    assert info["redundancy"]["image_code"] == "product"
    means = np.nan_to_num(np.nanmean(x["image"], axis=(1, 2)))
    quadratic = np.einsum("ni,nj->nij", means, means).reshape(N, -1)
    half = N // 2

    def probe_auc(features):
        design = np.c_[features, np.ones(N)]
        aucs = []
        for s in range(y.shape[1]):
            w = np.linalg.lstsq(design[:half], y[:half, s], rcond=None)[0]
            aucs.append(_auc(design[half:] @ w, y[half:, s]))
        return np.mean(aucs)

    # Held-out linear probe on the channel means: chance; with their
    # products: the soil signal.
    assert abs(probe_auc(means) - 0.5) < 0.02
    assert probe_auc(np.c_[means, quadratic]) > 0.58
    # The grating's contrast carries nothing any more.
    texture = _texture_energy(x)
    z = _env_latents(x, info)
    ok = np.isfinite(texture) & np.isfinite(z).all(axis=1)
    assert abs(np.corrcoef(texture[ok], z[ok, 2])[0, 1]) < 0.06


def test_patch_product_needs_two_given_quadrants_together():
    x, y, _ = make_synthetic_ecology(
        N,
        imbalance="mild",
        modalities=("env", "image"),
        redundancy=1.0,
        image_code="patch_product",
        image_species_fraction=1.0,
        seed=0,
    )
    image = np.nan_to_num(x["image"])
    quadrants = np.stack(
        [
            image[:, :8, :8].mean((1, 2)),
            image[:, :8, 8:].mean((1, 2)),
            image[:, 8:, :8].mean((1, 2)),
            image[:, 8:, 8:].mean((1, 2)),
        ],
        axis=1,
    )  # (N, 4 quadrants, 4 channels)
    half = N // 2

    def probe_auc(features):
        design = np.c_[features, np.ones(N)]
        aucs = []
        for s in range(y.shape[1]):
            w = np.linalg.lstsq(design[:half], y[:half, s], rcond=None)[0]
            aucs.append(_auc(design[half:] @ w, y[half:, s]))
        return np.mean(aucs)

    flat = quadrants.reshape(N, -1)
    assert abs(probe_auc(flat) - 0.5) < 0.02
    # Products within one quadrant, or of any pair but (top-left,
    # bottom-right): chance; that pair: the soil signal.
    green = quadrants[..., 1]  # the channel of largest IMAGE_GREEN weight
    for i, j in [(0, 0), (3, 3), (0, 1), (1, 3), (2, 3)]:
        assert abs(probe_auc(green[:, i] * green[:, j]) - 0.5) < 0.03
    assert probe_auc(green[:, 0] * green[:, 3]) > 0.58


def test_quadrant_product_lives_in_the_top_left_patch_only():
    x, y, _ = make_synthetic_ecology(
        N,
        imbalance="mild",
        modalities=("env", "image"),
        redundancy=1.0,
        image_code="quadrant_product",
        image_species_fraction=1.0,
        seed=0,
    )
    image = np.nan_to_num(x["image"])
    colour = np.asarray([0.6, 0.4, 0.5, -0.7])
    green = np.asarray([-0.2, 0.7, -0.5, 0.4])
    basis = np.linalg.pinv(np.stack([colour, green]))  # channels -> (a, b)
    half = N // 2

    def product_auc(quadrant):
        a, b = (quadrant.mean((1, 2)) @ basis).T
        design = np.c_[a * b, a, b, np.ones(N)]
        aucs = []
        for s in range(y.shape[1]):
            w = np.linalg.lstsq(design[:half], y[:half, s], rcond=None)[0]
            aucs.append(_auc(design[half:] @ w, y[half:, s]))
        return np.mean(aucs)

    assert product_auc(image[:, :8, :8]) > 0.58
    for quadrant in (image[:, :8, 8:], image[:, 8:, :8], image[:, 8:, 8:]):
        assert abs(product_auc(quadrant) - 0.5) < 0.02


@pytest.mark.parametrize(
    "kwargs",
    [{"image_code": "product"}, {"image_code": "xor", "redundancy": 1.0}],
)
def test_image_code_bad_value_raises(kwargs):
    with pytest.raises(ValueError, match="image_code"):
        make_synthetic_ecology(10, **kwargs)


@pytest.mark.parametrize("redundancy", [-0.1, 1.5, True, "full"])
def test_redundancy_bad_value_raises(redundancy):
    with pytest.raises(ValueError, match="redundancy"):
        make_synthetic_ecology(10, redundancy=redundancy)


def test_split_dataset_partitions_aligned():
    x, y, _ = make_synthetic_ecology(200, seed=0, missing=0.0)
    train, val, test = split_dataset(x, y, fractions=(0.7, 0.15, 0.15), seed=1)
    assert [len(p[1]) for p in (train, val, test)] == [140, 30, 30]
    rows = np.concatenate([p[0]["env"] for p in (train, val, test)])
    assert len(np.unique(rows, axis=0)) == 200
    # Alignment: every part's env rows map back to the same labels.
    lookup = {r.tobytes(): i for i, r in enumerate(x["env"])}
    for part_x, part_y in (train, val, test):
        idx = [lookup[r.tobytes()] for r in part_x["env"]]
        np.testing.assert_array_equal(part_y, y[idx])
        np.testing.assert_array_equal(part_x["image"], x["image"][idx])
    again = split_dataset(x, y, seed=1)
    np.testing.assert_array_equal(again[0][1], train[1])
    (a, none), (b, _) = split_dataset(np.arange(10), fractions=(0.5, 0.5))
    assert none is None and sorted(np.concatenate([a, b])) == list(range(10))


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros(10), np.zeros(9)), "same number"),
        ((np.zeros(10), None, (0.5, 0.4)), "sum to 1"),
        ((np.zeros(10), None, (1.0,)), "at least two"),
        ((np.zeros(2), None, (0.4, 0.3, 0.3)), "Cannot split"),
    ],
)
def test_split_dataset_errors(args, match):
    with pytest.raises(ValueError, match=match):
        split_dataset(*args)
