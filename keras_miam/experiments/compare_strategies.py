"""The paper's comparison: several strategies (and oracles), several seeds,
and the scores of an `evaluate_subsets` table as a dict."""

import functools

import numpy as np

from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation import selections
from keras_miam.experiments.train_and_evaluate import train_and_evaluate


def compare_strategies(
    train,
    validation,
    test,
    strategies=("uniform", "miam"),
    seeds=(0,),
    oracle=False,
    verbose=1,
    **kwargs,
):
    """Trains every strategy (and optionally the per-subset oracle) per seed.

    Args:
        train, validation, test: as `train_and_evaluate` takes them.
        strategies: names, configs or instances of strategies, each row
            labelled by its name; or a dict `{label: strategy}`.
        seeds: one model per strategy and seed.
        oracle: also train a model per modality subset, on that subset only.
        verbose: 0 silent, 1 a line per run and Keras progress bars, 2 only
            the lines.
        **kwargs: passed to `train_and_evaluate`.

    Returns:
        `(table, runs)`: `table`, a row per strategy (and "oracle"), a column
        per subset and "average", of "mean +- std" over seeds (the numbers in
        `table.attrs` "mean", "std", "raw"); `runs`, the `train_and_evaluate`
        results with "strategy", "seed" (and an oracle's "subset").

    Example:

    >>> table, runs = keras_miam.experiments.compare_strategies(
    ...     train, val, test, strategies=["uniform", "miam"], epochs=5)
    """
    import pandas as pd

    modalities = list(data_lib.data_shapes(train, "`train`")[0])
    if isinstance(strategies, dict):
        names, strategies = list(map(str, strategies)), list(strategies.values())
    else:
        strategies = list(strategies)
        names = [
            str(s.get("name", s) if isinstance(s, dict) else getattr(s, "name", s))
            for s in strategies
        ]
    if len(set(names)) != len(names) or "oracle" in names:
        raise ValueError(
            f"Each strategy needs its own name (the table's rows), other than "
            f"'oracle'; received names {names}."
        )
    run = functools.partial(train_and_evaluate, train, validation, test, **kwargs)
    runs, rows = [], []
    for seed in seeds:
        for name, strategy in zip(names, strategies):
            result = run(strategy, seed=seed, verbose=int(verbose == 1))
            runs.append({"strategy": name, "seed": seed, **result})
            scores = subset_scores(result["subsets"], modalities)
            rows.append({"strategy": name, "seed": seed, **scores})
            notes = [f"{k} {v:.4f}" for k, v in result["test_scores"].items()]
            if result["best_epoch"] is not None:
                notes.append(f"best epoch {result['best_epoch']}")
            _report(verbose, rows[-1], [*notes, f"{result['fit_seconds']:.0f} s"])
        if oracle:
            scores = {}
            for subset in selections.all_subsets(modalities):
                result = run(seed=seed, visible=list(subset), verbose=0)
                runs.append(
                    {"strategy": "oracle", "seed": seed, "subset": subset, **result}
                )
                scores.update(subset_scores(result["subsets"], modalities, False))
            scores["average"] = float(np.mean(list(scores.values())))
            rows.append({"strategy": "oracle", "seed": seed, **scores})
            _report(verbose, rows[-1])
    raw = pd.DataFrame(rows)
    grouped = raw.groupby("strategy", sort=False)[list(raw.columns[2:])]
    mean, std = grouped.mean(), grouped.std(ddof=0)
    table = mean.map(lambda v: f"{v:.4f}") + " +- " + std.map(lambda v: f"{v:.4f}")
    table.attrs["mean"], table.attrs["std"], table.attrs["raw"] = mean, std, raw
    return table, runs


def _report(verbose, row, notes=()):
    if verbose:
        line = f"[{row['strategy']} seed {row['seed']}] average {row['average']:.4f}"
        print(", ".join([line, *notes]), flush=True)


def subset_scores(frame, modalities=None, summary=True):
    """`{subset label: metric}` from an `evaluate_subsets` table, and the
    mean over subsets as "average" with `summary`. `modalities` orders the
    members of each label, so that labels match across tables.

    Example:

    >>> frame = keras_miam.evaluation.evaluate_subsets(model, (x_test, y_test))
    >>> keras_miam.experiments.subset_scores(frame)["image"]
    0.66...
    """
    order = {name: i for i, name in enumerate(modalities or ())}
    scores = {}
    for label, value in frame[frame["kind"] == "subset"][frame.attrs["metric"]].items():
        members = selections.parse_label(label)
        members = sorted(members, key=lambda m: order.get(m, len(order)))
        scores[selections.subset_label(members)] = float(value)
    if summary:
        scores["average"] = float(np.mean(list(scores.values())))
    return scores
