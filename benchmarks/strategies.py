"""The paper's comparison on the synthetic benchmark: eight strategies and the oracle.

Trains the same `MultimodalTransformer` under each masking strategy (Constant,
Uniform, Dirichlet, ModalityDropout, OPM, UniformHypercube, BetaHypercube, MIAM)
and the per-subset oracle (one model per modality subset, trained on that subset
only), over several seeds and scenarios (strong and mild imbalance with M = 3,
mild imbalance with M = 4; `--quick` runs mild M = 3 only); evaluates every model on every subset of a held-out test
split; writes the paper-style table (rows = strategies + oracle, columns =
subsets + average, mean +- std over seeds), the ablation curves (the dominated
modality's unimodal validation AUC over epochs for Uniform -> UniformHypercube
-> BetaHypercube -> MIAM) and a kappa/lambda sensitivity table for MIAM, chosen
on VALIDATION data (the test split is never used to choose anything).

    python benchmarks/strategies.py --quick        # <= 15 min on a 2-core CPU
    python benchmarks/strategies.py                # the full mode
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ALL = ["constant", "uniform", "dirichlet", "modality_dropout", "opm",
       "uniform_hypercube", "beta_hypercube", "miam"]
ABLATION = ["uniform", "uniform_hypercube", "beta_hypercube", "miam"]
SCENARIOS = {
    # name: (generator imbalance, modalities); the image is the dominated one.
    "strong_M3": ("strong", ("env", "landsat", "image")),
    "mild_M3": ("mild", ("env", "landsat", "image")),
    "mild_M4": ("mild", ("env", "climate", "landsat", "image")),
}
MODES = {
    "quick": dict(num_examples=3000, epochs=6, seeds=[0], embed_dim=32, oracle=True,
                  scenarios=["mild_M3"], grid=[(10.0, 1.0), (5.0, 1.0), (10.0, 2.0)]),
    "full": dict(num_examples=10000, epochs=15, seeds=[0, 1, 2], embed_dim=48, oracle=True,
                 scenarios=list(SCENARIOS),
                 grid=[(k, l) for k in (5.0, 10.0, 20.0) for l in (0.5, 1.0, 2.0)]),
}
WEAK = "image"


def run(mode, out):
    import keras  # noqa: F401

    import keras_miam as km

    cfg = MODES[mode]
    report = [common.machine_line(), "",
              f"Mode `{mode}`: {cfg['num_examples']} sites (70/15/15 split), "
              f"{cfg['epochs']} epochs, D = {cfg['embed_dim']}, 2 blocks, seeds {cfg['seeds']}. "
              "Metric: test macro AUC over species (x100). Defaults (kappa = 10, lambda = 1) "
              "are the paper's; the sensitivity sweep below is on the validation split.", ""]
    results = {"mode": mode, "config": cfg, "scenarios": {}}
    tokenizers = lambda xs: km.experiments.default_tokenizers(
        xs, embed_dim=cfg["embed_dim"], max_tokens=8)
    common_kwargs = dict(epochs=cfg["epochs"], batch_size=128, tokenizers=tokenizers,
                         model_kwargs={"num_layers": 2})
    for scenario in cfg["scenarios"]:
        imbalance, modalities = SCENARIOS[scenario]
        x, y, _ = km.datasets.make_synthetic_ecology(
            cfg["num_examples"], imbalance=imbalance, modalities=modalities, seed=0)
        train, val, test = km.datasets.split_dataset(x, y, seed=0)
        start = time.perf_counter()
        table, runs = km.experiments.compare_strategies(
            train, val, test, strategies=ALL, seeds=cfg["seeds"], oracle=cfg["oracle"],
            verbose=2, **common_kwargs)
        seconds = time.perf_counter() - start
        mean, std = table.attrs["mean"] * 100, table.attrs["std"] * 100
        shown = mean.round(2).astype(str) + " +- " + std.round(2).astype(str)
        print(f"\n== {scenario} ({seconds:.0f} s)\n{shown.to_string()}", flush=True)
        best_baseline = mean.drop(index=["miam", "oracle"], errors="ignore")["average"].max()
        checks = {
            "miam_minus_best_baseline_avg": float(mean.loc["miam", "average"] - best_baseline),
            "miam_minus_uniform_weak_alone": float(mean.loc["miam", WEAK] - mean.loc["uniform", WEAK]),
        }
        if "oracle" in mean.index:
            checks["oracle_minus_miam_avg"] = float(mean.loc["oracle", "average"] - mean.loc["miam", "average"])
        report += [f"## Scenario `{scenario}` (imbalance {imbalance}, modalities {', '.join(modalities)})",
                   "", f"Run time {seconds:.0f} s for {len(runs)} models.", "",
                   "```", shown.to_string(), "```", "",
                   "Targets: MIAM's average >= best baseline + 1 point "
                   f"(measured {checks['miam_minus_best_baseline_avg']:+.2f}); image alone "
                   f">= Uniform + 3 points (measured {checks['miam_minus_uniform_weak_alone']:+.2f})"
                   + (f"; within 1.5 points of the oracle (measured gap "
                      f"{checks['oracle_minus_miam_avg']:+.2f})." if "oracle_minus_miam_avg" in checks else "."),
                   ""]
        # Ablation: the dominated modality's unimodal validation curve.
        curves = {r["strategy"]: r["history"].get(f"val_{WEAK}_auc") for r in runs
                  if r["strategy"] in ABLATION and r["seed"] == cfg["seeds"][0]}
        plot_ablation(curves, out / f"strategies_ablation_{scenario}.png")
        km.plotting.plot_subsets({r["strategy"]: r["subsets"] for r in runs
                                  if r["strategy"] != "oracle" and r["seed"] == cfg["seeds"][0]},
                                 path=out / f"strategies_subsets_{scenario}.png")
        results["scenarios"][scenario] = {"mean": mean.to_dict(), "std": std.to_dict(),
                                          "seconds": seconds, "checks": checks,
                                          "ablation_curves": curves}
    # kappa / lambda sensitivity on validation data (first scenario).
    imbalance, modalities = SCENARIOS[cfg["scenarios"][0]]
    x, y, _ = km.datasets.make_synthetic_ecology(
        cfg["num_examples"], imbalance=imbalance, modalities=modalities, seed=0)
    train, val, _ = km.datasets.split_dataset(x, y, seed=0)
    rows = ["| kappa | lambda | val average AUC | val image-alone AUC |", "|---|---|---|---|"]
    sweep = []
    for kappa, lam in cfg["grid"]:
        result = km.experiments.train_and_evaluate(
            train, val, val, strategy={"name": "miam", "kappa": kappa, "lambda_": lam},
            verbose=0, **common_kwargs)
        frame = result["subsets"]
        avg = float(frame.loc["mean (all subsets)", frame.attrs["metric"]]) * 100
        weak = float(frame.loc[WEAK, frame.attrs["metric"]]) * 100
        sweep.append({"kappa": kappa, "lambda": lam, "val_average": avg, "val_image": weak})
        rows.append(f"| {kappa:g} | {lam:g} | {avg:.2f} | {weak:.2f} |")
        print(f"kappa={kappa:g} lambda={lam:g}: val average {avg:.2f}, image {weak:.2f}", flush=True)
    report += ["## MIAM kappa / lambda sensitivity (validation split, scenario "
               f"`{cfg['scenarios'][0]}`)", ""] + rows
    results["sensitivity"] = sweep
    (out / f"strategies_{mode}.json").write_text(json.dumps(results, indent=2, default=float))
    common.write_markdown(f"strategies_{mode}" if mode != "full" else "strategies",
                          "Masking strategies on the synthetic benchmark", report)


def plot_ablation(curves, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for name, values in curves.items():
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set(xlabel="epoch", ylabel=f"validation AUC, {WEAK} alone",
           title="Ablation: the dominated modality's unimodal curve")
    ax.legend()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the <= 15 min mode")
    args = parser.parse_args()
    out = common.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    run("quick" if args.quick else "full", out)


if __name__ == "__main__":
    main()
