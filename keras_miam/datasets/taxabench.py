"""Loads TaxaBench-8k style precomputed embeddings (one token per modality)."""

from pathlib import Path

import numpy as np

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import positive_int
from keras_miam.datasets.checks import to_float32

TAXABENCH_MODALITIES = ("location", "environment", "image", "audio", "satellite")
_ALIASES = {
    "location": ("location", "loc", "gps", "coordinates"),
    "environment": ("environment", "env", "environmental"),
    "image": ("image", "ground_image", "ground", "img", "photo"),
    "audio": ("audio", "aud", "sound"),
    "satellite": ("satellite", "sat", "satellite_image", "sat_image"),
}
_LABEL_KEYS = ("labels", "label", "y", "targets", "species")
_LAYOUT_HELP = (
    "a folder of {modality}.npy or .pt (N, E) and labels.npy or .pt (N,), a .npz "
    "or .pt dict of them, or the same as {split}/, {split}.npz or {split}.pt"
)


def load_taxabench(
    source,
    split=None,
    modalities=TAXABENCH_MODALITIES,
    num_classes=None,
    one_hot=False,
    zero_rows_as_missing=False,
):
    """Loads TaxaBench-8k style per-modality embeddings and species labels.

    TaxaBench-8k (TaxaBind) pairs 8,813 iNaturalist observations of 199
    species with five modalities; MIAM uses one precomputed embedding per
    modality, i.e. one token each. Expected layout (`{modality}` one of the
    five names, or an alias such as the MIAM release's `loc`, `env`, `img`,
    `aud` and `sat`):

        root/{split}/{modality}.npy    # (N, E_m) float, NaN row = missing
        root/{split}/labels.npy        # (N,) integer class ids
        # or .pt tensors instead of .npy files, or root/{split}.npz or
        # root/{split}.pt holding a dict {modality: array, "labels": array}

    With `split=None`, `source` itself is the folder, the file, or a dict of
    arrays. Missing values (`keras_miam.missing.is_missing`) are NaN.

    Args:
        source: path of a folder, a .npz or .pt file, or a dict of arrays.
        split: optional split name (see the layout).
        modalities: names among location, environment, image, audio,
            satellite; each must be present.
        num_classes: int, number of classes; default `max(label) + 1`.
        one_hot: bool, `y` one-hot `(N, num_classes)` float32 instead of
            int32 class ids `(N,)`.
        zero_rows_as_missing: bool, all-zero rows (a common placeholder for
            a missing recording) are missing too.

    Returns:
        `(x, y, info)`: `x` a dict {modality: float32 array (N, E_m)}, `y`
        the labels, and `info` a dict with "num_examples", "num_classes",
        "embedding_dims", "missing_fraction" (all-NaN rows per modality),
        "split" and "sources" (file of each array).

    Example:

    ```python
    x, y, info = keras_miam.datasets.load_taxabench("/data/taxabench", "train")
    ```

    Reference:
        Sastry et al., "TaxaBind: A Unified Embedding Space for Ecological
        Applications", WACV 2025.
    """
    modalities = check_modalities(modalities, TAXABENCH_MODALITIES)
    origin = "arrays"
    if not isinstance(source, dict):
        source, origin = _find(Path(source).expanduser(), split)
    arrays = {str(k).lower(): v for k, v in source.items()}
    keys = {}
    for name in ("labels", *modalities):
        names = _ALIASES.get(name, _LABEL_KEYS)
        keys[name] = next((a for a in names if a in arrays), None)
        if keys[name] is None:
            raise FileNotFoundError(
                f"No '{name}' array (names tried: {list(names)}) among "
                f"{sorted(arrays)}. Expected {_LAYOUT_HELP}."
            )
    x = {name: to_float32(_load(arrays[keys[name]])) for name in modalities}
    for name, values in x.items():
        if values.ndim != 2:
            raise ValueError(
                f"'{name}' embeddings have shape {values.shape}; expected "
                "(num_examples, embedding_dim)."
            )
        if zero_rows_as_missing:
            values[np.all(values == 0.0, axis=1)] = np.nan

    labels = _load(arrays[keys["labels"]])
    labels = labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels
    as_float = labels.astype("float64")
    if labels.ndim != 1 or not np.all(
        np.isfinite(as_float) & (as_float == np.round(as_float)) & (as_float >= 0)
    ):
        raise ValueError(
            f"Labels must be integer class ids >= 0 of shape (num_examples,); "
            f"received shape {labels.shape}, first values {labels[:5].tolist()}."
        )
    labels = as_float.astype("int32")
    lengths = {name: len(v) for name, v in x.items()}
    if len(set(lengths.values()) | {len(labels)}) != 1:
        raise ValueError(
            "Embeddings and labels must have the same number of examples; "
            f"received {dict(lengths, labels=len(labels))}."
        )
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    elif labels.max() >= positive_int(num_classes, "num_classes"):
        raise ValueError(
            f"Label {labels.max()} is out of range for num_classes={num_classes}."
        )
    y = np.eye(num_classes, dtype="float32")[labels] if one_hot else labels
    info = {
        "num_examples": len(labels),
        "num_classes": int(num_classes),
        "embedding_dims": {k: v.shape[1] for k, v in x.items()},
        "missing_fraction": {
            k: float(np.isnan(v).all(axis=1).mean()) for k, v in x.items()
        },
        "split": split,
        "sources": {
            k: str(arrays[key] if isinstance(arrays[key], Path) else origin)
            for k, key in keys.items()
        },
    }
    return x, y, info


def _find(path, split):
    """`({name: array or file}, path)` of a folder, .npz or .pt (of `split`)."""
    if not path.exists():
        raise FileNotFoundError(
            f"TaxaBench source '{path}' does not exist. Expected {_LAYOUT_HELP}."
        )
    if split is not None:
        tried = [path / f"{split}{s}" for s in ("", ".npz", ".pt", ".pth")]
        path = next((p for p in tried if p.exists()), None)
        if path is None:
            raise ValueError(
                f"Unknown split '{split}': none of {[str(p) for p in tried]} "
                f"exists. Expected {_LAYOUT_HELP}."
            )
    if path.is_dir():  # files are read only when their modality is requested
        suffixes = (".npy", ".pt", ".pth")
        files = {f.stem.lower(): f for f in path.iterdir() if f.suffix in suffixes}
        if not files:
            raise FileNotFoundError(
                f"No .npy or .pt arrays in '{path}'. Expected {_LAYOUT_HELP}."
            )
        return files, path
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as bundle:
            return {k: bundle[k] for k in bundle.files}, path
    content = _load(path) if path.suffix in (".pt", ".pth") else None
    if not isinstance(content, dict):
        raise ValueError(f"'{path}' is not a dict of arrays; expected {_LAYOUT_HELP}.")
    return content, path


def _load(value):
    """`value` as a numpy array (a dict as is), reading it if it is a file."""
    if isinstance(value, Path) and value.suffix == ".npy":
        return np.load(value, allow_pickle=False)
    if isinstance(value, Path):
        import torch  # only for .pt files

        value = torch.load(value, map_location="cpu", weights_only=True)
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return value if isinstance(value, dict) else np.asarray(value)
