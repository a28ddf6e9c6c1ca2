"""The ModalityDynamics callback: unimodal validation scores -> masking state."""

import contextlib
import time
import warnings

import keras
import numpy as np

from keras_miam.evaluation import metrics
from keras_miam.utils import model_utils

# Keras metrics where lower is better: a score s_m must grow with quality.
_ERROR_METRICS = tuple(
    getattr(keras.metrics, name)
    for name in (
        "MeanSquaredError",
        "MeanAbsoluteError",
        "MeanAbsolutePercentageError",
        "MeanSquaredLogarithmicError",
        "RootMeanSquaredError",
        "LogCoshError",
        "Hinge",
        "SquaredHinge",
        "CategoricalHinge",
        "BinaryCrossentropy",
        "CategoricalCrossentropy",
        "SparseCategoricalCrossentropy",
        "KLDivergence",
        "Poisson",
    )
    if hasattr(keras.metrics, name)
)
_TASK_ALIASES = {
    "multilabel": "multilabel",
    "multi_label": "multilabel",
    "binary": "multilabel",
    "multiclass": "multiclass",
    "multi_class": "multiclass",
    "classification": "multiclass",
    "regression": "regression",
}
_ACCURACY_NAMES = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "binary_accuracy": "binary_accuracy",
    "categorical_accuracy": "categorical_accuracy",
    "sparse_categorical_accuracy": "sparse_categorical_accuracy",
}


