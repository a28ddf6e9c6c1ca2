"""MIAM's dynamics estimator on the gated testbed, on validation data only.

`ModalityDynamics` turns the per-epoch unimodal validation scores s_m into
the derivatives d_m that MIAM's ratios r_m = rho_s,m / rho_d,m read. Three of
its choices are examined here (issue #15, item 5), each varied alone from
the library default (the least-squares slope over a window of 3 scores,
scores and derivatives floored at `epsilon = 1e-3`, no warm-up):

- the derivative: a window of 2 (the plain finite difference) or 5 scores,
  or an exponential moving average of the differences (`ema_decay=0.7`);
- the floor: `epsilon = 1e-2` (damps the jump of r_m when a score plateaus)
  or `1e-4`;
- the warm-up: `warmup_epochs=4` (r_m = 1 for the first epochs, when the
  dominant modality improves fastest and so reads as "not dominant").

`beta_hypercube` (MIAM with r_m = 1 throughout) is the reference without
dynamics. The variants were fixed before any of them ran. Every model is
MIAM (kappa = 10, lambda = 1) on `redundant_M2` of `strategies.py` (the
testbed accepted by `testbed_gate.py`; 3000 sites, 16 epochs, the
checkpoint of lowest `val_loss`), seeds 0-2, and is scored on the
VALIDATION split (the test split is never read): the weak modality (the
image) alone, and the average over the 11 whole and partial inputs of the
testbed table.

Decision rule, fixed before the runs: a variant replaces the library
default only if its mean validation average beats the default's by more
than the larger of the two rows' seed standard deviations, it is ahead on
every seed, and it is not worse on the image alone by more than the
default's seed standard deviation. Otherwise the default stays.

Runs are cached in `benchmarks/results/dynamics_estimator_runs/<variant>/`
(one JSON per seed), so the script resumes, and `--assemble` trains nothing.

    python benchmarks/dynamics_estimator.py            # about 25 models
    python benchmarks/dynamics_estimator.py --seeds 0  # one seed
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import strategies as testbed  # noqa: E402

SCENARIO = "redundant_M2"
WEAK = testbed.WEAK
DOMINANT = "env"
SEEDS = [0, 1, 2]
# label: (strategy, ModalityDynamics arguments); "default" first.
VARIANTS = {
    "default": ("miam", {}),
    "window2": ("miam", {"smoothing": 2}),
    "window5": ("miam", {"smoothing": 5}),
    "ema0.7": ("miam", {"ema_decay": 0.7}),
    "eps1e-2": ("miam", {"epsilon": 1e-2}),
    "eps1e-4": ("miam", {"epsilon": 1e-4}),
    "warmup4": ("miam", {"warmup_epochs": 4}),
    "beta_hypercube": ("beta_hypercube", {}),
}
EARLY_EPOCHS = 4  # the ratios in force for epochs 2-5


def run(seeds, variants, out, assemble=False):
    import keras_miam as km

    cfg = {**testbed.MODES["full"], "overridden": []}
    settings = testbed.scenario_settings(SCENARIO, cfg)
    spec = testbed.TESTBEDS[SCENARIO]
    testbed.check_gated(SCENARIO, settings, out)
    train, val, _ = testbed.scenario_data(km, settings, spec["generator"])
    embed_dim = spec["embed_dim"]
    runs, missing = [], []
    for seed in seeds:  # seed first: an interrupted study has whole seeds
        for label in variants:
            strategy, dynamics = VARIANTS[label]
            try:
                _, result = km.experiments.compare_strategies(
                    train,
                    val,
                    val,  # scored on the validation split
                    strategies={label: strategy},
                    seeds=[seed],
                    verbose=2,
                    cache_dir=out / "dynamics_estimator_runs" / label,
                    cached_only=assemble,
                    cache_key={
                        "embed_dim": embed_dim,
                        "generator": spec["generator"],
                        "scored_on": "validation",
                    },
                    dynamics_kwargs=dynamics,
                    **testbed.testbed_training(km, spec, settings),
                )
            except FileNotFoundError:  # --assemble: not run
                missing.append((label, seed))
                continue
            runs += result
    if not runs:
        raise SystemExit("No run to tabulate.")
    mean, std, raw = testbed.testbed_table(runs, settings["modalities"])
    rows = []
    for label in mean.index:
        mine = [r for r in runs if r["strategy"] == label]
        per_seed = raw[raw["strategy"] == label].set_index("seed")
        rows.append(
            {
                "variant": label,
                "strategy": VARIANTS[label][0],
                "dynamics_kwargs": VARIANTS[label][1],
                "seeds": [int(s) for s in per_seed.index],
                "val_weak": float(mean.loc[label, WEAK]),
                "val_weak_std": float(std.loc[label, WEAK]),
                "val_average": float(mean.loc[label, "average"]),
                "val_average_std": float(std.loc[label, "average"]),
                "val_whole_avg": float(mean.loc[label, "whole avg"]),
                "val_partial_avg": float(mean.loc[label, "partial avg"]),
                "val_weak_per_seed": per_seed[WEAK].tolist(),
                "val_average_per_seed": per_seed["average"].tolist(),
                **ratio_summary(mine),
                "fit_seconds": float(np.mean([r["fit_seconds"] for r in mine])),
            }
        )
    decision = decide(rows)
    results = {
        "scenario": SCENARIO,
        "generator": spec["generator"],
        "epochs": settings["epochs"],
        "restore_best": spec["restore_best"],
        "scored_on": "validation",
        "missing": missing,
        "variants": rows,
        "decision": decision,
    }
    (out / "dynamics_estimator.json").write_text(
        json.dumps(km.experiments.jsonable(results), indent=2)
    )
    common.write_markdown(
        "dynamics_estimator",
        "MIAM's dynamics estimator on the gated testbed (validation data)",
        report(rows, decision, settings, missing),
        folder=out,
    )
    return results


def ratio_summary(runs):
    """How the ratios moved: r_dominant early, the largest jump of log r."""
    early, jumps, final = [], [], []
    for r in runs:
        history = r["history"]
        dominant = np.asarray(history.get(f"{DOMINANT}_mask_ratio", []), "float64")
        if not len(dominant):
            continue
        early.append(float(np.mean(dominant[:EARLY_EPOCHS])))
        log_r = np.log(dominant)
        jumps.append(float(np.max(np.abs(np.diff(log_r)))) if len(log_r) > 1 else 0.0)
        final.append(float(dominant[-1]))
    if not early:
        return {}
    return {
        "early_dominant_ratio": float(np.mean(early)),
        "max_log_ratio_jump": float(np.mean(jumps)),
        "final_dominant_ratio": float(np.mean(final)),
    }


def decide(rows):
    """The decision rule of the module docstring, per variant."""
    by = {row["variant"]: row for row in rows}
    base = by.get("default")
    verdicts = {}
    if base is None:
        return {"default_kept": True, "verdicts": verdicts, "why": "no default row"}
    for row in rows:
        label = row["variant"]
        if label == "default" or row["strategy"] != "miam":
            continue
        common_seeds = [s for s in row["seeds"] if s in base["seeds"]]
        if len(common_seeds) < 3:
            verdicts[label] = "fewer than 3 seeds: no decision"
            continue
        gain = row["val_average"] - base["val_average"]
        margin = max(row["val_average_std"], base["val_average_std"])
        mine = dict(zip(row["seeds"], row["val_average_per_seed"]))
        theirs = dict(zip(base["seeds"], base["val_average_per_seed"]))
        ahead = all(mine[s] > theirs[s] for s in common_seeds)
        paired = [mine[s] - theirs[s] for s in common_seeds]
        weak_ok = row["val_weak"] >= base["val_weak"] - base["val_weak_std"]
        verdicts[label] = {
            "average_gain": gain,
            "margin": margin,
            "paired_differences": paired,
            "ahead_on_every_seed": ahead,
            "weak_not_worse": weak_ok,
            "better": bool(gain > margin and ahead and weak_ok),
        }
    better = [k for k, v in verdicts.items() if isinstance(v, dict) and v["better"]]
    return {"default_kept": not better, "better": better, "verdicts": verdicts}


def report(rows, decision, settings, missing):
    lines = [
        common.machine_line(),
        "",
        f"MIAM (kappa = 10, lambda = 1) on `{SCENARIO}` (the gated testbed), "
        f"{settings['num_examples']} sites, {settings['epochs']} epochs, the "
        "checkpoint of lowest `val_loss`; one `ModalityDynamics` argument "
        "changed per row (`default`: window of 3 scores, epsilon 1e-3, no "
        "warm-up; `beta_hypercube`: no dynamics, r = 1). Scored on the "
        "VALIDATION split: macro AUC x100, mean +- std over the seeds listed. "
        f"'average' is over the {len(testbed.WHOLE) + len(testbed.PARTIAL)} "
        "whole and partial inputs of `strategies_testbed.md`. r_env early: "
        f"mean ratio r_env in force for epochs 2-{EARLY_EPOCHS + 1} (< 1: env, "
        "the dominant modality, masked LESS than under the hypercube); "
        "max |d log r_env|: the largest change of log r_env between two "
        "epochs (the jumps a floored plateau causes), mean over seeds.",
        "",
        "| variant | arguments | seeds | val image | val average | whole avg | "
        "partial avg | r_env early | max abs d log r_env | r_env final | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        args = ", ".join(f"{k}={v}" for k, v in row["dynamics_kwargs"].items())
        lines.append(
            f"| {row['variant']} | {args or '-'} | "
            f"{', '.join(map(str, row['seeds']))} | "
            f"{row['val_weak']:.2f} +- {row['val_weak_std']:.2f} | "
            f"{row['val_average']:.2f} +- {row['val_average_std']:.2f} | "
            f"{row['val_whole_avg']:.2f} | {row['val_partial_avg']:.2f} | "
            + (
                f"{row['early_dominant_ratio']:.3f} | "
                f"{row['max_log_ratio_jump']:.2f} | "
                f"{row['final_dominant_ratio']:.3f} | "
                if "early_dominant_ratio" in row
                else "- | - | - | "
            )
            + f"{row['fit_seconds']:.0f} |"
        )
    lines += ["", "Decision (the rule of `benchmarks/dynamics_estimator.py`):", ""]
    for label, verdict in decision.get("verdicts", {}).items():
        if isinstance(verdict, str):
            lines.append(f"- {label}: {verdict}")
            continue
        lines.append(
            f"- {label}: average {verdict['average_gain']:+.2f} vs the default "
            f"(margin {verdict['margin']:.2f}; per seed "
            + ", ".join(f"{d:+.2f}" for d in verdict["paired_differences"])
            + "), ahead on every seed: "
            f"{verdict['ahead_on_every_seed']}, image not worse: "
            f"{verdict['weak_not_worse']} -> "
            + ("better" if verdict["better"] else "not shown better")
        )
    lines += [
        "",
        (
            "The library default is kept: no variant is better beyond the seed spread."
            if decision.get("default_kept")
            else "Better than the default beyond the seed spread: "
            + ", ".join(decision["better"])
        ),
    ]
    if missing:
        lines += ["", f"Not run (left out): {missing}"]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS)
    )
    parser.add_argument(
        "--assemble", action="store_true", help="train nothing: tabulate the cache"
    )
    parser.add_argument("--output", type=Path, default=common.RESULTS)
    args = parser.parse_args(argv)
    run(args.seeds, args.variants, args.output, assemble=args.assemble)


if __name__ == "__main__":
    main()
