"""The MIAMMasking layer: per-example modality masking from a hypercube strategy."""

import contextlib
import functools

import keras
import numpy as np
from keras import ops

from keras_miam import strategies as strategies_lib
from keras_miam.missing import is_missing


@keras.saving.register_keras_serializable(package="keras_miam")
class MIAMMasking(keras.layers.Layer):
    """Masks the tokens of several modalities with rates drawn from a strategy.

    Per example it draws p = (p_1, ..., p_M) from its strategy, masks each
    token of modality m with probability p_m, and replaces masked and
    missing tokens by a learned mask token plus a learned slot embedding.
    At inference only missing tokens and tokens outside the evaluation
    selection (`set_visible()`, `views()`, `visible=`) are masked. The
    strategy's state (scores, derivatives, a score history) lives in
    non-trainable variables set by `update_dynamics()`; a loaded model
    starts with every token visible.

    Args:
        modalities: list of modality names, in token order.
        strategy: a strategy name, config dict or
            `keras_miam.strategies.MaskingStrategy`. Defaults to `"miam"`.
        seed: optional int, seeds the masking draws.
        per_example: bool. Draw p per example (default) or per batch.
        ensure_visible: bool. Keep at least one available token of every
            example in training. Defaults to `True`.
        positional_mask_tokens: bool. Add the slot embedding (initialised
            at zero) to the mask token. Defaults to `True`.
        mask_non_finite: bool. Mask tokens holding a missing value
            (`keras_miam.missing.is_missing`). Defaults to `True`.
        return_keep_mask: bool. Return `(tokens, keep_mask)` (default), or
            the tokens with the keep mask as their Keras mask.
        history_size: int. Past score vectors kept. Defaults to `16`.
        max_views: int. Patterns `views()` can hold. Defaults to `64`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a dict `{modality: tokens}` (or a list in `modalities`
            order, or one tensor) of `(batch, T_m, D)` or `(batch, D)`
            tokens, `D` equal everywhere.
        mask: optional availability, same structure, `(batch, T_m)` or
            `(batch,)` booleans. Tokenizers' Keras masks fill it in.
        training: bool, whether to mask at random.
        visible: optional boolean `(T,)` or `(batch, T)` selection on the
            concatenated token axis.

    Returns:
        The `(batch, T, D)` tokens and the boolean `(batch, T)` keep mask,
        `True` = visible (the tokens alone if `return_keep_mask=False`).

    Example:

    ```python
    layer = keras_miam.layers.MIAMMasking(["env", "image"], seed=0)
    tokens = {"env": np.random.rand(8, 5, 16), "image": np.random.rand(8, 4, 16)}
    x, keep = layer(tokens, training=True)  # (8, 9, 16), (8, 9)
    layer.update_dynamics(scores=[0.9, 0.6], derivatives=[0.01, 0.05])
    layer.mask_ratios()  # [2.74, 0.37]: the dominant env is masked more
    layer.set_visible(["image"])  # evaluate on the image only
    ```

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
        self.modalities = [str(m) for m in modalities]
        if len(set(self.modalities)) != len(modalities):
            raise ValueError(f"Modality names must be unique; received {modalities}.")
        if int(history_size) < 2 or int(max_views) < 1:
            raise ValueError(
                "`history_size` must be >= 2 and `max_views` >= 1; received "
                f"history_size={history_size}, max_views={max_views}."
            )
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

    @property
    def num_modalities(self):
        return len(self.modalities)

    def _as_list(self, structure, what):
        names = self.modalities
        structure = dict.fromkeys(names) if structure is None else structure
        if isinstance(structure, dict):
            if set(structure) != set(names):
                raise ValueError(
                    f"MIAMMasking expected {what} for the modalities {names}; "
                    f"missing: {sorted(set(names) - set(structure))}, "
                    f"unexpected: {sorted(set(structure) - set(names))}."
                )
            return [structure[m] for m in names]
        is_shape = isinstance(structure, tuple) and all(
            d is None or isinstance(d, int) for d in structure
        )
        if isinstance(structure, (list, tuple)) and not is_shape:
            if len(structure) == len(names):
                return list(structure)
        elif len(names) == 1:
            return [structure]
        raise ValueError(
            f"MIAMMasking expected {what} as a dict {{modality: tensor}} or a "
            f"list of {len(names)} in the order {names}; received "
            f"{type(structure).__name__}."
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
        self.num_tokens = t = sum(self.token_counts)
        m = self.num_modalities
        self.token_modality = np.repeat(np.arange(m), self.token_counts).astype("int32")
        stops = np.cumsum(self.token_counts).tolist()
        starts = [stop - count for stop, count in zip(stops, self.token_counts)]
        self.token_slices = dict(zip(self.modalities, zip(starts, stops)))
        self.single_token = all(c == 1 for c in self.token_counts)
        self.mask_token = self.add_weight(
            name="mask_token",
            shape=(self.embed_dim,),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )
        self.slot_embedding = None
        if self.positional_mask_tokens:
            self.slot_embedding = self.add_weight(
                name="slot_embedding", shape=(t, self.embed_dim), initializer="zeros"
            )

        state = functools.partial(
            self.add_weight, dtype="float32", trainable=False, autocast=False
        )
        self.scores = state((m,), "ones", name="scores")
        self.derivatives = state((m,), "ones", name="derivatives")
        self.dynamics_ready = state((), "zeros", name="dynamics_ready")
        self.score_history = state(
            (self.history_size, m), "zeros", name="score_history"
        )
        self.num_updates = state((), "zeros", name="num_updates")
        self.view_patterns = state((self.max_views, t), "ones", name="view_patterns")
        self.num_views = state((), "ones", name="num_views")

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self.reset_visible()  # a saved file never carries an evaluation selection

    def _check_shapes(self, tokens, masks):
        sizes = {}
        for name, x, avail, count in zip(
            self.modalities, tokens, masks, self.token_counts
        ):
            shape = tuple(x.shape)
            batch = sizes[name] = shape[0]
            one = len(shape) == 2 and count == 1
            expected = (
                (batch, self.embed_dim) if one else (batch, count, self.embed_dim)
            )
            checks = [(shape, expected, "MIAMMasking was built for tokens of shape {}")]
            if avail is not None:
                rank = len(avail.shape) if count == 1 else 2
                what = "the availability mask must have shape {} (one boolean per "
                what += f"example and token, for tokens of shape {shape})"
                checks.append((tuple(avail.shape), (batch, count)[:rank], what))
            for got, expected, what in checks:
                if len(got) != len(expected) or any(
                    g and e and g != e for g, e in zip(got, expected)
                ):
                    expected = str(expected).replace("None", "batch")
                    raise ValueError(
                        f"Modality '{name}': {what.format(expected)}; received "
                        f"shape {got}."
                    )
        if len(set(sizes.values()) - {None}) > 1:
            sizes = ", ".join(f"'{n}': {b}" for n, b in sizes.items())
            raise ValueError(
                "MIAMMasking expects the same batch size for every modality; "
                f"received batch sizes {sizes}."
            )

    def call(self, inputs, mask=None, training=None, visible=None):
        tokens = self._as_list(inputs, "token tensors")
        masks = self._as_list(mask, "availability masks")
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
        # View v of `num_views` covers the v-th contiguous block of the batch.
        num_views = ops.cast(self.num_views.value, "int32")
        view = ops.arange(batch_size, dtype="int32") * num_views
        view = view // ops.maximum(batch_size, 1)
        patterns = ops.take(self.view_patterns.value, view, axis=0)
        allowed = ops.logical_and(allowed, patterns > 0.5)
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
        # The keep mask of the call Keras just made; None after a symbolic one.
        return None if self.return_keep_mask else self._keep

    def compute_output_spec(self, inputs, mask=None, training=None, visible=None):
        tokens = self._as_list(inputs, "token tensors")
        self._check_shapes(tokens, self._as_list(mask, "availability masks"))
        self._keep = None
        shape = (tokens[0].shape[0], self.num_tokens, self.embed_dim)
        out = keras.KerasTensor(shape, self.compute_dtype)
        if self.return_keep_mask:
            return out, keras.KerasTensor(shape[:2], "bool")
        return out

    def _check_built(self):
        if not self.built:
            raise ValueError(
                "MIAMMasking must be built (called once on inputs) before its "
                "dynamics or selections are read or set."
            )

    def dynamics(self):
        """The state dict the strategy reads (variables, traced in steps)."""
        self._check_built()
        return {
            "scores": self.scores.value,
            "derivatives": self.derivatives.value,
            "ready": self.dynamics_ready.value,
        }

    def _check_vector(self, values, name):
        self._check_built()
        values = np.asarray(values, dtype="float64").reshape(-1)
        # Checked as stored (float32): 1e39 is finite in float64 only.
        stored = values.astype("float32")
        valid = np.isfinite(stored) & (stored >= 0)
        if len(values) != self.num_modalities or not valid.all():
            raise ValueError(
                f"`{name}` must hold one value per modality ({self.modalities}), "
                "each >= 0 (higher = better) and finite in float32 (|x| < "
                f"3.4e38); received {values.tolist()}."
            )
        return stored

    def update_dynamics(self, scores, derivatives, ready=True):
        """Stores new unimodal scores s_m and derivatives d_m, between steps
        (under JAX, from a callback after touching `self.model`).

        Args:
            scores: unimodal validation scores, >= 0, higher = better.
            derivatives: |d s_m / d epoch|, >= 0.
            ready: whether the strategy may use the state (`False` keeps
                MIAM at r_m = 1, e.g. during a warm-up).
        """
        scores = self._check_vector(scores, "scores")
        derivatives = self._check_vector(derivatives, "derivatives")
        history = np.roll(ops.convert_to_numpy(self.score_history), -1, axis=0)
        history[-1] = scores
        self.scores.assign(scores)
        self.derivatives.assign(derivatives)
        self.score_history.assign(history)
        self.num_updates.assign(self.num_updates + 1.0)
        self.dynamics_ready.assign(1.0 if ready else 0.0)

    def reset_dynamics(self):
        """Forgets all scores: MIAM falls back to r_m = 1 (Beta hypercube)."""
        self._check_built()
        for v in (self.scores, self.derivatives):
            v.assign(np.ones(v.shape, "float32"))
        for v in (self.score_history, self.num_updates, self.dynamics_ready):
            v.assign(np.zeros(v.shape, "float32"))

    def dynamics_history(self):
        """The stored score history, oldest first, as a `(n, M)` array."""
        return self.dynamics_state()["history"]

    def dynamics_state(self):
        """The state as numpy: scores, derivatives, ready, history, updates."""
        state = {k: ops.convert_to_numpy(v) for k, v in self.dynamics().items()}
        state["num_updates"] = n = int(ops.convert_to_numpy(self.num_updates))
        history = ops.convert_to_numpy(self.score_history)
        state["history"] = history[max(len(history) - n, 0) :]
        state["ready"] = bool(state["ready"] > 0.5)
        return state

    def mask_ratios(self):
        """The strategy's ratios (MIAM's r_m, OPM's rho_m), else ones, `(M,)`."""
        if not hasattr(self.strategy, "ratios"):
            return np.ones(self.num_modalities, "float32")
        return ops.convert_to_numpy(
            self.strategy.ratios(self.num_modalities, self.dynamics())
        )

    def sample_probabilities(self, batch_size, seed=None):
        """Draws p `(batch_size, M)` with its own seed (`seed`, else the layer's)."""
        return ops.convert_to_numpy(
            self.strategy.sample(
                int(batch_size),
                self.num_modalities,
                seed=keras.random.SeedGenerator(self.seed if seed is None else seed),
                state=self.dynamics(),
                single_token=self.single_token,
            )
        )

    def expected_mask_rates(self):
        """E[p_m] under the current state (analytic), shape `(M,)`."""
        return ops.convert_to_numpy(
            self.strategy.mean(
                self.num_modalities, self.dynamics(), single_token=self.single_token
            )
        )

    def visible_pattern(self, selection):
        """The `(T,)` boolean pattern of `selection`: `None` (everything), a
        modality name or list of names (visible, the rest hidden), or a dict
        `{modality: bool | (T_m,) booleans | token indices}` (others hidden)."""
        self._check_built()
        pattern = np.zeros(self.num_tokens, bool)
        if selection is None:
            return ~pattern
        if isinstance(selection, str):
            selection = [selection]
        if not isinstance(selection, dict):
            selection = dict.fromkeys(selection, True)
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
            value = np.asarray(value)
            if value.dtype == bool and value.ndim == 0:
                value = np.full(stop - start, value)
            if value.dtype != bool:
                index = value.astype(int).reshape(-1)
                if np.any((index < 0) | (index >= stop - start)):
                    raise ValueError(
                        f"Token indices for '{name}' must be in [0, "
                        f"{stop - start}); received {index.tolist()}."
                    )
                value = np.isin(np.arange(stop - start), index)
            if value.shape != (stop - start,):
                raise ValueError(
                    f"Modality '{name}' has {stop - start} tokens; the boolean "
                    f"selection has shape {value.shape}."
                )
            pattern[start:stop] = value
        return pattern

    def set_views(self, selections):
        """Shows `selections[v]` (see `visible_pattern()`) to the v-th of V
        contiguous blocks of each batch (a batch of V * b examples)."""
        patterns = [self.visible_pattern(s) for s in selections]
        if not 1 <= len(patterns) <= self.max_views:
            raise ValueError(
                f"Expected between 1 and max_views={self.max_views} views; "
                f"received {len(patterns)}."
            )
        table = np.ones((self.max_views, self.num_tokens), "float32")
        table[: len(patterns)] = patterns
        self.view_patterns.assign(table)
        self.num_views.assign(float(len(patterns)))

    def set_visible(self, selection):
        """Shows only `selection` (see `visible_pattern()`), compiled steps too."""
        self.set_views([selection])

    def reset_visible(self):
        """Makes every (available) token visible again."""
        self.set_views([None])

    @contextlib.contextmanager
    def views(self, selections):
        """Context manager: `set_views(selections)`, then the prior visibility
        (under JAX, inside `fit`, touch `callback.model` before entering)."""
        self._check_built()
        variables = (self.view_patterns, self.num_views)
        prior = [np.array(ops.convert_to_numpy(v.value)) for v in variables]
        self.set_views(selections)
        try:
            yield self
        finally:
            for variable, value in zip(variables, prior):
                variable.assign(value)

    def get_config(self):
        names = "seed per_example ensure_visible positional_mask_tokens "
        names += "mask_non_finite return_keep_mask history_size max_views"
        return {
            **super().get_config(),
            "modalities": list(self.modalities),
            "strategy": strategies_lib.serialize(self.strategy),
            **{name: getattr(self, name) for name in names.split()},
        }