class ModalityDynamics(keras.callbacks.Callback):
    """Measures each modality's validation score and updates MIAM's masking.

    At the end of an epoch, for every modality m, the callback measures s_m,
    the model's metric on the validation data with only modality m visible
    (every other modality is replaced by mask tokens), derives
    d_m = |d s_m / d epoch| from the history of s_m, and calls
    `MIAMMasking.update_dynamics(s, d)`. Strategies that read these
    dynamics (`"miam"`: r_m = rho_s,m / rho_d,m; `"opm"`: the score ratios)
    then mask dominant modalities more from the next epoch on.

    Measuring is cheap in passes: each validation batch of b examples is
    tiled M times and read by `MIAMMasking.views()` as M blocks, block m
    seeing modality m only, so one compiled forward pass (of M * b
    examples) per batch scores every modality. The validation arrays are
    read and cached once, at the start of training.

    Derivative. d_m is the absolute least-squares slope of the last
    `smoothing` scores of modality m against the epoch (per epoch, so
    divided by `every`); with two scores it is the plain finite difference.
    Scores and derivatives are floored at `epsilon`, so they stay strictly
    positive and a plateau (changes below `epsilon` per epoch) reads as
    `epsilon`. The score history lives in the layer
    (`MIAMMasking.dynamics_history()`), so a model that is saved and
    reloaded, or restored by `keras.callbacks.BackupAndRestore`, continues
    with the same dynamics.

    Warm-up. The dynamics are activated (r_m may differ from 1) at the end
    of the first measured epoch `epoch` with `epoch + 1 >= warmup_epochs`
    for which at least two scores exist; the next epoch trains with them.
    Scores measured before are stored in the layer's history (they feed the
    first derivative), but the layer is left inactive, so MIAM uses
    r_m = 1 (the Beta hypercube) and OPM drops nothing. While a single score
    exists, the stored derivative is `epsilon`. A layer that was already
    active (a resumed run) stays active.

    Updates happen at the end of epochs with `epoch % every == 0`, and at
    the end of the first epoch if the layer holds no scores yet.

    Metric. s_m must be > 0 and grow with quality. With `metric=None` the
    head is inspected (a `task` attribute such as
    `MultimodalTransformer.task`, else the compiled loss, else the output
    activation, else the outputs themselves): multi-label / binary heads get
    `"auc"` (exact, rank-based, macro-averaged over the outputs that have
    both positives and negatives in the validation data, so species absent
    from it are skipped; NaN labels, e.g. species not surveyed at a site,
    are left out of their output's AUC), softmax / multi-class heads get
    `"accuracy"`
    (top-1); `"accuracy"` on a multi-label head is the binary accuracy over
    all outputs. Outputs may be logits: AUC ranks, accuracy uses the argmax,
    or a threshold of 0 instead of 0.5 when the compiled loss has
    `from_logits=True`. `metric="loss"` uses the compiled loss instead, as
    s_m = 1 / (1 + loss_m) (in (0, 1], higher is better, no underflow for
    large losses), for tasks without a classification metric. Any other
    name or a `keras.metrics.Metric` instance (e.g.
    `keras.metrics.AUC(multi_label=True, from_logits=True)`) is computed with
    a fresh copy per modality; it must be "higher is better" (error metrics
    such as `MeanSquaredError` are refused: use `"loss"`).

    Logs. At every epoch (also without an update, and during warm-up: the
    current values), the epoch `logs` receive, per modality m,
    `val_<m>_<metric>` (s_m), `<m>_mask_ratio` (the strategy's ratio in force
    for the next epoch: MIAM's r_m, OPM's rho_m, 1 for static strategies)
    and `<m>_score_derivative` (d_m). `History` and the progress bar, which
    `fit` appends after your callbacks, show them; put this callback before
    `CSVLogger`, `TensorBoard`, `EarlyStopping` or `BackupAndRestore` in
    the `callbacks` list so they see the new values too.

    Errors. Bad input raises a `ValueError` before the first train step: at
    construction (no labels, sample weights, an unknown or lower-is-better
    metric) or in `on_train_begin` (no `MIAMMasking` in the model, several
    and none named, validation inputs that do not match the model's, labels
    the metric cannot use, e.g. AUC or accuracy on a regression head).

    Backends. Everything runs inside `fit` on TensorFlow, JAX and PyTorch
    with compiled steps: the masking state is in variables that the train
    step reads, and the callback touches `self.model` before reading or
    assigning them (the JAX trainer keeps its state outside the variables
    during `fit`).

    Args:
        validation_data: a tuple `(x, y)` (x an array, a list or a dict of
            arrays, as the model takes them), or a dataset of `(x, y)`
            batches (`tf.data.Dataset`, `keras.utils.PyDataset`, ...), read
            once at the start of training.
        metric: None (chosen from the head, see above), a name (`"auc"`,
            `"accuracy"`, `"binary_accuracy"`, `"categorical_accuracy"`,
            `"sparse_categorical_accuracy"`, `"loss"`, or any name
            `keras.metrics.get` knows), a `keras.metrics.Metric` instance or
            a function `fn(y_true, y_pred)`.
        masking: the `MIAMMasking` layer to drive: None (the model's only
            one, found recursively, nested models included), a layer name,
            or an instance.
        every: measure every `every` epochs. Defaults to 1.
        warmup_epochs: number of initial epochs trained with r_m = 1.
            Defaults to 0 (the first two measured epochs are still needed
            for a derivative).
        max_validation_samples: optional cap on the validation examples
            used; a larger set is subsampled once, with `seed` (the same
            examples at every epoch, so score changes are not sampling
            noise).
        smoothing: number of most recent scores the slope is fitted to,
            >= 2. Defaults to 3 (the mean of the last two differences).
        epsilon: floor of the scores and derivatives, > 0. Defaults to
            1e-3.
        batch_size: examples per forward pass: each pass scores
            `batch_size // M` validation examples under each of the M
            single-modality views (tiled copies). Defaults to 256.
        seed: seed of the `max_validation_samples` subsample. Defaults to 0.
        verbose: 0 (silent) or 1 (one line per update). Defaults to 0.

    Example:

    ```python
    model = km.models.MultimodalTransformer(tokenizers, num_outputs=100)
    model.compile()
    history = model.fit(
        x_train, y_train, epochs=20,
        callbacks=[km.ModalityDynamics(validation_data=(x_val, y_val))],
    )
    history.history["val_image_auc"]      # s_image per epoch
    history.history["image_mask_ratio"]   # r_image per epoch
    model.masking.dynamics_state()        # stored scores, derivatives, history
    ```

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026.
    """

    def __init__(
        self,
        validation_data,
        metric=None,
        masking=None,
        every=1,
        warmup_epochs=0,
        max_validation_samples=None,
        smoothing=3,
        epsilon=1e-3,
        batch_size=256,
        seed=0,
        verbose=0,
    ):
        super().__init__()
        model_utils.check_xy(validation_data, "`validation_data`")
        self.validation_data = validation_data
        self.metric = metric
        self._metric_spec = _resolve_metric(metric)
        self.masking = masking
        self.every = _check_int(every, "every", 1)
        self.warmup_epochs = _check_int(warmup_epochs, "warmup_epochs", 0)
        self.max_validation_samples = (
            None
            if max_validation_samples is None
            else _check_int(max_validation_samples, "max_validation_samples", 1)
        )
        self.smoothing = _check_int(smoothing, "smoothing", 2)
        epsilon = float(epsilon)
        if not (epsilon > 0 and np.isfinite(epsilon)):
            raise ValueError(
                f"`epsilon` must be a finite number > 0; received {epsilon}."
            )
        self.epsilon = epsilon
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.seed = seed
        if verbose not in (0, 1, True, False):
            raise ValueError(f"`verbose` must be 0 or 1; received {verbose!r}.")
        self.verbose = int(verbose)
        self._x = None
        self._y = None
        self._layer = None
        self._scorer = None
        self.metric_name = None
        self.last_update_seconds = None

    # ------------------------------------------------------------------
    # The derivative estimate.
    # ------------------------------------------------------------------
    def estimate_derivatives(self, history):
        """d_m from a score history: |least-squares slope| per epoch, >= eps.

        Args:
            history: (n, M) scores, oldest first, measured every `every`
                epochs.

        Returns:
            (M,) float64: the absolute slope of the last `smoothing` scores
            of each modality against the epoch, floored at `epsilon`;
            `epsilon` everywhere when fewer than two scores exist.
        """
        history = np.asarray(history, dtype="float64")
        if history.ndim != 2:
            raise ValueError(
                f"`history` must be (n, M); received shape {history.shape}."
            )
        if history.shape[0] < 2:
            return np.full(history.shape[1], self.epsilon)
        window = history[-self.smoothing :]
        t = np.arange(len(window), dtype="float64") * self.every
        t -= t.mean()
        slope = t @ (window - window.mean(axis=0)) / np.sum(t * t)
        return np.maximum(np.abs(slope), self.epsilon)

    # ------------------------------------------------------------------
    # Callback hooks.
    # ------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        # JAX: accessing `self.model` syncs the trainer state into the
        # variables, before anything reads or assigns them.
        model = self.model
        layer = model_utils.get_masking_layer(model, self.masking)
        if self._x is None:
            self._x, self._y = model_utils.collect_examples(
                self.validation_data,
                max_examples=self.max_validation_samples,
                seed=self.seed,
                what="`validation_data`",
            )
        x, y = self._x, self._y
        _check_input_structure(model, x)
        if layer.history_size < self.smoothing:
            raise ValueError(
                f"`smoothing={self.smoothing}` needs the layer to keep at least "
                f"that many scores; its history_size is {layer.history_size}."
            )
        try:
            if not layer.built:
                model.predict_on_batch(model_utils.take_examples(x, slice(0, 1)))
            # The first tiled forward pass: checks the inputs, compiles the
            # pass used at every update, and gives outputs to check the metric.
            batches = model_utils.iter_view_predictions(
                model,
                x,
                layer.modalities,
                masking=layer,
                batch_size=self.batch_size,
            )
            with contextlib.closing(batches):  # resets the views
                _, start, stop, probe = next(batches)
        except Exception as error:
            raise ValueError(
                "ModalityDynamics could not run the model on "
                f"`validation_data` ({type(error).__name__}: {error}). Check "
                "that its inputs match the model's inputs."
            ) from error
        outputs = [_single_output(block) for block in probe]
        if not all(np.all(np.isfinite(output)) for output in outputs):
            raise ValueError(
                "The model's predictions on `validation_data` (first batch, "
                "one modality visible at a time) are not finite."
            )
        self._scorer = _make_scorer(self._metric_spec, model, y, outputs[0])
        # The metric must give a finite value on the probe batch.
        for output in outputs:
            value = self._scorer.probe(y[start:stop], output)
            if not np.isfinite(value):
                raise ValueError(
                    f"The metric '{self._scorer.name}' is not finite on the "
                    "validation data (first batch); check the labels and the "
                    "model's outputs."
                )
        self._layer = layer
        self.metric_name = self._scorer.name

    def on_epoch_end(self, epoch, logs=None):
        # JAX: touch `self.model` before reading or assigning variables, or
        # the new dynamics are silently lost.
        model = self.model
        layer = self._layer
        state = layer.dynamics_state()
        if state["num_updates"] == 0 or epoch % self.every == 0:
            start = time.perf_counter()
            raw = self._measure(model)
            self.last_update_seconds = time.perf_counter() - start
            if np.all(np.isfinite(raw)):
                # float32, as stored: the history read back later is exact.
                scores = np.maximum(raw, self.epsilon).astype("float32")
                history = np.concatenate(
                    [layer.dynamics_history(), scores[None]], axis=0
                )
                derivatives = self.estimate_derivatives(history)
                active = state["num_updates"] + 1 >= 2 and (
                    state["ready"] or epoch + 1 >= self.warmup_epochs
                )
                # While warming up, r_m = 1 (and OPM idles); the score is
                # still kept in the history for the derivative.
                layer.update_dynamics(scores, derivatives, ready=active)
                if self.verbose:
                    self._print_update(epoch, layer, active)
            else:
                warnings.warn(
                    f"Epoch {epoch + 1}: ModalityDynamics measured non-finite "
                    f"scores {dict(zip(layer.modalities, raw.tolist()))}; the "
                    "masking state is left unchanged.",
                    stacklevel=2,
                )
        if logs is not None:
            logs.update(self._current_logs(layer))

    # ------------------------------------------------------------------
    # Internals.
    # ------------------------------------------------------------------
    def _measure(self, model):
        """s_m for every modality: one tiled forward pass per batch."""
        layer = self._layer
        accumulators = [self._scorer.accumulator() for _ in layer.modalities]
        batches = model_utils.iter_view_predictions(
            model,
            self._x,
            layer.modalities,
            masking=layer,
            batch_size=self.batch_size,
        )
        with contextlib.closing(batches):  # the views are reset on errors too
            for views, start, stop, blocks in batches:
                for view, block in zip(views, blocks):
                    accumulators[view].update(start, stop, _single_output(block))
        return np.array([acc.result() for acc in accumulators], "float64")

    def _current_logs(self, layer):
        state = layer.dynamics_state()
        ratios = layer.mask_ratios()
        logs = {}
        for i, name in enumerate(layer.modalities):
            logs[f"val_{name}_{self.metric_name}"] = float(state["scores"][i])
            logs[f"{name}_mask_ratio"] = float(ratios[i])
            logs[f"{name}_score_derivative"] = float(state["derivatives"][i])
        return logs

    def _print_update(self, epoch, layer, active):
        state = layer.dynamics_state()
        ratios = layer.mask_ratios()
        scores = ", ".join(
            f"{m}={s:.4f}" for m, s in zip(layer.modalities, state["scores"])
        )
        derivs = ", ".join(
            f"{m}={d:.2g}" for m, d in zip(layer.modalities, state["derivatives"])
        )
        r = ", ".join(f"{m}={v:.3f}" for m, v in zip(layer.modalities, ratios))
        phase = "" if active else " (warm-up: ratios held at 1)"
        print(
            f"\nEpoch {epoch + 1}: ModalityDynamics val_{self.metric_name} "
            f"{scores}; derivative {derivs}; mask ratio {r}{phase} "
            f"[{self.last_update_seconds:.2f}s]"
        )


