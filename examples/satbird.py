"""MIAM against a baseline on SatBird: Sentinel-2 + environment -> encounter rates.

Loads a SatBird sub-dataset (USA_summer, USA_winter or Kenya) with
`keras_miam.datasets.load_satbird`: the centre crop of the Sentinel-2 image
("image") and the environmental rasters ("env", the values at the centre,
one token per variable, or the small rasters with `--env image`); the
targets are the species' encounter rates. Trains the same
`MultimodalTransformer` under each masking strategy, with binary
cross-entropy on the rates (SatBird's baseline loss), then prints, for every
subset of modalities on the test split, the MAE and the top-10, top-30 and
adaptive top-k accuracies, and writes figures and a results JSON.
`--dry-run` runs it all on a small generated release instead.

    KERAS_BACKEND=jax python examples/satbird.py --root /data/SatBird/USA_summer
    python examples/satbird.py --dry-run --epochs 2
"""

import sys
import time
from pathlib import Path

import numpy as np

try:  # `python examples/satbird.py`: this folder is on the import path.
    import _cli
except ModuleNotFoundError:  # imported from the repository root (the tests)
    from examples import _cli

MODALITIES = ("image", "env")


def parse_args(argv=None):
    parser = _cli.make_parser(__doc__)
    parser.add_argument(
        "--root",
        help="SatBird sub-dataset folder (train_split.csv, images/, "
        "environmental_data/, targets/); required unless --dry-run",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write a small generated release under --output and run on it",
    )
    parser.add_argument(
        "--env",
        default="center",
        choices=("center", "image"),
        help="env as the centre values (a token per variable) or small rasters",
    )
    parser.add_argument(
        "--crop-size", type=int, default=64, help="centre crop of the images (px)"
    )
    parser.add_argument(
        "--sample-weight",
        default=None,
        choices=("checklists", "sqrt", "log"),
        help="weight hotspots by their number of complete checklists",
    )
    parser.add_argument(
        "--range-mask",
        action="store_true",
        help="read range_maps.pkl (a pickle: only from a release you trust)",
    )
    _cli.add_strategy_arguments(parser, epochs=20, batch_size=64)
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="AdamW learning rate"
    )
    parser.add_argument("--embed-dim", type=int, default=64, help="token size")
    parser.add_argument("--num-layers", type=int, default=2, help="transformer blocks")
    _cli.add_run_arguments(parser, output="outputs/satbird")
    args = parser.parse_args(argv)
    if args.root is None and not args.dry_run:
        parser.error("pass --root (a SatBird sub-dataset folder) or --dry-run.")
    _cli.require_positive(
        parser, args, ("epochs", "batch_size", "embed_dim", "num_layers", "crop_size")
    )
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras
    import pandas as pd

    import keras_miam as km

    start = time.perf_counter()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(f"keras_miam on Keras {keras.__version__}, {keras.backend.backend()}")
    root = Path(args.root) if args.root else None
    if args.dry_run:
        root = write_release(out / "generated_release", image_size=2 * args.crop_size)
        print(f"Dry run on a generated release in {root}/")
    kwargs = dict(env=args.env, crop_size=args.crop_size, range_mask=args.range_mask)
    try:
        train = km.datasets.load_satbird(
            root,
            batch_size=args.batch_size,
            seed=args.seed,
            sample_weight=args.sample_weight,
            **kwargs,
        )
        val, test = (
            km.datasets.load_satbird(root, split, stats=train.stats, **kwargs)
            for split in ("valid", "test")
        )
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    val, test = _arrays(val), _arrays(test)
    print(
        f"{len(train.hotspot_ids)}/{len(val[1])}/{len(test[1])} train/valid/test "
        f"hotspots, {train.targets.shape[1]} species; inputs {train.input_shapes}"
    )
    metrics = {
        "mae": km.metrics.MaskedMeanAbsoluteError(from_logits=True),
        "top10": km.metrics.MaskedTopKAccuracy(k=10),
        "top30": km.metrics.MaskedTopKAccuracy(k=30),
        "topk": km.metrics.MaskedTopKAccuracy(),
    }
    table, runs = km.experiments.compare_strategies(
        train,
        val,
        test,
        **_cli.comparison(args),
        metric=metrics["topk"],
        compile_metrics=[metrics["mae"], metrics["topk"]],
        dynamics_kwargs={"metric": metrics["topk"]},
        model_kwargs={"num_layers": args.num_layers},
        tokenizers=lambda xs: km.experiments.default_tokenizers(
            xs, embed_dim=args.embed_dim
        ),
    )
    scores = {}
    for run in runs:
        for name, metric in metrics.items():
            frame = km.evaluation.evaluate_subsets(
                run["model"], test, metric=metric, summary=False, verbose=0
            )
            scores[(run["strategy"], name)] = frame[metric.name]
    scores = pd.DataFrame(scores)
    print("\nTest scores per subset of modalities (MAE: lower is better):")
    print(scores.to_string(float_format=lambda v: f"{v:.4f}"))
    last = _cli.plot_runs(runs, out)
    results = {
        "config": vars(args),
        "backend": keras.backend.backend(),
        "scores": {
            f"{strategy}/{name}": column.to_dict()
            for (strategy, name), column in scores.items()
        },
        **_cli.run_results(table.attrs["mean"], runs),
    }
    if not args.no_explain:
        results["modality_shapley"] = _cli.explain(
            last, test, out, what="top-k", metric=metrics["topk"]
        )
    _cli.write_results(out, results, start)
    return results


