"""Does MIAM keep its promise? The dynamics estimators and the paper's ablations.

The promise (issue #23): "modalities that perform strongly and learn stably
are masked more often". Four studies, each on validation data first:

- `--study estimators`: the `ModalityDynamics` estimator variants, fixed
  before any run: `published` (raw metric, epsilon floor: `chance=None,
  noise_floor=False`), `chance` (score rescaled so that chance is 0),
  `noise` (score and derivative floored at the measured noise), `both`,
  and `beta_hypercube` (no dynamics), on three scenarios:
  - `testbed`: the gated testbed `redundant_M2` (3000 sites, 16 epochs,
    the checkpoint of lowest `val_loss`);
  - `texture`: the same sites and model, the image showing env's soil
    latent as a grating's energy (the gate's attempt A1, which the image
    learns slowly: a modality stuck near chance);
  - `quickstart`: the README Quickstart model (Dense encoders, one token
    per modality; 12 epochs of batches of 128, the last epoch: the CPU time
    this study had) on `make_synthetic_ecology(3000, modalities=("env",
    "image"))`.
- `--study diagnostics`, added after the decision and not used by it: the
  same variants on `quickstart20`, the Quickstart pattern trained 20
  epochs (the length of the issue's Quickstart trial), to see whether r_env
  passes 1 once env levels off.
- `--study ablations` (the gated testbed, the `both` estimator): rho_s only
  (`lambda_d=0`), rho_d only (`lambda_s=0`), kappa in {1, 5, 20} and lambda
  in {0.5, 3} beside the default (kappa 10, lambda 1). With M = 2 uniform
  and priority corner weights are the same distribution (both weigh every
  corner 1/4), so:
- `--study corners`: priority (`priority_corners_mass=0.5`, 1/4 each)
  against uniform (`2 / 2^M` = 0.25) corner weights, the `both` estimator,
  on `mild_M3` (env, landsat, image; the testbed's model, 3000 sites and
  16 epochs).

Per run: the geometric mean of r_env (env is the dominant modality) over
epochs 2..E, the share of those epochs with r_env > 1, the std of the
epoch-to-epoch change of log r_env, the validation subset average and the
image alone, then the same on the test split.

Decision rule (issue #23, fixed before the runs): a variant becomes the
default where its r_env geometric mean (mean over seeds) is > 1 on every
scenario and its validation subset average is not below the published
estimator's by more than the larger seed std of the two.

Runs are kept in `benchmarks/results/dynamics_estimator_runs/` (`common.RunCache`:
one JSON file per study, scenario, variant and seed, not in git): the script
resumes, and `--assemble` trains nothing and reports the runs found.

    python benchmarks/dynamics_estimator.py                       # everything
    python benchmarks/dynamics_estimator.py --study ablations --seeds 0
"""

import argparse
import time
from functools import partial
from pathlib import Path

import common  # noqa: E402
import numpy as np

SEEDS = [0, 1, 2]
DOMINANT, WEAK = "env", "image"
PUBLISHED = {"chance": None, "noise_floor": False}
ESTIMATORS = {
    "published": ("miam", PUBLISHED),
    "chance": ("miam", {"chance": "auto", "noise_floor": False}),
    "noise": ("miam", {"chance": None, "noise_floor": True}),
    "both": ("miam", {"chance": "auto", "noise_floor": True}),
    "beta_hypercube": ("beta_hypercube", PUBLISHED),
}
BOTH = ESTIMATORS["both"][1]
ABLATIONS = {
    "default": ({"name": "miam"}, BOTH),
    "rho_s_only": ({"name": "miam", "lambda_d": 0.0}, BOTH),
    "rho_d_only": ({"name": "miam", "lambda_s": 0.0}, BOTH),
    "kappa1": ({"name": "miam", "kappa": 1.0}, BOTH),
    "kappa5": ({"name": "miam", "kappa": 5.0}, BOTH),
    "kappa20": ({"name": "miam", "kappa": 20.0}, BOTH),
    "lambda0.5": ({"name": "miam", "lambda_": 0.5}, BOTH),
    "lambda3": ({"name": "miam", "lambda_": 3.0}, BOTH),
}
CORNERS = {
    "priority": ({"name": "miam"}, BOTH),
    "uniform": ({"name": "miam", "priority_corners_mass": 0.25}, BOTH),
}
STUDIES = {
    "estimators": (ESTIMATORS, ["quickstart", "testbed", "texture"]),
    "ablations": (ABLATIONS, ["testbed"]),
    "corners": (CORNERS, ["mild_M3"]),
    "diagnostics": (ESTIMATORS, ["quickstart20"]),
}


