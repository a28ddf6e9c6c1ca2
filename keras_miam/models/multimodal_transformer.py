"""A multimodal transformer trained with MIAM masking, ready to fit."""

import keras
import keras_hub
import numpy as np
from keras import ops

from keras_miam.layers.miam_masking import MIAMMasking
from keras_miam.layers.visible_mean_pooling import visible_mean
from keras_miam.losses import MaskedBinaryCrossentropy
from keras_miam.metrics import MaskedAUC

TASKS = ("multilabel", "multiclass")
POOLINGS = ("mean", "cls")


def _is_auto(value):
    return isinstance(value, str) and value == "auto"


# Input and target dtypes the model accepts (cast to float by the tokenizers).
NUMERIC_KINDS = ("b", "i", "u", "f")


def _static_shape(x):
    """`x`'s shape as a tuple (None for unknown dimensions), or None when
    the rank itself is unknown (a TF tensor or spec of unknown rank)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        return None


def _dtype_kind(x):
    """numpy's dtype kind of an array, tensor or spec ('f', 'i', 'U', ...)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return np.asarray(x).dtype.kind
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("torch.", "")
    if name in ("string", "str"):
        return "U"
    try:
        return np.dtype(keras.backend.standardize_dtype(name)).kind
    except (TypeError, ValueError):
        try:
            return np.dtype(name).kind
        except TypeError:
            return "O"


def _is_array_like(x):
    """numpy arrays, backend tensors and nested lists (not datasets)."""
    return (
        isinstance(x, (np.ndarray, list, tuple, int, float))
        or keras.ops.is_tensor(x)
        or type(x).__module__.startswith("jax")
    )


def _dataset_spec(x):
    """A tf.data.Dataset's element spec (cheap: no batch is read), else None."""
    spec = getattr(x, "element_spec", None)
    if spec is None:
        return None
    if isinstance(spec, tuple):  # (x,), (x, y) or (x, y, sample_weight)
        return (tuple(spec) + (None, None))[:2]
    return spec, None


class _SnapshotCallback(keras.callbacks.Callback):
    """Calls `record()` when `fit` / `evaluate` / `predict` begin: after
    Keras has built the model, optimizer and metrics, before any step."""

    def __init__(self, record):
        super().__init__()
        self.record = record

    def on_train_begin(self, logs=None):
        self.record()

    def on_test_begin(self, logs=None):
        self.record()

    def on_predict_begin(self, logs=None):
        self.record()


