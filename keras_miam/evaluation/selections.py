"""Subsets (tuples of modality names), selections (what
`MIAMMasking.visible_pattern()` accepts), (T,) token patterns, and their
labels: "env+image", "climate[12/48]" for a partial modality, "(nothing)"."""

import itertools

import numpy as np

SEPARATOR = "+"
NOTHING = "(nothing)"


def subset_label(subset):
    """`("env", "image")` -> 'env+image' ('(nothing)' for the empty subset)."""
    subset = [subset] if isinstance(subset, str) else subset
    return SEPARATOR.join(subset) or NOTHING


def parse_label(label):
    """'env+image' -> ('env', 'image'); 'env + image' is read too."""
    label = str(label).strip()
    return () if label == NOTHING else tuple(p.strip() for p in label.split(SEPARATOR))


def all_subsets(modalities, include_empty=False):
    """Every subset of the modalities, by size, then in modality order."""
    modalities = list(modalities)
    return [
        names
        for size in range(0 if include_empty else 1, len(modalities) + 1)
        for names in itertools.combinations(modalities, size)
    ]


def subset_selection(modalities, subset):
    """A selection dict listing every modality (so the empty subset hides all)."""
    members = {subset} if isinstance(subset, str) else set(subset)
    return {name: name in members for name in modalities}


def pattern_selection(layer, pattern):
    """The selection dict of a (T,) token pattern (every modality listed)."""
    return {m: np.asarray(pattern[a:b]) for m, (a, b) in layer.token_slices.items()}


def pattern_label(layer, pattern):
    """The label of a (T,) token pattern of a built `MIAMMasking`."""
    parts = []
    for name, (start, stop) in layer.token_slices.items():
        shown = int(np.sum(pattern[start:stop]))
        if shown:
            parts.append(
                name if shown == stop - start else f"{name}[{shown}/{stop - start}]"
            )
    return subset_label(parts)


def parse_subsets(subsets, layer):
    """Labels, selections and visible fractions `(S, M)` of `evaluate_subsets`'
    `subsets` (see there)."""
    if isinstance(subsets, str) and subsets == "all":
        subsets = [list(names) for names in all_subsets(layer.modalities)]
    labelled = isinstance(subsets, dict)
    subsets = list(subsets.items()) if labelled else subsets
    if not isinstance(subsets, (list, tuple)):
        raise ValueError(
            "`subsets` must be 'all', a list of selections or a dict "
            f"{{label: selection}}; received {subsets!r}."
        )
    if not subsets:
        raise ValueError("`subsets` is empty: pass 'all' or at least one selection.")
    labels, selections, fractions = [], [], []
    for item in subsets:
        pair = isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
        pair = labelled or (pair and not isinstance(item[1], str))
        label, selection = item if pair else (None, item)
        if selection is None or (
            isinstance(selection, (list, tuple, dict)) and not selection
        ):
            raise ValueError(
                f"Empty selection {selection!r} in `subsets`: list at least one "
                f"of {layer.modalities} (a dict listing modalities as False "
                "selects nothing)."
            )
        selection = list(selection) if isinstance(selection, tuple) else selection
        pattern = layer.visible_pattern(selection)
        labels.append(pattern_label(layer, pattern) if label is None else str(label))
        selections.append(selection)
        fractions.append([pattern[a:b].mean() for a, b in layer.token_slices.values()])
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        raise ValueError(
            f"Subset labels must be unique; {duplicated} appear more than once. "
            "Label the selections, e.g. subsets={label: selection}."
        )
    return labels, selections, np.array(fractions)
