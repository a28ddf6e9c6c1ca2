"""The MIAMMasking layer: per-example modality masking from a hypercube strategy."""

import contextlib

import keras
import numpy as np
from keras import ops

from keras_miam import strategies as strategies_lib
from keras_miam.missing import is_missing


def _format_shape(shape):
    dims = ["batch" if shape[0] is None else str(shape[0])]
    dims += [str(d) for d in shape[1:]]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _differ(received, expected):
    return len(received) != len(expected) or any(
        r is not None and e is not None and r != e for r, e in zip(received, expected)
    )


@keras.saving.register_keras_serializable(package="keras_miam")
class MIAMMasking(keras.layers.Layer):
    """Masks the tokens of several modalities with rates drawn from a strategy.

    For each example the layer draws p = (p_1, ..., p_M) from its strategy
    (by default MIAM), masks each token of modality m with probability p_m,
    and replaces masked and missing tokens by a learned mask token (plus a
    learned embedding of the token's slot): shapes stay static. At
    inference only missing tokens and tokens outside the evaluation
    selection (`set_visible()`, `views()`, `visible=`) are masked.

    MIAM's and OPM's state (scores s_m, derivatives d_m, a score history)
    lives in non-trainable variables, updated between steps by
    `update_dynamics()` (`ModalityDynamics` does it) and saved with the
    model. A loaded layer starts with every token visible: a saved file
    never carries an evaluation selection.

    Args:
        modalities: list of modality names, in the order tokens are
            concatenated.
        strategy: a strategy name (see `keras_miam.strategies`), config
            dict or `keras_miam.strategies.MaskingStrategy`. Defaults to
            'miam'.
        seed: int or None, seeds the masking draws.
        per_example: draw p per example (True, default) or once per batch.
        ensure_visible: if True (default), every example keeps at least one
            available token visible in training, even when every p_m = 1.
        positional_mask_tokens: if True (default), the replacement of a
            masked token is the shared mask token plus a learned, zero-
            initialised embedding of its slot.
        mask_non_finite: if True (default), tokens with a missing value
            (`keras_miam.missing.is_missing`: NaN, +-inf, |x| > 1e10) are
            treated as missing and their values never propagate.
        return_keep_mask: if True (default) the layer returns
            `(tokens, keep_mask)`; if False it returns the tokens with
            `keep_mask` as their Keras mask (`compute_mask`), which
            mask-aware layers such as `GlobalAveragePooling1D` read.
        history_size: how many past score vectors are kept for the
            derivative estimate. Defaults to 16.
        max_views: how many visibility patterns `views()` can hold at once.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a dict `{modality: tokens}` (or a list in `modalities`
            order; a single tensor when there is one modality). Tokens are
            (batch, T_m, D), or (batch, D) for one token. D must be equal
            across modalities.
        mask: optional per-token availability, same structure, (batch, T_m)
            (or (batch,) for one-token modalities) booleans, False =
            missing. Filled in automatically from tokenizers' Keras masks.
        training: whether to mask at random.
        visible: optional boolean (T,) or (batch, T) selection of visible
            tokens on the concatenated token axis (T = sum T_m), applied on
            top of `set_visible()`.

    Returns:
        `(tokens, keep_mask)`: tokens (batch, T, D) with masked and missing
        tokens replaced, and the boolean keep mask (batch, T), True =
        visible (the tokens alone with `return_keep_mask=False`).

    Example:

    >>> layer = MIAMMasking(["env", "image"], strategy="miam", seed=0)
    >>> tokens = {"env": np.random.rand(8, 5, 16).astype("float32"),
    ...           "image": np.random.rand(8, 4, 16).astype("float32")}
    >>> x, keep = layer(tokens, training=True)
    >>> x.shape, keep.shape
    ((8, 9, 16), (8, 9))
    >>> layer.update_dynamics(scores=[0.9, 0.6], derivatives=[0.01, 0.05])
    >>> layer.mask_ratios()  # env dominates: masked more
    array([2.738613  , 0.36514837], dtype=float32)
    >>> layer.set_visible(["image"])  # evaluate on the image only
    >>> layer.reset_visible()

    Reference:
     - [Zbinden et al., 2026 (MIAM)](https://openreview.net/forum?id=oljjAkgZN4)
    """

    def __init__(
        self,
        modalities,
        strategy="miam",
        seed=None,
        per_example=True,
        ensure_visible=True,
        positional_mask_tokens=True,
        mask_non_finite=True,
        return_keep_mask=True,
        history_size=16,
        max_views=64,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(modalities, str) or not modalities:
            raise ValueError(
                "`modalities` must be a non-empty list of modality names; "
                f"received {modalities!r}."
            )
        modalities = [str(m) for m in modalities]
        if len(set(modalities)) != len(modalities):
            raise ValueError(f"Modality names must be unique; received {modalities}.")
        if int(history_size) < 2 or int(max_views) < 1:
            raise ValueError(
                "`history_size` must be >= 2 and `max_views` >= 1; received "
                f"history_size={history_size}, max_views={max_views}."
            )
        self.modalities = modalities
        self.strategy = strategies_lib.get(strategy)
        self.seed = seed
        self.per_example = bool(per_example)
        self.ensure_visible = bool(ensure_visible)
        self.positional_mask_tokens = bool(positional_mask_tokens)
        self.mask_non_finite = bool(mask_non_finite)
        self.return_keep_mask = bool(return_keep_mask)
        self.history_size = int(history_size)
        self.max_views = int(max_views)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.token_counts = None

    @property
    def num_modalities(self):
        return len(self.modalities)

    def _as_list(self, structure, what, allow_none=False):
        """Puts a dict / list / single tensor into `modalities` order."""
        if structure is None and allow_none:
            return [None] * self.num_modalities
        if isinstance(structure, dict) and set(structure) != set(self.modalities):
            raise ValueError(
                f"MIAMMasking expected {what} for the modalities "
                f"{self.modalities}; missing: "
                f"{sorted(set(self.modalities) - set(structure))}, unexpected: "
                f"{sorted(set(structure) - set(self.modalities))}."
            )
        if isinstance(structure, dict):
            return [structure[m] for m in self.modalities]
        is_shape = isinstance(structure, tuple) and all(
            d is None or isinstance(d, int) for d in structure
        )
        if isinstance(structure, (list, tuple)) and not is_shape:
            if len(structure) == self.num_modalities:
                return list(structure)
        elif self.num_modalities == 1:
            return [structure]
        raise ValueError(
            f"MIAMMasking expected {what} as a dict {{modality: tensor}} or a "
            f"list of {self.num_modalities} in the order {self.modalities}; "
            f"received {type(structure).__name__}."
        )

    def build(self, input_shape):
        shapes = [tuple(s) for s in self._as_list(input_shape, "token tensors")]
        for name, shape in zip(self.modalities, shapes):
            if len(shape) not in (2, 3) or (len(shape) == 3 and shape[1] is None):
                raise ValueError(
                    f"Modality '{name}': expected tokens of shape (batch, "
                    f"tokens, dim) with a static number of tokens, or (batch, "
                    f"dim); received shape {shape}."
                )
        dims = {m: s[-1] for m, s in zip(self.modalities, shapes)}
        if len(set(dims.values())) != 1 or None in dims.values():
            raise ValueError(
                f"All modalities must have the same embedding size; received "
                f"{dims}. Project them to a common size first (e.g. Dense)."
            )
        self.token_counts = [s[1] if len(s) == 3 else 1 for s in shapes]
        self.embed_dim = int(shapes[0][-1])
        self.num_tokens = total = sum(self.token_counts)
        self.token_modality = np.repeat(
            np.arange(self.num_modalities), self.token_counts
        ).astype("int32")
        stops = np.cumsum(self.token_counts)
        self.token_slices = {
            m: (int(stop - count), int(stop))
            for m, count, stop in zip(self.modalities, self.token_counts, stops)
        }
        self.single_token = all(c == 1 for c in self.token_counts)
        self.mask_token = self.add_weight(
            name="mask_token",
            shape=(self.embed_dim,),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )
        self.slot_embedding = None
        if self.positional_mask_tokens:
            self.slot_embedding = self.add_weight(
                name="slot_embedding",
                shape=(total, self.embed_dim),
                initializer="zeros",
            )
        m = self.num_modalities

        def state(name, shape, value):
            return self.add_weight(
                name=name,
                shape=shape,
                dtype="float32",
                trainable=False,
                initializer=keras.initializers.Constant(value),
                autocast=False,
            )

        self.scores = state("scores", (m,), 1.0)
        self.derivatives = state("derivatives", (m,), 1.0)
        self.dynamics_ready = state("dynamics_ready", (), 0.0)
        self.score_history = state("score_history", (self.history_size, m), 0.0)
        self.num_updates = state("num_updates", (), 0.0)
        self.view_patterns = state("view_patterns", (self.max_views, total), 1.0)
        self.num_views = state("num_views", (), 1.0)
        self.built = True

    def load_own_variables(self, store):
        # A saved file never carries an evaluation selection.
        super().load_own_variables(store)
        self.reset_visible()

    def dynamics(self):
        """The state dict the strategy reads (variables, traced in steps)."""
        return {
            "scores": self.scores.value,
            "derivatives": self.derivatives.value,
            "ready": self.dynamics_ready.value,
        }

    def _check_shapes(self, tokens, masks):
        """Checks the static shapes (unknown dimensions are not checked)."""
        batch_sizes = {}
        for i, (name, x, avail) in enumerate(zip(self.modalities, tokens, masks)):
            shape = tuple(x.shape)
            count = self.token_counts[i]
            expected = (shape[0], count, self.embed_dim)
            if len(shape) == 2 and count == 1:
                expected = (shape[0], self.embed_dim)
            if _differ(shape, expected):
                raise ValueError(
                    f"Modality '{name}': MIAMMasking was built for tokens of "
                    f"shape {_format_shape(expected)}; received shape {shape}."
                )
            expected = (shape[0], count)
            if avail is not None and _differ(
                tuple(avail.shape),
                expected[: len(avail.shape)] if count == 1 else expected,
            ):
                raise ValueError(
                    f"Modality '{name}': the availability mask must have shape "
                    f"{_format_shape(expected)} (one boolean per example and "
                    f"token, for tokens of shape {shape}); received shape "
                    f"{tuple(avail.shape)}."
                )
            if shape[0] is not None:
                batch_sizes[name] = shape[0]
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(
                "MIAMMasking expects the same batch size for every modality; "
                "received batch sizes "
                + ", ".join(f"'{n}': {size}" for n, size in batch_sizes.items())
                + "."
            )

    def call(self, inputs, mask=None, training=None, visible=None):
        tokens = self._as_list(inputs, "token tensors")
        masks = self._as_list(mask, "availability masks", allow_none=True)
        masks = [None if m is None else ops.convert_to_tensor(m) for m in masks]
        self._check_shapes(tokens, masks)
        parts, available = [], []
        for x, avail in zip(tokens, masks):
            x = ops.expand_dims(x, 1) if len(x.shape) == 2 else x
            ok = ops.ones(ops.shape(x)[:2], "bool")
            if avail is not None:
                avail = ops.cast(avail, "bool")
                ok = ops.expand_dims(avail, 1) if len(avail.shape) == 1 else avail
            if self.mask_non_finite:
                # A missing token is never kept, so the final `where` never
                # reads it (nor sends it a gradient).
                ok = ops.logical_and(ok, ops.logical_not(ops.any(is_missing(x), -1)))
            parts.append(x)
            available.append(ok)
        x = ops.concatenate(parts, axis=1)
        allowed = ops.concatenate(available, axis=1)
        batch_size = ops.shape(x)[0]
        # The evaluation selection: view v of `num_views` covers the v-th
        # contiguous block of the batch (a single view by default).
        num_views = ops.cast(self.num_views.value, "int32")
        view = ops.arange(batch_size, dtype="int32") * num_views
        view = view // ops.maximum(batch_size, 1)
        allowed = ops.logical_and(
            allowed, ops.take(self.view_patterns.value, view, axis=0) > 0.5
        )
        if visible is not None:
            allowed = ops.logical_and(allowed, ops.cast(visible, "bool"))
        keep = self._random_keep(allowed, batch_size) if training else allowed
        fill = ops.cast(self.mask_token, x.dtype)
        if self.slot_embedding is not None:
            fill = fill + ops.cast(self.slot_embedding, x.dtype)
        outputs = ops.where(ops.expand_dims(keep, -1), x, fill)
        if self.return_keep_mask:
            return outputs, keep
        self._keep = keep  # read by `compute_mask`, right after this call
        return outputs

    def _random_keep(self, allowed, batch_size):
        p = self.strategy.sample(
            batch_size if self.per_example else 1,
            self.num_modalities,
            seed=self.seed_generator,
            state=self.dynamics(),
            single_token=self.single_token,
        )
        p_token = ops.take(p, self.token_modality, axis=1)  # (B or 1, T)
        u = keras.random.uniform(
            (batch_size, self.num_tokens), seed=self.seed_generator
        )
        keep = ops.logical_and(u >= p_token, allowed)
        if self.ensure_visible:
            # Keep the available token closest to being kept.
            slack = ops.where(allowed, u - p_token, -2.0)
            rescue = ops.logical_and(
                ops.one_hot(ops.argmax(slack, axis=1), self.num_tokens) > 0.5,
                allowed,
            )
            none_kept = ops.logical_not(ops.any(keep, axis=1, keepdims=True))
            keep = ops.where(none_kept, rescue, keep)
        return keep

    def compute_mask(self, inputs, previous_mask=None):
        # The keep mask of the last call; none for symbolic inputs, so that a
        # functional model's next layer reads each call's own mask.
        symbolic = isinstance(self._as_list(inputs, "")[0], keras.KerasTensor)
        return None if self.return_keep_mask or symbolic else self._keep

    def compute_output_spec(self, inputs, mask=None, training=None, visible=None):
        tokens = self._as_list(inputs, "token tensors")
        self._check_shapes(
            tokens, self._as_list(mask, "availability masks", allow_none=True)
        )
        shape = (tokens[0].shape[0], self.num_tokens, self.embed_dim)
        out = keras.KerasTensor(shape, self.compute_dtype)
        if self.return_keep_mask:
            return out, keras.KerasTensor(shape[:2], "bool")
        return out

    # ------------------------------------------------------------------
    # Dynamics.
    # ------------------------------------------------------------------
    def _check_built(self, what):
        if not self.built:
            raise ValueError(
                f"MIAMMasking must be built (called once on inputs) before {what}."
            )

    def _check_vector(self, values, name, positive_only=False):
        values = np.asarray(values, dtype="float64").reshape(-1)
        if values.shape != (self.num_modalities,):
            raise ValueError(
                f"`{name}` must have one value per modality "
                f"({self.num_modalities}: {self.modalities}); received "
                f"{values.size} values."
            )
        # Checked as stored (float32): 1e39 is finite in float64 only.
        if not np.all(np.isfinite(values.astype("float32"))):
            raise ValueError(
                f"`{name}` must be finite in float32 (|x| < 3.4e38); received "
                f"{values.tolist()}."
            )
        if np.any(values < 0):
            raise ValueError(
                f"`{name}` must be >= 0 (higher score = better); received "
                f"{values.tolist()}."
            )
        return values.astype("float32")

    def update_dynamics(self, scores, derivatives, ready=True):
        """Stores new unimodal scores s_m and derivatives d_m (length M).

        Called between train steps (by `ModalityDynamics`, or by you). Under
        JAX, call it from a callback only after touching `self.model` (see
        the Keras JAX trainer's state rule). Scores are also appended to the
        score history used for derivative estimates.

        Args:
            scores: the unimodal validation scores, >= 0, higher = better.
            derivatives: |d s_m / d epoch|, >= 0.
            ready: whether the strategy may use the state now (False keeps
                MIAM at r_m = 1 and OPM idle, e.g. during a warm-up, while
                the scores still enter the history).
        """
        self._check_built("update_dynamics()")
        scores = self._check_vector(scores, "scores")
        derivatives = self._check_vector(derivatives, "derivatives")
        history = np.roll(keras.ops.convert_to_numpy(self.score_history), -1, axis=0)
        history[-1] = scores
        self.scores.assign(scores)
        self.derivatives.assign(derivatives)
        self.score_history.assign(history)
        self.num_updates.assign(float(keras.ops.convert_to_numpy(self.num_updates)) + 1)
        self.dynamics_ready.assign(1.0 if ready else 0.0)

    def reset_dynamics(self):
        """Forgets all scores: MIAM falls back to r_m = 1 (Beta hypercube)."""
        self._check_built("reset_dynamics()")
        m = self.num_modalities
        self.scores.assign(np.ones(m, "float32"))
        self.derivatives.assign(np.ones(m, "float32"))
        self.score_history.assign(np.zeros((self.history_size, m), "float32"))
        self.num_updates.assign(0.0)
        self.dynamics_ready.assign(0.0)

    def dynamics_history(self):
        """The stored score history, oldest first, as a (n, M) numpy array."""
        self._check_built("dynamics_history()")
        n = int(min(keras.ops.convert_to_numpy(self.num_updates), self.history_size))
        history = keras.ops.convert_to_numpy(self.score_history)
        return history[self.history_size - n :] if n else history[:0]

    def dynamics_state(self):
        """The current state as numpy: scores, derivatives, ready, history."""
        self._check_built("dynamics_state()")
        return {
            "scores": keras.ops.convert_to_numpy(self.scores),
            "derivatives": keras.ops.convert_to_numpy(self.derivatives),
            "ready": bool(keras.ops.convert_to_numpy(self.dynamics_ready) > 0.5),
            "history": self.dynamics_history(),
            "num_updates": int(keras.ops.convert_to_numpy(self.num_updates)),
        }

    def mask_ratios(self):
        """The strategy's per-modality ratios (MIAM's r_m, OPM's rho_m).

        Ones for strategies that do not read scores.
        """
        self._check_built("mask_ratios()")
        if not hasattr(self.strategy, "ratios"):
            return np.ones(self.num_modalities, "float32")
        return keras.ops.convert_to_numpy(
            self.strategy.ratios(self.num_modalities, self.dynamics())
        )

    def sample_probabilities(self, batch_size, seed=None):
        """Draws p (batch_size, M) from the strategy in its current state.

        Uses its own seed (`seed`, else the layer's), leaving the training
        draws untouched.
        """
        self._check_built("sample_probabilities()")
        seed = self.seed if seed is None else seed
        return keras.ops.convert_to_numpy(
            self.strategy.sample(
                int(batch_size),
                self.num_modalities,
                seed=keras.random.SeedGenerator(seed),
                state=self.dynamics(),
                single_token=self.single_token,
            )
        )

    def expected_mask_rates(self):
        """E[p_m] under the current state (analytic), shape (M,)."""
        self._check_built("expected_mask_rates()")
        return keras.ops.convert_to_numpy(
            self.strategy.mean(
                self.num_modalities, self.dynamics(), single_token=self.single_token
            )
        )

    # ------------------------------------------------------------------
    # Evaluation selections.
    # ------------------------------------------------------------------
    def visible_pattern(self, selection):
        """A (T,) boolean numpy pattern for a selection of modalities/tokens.

        Args:
            selection: None (everything); a modality name or a list of
                names (those modalities fully visible, the rest hidden); or
                a dict `{modality: True | False | (T_m,) booleans | token
                indices}` (modalities not listed are hidden).
        """
        self._check_built("visible_pattern()")
        pattern = np.zeros(self.num_tokens, bool)
        if selection is None:
            return ~pattern
        if isinstance(selection, str):
            selection = [selection]
        if not isinstance(selection, dict):
            selection = {name: True for name in selection}
        if not selection:
            raise ValueError(
                "An empty selection would hide every token; select at least "
                f"one of {self.modalities}."
            )
        for name, value in selection.items():
            if name not in self.token_slices:
                raise ValueError(
                    f"Unknown modality '{name}' in the selection; expected "
                    f"names among {self.modalities}."
                )
            start, stop = self.token_slices[name]
            count = stop - start
            value = np.asarray(value)
            if value.dtype == bool and value.ndim == 0:
                pattern[start:stop] = bool(value)
            elif value.dtype == bool:
                if value.shape != (count,):
                    raise ValueError(
                        f"Modality '{name}' has {count} tokens; the boolean "
                        f"selection has shape {value.shape}."
                    )
                pattern[start:stop] = value
            else:
                index = value.astype(int).reshape(-1)
                if index.size and (index.min() < 0 or index.max() >= count):
                    raise ValueError(
                        f"Token indices for '{name}' must be in [0, {count}); "
                        f"received {index.tolist()}."
                    )
                pattern[start + index] = True
        return pattern

    def set_views(self, selections):
        """Assigns one visibility pattern per contiguous block of the batch.

        With V selections, a batch of size B = V * b is read as V blocks of
        b examples, block v seeing `selections[v]`. Evaluation tools tile a
        batch V times to score V subsets in one pass.
        """
        self._check_built("set_views()")
        patterns = [self.visible_pattern(s) for s in selections]
        if not 1 <= len(patterns) <= self.max_views:
            raise ValueError(
                f"Expected between 1 and max_views={self.max_views} views; "
                f"received {len(patterns)}."
            )
        table = np.ones((self.max_views, self.num_tokens), "float32")
        table[: len(patterns)] = np.stack(patterns).astype("float32")
        self.view_patterns.assign(table)
        self.num_views.assign(float(len(patterns)))

    def set_visible(self, selection):
        """Restricts inference (and training) to a selection of tokens.

        See `visible_pattern()` for the forms of `selection`. Works inside
        compiled `predict` / `evaluate`: the pattern is a variable.
        """
        self.set_views([selection])

    def reset_visible(self):
        """Makes every (available) token visible again."""
        self.set_views([None])

    @contextlib.contextmanager
    def views(self, selections):
        """Context manager: `set_views(selections)`, then the prior visibility.

        On exit (errors included) the layer shows again what it showed on
        entry: everything, a `set_visible()` selection, or the views of an
        enclosing `views()` block.

        Under JAX, inside `fit`, touch the model (e.g. `callback.model`)
        before entering, so the variables read here are current.

        Example:

        >>> layer.set_visible(["env"])
        >>> with layer.views([["env"], ["image"]]):
        ...     predictions = model.predict_on_batch(tiled_batch)
        >>> # `env` alone is visible again.
        """
        self._check_built("views()")
        patterns = np.array(ops.convert_to_numpy(self.view_patterns.value))
        num_views = np.array(ops.convert_to_numpy(self.num_views.value))
        self.set_views(selections)
        try:
            yield self
        finally:
            self.view_patterns.assign(patterns)
            self.num_views.assign(num_views)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "modalities": list(self.modalities),
                "strategy": strategies_lib.serialize(self.strategy),
                "seed": self.seed,
                "per_example": self.per_example,
                "ensure_visible": self.ensure_visible,
                "positional_mask_tokens": self.positional_mask_tokens,
                "mask_non_finite": self.mask_non_finite,
                "return_keep_mask": self.return_keep_mask,
                "history_size": self.history_size,
                "max_views": self.max_views,
            }
        )
        return config