def _arrays(dataset):
    """All the batches of a dataset as `(x, y)` arrays (read once)."""
    batches = [dataset[i] for i in range(len(dataset))]
    x = {k: np.concatenate([b[0][k] for b in batches]) for k in batches[0][0]}
    return x, np.concatenate([b[1] for b in batches])


def write_release(root, num_hotspots=96, num_species=40, image_size=128, seed=0):
    """Writes a small SatBird-layout release with a learnable signal.

    A hidden 2-d state per hotspot sets its encounter rates (through a
    random linear map and a sigmoid), its 8 environmental rasters (6 x 6)
    and the brightness of its image's 4 bands; splits are 60/20/20%.
    """
    import json

    import pandas as pd
    import tifffile

    rng = np.random.default_rng(seed)
    for folder in ("images", "environmental_data", "targets"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    ids = [f"L{i:05d}" for i in range(num_hotspots)]
    state = rng.normal(size=(num_hotspots, 2))
    logits = state @ rng.normal(size=(2, num_species)) * 2 - 1
    rates = 1 / (1 + np.exp(-logits))
    rates = np.where(rng.uniform(size=rates.shape) < 0.3, 0.0, rates).round(3)
    env_map = rng.normal(size=(2, 8))
    for i, hotspot in enumerate(ids):
        env = state[i] @ env_map + rng.normal(scale=0.3, size=(6, 6, 8))
        np.save(root / "environmental_data" / f"{hotspot}.npy", env.transpose(2, 0, 1))
        bands = 1000 + 300 * np.tanh(state[i, ::-1].repeat(2)) * [1, -1, 1, -1]
        noise = rng.normal(scale=50, size=(4, image_size, image_size))
        image = (bands[:, None, None] + noise).astype("uint16")
        tifffile.imwrite(root / "images" / f"{hotspot}.tif", image)
        target = {"probs": rates[i].tolist(), "num_complete_checklists": 5 + i % 20}
        (root / "targets" / f"{hotspot}.json").write_text(json.dumps(target))
    cuts = np.split(np.asarray(ids), [int(0.6 * num_hotspots), int(0.8 * num_hotspots)])
    for split, part in zip(("train", "valid", "test"), cuts):
        pd.DataFrame({"hotspot_id": part}).to_csv(root / f"{split}_split.csv")
    return root


if __name__ == "__main__":
    main(sys.argv[1:])
