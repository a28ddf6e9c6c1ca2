"""MIAM against a baseline on GeoPlant / GeoLifeCLEF 2024-2025 surveys.

Loads a presence-absence release with `keras_miam.datasets.load_geoplant`
(the K most frequent species of the training surveys as labels, the
environmental table, the monthly climate and quarterly Landsat series and the
Sentinel-2 patches as modalities; every modality the release has files for by
default), holds out training surveys for validation, tests on a labelled test
split of the release (or on held-out training surveys when it has none),
trains the same `MultimodalTransformer` under each masking strategy while
streaming the training surveys from disk, evaluates every subset of
modalities on the test surveys, prints the per-subset table and writes
figures and a results JSON.

    KERAS_BACKEND=jax python examples/geoplant.py --root /data/geoplant
    python examples/geoplant.py --root /data/geoplant --species 200 \\
        --modalities env climate image --strategies uniform opm miam --epochs 20
    # The paper's configuration, reading a one-time array cache, on a GPU:
    KERAS_BACKEND=jax python examples/geoplant.py --root /data/geoplant \\
        --preset paper --cache-dir /scratch/geoplant_cache --mixed-precision \\
        --data-parallel --epochs 50

The best-validation weights (lowest validation loss) are kept, in
`OUTPUT/best_{strategy}.weights.h5`, and evaluated. The test table adds
GeoLifeCLEF's samples-averaged top-25 F1 of the full model.
"""

import functools
import sys
import time
from pathlib import Path

import numpy as np

try:  # `python examples/geoplant.py`: this folder is on the import path.
    import _cli
except ModuleNotFoundError:  # imported from the repository root (the tests)
    from examples import _cli

MODALITIES = ("env", "climate", "landsat", "image")
TEST_SPLIT_ORDER = ("test_iid", "test", "test_ood", "test_glc25")
# Settings a preset fills in when not given on the command line.
PRESETS = {
    "default": {
        "species": 100,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "embed_dim": 64,
        "num_layers": 2,
        "num_heads": 4,
        "ff_dim": None,
        "dropout": 0.1,
    },
    # Zbinden et al. (ICLR 2026) on GeoPlant: d = 192, 7 blocks, 8 heads,
    # FFN 256, dropout 0.1, AdamW (1e-3, weight decay 0.01), batch 256, the
    # 1,783 most frequent species, tabular + time series (climate, Landsat)
    # + satellite modalities.
    "paper": {
        "species": 1783,
        "batch_size": 256,
        "learning_rate": 1e-3,
        "embed_dim": 192,
        "num_layers": 7,
        "num_heads": 8,
        "ff_dim": 256,
        "dropout": 0.1,
    },
}
# MIAM's lambda per preset: the paper reports kappa = 10, lambda = 3 on
# GeoPlant (lambda = 1 on TaxaBench, the library default).
MIAM_LAMBDA = {"paper": 3.0}