def scenario(km, name):
    """(train, val, test, train_fn) of a scenario; train_fn(strategy,
    dynamics_kwargs, seed) -> (model, history, fit seconds)."""
    if name.startswith("quickstart"):
        x, y, _ = km.datasets.make_synthetic_ecology(3000, modalities=(DOMINANT, WEAK))
        train, val, test = km.datasets.split_dataset(x, y, seed=0)
        epochs = 20 if name == "quickstart20" else 12
        fit = partial(quickstart_fit, km, train, val, epochs=epochs)
        return train, val, test, None, fit
    tb = common
    spec = tb.TESTBEDS["redundant_M2"]
    cfg = {**tb.MODES["full"], "overridden": []}
    settings = tb.scenario_settings("redundant_M2", cfg)
    generator = dict(spec["generator"])
    if name == "texture":  # the gate's attempt A1
        generator = {"redundancy": 1.0, "image_species_fraction": 1.0}
    kwargs = tb.testbed_training(km, spec, settings)
    subsets = kwargs.pop("subsets")
    if name == "mild_M3":  # the testbed's model and schedule, three modalities
        settings["imbalance"], settings["modalities"] = tb.SCENARIOS[name][:2]
        generator, subsets = None, None
    train, val, test = tb.scenario_data(km, settings, generator)

    def fit(strategy, dynamics, seed):
        result = km.experiments.train_and_evaluate(
            train,
            val,
            val,
            strategy=strategy,
            dynamics_kwargs=dynamics,
            seed=seed,
            verbose=0,
            subsets={"env": {"env": True}},
            **kwargs,
        )
        return result["model"], result["history"], result["fit_seconds"]

    return train, val, test, subsets, fit


