"""Loads TaxaBench-8k style precomputed embeddings (one token per modality)."""

from pathlib import Path

import numpy as np

from keras_miam.datasets.checks import check_modalities
from keras_miam.datasets.checks import positive_int

TAXABENCH_MODALITIES = (
    "location",
    "environment",
    "image",
    "audio",
    "satellite",
)
_ALIASES = {
    "location": ("location", "loc", "gps", "coordinates"),
    "environment": ("environment", "env", "environmental"),
    "image": ("image", "ground_image", "ground", "img", "photo"),
    "audio": ("audio", "aud", "sound"),
    "satellite": ("satellite", "sat", "satellite_image", "sat_image"),
}
_LABEL_KEYS = ("labels", "label", "y", "targets", "species")
_ARRAY_SUFFIXES = (".npy", ".pt", ".pth")
_BUNDLE_SUFFIXES = (".npz", ".pt", ".pth")
_LAYOUT_HELP = (
    "either a folder with one file per modality ({modality}.npy or .pt, "
    "shape (N, E)) and labels.npy / labels.pt (N,), a .npz file (or a .pt "
    "dict) with those names as keys, or the same under {split}/ or "
    "{split}.npz / {split}.pt"
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
    modality, i.e. one token each. Expected layout (`{modality}` is one of
    location, environment, image, audio, satellite; the keys of the MIAM
    release's `taxabench_embeds_loc_env_img_aud_sat.pt`, `loc`, `env`,
    `img`, `aud` and `sat`, and aliases such as `ground_image` or `sound`
    are accepted):

        root/{split}/{modality}.npy    # (N, E_m) float, NaN row = missing
        root/{split}/labels.npy        # (N,) integer class ids
        # or root/{split}.npz with arrays {modality} and "labels",
        # or root/{split}.pt, a dict {modality: tensor, "labels": tensor},
        # or per-modality .pt tensors instead of .npy files.

    With `split=None`, `source` itself is the folder or file. `source` may
    also be a dict of arrays `{modality: (N, E_m), "labels": (N,)}`.
    Missing embeddings (NaN rows) stay NaN, and so do +-inf values; with
    `zero_rows_as_missing`, all-zero rows (a common placeholder for a
    missing audio recording) become NaN too.

    Args:
        source: path of a folder, a .npz file or a .pt file, or a dict of
            arrays.
        split: optional split name ("train", "val", "test", ...), looked up
            as `source/{split}/`, `source/{split}.npz` or `source/{split}.pt`.
        modalities: names among location, environment, image, audio,
            satellite; each must be present.
        num_classes: int, number of classes; default `max(label) + 1`.
        one_hot: bool, return `y` one-hot `(N, num_classes)` float32 instead
            of int32 class ids `(N,)`.
        zero_rows_as_missing: bool, read all-zero embedding rows as missing.

    Returns:
        `(x, y, info)`: `x` a dict {modality: float32 array (N, E_m)}, `y`
        the labels, and `info` a dict with "num_examples", "num_classes",
        "embedding_dims", "missing_fraction" (all-NaN rows per modality),
        "split" and "sources" (file of each array).

    Example:

    ```python
    x, y, info = load_taxabench("/data/taxabench", split="train")
    sorted(x), info["num_classes"]
    # (['audio', 'environment', 'image', 'location', 'satellite'], 199)
    ```

    Reference:
        Sastry et al., "TaxaBind: A Unified Embedding Space for Ecological
        Applications", WACV 2025.
    """
    modalities = check_modalities(modalities, TAXABENCH_MODALITIES)
    if isinstance(source, dict):
        arrays = {str(k).lower(): (lambda v=v: v) for k, v in source.items()}
        sources = {k: "arrays" for k in arrays}
    else:
        arrays, sources = _from_path(Path(source).expanduser(), split)
    labels_key = next((k for k in _LABEL_KEYS if k in arrays), None)
    if labels_key is None:
        raise ValueError(
            f"No labels found in {sorted(arrays)}; expected one of "
            f"{list(_LABEL_KEYS)} next to the embeddings."
        )
    x = {}
    for name in modalities:
        key = next((a for a in _ALIASES[name] if a in arrays), None)
        if key is None:
            raise FileNotFoundError(
                f"No '{name}' embeddings (names tried: {list(_ALIASES[name])}) "
                f"among {sorted(arrays)}. Expected {_LAYOUT_HELP}."
            )
        values = np.asarray(arrays[key](), dtype="float64")
        if values.ndim == 1 or values.ndim > 2:
            raise ValueError(
                f"'{name}' embeddings have shape {values.shape}; expected "
                "(num_examples, embedding_dim)."
            )
        values = np.where(np.isfinite(values), values, np.nan)
        if zero_rows_as_missing:
            values[np.all(values == 0.0, axis=1)] = np.nan
        x[name] = values.astype("float32")
        sources[name] = sources[key]

    labels = np.asarray(arrays[labels_key]())
    labels = _check_labels(labels, num_classes)
    lengths = {name: len(v) for name, v in x.items()}
    lengths["labels"] = len(labels)
    if len(set(lengths.values())) != 1:
        raise ValueError(
            "Embeddings and labels must have the same number of examples; "
            f"received {lengths}."
        )
    num_classes = int(num_classes) if num_classes else int(labels.max()) + 1
    if one_hot:
        y = np.zeros((len(labels), num_classes), "float32")
        y[np.arange(len(labels)), labels] = 1.0
    else:
        y = labels.astype("int32")
    info = {
        "num_examples": int(len(labels)),
        "num_classes": num_classes,
        "embedding_dims": {k: int(v.shape[1]) for k, v in x.items()},
        "missing_fraction": {
            k: float(np.isnan(v).all(axis=1).mean()) for k, v in x.items()
        },
        "split": split,
        "sources": {k: str(sources.get(k)) for k in list(x) + [labels_key]},
    }
    return x, y, info


def _from_path(path, split):
    if not path.exists():
        raise FileNotFoundError(
            f"TaxaBench source '{path}' does not exist. Expected {_LAYOUT_HELP}."
        )
    if split is not None:
        if not path.is_dir():
            raise FileNotFoundError(
                f"With split='{split}', '{path}' must be a folder holding "
                f"{split}/, {split}.npz or {split}.pt."
            )
        candidates = [path / split] + [path / f"{split}{s}" for s in _BUNDLE_SUFFIXES]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            available = sorted(
                p.stem
                for p in path.iterdir()
                if p.is_dir() or p.suffix in _BUNDLE_SUFFIXES
            )
            raise ValueError(
                f"Unknown split '{split}' under '{path}'; found {available}. "
                f"Expected {_LAYOUT_HELP}."
            )
        path = found
    if path.is_dir():
        # Files are only read when their modality is requested.
        arrays, sources = {}, {}
        for file in sorted(path.iterdir()):
            if file.suffix in _ARRAY_SUFFIXES and file.is_file():
                key = file.stem.lower()
                arrays[key] = lambda file=file: _load_array(file)
                sources[key] = file
        if not arrays:
            raise FileNotFoundError(
                f"No .npy or .pt arrays in '{path}'. Expected {_LAYOUT_HELP}."
            )
        return arrays, sources
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as bundle:
            names = {k.lower(): k for k in bundle.files}

        def read(name):
            with np.load(path, allow_pickle=False) as bundle:
                return bundle[name]

        arrays = {k: (lambda n=n: read(n)) for k, n in names.items()}
    elif path.suffix in (".pt", ".pth"):
        content = _torch_load(path)
        if not isinstance(content, dict):
            raise ValueError(
                f"'{path}' holds a {type(content).__name__}; expected a dict "
                "{modality: tensor, 'labels': tensor}."
            )
        arrays = {
            str(k).lower(): (lambda v=v: _to_numpy(v)) for k, v in content.items()
        }
    elif path.suffix == ".npy":
        raise ValueError(f"'{path}' is a single array; expected {_LAYOUT_HELP}.")
    else:
        raise ValueError(f"Unsupported file '{path}'. Expected {_LAYOUT_HELP}.")
    return arrays, {k: path for k in arrays}


def _load_array(file):
    if file.suffix == ".npy":
        return np.load(file, allow_pickle=False)
    return _to_numpy(_torch_load(file))


def _torch_load(file):
    import torch  # Only needed for .pt files.

    return torch.load(file, map_location="cpu", weights_only=True)


def _to_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _check_labels(labels, num_classes):
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise ValueError(
            f"Labels have shape {labels.shape}; expected integer class ids of "
            "shape (num_examples,)."
        )
    labels = labels.reshape(len(labels))
    as_float = labels.astype("float64")
    if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
        raise ValueError("Labels must be integer class ids (no NaN or fractions).")
    labels = as_float.astype("int64")
    if num_classes is not None:
        num_classes = positive_int(num_classes, "num_classes")
    if len(labels) and labels.min() < 0:
        raise ValueError(f"Labels must be >= 0; found {labels.min()}.")
    if num_classes is not None and len(labels) and labels.max() >= num_classes:
        raise ValueError(
            f"Label {labels.max()} is out of range for num_classes={num_classes}."
        )
    return labels