def parse_args(argv=None):
    parser = _cli.make_parser(__doc__)
    parser.add_argument(
        "--root",
        required=True,
        help="folder of a GeoPlant / GeoLifeCLEF 2024-2025 presence-absence release",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="model and training settings; options given on the command line "
        "win. paper: d=192, 7 blocks, 8 heads, FFN 256, dropout 0.1, batch 256, "
        "1783 species",
    )
    parser.add_argument(
        "--species",
        type=int,
        default=None,
        help="predict the K most frequent species of the "
        "training surveys (0: every species; default 100, paper preset 1783)",
    )
    parser.add_argument(
        "--modalities",
        nargs="+",
        default=None,
        choices=MODALITIES,
        help="modalities to use (default: every one the release has files for)",
    )
    _cli.add_strategy_arguments(
        parser,
        epochs=10,
        batch_size=None,
        batch_size_help="examples per training step (default 128, paper preset 256)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="AdamW learning rate, weight decay 0.01 (default 1e-3)",
    )
    parser.add_argument(
        "--embed-dim",
        type=int,
        default=None,
        help="token size of the MultimodalTransformer (default 64, paper 192)",
    )
    parser.add_argument(
        "--num-layers",
        type=int,
        default=None,
        help="transformer blocks (default 2, paper 7)",
    )
    parser.add_argument(
        "--num-heads",
        type=int,
        default=None,
        help="attention heads (default 4, paper 8)",
    )
    parser.add_argument(
        "--ff-dim",
        type=int,
        default=None,
        help="feed-forward size of a block (default 2 x embed dim, paper 256)",
    )
    parser.add_argument(
        "--dropout", type=float, default=None, help="dropout rate (default 0.1)"
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="read the release through a one-time memory-mapped array cache in "
        "this folder (prepared on the first run, again if interrupted; see "
        "`python -m keras_miam.datasets.geoplant prepare`)",
    )
    parser.add_argument(
        "--mixed-precision",
        nargs="?",
        const="bfloat16",
        default=None,
        choices=("bfloat16", "float16"),
        help="compute in bfloat16 (the flag alone) or float16, variables in "
        "float32 (for GPUs and TPUs that have these types)",
    )
    parser.add_argument(
        "--data-parallel",
        action="store_true",
        help="train on every device with keras.distribution.DataParallel "
        "(JAX backend; the batch is split across the devices)",
    )
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="part of the training surveys held out for "
        "validation (twice that when the test surveys "
        "are held out too)",
    )
    parser.add_argument(
        "--validation-block",
        type=float,
        default=None,
        help="hold out the validation surveys by spatial cells of this many "
        "degrees of lon / lat (GeoLifeCLEF's spatial validation) instead of at "
        "random",
    )
    parser.add_argument(
        "--test-split",
        default="auto",
        help="labelled split of the release to test on (e.g. "
        "test_iid); 'auto' takes one if the release has "
        "one, 'none' tests on held-out training surveys",
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="threads reading the training files"
    )
    _cli.add_run_arguments(parser, output="outputs/geoplant")
    args = parser.parse_args(argv)
    for name, value in PRESETS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    names = ("epochs", "batch_size", "embed_dim", "num_layers", "num_heads", "workers")
    if args.ff_dim is not None:
        names += ("ff_dim",)
    _cli.require_positive(parser, args, names)
    if args.species < 0:
        parser.error(f"--species must be >= 0; received {args.species}.")
    if args.embed_dim % args.num_heads:
        parser.error(
            f"--embed-dim ({args.embed_dim}) must be a multiple of --num-heads "
            f"({args.num_heads})."
        )
    if args.validation_block is not None and not args.validation_block > 0:
        parser.error(
            f"--validation-block must be > 0 degrees; received {args.validation_block}."
        )
    if not 0.0 <= args.dropout < 1.0:
        parser.error(f"--dropout must be in [0, 1); received {args.dropout}.")
    if not 0.0 < args.validation_fraction < 0.5:
        parser.error(
            "--validation-fraction must be in (0, 0.5); received "
            f"{args.validation_fraction}."
        )
    if args.modalities is not None:
        _cli.require_two_modalities(parser, args.modalities)
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras

    import keras_miam as km
    from keras_miam.datasets.geoplant import available_modalities

    start = time.perf_counter()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(f"mixed_{args.mixed_precision}")
    if args.data_parallel:
        if keras.backend.backend() != "jax":
            raise SystemExit(
                "error: --data-parallel uses keras.distribution, which needs the "
                f"JAX backend; the backend is {keras.backend.backend()} (set "
                "KERAS_BACKEND=jax)."
            )
        devices = keras.distribution.list_devices()
        if args.batch_size % len(devices):
            raise SystemExit(
                f"error: --batch-size {args.batch_size} must be a multiple of the "
                f"{len(devices)} devices of --data-parallel."
            )
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices)
        )
        print(f"Data parallel over {len(devices)} device(s): {devices}")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"keras_miam {km.__version__} on Keras {keras.__version__}, "
        f"backend {keras.backend.backend()}, policy "
        f"{keras.mixed_precision.global_policy().name}, preset {args.preset}; "
        f"writing to {out}/"
    )

    # The release, its modalities and the surveys to test on.
    try:
        layout = km.datasets.GeoPlantLayout(args.root)
        modalities = tuple(args.modalities or available_modalities(layout, "train"))
        train_ids = np.unique(layout.read_metadata("train")["surveyId"].dropna())
        test_split = _choose_test_split(layout, args.test_split)
        # GeoPlant has no validation split: "val" is carved from "train".
        held_what = (
            "'val' split surveys"
            if "val" in layout.splits()
            else "held-out training surveys"
        )
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    if len(modalities) < 2:
        raise SystemExit(
            f"error: the release under '{args.root}' has training files for "
            f"{list(modalities) or 'no modality'}; MIAM needs at least two of "
            f"{list(MODALITIES)}."
        )
    needed = 2 if test_split else 3
    if len(train_ids) < needed:
        raise SystemExit(
            f"error: the training split has {len(train_ids)} survey(s); at least "
            f"{needed} are needed (to train, validate"
            f"{'' if test_split else ' and test on held-out surveys'})."
        )
    # With no test split, twice the validation part is held out and halved.
    fraction = args.validation_fraction
    if not test_split:
        fraction = min(
            max(2 * fraction, 2.0 / len(train_ids)), 1.0 - 1.0 / len(train_ids)
        )

    common = dict(
        modalities=modalities,
        validation_fraction=fraction,
        seed=args.seed,
        validation_block=args.validation_block,
    )
    try:
        if args.cache_dir:
            # Reads the release once (again after an interrupted preparation;
            # nothing to do when the cache is complete and fresh).
            km.datasets.prepare_geoplant(
                args.root, args.cache_dir, modalities=modalities
            )
            common["cache_dir"] = args.cache_dir
        train = km.datasets.load_geoplant(
            args.root,
            "train",
            num_species=args.species or None,
            batch_size=args.batch_size,
            workers=args.workers,
            **common,
        )
        held = km.datasets.load_geoplant(
            args.root, "val", stats=train.stats, batch_size=256, **common
        )
        held_x, held_y = _read_arrays(held, held_what)
        if test_split:
            validation = (held_x, held_y)
            test_set = km.datasets.load_geoplant(
                args.root, test_split, stats=train.stats, batch_size=256, **common
            )
            test = _read_arrays(test_set, f"'{test_split}' surveys")
        else:
            validation, test = _halve((held_x, held_y), args.seed)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    if args.species and len(train.species) < args.species:
        raise SystemExit(
            f"error: --species {args.species} asks for more species than the "
            f"{len(train.species)} recorded in the {len(train.survey_ids)} "
            "training surveys; pass --species "
            f"{len(train.species)} or fewer (0: every species)."
        )
    if min(len(validation[1]), len(test[1])) < 1:
        raise SystemExit(
            f"error: {len(held_y)} {held_what} cannot be split into validation "
            "and test surveys; pass --test-split with a labelled test split."
        )
    if len(train.survey_ids) >= args.batch_size:
        train.drop_remainder = True  # One batch shape: one compiled train step.
    species = train.species
    num_val, num_test = len(validation[1]), len(test[1])
    test_source = test_split or held_what
    print(
        f"{len(train.survey_ids)} training, {num_val} validation and {num_test} test "
        f"surveys (test: {repr(test_split) + ' split' if test_split else held_what}); "
        f"{len(species)} species; modalities "
        + ", ".join(f"{k} {v}" for k, v in train.input_shapes.items())
    )
    print(
        "Test surveys with data: "
        + ", ".join(f"{k} {100 * _available(v):.0f}%" for k, v in test[0].items())
    )

    # AUC needs species both present and absent; tiny splits may have none.
    val_metric = "auc" if _auc_defined(validation[1], len(modalities)) else "loss"
    if val_metric == "loss":
        print(
            f"Note: no species is both present and absent in the {num_val} "
            "validation surveys, so the unimodal validation scores that drive "
            "the masking use the loss (1 / (1 + loss)) instead of the AUC."
        )
    both = _species_with_both_classes(test[1])
    test_metric = "auc" if both else "accuracy"
    if both:
        print(
            f"Test macro AUC over the {both} of {len(species)} species both "
            f"present and absent in the {num_test} test surveys."
        )
    else:
        print(
            f"Note: no species is both present and absent in the {num_test} test "
            "surveys, so AUC is undefined; reporting the binary accuracy instead."
        )

    # Every strategy trained by km.experiments on the streamed training
    # surveys, with the same model and preset; the best-validation weights
    # (lowest validation loss) restored and tested.
    top_k = min(25, len(species))
    # "top_k_f1" predicts the 25 highest-scored species, all of them when
    # there are fewer: GeoLifeCLEF's top-25 F1 is the top-min(25, K) F1.
    f1_name = f"top{top_k}_f1"
    keywords = _cli.comparison(args)
    lam = MIAM_LAMBDA.get(args.preset, 1.0)
    keywords["strategies"] = {
        s: {"name": "miam", "kappa": 10.0, "lambda_": lam} if s == "miam" else s
        for s in keywords["strategies"]
    }
    table, runs = km.experiments.compare_strategies(
        train,
        validation,
        test,
        **keywords,
        task="multilabel",
        # Tokenizers from the input shapes (a batch of the training surveys).
        tokenizers=functools.partial(
            km.experiments.default_tokenizers, embed_dim=args.embed_dim
        ),
        model_kwargs={
            "num_outputs": len(species),
            "num_layers": args.num_layers,
            "num_heads": args.num_heads,
            "intermediate_dim": args.ff_dim,
            "dropout": args.dropout,
        },
        dynamics_kwargs={"metric": val_metric},
        compile_metrics=[
            km.metrics.MaskedAUC(multi_label=True, from_logits=True, name="auc"),
            km.metrics.MaskedTopKF1(k=top_k, name=f1_name),
        ],
        restore_best="val_loss",
        metric=test_metric,
        test_metrics={f1_name: "top_k_f1"},
    )
    for run in runs:
        if run["best_epoch"] is not None:
            run["model"].save_weights(out / f"best_{run['strategy']}.weights.h5")

    mean = table.attrs["mean"]
    metric = runs[0]["subsets"].attrs["metric"]
    print(
        f"\nTest {'macro AUC' if metric == 'auc' else metric} per subset of "
        "modalities (columns: strategies):"
    )
    print(mean.T.to_string(float_format=lambda v: f"{v:.4f}"))
    if {"uniform", "miam"} <= set(mean.index):
        gain = mean.loc["miam"] - mean.loc["uniform"]
        line = f"\nMIAM - Uniform: average {100 * gain['average']:+.2f} points"
        if "image" in gain.index:
            line += f", image alone {100 * gain['image']:+.2f} points"
        print(line)

    last = _cli.plot_runs(runs, out)
    results = {
        "config": vars(args),
        "backend": keras.backend.backend(),
        "modalities": list(modalities),
        "species": [int(s) for s in species],
        "num_surveys": {
            "train": int(len(train.survey_ids)),
            "validation": num_val,
            "test": num_test,
        },
        "test_source": test_source,
        "metric": metric,
        "validation_metric": val_metric,
        **_cli.run_results(mean, runs),
        "best_epoch": {run["strategy"]: run["best_epoch"] for run in runs},
        "top_k": top_k,
        "test_top_k_f1": {run["strategy"]: run["test_scores"][f1_name] for run in runs},
        "policy": keras.mixed_precision.global_policy().name,
    }
    if not args.no_explain:
        results["modality_shapley"] = _cli.explain(
            last, test, out, what=metric, metric=test_metric
        )
    _cli.write_results(out, results, start)
    return results