def quickstart_fit(km, train, val, strategy, dynamics, seed, epochs=12):
    """The README Quickstart's model and compile, `epochs` epochs of 128."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = {
        "env": keras.Input((20,), name="env"),
        "image": keras.Input((16, 16, 4), name="image"),
    }
    env_x, env_ok = km.layers.FillMissing()(inputs["env"])
    img_x, img_ok = km.layers.FillMissing()(inputs["image"])
    env = keras.layers.Dense(64, activation="relu")(env_x)
    img = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(img_x))
    masking = km.MIAMMasking(["env", "image"], strategy=strategy, seed=seed)
    tokens, keep = masking(
        {"env": env, "image": img}, mask={"env": env_ok, "image": img_ok}
    )
    pooled = km.layers.VisibleMeanPooling()(tokens, mask=keep)
    model = keras.Model(inputs, keras.layers.Dense(20)(pooled))
    model.compile("adamw", keras.losses.BinaryCrossentropy(from_logits=True))
    start = time.perf_counter()
    history = model.fit(
        *train,
        epochs=epochs,
        batch_size=128,
        validation_data=val,
        verbose=0,
        callbacks=[km.ModalityDynamics(val, **dynamics)],
    )
    return model, history.history, time.perf_counter() - start


def ratio_summary(history):
    """r_env over epochs 2..E: geometric mean, share > 1, std of d log r."""
    r = np.asarray(history[f"{DOMINANT}_mask_ratio"], "float64")[1:]
    log_r = np.log(r)
    return {
        "r_dominant_geomean": float(np.exp(log_r.mean())),
        "share_r_dominant_above_1": float(np.mean(r > 1.0)),
        "std_dlog_r": float(np.std(np.diff(log_r))),
        "r_dominant": r.tolist(),
        "r_weak": np.asarray(history[f"{WEAK}_mask_ratio"], "float64")[1:].tolist(),
    }


def subset_scores(km, model, data, subsets):
    frame = km.evaluation.evaluate_subsets(model, data, subsets=subsets or "all")
    values = frame[frame["kind"] == "subset"][frame.attrs["metric"]] * 100
    values = {str(k).replace(" ", ""): float(v) for k, v in values.items()}
    return {
        "average": float(np.mean(list(values.values()))),
        "weak": values[WEAK],
        "subsets": values,
    }


def run_one(km, data, study, scen, label, seed, cache):
    """One run's record, read from `cache` or trained (None: missing, when
    assembling)."""
    strategy, dynamics = STUDIES[study][0][label]
    settings = {
        "study": study,
        "scenario": scen,
        "variant": label,
        "seed": seed,
        "strategy": strategy,
        "dynamics_kwargs": dynamics,
    }

    def train():
        _, val, test, subsets, fit = data
        model, history, seconds = fit(strategy, dynamics, seed)
        record = {
            "fit_seconds": seconds,
            **ratio_summary(history),
            "validation": subset_scores(km, model, val, subsets),
            "test": subset_scores(km, model, test, subsets),
        }
        print(
            f"{study}/{scen}/{label}/seed{seed}: r_env "
            f"{record['r_dominant_geomean']:.2f}, val avg "
            f"{record['validation']['average']:.2f}, {seconds:.0f} s",
            flush=True,
        )
        return record

    try:
        record = cache.run(f"{label}_seed{seed}", settings, train)
    except FileNotFoundError:  # --assemble: a run not made yet
        return None
    return {**record["settings"], **record}


def run(study, seeds, out, assemble=False, scenarios=None, only=None):
    import keras_miam as km

    variants, names = STUDIES[study]
    variants = [v for v in variants if not only or v in only]
    records = []
    for scen in scenarios or names:
        cache = common.RunCache(
            out / "dynamics_estimator_runs" / study / scen, assemble
        )
        data = None if assemble else scenario(km, scen)
        for seed in seeds:  # seed first: an interrupted study has whole seeds
            for label in variants:
                record = run_one(km, data, study, scen, label, seed, cache)
                if record is not None:
                    records.append(record)
    if records:
        report(study, records, out)
    return records


def table(records, scen, split):
    """Rows: variant -> mean +- std over seeds of each column."""
    rows = []
    for label in dict.fromkeys(r["variant"] for r in records if r["scenario"] == scen):
        mine = [r for r in records if r["scenario"] == scen and r["variant"] == label]
        cols = {
            "r_env geomean": [r["r_dominant_geomean"] for r in mine],
            "epochs r_env > 1": [100 * r["share_r_dominant_above_1"] for r in mine],
            "std d log r_env": [r["std_dlog_r"] for r in mine],
            f"{split} average": [r[split]["average"] for r in mine],
            f"{split} image": [r[split]["weak"] for r in mine],
            "fit s": [r["fit_seconds"] for r in mine],
        }
        rows.append((label, sorted(r["seed"] for r in mine), cols))
    return rows


def markdown(rows, split):
    head = [
        "r_env geomean",
        "epochs r_env > 1",
        "std d log r_env",
        f"{split} average",
        f"{split} image",
        "fit s",
    ]
    lines = [
        "| variant | seeds | " + " | ".join(head) + " |",
        "|---" * (len(head) + 2) + "|",
    ]
    for label, seeds, cols in rows:
        cells = [f"{np.mean(cols[h]):.2f} +- {np.std(cols[h]):.2f}" for h in head[:-1]]
        lines.append(
            f"| {label} | {', '.join(map(str, seeds))} | "
            + " | ".join(cells)
            + f" | {np.mean(cols['fit s']):.0f} |"
        )
    return lines


def decide(records):
    """The decision rule of the module docstring, per MIAM variant."""
    verdicts = {}
    scens = list(dict.fromkeys(r["scenario"] for r in records))
    for label in ("chance", "noise", "both"):
        ok, why = True, []
        for scen in scens:
            mine = [
                r for r in records if r["scenario"] == scen and r["variant"] == label
            ]
            base = [
                r
                for r in records
                if r["scenario"] == scen and r["variant"] == "published"
            ]
            if len(mine) < 3 or len(base) < 3:
                ok = False
                why.append(f"{scen}: fewer than 3 seeds")
                continue
            gm = np.mean([r["r_dominant_geomean"] for r in mine])
            a = [r["validation"]["average"] for r in mine]
            b = [r["validation"]["average"] for r in base]
            margin = max(np.std(a), np.std(b))
            kept = gm > 1 and np.mean(a) >= np.mean(b) - margin
            ok &= bool(kept)
            why.append(
                f"{scen}: r_env {gm:.2f}, val avg {np.mean(a) - np.mean(b):+.2f} (margin {margin:.2f})"
            )
        verdicts[label] = {"qualifies": ok, "why": why}
    return verdicts


def report(study, records, out):
    scens = list(dict.fromkeys(r["scenario"] for r in records))
    lines = [common.machine_line(), "", __doc__.split("\n\n")[1], ""]
    for split in ("validation", "test"):
        lines += [f"## {split.capitalize()} split", ""]
        for scen in scens:
            lines += [
                f"### {scen}",
                "",
                *markdown(table(records, scen, split), split),
                "",
            ]
    if study == "estimators":
        lines += ["## Decision (validation only)", ""]
        for label, v in decide(records).items():
            lines.append(
                f"- {label}: {'qualifies' if v['qualifies'] else 'does not qualify'} ({'; '.join(v['why'])})"
            )
    common.write_markdown(
        f"dynamics_estimator_{study}", f"MIAM's promise: {study}", lines, folder=out
    )
    plot_ratios(study, records, out / f"dynamics_estimator_{study}.png")


def plot_ratios(study, records, path):
    """r_env and r_image over epochs, one panel per scenario, mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scens = list(dict.fromkeys(r["scenario"] for r in records))
    fig, axes = plt.subplots(
        2, len(scens), figsize=(5 * len(scens), 6.5), squeeze=False
    )
    for j, scen in enumerate(scens):
        for i, key in enumerate(("r_dominant", "r_weak")):
            ax = axes[i, j]
            for label in dict.fromkeys(r["variant"] for r in records):
                runs = [
                    r[key]
                    for r in records
                    if r["scenario"] == scen and r["variant"] == label
                ]
                if runs:
                    n = min(map(len, runs))
                    geo = np.exp(np.mean(np.log([run[:n] for run in runs]), axis=0))
                    ax.plot(np.arange(2, n + 2), geo, marker="o", ms=3, label=label)
            ax.axhline(1.0, color="grey", lw=0.8)
            ax.set_yscale("log")
            ax.set_title(f"{scen}: r_{DOMINANT if i == 0 else WEAK}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("r (geometric mean over seeds)")
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", choices=list(STUDIES) + ["all"], default="all")
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--scenarios", nargs="+", default=None)
    parser.add_argument("--variants", nargs="+", default=None)
    parser.add_argument("--assemble", action="store_true", help="train nothing")
    parser.add_argument("--output", type=Path, default=common.RESULTS)
    args = parser.parse_args(argv)
    for study in STUDIES if args.study == "all" else [args.study]:
        run(
            study, args.seeds, args.output, args.assemble, args.scenarios, args.variants
        )


if __name__ == "__main__":
    main()
