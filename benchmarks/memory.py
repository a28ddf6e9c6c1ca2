"""Peak memory of a train step as tokens and batch grow (JAX, XLA buffer assignment).

Two models, each trained by one jitted step (forward, backward, AdamW update)
written with the public stateless API (`model.stateless_call`,
`optimizer.stateless_apply`), compiled with `jax.jit(...).lower(...).compile()`:

- masking path: three modalities of precomputed tokens (B, T/3, D) ->
  `MIAMMasking(strategy="miam")` -> mean pooling -> Dense(20): attention is
  excluded (and the same head on concatenated tokens, without masking, is
  measured too, so the masking's own share is the difference);
- full model: `MultimodalTransformer` (three `TimeSeriesTokenizer`s with one
  token per time step, 2 pre-LN blocks, 4 heads).

XLA's `memory_analysis()` of the compiled step gives, exactly and without
running it, the bytes of its arguments (weights, optimizer state, batch),
outputs, and temporaries (activations, gradients, workspace). The step's
peak is at most arguments + outputs + temporaries - aliased; we report that
sum and the temporaries alone (what grows with the batch). The script fits
peak = a + b * T (and + c * T^2 for the full model) and reports R^2.

    python benchmarks/memory.py            # writes benchmarks/results/memory.md
    python benchmarks/memory.py --quick    # smaller grid
"""

import argparse
import sys

import common
import numpy as np

D = 64
MODALITIES = ("env", "climate", "image")
FEATURES = 4
TOKENS = (48, 96, 192, 384, 768)  # T, split evenly over the 3 modalities
BATCHES = (16, 32, 64, 128)
TOKEN_SWEEP_BATCH = 32
BATCH_SWEEP_TOKENS = 192
QUICK_TOKENS = (48, 96, 192, 384)
QUICK_BATCHES = (16, 32, 64)


