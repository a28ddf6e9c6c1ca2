"""The base of the tasks on a `MultimodalBackbone`: checked, guarded calls."""

import inspect
import re

import keras

from keras_miam.models.checks import check_data
from keras_miam.models.multimodal_backbone import MultimodalBackbone
from keras_miam.models.multimodal_backbone import PresetMixin


def _record(model, saved):
    """Keeps every variable's value that Keras has not moved out."""
    optimizer = getattr(model, "optimizer", None)
    variables = model.variables + model.metrics_variables
    for v in variables + (optimizer.variables if optimizer else []):
        if v._value is not None:
            saved[id(v)] = (v, v._value)


def guarded(method_name):
    """`keras.Model.<method_name>`, checking its data first (`check_data`)
    and keeping the model's state when it raises.

    Keras' JAX trainer (3.15) moves the variables into its compiled step's
    state, back only after a step returns. On an error they are put back
    from the last state a step returned, else as when the call began (once
    Keras built the optimizer and metrics). The next call traces afresh.
    """
    method = getattr(keras.Model, method_name)
    signature = inspect.signature(method)

    def entry_point(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        arguments = bound.arguments
        x, validation = arguments.get("x"), arguments.get("validation_data")
        n = check_data(self, x, arguments.get("y"), call=method_name)
        if validation is not None:
            pair = isinstance(validation, (tuple, list)) and len(validation) in (2, 3)
            validation = validation[:2] if pair else [validation]
            check_data(self, *validation, call="fit", name="validation_data")
        if n == 0:  # predict: an empty result of the right shape
            outputs = self(x, training=False)
            return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)
        saved, jax = {}, keras.backend.backend() == "jax"
        callbacks = arguments.get("callbacks")
        if jax:
            _record(self, saved)
            # `fit` calls `evaluate` with its own `CallbackList`: it is guarded.
            if "callbacks" in signature.parameters and not isinstance(
                callbacks, keras.callbacks.CallbackList
            ):
                record = lambda logs=None: _record(self, saved)
                snapshot = keras.callbacks.LambdaCallback(
                    on_train_begin=record, on_test_begin=record, on_predict_begin=record
                )
                arguments["callbacks"] = list(callbacks or []) + [snapshot]
        try:
            return method(*bound.args, **bound.kwargs)
        except BaseException:
            if jax:
                if getattr(self, "_jax_state", None) and not self._jax_state_synced:
                    self.jax_state_sync()
                self._jax_state, self._jax_state_synced = None, True
                for v, value in saved.values():
                    if v._value is None:
                        v.assign(value)
            self.train_function = self.test_function = self.predict_function = None
            raise

    entry_point.__name__, entry_point.__doc__ = method_name, method.__doc__
    return entry_point


class Task(PresetMixin, keras.Model):
    """A model on a `backbone` (or a new one from `tokenizers` and backbone
    arguments) whose entry points are `guarded`."""

    def __init__(self, tokenizers=None, backbone=None, **kwargs):
        keys = ("name", "dtype", "trainable")
        super().__init__(**{k: kwargs.pop(k) for k in keys if k in kwargs})
        if (backbone is None) == (tokenizers is None) or (backbone and kwargs):
            raise ValueError(
                "Pass either `tokenizers` and backbone arguments, for a new "
                f"backbone, or a `backbone`; received tokenizers={tokenizers!r}, "
                f"backbone={backbone!r} and {kwargs}."
            )
        if backbone is None:
            backbone = MultimodalBackbone(
                tokenizers, dtype=self.dtype_policy, name="backbone", **kwargs
            )
        self.backbone = backbone

    fit = guarded("fit")
    evaluate = guarded("evaluate")
    predict = guarded("predict")
    train_on_batch = guarded("train_on_batch")
    test_on_batch = guarded("test_on_batch")
    predict_on_batch = guarded("predict_on_batch")

    tokenizers = property(lambda self: self.backbone.tokenizers)
    modalities = property(lambda self: self.backbone.modalities)
    masking = property(lambda self: self.backbone.masking)
    strategy = property(lambda self: self.backbone.masking.strategy)
    encoder_layers = property(lambda self: self.backbone.encoder_layers)

    def _build_on_a_built_backbone(self):  # e.g. a pre-trained one
        config = self.backbone.built and self.backbone.get_build_config()
        if config and not self.built:
            self.build(config["input_shape"])

    def compile(self, optimizer="auto", **kwargs):
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:  # a file loaded under another backend is compiled afresh
            config["backend"] = keras.backend.backend()
        return config

    def compile_from_config(self, config):
        config = dict(config)
        optimizer = config.get("optimizer")
        if config.pop("backend", None) != keras.backend.backend():
            # `jit_compile` was resolved for the other backend, and the optimizer
            # saved as its class (e.g. TorchAdamW): rebuilt as keras' own.
            config.pop("jit_compile", None)
            if isinstance(optimizer, dict) and ".backend." in str(
                optimizer.get("module")
            ):
                name = re.sub("^(Torch|Jax|Tensorflow|TF)", "", optimizer["class_name"])
                config["optimizer"] = {**optimizer, "class_name": name}
                config["optimizer"]["module"] = "keras.optimizers"
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        config = super().get_config()
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        return config

    @classmethod
    def from_config(cls, config):
        backbone = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**{**config, "backbone": backbone})
