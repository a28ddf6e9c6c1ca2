"""The paper's comparison on the synthetic benchmark: eight strategies and the oracle.

Trains the same `MultimodalTransformer` under each masking strategy (Constant,
Uniform, Dirichlet, ModalityDropout, OPM, UniformHypercube, BetaHypercube, MIAM)
and the per-subset oracle (one model per modality subset, trained on that subset
only), over several seeds and scenarios (strong and mild imbalance with M = 3,
mild imbalance with M = 4, and strong imbalance with few sites trained to
convergence, and `redundant_M2`, the testbed accepted by `testbed_gate.py`, with
partial inputs, per-batch rows and the best-validation checkpoint, and
`redundant_M2_long`, the same at twice the epochs; `--quick` runs mild M = 3
only); evaluates every model on every
subset of a held-out test split; writes the paper-style table (rows = strategies + oracle, columns =
subsets + average, mean +- std over seeds), the ablation curves (the dominated
modality's unimodal validation AUC over epochs for Uniform -> UniformHypercube
-> BetaHypercube -> MIAM, and the kappa = 3 rows) and a kappa/lambda
sensitivity table for MIAM per swept scenario, scored on VALIDATION data (the
test split is never used to choose anything). The full mode adds two labelled
rows, `miam_kappa3` (the sweep's choice) and `beta_hypercube_kappa3` (the same
kappa without the dynamics), beside the paper's kappa = 10. The scenarios,
testbeds and modes are defined in `common.py` (the dynamics estimator uses
them too).

    python benchmarks/strategy_comparison.py --quick        # <= 15 min on a 2-core CPU
    python benchmarks/strategy_comparison.py                # the full mode

Every finished run is kept in `benchmarks/results/strategies_runs/<mode>/`
(`common.RunCache`: one JSON file per scenario, strategy or oracle subset,
and seed; not in git) and read back on the next call, so the full mode (about 150 models: hours on a CPU)
can be resumed, or split between processes and assembled at the end:

    python benchmarks/strategy_comparison.py --scenarios strong_M3 --seeds 0 --no-sweep &
    python benchmarks/strategy_comparison.py --scenarios strong_M3 --seeds 1 --no-sweep &
    wait; python benchmarks/strategy_comparison.py --scenarios strong_M3 --seeds 0 1

`--assemble` trains nothing: it tabulates, per scenario, the seeds whose runs
are all saved (e.g. after copying the folders of several machines together).
"""

import argparse
import functools
import json
from pathlib import Path

import common
import numpy as np
import pandas as pd

ABLATION = ["uniform", "uniform_hypercube", "beta_hypercube", "miam"]
BASELINES = ["constant", "uniform", "dirichlet", "modality_dropout", "opm"]