# ----------------------------------------------------------------------------
# Checks.
# ----------------------------------------------------------------------------
def _check_int(value, name, low):
    if isinstance(value, bool) or int(value) != value or int(value) < low:
        raise ValueError(f"`{name}` must be an int >= {low}; received {value!r}.")
    return int(value)


def _check_input_structure(model, x):
    """Compares the validation inputs with a functional model's inputs."""
    try:
        spec = model.input
    except (AttributeError, ValueError):
        return  # subclassed model: the probe forward pass checks the inputs
    if isinstance(spec, dict):
        if not isinstance(x, dict):
            raise ValueError(
                "The model takes a dict of inputs with the keys "
                f"{sorted(spec)}; `validation_data` x is a "
                f"{type(x).__name__}."
            )
        missing = sorted(set(spec) - set(x))
        extra = sorted(set(x) - set(spec))
        if missing or extra:
            raise ValueError(
                "The inputs of `validation_data` do not match the model's "
                f"inputs {sorted(spec)}: missing {missing}, unexpected {extra}."
            )
    elif isinstance(spec, (list, tuple)) and len(spec) > 1:
        if isinstance(x, dict):
            names = [getattr(t, "name", None) for t in spec]
            if set(x) != set(names):
                raise ValueError(
                    f"The model takes the inputs {names}; `validation_data` x "
                    f"has the keys {sorted(x)}."
                )
        elif not isinstance(x, (list, tuple)) or len(x) != len(spec):
            raise ValueError(
                f"The model takes {len(spec)} inputs; `validation_data` x is "
                + (
                    f"a {type(x).__name__} of {len(x)}."
                    if isinstance(x, (list, tuple))
                    else f"a single {type(x).__name__}."
                )
            )


