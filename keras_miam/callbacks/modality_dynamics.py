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

# Scores the noise estimate reads (4 second differences).
NOISE_SCORES = 6


class ModalityDynamics(keras.callbacks.Callback):
    """Measures each modality's validation score and updates MIAM's masking.

    At the end of every `every`-th epoch, for every modality m the callback
    measures the metric on `validation_data` with only modality m visible
    (one tiled forward pass per batch scores all modalities), turns it into
    the score s_m and the derivative d_m = |d s_m / d epoch|, and calls
    `MIAMMasking.update_dynamics(s, d)`. MIAM then masks modalities with a
    high, stable score (r_m = rho_s,m / rho_d,m > 1) more from the next
    epoch on; OPM reads the score ratios.

    By default s_m is the raw metric and d_m is floored at `epsilon` (the
    published estimator). With `chance="auto"`, s_m is the metric rescaled
    so that chance is 0 and a perfect score 1, (metric - chance) /
    (1 - chance): 2 AUC - 1 for AUC, (acc - 1/K) / (1 - 1/K) for top-1
    accuracy over K classes, the improvement over the loss of predicting
    the label prior for `"loss"`. d_m is the absolute
    least-squares slope of the last `smoothing` scores (or an EMA of the
    differences). With `noise_floor=True` both are floored at the score's
    own noise level sigma_m, estimated from the second differences of the
    recent scores: s_m >= sigma_m and d_m >= sigma_m / sqrt(sum t^2), the
    standard error of the slope, so a plateau reads as "no change
    detectable". Everything is floored at `epsilon` too. Both options make
    a modality stuck near chance read as weak rather than as stable (issue
    #23); `benchmarks/dynamics_estimator.py` compares them.

    Logs, per modality m: `val_<m>_<metric>` (the raw metric),
    `<m>_mask_ratio` (the ratio in force for the next epoch: MIAM's r_m,
    OPM's rho_m, 1 for static strategies), `<m>_score_derivative` (d_m) and
    `<m>_score_noise` (sigma_m). The callback moves itself first in `fit`'s
    callback list, so `CSVLogger`, `EarlyStopping` and the others see these
    keys whatever the order of the list. The history is kept in the layer.

    Args:
        validation_data: `(x, y)` arrays or a dataset of `(x, y)` batches,
            read once at the start of training (a dict of inputs with
            `metric="reconstruction"`).
        metric: None (AUC for multi-label heads, top-1 accuracy for
            multi-class heads), a name, `"loss"`, a `keras.metrics.Metric`,
            or a function `fn(y_true, y_pred)`
            (`keras_miam.evaluation.resolve_metric`); higher is better.
        masking: the `MIAMMasking` layer: None (the model's only one), a
            name or an instance.
        every: measure every `every` epochs. Defaults to 1.
        warmup_epochs: initial epochs trained with r_m = 1. Defaults to 0.
        max_validation_samples: optional cap on the validation examples
            (one subsample drawn with `seed`).
        smoothing: scores in the slope window, >= 2. Defaults to 3.
        epsilon: floor of scores and derivatives, > 0. Defaults to 1e-3.
        batch_size: examples per forward pass. Defaults to 256.
        seed: seed of the subsample. Defaults to 0.
        verbose: 0 or 1 (one line per update).
        ema_decay: None, or in (0, 1): d_m from an EMA of the differences.
        chance: None (the raw metric, as published), `"auto"` (the chance
            level of AUC, top-1 accuracy or the loss; other metrics stay
            raw), or a number (the chance level of another metric).
            Defaults to None.
        noise_floor: floor s_m and d_m at the measured noise. Defaults to
            False (the published fixed `epsilon`).
        mode: `"auto"` (the metric's direction, as
            `keras.callbacks.EarlyStopping` infers it) or `"max"` (e.g. for a
            function); a lower-is-better metric is refused.
        from_logits: whether the model's outputs are logits (for thresholded
            accuracies). Defaults to None: read from the compiled loss.

    Example:

    ```python
    model = keras_miam.models.MultimodalTransformer(tokenizers, num_outputs=100)
    model.compile()
    history = model.fit(
        x_train, y_train, epochs=20, validation_data=(x_val, y_val),
        callbacks=[keras_miam.ModalityDynamics(validation_data=(x_val, y_val))],
    )
    history.history["val_image_mask_ratio"]   # r_image per epoch
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
            # Inputs without labels: a self-supervised model (e.g.
            # `MultimodalPretrainer`) scores its own reconstruction.
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
        self.from_logits = from_logits
        self.validation_data = validation_data
        self.metric = metric
        self.masking = masking
        self.every = _check_int(every, "every", 1)
        self.warmup_epochs = _check_int(warmup_epochs, "warmup_epochs", 0)
        self.max_validation_samples = (
            None
            if max_validation_samples is None
            else _check_int(max_validation_samples, "max_validation_samples", 1)
        )
        self.smoothing = _check_int(smoothing, "smoothing", 2)
        if ema_decay is not None and not (
            _is_number(ema_decay) and 0.0 < ema_decay < 1.0
        ):
            raise ValueError(
                f"`ema_decay` must be None or a number in (0, 1); received "
                f"{ema_decay!r}."
            )
        self.ema_decay = None if ema_decay is None else float(ema_decay)
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
        if not (chance in (None, "auto") or (_is_number(chance) and chance < 1)):
            raise ValueError(
                f"`chance` must be None, 'auto' or a number below 1; received {chance!r}."
            )
        self.chance = chance
        if noise_floor not in (True, False):
            raise ValueError(f"`noise_floor` must be a bool; received {noise_floor!r}.")
        self.noise_floor = bool(noise_floor)
        self._chance_value = None
        self._raw = None
        self._x = None
        self._y = None
        self._layer = None
        self._scorer = None
        self.metric_name = None
        self.last_update_seconds = None

    # ------------------------------------------------------------------
    # The estimate: noise, derivative.
    # ------------------------------------------------------------------
    def estimate_noise(self, history):
        """sigma_m, the score's noise around its local trend, (M,).

        Each second difference of a linear trend plus independent noise of
        scale sigma has variance 6 sigma^2, so sigma_m is the root mean
        square of the second differences of the last `NOISE_SCORES` scores
        divided by sqrt(6). Zeros while fewer than three scores exist.
        """
        history = np.asarray(history, dtype="float64")[-NOISE_SCORES:]
        if len(history) < 3:
            return np.zeros(history.shape[1])
        second = np.diff(history, n=2, axis=0)
        return np.sqrt(np.mean(second**2, axis=0) / 6.0)

    def estimate_derivatives(self, history, noise=None):
        """d_m from a score history: |rate of change| per epoch.

        Args:
            history: (n, M) scores, oldest first, measured every `every`
                epochs.
            noise: optional (M,) sigma_m: d_m is then floored at the
                standard error of the estimate under noise sigma_m.

        Returns:
            (M,) float64, the absolute slope of the last `smoothing` scores
            (or the absolute EMA of the differences), floored at `epsilon`
            (and at the noise); `epsilon` while fewer than two scores exist.
        """
        history = np.asarray(history, dtype="float64")
        if history.ndim != 2:
            raise ValueError(
                f"`history` must be (n, M); received shape {history.shape}."
            )
        if history.shape[0] < 2:
            return np.full(history.shape[1], self.epsilon)
        if self.ema_decay is not None:
            steps = np.diff(history, axis=0) / self.every  # (n - 1, M)
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
        floor = self.epsilon
        if noise is not None:
            floor = np.maximum(floor, np.asarray(noise) * standard_error)
        return np.maximum(np.abs(slope), floor)

    # ------------------------------------------------------------------
    # Callback hooks.
    # ------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        # Go first in `fit`'s callback list, so that every callback sees the
        # keys this one logs at the end of an epoch, whatever the order the
        # user gave. The callbacks already run keep their turn.
        caller = sys._getframe(1).f_locals.get("self")
        if isinstance(caller, keras.callbacks.CallbackList):
            caller.callbacks.remove(self)
            caller.callbacks.insert(0, self)
        # JAX: accessing `self.model` syncs the trainer state into the
        # variables, before anything reads or assigns them.
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
        if self.metric == "reconstruction":
            # A self-supervised model scores its own reconstruction.
            if not callable(getattr(model, "modality_scores", None)):
                raise ValueError(
                    "The metric 'reconstruction' scores a model's reconstruction "
                    "of each modality (`MultimodalPretrainer.modality_scores`); "
                    f"the model {type(model).__name__} has no `modality_scores`."
                )
            if not layer.built:
                model.predict_on_batch(data_lib.take_examples(x, slice(0, 1)))
            self._layer, self._scorer, self.metric_name = layer, None, self.metric
            self._chance_value = self._resolve_chance(None, None)
            return
        try:
            if not layer.built:
                model.predict_on_batch(data_lib.take_examples(x, slice(0, 1)))
            # The first tiled forward pass: checks the inputs, compiles the
            # pass used at every update, and gives outputs to check the metric.
            batches = view_predictions.iter_view_predictions(
                model, x, layer.modalities, masking=layer, batch_size=self.batch_size
            )
            with contextlib.closing(batches):  # restores the visibility
                _, start, stop, probe = next(batches)
        except Exception as error:
            raise ValueError(
                "ModalityDynamics could not run the model on "
                f"`validation_data` ({type(error).__name__}: {error}). Check "
                "that its inputs match the model's inputs."
            ) from error
        outputs = [view_predictions.single_output(block) for block in probe]
        if not all(np.all(np.isfinite(output)) for output in outputs):
            raise ValueError(
                "The model's predictions on `validation_data` (first batch, "
                "one modality visible at a time) are not finite."
            )
        scorer = metrics_lib.resolve_metric(
            self.metric, y, outputs[0], model, self.from_logits
        )
        self._layer = layer
        self._scorer = scorer
        self.metric_name = metrics_lib.metric_name(scorer)
        self._chance_value = self._resolve_chance(y, outputs[0])

    def on_epoch_end(self, epoch, logs=None):
        self._update(epoch)
        if logs is not None:
            logs.update(self._current_logs())

    # ------------------------------------------------------------------
    # Internals.
    # ------------------------------------------------------------------
    def _update(self, epoch):
        # JAX: touch `self.model` before reading or assigning variables, or
        # the new dynamics are silently lost.
        model = self.model
        layer = self._layer
        state = layer.dynamics_state()
        if not (
            self._raw is None or state["num_updates"] == 0 or epoch % self.every == 0
        ):
            return
        start = time.perf_counter()
        raw = self._measure(model)
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
        s = (
            raw
            if self._chance_value is None
            else rescale_score(self.metric_name, raw, self._chance_value)
        )
        past = layer.dynamics_history()
        floor = np.full(len(s), self.epsilon)
        noise = None
        if self.noise_floor:
            noise = self.estimate_noise(
                np.concatenate([past, np.maximum(s, floor)[None]])
            )
            floor = np.maximum(floor, noise)
        # float32, as stored: the history read back later is exact.
        scores = np.maximum(s, floor).astype("float32")
        history = np.concatenate([past, scores[None]], axis=0)
        derivatives = self.estimate_derivatives(history, noise)
        active = state["num_updates"] + 1 >= 2 and (
            state["ready"] or epoch + 1 >= self.warmup_epochs
        )
        # While warming up, r_m = 1 (and OPM idles); the score is still kept
        # in the history for the derivative.
        layer.update_dynamics(scores, derivatives, ready=active)
        if self.verbose:
            self._print_update(epoch, layer, active)

    def _measure(self, model):
        """s_m for every modality: one tiled forward pass per batch."""
        if self._scorer is None:  # metric="reconstruction"
            return np.asarray(model.modality_scores(self._x), "float64").reshape(-1)
        values, _ = view_predictions.score_selections(
            model,
            self._x,
            self._y,
            self._layer.modalities,
            metric=self._scorer,
            masking=self._layer,
            batch_size=self.batch_size,
        )
        return values

    def _resolve_chance(self, y, output):
        """The metric's value at chance (None: the raw metric is used)."""
        if self.chance is None or (self.chance == "auto" and y is None):
            return None
        if self.chance != "auto":
            return float(self.chance)
        prior = None
        if self.metric_name in LOSS_NAMES:
            prior = max(
                _score(self._scorer, y, p) for p in prior_predictions(y, output.shape)
            )
        return chance_level(self.metric_name, y, output.shape[-1], prior)

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
# Chance.
# ----------------------------------------------------------------------------
TOP1_NAMES = ("accuracy", "categorical_accuracy", "sparse_categorical_accuracy")
LOSS_NAMES = ("loss", "loss_score")


