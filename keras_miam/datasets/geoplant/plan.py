"""The plan of a GeoPlant split: its surveys, the training part, the labels."""

import collections

import numpy as np
import pandas as pd
from scipy import sparse

from keras_miam.datasets.split_dataset import spatial_parts

# A split's `rows` of `source_split`, their metadata, "train"'s training rows.
Plan = collections.namedtuple(
    "Plan", ["source_split", "rows", "surveys", "train_rows", "species", "labels"]
)


def clean_metadata(rows):
    """`(surveys, presence)` of long-format metadata rows.

    `surveys`: the first row of each integer surveyId, indexed by it and
    sorted; `presence`: int64 `(P, 2)` (surveyId, speciesId) pairs, or None
    without a speciesId column.
    """
    ids = pd.to_numeric(rows["surveyId"], errors="coerce")
    rows = rows[ids.notna()].assign(surveyId=ids[ids.notna()].astype("int64"))
    presence = None
    if "speciesId" in rows.columns:
        species = pd.to_numeric(rows.pop("speciesId"), errors="coerce")
        presence = pd.concat([rows["surveyId"], species], axis=1).dropna()
        presence = presence.to_numpy("int64")
    surveys = rows.drop_duplicates("surveyId").set_index("surveyId").sort_index()
    return surveys, presence


def plan_split(read, available, split, where, carve, species, num_species, stats):
    """The `Plan` of `split`, from `read(split) -> (surveys, presence)`.

    With `carve = (validation_fraction, seed, validation_block)`, "val" is
    a seeded fraction of the training surveys when `available` has no "val"
    (whole cells of `validation_block` degrees with it); the species are
    `species`, those of `stats`, or the `num_species` most frequent of the
    training part (ties: smaller id).
    """
    validation_fraction, seed, validation_block = carve
    carve = "val" not in available and validation_fraction > 0.0
    valid = sorted(set(available) | ({"val"} if carve else set()))
    if split not in valid:
        hint = " ('val' needs validation_fraction > 0)" if split == "val" else ""
        raise ValueError(
            f"Unknown split '{split}'{hint}. Expected one of {valid} for {where}."
        )
    train_surveys, train_presence = read("train")
    n = len(train_surveys)
    is_val = np.zeros(n, bool)
    if carve and validation_block is not None:
        fractions = (1.0 - validation_fraction, validation_fraction)
        parts = spatial_parts(train_surveys, validation_block, fractions, n, seed)
        is_val[parts[1]] = True
    elif carve:
        num_val = min(max(int(round(validation_fraction * n)), 1), n - 1)
        is_val[np.random.default_rng(seed).permutation(n)[:num_val]] = True
    train_rows = np.flatnonzero(~is_val)
    if split == "train" or (split == "val" and carve):
        source, surveys, presence = "train", train_surveys, train_presence
        rows = train_rows if split == "train" else np.flatnonzero(is_val)
    else:
        source, (surveys, presence) = split, read(split)
        rows = np.arange(len(surveys))
    if species is None and stats is not None and stats.get("species") is not None:
        species = stats["species"]
        if num_species not in (None, len(species)):
            raise ValueError(
                f"`num_species={num_species}` disagrees with the {len(species)} "
                "species stored in `stats`."
            )
    if species is None and train_presence is None:
        raise ValueError("The training metadata has no 'speciesId'; pass `species`.")
    if species is None:
        train_ids = train_surveys.index.to_numpy()[train_rows]
        train = train_presence[np.isin(train_presence[:, 0], train_ids), 1]
        ids, counts = np.unique(train, return_counts=True)
        species = ids[np.lexsort((ids, -counts))][:num_species]
    species = [int(s) for s in species]
    if not species or len(set(species)) != len(species):
        raise ValueError(
            "`species` must be a non-empty list of distinct speciesId; "
            f"received {species}."
        )
    ids = surveys.index.to_numpy()[rows]
    labels = None if presence is None else _multi_hot(presence, ids, species)
    return Plan(source, rows, surveys.iloc[rows], train_rows, species, labels)


def _multi_hot(presence, ids, species):
    rows = pd.Index(ids).get_indexer(presence[:, 0])
    columns = pd.Index(species).get_indexer(presence[:, 1])
    keep = (rows >= 0) & (columns >= 0)
    labels = sparse.csr_matrix(
        (np.ones(keep.sum(), "float32"), (rows[keep], columns[keep])),
        shape=(len(ids), len(species)),
    )
    labels.data[:] = 1.0  # a species listed twice for a survey
    return labels
