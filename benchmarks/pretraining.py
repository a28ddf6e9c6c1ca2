"""Self-supervised pre-training on unlabelled sites, then a small labelled budget.

Protocol (synthetic ecology, env + landsat + image, mild imbalance):

1. One dataset (seed 0) is cut into an unlabelled pool (`--pool` sites, their
   labels are never read), an unlabelled validation split for the
   reconstruction scores (`--pool-val`), a labelled budget (`--budget` train
   sites plus `--budget-val` validation sites) and a test split.
2. For each masking strategy, `MultimodalPretrainer` is pre-trained on the
   pool (`--pretrain-epochs`); MIAM and OPM read the per-modality
   reconstruction scores (`MultimodalPretrainer.modality_scores`) every
   epoch, through `ModalityDynamics`.
3. Its tokenizers and encoder move into a `MultimodalTransformer`
   (`to_transformer`), which is fine-tuned on the labelled budget (every
   weight) and, separately, linear-probed (encoder frozen). Both use the
   Uniform strategy during fine-tuning, whatever the pre-training strategy,
   so the rows differ by their pre-training only; the weights of the best
   validation AUC epoch are kept. "selected" is, per run, whichever of the
   two has the higher validation AUC.
4. "scratch" trains the same `MultimodalTransformer` from a random
   initialisation on the labelled budget alone, with the same protocol.

Every model is evaluated on the test split for each of the 7 subsets of
modalities (macro AUC x 100). Runs are kept (`common.RunCache`: one JSON per
strategy and seed in `benchmarks/results/pretraining_runs/`, not in git), so
an interrupted benchmark resumes; `--assemble` only tabulates the kept runs.

Usage:

    KERAS_BACKEND=tensorflow python benchmarks/pretraining.py --seeds 0 1 2
    python benchmarks/pretraining.py --assemble
"""

import argparse
import json
import platform
import sys
import time

import common
import numpy as np

RESULTS = common.RESULTS
RUNS = RESULTS / "pretraining_runs"
STRATEGIES = ("miam", "uniform", "dirichlet", "opm", "constant", "modality_dropout")
MODALITIES = ("env", "landsat", "image")
DYNAMIC = ("miam", "opm")


def settings_from(args):
    return {
        "pool": args.pool,
        "pool_val": args.pool_val,
        "budget": args.budget,
        "budget_val": args.budget_val,
        "test": args.test,
        "imbalance": args.imbalance,
        "embed_dim": 32,
        "num_layers": 2,
        "num_heads": 4,
        "pretrain_epochs": args.pretrain_epochs,
        "pretrain_batch_size": 128,
        "finetune_epochs": args.finetune_epochs,
        "finetune_batch_size": 64,
        "finetune_learning_rate": 1e-3,
        "probe_learning_rate": 3e-3,
        "finetune_strategy": "uniform",
    }


def make_data(settings):
    import keras_miam as km

    sizes = [
        settings["pool"],
        settings["pool_val"],
        settings["budget"],
        settings["budget_val"],
        settings["test"],
    ]
    x, y, _ = km.datasets.make_synthetic_ecology(
        sum(sizes), modalities=MODALITIES, imbalance=settings["imbalance"], seed=0
    )
    stops = np.cumsum(sizes)
    parts = []
    for start, stop in zip(np.concatenate([[0], stops[:-1]]), stops):
        parts.append(({k: v[start:stop] for k, v in x.items()}, y[start:stop]))
    names = ("pool", "pool_val", "train", "val", "test")
    return dict(zip(names, parts))


def make_tokenizers(x, settings):
    import keras_miam as km

    return km.experiments.default_tokenizers(
        x, embed_dim=settings["embed_dim"], num_frequencies=16
    )


