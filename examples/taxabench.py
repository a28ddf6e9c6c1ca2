"""MIAM against a baseline on TaxaBench-8k style precomputed embeddings.

Loads one precomputed embedding per modality (location, environment, ground
image, audio, satellite: one token each) and the species labels with
`keras_miam.datasets.load_taxabench`, from the release's train / val / test
splits (or a seeded 70/15/15 split of a single set), trains the same
`MultimodalTransformer` classifier under each masking strategy, evaluates the
top-1 accuracy for every subset of modalities on the test split, prints the
per-subset table and writes figures and a results JSON.

    KERAS_BACKEND=jax python examples/taxabench.py --root /data/taxabench
    python examples/taxabench.py --root /data/taxabench --strategies uniform dirichlet opm miam
"""

import sys
import time
from pathlib import Path

import numpy as np

try:  # `python examples/taxabench.py`: this folder is on the import path.
    import _cli
except ModuleNotFoundError:  # imported from the repository root (the tests)
    from examples import _cli

MODALITIES = ("location", "environment", "image", "audio", "satellite")
SPLIT_NAMES = {
    "train": ("train", "training"),
    "val": ("val", "validation", "valid", "dev"),
    "test": ("test",),
}
BUNDLE_SUFFIXES = (".npz", ".pt", ".pth")


def parse_args(argv=None):
    parser = _cli.make_parser(__doc__)
    parser.add_argument(
        "--root",
        required=True,
        help="TaxaBench folder: train/ val/ test/ subfolders (or "
        "train.npz ...) of {modality}.npy + labels.npy, or a "
        "single set (folder, .npz or .pt) split 70/15/15",
    )
    parser.add_argument(
        "--modalities",
        nargs="+",
        default=list(MODALITIES),
        choices=MODALITIES,
        help="modalities to use (one token each)",
    )
    _cli.add_strategy_arguments(parser, epochs=30, batch_size=256)
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        help="AdamW learning rate (weight decay 0.01)",
    )
    parser.add_argument(
        "--embed-dim",
        type=int,
        default=64,
        help="token size of the MultimodalTransformer",
    )
    parser.add_argument("--num-layers", type=int, default=2, help="transformer blocks")
    parser.add_argument(
        "--zero-rows-as-missing",
        action="store_true",
        help="read all-zero embedding rows as missing",
    )
    _cli.add_run_arguments(parser, output="outputs/taxabench")
    args = parser.parse_args(argv)
    _cli.require_positive(
        parser, args, ("epochs", "batch_size", "embed_dim", "num_layers")
    )
    _cli.require_two_modalities(parser, args.modalities)
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras

    import keras_miam as km

    start = time.perf_counter()
    modalities = list(dict.fromkeys(args.modalities))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"keras_miam {km.__version__} on Keras {keras.__version__}, "
        f"backend {keras.backend.backend()}; writing to {out}/"
    )

    try:
        parts, origin = _load_splits(args, modalities)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    train, val, test = parts["train"], parts["val"], parts["test"]
    num_classes = int(train[1].max()) + 1
    for name in ("val", "test"):
        x, y = parts[name]
        seen = np.isin(y, np.unique(train[1]))
        if not seen.all():
            print(
                f"Note: {np.sum(~seen)} {name} example(s) of classes never seen in "
                "training are left out (the model has no output for them)."
            )
            parts[name] = ({k: v[seen] for k, v in x.items()}, y[seen])
            if not seen.any():
                raise SystemExit(
                    f"error: no {name} example has a class seen in training."
                )
    train, val, test = parts["train"], parts["val"], parts["test"]
    print(
        f"{sum(len(p[1]) for p in parts.values())} observations ({origin}), "
        f"{len(np.unique(train[1]))} species in training; train/val/test "
        f"{len(train[1])}/{len(val[1])}/{len(test[1])}; embeddings "
        + ", ".join(f"{k} {v.shape[1]}" for k, v in train[0].items())
    )
    print(
        "Missing (NaN rows) in training: "
        + ", ".join(
            f"{k} {100 * np.isnan(v).all(axis=1).mean():.0f}%"
            for k, v in train[0].items()
        )
    )

    table, runs = km.experiments.compare_strategies(
        train,
        val,
        test,
        **_cli.comparison(args),
        task="multiclass",
        model_kwargs={"num_layers": args.num_layers},
        tokenizers=lambda xs: km.experiments.default_tokenizers(
            xs, embed_dim=args.embed_dim, embedding_modalities=tuple(xs)
        ),
    )
    mean = table.attrs["mean"]
    metric = runs[0]["subsets"].attrs["metric"]
    print(f"\nTest top-1 {metric} per subset of modalities (columns: strategies):")
    print(mean.T.to_string(float_format=lambda v: f"{v:.4f}"))
    if {"uniform", "miam"} <= set(mean.index):
        gain = mean.loc["miam"] - mean.loc["uniform"]
        alone = ", ".join(f"{m} {100 * gain[m]:+.2f}" for m in modalities)
        print(
            f"\nMIAM - Uniform: average {100 * gain['average']:+.2f} points; "
            f"single modalities: {alone}"
        )

    last = _cli.plot_runs(runs, out)
    results = {
        "config": vars(args),
        "backend": keras.backend.backend(),
        "data": origin,
        "modalities": modalities,
        "num_classes": num_classes,
        "num_examples": {k: int(len(v[1])) for k, v in parts.items()},
        "metric": metric,
        **_cli.run_results(mean, runs),
    }
    if not args.no_explain:
        results["modality_shapley"] = _cli.explain(last, test, out, what=metric)
    _cli.write_results(out, results, start)
    return results