def run(mode, out, overrides=None, sweep=True):
    import keras  # noqa: F401

    import keras_miam as km

    cfg = {
        **common.MODES[mode],
        **(overrides or {}),
        "overridden": sorted(overrides or {}),
    }
    cfg["mode"] = mode
    cache = out / "strategies_runs" / mode
    report = [
        common.machine_line(),
        "",
        f"Mode `{mode}` (each scenario may set its own sites and epochs): "
        f"{cfg['num_examples']} sites (70/15/15 split), "
        f"{cfg['epochs']} epochs, D = {cfg['embed_dim']}, 2 blocks, seeds {cfg['seeds']} (model weights, masking and shuffling; one dataset, generated with seed 0). "
        "Metric: test macro AUC over species (x100). `miam` and `beta_hypercube` use "
        "the paper's kappa = 10 (lambda = 1); the `_kappa3` rows use kappa = 3, chosen "
        "on the validation split by the sensitivity sweep below.",
        "",
    ]
    results = {"mode": mode, "config": cfg, "scenarios": {}}
    tokenizers = lambda xs: km.experiments.default_tokenizers(
        xs, embed_dim=cfg["embed_dim"], max_tokens=8
    )
    common_kwargs = dict(
        epochs=cfg["epochs"],
        batch_size=128,
        tokenizers=tokenizers,
        model_kwargs={"num_layers": 2},
    )
    for scenario in cfg["scenarios"]:
        settings = common.scenario_settings(scenario, cfg)
        if scenario in common.TESTBEDS:
            report += run_testbed(km, scenario, settings, cfg, cache, out, results)
            continue
        train, val, test = common.scenario_data(km, settings)
        compare = functools.partial(
            common.compare,
            (train, val, test),
            {name: common.VARIANTS.get(name, name) for name in settings["strategies"]},
            cache=common.RunCache(cache / scenario, cfg["assemble"]),
            oracle=settings["oracle"],
            **{**common_kwargs, "epochs": settings["epochs"]},
        )
        seeds = cfg["seeds"]
        if cfg["assemble"]:  # the seeds whose runs are all in the folder
            seeds = [seed for seed in seeds if complete(compare, seed)]
            if not seeds:
                print(
                    f"\n== {scenario}: no complete seed in {cache / scenario}, skipped"
                )
                continue
        runs = compare(seeds=seeds)
        seconds = sum(r["fit_seconds"] for r in runs)
        fit_times = (
            pd.DataFrame(
                [
                    {"strategy": r["strategy"], "fit": r["fit_seconds"]}
                    for r in runs
                    if r["strategy"] != "oracle"
                ]
            )
            .groupby("strategy", sort=False)["fit"]
            .mean()
        )
        raw = common.per_seed_scores(runs)
        columns = list(raw.columns[2:])
        raw["average"] = raw[columns].mean(axis=1)
        grouped = raw.groupby("strategy", sort=False)[columns + ["average"]]
        mean, std = grouped.mean(), grouped.std(ddof=0)
        shown = mean.round(2).astype(str) + " +- " + std.round(2).astype(str)
        print(f"\n== {scenario} ({seconds:.0f} s)\n{shown.to_string()}", flush=True)
        checks = target_checks(mean)
        report += [
            f"## Scenario `{scenario}` (imbalance {settings['imbalance']}, "
            f"modalities {', '.join(settings['modalities'])})",
            "",
            f"{settings['num_examples']} sites, {settings['epochs']} epochs, seeds {seeds}. Training time {seconds:.0f} s for {len(runs)} models (sum of fits; "
            "mean per model: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in fit_times.items())
            + ").",
            "",
            "```",
            shown.to_string(),
            "```",
            "",
            describe_checks(checks),
            "",
        ]
        # Ablation: the dominated modality's unimodal validation curve.
        curves = {
            r["strategy"]: r["history"].get(f"val_{common.WEAK}_auc")
            for r in runs
            if r["strategy"] in ABLATION + list(common.VARIANTS)
            and r["seed"] == seeds[0]
        }
        # The full mode's figures keep the plain names; other modes say theirs.
        tag = scenario if mode == "full" else f"{mode}_{scenario}"
        plot_ablation(curves, out / f"strategies_ablation_{tag}.png")
        km.plotting.plot_subsets(
            {
                r["strategy"]: r["subsets"]
                for r in runs
                if r["strategy"] != "oracle" and r["seed"] == seeds[0]
            },
            path=out / f"strategies_subsets_{tag}.png",
        )
        results["scenarios"][scenario] = {
            "seeds": seeds,
            "mean": mean.to_dict(),
            "std": std.to_dict(),
            "seconds": seconds,
            "checks": checks,
            "ablation_curves": curves,
        }
    if sweep:
        report += sensitivity(km, cfg, common_kwargs, cache, results)
    # A run of the gated testbeds alone has its own files, so it does not
    # replace the other scenarios' tables.
    suffix = "_testbed" if all(s in common.TESTBEDS for s in cfg["scenarios"]) else ""
    (out / f"strategies_{mode}{suffix}.json").write_text(
        json.dumps(common.jsonable(results), indent=2)
    )
    common.write_markdown(
        (f"strategies_{mode}" if mode != "full" else "strategies") + suffix,
        "Masking strategies on the synthetic benchmark",
        report,
        folder=out,
    )