def _choose_test_split(layout, requested):
    """The labelled split to test on, or None to hold out training surveys."""
    if requested == "none":
        return None
    candidates = [s for s in layout.splits() if s not in ("train", "val")]
    if requested != "auto":
        if requested not in candidates:
            raise ValueError(
                f"--test-split '{requested}' is not a test split of the release "
                f"under '{layout.root}'; it has {candidates or 'none'} (or pass "
                "'none' to test on held-out training surveys)."
            )
        if not _labelled(layout, requested):
            raise ValueError(
                f"The '{requested}' metadata has no speciesId (the labels of "
                "challenge test splits are hidden); pass --test-split none to "
                "test on held-out training surveys."
            )
        return requested
    rank = {name: i for i, name in enumerate(TEST_SPLIT_ORDER)}
    for name in sorted(candidates, key=lambda s: (rank.get(s, len(rank)), s)):
        if _labelled(layout, name):
            return name
    return None


def _labelled(layout, split):
    rows = layout.read_metadata(split)
    return "speciesId" in rows.columns and bool(rows["speciesId"].notna().any())


def _read_arrays(dataset, what):
    """Reads every batch of a GeoPlantDataset into `(x, y)` arrays."""
    import keras

    print(f"Reading {len(dataset.survey_ids)} {what}:")
    progbar = keras.utils.Progbar(len(dataset), unit_name="batch")
    xs, ys = [], []
    for i in range(len(dataset)):
        x, y = dataset[i]
        xs.append(x)
        ys.append(y)
        progbar.add(1)
    x = {k: np.concatenate([b[k] for b in xs]) for k in xs[0]}
    return x, np.concatenate(ys)


def _halve(data, seed):
    """Splits held-out surveys into validation and test halves (seeded)."""
    x, y = data
    order = np.random.default_rng([seed, 2]).permutation(len(y))
    cut = len(y) // 2
    parts = []
    for index in (np.sort(order[:cut]), np.sort(order[cut:])):
        parts.append(({k: v[index] for k, v in x.items()}, y[index]))
    return tuple(parts)


def _available(values):
    """Fraction of examples with at least one finite value."""
    flat = values.reshape(len(values), -1)
    return float(np.isfinite(flat).any(axis=1).mean()) if len(flat) else 0.0


def _species_with_both_classes(y):
    positives = y.sum(axis=0)
    return int(np.sum((positives > 0) & (positives < len(y))))


def _auc_defined(y, num_modalities, batch_size=256):
    """AUC is defined on the labels and on the callback's first block."""
    block = max(1, batch_size // num_modalities)
    return bool(_species_with_both_classes(y) and _species_with_both_classes(y[:block]))


if __name__ == "__main__":
    main(sys.argv[1:])
