"""One vocabulary for selections: subset <-> token pattern <-> label.

A *subset* is a tuple of modality names; a *selection* is what
`MIAMMasking.visible_pattern()` accepts (a name, a list of names, a dict of
token selections, None for everything); a *pattern* is a (T,) boolean
array over the layer's tokens. Every table, JSON file, figure and Shapley
result names a selection with the one label format of this file: the
modalities it shows, in the layer's order, joined by "+" ("env+image"),
a partly shown modality with its share of tokens ("climate[12/48]"), and
"(nothing)" when no token is visible.
"""

import itertools

import numpy as np

SEPARATOR = "+"
NOTHING = "(nothing)"


def subset_label(subset):
    """The label of a subset of modalities: `("env", "image")` -> 'env+image'.

    Args:
        subset: an iterable of modality names (a single name is one
            modality).

    Returns:
        str; '(nothing)' for the empty subset.
    """
    if isinstance(subset, str):
        subset = [subset]
    return SEPARATOR.join(subset) or NOTHING


def parse_label(label):
    """The modality names of a subset label: 'env+image' -> ('env', 'image').

    Labels written with spaces ('env + image', as older tables and cached
    runs have them) are read too.
    """
    label = str(label).strip()
    if label == NOTHING:
        return ()
    return tuple(part.strip() for part in label.split(SEPARATOR))


def all_subsets(modalities, include_empty=False):
    """Every subset of the modalities, by size, then in modality order.

    Args:
        modalities: the names.
        include_empty: whether to start with the empty subset `()`.

    Returns:
        a list of tuples: 2^M - 1 (or 2^M) subsets.
    """
    modalities = list(modalities)
    first = 0 if include_empty else 1
    return [
        names
        for size in range(first, len(modalities) + 1)
        for names in itertools.combinations(modalities, size)
    ]


def subset_selection(modalities, subset):
    """A selection dict listing every modality: True when in `subset`.

    Listing them all keeps the empty subset a valid selection (every token
    hidden).
    """
    members = set([subset] if isinstance(subset, str) else subset)
    return {name: name in members for name in modalities}


def pattern_selection(layer, pattern):
    """The selection dict of a (T,) token pattern (every modality listed)."""
    return {m: np.asarray(pattern[a:b]) for m, (a, b) in layer.token_slices.items()}


def pattern_label(layer, pattern):
    """The label of a token pattern: 'env+climate[12/48]'.

    Args:
        layer: a built `MIAMMasking`.
        pattern: (T,) booleans.

    Returns:
        str; '(nothing)' when no token is visible.
    """
    parts = []
    for name, (start, stop) in layer.token_slices.items():
        shown = int(np.sum(pattern[start:stop]))
        if shown == stop - start:
            parts.append(name)
        elif shown:
            parts.append(f"{name}[{shown}/{stop - start}]")
    return subset_label(parts)


def parse_subsets(subsets, layer):
    """Labels, selections and visible fractions of the subsets to evaluate.

    Args:
        subsets: 'all' (every non-empty subset of the layer's modalities),
            a list whose items are a modality name, a list/tuple of names,
            a selection dict, or a `(label, selection)` pair; or a dict
            `{label: selection}`. Unlabelled selections get
            `pattern_label()`.
        layer: the built `MIAMMasking`.

    Returns:
        `(labels, selections, fractions)`: two lists, and a float array
        `(S, M)`, the fraction of each modality's tokens that each subset
        shows.

    Raises:
        ValueError: for an empty list, an empty selection, unknown names
            or repeated labels.
    """
    if isinstance(subsets, str) and subsets == "all":
        items = [(None, list(names)) for names in all_subsets(layer.modalities)]
    elif isinstance(subsets, dict):
        items = list(subsets.items())
    elif isinstance(subsets, (list, tuple)):
        items = []
        for item in subsets:
            labelled = (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[0], str)
                and not isinstance(item[1], str)
            )
            items.append(item if labelled else (None, item))
    else:
        raise ValueError(
            "`subsets` must be 'all', a list of selections or a dict "
            f"{{label: selection}}; received {subsets!r}."
        )
    if not items:
        raise ValueError("`subsets` is empty: pass 'all' or at least one selection.")
    labels, selections, patterns = [], [], []
    for label, selection in items:
        if selection is None or (
            isinstance(selection, (list, tuple, dict)) and not selection
        ):
            raise ValueError(
                f"Empty selection {selection!r} in `subsets`: list at least "
                f"one of {layer.modalities} (a dict listing modalities as "
                "False selects nothing)."
            )
        if isinstance(selection, tuple):
            selection = list(selection)
        pattern = layer.visible_pattern(selection)
        labels.append(pattern_label(layer, pattern) if label is None else str(label))
        selections.append(selection)
        patterns.append(pattern)
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        raise ValueError(
            f"Subset labels must be unique; {duplicated} appear more than "
            "once. Label the selections, e.g. subsets={label: selection}."
        )
    fractions = np.array(
        [
            [pattern[a:b].mean() for a, b in layer.token_slices.values()]
            for pattern in patterns
        ]
    )
    return labels, selections, fractions
