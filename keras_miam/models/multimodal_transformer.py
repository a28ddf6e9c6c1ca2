"""The supervised task on a `MultimodalBackbone`, ready to fit."""

import keras
from keras import ops

from keras_miam.layers.visible_mean_pooling import visible_mean
from keras_miam.losses import MaskedBinaryCrossentropy
from keras_miam.metrics import MaskedAUC
from keras_miam.models.checks import check_target_shape
from keras_miam.models.checks import static_shape
from keras_miam.models.multimodal_backbone import MultimodalBackbone
from keras_miam.models.task import Task


@keras.saving.register_keras_serializable(package="keras_miam")
class MultimodalTransformer(Task):
    """A `MultimodalBackbone` with a pooled head: one logit per output.

    The backbone's tokens are mean-pooled over the visible tokens (over all
    tokens, all mask tokens, for an example with nothing visible: a finite
    "no information" prediction), or its CLS token is read; then
    LayerNorm, ReLU and a Dense layer. With MIAM masking this is MaskSDM
    (Zbinden et al., 2025) trained as in MIAM (Zbinden et al., 2026).

    Outputs are **logits** in the variable dtype (float32 also under mixed
    precision). `compile()` without arguments uses `AdamW(1e-3,
    weight_decay=0.01)` and, for `task="multilabel"`,
    `keras_miam.losses.MaskedBinaryCrossentropy(from_logits=True)` and
    `keras_miam.metrics.MaskedAUC(multi_label=True, from_logits=True)`:
    targets `(batch, num_outputs)` in [0, 1] (0/1 presence, or soft targets
    such as encounter rates), NaN where unknown, left out of the loss and
    of each output's AUC. For `task="multiclass"`:
    `SparseCategoricalCrossentropy(from_logits=True)` and
    `SparseCategoricalAccuracy`, targets integer class ids.

    `fit`, `evaluate`, `predict` and `*_on_batch` check their data first
    (`keras_miam.models.check_data`): a bad key, dtype, shape, number of
    rows, target width or class id is refused with a `ValueError` that
    names the input, before any compiled step; a refused call leaves the
    model as it was on every backend, JAX included. `predict` on 0
    examples returns a `(0, num_outputs)` array. A `.keras` file saved
    under another backend is compiled afresh for this one (the optimizer
    as this backend's class, `jit_compile="auto"`).

    Args:
        tokenizers: dict `{modality_name: tokenizer}` for a new backbone
            (see `MultimodalBackbone`), or `None` with `backbone`.
        num_outputs: int. Number of species (multilabel) or classes.
        task: `"multilabel"` or `"multiclass"`. Defaults to `"multilabel"`.
        strategy, num_layers, num_heads, intermediate_dim, dropout, seed,
            layer_norm_epsilon: arguments of a new `MultimodalBackbone`.
        pooling: `"mean"` (over visible tokens) or `"cls"`. Defaults to
            `"mean"`.
        backbone: optional `MultimodalBackbone` to put the head on, e.g. a
            pre-trained one (shared, not copied; set
            `backbone.trainable = False` for a linear probe).
        **kwargs: other `keras.Model` arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` with exactly the tokenizers'
            keys. Missing values are NaN (see `keras_miam.missing`).
        training: bool. Masks at random with the strategy when `True`.

    Returns:
        Logits, `(batch, num_outputs)`.

    Example:

    ```python
    model = keras_miam.models.MultimodalTransformer(
        tokenizers={
            "env": keras_miam.tokenizers.TabularTokenizer(64),
            "image": keras_miam.tokenizers.ImagePatchTokenizer(64, patch_size=8),
        },
        num_outputs=100,
    )
    model.compile()
    model.fit({"env": env, "image": images}, presence, epochs=10)
    model.masking.set_visible(["image"])  # evaluate from the image only
    model.evaluate(x_test, y_test)
    model.masking.reset_visible()
    ```

    Reference:
     - [Zbinden et al., 2026 (MIAM)](https://openreview.net/forum?id=oljjAkgZN4)
     - [Zbinden et al., 2025 (MaskSDM)](https://arxiv.org/abs/2503.13057)
    """

    def __init__(
        self,
        tokenizers=None,
        num_outputs=None,
        task="multilabel",
        strategy="miam",
        num_layers=4,
        num_heads=4,
        intermediate_dim=None,
        dropout=0.1,
        pooling="mean",
        seed=None,
        layer_norm_epsilon=1e-5,
        backbone=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if task not in ("multilabel", "multiclass") or pooling not in ("mean", "cls"):
            raise ValueError(
                "`task` must be 'multilabel' or 'multiclass' and `pooling` "
                f"'mean' or 'cls'; received task={task!r}, pooling={pooling!r}."
            )
        if isinstance(num_outputs, bool) or not isinstance(num_outputs, int):
            num_outputs = -1
        if num_outputs < 1:
            raise ValueError(
                f"`num_outputs` must be a positive int; received {num_outputs!r}."
            )
        if (backbone is None) == (tokenizers is None):
            raise ValueError(
                "Pass either `tokenizers` (for a new backbone) or `backbone`; "
                f"received tokenizers={tokenizers!r}, backbone={backbone!r}."
            )
        if backbone is None:
            backbone = MultimodalBackbone(
                tokenizers,
                strategy=strategy,
                num_layers=num_layers,
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                cls_token=pooling == "cls",
                seed=seed,
                layer_norm_epsilon=layer_norm_epsilon,
                dtype=self.dtype_policy,
                name="backbone",
            )
        if pooling == "cls" and not backbone.cls_token:
            raise ValueError("`pooling='cls'` needs a backbone with `cls_token=True`.")
        self.backbone = backbone
        self.num_outputs = num_outputs
        self.task = task
        self.pooling = pooling
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=backbone.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="final_norm",
        )
        # Logits in float32 under mixed precision (stable losses and metrics).
        self.head = keras.layers.Dense(
            num_outputs, dtype=self.dtype_policy.variable_dtype, name="head"
        )

    def build(self, inputs_shape):
        if not self.backbone.built:
            self.backbone.build(inputs_shape)
        self.final_norm.build((None, self.backbone.embed_dim))
        self.head.build((None, self.backbone.embed_dim))
        self.built = True

    def call(self, inputs, training=None):
        x, keep = self.backbone(inputs, training=training)
        pooled = x[:, 0] if self.pooling == "cls" else visible_mean(x, keep)
        return self.head(ops.relu(self.final_norm(pooled)))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, **kwargs):
        # Data read only by the step (generators): checked when traced.
        if y is not None and y_pred is not None:
            check_target_shape(self, static_shape(y), static_shape(y_pred))
        return super().compute_loss(x, y, y_pred, sample_weight, **kwargs)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Configures the model, with the task's defaults.

        Args:
            optimizer: `"auto"` (default): `AdamW(1e-3, weight_decay=0.01)`.
            loss: `"auto"` (default): `MaskedBinaryCrossentropy(from_logits=
                True)` (multilabel) or `SparseCategoricalCrossentropy(
                from_logits=True)` (multiclass), or any loss.
            metrics: `"auto"` (default): `MaskedAUC(multi_label=True,
                from_logits=True)` (multilabel) or `SparseCategoricalAccuracy`
                (multiclass), or any metrics.
            **kwargs: other `keras.Model.compile` arguments.
        """
        multilabel = self.task == "multilabel"
        if isinstance(loss, str) and loss == "auto":
            loss = (
                MaskedBinaryCrossentropy(from_logits=True)
                if multilabel
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            )
        if isinstance(metrics, str) and metrics == "auto":
            metrics = [
                MaskedAUC(
                    multi_label=True,
                    num_labels=self.num_outputs,
                    from_logits=True,
                    name="auc",
                )
                if multilabel
                else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
            ]
        super().compile(optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_outputs": self.num_outputs,
                "task": self.task,
                "pooling": self.pooling,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