def _single_output(outputs):
    leaves = keras.tree.flatten(outputs)
    if len(leaves) != 1:
        raise ValueError(
            "ModalityDynamics scores single-output models; this model "
            f"returns {len(leaves)} outputs."
        )
    return np.asarray(leaves[0])


# ----------------------------------------------------------------------------
# The head: task and output kind.
# ----------------------------------------------------------------------------
def _compiled_loss(model):
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict) and len(loss) == 1:
        loss = next(iter(loss.values()))
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    return loss


def _loss_name(loss):
    if loss is None:
        return ""
    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)  # "mse" -> mean_squared_error
        except ValueError:
            return loss.lower()
        if loss is None:
            return ""
    fn = getattr(loss, "fn", None)
    if fn is not None and hasattr(fn, "__name__"):
        return fn.__name__.lower()
    if isinstance(loss, keras.losses.Loss):
        return str(loss.name).lower()
    return str(getattr(loss, "__name__", "")).lower()


def _output_activation(model):
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1:
        return None
    layer = model.layers[-1] if model.layers else None
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def _infer_head(model, outputs):
    """(task, from_logits): task in multilabel / multiclass / regression / None."""
    loss = _compiled_loss(model)
    name = _loss_name(loss)
    from_logits = None
    if isinstance(loss, keras.losses.Loss):
        from_logits = loss.get_config().get("from_logits")
    elif "crossentropy" in name:
        from_logits = False
    activation = _output_activation(model)
    if from_logits is None and activation in ("sigmoid", "softmax"):
        from_logits = False

    task = _TASK_ALIASES.get(str(getattr(model, "task", "")).lower())
    if task is None and name:
        if "binary" in name and "crossentropy" in name:
            task = "multilabel"
        elif "categorical" in name and "crossentropy" in name:
            task = "multiclass"
        elif any(
            key in name
            for key in ("squared", "absolute", "huber", "log_cosh", "logcosh")
        ):
            task = "regression"
    if task is None and activation == "sigmoid":
        task = "multilabel"
    if task is None and activation == "softmax":
        task = "multiclass"
    in_unit = bool(np.all((outputs >= 0) & (outputs <= 1)))
    if task is None and in_unit:
        rows_sum_to_one = (
            outputs.ndim == 2
            and outputs.shape[-1] > 1
            and bool(np.allclose(outputs.sum(-1), 1.0, atol=1e-3))
        )
        task = "multiclass" if rows_sum_to_one else "multilabel"
    if from_logits is None and in_unit:
        from_logits = False
    return task, from_logits


