"""GeoPlant loader throughput, next to the train-step throughput of the model.

Writes a GeoPlant-layout mini release (GLC25 style: metadata, ~40
environmental variables in CSVs, per-survey bioclimatic and Landsat `.pt`
cubes, 64x64 4-band int16 tiff patches, LZW-compressed like the real ones
when `imagecodecs` is installed) to a temporary folder, then measures how
many examples per second `keras_miam.datasets.load_geoplant` delivers with
images:

- 0 workers: batches read in the main thread, one after the other;
- 2 workers: batches read by a pool of 2 threads, and by a pool of 2
  processes, the two ways `keras.utils.PyDataset` parallelises
  `__getitem__` (`workers=2`, `use_multiprocessing=False/True`);
- keras: `Model.predict` of a trivial model over the dataset with
  `workers=2`, i.e. the loader driven by Keras itself;
- cache: the same batches read through the one-time memory-mapped array
  cache of `keras_miam.datasets.prepare_geoplant` (`load_geoplant(
  cache_dir=...)`), in order, shuffled (a training epoch) and driven by
  Keras, next to the time the preparation took, in the same run.

If `keras_miam.models.MultimodalTransformer` is available, it also times a
JAX train step at the GeoPlant-like configuration (40 tabular variables,
climate 228x4 and Landsat 84x6 one token per time step, 64x64x4 image in
8x8 patches, d = 128, 4 blocks, batch 128), so both figures sit side by
side. Results go to `benchmarks/results/loader_throughput.md`.

Usage:

    python benchmarks/loader_throughput.py --num-surveys 2000

`loader_figures()` and `train_step_figures()` return the measurements as
dicts for other scripts.
"""

import argparse
import concurrent.futures
import multiprocessing
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "loader_throughput.md"
ENV_GROUPS = {
    "Climate": [f"Bio{i}" for i in range(1, 20)],
    "Elevation": ["Elevation"],
    "LandCover": [f"LandCover-{i}" for i in range(1, 14)],
    "SoilGrids": [
        f"Soilgrid-{n}" for n in ("bdod", "cec", "clay", "phh2o", "sand", "silt", "soc")
    ],
}
SPECIES = 200


