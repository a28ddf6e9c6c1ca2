"""The supervised task on a `MultimodalBackbone`, ready to fit."""

import keras
from keras import ops

from keras_miam.layers.visible_mean_pooling import visible_mean
from keras_miam.losses import MaskedBinaryCrossentropy
from keras_miam.metrics import MaskedAUC
from keras_miam.models.checks import check_target_shape
from keras_miam.models.checks import static_shape
from keras_miam.models.task import Task


@keras.saving.register_keras_serializable(package="keras_miam")
class MultimodalTransformer(Task):
    """A `MultimodalBackbone` with a pooled head giving one logit per output.

    The visible tokens are averaged (all tokens when none is visible: a finite
    "no information" prediction), or the CLS token is read; LayerNorm, ReLU
    and Dense give the logits, in float32. `compile()` defaults to
    `AdamW(1e-3, weight_decay=0.01)` and, for `"multilabel"`,
    `keras_miam.losses.MaskedBinaryCrossentropy` and
    `keras_miam.metrics.MaskedAUC` (targets in [0, 1], NaN where unknown);
    for `"multiclass"`, sparse cross-entropy and accuracy. Each entry point
    runs `keras_miam.models.check_data` first.

    Args:
        tokenizers: dict `{modality_name: tokenizer}` for a new backbone.
        num_outputs: int. Number of species (multilabel) or classes.
        task: `"multilabel"` (default) or `"multiclass"`.
        pooling: `"mean"` (default, over the visible tokens) or `"cls"`.
        backbone: a `keras_miam.models.MultimodalBackbone` instead, shared
            (fine-tuning; a linear probe with `backbone.trainable = False`).
        **kwargs: `MultimodalBackbone` arguments, `name` and `dtype`.

    Call arguments:
        inputs: dict `{modality_name: tensor}`, NaN where missing.
        training: bool. Masks at random with the strategy when `True`.

    Returns:
        Logits, `(batch, num_outputs)`.

    Example:

    ```python
    backbone = keras_miam.models.MultimodalBackbone.from_preset("./miam_backbone")
    model = keras_miam.models.MultimodalTransformer(backbone=backbone, num_outputs=9)
    model.compile()
    model.fit({"env": env, "image": images}, presence, epochs=10)
    model.masking.set_visible(["image"])  # evaluate from the image only
    model.evaluate(x_test, y_test)
    ```

    Reference:
     - [Zbinden et al., 2025 (MaskSDM)](https://arxiv.org/abs/2503.13057)
     - [Zbinden et al., 2026 (MIAM)](https://openreview.net/forum?id=oljjAkgZN4)
    """

    def __init__(
        self,
        tokenizers=None,
        num_outputs=None,
        task="multilabel",
        pooling="mean",
        backbone=None,
        **kwargs,
    ):
        known = task in ("multilabel", "multiclass") and pooling in ("mean", "cls")
        if not known or type(num_outputs) is not int or num_outputs < 1:
            raise ValueError(
                "`task` must be 'multilabel' or 'multiclass', `pooling` 'mean' or "
                "'cls' and `num_outputs` a positive int; received "
                f"task={task!r}, pooling={pooling!r}, num_outputs={num_outputs!r}."
            )
        if backbone is None and pooling == "cls":
            kwargs["cls_token"] = True
        super().__init__(tokenizers, backbone, **kwargs)
        if pooling == "cls" and not self.backbone.cls_token:
            raise ValueError("`pooling='cls'` needs a backbone with `cls_token=True`.")
        self.num_outputs, self.task, self.pooling = num_outputs, task, pooling
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=self.backbone.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="final_norm",
        )
        self.head = keras.layers.Dense(
            num_outputs, dtype=self.dtype_policy.variable_dtype, name="head"
        )
        self._build_on_a_built_backbone()

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
        # Data read only by the step (generators) is checked when traced.
        check_target_shape(self, static_shape(y), static_shape(y_pred))
        return super().compute_loss(x, y, y_pred, sample_weight, **kwargs)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Keras' JAX trainer builds the metrics first, on an unbuilt model.
        check_target_shape(self, static_shape(y), static_shape(y_pred))
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """`keras.Model.compile` with the task's defaults for `"auto"`."""
        if self.task == "multiclass":
            auto_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            auto_metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        else:
            auto_loss = MaskedBinaryCrossentropy(from_logits=True)
            auc = dict(multi_label=True, num_labels=self.num_outputs, name="auc")
            auto_metric = MaskedAUC(from_logits=True, **auc)
        loss = auto_loss if loss == "auto" else loss
        metrics = [auto_metric] if metrics == "auto" else metrics
        super().compile(optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        names = ("num_outputs", "task", "pooling")
        return {**super().get_config(), **{k: getattr(self, k) for k in names}}