def _load_splits(args, modalities):
    """{"train", "val", "test": (x, y)} and a description of where they came from."""
    import keras_miam as km

    root = Path(args.root).expanduser()
    found = _find_splits(root)
    kwargs = dict(modalities=modalities, zero_rows_as_missing=args.zero_rows_as_missing)
    if "train" not in found:
        if found:
            raise ValueError(
                f"'{root}' has the split(s) {sorted(found.values())} but no "
                f"training split (one of {list(SPLIT_NAMES['train'])})."
            )
        x, y, _ = km.datasets.load_taxabench(root, **kwargs)
        if len(y) < 3:
            raise ValueError(
                f"'{root}' holds {len(y)} example(s); at least 3 are "
                "needed for a train/validation/test split."
            )
        train, val, test = km.datasets.split_dataset(x, y, seed=args.seed)
        return {"train": train, "val": val, "test": test}, "one set, split 70/15/15"
    parts = {}
    for part, name in found.items():
        x, y, _ = km.datasets.load_taxabench(root, split=name, **kwargs)
        parts[part] = (x, y)
    carved = [p for p in ("val", "test") if p not in parts]
    if carved:
        x, y = parts["train"]
        fractions = [0.15] * len(carved)
        if len(y) < len(carved) + 1:
            raise ValueError(
                f"The training split has {len(y)} example(s); too few to hold out "
                f"{' and '.join(carved)} examples."
            )
        pieces = km.datasets.split_dataset(
            x, y, fractions=[1.0 - sum(fractions)] + fractions, seed=args.seed
        )
        parts["train"] = pieces[0]
        for part, piece in zip(carved, pieces[1:]):
            parts[part] = piece
    origin = "splits " + ", ".join(f"{k}={found[k]}" for k in found)
    if carved:
        origin += f"; {' and '.join(carved)} held out from training (15% each)"
    return parts, origin


def _find_splits(root):
    """{"train"/"val"/"test": split name} of the splits found under `root`."""
    if not root.is_dir():
        return {}
    names = {}
    for entry in root.iterdir():
        if entry.is_dir() or entry.suffix in BUNDLE_SUFFIXES:
            names.setdefault(
                entry.stem.lower(), entry.stem if entry.is_file() else entry.name
            )
    found = {}
    for part, aliases in SPLIT_NAMES.items():
        match = next((names[a] for a in aliases if a in names), None)
        if match is not None:
            found[part] = match
    return found


if __name__ == "__main__":
    main(sys.argv[1:])