def _binary_labels(y, outputs, metric, allow_nan=False):
    """0/1 labels shaped like the 2-D outputs, or a ValueError.

    With `allow_nan` (AUC), NaN labels (unobserved) are kept: float labels
    are returned; otherwise booleans.
    """
    y = np.asarray(y)
    width = outputs.shape[-1] if outputs.ndim == 2 else 1
    if y.ndim == 1 and width == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != width:
        raise ValueError(
            f"The metric '{metric}' compares 0/1 labels with the "
            f"{width} outputs of the model; the labels have shape "
            f"{y.shape}."
        )
    unobserved = np.isnan(y) if np.issubdtype(y.dtype, np.floating) else False
    if np.any(unobserved) and not allow_nan:
        raise ValueError(
            f"The metric '{metric}' needs 0/1 labels; the validation labels "
            "hold NaN (unobserved entries), which only metric='auc' (the "
            "default for multi-label heads) leaves out."
        )
    if not np.all(np.isin(y[~unobserved], (0, 1))):
        raise ValueError(
            f"The metric '{metric}' needs 0/1 labels; the validation labels "
            f"hold other values (e.g. {np.unique(y)[:5].tolist()}). For a "
            "regression head use metric='loss'."
        )
    return y.astype("float64") if allow_nan else y.astype(bool)