def write_geoplant_sample(root, num_surveys=2000, image_size=64, seed=0):
    """Writes a GLC25-layout training split of `num_surveys` surveys.

    Args:
        root: folder to write into (created if needed).
        num_surveys: int, number of surveys.
        image_size: int, patch height and width.
        seed: int, seeds the values.

    Returns:
        A dict with the root, the survey count and the tiff compression.
    """
    import tifffile
    import torch

    root = Path(root)
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(100_000, 4_000_000), num_surveys, replace=False))
    # Metadata: ~15 present species per survey, long format.
    counts = rng.integers(5, 25, num_surveys)
    survey_col = np.repeat(ids, counts)
    species = rng.zipf(1.3, len(survey_col)) % SPECIES + 1
    meta = pd.DataFrame(
        {
            "lon": rng.uniform(-10, 30, len(survey_col)).round(5),
            "lat": rng.uniform(35, 70, len(survey_col)).round(5),
            "year": 2019,
            "geoUncertaintyInM": 10.0,
            "areaInM2": 100.0,
            "region": "CONTINENTAL",
            "country": "France",
            "speciesId": species.astype("float64"),
            "surveyId": survey_col,
        }
    ).drop_duplicates(["surveyId", "speciesId"])
    (root / "PresenceAbsenceSurveys").mkdir(parents=True, exist_ok=True)
    meta.to_csv(root / "PresenceAbsenceSurveys/PA_metadata_train.csv", index=False)
    # Environmental CSVs, one per variable group.
    for group, columns in ENV_GROUPS.items():
        frame = pd.DataFrame(
            rng.normal(size=(num_surveys, len(columns))), columns=columns
        )
        frame.insert(0, "surveyId", ids)
        path = root / f"EnvironmentalValues/{group}/PA-train-{group.lower()}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
    # Per-survey cubes and patches.
    clim_dir = root / "BioclimTimeSeries/cubes/PA-train"
    land_dir = root / "SateliteTimeSeries-Landsat/cubes/PA-train"
    clim_dir.mkdir(parents=True, exist_ok=True)
    land_dir.mkdir(parents=True, exist_ok=True)
    try:
        import imagecodecs  # noqa: F401

        compression = "lzw"
    except ImportError:
        compression = None
    for survey in ids:
        torch.save(
            torch.from_numpy(rng.normal(size=(4, 19, 12)).astype("float32")),
            clim_dir / f"GLC25-PA-train-bioclimatic_monthly_{survey}_cube.pt",
        )
        torch.save(
            torch.from_numpy(rng.normal(size=(6, 4, 21)).astype("float32")),
            land_dir / f"GLC25-PA-train-landsat-time-series_{survey}_cube.pt",
        )
        text = str(survey)
        path = (
            root / "SatelitePatches/PA-train" / text[-2:] / text[-4:-2] / f"{text}.tiff"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        patch = rng.integers(0, 4000, (image_size, image_size, 4)).astype("int16")
        tifffile.imwrite(path, patch, compression=compression, metadata=None)
    return {
        "root": str(root),
        "num_surveys": num_surveys,
        "compression": compression,
    }


def _fetch(dataset, index):
    x, y = dataset[index]
    return len(y)


_PROCESS_DATASET = None


def _process_init(dataset):
    global _PROCESS_DATASET
    _PROCESS_DATASET = dataset


def _process_fetch(index):
    return _fetch(_PROCESS_DATASET, index)


def loader_figures(root, batch_size=128, workers=2, repeats=1, cache_dir=None):
    """Measures the loader's examples per second with images.

    Args:
        root: a GeoPlant-layout folder (see `write_geoplant_sample`).
        batch_size: int, surveys per batch.
        workers: int, pool size of the parallel measurements.
        repeats: int, full passes timed per setting (the best is kept).
        cache_dir: optional folder for the array cache; when given, the
            cache is prepared there and its reader measured too.

    Returns:
        A list of dicts with "setting", "workers", "examples", "seconds"
        and "examples_per_s", plus one "setup" entry (construction time,
        statistics included).
    """
    import keras

    from keras_miam.datasets import load_geoplant

    start = time.perf_counter()
    dataset = load_geoplant(
        root,
        "train",
        batch_size=batch_size,
        validation_fraction=0.0,
        shuffle=False,
    )
    setup = time.perf_counter() - start
    num_batches = len(dataset)
    num_examples = len(dataset.survey_ids)
    figures = [
        {
            "setting": "setup (tables, statistics)",
            "workers": 0,
            "examples": num_examples,
            "seconds": setup,
            "examples_per_s": float("nan"),
        }
    ]

    def timed(setting, n_workers, run):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            count = run()
            best = min(best, time.perf_counter() - start)
        assert count == num_examples, (count, num_examples)
        figures.append(
            {
                "setting": setting,
                "workers": n_workers,
                "examples": count,
                "seconds": best,
                "examples_per_s": count / best,
            }
        )

    timed(
        "main thread",
        0,
        lambda: sum(_fetch(dataset, i) for i in range(num_batches)),
    )
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        timed(
            "thread pool",
            workers,
            lambda: sum(pool.map(lambda i: _fetch(dataset, i), range(num_batches))),
        )
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_process_init, initargs=(dataset,)) as pool:
        timed(
            "process pool",
            workers,
            lambda: sum(pool.imap(_process_fetch, range(num_batches))),
        )

    keras_dataset = load_geoplant(
        root,
        "train",
        batch_size=batch_size,
        validation_fraction=0.0,
        shuffle=False,
        stats=dataset.stats,
        workers=workers,
    )
    inputs = {k: keras.Input(shape=v, name=k) for k, v in dataset.input_shapes.items()}
    means = [
        keras.ops.mean(
            keras.layers.Flatten()(keras.ops.nan_to_num(v)),
            axis=-1,
            keepdims=True,
        )
        for v in inputs.values()
    ]
    model = keras.Model(inputs, keras.layers.Concatenate()(means))
    model.predict(keras_dataset, verbose=0, steps=1)  # compile outside the timing
    timed(
        f"keras predict (workers={workers})",
        workers,
        lambda: len(model.predict(keras_dataset, verbose=0)),
    )
    if cache_dir is None:
        return figures

    from keras_miam.datasets import prepare_geoplant

    start = time.perf_counter()
    prepare_geoplant(root, cache_dir, verbose=0)
    figures.append(
        {
            "setting": "cache: prepare (one-time)",
            "workers": 0,
            "examples": num_examples,
            "seconds": time.perf_counter() - start,
            "examples_per_s": float("nan"),
        }
    )
    options = dict(batch_size=batch_size, validation_fraction=0.0, cache_dir=cache_dir)
    cached = load_geoplant(shuffle=False, **options)
    # The same batches as the release's reader (a check, not timed).
    for name, values in cached[0][0].items():
        np.testing.assert_array_equal(values, dataset[0][0][name])
    timed(
        "cache: main thread",
        0,
        lambda: sum(_fetch(cached, i) for i in range(num_batches)),
    )
    shuffled = load_geoplant(shuffle=True, **options)
    timed(
        "cache: main thread, shuffled",
        0,
        lambda: sum(_fetch(shuffled, i) for i in range(num_batches)),
    )
    keras_cached = load_geoplant(shuffle=False, workers=workers, **options)
    timed(
        f"cache: keras predict (workers={workers})",
        workers,
        lambda: len(model.predict(keras_cached, verbose=0)),
    )
    return figures


