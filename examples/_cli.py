"""What the example scripts share: their command line and the files they write.

`python examples/NAME.py` puts this folder on the import path (`import _cli`);
the tests, run from the repository root, import it as `examples._cli`. It
imports neither Keras nor keras_miam at load time, so `--help` and argument
errors answer at once.
"""

import argparse
import json
import time


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except None and False ones."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def make_parser(doc):
    """A parser described by the first paragraph of a script's docstring."""
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=HelpFormatter
    )


def add_training_arguments(
    parser,
    epochs,
    batch_size,
    epochs_help="training epochs",
    batch_size_help="examples per training step",
):
    """Adds --epochs and --batch-size."""
    parser.add_argument("--epochs", type=int, default=epochs, help=epochs_help)
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=batch_size_help
    )


def add_strategy_arguments(
    parser,
    epochs,
    batch_size,
    epochs_help="training epochs per strategy",
    batch_size_help="examples per training step",
):
    """Adds --strategies (to compare), --strategy (one), --epochs, --batch-size."""
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=["uniform", "miam"],
        help="masking strategies to compare (names of keras_miam.strategies)",
    )
    parser.add_argument(
        "--strategy",
        default=None,
        help="train a single strategy (shortcut for --strategies NAME)",
    )
    add_training_arguments(
        parser,
        epochs,
        batch_size,
        epochs_help=epochs_help,
        batch_size_help=batch_size_help,
    )


def add_run_arguments(
    parser, output, seed_help="seeds the splits, the weights and the masking"
):
    """Adds --seed, --output and --no-explain."""
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--output", default=output, help="output folder")
    parser.add_argument(
        "--no-explain",
        action="store_true",
        help="skip the Shapley contributions (faster)",
    )


def chosen_strategies(args):
    """The strategies to train: --strategy, else --strategies without repeats."""
    return [args.strategy] if args.strategy else list(dict.fromkeys(args.strategies))


def comparison(args):
    """`compare_strategies` keywords of the shared arguments (one seed).

    The strategies, --seed, --epochs, --batch-size, and --learning-rate when
    the script has it.
    """
    keywords = {
        "strategies": chosen_strategies(args),
        "seeds": [args.seed],
        "epochs": args.epochs,
        "batch_size": args.batch_size,
    }
    if hasattr(args, "learning_rate"):
        keywords["learning_rate"] = args.learning_rate
    return keywords


def require_positive(parser, args, names):
    """Exits with a usage error unless each named argument is >= 1."""
    for name in names:
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be >= 1; "
                f"received {getattr(args, name)}."
            )


def require_two_modalities(parser, modalities):
    """Exits with a usage error unless at least two distinct modalities are given."""
    if len(set(modalities)) < 2:
        parser.error(
            "MIAM balances several modalities: pass at least two "
            f"distinct --modalities; received {modalities}."
        )


def plot_runs(runs, out):
    """The subset and dynamics figures of a comparison; returns the run shown.

    The trained hypercube is drawn for the MIAM run (else the last run),
    the run that `explain` then explains.
    """
    import keras_miam as km

    frames = {run["strategy"]: run["subsets"] for run in runs}
    km.plotting.plot_subsets(frames, path=out / "subsets.png")
    for run in runs:
        km.plotting.plot_dynamics(
            run["history"], path=out / f"dynamics_{run['strategy']}.png"
        )
    last = next((run for run in runs if run["strategy"] == "miam"), runs[-1])
    km.plotting.plot_hypercube(
        last["model"].masking, path=out / f"hypercube_{last['strategy']}_trained.png"
    )
    return last


def run_results(mean, runs):
    """The results JSON's table, averages and per-run records.

    Args:
        mean: the comparison's mean table (`table.attrs["mean"]`: one row
            per strategy, one column per subset plus "average").
        runs: the comparison's runs.
    """
    subsets = [c for c in mean.columns if c != "average"]
    return {
        "table": [
            {
                "subset": label,
                "modalities": label.split("+"),
                "size": len(label.split("+")),
                **{s: float(mean.loc[s, label]) for s in mean.index},
            }
            for label in subsets
        ],
        "average": {s: float(v) for s, v in mean["average"].items()},
        "fit_seconds": {run["strategy"]: run["fit_seconds"] for run in runs},
        "final_mask_ratios": {
            run["strategy"]: run["model"].masking.mask_ratios().tolist() for run in runs
        },
        "history": {run["strategy"]: run["history"] for run in runs},
    }


def explain(run, test, out, what, metric=None):
    """Prints and plots the modality Shapley values of a run's model.

    Returns:
        `{modality: value}`, JSON-ready.
    """
    import keras_miam as km

    shapley = km.explain.modality_shapley(run["model"], test, metric=metric, verbose=0)
    km.plotting.plot_shapley(shapley, path=out / "modality_shapley.png")
    print(f"\nModality Shapley values ({run['strategy']}, test {what}):")
    print(shapley.to_string())
    return {k: float(v) for k, v in shapley["value"].items()}


def _plain(value):
    """Numpy values as Python ones (`json.dumps`' default), others as text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def write_results(out, results, start):
    """Writes `results.json` (with the total time since `start`) and says so."""
    results["total_seconds"] = time.perf_counter() - start
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_plain))
    print(
        f"\nWrote {sorted(p.name for p in out.iterdir())} to {out}/ "
        f"in {results['total_seconds']:.0f} s"
    )