def _class_labels(y, outputs, metric):
    """Integer class ids (N,) for a multi-class head, or None if not that."""
    y = np.asarray(y)
    width = outputs.shape[-1]
    if y.ndim == 2 and y.shape[1] == width and width > 1:
        if np.all(np.isin(y, (0, 1))) and np.all(y.sum(1) == 1):
            return np.argmax(y, axis=1)
        return None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        return None
    if not np.all(np.equal(np.mod(y, 1), 0)) or np.any(y < 0) or np.any(y >= width):
        raise ValueError(
            f"The metric '{metric}' needs integer class ids in [0, {width}) "
            f"(or one-hot labels); the validation labels hold "
            f"{np.unique(y)[:5].tolist()}..."
        )
    return y.astype("int64")


# ----------------------------------------------------------------------------
# Scorers: one accumulator per modality, filled batch by batch.
# ----------------------------------------------------------------------------
class _Scorer:
    """One score from the validation labels and predictions, batch by batch.

    `prepare(y, outputs)` turns labels into the form the accumulator reads
    (checking them); `accumulator(labels)` returns an object with
    `update(start, stop, outputs)` (the predictions of examples
    [start, stop), in order) and `result()`.
    """

    def __init__(self, name, y, outputs, prepare=None):
        self.name = name
        if prepare is not None:
            self.prepare = prepare
        self.labels = self.prepare(y, outputs)

    def prepare(self, y, outputs):
        return y

    def accumulator(self, labels=None):
        raise NotImplementedError

    def probe(self, y, outputs):
        """The score of one batch (checks that it can be computed)."""
        acc = self.accumulator(self.prepare(y, outputs))
        acc.update(0, len(outputs), outputs)
        return acc.result()


class _AUCScorer(_Scorer):
    def probe(self, y, outputs):
        # A single batch may lack positives; check the labels only.
        self.prepare(y, outputs)
        return 0.0

    def accumulator(self, labels=None):
        labels = self.labels if labels is None else labels
        parts = []

        class Accumulator:
            def update(self, start, stop, outputs):
                parts.append(np.asarray(outputs).reshape(stop - start, -1))

            def result(self):
                return metrics.macro_auc(labels, np.concatenate(parts, axis=0))

        return Accumulator()


