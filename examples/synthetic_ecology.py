"""The main job: MIAM against a baseline on the built-in synthetic ecology data.

Generates presence/absence data for 20 species, trains the same
`MultimodalTransformer` under each strategy, evaluates every subset of
modalities on a held-out test split, prints the per-subset table and writes
figures and a results JSON. Two scenarios (`--scenario`):

- `redundant` (the default): the gated testbed of `benchmarks/testbed_gate.py`
  (`redundant_M2` in `benchmarks/common.py`). An environmental table that
  dominates and 4-band image patches that show only what env shows (its soil
  latent, through a product code in one patch, with no linear shortcut):
  joint training fits env first and the image pathway stays under-trained, so
  imbalance costs accuracy on the image alone. This is where the measured
  tables show what MIAM does (`benchmarks/results/strategies_testbed.md`).
  3000 sites, 16 epochs, the checkpoint of lowest validation loss kept.
- `texture`: the generator's default four modalities (env, monthly climate,
  quarterly Landsat-like series, images whose habitat texture no other
  modality carries), mild imbalance, 10000 sites, 12 epochs. There imbalance
  costs speed, not accuracy (`benchmarks/results/strategies.md`).

    KERAS_BACKEND=torch python examples/synthetic_ecology.py  # fastest on a CPU
    python examples/synthetic_ecology.py --scenario texture
    python examples/synthetic_ecology.py --strategies uniform miam opm --epochs 20
"""

import json
import time
from pathlib import Path

import numpy as np

try:  # `python examples/synthetic_ecology.py`: this folder is on the import path.
    import _cli
except ModuleNotFoundError:  # imported from the repository root (the tests)
    from examples import _cli

SCENARIOS = {
    # The testbed accepted by benchmarks/testbed_gate.py (attempt A5) and its
    # model (D = 32, 4 heads, 8 tokens at most per image: 2 x 2 patches).
    "redundant": {
        "num_examples": 3000,
        "imbalance": "mild",
        "modalities": ("env", "image"),
        "generator": {
            "redundancy": 1.0,
            "image_code": "quadrant_product",
            "image_species_fraction": 1.0,
        },
        "epochs": 16,
        "embed_dim": 32,
        "model": {"num_heads": 4},
        "max_tokens": 8,
        "restore_best": "val_loss",
    },
    "texture": {
        "num_examples": 10000,
        "imbalance": "mild",
        "modalities": ("env", "climate", "landsat", "image"),
        "generator": {},
        "epochs": 12,
        "embed_dim": 48,
        "model": {},
        "max_tokens": 16,
        "restore_best": None,
    },
}