def masking_model(tokens, masked=True):
    import keras

    import keras_miam as km

    inputs = {m: keras.Input((tokens // 3, D), name=m) for m in MODALITIES}
    if masked:
        x, _ = km.MIAMMasking(list(MODALITIES), strategy="miam", seed=0)(inputs)
    else:  # the baseline: the same head on the concatenated tokens
        x = keras.layers.Concatenate(axis=1)([inputs[m] for m in MODALITIES])
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(20)(x))


def full_model(tokens):
    import keras_miam as km

    model = km.models.MultimodalTransformer(
        {m: km.tokenizers.TimeSeriesTokenizer(D) for m in MODALITIES},
        num_outputs=20,
        num_layers=2,
        num_heads=4,
        seed=0,
    )
    model.build({m: (None, tokens // 3, FEATURES) for m in MODALITIES})
    return model


def input_shapes(kind, tokens, batch):
    last = FEATURES if kind == "full" else D
    return {m: (batch, tokens // 3, last) for m in MODALITIES}


def step_memory(kind, tokens, batch):
    """memory_analysis() of one compiled train step, in bytes."""
    import jax
    import keras
    from keras import ops

    if kind == "full":
        model = full_model(tokens)
    else:
        model = masking_model(tokens, masked=kind == "masking")
    optimizer = keras.optimizers.AdamW(1e-3, weight_decay=0.01)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    def compute_loss(trainable, non_trainable, x, y):
        logits, non_trainable = model.stateless_call(
            trainable, non_trainable, x, training=True
        )
        return loss_fn(y, logits), non_trainable

    grad_fn = jax.value_and_grad(compute_loss, has_aux=True)

    def train_step(trainable, non_trainable, opt_vars, x, y):
        (loss, non_trainable), grads = grad_fn(trainable, non_trainable, x, y)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return loss, trainable, non_trainable, opt_vars

    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )
    x = {
        m: jax.ShapeDtypeStruct(s, "float32")
        for m, s in input_shapes(kind, tokens, batch).items()
    }
    y = jax.ShapeDtypeStruct((batch, 20), "float32")
    compiled = (
        jax.jit(train_step, donate_argnums=(0, 1, 2)).lower(*state, x, y).compile()
    )
    analysis = compiled.memory_analysis()
    weights = sum(int(np.prod(v.shape)) * 4 for v in model.trainable_variables)
    result = {
        "kind": kind,
        "tokens": tokens,
        "batch": batch,
        "arguments": int(analysis.argument_size_in_bytes),
        "outputs": int(analysis.output_size_in_bytes),
        "temporaries": int(analysis.temp_size_in_bytes),
        "aliased": int(analysis.alias_size_in_bytes),
        "parameters_bytes": weights,
        "token_tensor_bytes": batch * tokens * D * 4,
    }
    result["peak"] = (
        result["arguments"]
        + result["outputs"]
        + result["temporaries"]
        - result["aliased"]
    )
    del ops
    return result


def worker(quick):
    tokens = QUICK_TOKENS if quick else TOKENS
    batches = QUICK_BATCHES if quick else BATCHES
    rows = []
    for t in tokens:
        rows.append(step_memory("baseline", t, TOKEN_SWEEP_BATCH))
    for kind in ("masking", "full"):
        for t in tokens:
            rows.append(step_memory(kind, t, TOKEN_SWEEP_BATCH))
            print(rows[-1], file=sys.stderr, flush=True)
        for b in batches:
            if b != TOKEN_SWEEP_BATCH or BATCH_SWEEP_TOKENS not in tokens:
                rows.append(step_memory(kind, BATCH_SWEEP_TOKENS, b))
                print(rows[-1], file=sys.stderr, flush=True)
    common.emit({"rows": rows})


def fit(x, y, degree):
    """Least-squares polynomial fit: (coefficients, highest first; R^2)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    coef = np.polyfit(x, y, degree)
    residual = y - np.polyval(coef, x)
    r2 = 1.0 - residual.var() / y.var()
    return coef, float(r2)


def mib(b):
    return b / 2**20


def report(rows, quick):
    lines = [
        common.machine_line(),
        "",
        "Backend: JAX (XLA CPU), float32. One jitted train step (forward, backward, "
        "AdamW update), compiled and measured by XLA's buffer assignment "
        "(`jax.jit(step).lower(...).compile().memory_analysis()`): exact for the "
        "compiled program, nothing is run. `peak` = arguments + outputs + "
        "temporaries - aliased (donated weights and optimizer state), an upper "
        f"bound of the step's live memory. D = {D}, three modalities with T/3 "
        "tokens each.",
        "",
        '- masking path: precomputed tokens -> `MIAMMasking("miam")` -> mean '
        "pooling -> Dense(20) (no attention);",
        "- full model: `MultimodalTransformer` (`TimeSeriesTokenizer` per "
        f"modality, one token per time step of {FEATURES} features, 2 pre-LN "
        "blocks, 4 heads, FFN 128).",
        "",
    ]
    for kind, title in (("masking", "Masking path"), ("full", "Full model")):
        by_tokens = [
            r for r in rows if r["kind"] == kind and r["batch"] == TOKEN_SWEEP_BATCH
        ]
        by_batch = [
            r for r in rows if r["kind"] == kind and r["tokens"] == BATCH_SWEEP_TOKENS
        ]
        by_tokens.sort(key=lambda r: r["tokens"])
        by_batch.sort(key=lambda r: r["batch"])
        lines += [
            f"## {title}",
            "",
            f"Tokens T at batch {TOKEN_SWEEP_BATCH}:",
            "",
            "| T | peak (MiB) | temporaries (MiB) | arguments (MiB) | token tensor B*T*D*4 (MiB) |",
            "|---|---|---|---|---|",
        ]
        for r in by_tokens:
            lines.append(
                f"| {r['tokens']} | {mib(r['peak']):.2f} | {mib(r['temporaries']):.2f} | "
                f"{mib(r['arguments']):.2f} | {mib(r['token_tensor_bytes']):.2f} |"
            )
        t = [r["tokens"] for r in by_tokens]
        peak = [r["peak"] for r in by_tokens]
        (slope, intercept), r2 = fit(t, peak, 1)
        per_token = slope / (TOKEN_SWEEP_BATCH * D * 4)
        lines += [
            "",
            f"Linear fit peak = a + b T: b = {slope / 1024:.1f} KiB per token "
            f"(= {per_token:.1f} float32 buffers of size B x D per token), "
            f"a = {mib(intercept):.2f} MiB, R^2 = {r2:.6f}.",
        ]
        if kind == "masking":
            base = {
                r["tokens"]: r["peak"]
                for r in rows
                if r["kind"] == "baseline" and r["batch"] == TOKEN_SWEEP_BATCH
            }
            extra = [p - base[k] for k, p in zip(t, peak)]
            (eslope, _), er2 = fit(t, extra, 1)
            lines.append(
                "Against the same head without `MIAMMasking` (tokens concatenated): "
                + ", ".join(f"T = {k}: +{mib(e):.2f} MiB" for k, e in zip(t, extra))
                + f"; the masking's own memory grows by {eslope / 1024:.1f} KiB per "
                f"token (= {eslope / (TOKEN_SWEEP_BATCH * D * 4):.2f} B x D buffers), "
                f"R^2 = {er2:.6f}."
            )
        if kind == "full":
            (c2, c1, c0), r2q = fit(t, peak, 2)
            lines.append(
                f"Quadratic fit peak = a + b T + c T^2: c = {c2:.1f} bytes per T^2 "
                f"(attention scores, B x heads x T^2 floats), R^2 = {r2q:.6f}; the "
                f"quadratic term is {100 * c2 * t[-1] ** 2 / peak[-1]:.0f}% of the peak at T = {t[-1]}."
            )
        lines += [
            "",
            f"Batch B at T = {BATCH_SWEEP_TOKENS}:",
            "",
            "| B | peak (MiB) | temporaries (MiB) |",
            "|---|---|---|",
        ]
        for r in by_batch:
            lines.append(
                f"| {r['batch']} | {mib(r['peak']):.2f} | {mib(r['temporaries']):.2f} |"
            )
        (bslope, bintercept), br2 = fit(
            [r["batch"] for r in by_batch], [r["peak"] for r in by_batch], 1
        )
        lines += [
            "",
            f"Linear fit peak = a + b B: b = {bslope / 1024:.1f} KiB per example, "
            f"intercept a = {mib(bintercept):.2f} MiB, R^2 = {br2:.6f}.",
            "",
        ]
    if quick:
        lines.append("(Quick grid.)")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    extra = ["--quick"] if args.quick else []
    if args.worker:
        return worker(args.quick)
    results = common.run_per_backend(__file__, ["jax"], extra)
    lines = report(results["jax"]["rows"], args.quick)
    common.write_markdown("memory", "Train-step memory vs tokens and batch", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
