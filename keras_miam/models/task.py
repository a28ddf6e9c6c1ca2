"""The base of the tasks on a `MultimodalBackbone`: checked, guarded calls."""

import inspect

import keras

from keras_miam.models.checks import check_data
from keras_miam.models.multimodal_backbone import MultimodalBackbone
from keras_miam.models.multimodal_backbone import PresetMixin


class _Snapshot(keras.callbacks.Callback):
    """Records the state once Keras has built the model, optimizer and metrics."""

    def __init__(self, record):
        super().__init__()
        self.on_train_begin = self.on_test_begin = self.on_predict_begin = (
            lambda logs=None: record()
        )


def _record(model, saved):
    optimizer = getattr(model, "optimizer", None)
    variables = list(model.variables) + list(model.metrics_variables)
    for v in variables + list(optimizer.variables if optimizer else []):
        if v._value is not None:
            saved[id(v)] = (v, v._value)


def guarded(method_name):
    """A `keras.Model` entry point that checks its data first (`check_data`)
    and never loses the model's state when it raises.

    Keras' JAX trainer (3.15) moves every variable into its compiled step's
    state, emptying the variables, and writes them back only after a step
    has returned: an error inside the first step would leave the model
    without weights. On an error, the variables are put back from the last
    state a step returned, else from a record taken when the call began
    (after Keras built the optimizer and metrics), else before the call.
    On every backend, the next call traces its steps afresh.
    """
    method = getattr(keras.Model, method_name)
    signature = inspect.signature(method)

    def entry_point(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        arguments = bound.arguments
        x, y = arguments.get("x"), arguments.get("y")
        n = check_data(self, x, y, call=method_name)
        validation = arguments.get("validation_data")
        if isinstance(validation, (tuple, list)) and len(validation) in (2, 3):
            check_data(self, *validation[:2], call="fit", name="validation_data")
        elif validation is not None:
            check_data(self, validation, call="fit", name="validation_data")
        if n == 0:  # predict: an empty result of the right shape
            return keras.tree.map_structure(
                keras.ops.convert_to_numpy, self(x, training=False)
            )
        saved = {}
        jax = keras.backend.backend() == "jax"
        if jax:
            _record(self, saved)
            callbacks = arguments.get("callbacks")
            # `fit` calls `evaluate` with its own `CallbackList`: it is guarded.
            if "callbacks" in signature.parameters and not isinstance(
                callbacks, keras.callbacks.CallbackList
            ):
                snapshot = _Snapshot(lambda: _record(self, saved))
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

    entry_point.__name__ = method_name
    entry_point.__doc__ = method.__doc__
    return entry_point


class Task(PresetMixin, keras.Model):
    """A model on `self.backbone` whose `fit`, `evaluate`, `predict` and
    `*_on_batch` check their data first and keep the model on an error.

    Takes either `tokenizers` and `MultimodalBackbone` arguments, for a new
    backbone, or a `backbone`; other keyword arguments go to `keras.Model`.
    """

    def __init__(self, tokenizers=None, backbone=None, **kwargs):
        model_kwargs = {k: kwargs.pop(k, None) for k in ("name", "dtype", "trainable")}
        super().__init__(**{k: v for k, v in model_kwargs.items() if v is not None})
        if (backbone is None) == (tokenizers is None) or (backbone and kwargs):
            raise ValueError(
                "Pass either `tokenizers` and backbone arguments, for a new "
                "backbone, or a `backbone`; received tokenizers="
                f"{tokenizers!r}, backbone={backbone!r} and {kwargs}."
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
    input_dtype = property(lambda self: self.variable_dtype)

    def compile(self, optimizer="auto", **kwargs):
        if isinstance(optimizer, str) and optimizer == "auto":
            optimizer = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:  # a file loaded under another backend is compiled afresh
            config["backend"] = keras.backend.backend()
        return config

    def compile_from_config(self, config):
        config = dict(config)
        if config.pop("backend", None) != keras.backend.backend():
            # `jit_compile` was resolved for the other backend (JAX's True is
            # torch.compile under torch) and the optimizer saved as that
            # backend's class (e.g. TorchAdamW): rebuild it as keras' own.
            config.pop("jit_compile", None)
            optimizer = config.get("optimizer")
            if isinstance(optimizer, dict) and ".backend." in str(
                optimizer.get("module")
            ):
                name = optimizer["class_name"]
                for prefix in ("Torch", "Jax", "Tensorflow", "TF"):
                    name = name[len(prefix) :] if name.startswith(prefix) else name
                config["optimizer"] = {**optimizer, "module": "keras.optimizers"}
                config["optimizer"]["class_name"] = name
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _build_on_a_built_backbone(self):
        """A task on a built (e.g. pre-trained) backbone is built at once."""
        config = self.backbone.get_build_config() if self.backbone.built else None
        if config and not self.built:
            self.build(config["input_shape"])

    def get_config(self):
        config = super().get_config()
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