def testbed_checks(mean):
    """The issue's targets on the testbed, in AUC points."""
    checks = {}
    if "miam" not in mean.index:
        return checks
    miam = mean.loc["miam"]
    for name in BASELINES:
        if name in mean.index:
            checks[f"miam_minus_{name}_avg"] = float(
                miam["average"] - mean.loc[name, "average"]
            )
    if all(n in mean.index for n in ABLATION):
        a = [float(mean.loc[n, "average"]) for n in ABLATION]
        checks["ablation_averages"] = a
        checks["ablation_monotone"] = bool(a[0] < a[1] <= a[2] < a[3])
    if "uniform" in mean.index:
        checks["miam_minus_uniform_weak_alone"] = float(
            miam[common.WEAK] - mean.loc["uniform", common.WEAK]
        )
    if "oracle" in mean.index:
        checks["miam_minus_oracle_weak_alone"] = float(
            miam[common.WEAK] - mean.loc["oracle", common.WEAK]
        )
    return checks


def run_testbed(km, scenario, settings, cfg, cache, out, results):
    """The comparison on a gated testbed: whole and partial inputs."""
    spec = common.TESTBEDS[scenario]
    gate = common.check_gated(scenario, settings, out)
    train, val, test = common.scenario_data(km, settings, spec["generator"])
    embed_dim = spec["embed_dim"]
    kwargs = common.testbed_training(km, spec, settings)
    compare = functools.partial(
        common.compare,
        (train, val, test),
        oracle=settings["oracle"],
        key={"embed_dim": embed_dim, "generator": spec["generator"]},
        **kwargs,
    )

    def cache_of(name):
        return common.RunCache(cache / name, cfg["assemble"])

    strategies = {
        name: common.VARIANTS.get(name, name) for name in settings["strategies"]
    }
    seeds = cfg["seeds"]
    if cfg["assemble"]:
        whole = functools.partial(compare, strategies, cache=cache_of(scenario))
        seeds = [seed for seed in seeds if complete(whole, seed)]
        if not seeds:
            print(f"\n== {scenario}: no complete seed, skipped")
            return []
    runs = compare(strategies, seeds=seeds, cache=cache_of(scenario))
    # The hypercube strategies again with one p per batch (the authors'
    # sampler), as their own rows.
    per_batch = {
        f"{name}_per_batch": name
        for name in spec["per_batch"]
        if name in settings["strategies"]
    }
    batch_seeds = []
    for seed in seeds if per_batch else []:
        try:
            batch_runs = compare(
                per_batch,
                seeds=[seed],
                cache=cache_of(f"{scenario}_per_batch"),
                oracle=False,
                per_example=False,
            )
            runs = runs + batch_runs
            batch_seeds.append(seed)
        except FileNotFoundError:  # --assemble, not run
            print(f"{scenario}: per-batch rows of seed {seed} not run, left out")
    mean, std, raw = common.testbed_table(runs, settings["modalities"])
    seconds = sum(r["fit_seconds"] for r in runs)
    fit = (
        pd.DataFrame([{"s": r["strategy"], "t": r["fit_seconds"]} for r in runs])
        .groupby("s", sort=False)["t"]
        .mean()
    )
    shown = mean.round(2).astype(str) + " +- " + std.round(2).astype(str)
    shown = shown.where(mean.notna(), "-")
    whole_cols = list(common.WHOLE) + ["whole avg"]
    partial_cols = list(common.PARTIAL) + ["partial avg", "average"]
    print(f"\n== {scenario} ({seconds:.0f} s)\n{shown.to_string()}", flush=True)
    checks = testbed_checks(mean)
    # The weak modality's validation curve per strategy (mean over seeds),
    # with the gate's image-only oracle (same model, no checkpoint) beside.
    curves = {}
    for r in runs:
        values = r["history"].get(f"val_{common.WEAK}_auc")
        if r["strategy"] != "oracle" and values:
            curves.setdefault(r["strategy"], []).append(values)
    curves = {k: list(np.mean(v, axis=0)) for k, v in curves.items()}
    gate_runs = next(a for a in gate["attempts"] if a["name"] == spec["gate_attempt"])
    oracle_curve = list(np.mean(list(gate_runs["curves"]["oracle"].values()), axis=0))
    tag = scenario if cfg["mode"] == "full" else f"{cfg['mode']}_{scenario}"
    plot_weak_curves(curves, oracle_curve, out / f"strategies_weak_curve_{tag}.png")
    # The epoch each kept checkpoint comes from (1-based), per row.
    best = {}
    for r in runs:
        values = r["history"].get(spec["restore_best"])
        if values:
            pick = np.argmin if "loss" in spec["restore_best"] else np.argmax
            best.setdefault(r["strategy"], []).append(int(pick(values)) + 1)
    best_line = "; ".join(
        f"{k} {min(v)}-{max(v)} (mean {np.mean(v):.1f})" for k, v in best.items()
    )
    gate_epochs = {v: k for k, v in gate["epochs"].items()}
    schedule = gate_epochs.get(settings["epochs"])
    schedule = f" (the gate's {schedule})" if schedule else ""
    results["scenarios"][scenario] = {
        "seeds": seeds,
        "best_epochs": best,
        "generator": spec["generator"],
        "mean": mean.to_dict(),
        "std": std.to_dict(),
        "per_batch_seeds": batch_seeds,
        "per_seed": raw.to_dict(orient="records"),
        "seconds": seconds,
        "checks": checks,
        "weak_curves": curves,
        "gate_oracle_curve": oracle_curve,
    }
    lines = [
        f"## Scenario `{scenario}` (the gated testbed, attempt {spec['gate_attempt']} "
        "of `testbed_gate.md`: mild imbalance, env + image, the image showing only "
        f"env's soil latent through a product code in one patch; generator {spec['generator']})",
        "",
        f"{settings['num_examples']} sites, {settings['epochs']} epochs{schedule}, "
        f"D = {embed_dim}, 2 blocks, 4 heads; seeds {seeds}; the checkpoint of lowest "
        f"`{spec['restore_best']}` is kept. Training time {seconds:.0f} s for "
        f"{len(runs)} models (mean per model: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in fit.items())
        + "). Test macro AUC x100, mean +- std over seeds (the `_per_batch` rows: "
        f"one p per batch instead of per example, seeds {batch_seeds}). "
        "Whole-modality subsets:",
        "",
        "```",
        shown[whole_cols].to_string(),
        "```",
        "",
        "Partial inputs (env[k/20]: the first k env variables, one per latent "
        "in the order temperature, moisture, soil, land use; image[k/4]: the "
        "first k of its 2 x 2 patches, row-major; image[3/4]: patches 1-3, "
        "without the code's patch), their average, and the average over "
        f"all {len(common.WHOLE) + len(common.PARTIAL)} evaluated inputs (the per-subset "
        "oracle has no partial models):",
        "",
        "```",
        shown[partial_cols].to_string(),
        "```",
        "",
        describe_testbed_checks(checks),
        "",
        f"Epoch of the kept checkpoint (lowest `{spec['restore_best']}`; "
        f"range over the models of each row, of {settings['epochs']}): "
        + best_line
        + ".",
        "",
        f"Figure: `strategies_weak_curve_{tag}.png` (validation AUC on the image "
        "alone per epoch, mean over seeds; the oracle's curve is the gate's).",
        "",
    ]
    return lines


