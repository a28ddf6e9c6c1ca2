"""Cost of subset evaluation and token Shapley values against plain prediction.

Times, on small `MultimodalTransformer`s with M = 4 modalities (tabular
variables, a climate series, a Landsat series, image patches):

- 15 plain `model.predict` passes over N = 10,000 examples;
- `evaluate_subsets` (all 2^M - 1 = 15 subsets, default batching), against
  the target of at most 1.2 x 15 predict passes, and against the loop a user
  would write (`set_visible` + `predict`, once per subset);
- `token_shapley` over 100 tokens (24 variables, 19 climate years, 21
  Landsat years, 36 image patches), locally (one prediction) and globally
  (the AUC of a few examples).

The subset model has 19 tokens so that its 15 x 10,000 forward passes fit a
shared 2-core CPU. The N-example timings are `--repeats` interleaved rounds
(15 plain predict passes, the loop, `evaluate_subsets`), each with the
1-minute load average after it, after warm-ups on slices with the same batch
shapes, so compilation is not counted. Updates this backend's section of
`benchmarks/results/evaluation_cost.md` (the other backends' sections are
kept).

    KERAS_BACKEND=jax python benchmarks/evaluation_cost.py
"""

import argparse
import itertools
import os
import pathlib
import platform
import time

import keras
import numpy as np

import keras_miam as km
from keras_miam.evaluation import evaluate_subsets
from keras_miam.explain import token_shapley

RESULTS = pathlib.Path(__file__).parent / "results" / "evaluation_cost.md"


def build_model(tokens_per_modality, embed_dim=32):
    """A 2-block transformer; tokens of (env, climate, landsat, image)."""
    tokenizers = {
        "env": km.tokenizers.TabularTokenizer(embed_dim, num_frequencies=8),
        "climate": km.tokenizers.TimeSeriesTokenizer(embed_dim, patch_len=12),
        "landsat": km.tokenizers.TimeSeriesTokenizer(embed_dim, patch_len=4),
        "image": km.tokenizers.ImagePatchTokenizer(embed_dim, patch_size=8),
    }
    model = km.models.MultimodalTransformer(
        tokenizers, num_outputs=20, num_layers=2, num_heads=2, seed=0
    )
    model(make_data(tokens_per_modality, 2)[0])  # Build.
    return model


def make_data(tokens_per_modality, n, seed=0):
    env, climate, landsat, image = tokens_per_modality
    side = 8 * int(round(image**0.5))
    rng = np.random.default_rng(seed)
    x = {
        "env": rng.normal(size=(n, env)),
        "climate": rng.normal(size=(n, 12 * climate, 4)),
        "landsat": rng.normal(size=(n, 4 * landsat, 6)),
        "image": rng.normal(size=(n, side, side, 4)),
    }
    x = {name: value.astype("float32") for name, value in x.items()}
    y = (rng.random((n, 20)) < 0.3).astype("float32")
    return x, y


def best_time(fn, repeats, warm_up=None):
    (warm_up or fn)()  # Compilation.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def describe(layer):
    return ", ".join(f"{m} {c}" for m, c in zip(layer.modalities, layer.token_counts))


PREAMBLE = """# Cost of subset evaluation and token Shapley values

`python benchmarks/evaluation_cost.py`, one section per backend (each run
replaces its backend's section). Models: `MultimodalTransformer`, D = 32,
2 blocks, 2 heads, 20 outputs, M = 4 modalities. The machine is a 2-core CPU
shared with other jobs: the load average next to each figure says how
loaded it was; compare figures of the same round.

How `evaluate_subsets` runs (`keras_miam.evaluation.iter_view_predictions`): V
subsets per forward pass, b = batch_size // V examples tiled V times inside
the compiled function (`MIAMMasking.views`), each batch (the last one padded)
through `predict_on_batch`; then the exact AUC (sorting, ties averaged).
"""


