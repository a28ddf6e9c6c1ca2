"""Add MIAM to an existing multimodal Keras model: insert one MIAMMasking layer.

The model below is the kind many projects already have: one small Dense
encoder per modality, each producing one feature vector of size D, fused by
concatenation and a Dense head (late fusion). Training it with MIAM takes one
layer: `keras_miam.MIAMMasking` goes between the encoders and the fusion. Each
modality's feature becomes one token; during training, the masking strategy
hides whole modalities at random (more often the dominant ones, once the
`ModalityDynamics` callback has measured them), replacing their feature by a
learned mask token; at inference nothing is hidden except missing modalities
and the ones you hide with `set_visible`. The model then predicts from any
subset of its modalities. No transformer is needed.

Missing data: missing values are NaN in the data (a single value, a whole
modality, or a whole example). `keras_miam.layers.FillMissing` goes on each
raw input, before the encoder: it replaces missing values by 0 (so NaN never
reaches the encoder's `Dense` layers, whose gradients would turn their weights
NaN) and returns one "available" flag per example, which goes to
`MIAMMasking`'s `mask`: a missing modality is always replaced by the mask
token. An example with nothing observed gets the model's "nothing observed"
prediction (the fusion only ever sees finite tokens).

    KERAS_BACKEND=jax python examples/existing_model.py --epochs 10
"""

import numpy as np

try:  # `python examples/existing_model.py`: this folder is on the import path.
    import _cli
except ModuleNotFoundError:  # imported from the repository root (the tests)
    from examples import _cli

MODALITIES = {"env": 12, "climate": 24, "image": 16}  # name: number of features


def parse_args(argv=None):
    parser = _cli.make_parser(__doc__)
    _cli.add_training_arguments(parser, epochs=10, batch_size=128)
    parser.add_argument(
        "--num-examples", type=int, default=4000, help="synthetic examples generated"
    )
    parser.add_argument(
        "--num-species", type=int, default=10, help="outputs (presence/absence)"
    )
    parser.add_argument(
        "--strategy",
        default="miam",
        help="masking strategy (a name in keras_miam.strategies)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the data, weights and masking"
    )
    return parser.parse_args(argv)


def make_data(num_examples, num_species=10, seed=0):
    """Synthetic presence/absence data with three modalities.

    The environment explains most of the species' presence (a dominant
    modality); the image carries a weaker signal that only it has; climate
    is partly redundant with the environment. About 10 % of the examples
    lack each modality (all its features NaN, so about 0.1 % lack all three)
    and 2 % of the remaining values are NaN.

    Returns:
        `(x, y)`: x a dict with one `(n, features)` float32 array per
        modality, NaN where missing; y `(n, num_species)` 0/1 float32 labels.
    """
    rng = np.random.default_rng(seed)
    x = {
        name: rng.normal(size=(num_examples, dim)).astype("float32")
        for name, dim in MODALITIES.items()
    }
    x["climate"][:, :12] = x["env"] + 0.5 * x["climate"][:, :12]
    logits = (
        2.0 * x["env"] @ rng.normal(size=(12, num_species)) / np.sqrt(12)
        + 1.0 * x["image"] @ rng.normal(size=(16, num_species)) / np.sqrt(16)
        - 1.0
    )
    y = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype("float32")
    for name in MODALITIES:
        x[name][rng.random(x[name].shape) < 0.02] = np.nan
        x[name][rng.random(num_examples) < 0.1] = np.nan
    return x, y


def build_model(num_species, embed_dim=32, strategy="miam", seed=0):
    """The existing late-fusion model, with MIAMMasking inserted.

    Returns:
        A functional `keras.Model` taking the dict of `make_data()` (NaN =
        missing) and returning one logit per species; its masking layer is
        named `"miam_masking"`.
    """
    import keras

    import keras_miam as km

    inputs, features, available = {}, {}, {}
    for name, dim in MODALITIES.items():
        inputs[name] = keras.Input((dim,), name=name)
        # New: missing values -> 0 before the encoder, plus a (batch,) flag.
        values, available[name] = km.layers.FillMissing(name=f"{name}_fill")(
            inputs[name]
        )
        # The existing encoder of this modality: one (batch, D) feature.
        h = keras.layers.Dense(64, activation="relu", name=f"{name}_hidden")(values)
        features[name] = keras.layers.Dense(embed_dim, name=f"{name}_feature")(h)

    # The new masking layer. Every feature becomes a token: (batch, M, D) out,
    # with masked and missing modalities replaced by the mask token.
    tokens, _ = km.MIAMMasking(
        list(MODALITIES), strategy=strategy, seed=seed, name="miam_masking"
    )(features, mask=available)

    # The existing fusion and head: concatenate the features, classify.
    h = keras.layers.Flatten(name="fusion")(tokens)
    h = keras.layers.Dense(64, activation="relu", name="head_hidden")(h)
    outputs = keras.layers.Dense(num_species, name="logits")(h)
    return keras.Model(inputs, outputs, name="late_fusion_with_miam")


def split(x, y, fraction, seed=0):
    index = np.random.default_rng(seed).permutation(len(y))
    cut = int(len(y) * fraction)
    take = lambda part: ({k: v[part] for k, v in x.items()}, y[part])  # noqa: E731
    return take(index[cut:]), take(index[:cut])


def main(argv=None):
    args = parse_args(argv)
    import keras

    import keras_miam as km

    keras.utils.set_random_seed(args.seed)
    x, y = make_data(args.num_examples, args.num_species, seed=args.seed)
    (x_train, y_train), (x_val, y_val) = split(x, y, 0.25, seed=args.seed)
    model = build_model(args.num_species, strategy=args.strategy, seed=args.seed)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=3e-3, weight_decay=0.01),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.AUC(multi_label=True, from_logits=True, name="auc")],
    )
    print(
        f"Backend {keras.backend.backend()}; strategy {args.strategy}; "
        f"{len(y_train)} training and {len(y_val)} validation examples."
    )
    model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        # Unimodal validation scores each epoch -> MIAM's masking rates.
        callbacks=[km.ModalityDynamics(validation_data=(x_val, y_val))],
        verbose=2,
    )
    masking = model.get_layer("miam_masking")
    ratios = {
        name: round(float(r), 2)
        for name, r in zip(masking.modalities, masking.mask_ratios())
    }
    print(f"Masking ratios r_m after training (> 1: masked more): {ratios}")
    print("Validation AUC with only some modalities visible:")
    subsets = [[name] for name in MODALITIES] + [list(MODALITIES)]
    for subset in subsets:
        masking.set_visible(subset)
        auc = model.evaluate(x_val, y_val, verbose=0, return_dict=True)["auc"]
        print(f"  {' + '.join(subset):24s} {auc:.3f}")
    masking.reset_visible()


if __name__ == "__main__":
    main()
