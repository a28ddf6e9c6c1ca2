"""Models whose output is a known function of the visible tokens.

Shared by the evaluation, explanation and plotting tests: inputs go through
a `MIAMMasking` layer, then a readout written with `keras.ops` reads the
tokens and the keep mask, so the value of any selection is known exactly.
"""

import keras
import numpy as np
from keras import ops

from keras_miam import MIAMMasking


def build_model(readout, counts, dim=2, **masking_kwargs):
    """Inputs -> MIAMMasking -> readout(tokens, keep, layer).

    Args:
        readout: `fn(tokens, keep, layer)` on keras.ops, returning
            `(batch, outputs)`.
        counts: `{modality: number of tokens}`.
        dim: features per token.
        **masking_kwargs: `MIAMMasking` arguments (strategy 'uniform' unless
            given).

    Returns:
        `(model, masking_layer)`.
    """
    masking_kwargs.setdefault("strategy", "uniform")
    inputs = {m: keras.Input((t, dim), name=m) for m, t in counts.items()}
    layer = MIAMMasking(list(counts), **masking_kwargs)
    tokens, keep = layer(inputs)
    outputs = keras.layers.Lambda(lambda args: readout(*args, layer))((tokens, keep))
    return keras.Model(inputs, outputs), layer


def shown(keep, layer, modality):
    """1.0 where any token of `modality` is visible, per example."""
    start, stop = layer.token_slices[modality]
    return ops.max(ops.cast(keep[:, start:stop], "float32"), axis=1)


def random_inputs(rng, n, counts, dim=2):
    """Normal float32 tokens `{modality: (n, T_m, dim)}`."""
    return {
        m: rng.normal(size=(n, t, dim)).astype("float32") for m, t in counts.items()
    }


def mean_prediction(y_true, y_pred):
    """A metric that ignores the labels: the mean model output."""
    return np.mean(y_pred)