def describe_testbed_checks(checks):
    if not checks:
        return ""
    parts = [
        f"MIAM minus {k[len('miam_minus_') : -len('_avg')]} on the average: {v:+.2f} (target >= +1)"
        for k, v in checks.items()
        if k.endswith("_avg")
    ]
    if "ablation_averages" in checks:
        a = checks["ablation_averages"]
        parts.append(
            "ablation Uniform -> Uniform hypercube -> Beta hypercube -> MIAM: "
            + " -> ".join(f"{v:.2f}" for v in a)
            + (" (monotone)" if checks["ablation_monotone"] else " (not monotone)")
        )
    if "miam_minus_uniform_weak_alone" in checks:
        parts.append(
            f"MIAM minus Uniform, {common.WEAK} alone: {checks['miam_minus_uniform_weak_alone']:+.2f} (target >= +3)"
        )
    if "miam_minus_oracle_weak_alone" in checks:
        parts.append(
            f"MIAM minus the oracle, {common.WEAK} alone: {checks['miam_minus_oracle_weak_alone']:+.2f} (target >= 0)"
        )
    return "Targets, in AUC points: " + "; ".join(parts) + "."


def plot_weak_curves(curves, oracle_curve, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, values in curves.items():
        style = "-" if name in ABLATION else ":"
        ax.plot(range(1, len(values) + 1), values, style, marker="o", ms=3, label=name)
    ax.plot(
        range(1, len(oracle_curve) + 1), oracle_curve, "k--", label="oracle (gate runs)"
    )
    ax.set(
        xlabel="epoch",
        ylabel=f"validation AUC, {common.WEAK} alone",
        title="The weak modality's validation curve per strategy",
    )
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)


