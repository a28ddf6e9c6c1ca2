"""Train-step overhead of MIAMMasking, per backend.

A small transformer (3 modalities, 64 tokens, d = 128, 2 blocks, batch 256)
with `MIAMMasking(strategy="miam")` against the same model with masking off
(the tokens concatenated directly). Each modality has a trainable tokenizer
(a Dense layer from 16 features to d) in both models, as in a real model;
without it the unmasked model would skip the gradient of the first block's
input, which the masked one needs for its mask token, and the ratio would
count that gradient as masking cost (the 2026-11-26 version did). Prints the median step times and their
ratio per backend and writes benchmarks/results/masking_overhead.md.
Target: ratio <= 1.05 on every backend.

    python benchmarks/masking_overhead.py [--backends jax torch] [--steps 20]
"""

import argparse
import os

import common

COUNTS = {"env": 24, "climate": 24, "image": 16}
DIM, BATCH, FEATURES = 128, 256, 16


def build(masked):
    import keras
    import keras_hub

    import keras_miam as km

    inputs = {m: keras.Input((t, FEATURES), name=m) for m, t in COUNTS.items()}
    # A trainable tokenizer per modality, as in every real model: both
    # variants then back-propagate into the first block's input, so the
    # ratio measures the masking and nothing else.
    embedded = {
        m: keras.layers.Dense(DIM, name=f"{m}_tokens")(x) for m, x in inputs.items()
    }
    if masked:
        tokens, keep = km.MIAMMasking(list(COUNTS), strategy="miam", seed=0)(embedded)
    else:
        tokens = keras.layers.Concatenate(axis=1)([embedded[m] for m in COUNTS])
    for _ in range(2):
        tokens = keras_hub.layers.TransformerEncoder(
            intermediate_dim=256, num_heads=8, normalize_first=True
        )(tokens)
    out = keras.layers.Dense(20)(keras.layers.GlobalAveragePooling1D()(tokens))
    model = keras.Model(inputs, out)
    model.compile(
        keras.optimizers.AdamW(1e-3), keras.losses.BinaryCrossentropy(from_logits=True)
    )
    return model


def worker(steps):
    import numpy as np

    rng = np.random.default_rng(0)
    n = BATCH * steps
    x = {
        m: rng.normal(size=(n, t, FEATURES)).astype("float32")
        for m, t in COUNTS.items()
    }
    y = (rng.uniform(size=(n, 20)) < 0.3).astype("float32")
    times = {}
    for masked in (False, True, False, True):  # interleaved against drift
        seconds = common.median_step_seconds(build(masked), x, y, BATCH, steps)
        times.setdefault(masked, []).append(seconds)
    off, on = min(times[False]), min(times[True])
    common.emit({"off_ms": 1e3 * off, "on_ms": 1e3 * on, "ratio": on / off})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=list(common.BACKENDS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.steps)
    print(f"Masking overhead: {COUNTS}, d={DIM}, batch={BATCH}, steps={args.steps}")
    results = common.run_per_backend(
        __file__, args.backends, ["--steps", str(args.steps)]
    )
    lines = [
        common.machine_line(),
        "",
        f"Model: 3 modalities ({sum(COUNTS.values())} tokens), d = {DIM}, 2 pre-LN "
        f"transformer blocks, batch {BATCH}; median train-step time over {args.steps} "
        "steps after warm-up, best of two interleaved builds; a trainable Dense "
        "tokenizer per modality in both. Keras' default jit_compile='auto': "
        "torch eager, TensorFlow a tf.function graph (no XLA on a CPU), JAX XLA. "
        f"CPU cores this run may use: {len(os.sched_getaffinity(0))}.",
        "",
        "| backend | masking off (ms) | MIAMMasking (ms) | ratio | target <= 1.05 |",
        "|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        ok = "yes" if r["ratio"] <= 1.05 else "NO"
        lines.append(
            f"| {backend} | {r['off_ms']:.1f} | {r['on_ms']:.1f} | {r['ratio']:.3f} | {ok} |"
        )
    print("\n".join(lines))
    common.write_markdown("masking_overhead", "MIAMMasking train-step overhead", lines)


if __name__ == "__main__":
    main()
