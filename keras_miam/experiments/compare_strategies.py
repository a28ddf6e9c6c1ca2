"""The paper's comparison: several strategies (and oracles), several seeds."""

import functools

import numpy as np

from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation.selections import all_subsets
from keras_miam.experiments.subset_scores import subset_scores
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
        train, validation, test: `(x, y)` tuples or streamed data (see
            `train_and_evaluate`).
        strategies: names, configs or instances of the strategies, each row
            labelled by its name; or a dict `{label: strategy}`.
        seeds: one model per strategy and seed.
        oracle: also train one model per modality subset, on that subset
            only (2^M - 1 models per seed).
        verbose: 0 silent, 1 one line per run plus Keras progress bars,
            2 only the lines.
        **kwargs: passed to `train_and_evaluate` (epochs, batch_size, ...).

    Returns:
        `(table, runs)`: `table` a DataFrame with one row per strategy (and
        "oracle") and one column per subset plus "average", of "mean +- std
        over seeds" strings (`table.attrs` "mean", "std" and "raw" hold the
        numbers); `runs` the `train_and_evaluate` results, with "strategy",
        "seed" (and "subset" for an oracle model).

    Example:

    >>> x, y, _ = keras_miam.datasets.make_synthetic_ecology(3000)
    >>> train, val, test = keras_miam.datasets.split_dataset(x, y)
    >>> table, runs = keras_miam.experiments.compare_strategies(
    ...     train, val, test, strategies=["uniform", "miam"], epochs=5)
    >>> print(table.to_string())

    """
    import pandas as pd

    modalities = list(data_lib.data_shapes(train, "`train`")[0])
    if isinstance(strategies, dict):
        names, strategies = [str(k) for k in strategies], list(strategies.values())
    else:
        strategies = list(strategies)
        names = [strategy_name(strategy) for strategy in strategies]
    if len(set(names)) != len(names) or "oracle" in names:
        raise ValueError(
            f"Each strategy needs its own name (the table's rows), other than "
            f"'oracle'; received names {names}."
        )
    fit_verbose = 1 if verbose == 1 else 0
    run = functools.partial(train_and_evaluate, train, validation, test, **kwargs)
    runs, rows = [], []
    for seed in seeds:
        for name, strategy in zip(names, strategies):
            result = run(strategy, seed=seed, verbose=fit_verbose)
            scores = subset_scores(result["subsets"], modalities)
            runs.append({"strategy": name, "seed": seed, **result})
            rows.append({"strategy": name, "seed": seed, **scores})
            if verbose:
                extra = "".join(
                    f", {key} {value:.4f}"
                    for key, value in result["test_scores"].items()
                )
                if result["best_epoch"] is not None:
                    extra += f", best epoch {result['best_epoch']}"
                print(
                    f"[{name} seed {seed}] average {scores['average']:.4f}{extra} "
                    f"({result['fit_seconds']:.0f} s)",
                    flush=True,
                )
        if oracle:
            scores = {}
            for subset in all_subsets(modalities):
                result = run(seed=seed, visible=list(subset), verbose=0)
                scores.update(
                    subset_scores(result["subsets"], modalities, summary=False)
                )
                runs.append(
                    {"strategy": "oracle", "seed": seed, "subset": subset, **result}
                )
            scores["average"] = float(np.mean(list(scores.values())))
            rows.append({"strategy": "oracle", "seed": seed, **scores})
            if verbose:
                print(
                    f"[oracle seed {seed}] average {scores['average']:.4f}", flush=True
                )
    raw = pd.DataFrame(rows)
    grouped = raw.groupby("strategy", sort=False)[list(raw.columns[2:])]
    mean, std = grouped.mean(), grouped.std(ddof=0)
    table = mean.map(lambda v: f"{v:.4f}") + " +- " + std.map(lambda v: f"{v:.4f}")
    table.attrs["mean"], table.attrs["std"], table.attrs["raw"] = mean, std, raw
    return table, runs


def strategy_name(strategy):
    """The row label of a strategy: its name, or the name in its config."""
    if isinstance(strategy, str):
        return strategy
    if isinstance(strategy, dict):
        return str(strategy.get("name", strategy))
    return getattr(strategy, "name", str(strategy))