class _AccuracyScorer(_Scorer):
    def __init__(self, name, y, outputs, prepare, threshold=None):
        # threshold None: argmax against class ids; else thresholded 0/1.
        self.threshold = threshold
        super().__init__(name, y, outputs, prepare)

    def accumulator(self, labels=None):
        labels = self.labels if labels is None else labels
        threshold = self.threshold
        counts = [0.0, 0]

        class Accumulator:
            def update(self, start, stop, outputs):
                if threshold is not None:
                    hit = (outputs.reshape(stop - start, -1) > threshold) == (
                        labels[start:stop]
                    )
                else:
                    hit = np.argmax(outputs, axis=-1) == labels[start:stop]
                counts[0] += float(np.sum(hit))
                counts[1] += hit.size

            def result(self):
                return counts[0] / counts[1]

        return Accumulator()


class _LossScorer(_Scorer):
    def __init__(self, loss, y, outputs):
        self.loss = loss
        super().__init__("loss_score", y, outputs)

    def per_example(self, y, outputs):
        y = keras.ops.convert_to_tensor(y)
        outputs = keras.ops.convert_to_tensor(outputs, "float32")
        if isinstance(self.loss, keras.losses.Loss):
            values = self.loss.call(y, outputs)  # unreduced
        else:
            values = self.loss(y, outputs)
        return np.asarray(keras.ops.convert_to_numpy(values), "float64")

    def accumulator(self, labels=None):
        y = self.labels if labels is None else labels
        per_example = self.per_example
        totals = [0.0, 0]

        class Accumulator:
            def update(self, start, stop, outputs):
                values = per_example(y[start:stop], outputs)
                totals[0] += float(np.sum(values))
                totals[1] += values.size

            def result(self):
                loss = totals[0] / totals[1]
                if loss < 0:
                    raise ValueError(
                        "metric='loss' needs a loss >= 0 (the score is "
                        f"1 / (1 + loss)); the compiled loss gives {loss}."
                    )
                return 1.0 / (1.0 + loss)

        return Accumulator()


class _KerasMetricScorer(_Scorer):
    def __init__(self, metric, y, outputs):
        self.metric = metric
        super().__init__(metric.name, y, outputs)

    def _fresh(self):
        try:
            return type(self.metric).from_config(self.metric.get_config())
        except Exception as error:
            raise ValueError(
                f"Could not copy the metric {self.metric!r} (one fresh copy "
                "per modality is needed): its `from_config(get_config())` "
                f"fails with {type(error).__name__}: {error}"
            ) from error

    def accumulator(self, labels=None):
        y = self.labels if labels is None else labels
        metric = self._fresh()

        class Accumulator:
            def update(self, start, stop, outputs):
                metric.update_state(y[start:stop], outputs)

            def result(self):
                return float(keras.ops.convert_to_numpy(metric.result()))

        return Accumulator()


def _resolve_metric(metric):
    """Checks `metric` without the model.

    Returns:
        ("builtin", name or None), ("loss", None) or ("keras", Metric).
    """
    if metric is None:
        return "builtin", None
    if isinstance(metric, str):
        name = metric.lower()
        if name == "loss":
            return "loss", None
        if name == "auc" or name in _ACCURACY_NAMES:
            return "builtin", _ACCURACY_NAMES.get(name, name)
        try:
            metric = keras.metrics.get(metric)
        except ValueError as error:
            raise ValueError(
                f"Unknown metric {metric!r} for ModalityDynamics: {error}"
            ) from error
    if isinstance(metric, type) and issubclass(metric, keras.metrics.Metric):
        metric = metric()
    if not isinstance(metric, keras.metrics.Metric):
        if not callable(metric):
            raise ValueError(
                "`metric` must be None, a name, a keras.metrics.Metric or a "
                f"function; received {metric!r}."
            )
        metric = keras.metrics.MeanMetricWrapper(
            metric, name=getattr(metric, "__name__", "metric")
        )
    if _ERROR_METRICS and isinstance(metric, _ERROR_METRICS):
        raise ValueError(
            f"The metric '{metric.name}' is an error (lower is better); a "
            "modality score must grow with quality. Use metric='loss' "
            "(score 1 / (1 + loss)) or a higher-is-better metric."
        )
    return "keras", metric


