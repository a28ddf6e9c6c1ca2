"""Tests of split_dataset(spatial_block=...): whole cells, seeded."""

import numpy as np
import pandas as pd
import pytest

from keras_miam.datasets import split_dataset


def _sites(rng, n=600):
    lon = rng.uniform(-10, 30, n)
    lat = rng.uniform(35, 70, n)
    return np.stack([lon, lat], axis=1)


def _cells(coordinates, degrees):
    return {tuple(c) for c in np.floor(coordinates / degrees).astype(int)}


@pytest.mark.parametrize("degrees", [0.5, 2.0, 5.0])
def test_no_cell_is_shared_between_parts(rng, degrees):
    coordinates = _sites(rng)
    x = {"coords": coordinates, "env": rng.normal(size=(600, 3))}
    y = np.arange(600)
    parts = split_dataset(x, y, seed=3, spatial_block=degrees, coordinates=coordinates)
    cells = [_cells(part[0]["coords"], degrees) for part in parts]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not cells[i] & cells[j]
    # A partition of the examples, aligned across arrays.
    labels = np.concatenate([part[1] for part in parts])
    assert sorted(labels) == list(range(600))
    for part_x, part_y in parts:
        np.testing.assert_array_equal(part_x["coords"], coordinates[part_y])
        assert len(part_y) > 0
    # Sizes close to the fractions (up to the cells' sizes).
    sizes = np.array([len(p[1]) for p in parts]) / 600
    largest = max(
        np.unique(np.floor(coordinates / degrees), axis=0, return_counts=True)[1]
    )
    assert np.all(np.abs(sizes - [0.7, 0.15, 0.15]) <= 1.5 * largest / 600 + 0.02)


def test_spatial_split_is_seeded_and_differs_from_random(rng):
    coordinates = _sites(rng)
    x = np.arange(600)
    first = split_dataset(x, seed=1, spatial_block=2.0, coordinates=coordinates)
    again = split_dataset(x, seed=1, spatial_block=2.0, coordinates=coordinates)
    other = split_dataset(x, seed=2, spatial_block=2.0, coordinates=coordinates)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(first[1][0], other[1][0])
    # A random split shares cells between parts; the spatial one does not.
    random = split_dataset(x, seed=1)
    shared = _cells(coordinates[random[0][0]], 2.0) & _cells(
        coordinates[random[1][0]], 2.0
    )
    assert shared


def test_spatial_split_takes_a_survey_table_and_names_bad_input(rng):
    coordinates = _sites(rng, 50)
    table = pd.DataFrame({"lat": coordinates[:, 1], "lon": coordinates[:, 0]})
    from_table = split_dataset(np.arange(50), spatial_block=5.0, coordinates=table)
    from_array = split_dataset(
        np.arange(50), spatial_block=5.0, coordinates=coordinates
    )
    for a, b in zip(from_table, from_array):
        np.testing.assert_array_equal(a[0], b[0])
    x = np.arange(50)
    with pytest.raises(ValueError, match="needs `coordinates`"):
        split_dataset(x, spatial_block=1.0)
    with pytest.raises(ValueError, match=r"\(50, 2\).*received shape \(10, 2\)"):
        split_dataset(x, spatial_block=1.0, coordinates=coordinates[:10])
    with pytest.raises(ValueError, match="degrees > 0"):
        split_dataset(x, spatial_block=0.0, coordinates=coordinates)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['lon'\]"):
        split_dataset(x, spatial_block=1.0, coordinates=table[["lat"]])
    bad = coordinates.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="1 non-finite row"):
        split_dataset(x, spatial_block=1.0, coordinates=bad)
    with pytest.raises(ValueError, match="fewer than the 3 parts"):
        split_dataset(x, spatial_block=100.0, coordinates=coordinates)
