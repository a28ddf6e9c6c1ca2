"""Tests of the GeoPlant array cache: same batches as the release's reader."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from keras_miam.datasets import GeoPlantCacheError
from keras_miam.datasets import load_geoplant
from keras_miam.datasets import prepare_geoplant
from keras_miam.datasets.geoplant import __main__ as cli
from keras_miam.datasets.geoplant import readers
from tests.layouts import NO_PATCH
from tests.layouts import TRAIN_IDS
from tests.layouts import write_geoplant_release


def assert_same_batches(live, cached):
    """Every batch of two GeoPlantDatasets is equal (values, NaN, labels)."""
    assert cached.species == live.species
    assert cached.stats == live.stats
    assert cached.input_shapes == live.input_shapes
    assert cached.env_columns == live.env_columns
    np.testing.assert_array_equal(cached.survey_ids, live.survey_ids)
    assert list(cached.surveys.index) == list(live.surveys.index)
    assert len(cached) == len(live)
    for i in range(len(live)):
        a, b = live[i], cached[i]
        if isinstance(a, tuple):
            (a, y_a), (b, y_b) = a, b
            np.testing.assert_array_equal(y_b, y_a)
        assert sorted(a) == sorted(b)
        for name in a:
            assert b[name].dtype == np.float32
            np.testing.assert_array_equal(b[name], a[name])


def _compare(root, cache, splits, **kwargs):
    for split in splits:
        for normalize in (True, False):
            options = dict(kwargs, normalize=normalize, shuffle=False, batch_size=3)
            live = load_geoplant(root, split, **options)
            cached = load_geoplant(cache_dir=cache, split=split, **options)
            assert_same_batches(live, cached)


@pytest.mark.parametrize(
    "style, series_source",
    [("glc25", "csv"), ("glc25", "cubes"), ("glc24", "auto")],
)
def test_cache_equals_release_reader(tmp_path, style, series_source):
    root = write_geoplant_release(
        tmp_path / "release", style, csv_series=style == "glc25"
    )
    cache = tmp_path / "cache"
    manifest = prepare_geoplant(
        root, cache, series_source=series_source, chunk_size=4, verbose=0
    )
    test = "test_iid" if style == "glc25" else "test"
    assert set(manifest["splits"]) == {"train", test}
    image = manifest["splits"]["train"]["arrays"]["image"]
    assert image["shape"] == [len(TRAIN_IDS), 16, 16, 4]
    kwargs = {"series_source": series_source}
    _compare(root, cache, ["train", "val", test], **kwargs)
    # Other validation draws, species choices and env columns are made when
    # loading, from the same cache.
    kwargs.update(seed=5, validation_fraction=0.3)
    _compare(root, cache, ["val"], num_species=3, **kwargs)
    _compare(root, cache, ["train"], env_columns=["Bio*"], species=[3, 1], **kwargs)
    # Shuffled epochs follow the same seeded order.
    kwargs["seed"] = 2
    live = load_geoplant(root, "train", batch_size=4, **kwargs)
    cached = load_geoplant(cache_dir=cache, batch_size=4, **kwargs)
    for _ in range(2):
        for i in range(len(live)):
            np.testing.assert_array_equal(cached[i][0]["image"], live[i][0]["image"])
        live.on_epoch_end()
        cached.on_epoch_end()
    # A survey without a patch is NaN, never zeros.
    raw = load_geoplant(
        cache_dir=cache, normalize=False, shuffle=False, validation_fraction=0.0
    )
    row = list(raw.survey_ids).index(next(iter(NO_PATCH & set(TRAIN_IDS))))
    assert np.isnan(raw[0][0]["image"][row]).all()
    if series_source != "auto":
        other = "cubes" if series_source == "csv" else "csv"
        with pytest.raises(GeoPlantCacheError, match=f"series from {series_source}"):
            load_geoplant(cache_dir=cache, series_source=other)


def test_cache_statistics_equal_the_release_readers(tmp_path):
    root = write_geoplant_release(tmp_path / "release", "glc25", cube_series=False)
    prepare_geoplant(root, tmp_path / "cache", verbose=0)
    live = load_geoplant(root, "train")
    cached = load_geoplant(cache_dir=tmp_path / "cache")
    assert cached.stats == live.stats and cached.species == live.species
    counts = pd.read_csv(
        root / "PresenceAbsenceSurveys/PA_metadata_train.csv"
    ).speciesId.value_counts()
    assert cached.species[0] == int(counts.idxmax())


def test_truncated_unfinished_and_foreign_caches_are_refused(tmp_path):
    root = write_geoplant_release(tmp_path / "release", "glc25", cube_series=False)
    cache = tmp_path / "cache"
    prepare_geoplant(root, cache, verbose=0)
    with pytest.raises(GeoPlantCacheError, match="16x16 patches"):
        load_geoplant(cache_dir=cache, image_size=8)
    path = cache / "train" / "image.npy"
    os.truncate(path, path.stat().st_size - 100)
    with pytest.raises(GeoPlantCacheError, match=r"train/image.npy' is truncated"):
        load_geoplant(cache_dir=cache)
    # Loading only other modalities still works; the image is never zeros.
    assert load_geoplant(cache_dir=cache, modalities=("env",))[0][0]["env"].shape[1]
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["splits"]["train"]["arrays"]["env"]["shape"][1] += 1
    (cache / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        GeoPlantCacheError, match=r"env.npy' holds \(10, 4\) float32, not"
    ):
        load_geoplant(cache_dir=cache, modalities=("env",))
    with pytest.raises(GeoPlantCacheError, match="no complete GeoPlant cache"):
        load_geoplant(cache_dir=tmp_path / "empty")
    prepare_geoplant(root, tmp_path / "two", modalities=("env", "climate"), verbose=0)
    with pytest.raises(GeoPlantCacheError, match=r"holds \['env', 'climate'\]"):
        load_geoplant(cache_dir=tmp_path / "two", modalities=("env", "image"))
    with pytest.raises(ValueError, match="Pass the release folder"):
        load_geoplant()


def test_stale_cache_is_named_and_rebuilt_on_request(tmp_path):
    root = write_geoplant_release(tmp_path / "release", "glc25", cube_series=False)
    cache = tmp_path / "cache"
    prepare_geoplant(root, cache, verbose=0)
    load_geoplant(root, cache_dir=cache)  # fresh: accepted
    env = root / "EnvironmentalValues/Elevation/PA-train-elevation.csv"
    frame = pd.read_csv(env)
    frame["Elevation"] = 123.0
    frame.to_csv(env, index=False)
    stale = r"stale: .*Elevation/PA-train-elevation.csv \(changed\)"
    with pytest.raises(GeoPlantCacheError, match=stale):
        load_geoplant(root, cache_dir=cache)
    with pytest.raises(GeoPlantCacheError, match="overwrite=True"):
        prepare_geoplant(root, cache, verbose=0)
    with pytest.raises(GeoPlantCacheError, match=r"modalities \[.*\] -> \['env'"):
        prepare_geoplant(root, cache, modalities=("env", "image"), verbose=0)
    prepare_geoplant(root, cache, overwrite=True, verbose=0)
    cached = load_geoplant(root, cache_dir=cache, modalities=("env",), shuffle=False)
    live = load_geoplant(root, modalities=("env",), shuffle=False)
    assert_same_batches(live, cached)


def test_interrupted_preparation_is_refused_then_restarts(tmp_path, monkeypatch):
    # No resume: the manifest is written last, so an interrupted cache is
    # refused and the next preparation reads everything again.
    root = write_geoplant_release(tmp_path / "release", "glc25", csv_series=False)
    cache = tmp_path / "cache"
    prepare_geoplant(root, cache, modalities=("env",), verbose=0)
    original = readers.read_patch
    calls, interrupt = [], [True]

    def flaky(sources, survey_id, size=None):
        calls.append(int(survey_id))
        if len(calls) == 7 and interrupt:
            interrupt.clear()
            raise KeyboardInterrupt
        return original(sources, survey_id, size)

    monkeypatch.setattr("keras_miam.datasets.geoplant.sources.read_patch", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_geoplant(root, cache, chunk_size=4, overwrite=True, verbose=0)
    with pytest.raises(GeoPlantCacheError, match="preparation was interrupted"):
        load_geoplant(cache_dir=cache)
    calls.clear()
    prepare_geoplant(root, cache, chunk_size=4, verbose=0)
    assert calls[1 : len(TRAIN_IDS) + 1] == sorted(TRAIN_IDS)  # after the probe
    monkeypatch.setattr("keras_miam.datasets.geoplant.sources.read_patch", original)
    _compare(root, cache, ["train", "test_iid"])


def test_command_line_prepare(tmp_path, capsys):
    root = write_geoplant_release(tmp_path / "release", "glc25", cube_series=False)
    cache = tmp_path / "cache"
    cli.main(["prepare", str(root), str(cache), "--modalities", "env", "image"])
    assert "complete" in capsys.readouterr().out
    cached = load_geoplant(cache_dir=cache, shuffle=False)
    assert cached.modalities == ("env", "image")
    with pytest.raises(SystemExit, match="stale|other files or arguments"):
        cli.main(["prepare", str(root), str(cache), "--modalities", "env"])


@pytest.mark.real_samples
@pytest.mark.parametrize("release", ["glc25-pa", "glc24-pa"])
def test_cache_equals_reader_on_real_samples(real_samples_dir, tmp_path, release):
    if release == "glc25-pa":
        pytest.importorskip("imagecodecs", reason="the GLC25 tiffs are LZW-compressed")
    root = real_samples_dir / release
    cache = tmp_path / "cache"
    modalities = ("climate", "landsat", "image")
    prepare_geoplant(root, cache, modalities=modalities, verbose=0)
    for split in ("train", "val", "test"):
        for normalize in (True, False):
            options = dict(
                modalities=modalities, normalize=normalize, shuffle=False, batch_size=8
            )
            if normalize and release == "glc24-pa":
                # No training survey of this sample has files (the one that
                # has is held out): both readers refuse to normalise.
                for cache_dir in (None, cache):
                    with pytest.raises(
                        ValueError, match="'climate' statistics rest on 0"
                    ):
                        load_geoplant(root, split, cache_dir=cache_dir, **options)
                continue
            live = load_geoplant(root, split, **options)
            cached = load_geoplant(root, split, cache_dir=cache, **options)
            assert_same_batches(live, cached)


def test_spatial_validation_blocks_from_release_and_cache(tmp_path):
    root = write_geoplant_release(tmp_path / "release", "glc25", cube_series=False)
    path = root / "PresenceAbsenceSurveys/PA_metadata_train.csv"
    rows = pd.read_csv(path)
    rows["lon"] = (rows["surveyId"] % 7) + 0.5  # seven 1-degree cells
    rows.to_csv(path, index=False)
    cache = tmp_path / "cache"
    prepare_geoplant(root, cache, verbose=0)
    options = dict(validation_block=1.0, validation_fraction=0.3, seed=4)
    for split in ("train", "val"):
        live = load_geoplant(root, split, shuffle=False, **options)
        cached = load_geoplant(cache_dir=cache, split=split, shuffle=False, **options)
        assert_same_batches(live, cached)
    train = load_geoplant(root, "train", **options)
    val = load_geoplant(root, "val", **options)
    cell = {int(i): int(i) % 7 for i in TRAIN_IDS}
    train_cells = {cell[int(i)] for i in train.survey_ids}
    val_cells = {cell[int(i)] for i in val.survey_ids}
    assert val_cells and not train_cells & val_cells
    assert sorted(train.survey_ids.tolist() + val.survey_ids.tolist()) == sorted(
        TRAIN_IDS
    )
    with pytest.raises(ValueError, match="fewer than the 2 parts"):
        load_geoplant(root, "val", validation_block=100.0)