def write_section(path, backend, text):
    """Replaces (or appends) this backend's section of the results file."""
    begin, end = f"<!-- {backend}: begin -->", f"<!-- {backend}: end -->"
    block = f"{begin}\n{text}\n{end}"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1]
    elif "<!-- " in old:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    else:  # No section yet (or the old single-backend format).
        new = PREAMBLE + "\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--permutations", type=int, default=64)
    parser.add_argument("--global-examples", type=int, default=32)
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()

    small_shape, large_shape = (8, 4, 3, 4), (24, 19, 21, 36)
    model = build_model(small_shape)
    x, y = make_data(small_shape, args.examples)
    layer = model.masking
    num_subsets = 2**layer.num_modalities - 1
    b = args.batch_size

    def head(size, batches=1):
        """A slice with the batch shapes of the full data, for warm-ups."""
        stop = min(args.examples % size + batches * size, args.examples)
        return {k: v[:stop] for k, v in x.items()}, y[:stop]

    x_head, _ = head(b)
    # evaluate_subsets: 15 views of b // 15 examples per forward pass.
    subsets_head = head(max(1, b // num_subsets), 2)
    print(
        f"backend {keras.backend.backend()}, {layer.num_tokens} tokens "
        f"{dict(zip(layer.modalities, layer.token_counts))}, N = {args.examples}"
    )

    def predict_passes(data, count):
        for _ in range(count):
            model.predict(data, batch_size=b, verbose=0)

    def loop_over_subsets(data):
        for size in range(1, layer.num_modalities + 1):
            for subset in itertools.combinations(layer.modalities, size):
                layer.set_visible(list(subset))
                model.predict(data, batch_size=b, verbose=0)
        layer.reset_visible()

    frames = []
    runs = {
        "predict": lambda: predict_passes(x, num_subsets),
        "loop": lambda: loop_over_subsets(x),
        "subsets": lambda: frames.append(
            evaluate_subsets(model, (x, y), batch_size=b, verbose=0)
        ),
    }
    # Warm-ups (compilation) on slices with the batch shapes of the runs.
    predict_passes(x_head, 1)
    loop_over_subsets(x_head)
    evaluate_subsets(model, subsets_head, batch_size=b, verbose=0)
    # Interleaved rounds, so that a change of load hits every variant.
    times = {name: [] for name in runs}
    loads = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
            loads[name].append(os.getloadavg()[0])
    ratios = np.array(times["subsets"]) / np.array(times["predict"])
    ratio = float(np.median(ratios))
    print(f"{num_subsets} plain predict passes: {times['predict']} s")
    print(f"set_visible + predict loop: {times['loop']} s")
    print(f"evaluate_subsets: {times['subsets']} s")
    print(f"ratio per round: {np.round(ratios, 2).tolist()}, median {ratio:.2f}")

    model = build_model(large_shape)
    layer_large = model.masking
    x, y = make_data(large_shape, max(args.global_examples, 1))
    one = {name: value[:1] for name, value in x.items()}
    local = best_time(
        lambda: token_shapley(
            model,
            one,
            target=(0, 0),
            verbose=0,
            num_permutations=args.permutations,
        ),
        1,
    )
    local_load = os.getloadavg()[0]
    tokens = layer_large.num_tokens
    coalitions = args.permutations * (tokens - 1) + 2
    print(
        f"token_shapley local, {tokens} tokens, {args.permutations} "
        f"permutations (<= {coalitions} coalitions): {local:.2f} s"
    )
    g = args.global_examples
    global_permutations = 4
    global_time = best_time(
        lambda: token_shapley(
            model, (x, y), verbose=0, num_permutations=global_permutations
        ),
        1,
    )
    global_load = os.getloadavg()[0]
    global_coalitions = global_permutations * (tokens - 1) + 2
    print(
        f"token_shapley global (AUC on {g} examples), {global_permutations} "
        f"permutations (<= {global_coalitions} coalitions): {global_time:.2f} s"
    )

    backend = keras.backend.backend()
    rounds = range(1, args.repeats + 1)
    names = {
        "predict": f"{num_subsets} plain `predict` passes",
        "loop": f"`set_visible` + `predict`, once per subset ({num_subsets})",
        "subsets": f"`evaluate_subsets` ({num_subsets} subsets, exact AUC)",
    }
    header = " | ".join(f"round {r}: s (load)" for r in rounds)
    threads = os.environ.get("OMP_NUM_THREADS")
    lines = [
        f"## Backend `{backend}`",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, keras {keras.__version__}, "
        f"{platform.machine()} CPU, {os.cpu_count()} cores shared with other "
        "jobs" + (f", OMP_NUM_THREADS={threads}" if threads else "") + ". "
        f"`KERAS_BACKEND={backend} python benchmarks/evaluation_cost.py`.",
        "",
        f"### All {num_subsets} subsets, N = {args.examples} examples",
        "",
        f"{layer.num_tokens} tokens ({describe(layer)}), batch size {b}; "
        "interleaved rounds after warm-ups (compilation not counted); wall "
        "seconds, with the 1-minute load average at the end of each run.",
        "",
        f"| run | {header} |",
        "|---|" + "---:|" * args.repeats,
    ]
    for key, name in names.items():
        cells = " | ".join(
            f"{t:.2f} ({load:.1f})" for t, load in zip(times[key], loads[key])
        )
        lines.append(f"| {name} | {cells} |")
    cells = " | ".join(f"**{r:.2f}**" for r in ratios)
    lines += [
        f"| `evaluate_subsets` / {num_subsets} predict passes | {cells} |",
        "",
        f"Median ratio: **{ratio:.2f} x** {num_subsets} predict passes "
        "(target: <= 1.2 x).",
        "",
        f"### `token_shapley`, {tokens} tokens ({describe(layer_large)})",
        "",
        "One run after a warm-up run.",
        "",
        "| run | coalitions | seconds (load) |",
        "|---|---:|---:|",
        f"| local (one prediction), {args.permutations} antithetic "
        f"permutations | <= {coalitions} | {local:.2f} ({local_load:.1f}) |",
        f"| global (AUC of {g} examples), {global_permutations} antithetic "
        f"permutations | <= {global_coalitions} | {global_time:.2f} "
        f"({global_load:.1f}) |",
        "",
    ]
    write_section(args.output, backend, "\n".join(lines))
    print(f"wrote {args.output}")
    print(frames[-1].to_string())


if __name__ == "__main__":
    main()
