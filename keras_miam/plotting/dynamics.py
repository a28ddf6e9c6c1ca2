"""Training dynamics of MIAM: unimodal scores, derivatives and mask ratios."""

import numpy as np
from matplotlib import ticker

from keras_miam.plotting._figure import finish
from keras_miam.plotting._figure import new_figure

RATIO_SUFFIX = "_mask_ratio"
DERIVATIVE_SUFFIX = "_score_derivative"


def plot_dynamics(history, modalities=None, metric=None, path=None):
    """Plots s_m, d_m and r_m of each modality over the epochs.

    Reads the logs of the `ModalityDynamics` callback:

    - s_m, the unimodal validation score: `val_<modality>_<metric>`;
    - d_m, the estimated |d s_m / d epoch|: `<modality>_score_derivative`;
    - r_m, the mask ratio (MIAM's r_m, OPM's rho_m):
      `<modality>_mask_ratio` (log scale; r_m > 1 = masked more).

    Panels whose keys are absent are left out.

    Args:
        history: a `keras.callbacks.History` (what `fit` returns) or its
            `.history` dict `{key: [one value per epoch]}`.
        modalities: modality names; by default read from the
            `<modality>_mask_ratio` and `<modality>_score_derivative` keys.
        metric: the metric in the score keys (`val_<modality>_<metric>`);
            by default the one the keys show (a non-loss one first).
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> history = model.fit(x, y, epochs=20,
    ...                     callbacks=[km.ModalityDynamics((x_val, y_val))])
    >>> plot_dynamics(history, path="dynamics.png")

    Reference:
        Zbinden et al., "MIAM: Modality Imbalance-Aware Masking for
        Multimodal Ecological Applications", ICLR 2026.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise ValueError(
            "`history` must be a keras History or its `.history` dict; "
            f"received {type(history).__name__}."
        )
    if modalities is None:
        modalities = []
        for key in logs:
            for suffix in (RATIO_SUFFIX, DERIVATIVE_SUFFIX):
                if key.endswith(suffix) and not key.startswith("val_"):
                    name = key[: -len(suffix)]
                    if name not in modalities:
                        modalities.append(name)
        if not modalities:
            raise ValueError(
                "No '<modality>_mask_ratio' or '<modality>_score_derivative' "
                f"keys in the history (keys: {sorted(logs)}); pass "
                "`modalities=`."
            )
    modalities = list(modalities)
    score_keys = _score_keys(logs, modalities, metric)
    names = {key[len(f"val_{m}_") :] for m, key in score_keys.items()}
    metric_label = f" ({', '.join(sorted(names))})" if names else ""
    panels = [
        (f"unimodal score $s_m${metric_label}", score_keys, False),
        (
            "$|ds_m / d\\mathrm{epoch}|$ $d_m$",
            {m: f"{m}{DERIVATIVE_SUFFIX}" for m in modalities},
            False,
        ),
        (
            "mask ratio $r_m$",
            {m: f"{m}{RATIO_SUFFIX}" for m in modalities},
            True,
        ),
    ]
    panels = [
        (label, {m: key for m, key in keys.items() if key in logs}, log)
        for label, keys, log in panels
    ]
    panels = [panel for panel in panels if panel[1]]
    if not panels:
        raise ValueError(
            f"The history has no dynamics keys for the modalities {modalities} "
            f"(keys: {sorted(logs)})."
        )
    figure = new_figure((4.2 * len(panels), 3.4))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, keys, log) in zip(axes, panels):
        series = {m: _as_series(logs[key]) for m, key in keys.items()}
        if label.startswith("$|ds_m"):
            # The first epoch has one score: no derivative was measured.
            for values in series.values():
                values[:1] = np.nan
        for m, values in series.items():
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=m)
        if log:
            ax.axhline(1.0, color="0.5", linewidth=0.8, linestyle="--")
            finite = np.concatenate(list(series.values()))
            finite = finite[np.isfinite(finite)]
            if finite.size and finite.min() > 0:
                # Symmetric around r = 1, at least [1/2, 2], plain numbers
                # (the default log labels read "10 x 10^-1" on a narrow range).
                span = max(2.0, finite.max(), 1.0 / finite.min())
                ax.set_yscale("log")
                ax.set_ylim(1.0 / span**1.1, span**1.1)
                plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
                ax.yaxis.set_major_formatter(plain)
                ax.yaxis.set_minor_formatter(ticker.NullFormatter())
                ax.yaxis.set_major_locator(
                    ticker.LogLocator(base=2.0 if span < 16 else 10.0)
                )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_ylabel(label)
    axes[0].legend(fontsize="small")
    figure.suptitle(f"MIAM dynamics per modality{metric_label}")
    return finish(figure, path)


def _as_series(values):
    """Per-epoch values as floats, None (no value that epoch) as NaN."""
    return np.array([np.nan if v is None else float(v) for v in values], "float64")


def _score_keys(logs, modalities, metric):
    """`{modality: 'val_<modality>_<metric>'}` for the keys that exist."""
    keys = {}
    for m in modalities:
        if metric is not None:
            keys[m] = f"val_{m}_{metric}"
            continue
        # Keys of a longer modality name sharing the prefix are not ours.
        longer = [o for o in modalities if o != m and o.startswith(f"{m}_")]
        candidates = [
            key
            for key in logs
            if key.startswith(f"val_{m}_")
            and not key.endswith((RATIO_SUFFIX, DERIVATIVE_SUFFIX))
            and not any(key.startswith(f"val_{o}_") for o in longer)
        ]
        candidates.sort(key=lambda key: (key.endswith("loss"), key))
        if candidates:
            keys[m] = candidates[0]
    return keys
