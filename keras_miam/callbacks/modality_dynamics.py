"""The ModalityDynamics callback: unimodal validation scores -> masking state."""

import contextlib
import sys
import time
import warnings

import keras
import numpy as np

from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation import metrics as metrics_lib
from keras_miam.evaluation import view_predictions
from keras_miam.layers import masking_lookup

NOISE_SCORES = 6  # Scores the noise estimate reads (4 second differences).
TOP1_NAMES = ("accuracy", "categorical_accuracy", "sparse_categorical_accuracy")
LOSS_NAMES = ("loss", "loss_score")


class ModalityDynamics(keras.callbacks.Callback):
    """Measures each modality's validation score and updates MIAM's masking.

    At the end of every `every`-th epoch, for every modality m, the callback
    measures the metric on `validation_data` with only m visible, turns it
    into the score s_m and the derivative d_m = |d s_m / d epoch| (the
    slope of the last `smoothing` scores), and calls
    `MIAMMasking.update_dynamics(s, d)`: MIAM then masks a modality with a
    high, stable score more. As published, s_m is the raw metric and d_m is
    floored at `epsilon`; `chance` and `noise_floor` read a modality stuck
    near chance as weak rather than stable.

    Logs `val_<m>_<metric>` (the raw metric), `<m>_mask_ratio` (MIAM's r_m,
    OPM's rho_m, 1 for static strategies), `<m>_score_derivative` (d_m) and
    `<m>_score_noise` (sigma_m). The callback moves itself first in `fit`'s
    callback list, so that every other callback sees these keys.

    Args:
        validation_data: `(x, y)` arrays or a dataset of `(x, y)` batches,
            read once at the start of training (a dict of inputs with
            `metric="reconstruction"`).
        metric: None (AUC for multi-label heads, top-1 accuracy for
            multi-class heads), a name, `"loss"`, a `keras.metrics.Metric`
            or a function `fn(y_true, y_pred)`; higher is better.
        masking: the `MIAMMasking` layer: None (the model's only one), a
            name or an instance.
        every: measure every `every` epochs. Defaults to 1.
        warmup_epochs: initial epochs trained with r_m = 1. Defaults to 0.
        max_validation_samples: optional cap on the validation examples.
        smoothing: scores in the slope window, >= 2. Defaults to 3.
        epsilon: floor of scores and derivatives, > 0. Defaults to 1e-3.
        batch_size: examples per forward pass. Defaults to 256.
        seed: seed of the validation subsample. Defaults to 0.
        verbose: 0 or 1 (one line per update).
        ema_decay: None, or in (0, 1): d_m from an EMA of the differences.
        chance: None (the raw metric), `"auto"` or the metric's chance
            level: s_m = (metric - chance) / (1 - chance). `"auto"`: 0.5 for
            AUC, 1/K for top-1 accuracy over K classes, the label prior's
            loss for `"loss"`. Defaults to None.
        noise_floor: floor s_m at the score's noise sigma_m (from second
            differences of recent scores) and d_m at the slope's standard
            error. Defaults to False.
        mode: `"auto"` (the metric's direction, as
            `keras.callbacks.EarlyStopping` infers it) or `"max"`.
        from_logits: whether the model outputs logits. Defaults to None:
            read from the compiled loss.

    Example:

    ```python
    model.fit(
        x_train, y_train, epochs=20,
        callbacks=[keras_miam.ModalityDynamics(validation_data=(x_val, y_val))],
    )
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
        ema_decay=None,
        chance=None,
        noise_floor=False,
        mode="auto",
        from_logits=None,
    ):
        super().__init__()
        if isinstance(validation_data, dict) and metric == "reconstruction":
            # Inputs without labels: a pre-trainer scores its reconstruction.
            size = len(next(iter(validation_data.values()), ()))
            validation_data = (validation_data, np.zeros((size, 0), "float32"))
        data_lib.check_xy(validation_data, "`validation_data`")
        direction = metrics_lib.metric_direction(metric, mode)
        if direction != "max":
            what = "an error (lower is better)" if direction else "of unknown direction"
            raise ValueError(
                "ModalityDynamics needs a score that grows with quality; the "
                f"metric {metric!r} is {what}. Use metric='loss' (score "
                "1 / (1 + loss)), a higher-is-better metric, or mode='max' for "
                "a function that grows with quality."
            )
        if not (_is_number(epsilon) and 0 < epsilon < np.inf):
            _refuse("epsilon", epsilon, "a finite number > 0")
        if not (ema_decay is None or _is_number(ema_decay) and 0 < ema_decay < 1):
            _refuse("ema_decay", ema_decay, "None or a number in (0, 1)")
        if not (chance in (None, "auto") or _is_number(chance) and chance < 1):
            _refuse("chance", chance, "None, 'auto' or a number below 1")
        if verbose not in (0, 1):
            _refuse("verbose", verbose, "0 or 1")
        if noise_floor not in (True, False):
            _refuse("noise_floor", noise_floor, "a bool")
        self.validation_data = validation_data
        self.metric = metric
        self.masking = masking
        self.every = _int(every, "every", 1)
        self.warmup_epochs = _int(warmup_epochs, "warmup_epochs", 0)
        self.max_validation_samples = (
            None
            if max_validation_samples is None
            else _int(max_validation_samples, "max_validation_samples", 1)
        )
        self.smoothing = _int(smoothing, "smoothing", 2)
        self.epsilon = float(epsilon)
        self.batch_size = _int(batch_size, "batch_size", 1)
        self.seed = seed
        self.verbose = int(verbose)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.chance = chance
        self.noise_floor = bool(noise_floor)
        self.from_logits = from_logits
        self._x = self._raw = self._layer = self._scorer = self._chance_value = None
        self.metric_name = self.last_update_seconds = None

    def estimate_noise(self, history):
        """sigma_m, (M,): the root mean square of the second differences of
        the last `NOISE_SCORES` scores over sqrt(6) (a linear trend plus
        noise of scale sigma gives 6 sigma^2); zeros before three scores."""
        history = np.asarray(history, dtype="float64")[-NOISE_SCORES:]
        if len(history) < 3:
            return np.zeros(history.shape[1])
        return np.sqrt(np.mean(np.diff(history, n=2, axis=0) ** 2, axis=0) / 6.0)

    def estimate_derivatives(self, history, noise=None):
        """d_m, (M,), from an (n, M) score history: the absolute slope per
        epoch, floored at `epsilon` and at the slope's standard error under
        the (M,) `noise`; `epsilon` before two scores."""
        history = np.asarray(history, dtype="float64")
        if history.shape[0] < 2:
            return np.full(history.shape[1], self.epsilon)
        if self.ema_decay is not None:
            steps = np.diff(history, axis=0) / self.every
            w = self.ema_decay ** np.arange(len(steps))[::-1]
            w /= np.sum(w)
            slope = w @ steps
            # Each difference has variance 2 sigma^2.
            standard_error = np.sqrt(2.0 * np.sum(w * w)) / self.every
        else:
            window = history[-self.smoothing :]
            t = np.arange(len(window), dtype="float64") * self.every
            t -= t.mean()
            slope = t @ (window - window.mean(axis=0)) / np.sum(t * t)
            standard_error = 1.0 / np.sqrt(np.sum(t * t))
        noise = 0.0 if noise is None else np.asarray(noise) * standard_error
        return np.maximum(np.abs(slope), np.maximum(self.epsilon, noise))

    def on_train_begin(self, logs=None):
        # First in `fit`'s callback list: every callback sees the logged keys.
        caller = sys._getframe(1).f_locals.get("self")
        if isinstance(caller, keras.callbacks.CallbackList):
            caller.callbacks.remove(self)
            caller.callbacks.insert(0, self)
        # JAX: `self.model` syncs the trainer state into the variables.
        model = self.model
        layer = masking_lookup.get_masking_layer(model, self.masking)
        if self._x is None:
            self._x, self._y = data_lib.collect_examples(
                self.validation_data,
                max_examples=self.max_validation_samples,
                seed=self.seed,
                what="`validation_data`",
            )
        x, y = self._x, self._y
        data_lib.check_model_inputs(model, x, "`validation_data`")
        if self.ema_decay is None and layer.history_size < self.smoothing:
            raise ValueError(
                f"`smoothing={self.smoothing}` needs the layer to keep at least "
                f"that many scores; its history_size is {layer.history_size}."
            )
        self._layer = layer
        reconstruction = self.metric == "reconstruction"
        if reconstruction and not callable(getattr(model, "modality_scores", None)):
            raise ValueError(
                "The metric 'reconstruction' scores a model's reconstruction "
                "of each modality (`MultimodalPretrainer.modality_scores`); "
                f"the model {type(model).__name__} has no `modality_scores`."
            )
        try:
            if not layer.built:
                model.predict_on_batch(data_lib.take_examples(x, slice(0, 1)))
            if reconstruction:
                self._scorer, self.metric_name = None, self.metric
                auto = self.chance in (None, "auto")
                self._chance_value = None if auto else self.chance
                return
            # The first tiled forward pass: outputs to check the metric on.
            batches = view_predictions.iter_view_predictions(
                model, x, layer.modalities, masking=layer, batch_size=self.batch_size
            )
            with contextlib.closing(batches):  # restores the visibility
                outputs = [view_predictions.single_output(b) for b in next(batches)[3]]
        except Exception as error:
            raise ValueError(
                "ModalityDynamics could not run the model on "
                f"`validation_data` ({type(error).__name__}: {error}). Check "
                "that its inputs match the model's inputs."
            ) from error
        if not all(np.all(np.isfinite(output)) for output in outputs):
            raise ValueError(
                "The model's predictions on `validation_data` (first batch, "
                "one modality visible at a time) are not finite."
            )
        self._scorer = metrics_lib.resolve_metric(
            self.metric, y, outputs[0], model, self.from_logits
        )
        self.metric_name = metrics_lib.metric_name(self._scorer)
        self._chance_value = self.chance
        if self.chance == "auto":
            shape, prior = outputs[0].shape, None
            if self.metric_name in LOSS_NAMES:  # The label prior's loss score.
                priors = prior_predictions(y, shape)
                prior = max(metrics_lib.score(self._scorer, y, p) for p in priors)
            self._chance_value = chance_level(self.metric_name, y, shape[-1], prior)

    def on_epoch_end(self, epoch, logs=None):
        self._update(epoch)
        if logs is not None:
            logs.update(self._current_logs())

    def _update(self, epoch):
        # JAX: touch `self.model` before using variables, or updates are lost.
        model, layer = self.model, self._layer
        state = layer.dynamics_state()
        if self._raw is not None and state["num_updates"] and epoch % self.every:
            return
        start = time.perf_counter()
        if self._scorer is None:  # metric="reconstruction"
            raw = np.asarray(model.modality_scores(self._x), "float64").reshape(-1)
        else:
            raw, _ = view_predictions.score_selections(
                model,
                self._x,
                self._y,
                layer.modalities,
                metric=self._scorer,
                masking=layer,
                batch_size=self.batch_size,
            )
        self.last_update_seconds = time.perf_counter() - start
        if not np.all(np.isfinite(raw)):
            warnings.warn(
                f"Epoch {epoch + 1}: ModalityDynamics measured non-finite "
                f"scores {dict(zip(layer.modalities, raw.tolist()))}; the "
                "masking state is left unchanged.",
                stacklevel=2,
            )
            return
        self._raw = raw
        s = raw
        if self._chance_value is not None:
            s = rescale_score(self.metric_name, raw, self._chance_value)
        past = layer.dynamics_history()
        scores, noise = np.maximum(s, self.epsilon), None
        if self.noise_floor:
            noise = self.estimate_noise(np.concatenate([past, scores[None]]))
            scores = np.maximum(scores, noise)
        scores = scores.astype("float32")  # As stored: the history reads back exact.
        history = np.concatenate([past, scores[None]], axis=0)
        derivatives = self.estimate_derivatives(history, noise)
        # While warming up, r_m = 1 (OPM idles); the history still grows.
        active = state["num_updates"] >= 1 and (
            state["ready"] or epoch + 1 >= self.warmup_epochs
        )
        layer.update_dynamics(scores, derivatives, ready=active)
        if self.verbose:
            logs = self._current_logs()
            print(
                f"\nEpoch {epoch + 1}: ModalityDynamics "
                + ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
                + ("" if active else " (warm-up: ratios held at 1)")
                + f" [{self.last_update_seconds:.2f}s]"
            )

    def _current_logs(self):
        layer = self._layer
        state = layer.dynamics_state()
        ratios = layer.mask_ratios()
        noise = self.estimate_noise(state["history"]) if self.noise_floor else None
        logs = {}
        for i, m in enumerate(layer.modalities):
            if self._raw is not None:
                logs[f"val_{m}_{self.metric_name}"] = float(self._raw[i])
            logs[f"{m}_mask_ratio"] = float(ratios[i])
            logs[f"{m}_score_derivative"] = float(state["derivatives"][i])
            logs[f"{m}_score_noise"] = 0.0 if noise is None else float(noise[i])
        return logs


def chance_level(metric_name, y_true, num_outputs, prior_score=None):
    """A metric's value at chance: 0.5 for AUC, 1 / K for top-1 accuracy over
    K classes, `prior_score` (the label prior's score) for the loss score;
    None where it is not known."""
    name = str(metric_name).lower()
    if "auc" in name:
        return 0.5
    y = np.asarray(y_true)
    single_label = y.ndim == 1 or y.shape[-1] == 1
    single_label = single_label or (
        y.shape[-1] == num_outputs and bool(np.all(np.nansum(y, axis=-1) == 1))
    )
    if name in TOP1_NAMES and num_outputs > 1 and single_label:
        return 1.0 / num_outputs
    return prior_score if name in LOSS_NAMES else None


def rescale_score(metric_name, raw, chance):
    """(metric - chance) / (1 - chance): 0 at chance, 1 when perfect.

    For the loss score 1 / (1 + L) it is 1 - L / L_0, the relative
    improvement over the label prior's loss L_0 (`chance` = 1 / (1 + L_0)).
    """
    raw = np.asarray(raw, "float64")
    if str(metric_name).lower() in LOSS_NAMES:
        return 1.0 - (1.0 / raw - 1.0) / (1.0 / chance - 1.0)
    return (raw - chance) / (1.0 - chance)


def prior_predictions(y_true, shape):
    """Constant predictions of the label prior, each of `shape` (N, K):
    probabilities, sigmoid logits and softmax logits."""
    y = np.asarray(y_true, "float64")
    width = shape[-1]
    if width > 1 and (y.ndim == 1 or y.shape[-1] == 1):  # class ids
        prior = np.bincount(y.reshape(-1).astype(int), minlength=width) / len(y)
    else:
        prior = np.nanmean(y.reshape(len(y), -1), axis=0)
    prior = np.clip(prior, 1e-6, 1.0 - 1e-6)
    for p in (prior, np.log(prior / (1.0 - prior)), np.log(prior)):
        yield np.broadcast_to(p, (len(y), width)).astype("float32")


def _is_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _refuse(name, value, expected):
    raise ValueError(f"`{name}` must be {expected}; received {value!r}.")


def _int(value, name, low):
    if isinstance(value, bool) or int(value) != value or value < low:
        _refuse(name, value, f"an int >= {low}")
    return int(value)