def chance_level(metric_name, y_true, num_outputs, prior_score=None):
    """A metric's value at chance, or None where it is not known.

    Args:
        metric_name: the resolved metric's name.
        y_true: the labels (class ids or one-hot rows make `"accuracy"` a
            top-1 accuracy).
        num_outputs: K, the width of the model's output.
        prior_score: the metric of the label-prior prediction (the loss
            score's chance level).

    Returns:
        0.5 for AUC, 1 / K for top-1 accuracy over K classes, `prior_score`
        for the loss score, else None.
    """
    name = str(metric_name).lower()
    if "auc" in name:
        return 0.5
    if name in TOP1_NAMES and num_outputs > 1 and _single_label(y_true, num_outputs):
        return 1.0 / num_outputs
    if name in LOSS_NAMES:
        return prior_score
    return None


def rescale_score(metric_name, raw, chance):
    """(metric - chance) / (1 - chance): 0 at chance, 1 when perfect.

    For the loss score 1 / (1 + L) it is the relative improvement over the
    loss L_0 of the label prior, 1 - L / L_0 (`chance` = 1 / (1 + L_0)).
    """
    raw = np.asarray(raw, "float64")
    if str(metric_name).lower() in LOSS_NAMES:
        return 1.0 - (1.0 / raw - 1.0) / (1.0 / chance - 1.0)
    return (raw - chance) / (1.0 - chance)