def complete(compare, seed):
    try:
        compare(seeds=[seed], verbose=0)
        return True
    except FileNotFoundError:
        return False


def target_checks(mean):
    """The issue's targets, in AUC points, from the table of means (x100):
    `{miam row: {check: value}}` for `miam` and its labelled variants. The
    baselines are every other row but the oracle, the Beta hypercube
    controls included."""
    checks = {}
    miams = [row for row in mean.index if row.startswith("miam")]
    baselines = mean.drop(index=miams + ["oracle"], errors="ignore")
    for row in miams:
        checks[row] = row_checks = {}
        if len(baselines):
            row_checks["miam_minus_best_baseline_avg"] = float(
                mean.loc[row, "average"] - baselines["average"].max()
            )
        if "uniform" in mean.index:
            row_checks["miam_minus_uniform_weak_alone"] = float(
                mean.loc[row, common.WEAK] - mean.loc["uniform", common.WEAK]
            )
        if "oracle" in mean.index:
            row_checks["oracle_minus_miam_avg"] = float(
                mean.loc["oracle", "average"] - mean.loc[row, "average"]
            )
    return checks


def describe_checks(checks):
    labels = {
        "miam_minus_best_baseline_avg": (
            "{}'s average minus the best baseline's",
            ">= +1",
        ),
        "miam_minus_uniform_weak_alone": (
            f"{{}} minus Uniform, {common.WEAK} alone",
            ">= +3",
        ),
        "oracle_minus_miam_avg": ("the oracle's average minus {}'s", "<= 1.5"),
    }
    parts = [
        f"{labels[check][0].format('MIAM' if row == 'miam' else row)}: {value:+.2f} "
        f"(target {labels[check][1]})"
        for row, row_checks in checks.items()
        for check, value in row_checks.items()
    ]
    return "Targets, in AUC points: " + "; ".join(parts) + "." if parts else ""


def sweep_plan(cfg):
    """{scenario: kappa/lambda points}: the mode's swept scenarios among those
    run (else the first one run), `--grid` replacing their points."""
    plan = {s: grid for s, grid in cfg["sweep"].items() if s in cfg["scenarios"]}
    if not plan:
        plan = {cfg["scenarios"][0]: next(iter(cfg["sweep"].values()))}
    if cfg.get("grid"):
        plan = {scenario: cfg["grid"] for scenario in plan}
    return plan


def sensitivity(km, cfg, common_kwargs, cache, results):
    """kappa / lambda sweep for MIAM, scored on VALIDATION data, per swept
    scenario; each point is the mean over the sweep seeds that were run."""
    rows = [
        "| scenario | kappa | lambda | seeds | val average AUC | val image-alone AUC |",
        "|---|---|---|---|---|---|",
    ]
    sweep = []
    for scenario, grid in sweep_plan(cfg).items():
        settings = common.scenario_settings(scenario, cfg)
        train, val, _ = common.scenario_data(km, settings)
        for kappa, lam in grid:
            scores = []
            for seed in cfg["sweep_seeds"]:
                try:
                    runs = common.compare(
                        (train, val, val),
                        {"miam": {"name": "miam", "kappa": kappa, "lambda_": lam}},
                        [seed],
                        common.RunCache(
                            cache / f"sweep_{scenario}_kappa{kappa:g}_lambda{lam:g}",
                            cfg["assemble"],
                        ),
                        verbose=0,
                        **{**common_kwargs, "epochs": settings["epochs"]},
                    )
                except FileNotFoundError:  # --assemble: a seed or point not run
                    continue
                subsets = km.experiments.subset_scores(
                    runs[0]["subsets"], settings["modalities"]
                )
                scores.append(
                    (seed, subsets["average"] * 100, subsets[common.WEAK] * 100)
                )
            if not scores:
                rows.append(f"| {scenario} | {kappa:g} | {lam:g} | not run | | |")
                continue
            seeds, avg, weak = zip(*scores)
            sweep.append(
                {
                    "scenario": scenario,
                    "kappa": kappa,
                    "lambda": lam,
                    "seeds": list(seeds),
                    "val_average": float(np.mean(avg)),
                    "val_image": float(np.mean(weak)),
                    "val_average_per_seed": list(avg),
                    "val_image_per_seed": list(weak),
                }
            )
            rows.append(
                f"| {scenario} | {kappa:g} | {lam:g} | {', '.join(map(str, seeds))} | "
                f"{np.mean(avg):.2f} | {np.mean(weak):.2f} |"
            )
            print(
                f"{scenario} kappa={kappa:g} lambda={lam:g} seeds {list(seeds)}: "
                f"val average {np.mean(avg):.2f}, image {np.mean(weak):.2f}",
                flush=True,
            )
    results["sensitivity"] = sweep
    return [
        "## MIAM kappa / lambda sensitivity (validation split; mean over the seeds listed)",
        "",
    ] + rows