@keras.saving.register_keras_serializable(package="keras_miam")
class MultimodalTransformer(keras.Model):
    """Tokenizers -> `MIAMMasking` -> pre-LN transformer -> pooled head.

    Each named input goes through its tokenizer; `MIAMMasking` replaces
    masked tokens (random masking from the strategy during training, missing
    tokens and tokens outside the evaluation selection always) by its learned
    mask token; a stack of pre-LayerNorm `keras_hub.layers.TransformerEncoder`
    blocks mixes all tokens; the visible tokens are mean-pooled (or a CLS
    token is read); then LayerNorm, ReLU and a Dense layer give one logit per
    output. This is the MaskSDM architecture (Zbinden et al., 2025) with the
    MIAM masking strategy (Zbinden et al., 2026), sized for a CPU by default.

    Outputs are **logits** (in the variable dtype: float32 also under a
    mixed precision policy): compile with `from_logits=True` losses.
    `compile()` without arguments does so:

    - `task="multilabel"` (presence/absence of `num_outputs` species):
      `MaskedBinaryCrossentropy(from_logits=True)` and
      `MaskedAUC(multi_label=True, from_logits=True)` (macro-averaged over
      outputs); targets are `(batch, num_outputs)` 0/1, and **NaN where a
      target is unknown** (e.g. a species not surveyed at a site). Both
      ignore NaN targets: the loss is the mean binary cross-entropy over
      the observed entries only (a NaN entry has weight 0; a batch with no
      observed entry has loss 0), and each output's AUC is computed over
      the examples where that output is observed. With Keras' plain
      `BinaryCrossentropy` a single NaN target makes the loss and then
      every weight NaN, and Keras' plain `AUC` counts NaN targets as
      positives. (`MaskedBinaryCrossentropy` and `MaskedAUC` are defined in
      `keras_miam.models` and can be used in any model.) Probabilities:
      `keras.ops.sigmoid(model.predict(x))`.
    - `task="multiclass"` (one of `num_outputs` classes):
      `SparseCategoricalCrossentropy(from_logits=True)` and
      `SparseCategoricalAccuracy`; targets are integer class ids,
      `(batch,)` or `(batch, 1)` (use the loss's `ignore_class` for unknown
      classes). Probabilities: `keras.ops.softmax(model.predict(x))`.

    Bad inputs are refused before any compiled step runs, with a
    `ValueError` that names the input and what was expected: a modality
    key missing or unexpected, an input of the wrong shape or rank for its
    tokenizer, a non-numeric dtype (strings), modalities (or inputs and
    targets) with different numbers of examples, empty data in `fit` /
    `evaluate`, targets of the wrong shape (e.g. 7 columns for
    `num_outputs=5`, or 1-D targets for several outputs), infinite
    multilabel targets, class ids out of range. `fit`, `evaluate`,
    `predict`, `train_on_batch`, `test_on_batch` and `predict_on_batch`
    check numpy / backend arrays (and `validation_data`) in full, and a
    `tf.data.Dataset` through its element spec; other iterables are
    checked when their first step is traced. A refused call leaves the
    model as it was, on every backend (under JAX, where Keras moves the
    variables into the compiled step's state, the model puts them back
    when a call raises). `predict` on 0 examples returns a
    `(0, num_outputs)` array.

    A model saved under one backend and loaded under another (with
    `keras.saving.load_model`) is compiled afresh for the new backend: the
    optimizer is rebuilt as the new backend's class with the same
    configuration (its saved state is kept) and `jit_compile` is `"auto"`
    for the new backend, not the value resolved when it was saved.

    The default optimizer is MaskSDM's `AdamW(1e-3, weight_decay=0.01)`.

    Design:

    - Masked tokens attend normally. They are *replaced* by the mask token
      (plus a learned embedding of their slot), not dropped or hidden from
      attention, as in MaskSDM and MIAM: the mask token says "this input is
      unknown" and the slot embedding says which one, which is itself
      information; shapes stay static, so one compiled graph serves every
      subset of inputs; and no attention row can ever be empty (an example
      with nothing visible would make a softmax over an all-masked row).
      A token missing in the data and a token hidden by `set_visible()`
      therefore give exactly the same prediction.
    - Mean pooling averages the encoder outputs of the *visible* tokens
      only. If an example has no visible token at all (every modality
      missing), it averages all tokens instead (all mask tokens), so the
      prediction is finite and is the model's learned "no information"
      prediction; no division by zero happens. With `pooling="cls"`, a
      learned CLS token (always visible) is prepended and its output is
      read, which needs no fallback.
    - Missing data follow the tokenizers' rule (`keras_miam.tokenizers.
      Tokenizer`): NaN, +-inf, `|x| > 1e10` (or a tokenizer's `nodata`)
      values are missing, a token whose values are all missing is masked,
      partly missing tokens are zero-filled. NaN never reaches the outputs
      or the gradients.

    Args:
        tokenizers: dict `{modality_name: tokenizer}`. Tokenizers are Keras
            layers mapping a modality's input to `(batch, T_m, D)` tokens
            (or `(batch, D)`), with the same `D`; their `compute_mask()`
            gives the per-token availability (see `keras_miam.tokenizers`).
            The dict order is the token order.
        num_outputs: int. Number of species (multilabel) or classes
            (multiclass).
        task: `"multilabel"` or `"multiclass"`. Defaults to `"multilabel"`.
        strategy: masking strategy of `MIAMMasking`: a name
            (`"miam"`, `"uniform"`, ...), a config dict or a
            `keras_miam.strategies.MaskingStrategy`. Defaults to `"miam"`.
        num_layers: int. Transformer blocks. Defaults to `4` (MaskSDM: 7).
        num_heads: int. Attention heads. Defaults to `4` (MaskSDM: 8).
        intermediate_dim: int. Feed-forward size. Defaults to `None`:
            `2 * D` (MaskSDM: 256 for D = 192).
        dropout: float. Dropout on the attention weights and after the
            attention and feed-forward blocks. Defaults to `0.1` (MaskSDM).
        pooling: `"mean"` (over visible tokens) or `"cls"`. Defaults to
            `"mean"` (MaskSDM).
        seed: optional int, seeds the masking draws.
        layer_norm_epsilon: float. Epsilon of the layer normalisations.
            Defaults to `1e-5`.
        **kwargs: other keyword arguments passed to `keras.Model`, such as
            `name` and `dtype`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` with exactly the tokenizers'
            keys, each in the shape its tokenizer expects. Missing values
            are NaN (or another missing marker, see above).
        training: bool. Masks at random with the strategy when `True`.

    Returns:
        Logits, a `(batch, num_outputs)` float32 tensor (the policy's
        variable dtype).

    Example:

    ```python
    import keras_miam as km

    model = km.models.MultimodalTransformer(
        tokenizers={
            "env": km.tokenizers.TabularTokenizer(64),
            "climate": km.tokenizers.TimeSeriesTokenizer(64, patch_len=12),
            "image": km.tokenizers.ImagePatchTokenizer(64, patch_size=8),
        },
        num_outputs=100,
    )
    model.compile()  # AdamW, BCE from logits, macro AUC
    model.fit(
        {"env": env, "climate": climate, "image": images},  # NaN = missing
        presence,
        callbacks=[km.ModalityDynamics(validation_data=(x_val, y_val))],
    )
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
        tokenizers,
        num_outputs,
        task="multilabel",
        strategy="miam",
        num_layers=4,
        num_heads=4,
        intermediate_dim=None,
        dropout=0.1,
        pooling="mean",
        seed=None,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(tokenizers, dict) or not tokenizers:
            raise ValueError(
                "`tokenizers` must be a non-empty dict {modality_name: "
                f"tokenizer layer}}; received {tokenizers!r}."
            )
        for name, tokenizer in tokenizers.items():
            if not isinstance(name, str):
                raise ValueError(f"Modality names must be strings; received {name!r}.")
            if not isinstance(tokenizer, keras.layers.Layer):
                raise ValueError(
                    f"The tokenizer of modality '{name}' must be a Keras "
                    f"layer; received {tokenizer!r}."
                )
        dims = {
            name: tokenizer.embed_dim
            for name, tokenizer in tokenizers.items()
            if getattr(tokenizer, "embed_dim", None) is not None
        }
        if len(set(dims.values())) > 1:
            raise ValueError(
                "All tokenizers must produce tokens of the same size; "
                "received embed_dim "
                + ", ".join(f"{name}: {dim}" for name, dim in dims.items())
                + ". Use one `embed_dim` for every tokenizer."
            )
        if task not in TASKS:
            raise ValueError(f"`task` must be one of {TASKS}; received {task!r}.")
        if pooling not in POOLINGS:
            raise ValueError(
                f"`pooling` must be one of {POOLINGS}; received {pooling!r}."
            )
        if isinstance(num_outputs, bool) or not isinstance(num_outputs, int):
            raise ValueError(
                f"`num_outputs` must be a positive int; received {num_outputs!r}."
            )
        if num_outputs <= 0 or num_layers < 1 or num_heads < 1:
            raise ValueError(
                "`num_outputs`, `num_layers` and `num_heads` must be "
                f"positive; received num_outputs={num_outputs}, "
                f"num_layers={num_layers}, num_heads={num_heads}."
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1); received {dropout}.")

        self.tokenizers = dict(tokenizers)
        self.modalities = list(tokenizers)
        self.num_outputs = num_outputs
        self.task = task
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_dim = intermediate_dim
        self.dropout = float(dropout)
        self.pooling = pooling
        self.seed = seed
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.masking = MIAMMasking(
            modalities=self.modalities,
            strategy=strategy,
            seed=seed,
            dtype=self.dtype_policy,
            name="masking",
        )
        self.strategy = self.masking.strategy
        self.encoder_layers = []
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="final_norm",
        )
        # Logits in float32 under mixed precision (stable losses and metrics).
        self.head = keras.layers.Dense(
            num_outputs, dtype=self.dtype_policy.variable_dtype, name="head"
        )

    @property
    def input_dtype(self):
        # Float inputs reach the tokenizers at full precision: they find the
        # missing values before casting to the compute dtype.
        return self.variable_dtype

    def _check_inputs(self, inputs, what="inputs"):
        if not isinstance(inputs, dict):
            raise ValueError(
                f"MultimodalTransformer expects {what} as a dict "
                f"{{modality_name: tensor}} with the keys {self.modalities}; "
                f"received {type(inputs).__name__}."
            )
        missing = [name for name in self.modalities if name not in inputs]
        extra = sorted(str(name) for name in inputs if name not in self.tokenizers)
        if missing or extra:
            raise ValueError(
                f"MultimodalTransformer expects {what} for exactly the "
                f"modalities {self.modalities}; missing: {missing}, "
                f"unexpected: {extra}. Pass NaN for a modality that is "
                "missing, do not leave its key out."
            )
        return [inputs[name] for name in self.modalities]

    def build(self, inputs_shape):
        shapes = self._check_inputs(inputs_shape, what="input shapes")
        self._input_shapes = {
            name: (None,) + tuple(shape)[1:]
            for name, shape in zip(self.modalities, shapes)
        }
        token_shapes = {}
        for name, shape in zip(self.modalities, shapes):
            tokenizer = self.tokenizers[name]
            shape = (None,) + tuple(shape)[1:]
            if not tokenizer.built:
                tokenizer.build(shape)
            spec = tokenizer.compute_output_spec(
                keras.KerasTensor(shape, dtype=tokenizer.compute_dtype)
            )
            token_shapes[name] = tuple(spec.shape)
        self.masking.build(token_shapes)
        self.embed_dim = self.masking.embed_dim
        num_tokens = self.masking.num_tokens
        if self.pooling == "cls":
            self.cls_token = self.add_weight(
                shape=(self.embed_dim,),
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="cls_token",
            )
            num_tokens += 1
        intermediate_dim = self.intermediate_dim or 2 * self.embed_dim
        self.encoder_layers = []
        for i in range(self.num_layers):
            layer = keras_hub.layers.TransformerEncoder(
                intermediate_dim=intermediate_dim,
                num_heads=self.num_heads,
                dropout=self.dropout,
                layer_norm_epsilon=self.layer_norm_epsilon,
                normalize_first=True,
                dtype=self.dtype_policy,
                name=f"transformer_layer_{i}",
            )
            layer.build((None, num_tokens, self.embed_dim))
            self.encoder_layers.append(layer)
        self.final_norm.build((None, self.embed_dim))
        self.head.build((None, self.embed_dim))
        self.built = True

    def call(self, inputs, training=None):
        values = self._check_inputs(inputs)
        tokens, availability = {}, {}
        for name, x in zip(self.modalities, values):
            tokenizer = self.tokenizers[name]
            tokens[name] = tokenizer(x)
            availability[name] = tokenizer.compute_mask(x, None)
        x, keep = self.masking(tokens, mask=availability, training=training)
        if self.pooling == "cls":
            cls = ops.cast(self.cls_token, x.dtype)
            cls = ops.broadcast_to(cls, (ops.shape(x)[0], 1, self.embed_dim))
            x = ops.concatenate([cls, x], axis=1)
        for layer in self.encoder_layers:
            x = layer(x, training=training)
        if self.pooling == "cls":
            pooled = x[:, 0]
        else:
            pooled = self._visible_mean(x, keep)
        pooled = ops.relu(self.final_norm(pooled))
        return self.head(pooled)

    @staticmethod
    def _visible_mean(x, keep):
        """Mean over visible tokens; over all tokens where none is visible."""
        return visible_mean(x, keep)

    def _check_targets(self, y, y_pred):
        """Static check of the targets' shape against the outputs.

        Runs when `fit` / `evaluate` trace their steps, on every backend
        (from `compute_loss` and `compute_metrics`), before the loss or a
        metric sees the targets: the last line of defence for data that
        `fit` cannot check beforehand (generators). Unknown dimensions, or
        an unknown rank, are not checked.
        """
        if y is None or y_pred is None:
            return
        shape, out_shape = _static_shape(y), _static_shape(y_pred)
        if shape is None or out_shape is None:
            return
        self._check_target_shape(shape, out_shape[0], out_shape)

    def _check_target_shape(self, shape, batch, out_shape=None, name="targets"):
        if self.task == "multilabel":
            expected = f"(batch, {self.num_outputs})"
            allowed = [(batch, self.num_outputs)]
            if self.num_outputs == 1:
                allowed.append((batch,))
            what = "one 0/1 (or NaN) column per output"
        else:
            expected = "(batch,) or (batch, 1)"
            allowed = [(batch,), (batch, 1)]
            if not self._sparse_loss():
                expected += f" (class ids) or (batch, {self.num_outputs})"
                allowed.append((batch, self.num_outputs))
            what = "integer class ids"

        def matches(candidate):
            return len(candidate) == len(shape) and all(
                a is None or b is None or a == b for a, b in zip(candidate, shape)
            )

        if not any(matches(candidate) for candidate in allowed):
            outputs = (batch, self.num_outputs) if out_shape is None else out_shape
            raise ValueError(
                f"MultimodalTransformer(task='{self.task}', "
                f"num_outputs={self.num_outputs}) expects targets of shape "
                f"{expected}, {what}; received {name} of shape {shape} "
                f"for outputs of shape {tuple(outputs)}."
            )

    # ------------------------------------------------------------------
    # Checks before the compiled steps: a refusal raised inside a traced
    # step would come as a backend error (TF), after a partial update (TF,
    # after a first fit), or leave the model without weights (JAX).
    # ------------------------------------------------------------------
    def _check_data(self, x, y=None, call="fit", name="x", allow_empty=False):
        """Checks `x` (and `y`) of a call; returns the number of examples,
        or None when it cannot be known without reading the data."""
        spec = _dataset_spec(x) if y is None else None
        if spec is not None:
            x_spec, y_spec = spec
            if isinstance(x_spec, dict):
                self._check_input_arrays(x_spec, call, name, batch_known=False)
            if y_spec is not None and not isinstance(y_spec, (dict, tuple, list)):
                self._check_target_array(y_spec, None, call, "targets of the dataset")
            return None
        if not isinstance(x, dict):
            if _is_array_like(x):
                self._check_inputs(x, what=f"`{call}` {name}")  # raises
            return None  # a generator, PyDataset, DataLoader...: traced checks
        n = self._check_input_arrays(x, call, name)
        if n == 0 and not allow_empty:
            raise ValueError(
                f"MultimodalTransformer.{call}() received 0 examples in `{name}` "
                f"(every modality has shape (0, ...)); pass at least one example."
            )
        if y is not None and _is_array_like(y):
            target_name = "targets `y`" if name == "x" else f"targets of `{name}`"
            self._check_target_array(y, n, call, target_name)
        return n

    def _check_input_arrays(self, x, call, name, batch_known=True):
        values = self._check_inputs(x, what=f"`{call}` {name}")
        sizes = {}
        for modality, value in zip(self.modalities, values):
            kind = _dtype_kind(value)
            if kind not in NUMERIC_KINDS:
                dtype = getattr(value, "dtype", None)
                dtype = np.asarray(value).dtype if dtype is None else dtype
                raise ValueError(
                    f"MultimodalTransformer.{call}(): input '{modality}' of "
                    f"`{name}` must hold numbers (float, int or bool; NaN for "
                    f"missing values); received dtype {dtype}."
                )
            shape = _static_shape(value)
            if shape is None:
                shape = np.shape(value) if batch_known else None
            if shape is None:
                continue
            if batch_known:
                sizes[modality] = shape[0] if shape else None
            self._check_input_shape(modality, shape, call, name)
        known = {m: n for m, n in sizes.items() if n is not None}
        if len(set(known.values())) > 1:
            raise ValueError(
                f"MultimodalTransformer.{call}() expects the same number of "
                f"examples for every modality of `{name}`; received "
                + ", ".join(f"'{m}': {n}" for m, n in known.items())
                + "."
            )
        return next(iter(known.values()), None)

    def _check_input_shape(self, modality, shape, call, name):
        tokenizer = self.tokenizers[modality]
        check = getattr(tokenizer, "_check_input_shape", None)
        if check is not None:
            try:
                check(shape)
            except NotImplementedError:
                check = None
        if check is not None:
            return
        expected = getattr(self, "_input_shapes", {}).get(modality)
        if expected is None:
            return
        if len(shape) != len(expected) or any(
            a is not None and b is not None and a != b
            for a, b in zip(shape[1:], expected[1:])
        ):
            raise ValueError(
                f"MultimodalTransformer.{call}(): input '{modality}' of `{name}` "
                f"must have shape {('batch',) + tuple(expected[1:])} (what the "
                f"model was built for); received shape {shape}."
            )

    def _check_target_array(self, y, n, call, name):
        kind = _dtype_kind(y)
        if kind not in NUMERIC_KINDS:
            dtype = getattr(y, "dtype", None)
            dtype = np.asarray(y).dtype if dtype is None else dtype
            raise ValueError(
                f"MultimodalTransformer.{call}(): {name} must hold numbers "
                "(0/1 or NaN for multilabel, integer class ids for "
                f"multiclass); received dtype {dtype}."
            )
        shape = _static_shape(y)
        if shape is None and _is_array_like(y) and not keras.ops.is_tensor(y):
            shape = np.shape(y)
        if shape is None:
            return
        if n is not None and shape and shape[0] is not None and shape[0] != n:
            raise ValueError(
                f"MultimodalTransformer.{call}(): {name} has {shape[0]} rows "
                f"for {n} examples of inputs; pass one target row per example."
            )
        self._check_target_shape(
            shape, n if shape and n is not None else None, name=name
        )
        if not isinstance(y, (np.ndarray, list)):
            return  # backend tensors: the values are not read here
        y = np.asarray(y)
        if self.task == "multilabel":
            if np.isinf(y).any():
                raise ValueError(
                    f"MultimodalTransformer.{call}(): {name} must be 0/1, or "
                    "NaN where a target is unknown; received infinite values."
                )
        elif self._sparse_loss() and y.size:
            ignore = getattr(self.loss, "ignore_class", None)
            ids = y[y != ignore] if ignore is not None else y.reshape(-1)
            bad = ~np.isfinite(ids) | (ids != np.floor(ids))
            bad |= (ids < 0) | (ids >= self.num_outputs)
            if bad.any():
                raise ValueError(
                    f"MultimodalTransformer.{call}(): {name} must be integer "
                    f"class ids in [0, {self.num_outputs}); received "
                    f"{ids[bad][:5].tolist()}."
                )

    def _check_validation_data(self, validation_data):
        if isinstance(validation_data, (tuple, list)) and len(validation_data) in (
            2,
            3,
        ):
            self._check_data(
                validation_data[0],
                validation_data[1],
                call="fit",
                name="validation_data",
            )
        elif validation_data is not None:
            self._check_data(validation_data, call="fit", name="validation_data")

    def _all_variables(self):
        variables = list(self.variables) + list(self.metrics_variables)
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            variables += list(optimizer.variables)
        return variables

    def _snapshot(self, saved):
        """Records the current value of every variable that has one."""
        for v in self._all_variables():
            if v._value is not None:
                saved[id(v)] = (v, v._value)

    def _keep_state_on_error(self, method, args, kwargs, callbacks_at=None):
        """Runs a Keras call; if it raises, the variables are put back (JAX).

        Keras' JAX trainer moves the variables into the compiled step's
        state (and empties them) before the first step, and writes them
        back only after a step has returned: an error raised inside the
        first step (e.g. by a tokenizer's shape check while tracing) would
        leave the model without weights. Here the state written back is the
        last one a step returned, else the one recorded when the call began
        (after Keras built the model, optimizer and metrics: a callback of
        `fit` / `evaluate` / `predict`), else the one before the call. JAX
        arrays are immutable: recording a value copies nothing. On every
        backend, the next call traces its steps afresh.
        """
        if keras.backend.backend() != "jax":
            try:
                return method(*args, **kwargs)
            except BaseException:
                self._forget_step_functions()
                raise
        saved = {}
        self._snapshot(saved)
        if callbacks_at is not None and len(args) <= callbacks_at:
            callbacks = kwargs.get("callbacks")
            if callbacks is None or isinstance(callbacks, (list, tuple)):
                snapshot = _SnapshotCallback(lambda: self._snapshot(saved))
                kwargs = {**kwargs, "callbacks": [*(callbacks or []), snapshot]}
        try:
            return method(*args, **kwargs)
        except BaseException:
            if getattr(self, "_jax_state", None) and not self._jax_state_synced:
                self.jax_state_sync()
            self._jax_state = None
            self._jax_state_synced = True
            for v, value in saved.values():
                if v._value is None:
                    v.assign(value)
            self._forget_step_functions()
            raise

    def _forget_step_functions(self):
        """After an error: the next call traces its step afresh. (A TF step
        whose first trace raised stays cached, broken: the next `fit` then
        fails with `Attr 'Toutput_types' of 'OptionalFromValue' Op passed
        list of length 0`.)"""
        self.train_function = None
        self.test_function = None
        self.predict_function = None

    # The last argument of `_keep_state_on_error`: the position of
    # `callbacks` in Keras' signature, counting x (and y).
    def fit(self, x=None, y=None, *args, **kwargs):
        validation_data = kwargs.get(
            "validation_data", args[5] if len(args) > 5 else None
        )
        self._check_data(x, y, call="fit")
        self._check_validation_data(validation_data)
        return self._keep_state_on_error(super().fit, (x, y, *args), kwargs, 5)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_data(x, y, call="evaluate")
        return self._keep_state_on_error(super().evaluate, (x, y, *args), kwargs, 6)

    def predict(self, x, *args, **kwargs):
        if self._check_data(x, call="predict", allow_empty=True) == 0:
            return np.zeros((0, self.num_outputs), self.dtype_policy.variable_dtype)
        return self._keep_state_on_error(super().predict, (x, *args), kwargs, 4)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        self._check_data(x, y, call="train_on_batch")
        return self._keep_state_on_error(super().train_on_batch, (x, y, *args), kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        self._check_data(x, y, call="test_on_batch")
        return self._keep_state_on_error(super().test_on_batch, (x, y, *args), kwargs)

    def predict_on_batch(self, x):
        if self._check_data(x, call="predict_on_batch", allow_empty=True) == 0:
            return np.zeros((0, self.num_outputs), self.dtype_policy.variable_dtype)
        return self._keep_state_on_error(super().predict_on_batch, (x,), {})

    def _sparse_loss(self):
        loss = getattr(self, "loss", None)
        if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
            return True
        return isinstance(loss, str) and loss == "sparse_categorical_crossentropy"

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        self._check_targets(y, y_pred)
        return super().compute_loss(
            x, y, y_pred, sample_weight=sample_weight, training=training
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self._check_targets(y, y_pred)
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Configures the model for training, with task defaults.

        Args:
            optimizer: `"auto"` (default) for `AdamW(learning_rate=1e-3,
                weight_decay=0.01)`, or any optimizer `keras.Model.compile`
                accepts.
            loss: `"auto"` (default) for
                `MaskedBinaryCrossentropy(from_logits=True)` (multilabel:
                NaN targets are ignored) or `SparseCategoricalCrossentropy(
                from_logits=True)` (multiclass), or any loss.
            metrics: `"auto"` (default) for `MaskedAUC(multi_label=True,
                from_logits=True)` (multilabel: NaN targets are ignored) or
                `SparseCategoricalAccuracy` (multiclass), or any metrics.
            **kwargs: other `keras.Model.compile` arguments, such as
                `jit_compile`.
        """
        if _is_auto(optimizer):
            optimizer = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)
        multilabel = self.task == "multilabel"
        if _is_auto(loss):
            loss = (
                MaskedBinaryCrossentropy(from_logits=True)
                if multilabel
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            )
        if _is_auto(metrics):
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
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            # The backend the file was saved under: a file loaded under
            # another backend is compiled for the new one.
            config["backend"] = keras.backend.backend()
        return config

    def compile_from_config(self, config):
        config = dict(config)
        saved_backend = config.pop("backend", None)
        if saved_backend != keras.backend.backend():
            # Files of another backend (or of an older keras_miam, which did
            # not record it): `jit_compile` was resolved for that backend
            # (JAX's True means torch.compile under torch), and the optimizer
            # was stored as that backend's class (e.g. TorchAdamW).
            config.pop("jit_compile", None)
            config["optimizer"] = self._portable_optimizer(config.get("optimizer"))
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @staticmethod
    def _portable_optimizer(optimizer):
        """A serialized optimizer as the generic `keras.optimizers` class."""
        if not isinstance(optimizer, dict) or "class_name" not in optimizer:
            return optimizer
        module = str(optimizer.get("module") or "")
        if ".backend." not in module or optimizer.get("registered_name") not in (
            None,
            optimizer["class_name"],
        ):
            return optimizer
        name = optimizer["class_name"]
        for prefix in ("Torch", "Jax", "TF", "Tensorflow"):
            if name.startswith(prefix) and hasattr(
                keras.optimizers, name[len(prefix) :]
            ):
                name = name[len(prefix) :]
                break
        if not hasattr(keras.optimizers, name):
            return optimizer
        return {**optimizer, "module": "keras.optimizers", "class_name": name}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizers": {
                    name: keras.saving.serialize_keras_object(tokenizer)
                    for name, tokenizer in self.tokenizers.items()
                },
                "num_outputs": self.num_outputs,
                "task": self.task,
                "strategy": self.masking.get_config()["strategy"],
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "pooling": self.pooling,
                "seed": self.seed,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_tokenizers(config))


def deserialize_tokenizers(config):
    """A copy of a model's config with its `tokenizers` deserialized.

    The `from_config` of `MultimodalTransformer` and `MultimodalPretrainer`,
    whose configs hold `{modality: serialized tokenizer}`.
    """
    config = dict(config)
    config["tokenizers"] = {
        name: keras.saving.deserialize_keras_object(tokenizer)
        for name, tokenizer in config["tokenizers"].items()
    }
    return config
