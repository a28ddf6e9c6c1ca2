"""Pre-train on many unlabelled sites, fine-tune on a small labelled budget.

Ecologists have satellite images, climate series and environmental rasters for
every site, but species surveys for few. This example generates the synthetic
ecology data (env table, Landsat-like series, image patches), pre-trains a
`MultimodalPretrainer` on the unlabelled sites with MIAM masking (its masking
state driven by the per-modality reconstruction scores, through
`ModalityDynamics` without labels), puts a `MultimodalTransformer` on the
pre-trained backbone (shared, not copied), fine-tunes it on the labelled budget, and compares it with the same model trained from scratch on
the budget alone, on every subset of modalities of a test split.

    KERAS_BACKEND=tensorflow python examples/pretraining.py
    python examples/pretraining.py --unlabelled 2000 --pretrain-epochs 2 --quick
"""

import argparse
import json
import time
from pathlib import Path

MODALITIES = ("env", "landsat", "image")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--unlabelled", type=int, default=6000, help="sites")
    parser.add_argument("--budget", type=int, default=400, help="labelled sites")
    parser.add_argument("--test", type=int, default=1500, help="test sites")
    parser.add_argument("--strategy", default="miam", help="pre-training masking")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--finetune-epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="3 fine-tuning epochs (a smoke run)"
    )
    parser.add_argument("--output", default="pretraining_output", help="folder")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    import keras_miam as km

    keras.utils.set_random_seed(args.seed)
    finetune_epochs = 3 if args.quick else args.finetune_epochs
    # Sizes: unlabelled pool, its validation split (reconstruction scores),
    # labelled train, labelled validation (best epoch), test.
    sizes = [args.unlabelled, 400, args.budget, args.budget // 2, args.test]
    x, y, _ = km.datasets.make_synthetic_ecology(
        sum(sizes), modalities=MODALITIES, imbalance="mild", seed=args.seed
    )
    stops = np.cumsum([0, *sizes])
    parts = [
        ({k: v[a:b] for k, v in x.items()}, y[a:b])
        for a, b in zip(stops[:-1], stops[1:])
    ]
    (x_pool, _), (x_pool_val, _), train, val, test = parts

    def tokenizers():
        return km.experiments.default_tokenizers(x, embed_dim=32, num_frequencies=16)

    # 1. Self-supervised pre-training: no labels.
    pretrainer = km.models.MultimodalPretrainer(
        tokenizers(), strategy=args.strategy, num_layers=2, seed=args.seed
    )
    pretrainer.compile()
    start = time.perf_counter()
    pretrainer.fit(
        x_pool,
        epochs=args.pretrain_epochs,
        batch_size=128,
        callbacks=[km.ModalityDynamics(x_pool_val, metric="reconstruction", verbose=1)],
        verbose=2,
    )
    print(f"Pre-training: {time.perf_counter() - start:.0f} s")
    errors = pretrainer.modality_errors(x_pool_val)
    print(
        "Reconstruction MSE, each modality from itself:",
        {m: round(float(e), 3) for m, e in zip(pretrainer.modalities, errors)},
    )

    def fit_and_test(model):
        model.compile()
        model.fit(
            *train,
            validation_data=val,
            epochs=finetune_epochs,
            batch_size=64,
            callbacks=[
                keras.callbacks.EarlyStopping(
                    monitor="val_auc",
                    mode="max",
                    patience=finetune_epochs + 1,
                    restore_best_weights=True,
                )
            ],
            verbose=0,
        )
        frame = km.evaluation.evaluate_subsets(model, test, verbose=0)
        return km.experiments.subset_scores(frame, modalities=MODALITIES)

    # 2. Transfer and fine-tune on the labelled budget.
    backbone = pretrainer.backbone
    backbone.masking.strategy = km.strategies.get("uniform")
    fine_tuned = km.models.MultimodalTransformer(
        backbone=backbone, num_outputs=y.shape[1]
    )
    scores = {"pre-trained + fine-tuned": fit_and_test(fine_tuned)}
    # 3. The same model from scratch, on the labelled budget alone.
    scratch = km.models.MultimodalTransformer(
        tokenizers(),
        num_outputs=y.shape[1],
        strategy="uniform",
        num_layers=2,
        seed=args.seed,
    )
    scores["scratch"] = fit_and_test(scratch)

    columns = list(scores["scratch"])
    width = max(len(c) for c in columns) + 2
    print(f"\nTest macro AUC (x100), {args.budget} labelled sites")
    print(" " * 26 + "".join(f"{c:>{width}}" for c in columns))
    for label, row in scores.items():
        print(f"{label:<26}" + "".join(f"{100 * row[c]:>{width}.2f}" for c in columns))
    gain = 100 * (
        scores["pre-trained + fine-tuned"]["average"] - scores["scratch"]["average"]
    )
    print(f"Pre-training gain on the subset average: {gain:+.2f} AUC points")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"scores": scores, "gain": gain}))
    pretrainer.save(out / "pretrainer.keras")
    return scores


if __name__ == "__main__":
    main()