def parse_args(argv=None):
    parser = _cli.make_parser(__doc__)
    parser.add_argument(
        "--scenario",
        choices=list(SCENARIOS),
        default="redundant",
        help="data and model preset (see the module docstring)",
    )
    _cli.add_strategy_arguments(
        parser,
        epochs=None,
        batch_size=128,
        epochs_help="training epochs per strategy (redundant: 16, texture: 12)",
    )
    parser.add_argument(
        "--num-examples",
        type=int,
        help="synthetic sites generated (redundant: 3000, texture: 10000)",
    )
    parser.add_argument(
        "--imbalance",
        help="'strong', 'mild' or a ratio (env : image effect scale); both "
        "scenarios use 'mild'",
    )
    parser.add_argument(
        "--embed-dim",
        type=int,
        help="token size of the transformer (redundant: 32, texture: 48)",
    )
    parser.add_argument("--num-layers", type=int, default=2, help="transformer blocks")
    _cli.add_run_arguments(
        parser,
        output="outputs/synthetic_ecology",
        seed_help="seeds the data, weights and masking",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras

    import keras_miam as km

    start = time.perf_counter()
    strategies = [args.strategy] if args.strategy else args.strategies
    preset = SCENARIOS[args.scenario]
    for key in ("epochs", "num_examples", "imbalance", "embed_dim"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    imbalance = args.imbalance
    try:
        imbalance = float(imbalance)
    except ValueError:
        pass
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"keras_miam {km.__version__} on Keras {keras.__version__}, "
        f"backend {keras.backend.backend()}; writing to {out}/"
    )

    x, y, info = km.datasets.make_synthetic_ecology(
        args.num_examples,
        imbalance=imbalance,
        modalities=preset["modalities"],
        seed=args.seed,
        **preset["generator"],
    )
    train, val, test = km.datasets.split_dataset(x, y, seed=args.seed)
    print(
        f"Scenario {args.scenario}: {len(y)} sites, {y.shape[1]} species; modalities "
        + ", ".join(f"{k} {v.shape[1:]}" for k, v in x.items())
        + f"; train/val/test {len(train[1])}/{len(val[1])}/{len(test[1])}"
    )

    table, runs = km.experiments.compare_strategies(
        train,
        val,
        test,
        strategies=strategies,
        seeds=[args.seed],
        epochs=args.epochs,
        batch_size=args.batch_size,
        model_kwargs={"num_layers": args.num_layers, **preset["model"]},
        tokenizers=lambda xs: km.experiments.default_tokenizers(
            xs, embed_dim=args.embed_dim, max_tokens=preset["max_tokens"]
        ),
        restore_best=preset["restore_best"],
    )
    mean = table.attrs["mean"]
    print("\nTest macro AUC per subset of modalities (rows: strategies):")
    print(mean.T.to_string(float_format=lambda v: f"{v:.4f}"))
    weak = "image"
    if {"uniform", "miam"} <= set(mean.index):
        gain = mean.loc["miam"] - mean.loc["uniform"]
        print(
            f"\nMIAM - Uniform: average {100 * gain['average']:+.2f} AUC points, "
            f"{weak} alone {100 * gain[weak]:+.2f} points"
        )

    # MIAM's promise: the dominant modality masked more (r_m > 1).
    for run in runs:
        ratios = {m: run["history"].get(f"{m}_mask_ratio") for m in x}
        # Epochs 2..E: one epoch gives no ratio to average.
        if run["strategy"] == "miam" and all(r and len(r) > 1 for r in ratios.values()):
            mean_r = {m: np.exp(np.mean(np.log(r[1:]))) for m, r in ratios.items()}
            print(
                "\nMIAM's mean mask ratio r_m (geometric mean, epochs 2..E): "
                + ", ".join(f"{m} {v:.2f}" for m, v in mean_r.items())
            )

    # Figures.
    frames = {run["strategy"]: run["subsets"] for run in runs}
    km.plotting.plot_subsets(frames, path=out / "subsets.png")
    for run in runs:
        km.plotting.plot_dynamics(
            run["history"], path=out / f"dynamics_{run['strategy']}.png"
        )
    last = runs[-1]
    masking = last["model"].masking
    km.plotting.plot_strategies(
        num_modalities=len(x), path=out / "strategies_hypercube.png"
    )
    km.plotting.plot_hypercube(
        masking, path=out / f"hypercube_{last['strategy']}_trained.png"
    )
    results = {
        "scenario": args.scenario,
        "config": vars(args),
        "backend": keras.backend.backend(),
        "generator": info,
        "table": {
            s: {k: float(v) for k, v in row.items()} for s, row in mean.iterrows()
        },
        "fit_seconds": {run["strategy"]: run["fit_seconds"] for run in runs},
        "final_mask_ratios": {
            run["strategy"]: run["model"].masking.mask_ratios().tolist() for run in runs
        },
    }
    if not args.no_explain:
        model = last["model"]
        shapley = km.explain.modality_shapley(model, test, verbose=0)
        km.plotting.plot_shapley(shapley, path=out / "modality_shapley.png")
        print(f"\nModality Shapley values ({last['strategy']}, test AUC):")
        print(shapley.to_string())
        results["modality_shapley"] = (
            {k: float(v) for k, v in shapley["value"].items()}
            if hasattr(shapley, "columns")
            else shapley.to_dict()
        )
        rows, cols = model.tokenizers["image"].grid_shape  # the patch grid
        sample = (tuple_slice(test[0], 1000), test[1][:1000])
        image_values = km.explain.token_shapley(
            model,
            sample,
            groups={
                f"patch {i}": {"image": [i]}
                for i in range(masking.token_counts[list(x).index("image")])
            },
            num_permutations=8,
            seed=args.seed,
            verbose=0,
        )
        km.plotting.plot_image_contributions(
            image_values, (rows, cols), path=out / "image_contributions.png"
        )
    results["total_seconds"] = time.perf_counter() - start
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(
        f"\nWrote {sorted(p.name for p in out.iterdir())} to {out}/ "
        f"in {results['total_seconds']:.0f} s"
    )
    return results


def tuple_slice(x, n):
    return {k: v[:n] for k, v in x.items()}


if __name__ == "__main__":
    main()