def _make_scorer(spec, model, y, outputs):
    """Resolves a `_resolve_metric` spec against the model's head and labels.

    `outputs` are the model's predictions on the first validation batch.
    """
    kind, metric = spec
    outputs = np.asarray(outputs)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if kind == "keras":
        return _KerasMetricScorer(metric, y, outputs)
    if kind == "loss":
        loss = _compiled_loss(model)
        if loss is None or isinstance(loss, (dict, list, tuple)):
            raise ValueError(
                "metric='loss' uses the compiled loss of a single-output "
                f"model; the model's loss is {loss!r}. Compile the model "
                "with a loss, or pass a metric."
            )
        if isinstance(loss, str):
            loss = keras.losses.get(loss)
        return _LossScorer(loss, y, outputs)
    task, from_logits = _infer_head(model, outputs)
    if metric is None:
        if task == "multilabel":
            metric = "auc"
        elif task == "multiclass":
            metric = "accuracy"
        else:
            raise ValueError(
                "ModalityDynamics could not choose a metric for this "
                + ("regression head" if task == "regression" else "head")
                + " (AUC needs a sigmoid / multi-label head, accuracy a "
                "softmax / multi-class head); pass `metric=`, e.g. "
                "metric='loss'."
            )
    return _builtin_scorer(metric, task, from_logits, y, outputs)


def _builtin_scorer(name, task, from_logits, y, outputs):
    if outputs.ndim != 2:
        raise ValueError(
            f"The metric '{name}' is computed on (batch, outputs) "
            f"predictions; the model returns shape {outputs.shape}. Pass a "
            "keras.metrics.Metric instance instead."
        )
    if name == "auc":
        # One-vs-rest for a multi-class head with class-id labels.
        one_vs_rest = (
            task == "multiclass"
            and outputs.shape[-1] > 1
            and _class_labels(y, outputs, name) is not None
        )

        def prepare(y_, o_):
            if one_vs_rest:
                ids = _class_labels(y_, o_, name)
                return np.eye(o_.shape[-1])[ids]
            return _binary_labels(y_, o_, name, allow_nan=True)

        scorer = _AUCScorer("auc", y, outputs, prepare)
        if not np.any(
            np.any(scorer.labels == 1, axis=0) & np.any(scorer.labels == 0, axis=0)
        ):
            raise ValueError(
                "metric 'auc' needs, for at least one output, both positive "
                "and negative examples in `validation_data`; none has both."
            )
        return scorer

    if name == "accuracy" and task == "regression":
        raise ValueError(
            "metric 'accuracy' needs a classification head; this head is a "
            "regression (its compiled loss is an error). Use metric='loss'."
        )
    if name == "accuracy" and task is None:
        raise ValueError(
            "metric 'accuracy': could not tell whether the head is "
            "multi-label (sigmoid) or multi-class (softmax); pass "
            "'binary_accuracy' or 'categorical_accuracy'."
        )
    if name == "binary_accuracy" or (name == "accuracy" and task != "multiclass"):
        if from_logits is None:
            raise ValueError(
                f"metric '{name}' thresholds probabilities, but the model's "
                "outputs are outside [0, 1] and its compiled loss does not "
                "say `from_logits=True`: there is no threshold to use. Use a "
                "sigmoid output or a from_logits loss, or metric='auc'."
            )

        def prepare(y_, o_):
            return _binary_labels(y_, o_, name)

        return _AccuracyScorer(
            name, y, outputs, prepare, threshold=0.0 if from_logits else 0.5
        )

    if outputs.shape[-1] < 2:
        raise ValueError(
            f"metric '{name}' takes the argmax of several class outputs; the "
            "model has a single output. Use 'binary_accuracy' or 'auc'."
        )

    def prepare(y_, o_):
        ids = _class_labels(y_, o_, name)
        if ids is None:
            raise ValueError(
                f"metric '{name}' needs integer class ids or one-hot labels; "
                f"the validation labels have shape {np.shape(y_)}."
            )
        return ids

    return _AccuracyScorer(name, y, outputs, prepare)