def fit_supervised(model, data, settings, learning_rate, seed):
    import keras

    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01))
    best = keras.callbacks.EarlyStopping(
        monitor="val_auc",
        mode="max",
        patience=settings["finetune_epochs"] + 1,
        restore_best_weights=True,
    )
    start = time.perf_counter()
    history = model.fit(
        *data["train"],
        validation_data=data["val"],
        epochs=settings["finetune_epochs"],
        batch_size=settings["finetune_batch_size"],
        callbacks=[best],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    return max(history.history["val_auc"]), seconds


def test_scores(model, data):
    import keras_miam as km

    frame = km.evaluation.evaluate_subsets(model, data["test"], verbose=0)
    scores = km.experiments.subset_scores(frame, modalities=MODALITIES)
    return {k: 100.0 * v for k, v in scores.items()}


def run_scratch(data, settings, seed):
    import keras

    import keras_miam as km

    keras.utils.set_random_seed(seed)
    model = km.models.MultimodalTransformer(
        make_tokenizers(data["train"][0], settings),
        num_outputs=data["train"][1].shape[1],
        strategy=settings["finetune_strategy"],
        num_layers=settings["num_layers"],
        num_heads=settings["num_heads"],
        seed=seed,
    )
    val_auc, seconds = fit_supervised(
        model, data, settings, settings["finetune_learning_rate"], seed
    )
    return {
        "finetune": {
            "val_auc": 100 * val_auc,
            "seconds": seconds,
            "test": test_scores(model, data),
        }
    }


def pretrain(data, settings, strategy, seed):
    import keras

    import keras_miam as km

    keras.utils.set_random_seed(seed)
    pretrainer = km.models.MultimodalPretrainer(
        make_tokenizers(data["pool"][0], settings),
        strategy=strategy,
        num_layers=settings["num_layers"],
        num_heads=settings["num_heads"],
        seed=seed,
    )
    pretrainer.compile()
    # No labels: the pretrainer's reconstruction scores drive r_m.
    callbacks = [km.ModalityDynamics(data["pool_val"][0], metric="reconstruction")]
    start = time.perf_counter()
    history = pretrainer.fit(
        data["pool"][0],
        epochs=settings["pretrain_epochs"],
        batch_size=settings["pretrain_batch_size"],
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    logs = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    errors = pretrainer.modality_errors(data["pool_val"][0])
    return pretrainer, {
        "seconds": seconds,
        "history": logs,
        "final_errors": dict(zip(pretrainer.modalities, errors.tolist())),
    }


def run_pretrained(data, settings, strategy, seed):
    import tempfile

    import keras_miam as km

    pretrainer, record = pretrain(data, settings, strategy, seed)
    result = {"pretrain": record}
    preset = tempfile.mkdtemp()
    pretrainer.backbone.save_to_preset(preset)
    for mode, frozen, lr in (
        ("finetune", False, settings["finetune_learning_rate"]),
        ("probe", True, settings["probe_learning_rate"]),
    ):
        # A fresh copy of the pre-trained backbone per mode: the probe must not
        # start from the fine-tuned weights.
        backbone = km.models.MultimodalBackbone.from_preset(preset)
        backbone.masking.strategy = km.strategies.get(settings["finetune_strategy"])
        backbone.trainable = not frozen
        model = km.models.MultimodalTransformer(
            backbone=backbone, num_outputs=data["train"][1].shape[1]
        )
        val_auc, seconds = fit_supervised(model, data, settings, lr, seed)
        result[mode] = {
            "val_auc": 100 * val_auc,
            "seconds": seconds,
            "test": test_scores(model, data),
        }
    return result


def run_all(args, settings):
    import keras

    data = make_data(settings)
    cache = common.RunCache(RUNS)
    labels = [*([] if args.no_scratch else ["scratch"]), *args.strategies]
    for seed in args.seeds:
        for label in labels:

            def train(label=label, seed=seed):
                start = time.perf_counter()
                if label == "scratch":
                    result = run_scratch(data, settings, seed)
                else:
                    result = run_pretrained(data, settings, label, seed)
                result.update(
                    label=label,
                    seed=seed,
                    backend=keras.backend.backend(),
                    total_seconds=time.perf_counter() - start,
                )
                summary = {
                    mode: round(result[mode]["test"]["average"], 2)
                    for mode in ("finetune", "probe")
                    if mode in result
                }
                print(
                    f"{label} seed {seed}: {summary} ({result['total_seconds']:.0f} s)",
                    flush=True,
                )
                return result

            cache.run(f"{args.tag}{label}_seed{seed}", settings, train)


def selected(record):
    """Fine-tune or probe, whichever has the higher validation AUC."""
    if "probe" in record and record["probe"]["val_auc"] > record["finetune"]["val_auc"]:
        return record["probe"]
    return record["finetune"]


def table(runs, mode):
    import pandas as pd

    rows = {}
    for record in runs:
        if mode == "selected":
            part = selected(record)
        else:
            part = record.get(mode)
        if part is None:
            continue
        rows.setdefault(record["label"], []).append(part["test"])
    columns = list(next(iter(rows.values()))[0])
    order = [label for label in ("scratch", *STRATEGIES) if label in rows]
    cells, means = {}, {}
    for label in order:
        values = np.array([[run[c] for c in columns] for run in rows[label]])
        mean, std = values.mean(axis=0), values.std(axis=0)
        means[label] = dict(zip(columns, mean.tolist()))
        cells[label] = [f"{m:.2f} +- {s:.2f}" for m, s in zip(mean, std)]
        cells[label].append(str(len(values)))
    frame = pd.DataFrame.from_dict(cells, orient="index", columns=[*columns, "seeds"])
    frame.index.name = "pre-training"
    return frame, means


def figure(means_by_mode, path):
    titles = {
        "finetune": "pre-trained + fine-tuned",
        "probe": "pre-trained + linear probe (scratch: trained in full)",
    }
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(means_by_mode)
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4), sharey=True)
    axes = np.atleast_1d(axes)
    colors = {label: f"C{i}" for i, label in enumerate(("scratch", *STRATEGIES))}
    for ax, mode in zip(axes, modes):
        means = means_by_mode[mode]
        labels = list(means)
        columns = list(next(iter(means.values())))
        width = 0.8 / len(labels)
        for i, label in enumerate(labels):
            ax.bar(
                np.arange(len(columns)) + (i - (len(labels) - 1) / 2) * width,
                [means[label][c] for c in columns],
                width,
                label=label,
                color=colors[label],
            )
        ax.set_xticks(np.arange(len(columns)))
        ax.set_xticklabels(columns, rotation=35, ha="right")
        ax.set_title(titles[mode])
        low = min(min(v.values()) for v in means.values())
        ax.set_ylim(5 * np.floor(low / 5) - 5, None)
        ax.set_ylabel("test macro AUC (x100)")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def assemble(settings, tag=""):
    stem = "pretraining" + (f"_{tag.strip('_')}" if tag else "")
    runs = common.RunCache(RUNS).records(settings)
    if not runs:
        print("No cached runs with these settings.")
        return
    out = {"settings": settings, "tables": {}, "means": {}}
    text = [
        "# Self-supervised pre-training, then a small labelled budget",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}; "
        f"backend {runs[0]['backend']}.",
        "",
        f"Synthetic ecology ({settings['imbalance']} imbalance; "
        f"{', '.join(MODALITIES)}), one dataset (seed 0): "
        f"{settings['pool']} unlabelled pre-training sites "
        f"(+ {settings['pool_val']} unlabelled validation sites for the "
        f"reconstruction scores), a labelled budget of {settings['budget']} "
        f"training + {settings['budget_val']} validation sites, "
        f"{settings['test']} test sites. D = {settings['embed_dim']}, "
        f"{settings['num_layers']} blocks. Pre-training "
        f"{settings['pretrain_epochs']} epochs (batch "
        f"{settings['pretrain_batch_size']}); fine-tuning / probing / scratch "
        f"{settings['finetune_epochs']} epochs (batch "
        f"{settings['finetune_batch_size']}, "
        f"{settings['finetune_strategy']} masking, best validation AUC epoch). "
        "Metric: test macro AUC over species (x100), mean +- std over seeds.",
        "",
    ]
    titles = {
        "finetune": "Fine-tuning (every weight)",
        "probe": "Linear probe (encoder frozen)",
        "selected": "Fine-tune or probe, chosen per run on validation AUC",
    }
    for mode in ("finetune", "probe", "selected"):
        frame, means = table(runs, mode)
        out["tables"][mode] = frame.to_dict(orient="index")
        out["means"][mode] = means
        printed = frame.to_string()
        print(f"\n{titles[mode]}\n{printed}")
        text += [f"## {titles[mode]}", "", "```", printed, "```", ""]
    finetune = out["means"]["finetune"]
    if "scratch" in finetune:
        base = finetune["scratch"]["average"]
        lines = []
        for mode in ("finetune", "probe", "selected"):
            for label, means in out["means"][mode].items():
                if label == "scratch":
                    continue
                gain = means["average"] - base
                lines.append(f"- {mode} {label}: {gain:+.2f} AUC points vs scratch")
        out["gains_vs_scratch"] = lines
        text += ["## Average minus scratch (target >= +2)", "", *lines, ""]
    seconds = {}
    for record in runs:
        if "pretrain" in record:
            seconds.setdefault(record["label"], []).append(
                record["pretrain"]["seconds"]
            )
    text += [
        "Pre-training time per model (s): "
        + ", ".join(f"{k} {np.mean(v):.0f}" for k, v in seconds.items()),
        "",
    ]
    errors = {}
    for record in runs:
        if "pretrain" in record:
            errors.setdefault(record["label"], []).append(
                list(record["pretrain"]["final_errors"].values())
            )
    text += [
        "Reconstruction MSE on the unlabelled validation split after "
        "pre-training (modality alone, see `modality_scores`), "
        + "/".join(MODALITIES)
        + ": "
        + "; ".join(
            f"{k} " + "/".join(f"{e:.3f}" for e in np.mean(v, axis=0))
            for k, v in errors.items()
        ),
        "",
    ]
    ratios = {}
    for record in runs:
        history = record.get("pretrain", {}).get("history", {})
        if record["label"] in DYNAMIC and f"{MODALITIES[0]}_mask_ratio" in history:
            ratios.setdefault(record["label"], []).append(
                [history[f"{m}_mask_ratio"][-1] for m in MODALITIES]
            )
    if ratios:
        text += [
            "Mask ratios r_m at the end of pre-training, "
            + "/".join(MODALITIES)
            + ": "
            + "; ".join(
                f"{k} " + "/".join(f"{r:.2f}" for r in np.mean(v, axis=0))
                for k, v in ratios.items()
            ),
            "",
        ]
    probe = dict(out["means"]["probe"])
    if "scratch" in out["means"]["finetune"]:
        probe = {"scratch": out["means"]["finetune"]["scratch"], **probe}
    figure(
        {"finetune": out["means"]["finetune"], "probe": probe},
        RESULTS / f"{stem}.png",
    )
    text += [f"![subsets]({stem}.png)", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(text))
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=1))
    print("\n".join(text[-8:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--pool", type=int, default=8000)
    parser.add_argument("--pool-val", type=int, default=500)
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--budget-val", type=int, default=200)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--imbalance", default="mild")
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=int, default=40)
    parser.add_argument(
        "--no-scratch", action="store_true", help="skip the from-scratch rows"
    )
    parser.add_argument(
        "--tag", default="", help="prefix of the cached run files (other settings)"
    )
    parser.add_argument(
        "--assemble", action="store_true", help="tabulate the cached runs only"
    )
    args = parser.parse_args(argv)
    settings = settings_from(args)
    if not args.assemble:
        run_all(args, settings)
    assemble(settings, args.tag)


if __name__ == "__main__":
    sys.exit(main())
