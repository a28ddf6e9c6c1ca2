"""The ModalityDynamics callback: unimodal validation scores -> masking state."""

import contextlib
import time
import warnings

import keras
import numpy as np

from keras_miam.evaluation import data as data_lib
from keras_miam.evaluation import metrics as metrics_lib
from keras_miam.evaluation import view_predictions
from keras_miam.layers import masking_lookup


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
    With `ema_decay=beta` it is instead the absolute value of an
    exponential moving average of the per-epoch score differences over the
    whole stored history (the difference k updates back weighted beta^k,
    the weights normalised to sum to one, so the first estimate is the
    plain difference, as with the window). Scores and derivatives are
    floored at `epsilon`, so they stay strictly positive and a plateau
    (changes below `epsilon` per epoch) reads as `epsilon`. The score
    history lives in the layer
    (`MIAMMasking.dynamics_history()`), so a model that is saved and
    reloaded, or restored by `keras.callbacks.BackupAndRestore`, continues
    with the same dynamics.

    Warm-up. The dynamics are activated (r_m may differ from 1) at the end
    of the first measured epoch `epoch` with `epoch + 1 >= warmup_epochs`
    for which at least two scores exist; the next epoch trains with them.
    Scores measured before are stored in the layer's history (they feed the
    first derivative), but the layer is left inactive, so MIAM uses
    r_m = 1 (the Beta hypercube) and OPM drops every modality at its
    `q_base`. While a single score
    exists, the stored derivative is `epsilon`. A layer that was already
    active (a resumed run) stays active.

    Defaults. The window of 3, `epsilon=1e-3` and no warm-up were compared
    on the validation split of the gated testbed (`redundant_M2`, 3 seeds;
    `benchmarks/results/dynamics_estimator.md`) with a window of 2 or 5, an
    EMA (`ema_decay=0.7`), `epsilon` 1e-2 or 1e-4 and `warmup_epochs=4`: no
    variant moved the validation average or the weak modality's AUC beyond
    the seed spread, so the defaults stay. The warm-up does what it says
    (without it the dominant modality's r_m averages about 0.65 over
    epochs 2-5, i.e. it is masked less than under the Beta hypercube;
    `warmup_epochs=4` holds it at 1 up to epoch 4), and a larger
    `epsilon` damps the jumps of r_m at plateaus, but neither changed the
    scores there.

    Updates happen at the end of epochs with `epoch % every == 0`, and at
    the end of the first epoch if the layer holds no scores yet.

    Metric. s_m must be > 0 and grow with quality. The metric is resolved
    by `keras_miam.evaluation.resolve_metric`, the one metric system that
    `evaluate_subsets` and the Shapley functions use too, so a name gives
    the same number in the callback and in `evaluate_subsets` (same model,
    modality and data). With `metric=None` the head is inspected (a `task`
    attribute such as `MultimodalTransformer.task`, else the compiled loss,
    else the output activation, else the outputs and labels): multi-label /
    binary heads get `"auc"` (exact, rank-based, macro-averaged over the
    outputs that have both positives and negatives in the validation data,
    so species absent from it are skipped; NaN labels, e.g. species not
    surveyed at a site, are left out of their output's AUC), softmax /
    multi-class heads get `"accuracy"` (top-1); `"accuracy"` on a
    multi-label head is the binary accuracy over all outputs. Outputs may
    be logits: AUC ranks, top-1 uses the argmax, and thresholded
    accuracies cut at 0 instead of 0.5 when the outputs are logits (a
    compiled loss with `from_logits=True`, or a model with a `task`).
    `metric="loss"` uses the compiled loss instead, as
    s_m = 1 / (1 + loss_m) (in (0, 1], higher is better, no underflow for
    large losses), for tasks without a classification metric. Any other
    name (also one added with `keras_miam.evaluation.register_metric`), a
    `keras.metrics.Metric` instance (e.g.
    `keras.metrics.AUC(multi_label=True, from_logits=True)`, computed with
    a fresh copy per modality), a function `fn(y_true, y_pred)` (called on
    all the validation predictions of a modality) or a
    `keras_miam.evaluation.SubsetMetric` is accepted if it is "higher is
    better": error metrics such as `MeanSquaredError` are refused (use
    `"loss"`).

    Logs. At every epoch (also without an update, and during warm-up: the
    current values), the epoch `logs` receive, per modality m,
    `val_<m>_<metric>` (s_m), `<m>_mask_ratio` and `<m>_score_derivative`
    (d_m). `<m>_mask_ratio` is not a fraction of masked tokens: it is the
    strategy's imbalance ratio in force for the next epoch
    (`MIAMMasking.mask_ratios()`): MIAM's r_m = rho_s,m / rho_d,m (> 1:
    modality m is masked more), OPM's rho_m, 1 for static strategies. `History` and the progress bar, which
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
            once at the start of training. With `metric="reconstruction"`
            (a self-supervised `MultimodalPretrainer`'s `modality_scores`):
            a dict of input arrays, without labels.
        metric: None (chosen from the head, see above), a name (`"auc"`,
            `"accuracy"`, `"binary_accuracy"`, `"categorical_accuracy"`,
            `"sparse_categorical_accuracy"`, `"loss"`, a registered name, or
            any name `keras.metrics.get` knows), a `keras.metrics.Metric`
            instance, a function `fn(y_true, y_pred)` or a `SubsetMetric`.
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
            Not used with `ema_decay`.
        ema_decay: None (the default: the windowed slope above), or a
            number in (0, 1): d_m is the absolute exponential moving
            average of the per-epoch differences of s_m over the layer's
            stored history (its `history_size` scores), the difference k
            updates back weighted `ema_decay^k`. Larger values smooth more.
        epsilon: floor of the scores and derivatives, > 0 (the strategies
            floor them again at their own, smaller `epsilon`, 1e-6). Defaults
            to 1e-3.
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
        ema_decay=None,
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
        if ema_decay is not None:
            if isinstance(ema_decay, bool) or not isinstance(
                ema_decay, (int, float, np.floating, np.integer)
            ):
                raise ValueError(
                    f"`ema_decay` must be None or a number in (0, 1); received "
                    f"{ema_decay!r}."
                )
            ema_decay = float(ema_decay)
            if not 0.0 < ema_decay < 1.0:
                raise ValueError(
                    f"`ema_decay` must be None or a number in (0, 1); received "
                    f"{ema_decay}."
                )
        self.ema_decay = ema_decay
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
        """d_m from a score history: |rate of change| per epoch, >= eps.

        Args:
            history: (n, M) scores, oldest first, measured every `every`
                epochs.

        Returns:
            (M,) float64: the absolute slope of the last `smoothing` scores
            of each modality against the epoch (or, with `ema_decay`, the
            absolute EMA of all the per-epoch differences), floored at
            `epsilon`; `epsilon` everywhere when fewer than two scores
            exist.
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
            weights = self.ema_decay ** np.arange(len(steps))[::-1]
            slope = weights @ steps / np.sum(weights)
            return np.maximum(np.abs(slope), self.epsilon)
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
