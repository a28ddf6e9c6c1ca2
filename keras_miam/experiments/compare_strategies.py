"""The paper's comparison: several strategies (and oracles), several seeds."""

import itertools

import numpy as np
import pandas as pd

from keras_miam.experiments.results import subset_scores
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
        train, validation, test: `(x, y)` tuples, x a dict of arrays.
        strategies: names (or configs) of the strategies to compare.
        seeds: one model per strategy and seed.
        oracle: also train one model per modality subset, on that subset
            only (2^M - 1 models per seed).
        verbose: 0 silent, 1 one line per run plus Keras progress bars,
            2 only the lines.
        **kwargs: passed to `train_and_evaluate` (epochs, batch_size, ...).

    Returns:
        `(table, runs)`: `table` a DataFrame with one row per strategy (and
        "oracle"), one column per subset plus "average", holding
        "mean +- std over seeds" strings, with the raw means and stds in
        `table.attrs["mean"]` / `table.attrs["std"]` (DataFrames);
        `runs` the list of per-run dicts (strategy, seed, history, subsets,
        fit_seconds).

    Example:

    >>> table, runs = compare_strategies(train, val, test,
    ...                                  strategies=["uniform", "miam"], epochs=5)
    >>> print(table.to_string())

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Table 1 protocol).
    """
    modalities = list(train[0])
    fit_verbose = 1 if verbose == 1 else 0
    runs, rows = [], []
    for seed in seeds:
        for strategy in strategies:
            name = strategy if isinstance(strategy, str) else getattr(strategy, "name", str(strategy))
            result = train_and_evaluate(
                train, validation, test, strategy=strategy, seed=seed,
                verbose=fit_verbose, **kwargs,
            )
            scores = subset_scores(result["subsets"], modalities)
            runs.append({"strategy": name, "seed": seed, **result})
            rows.append({"strategy": name, "seed": seed, **scores})
            if verbose:
                print(f"[{name} seed {seed}] average {scores['average']:.4f} "
                      f"({result['fit_seconds']:.0f} s)", flush=True)
        if oracle:
            scores = {}
            for size in range(1, len(modalities) + 1):
                for subset in itertools.combinations(modalities, size):
                    result = train_and_evaluate(
                        train, validation, test, visible=list(subset), seed=seed,
                        verbose=0, **kwargs,
                    )
                    scores.update(subset_scores(result["subsets"], modalities, summary=False))
                    runs.append({"strategy": "oracle", "seed": seed, "subset": subset, **result})
            scores["average"] = float(np.mean([v for k, v in scores.items()]))
            rows.append({"strategy": "oracle", "seed": seed, **scores})
            if verbose:
                print(f"[oracle seed {seed}] average {scores['average']:.4f}", flush=True)
    raw = pd.DataFrame(rows)
    columns = [c for c in raw.columns if c not in ("strategy", "seed")]
    order = list(dict.fromkeys(raw["strategy"]))
    mean = raw.groupby("strategy", sort=False)[columns].mean().loc[order]
    std = raw.groupby("strategy", sort=False)[columns].std(ddof=0).loc[order]
    table = mean.map(lambda v: f"{v:.4f}") + " +- " + std.map(lambda v: f"{v:.4f}")
    table.attrs["mean"], table.attrs["std"], table.attrs["raw"] = mean, std, raw
    return table, runs