def prior_predictions(y_true, shape):
    """Constant predictions of the label prior: probabilities, logits (sigmoid
    and softmax), each of `shape` (N, K)."""
    y = np.asarray(y_true, "float64")
    width = shape[-1]
    if width > 1 and (y.ndim == 1 or y.shape[-1] == 1):  # class ids
        prior = np.bincount(y.reshape(-1).astype(int), minlength=width) / len(y)
    else:
        prior = np.nanmean(y.reshape(len(y), -1), axis=0)
    prior = np.clip(prior, 1e-6, 1.0 - 1e-6)
    for p in (prior, np.log(prior / (1.0 - prior)), np.log(prior)):
        yield np.broadcast_to(p, (len(y), width)).astype("float32")


def _score(scorer, y, p):
    return metrics_lib.score(scorer, y, p)


def _single_label(y, width):
    y = np.asarray(y)
    if y.ndim == 1 or y.shape[-1] == 1:
        return True
    return y.shape[-1] == width and bool(np.all(np.nansum(y, axis=-1) == 1))


# ----------------------------------------------------------------------------
# Checks.
# ----------------------------------------------------------------------------
def _is_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _check_int(value, name, low):
    if isinstance(value, bool) or int(value) != value or int(value) < low:
        raise ValueError(f"`{name}` must be an int >= {low}; received {value!r}.")
    return int(value)
