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
    """A `MultimodalBackbone` with a pooled head: one logit per output.

    The backbone's tokens are mean-pooled over the visible ones (over all,
    the mask tokens, for an example with nothing visible: a finite "no
    information" prediction) or its CLS token is read, then LayerNorm, ReLU
    and Dense give **logits** (float32 under mixed precision). This is
    MaskSDM (Zbinden et al., 2025) trained with MIAM (Zbinden et al., 2026).

    `compile()` defaults to `AdamW(1e-3, weight_decay=0.01)` and, for
    `task="multilabel"`, `keras_miam.losses.MaskedBinaryCrossentropy` and
    `keras_miam.metrics.MaskedAUC` from logits: targets `(batch,
    num_outputs)` in [0, 1] (presence, or soft targets such as encounter
    rates), NaN where unknown (left out). For `task="multiclass"`: sparse
    categorical cross-entropy and accuracy, targets class ids.

    `fit`, `evaluate`, `predict` and `*_on_batch` run
    `keras_miam.models.check_data` first: bad keys, dtypes, shapes, row
    counts, target widths and class ids are refused with a `ValueError`
    naming the input, before any compiled step, and a refused call leaves
    the model as it was on every backend, JAX included.

    Args:
        tokenizers: dict `{modality_name: tokenizer}` for a new backbone
            (see `MultimodalBackbone`), or `None` with `backbone`.
        num_outputs: int. Number of species (multilabel) or classes.
        task: `"multilabel"` or `"multiclass"`. Defaults to `"multilabel"`.
        pooling: `"mean"` (over visible tokens) or `"cls"`. Defaults to
            `"mean"`.
        backbone: optional `MultimodalBackbone`, e.g. a pre-trained one
            (shared, not copied; `backbone.trainable = False` for a linear
            probe).
        **kwargs: the new backbone's arguments (`strategy`, `num_layers`,
            `num_heads`, `intermediate_dim`, `dropout`, `seed`,
            `layer_norm_epsilon`), and `name`, `dtype`.

    Call arguments:
        inputs: dict `{modality_name: tensor}`; missing values are NaN.
        training: bool. Masks at random with the strategy when `True`.

    Returns:
        Logits, `(batch, num_outputs)`.

    Example:

    ```python
    model = keras_miam.models.MultimodalTransformer(
        {"env": keras_miam.tokenizers.TabularTokenizer(64),
         "image": keras_miam.tokenizers.ImagePatchTokenizer(64, patch_size=8)},
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
        pooling="mean",
        backbone=None,
        **kwargs,
    ):
        if task not in ("multilabel", "multiclass") or pooling not in ("mean", "cls"):
            raise ValueError(
                "`task` must be 'multilabel' or 'multiclass' and `pooling` "
                f"'mean' or 'cls'; received task={task!r}, pooling={pooling!r}."
            )
        if (
            isinstance(num_outputs, bool)
            or not isinstance(num_outputs, int)
            or (num_outputs < 1)
        ):
            raise ValueError(
                f"`num_outputs` must be a positive int; received {num_outputs!r}."
            )
        if backbone is None and pooling == "cls":
            kwargs["cls_token"] = True
        super().__init__(tokenizers, backbone, **kwargs)
        if pooling == "cls" and not self.backbone.cls_token:
            raise ValueError("`pooling='cls'` needs a backbone with `cls_token=True`.")
        self.num_outputs = num_outputs
        self.task = task
        self.pooling = pooling
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=self.backbone.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="final_norm",
        )
        # Logits in float32 under mixed precision (stable losses and metrics).
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
        # Data read only by the step (generators): checked when traced.
        if y is not None and y_pred is not None:
            check_target_shape(self, static_shape(y), static_shape(y_pred))
        return super().compute_loss(x, y, y_pred, sample_weight, **kwargs)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is not None and y_pred is not None:
            check_target_shape(self, static_shape(y), static_shape(y_pred))
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """`keras.Model.compile` with the task's defaults for `"auto"`."""
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
                "num_outputs": self.num_outputs,
                "task": self.task,
                "pooling": self.pooling,
            }
        )
        return config