def train_step_figures(batch_size=128, steps=3, image_size=64, num_species=SPECIES):
    """Times the MultimodalTransformer train step at the GeoPlant-like config.

    Args:
        batch_size: int.
        steps: int, timed steps after the compiling one.
        image_size: int, patch height and width (8x8 patches).
        num_species: int, outputs.

    Returns:
        A dict with "backend", "compile_seconds", "step_seconds" and
        "examples_per_s", or None when `keras_miam.models.MultimodalTransformer`
        is not available.
    """
    import keras

    try:
        from keras_miam.models import MultimodalTransformer
        from keras_miam.tokenizers import ImagePatchTokenizer
        from keras_miam.tokenizers import TabularTokenizer
        from keras_miam.tokenizers import TimeSeriesTokenizer
    except ImportError:
        return None
    d = 128
    model = MultimodalTransformer(
        tokenizers={
            "env": TabularTokenizer(d),
            "climate": TimeSeriesTokenizer(d),
            "landsat": TimeSeriesTokenizer(d),
            "image": ImagePatchTokenizer(d, patch_size=8),
        },
        num_outputs=num_species,
        num_layers=4,
        strategy="miam",
        seed=0,
    )
    model.compile()
    rng = np.random.default_rng(0)
    n = batch_size * (steps + 1)
    x = {
        "env": rng.normal(size=(n, 40)).astype("float32"),
        "climate": rng.normal(size=(n, 228, 4)).astype("float32"),
        "landsat": rng.normal(size=(n, 84, 6)).astype("float32"),
        "image": rng.normal(size=(n, image_size, image_size, 4)).astype("float32"),
    }
    y = (rng.random((n, num_species)) < 0.1).astype("float32")
    first = {k: v[:batch_size] for k, v in x.items()}
    start = time.perf_counter()
    model.train_on_batch(first, y[:batch_size])
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for step in range(1, steps + 1):
        rows = slice(step * batch_size, (step + 1) * batch_size)
        model.train_on_batch({k: v[rows] for k, v in x.items()}, y[rows])
    step_seconds = (time.perf_counter() - start) / steps
    return {
        "backend": keras.backend.backend(),
        "compile_seconds": compile_seconds,
        "step_seconds": step_seconds,
        "examples_per_s": batch_size / step_seconds,
        "tokens": 40 + 228 + 84 + (image_size // 8) ** 2,
    }


def cache_ratios(loader, workers):
    """Cache reader / release reader examples per second, from one run."""
    rates = {f["setting"]: f["examples_per_s"] for f in loader}
    seconds = {f["setting"]: f["seconds"] for f in loader}
    if "cache: main thread" not in rates:
        return None
    keras_row = f"keras predict (workers={workers})"
    return {
        "main": rates["cache: main thread"] / rates["main thread"],
        "shuffled": rates["cache: main thread, shuffled"] / rates["main thread"],
        "keras": rates[f"cache: {keras_row}"] / rates[keras_row],
        "prepare_passes": seconds["cache: prepare (one-time)"] / seconds["main thread"],
    }


def _rate(value):
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _markdown(sample, loader, train, args, load):
    lines = [
        "# GeoPlant loader throughput",
        "",
        "Written by `benchmarks/loader_throughput.py` "
        f"(`--num-surveys {args.num_surveys} --batch-size {args.batch_size} "
        f"--workers {args.workers} --train-steps {args.train_steps}`).",
        "",
        f"- Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores visible (shared with other jobs: 1-min "
        f"load average {load[0]:.1f} before the loader runs, {load[1]:.1f} "
        f"after the train step), Python {platform.python_version()}, Keras "
        f"backend {os.environ['KERAS_BACKEND']}. Absolute figures depend on "
        "that load; compare rows of one run.",
        f"- Data: GLC25 layout, {sample['num_surveys']} training surveys, "
        "40 environmental variables (4 CSVs), one bioclimatic [4, 19, 12] and "
        "one Landsat [6, 4, 21] `.pt` cube and one 64x64x4 int16 tiff "
        f"(compression: {sample['compression'] or 'none'}) per survey, read "
        "lazily per batch; every modality normalised.",
        "",
        "| setting | workers | examples | seconds | examples/s |",
        "|---|---|---|---|---|",
    ]
    for f in loader:
        rate = "" if np.isnan(f["examples_per_s"]) else _rate(f["examples_per_s"])
        lines.append(
            f"| {f['setting']} | {f['workers']} | {f['examples']} | "
            f"{f['seconds']:.2f} | {rate} |"
        )
    ratios = cache_ratios(loader, args.workers)
    if ratios:
        lines += [
            "",
            f"Reading through the cache: {ratios['main']:.0f}x the release reader "
            f"in the main thread ({ratios['shuffled']:.0f}x shuffled, as in "
            f"training), {ratios['keras']:.0f}x under Keras' predict. Preparing "
            f"the cache took {ratios['prepare_passes']:.1f}x the time of one "
            "main-thread pass of the release reader.",
        ]
    lines.append("")
    if train is None:
        lines.append(
            "Train step: `keras_miam.models.MultimodalTransformer` not available "
            "(or `--train-steps 0`); not measured."
        )
    elif "error" in train:
        lines.append(f"Train step: failed with `{train['error']}`; not measured.")
    else:
        lines += [
            "## Train step, for comparison",
            "",
            f"`MultimodalTransformer` on {train['backend']}, GeoPlant-like config: "
            "env 40 variables, climate 228x4 and Landsat 84x6 (one token per "
            "time step), 64x64x4 image in 8x8 patches, "
            f"{train['tokens']} tokens, d = 128, 4 blocks, MIAM masking, batch "
            f"{args.batch_size}, random inputs, same CPU.",
            "",
            "| first step (compile) s | step s | examples/s |",
            "|---|---|---|",
            f"| {train['compile_seconds']:.1f} | {train['step_seconds']:.2f} | "
            f"{_rate(train['examples_per_s'])} |",
        ]
        best = max(
            f["examples_per_s"] for f in loader if not np.isnan(f["examples_per_s"])
        )
        lines += [
            "",
            f"The loader's best setting delivers {best / train['examples_per_s']:.1f}x "
            "the examples the train step consumes on this machine.",
        ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-surveys", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--train-steps",
        type=int,
        default=3,
        help="0 skips the train-step measurement",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="geoplant_bench_") as tmp:
        start = time.perf_counter()
        sample = write_geoplant_sample(Path(tmp) / "release", args.num_surveys)
        print(
            f"wrote {args.num_surveys} surveys in "
            f"{time.perf_counter() - start:.1f} s "
            f"(tiff compression: {sample['compression']})"
        )
        load = [os.getloadavg()[0]]
        loader = loader_figures(
            Path(tmp) / "release",
            args.batch_size,
            args.workers,
            args.repeats,
            cache_dir=Path(tmp) / "cache",
        )
    for f in loader:
        print(
            f"{f['setting']:40s} workers={f['workers']} "
            f"{f['examples']} examples {f['seconds']:.2f} s"
            + (
                ""
                if np.isnan(f["examples_per_s"])
                else f"  {_rate(f['examples_per_s'])} examples/s"
            )
        )
    ratios = cache_ratios(loader, args.workers)
    if ratios:
        print(
            f"cache / release reader: {ratios['main']:.1f}x main thread, "
            f"{ratios['shuffled']:.1f}x shuffled, {ratios['keras']:.1f}x keras "
            f"predict; preparing took {ratios['prepare_passes']:.1f} reader passes"
        )
    train = None
    if args.train_steps:
        try:
            train = train_step_figures(args.batch_size, args.train_steps)
        except Exception as error:  # The model is developed in parallel.
            train = {"error": f"{type(error).__name__}: {error}"}
    if train is not None and "error" in train:
        print(f"train step failed: {train['error']}")
    elif train is not None:
        print(
            f"train step ({train['backend']}): compile "
            f"{train['compile_seconds']:.1f} s, {train['step_seconds']:.2f} "
            f"s/step, {_rate(train['examples_per_s'])} examples/s"
        )
    load.append(os.getloadavg()[0])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(_markdown(sample, loader, train, args, load))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
