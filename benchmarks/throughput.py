"""Train-step throughput of MultimodalTransformer per backend, against plain PyTorch.

A GeoPlant-like configuration (`common.CONFIG`): 40 tabular variables
(40 tokens), a 4-variable monthly climate series of 228 steps cut into yearly
segments (`patch_len=12`, 19 tokens), a 6-band quarterly Landsat series of 84
steps cut into years (`patch_len=4`, 21 tokens) and 64x64x4 image patches in
8x8 patches (64 tokens): 144 tokens, d = 128, 4 pre-LN blocks, 4 heads, FFN
256, dropout 0.1, 1783 outputs, batch 128, MIAM masking, AdamW, some missing
values in every batch.

Implementations, each in its own worker process (KERAS_BACKEND set):
`tensorflow` (`jit_compile=True`, XLA), `tensorflow-graph` (`jit_compile=
"auto"`, Keras' default, which on a CPU-only machine is a `tf.function` graph
without XLA), `jax` (`jit_compile=True`, XLA), `torch` (eager, Keras'
default; `torch-compile` for `jit_compile=True`, i.e. `torch.compile`), and the
reference: the same architecture in plain PyTorch with an eager loop
(`benchmarks/reference_torch.py`).

Timing: every worker builds, compiles and runs `--warmup` steps first; then the
workers take turns, `--rounds` times, each timing `--steps` consecutive
train steps (`train_on_batch`, synchronised by reading the loss), so load
from other processes hits all of them alike. Reported: the median step time
over all timed steps, as examples/s, and the speed-up over plain PyTorch as
the median of the per-round ratios. Writes benchmarks/results/throughput.md.

Targets: the fastest keras_miam implementation >= 1.3x the plain PyTorch
loop's throughput; the keras_miam torch backend's step time within 1.25x of
plain PyTorch's.

    python benchmarks/throughput.py --rounds 3 --steps 3
    python benchmarks/throughput.py --backends jax torch --rounds 5 --steps 5
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import common
import numpy as np

FASTEST_TARGET = 1.3  # fastest keras_miam throughput / plain PyTorch throughput
TORCH_TARGET = 1.25  # keras_miam torch step time / plain PyTorch step time
# implementation: (KERAS_BACKEND, jit_compile, extra environment)
IMPLEMENTATIONS = {
    "tensorflow": ("tensorflow", True, {}),
    "tensorflow-graph": ("tensorflow", "auto", {}),
    "jax": ("jax", True, {}),
    "jax-ynn-dot": ("jax", True, {"XLA_FLAGS": common.YNN_DOT}),
    "jax-ynn": ("jax", True, {"XLA_FLAGS": common.YNN_ALL}),
    "jax-onednn": ("jax", True, {"XLA_FLAGS": common.ONEDNN}),
    "torch": ("torch", "auto", {}),
    "torch-compile": ("torch", True, {}),
}
REFERENCE = "plain-pytorch"


def build_model(jit_compile):
    import keras_miam as km

    c = common.CONFIG
    d = c["embed_dim"]
    model = km.models.MultimodalTransformer(
        tokenizers={
            "env": km.tokenizers.TabularTokenizer(
                d, num_frequencies=c["num_frequencies"]
            ),
            "climate": km.tokenizers.TimeSeriesTokenizer(
                d, patch_len=c["climate_patch_len"]
            ),
            "landsat": km.tokenizers.TimeSeriesTokenizer(
                d, patch_len=c["landsat_patch_len"]
            ),
            "image": km.tokenizers.ImagePatchTokenizer(
                d, patch_size=c["image_patch_size"]
            ),
        },
        num_outputs=c["num_outputs"],
        strategy="miam",
        num_layers=c["num_layers"],
        num_heads=c["num_heads"],
        intermediate_dim=c["intermediate_dim"],
        dropout=c["dropout"],
        seed=0,
    )
    # Default AdamW(1e-3, weight_decay=0.01) and BCE from logits; no metric,
    # as the reference loop computes none.
    model.compile(metrics=[], jit_compile=jit_compile)
    return model


def make_keras_step(jit_compile, batch_size):
    model = build_model(jit_compile)
    batches = common.make_batches(4, batch_size)

    def step(i):
        x, y = batches[i % len(batches)]
        return float(model.train_on_batch(x, y))  # numpy out: synchronised

    def info():
        return {
            "params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            "mode": f"jit_compile={model.jit_compile}"
            + (f", `{os.environ['XLA_FLAGS']}`" if os.environ.get("XLA_FLAGS") else ""),
        }

    return step, info


class Worker:
    """One implementation in a subprocess that times steps on demand."""

    def __init__(self, name, args):
        self.name = name
        self.log = tempfile.TemporaryFile(mode="w+")
        flags = [
            "--serve",
            "--warmup",
            str(args.warmup),
            "--batch-size",
            str(args.batch_size),
            "--dropout",
            str(args.dropout),
        ]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        if name == REFERENCE:
            command = [
                sys.executable,
                str(Path(__file__).with_name("reference_torch.py")),
                *flags,
            ]
        else:
            backend, _, extra_env = IMPLEMENTATIONS[name]
            env.update(KERAS_BACKEND=backend, **extra_env)
            command = [sys.executable, __file__, "--worker", name, *flags]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        self.info = json.loads(self._read("READY"))
        print(
            f"  {name}: ready, first step {self.info['first_step_s']:.1f} s "
            f"({self.info['mode']})",
            flush=True,
        )

    def _read(self, prefix):
        for line in self.process.stdout:
            if line.startswith(prefix + " "):
                return line[len(prefix) + 1 :]
        self.log.seek(0)
        raise RuntimeError(f"worker {self.name} failed:\n{self.log.read()[-4000:]}")

    def run(self, steps):
        self.process.stdin.write(f"RUN {steps}\n")
        self.process.stdin.flush()
        return json.loads(self._read("TIMES"))

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write("QUIT\n")
            self.process.stdin.close()
            self.process.wait(timeout=120)
        self.log.close()


def measure(names, args):
    workers = {}
    try:
        for name in [REFERENCE, *names]:  # built one after the other
            workers[name] = Worker(name, args)
        times = {name: [] for name in workers}
        for round_index in range(args.rounds):
            for name, worker in workers.items():
                times[name].append(worker.run(args.steps))
            summary = ", ".join(
                f"{n} {1e3 * np.median(t[-1]):.0f} ms" for n, t in times.items()
            )
            print(f"  round {round_index + 1}/{args.rounds}: {summary}", flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    return {name: (workers[name].info, times[name]) for name in workers}


def report(results, args):
    c = common.CONFIG
    ref_info, ref_rounds = results[REFERENCE]
    rows, speedups = [], {}
    for name, (info, rounds) in results.items():
        median = float(np.median(np.concatenate(rounds)))
        per_round = [np.median(r) / np.median(t) for r, t in zip(ref_rounds, rounds)]
        speedups[name] = float(np.median(per_round))
        label = "plain PyTorch" if name == REFERENCE else f"keras_miam, {name}"
        rows.append(
            f"| {label} | {info['mode']} | {1e3 * median:.0f} | "
            f"{args.batch_size / median:.1f} | {speedups[name]:.2f}x | "
            f"{info['first_step_s']:.0f} | {info['params']:,} |"
        )
    lines = [
        common.machine_line(),
        f"CPU cores this run may use: {len(os.sched_getaffinity(0))} "
        "(every worker shares them; pin with `taskset`). Load average before: "
        f"{args.load_before:.1f}, after: {os.getloadavg()[0]:.1f}.",
        "",
        f"Model: MultimodalTransformer, GeoPlant-like: {c['num_features']} tabular "
        f"variables ({c['num_features']} tokens), climate {c['climate_shape']} with "
        f"patch_len {c['climate_patch_len']} (19 tokens), Landsat {c['landsat_shape']} "
        f"with patch_len {c['landsat_patch_len']} (21 tokens), images "
        f"{c['image_shape']} in {c['image_patch_size']}x{c['image_patch_size']} "
        f"patches (64 tokens); d = {c['embed_dim']}, {c['num_layers']} pre-LN blocks, "
        f"{c['num_heads']} heads, FFN {c['intermediate_dim']}, dropout {args.dropout}, "
        f"{c['num_outputs']} outputs, MIAM masking, AdamW; batch {args.batch_size}. "
        "Reference: the same architecture in plain PyTorch "
        "(`benchmarks/reference_torch.py`: nn.TransformerEncoder with norm_first, "
        "masking with torch ops, AdamW, eager loop).",
        "",
        f"Timing: after {args.warmup} warm-up steps, the implementations take turns "
        f"for {args.rounds} rounds of {args.steps} train steps each "
        "(`train_on_batch`, synchronised every step). Step time: median over all "
        "timed steps; speed-up: median over rounds of the plain PyTorch round "
        "median divided by the implementation's.",
        "",
        "| implementation | mode | step (ms) | examples/s | speed-up vs plain "
        "PyTorch | first step (s) | trainable parameters |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    keras_names = [n for n in results if n != REFERENCE]
    if keras_names:
        fastest = max(keras_names, key=lambda n: speedups[n])
        verdict = "met" if speedups[fastest] >= FASTEST_TARGET else "NOT met"
        lines.append(
            f"- Fastest keras_miam implementation: {fastest}, "
            f"{speedups[fastest]:.2f}x plain PyTorch (target >= {FASTEST_TARGET}x): "
            f"{verdict}."
        )
    if "torch" in results:
        slowdown = 1 / speedups["torch"]
        verdict = "met" if slowdown <= TORCH_TARGET else "NOT met"
        lines.append(
            f"- keras_miam torch backend: step time {slowdown:.2f}x plain "
            f"PyTorch's (target <= {TORCH_TARGET}x): {verdict}."
        )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["tensorflow", "tensorflow-graph", "jax", "torch"],
        choices=sorted(IMPLEMENTATIONS),
        help="keras_miam implementations to measure (plain PyTorch always runs)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--dropout",
        type=float,
        default=common.CONFIG["dropout"],
        help="dropout rate of every implementation's transformer blocks",
    )
    parser.add_argument(
        "--name",
        default="throughput",
        help="results file: benchmarks/results/NAME.md",
    )
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="print only; do not write benchmarks/results/throughput.md",
    )
    parser.add_argument(
        "--worker", choices=sorted(IMPLEMENTATIONS), help=argparse.SUPPRESS
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.rounds, args.steps, args.warmup) < 1:
        parser.error("--rounds, --steps and --warmup must be >= 1")
    if args.worker:
        _, jit_compile, _ = IMPLEMENTATIONS[args.worker]
        common.CONFIG["dropout"] = args.dropout
        step, info = make_keras_step(jit_compile, args.batch_size)
        return common.serve(step, info, args.warmup)

    print(
        f"Throughput: batch {args.batch_size}, dropout {args.dropout}; "
        f"{args.rounds} rounds of "
        f"{args.steps} steps after {args.warmup} warm-up steps",
        flush=True,
    )
    args.load_before = os.getloadavg()[0]
    lines = report(measure(args.backends, args), args)
    print("\n".join(lines))
    if not args.no_write:
        common.write_markdown(
            args.name, "MultimodalTransformer train-step throughput", lines
        )


if __name__ == "__main__":
    main()