def plot_ablation(curves, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for name, values in curves.items():
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set(
        xlabel="epoch",
        ylabel=f"validation AUC, {common.WEAK} alone",
        title="Ablation: the dominated modality's unimodal curve",
    )
    ax.legend()
    fig.savefig(path, dpi=120)


def grid_point(text):
    """'KAPPA:LAMBDA' -> (kappa, lambda), both numbers."""
    try:
        kappa, lam = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected KAPPA:LAMBDA such as 10:1, received {text!r}"
        ) from None
    if not (kappa > 0 and lam >= 0):
        raise argparse.ArgumentTypeError(
            f"expected kappa > 0 and lambda >= 0, received {text!r}"
        )
    return kappa, lam


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Scenarios: "
        + ", ".join(
            f"{k} ({v[0]} imbalance; {', '.join(v[1])}"
            + "".join(f"; {a} {b}" for a, b in v[2].items())
            + ")"
            for k, v in common.SCENARIOS.items()
        ),
    )
    parser.add_argument("--quick", action="store_true", help="the <= 15 min mode")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=list(common.SCENARIOS),
        help="scenarios to run (default: the mode's)",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, help="seeds (default: the mode's)"
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=common.ALL + list(common.VARIANTS),
        help="strategies to train (default: the mode's; the full mode "
        "adds " + ", ".join(f"{k} = {v}" for k, v in common.VARIANTS.items()) + ")",
    )
    parser.add_argument(
        "--epochs", type=int, help="epochs per model (default: the mode's)"
    )
    parser.add_argument(
        "--num-examples", type=int, help="sites generated (default: the mode's)"
    )
    parser.add_argument(
        "--no-oracle", action="store_true", help="skip the per-subset oracle"
    )
    parser.add_argument(
        "--no-sweep", action="store_true", help="skip the kappa/lambda sweep"
    )
    parser.add_argument(
        "--grid",
        nargs="+",
        type=grid_point,
        metavar="KAPPA:LAMBDA",
        help="kappa/lambda points of the sweep, on the validation split of "
        "each swept scenario run (default: the mode's), e.g. 10:1 10:3",
    )
    parser.add_argument(
        "--sweep-seeds",
        nargs="+",
        type=int,
        help="seeds of each sweep point (default: the mode's)",
    )
    parser.add_argument(
        "--assemble",
        action="store_true",
        help="train nothing: tabulate the seeds whose runs are all saved",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=common.RESULTS,
        help="results folder (default: benchmarks/results)",
    )
    args = parser.parse_args(argv)
    overrides = {
        key: value
        for key, value in {
            "scenarios": args.scenarios,
            "seeds": args.seeds,
            "strategies": args.strategies,
            "epochs": args.epochs,
            "num_examples": args.num_examples,
            "grid": args.grid,
            "sweep_seeds": args.sweep_seeds,
        }.items()
        if value is not None
    }
    if args.no_oracle:
        overrides["oracle"] = False
    overrides["assemble"] = args.assemble
    args.output.mkdir(parents=True, exist_ok=True)
    run(
        "quick" if args.quick else "full",
        args.output,
        overrides,
        sweep=not args.no_sweep,
    )


if __name__ == "__main__":
    main()
