"""Where the backends' CPU step time goes: the transformer's parts, per backend.

`throughput.py` times the whole GeoPlant-like train step. This script times
its building blocks alone, on the same token tensor (batch 64, 144 tokens,
d = 128), as small Keras models compiled the way Keras compiles them on a
CPU (TensorFlow: `tf.function` graph; JAX: XLA; torch: eager):

- `dense`: 8 feed-forward pairs Dense(256, relu) -> Dense(128) (matmuls);
- `dense-flat`: the same layers on the same numbers laid out as a 2-D
  (batch x tokens, d) tensor, so the weight gradient is a plain 2-D matmul
  instead of a contraction over two axes (batch and tokens);
- `attention`: 4 `keras.layers.MultiHeadAttention` layers, 4 heads;
- `layernorm`: 16 `LayerNormalization` layers (element-wise work, reductions);
- `dropout`: 8 `Dropout(0.1)` layers (random numbers; train only);
- `encoder`: 4 pre-LN `keras_hub.layers.TransformerEncoder` blocks, no
  dropout (the model's body).

Each part runs `predict_on_batch` (forward) and `train_on_batch` (forward,
backward and Adam) in its own process per implementation: `tensorflow`,
`tensorflow-xla` (TensorFlow with `jit_compile=True`, i.e. XLA like JAX),
`jax`, `jax-ynn` (JAX with XLA:CPU's YNNPACK fusions for dots, element-wise
ops and reductions, see `common.YNN_ALL`) and `torch`. The processes
take turns, `--repeats` times, so load from other jobs hits all alike; the
median over repeats of each process's median step time is reported, with
each implementation's time relative to TensorFlow's. Writes
benchmarks/results/backend_kernels.md.

    taskset -c 0 python benchmarks/backend_kernels.py --repeats 3
"""

import argparse
import json
import os
import time

import common
import numpy as np

PARTS = ("dense", "dense-flat", "attention", "layernorm", "dropout", "encoder")
IMPLEMENTATIONS = {
    "tensorflow": ("tensorflow", {}),
    "tensorflow-xla": ("tensorflow", {"BENCH_JIT_COMPILE": "1"}),
    "jax": ("jax", {}),
    "jax-ynn": ("jax", {"XLA_FLAGS": common.YNN_ALL}),
    "torch": ("torch", {}),
}
BATCH, TOKENS, DIM = 64, 144, 128


def part_model(part):
    import keras
    import keras_hub

    inputs = keras.Input((DIM,) if part == "dense-flat" else (TOKENS, DIM))
    h = inputs
    if part in ("dense", "dense-flat"):
        for _ in range(8):
            h = keras.layers.Dense(256, activation="relu")(h)
            h = keras.layers.Dense(DIM)(h)
    elif part == "attention":
        for _ in range(4):
            h = keras.layers.MultiHeadAttention(4, DIM // 4)(h, h)
    elif part == "layernorm":
        for _ in range(16):
            h = keras.layers.LayerNormalization()(h)
    elif part == "dropout":
        for _ in range(8):
            h = keras.layers.Dropout(0.1)(h)
    elif part == "encoder":
        for _ in range(4):
            h = keras_hub.layers.TransformerEncoder(
                2 * DIM, 4, dropout=0.0, normalize_first=True
            )(h)
    if part != "dense-flat":
        h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    # jit_compile="auto" is Keras' CPU default; tensorflow-xla forces XLA.
    jit_compile = True if os.environ.get("BENCH_JIT_COMPILE") else "auto"
    model.compile("adam", "mse", jit_compile=jit_compile)
    return model


def worker(steps, parts):
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(BATCH, TOKENS, DIM)).astype("float32")
    targets = rng.normal(size=(BATCH, 1)).astype("float32")
    result = {}
    for part in parts:
        model = part_model(part)
        if part == "dense-flat":  # the same numbers, one row per token
            x = tokens.reshape(BATCH * TOKENS, DIM)
            y = np.repeat(targets, TOKENS, axis=0)
        else:
            x, y = tokens, targets
        calls = {
            "predict": lambda m=model, x=x: m.predict_on_batch(x),
            "train": lambda m=model, x=x, y=y: m.train_on_batch(x, y),
        }
        for mode, call in calls.items():  # (default arguments bind x, y now)
            if part == "dropout" and mode == "predict":
                continue  # Dropout is the identity outside training
            call(), call()  # trace / compile, warm up
            times = []
            for _ in range(steps):
                start = time.perf_counter()
                np.asarray(call())
                times.append(time.perf_counter() - start)
            result[f"{part}/{mode}"] = 1e3 * float(np.median(times))
    common.emit(result)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=3, help="turns per process")
    parser.add_argument("--steps", type=int, default=7, help="timed calls per part")
    parser.add_argument(
        "--implementations",
        nargs="+",
        default=list(IMPLEMENTATIONS),
        choices=list(IMPLEMENTATIONS),
    )
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument(
        "--name",
        default="backend_kernels",
        help="results files: benchmarks/results/NAME.md and NAME.json",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.repeats, args.steps) < 1:
        parser.error("--repeats and --steps must be >= 1")
    if args.worker:
        return worker(args.steps, args.parts)
    if "tensorflow" not in args.implementations:
        parser.error("--implementations must include tensorflow (the reference)")
    load_before = os.getloadavg()[0]
    runs = {name: [] for name in args.implementations}
    for repeat in range(args.repeats):
        for name in args.implementations:
            backend, extra_env = IMPLEMENTATIONS[name]
            worker_args = ["--steps", str(args.steps), "--parts", *args.parts]
            runs[name].append(
                common.run_worker(__file__, backend, worker_args, env=extra_env)
            )
            print(f"  repeat {repeat + 1}/{args.repeats}: {name} done", flush=True)
    keys = list(runs["tensorflow"][0])
    median = {
        name: {k: float(np.median([r[k] for r in rs])) for k in keys}
        for name, rs in runs.items()
    }
    header = " | ".join(f"{n} (ms)" for n in args.implementations)
    lines = [
        common.machine_line(),
        f"CPU cores this run may use: {len(os.sched_getaffinity(0))}. Load average "
        f"before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}.",
        "",
        f"Token tensor: batch {BATCH}, {TOKENS} tokens, d = {DIM}. Median over "
        f"{args.repeats} alternating processes of the median of {args.steps} calls; "
        "in brackets, the time relative to TensorFlow's.",
        "",
        f"| part | call | {header} |",
        "|---|---|" + "---|" * len(args.implementations),
    ]
    for key in keys:
        part, mode = key.split("/")
        cells = [
            f"{median[n][key]:.1f} ({median[n][key] / median['tensorflow'][key]:.2f}x)"
            for n in args.implementations
        ]
        lines.append(f"| {part} | {mode} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    common.write_markdown(
        args.name, "Transformer parts: CPU step time per backend", lines
    )
    (common.RESULTS / f"{args.name}.json").write_text(
        json.dumps({"runs": runs, "median": median}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
