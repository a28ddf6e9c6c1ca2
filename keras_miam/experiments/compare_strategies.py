"""The paper's comparison: several strategies (and oracles), several seeds."""

import io
import json
import re
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from keras_miam import strategies as strategies_lib
from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation.selections import all_subsets
from keras_miam.evaluation.selections import subset_label
from keras_miam.experiments.results import jsonable
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
    cache_dir=None,
    cached_only=False,
    cache_key=None,
    **kwargs,
):
    """Trains every strategy (and optionally the per-subset oracle) per seed.

    Args:
        train, validation, test: `(x, y)` tuples, x a dict of arrays, or
            streamed data (see `train_and_evaluate`).
        strategies: names (or configs, or instances) of the strategies to
            compare, each row labelled by its name; or a dict
            `{label: strategy}` to label them yourself (e.g. two MIAM
            configurations: `{"miam": "miam", "miam_lambda3":
            {"name": "miam", "lambda_": 3.0}}`).
        seeds: one model per strategy and seed.
        oracle: also train one model per modality subset, on that subset
            only (2^M - 1 models per seed).
        verbose: 0 silent, 1 one line per run plus Keras progress bars,
            2 only the lines.
        cache_dir: optional folder of finished runs. Each run (strategy or
            oracle subset, seed) is written there as one JSON file (its
            test table, history, fit time and settings) as soon as it
            ends, and a run already there is read back instead of trained.
            A long comparison can so be resumed after an interruption, or
            split across processes or machines (e.g. one seed each) that
            share the folder, then assembled by a last call that trains
            nothing. A file written with other settings (epochs, strategy
            config, data shapes, ...) raises a `ValueError`. Runs read
            back have `model=None`.
        cached_only: with `cache_dir`, train nothing: a run missing from
            the folder raises `FileNotFoundError` (to assemble the table of
            runs made elsewhere).
        cache_key: optional JSON-able value (e.g. a dict) saved with every
            run and compared like the other settings. Callables such as a
            `tokenizers` factory cannot be compared, so describe here what
            they depend on (e.g. `{"embed_dim": 48}`): a cached run made
            with another key then raises instead of being reused.
        **kwargs: passed to `train_and_evaluate` (epochs, batch_size, ...).

    Returns:
        `(table, runs)`: `table` a DataFrame with one row per strategy (and
        "oracle"), one column per subset plus "average", holding
        "mean +- std over seeds" strings, with the raw means and stds in
        `table.attrs["mean"]` / `table.attrs["std"]` (DataFrames);
        `runs` the list of per-run dicts (strategy, seed, history, subsets,
        fit_seconds, best_epoch, test_scores).

    Example:

    >>> table, runs = compare_strategies(train, val, test,
    ...                                  strategies=["uniform", "miam"], epochs=5)
    >>> print(table.to_string())
    >>> # Resumable, or split across processes sharing the folder:
    >>> table, runs = compare_strategies(train, val, test, seeds=[0, 1, 2],
    ...                                  epochs=5, cache_dir="runs/",
    ...                                  cache_key={"embed_dim": 64})

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026 (Table 1 protocol).
    """
    shapes = {
        split: data_lib.data_shapes(data, f"`{split}`")
        for split, data in (
            ("train", train),
            ("validation", validation),
            ("test", test),
        )
    }
    modalities = list(shapes["train"][0])
    fit_verbose = 1 if verbose == 1 else 0
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
    data_shapes = {
        split: {k: list(shape) for k, shape in {**x_shapes, "y": y_shape}.items()}
        for split, (x_shapes, y_shape) in shapes.items()
    }
    if cached_only and cache_dir is None:
        raise ValueError("`cached_only=True` needs a `cache_dir` to read runs from.")
    cache = None
    if cache_dir is not None:
        cache = _RunCache(cache_dir, data_shapes, kwargs, cache_key)

    def run(label, seed, **run_kwargs):
        if cache is not None:
            cached = cache.load(label, seed, run_kwargs)
            if cached is not None:
                return cached
            if cached_only:
                raise FileNotFoundError(
                    f"No run '{label}' (seed {seed}) in {cache.folder}; "
                    "`cached_only=True` trains nothing."
                )
        result = train_and_evaluate(
            train, validation, test, seed=seed, **run_kwargs, **kwargs
        )
        if cache is not None:
            cache.save(label, seed, run_kwargs, result)
        return {**result, "cached": False}

    runs, rows = [], []
    for seed in seeds:
        for name, strategy in zip(names, strategies):
            result = run(name, seed, strategy=strategy, verbose=fit_verbose)
            scores = subset_scores(result["subsets"], modalities)
            runs.append({"strategy": name, "seed": seed, **result})
            rows.append({"strategy": name, "seed": seed, **scores})
            if verbose:
                origin = (
                    "read from cache"
                    if result["cached"]
                    else f"{result['fit_seconds']:.0f} s"
                )
                extra = "".join(
                    f", {key} {value:.4f}"
                    for key, value in result.get("test_scores", {}).items()
                )
                if result.get("best_epoch") is not None:
                    extra += f", best epoch {result['best_epoch']}"
                print(
                    f"[{name} seed {seed}] average {scores['average']:.4f}{extra} "
                    f"({origin})",
                    flush=True,
                )
        if oracle:
            scores = {}
            for subset in all_subsets(modalities):
                result = run(
                    f"oracle_{subset_label(subset)}",
                    seed,
                    visible=list(subset),
                    verbose=0,
                )
                scores.update(
                    subset_scores(result["subsets"], modalities, summary=False)
                )
                runs.append(
                    {"strategy": "oracle", "seed": seed, "subset": subset, **result}
                )
            scores["average"] = float(np.mean([v for k, v in scores.items()]))
            rows.append({"strategy": "oracle", "seed": seed, **scores})
            if verbose:
                print(
                    f"[oracle seed {seed}] average {scores['average']:.4f}", flush=True
                )
    raw = pd.DataFrame(rows)
    columns = [c for c in raw.columns if c not in ("strategy", "seed")]
    order = list(dict.fromkeys(raw["strategy"]))
    mean = raw.groupby("strategy", sort=False)[columns].mean().loc[order]
    std = raw.groupby("strategy", sort=False)[columns].std(ddof=0).loc[order]
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


def _setting(value):
    """A setting as JSON: Keras metrics by class and config, callables by name."""
    if isinstance(value, dict):
        return {k: _setting(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_setting(v) for v in value]
    if isinstance(value, keras.metrics.Metric):
        return {"class": type(value).__name__, "config": value.get_config()}
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return value


class _RunCache:
    """One JSON file per finished run; refuses files made with other settings."""

    def __init__(self, folder, data_shapes, kwargs, cache_key=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Callables (tokenizer factories) cannot be compared; everything
        # else that shapes a run is, and `cache_key` stands for them.
        common = {
            "data_shapes": data_shapes,
            **{k: _setting(v) for k, v in kwargs.items() if not callable(v)},
        }
        if cache_key is not None:  # absent otherwise: older files still match
            common["cache_key"] = cache_key
        self.common = jsonable(common)

    def path(self, label, seed):
        safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", label)
        return self.folder / f"{safe}_seed{seed}.json"

    def settings(self, seed, run_kwargs):
        strategy = run_kwargs.get("strategy")
        if strategy is not None:
            strategy = strategies_lib.serialize(strategies_lib.get(strategy))
        return jsonable(
            {
                **self.common,
                "seed": seed,
                "visible": run_kwargs.get("visible"),
                "strategy": strategy,
            }
        )

    def load(self, label, seed, run_kwargs):
        path = self.path(label, seed)
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        expected = self.settings(seed, run_kwargs)
        if record.get("settings") != expected:
            differ = sorted(
                k
                for k in set(expected) | set(record.get("settings", {}))
                if expected.get(k) != record.get("settings", {}).get(k)
            )
            raise ValueError(
                f"The cached run {path} was made with other settings "
                f"(they differ in {differ}). Delete it, or pass another "
                "`cache_dir`."
            )
        frame = pd.read_json(io.StringIO(record["subsets"]), orient="table")
        frame.attrs["metric"] = record["metric"]
        return {
            "model": None,
            "history": record["history"],
            "subsets": frame,
            "fit_seconds": record["fit_seconds"],
            "best_epoch": record.get("best_epoch"),
            "test_scores": record.get("test_scores", {}),
            "cached": True,
        }

    def save(self, label, seed, run_kwargs, result):
        frame = result["subsets"]
        record = {
            "settings": self.settings(seed, run_kwargs),
            "metric": frame.attrs["metric"],
            "subsets": frame.to_json(orient="table"),
            "history": jsonable(result["history"]),
            "fit_seconds": result["fit_seconds"],
            "best_epoch": result.get("best_epoch"),
            "test_scores": jsonable(result.get("test_scores", {})),
        }
        path = self.path(label, seed)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(record))
        partial.replace(path)  # atomic: a killed run leaves no half file
