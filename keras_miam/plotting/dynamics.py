"""Training dynamics of MIAM: unimodal scores, derivatives and mask ratios."""

import numpy as np
from matplotlib import ticker

from keras_miam.plotting._figure import finish
from keras_miam.plotting._figure import new_figure

SUFFIXES = ("_score_derivative", "_mask_ratio")
LABELS = ("$|ds_m / d\\mathrm{epoch}|$ $d_m$", "mask ratio $r_m$")


def plot_dynamics(history, modalities=None, metric=None, path=None):
    """Plots s_m, d_m and r_m of each modality over the epochs.

    Reads the logs of `keras_miam.ModalityDynamics` (`val_<m>_<metric>`,
    `<m>_score_derivative`, `<m>_mask_ratio`, on a log scale); panels whose
    keys are absent are left out.

    Args:
        history: a `keras.callbacks.History` or its `.history` dict.
        modalities: modality names; by default read from the keys.
        metric: the metric of the score keys; by default read from them.
        path: optional file to write.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    history = model.fit(
        x, y, epochs=20, callbacks=[keras_miam.ModalityDynamics((x_val, y_val))]
    )
    keras_miam.plotting.plot_dynamics(history, path="dynamics.png")
    ```
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise ValueError(
            "`history` must be a keras History or its `.history` dict; "
            f"received {type(history).__name__}."
        )
    if modalities is None:
        found = (k[: -len(s)] for k in logs for s in SUFFIXES if k.endswith(s))
        modalities = [m for m in dict.fromkeys(found) if not m.startswith("val_")]
        if not modalities:
            raise ValueError(
                "No '<modality>_mask_ratio' or '<modality>_score_derivative' "
                f"keys in the history (keys: {sorted(logs)}); pass `modalities=`."
            )
    scores = _score_keys(logs, list(modalities), metric)
    names = sorted({key[len(f"val_{m}_") :] for m, key in scores.items()})
    metric_label = f" ({', '.join(names)})" if names else ""
    columns = [scores] + [{m: m + suffix for m in modalities} for suffix in SUFFIXES]
    panels = [
        (label, [(m, key) for m, key in keys.items() if key in logs])
        for label, keys in zip(
            (f"unimodal score $s_m${metric_label}", *LABELS), columns
        )
    ]
    panels = [panel for panel in panels if panel[1]]
    if not panels:
        raise ValueError(
            f"The history has no dynamics keys for the modalities {modalities} "
            f"(keys: {sorted(logs)})."
        )
    figure = new_figure((4.2 * len(panels), 3.4))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, keys) in zip(axes, panels):
        lines = []
        for m, key in keys:
            values = np.array([np.nan if v is None else v for v in logs[key]], float)
            if key.endswith(SUFFIXES[0]):
                values[:1] = np.nan  # The first epoch has no derivative.
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=m)
            lines.append(values)
        if key.endswith(SUFFIXES[1]):
            _ratio_axis(ax, np.concatenate(lines))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_ylabel(label)
    axes[0].legend(fontsize="small")
    figure.suptitle(f"MIAM dynamics per modality{metric_label}")
    return finish(figure, path)


def _ratio_axis(ax, ratios):
    """A log scale symmetric around r = 1, at least [1/2, 2], plain numbers."""
    ax.axhline(1.0, color="0.5", linewidth=0.8, linestyle="--")
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size and ratios.min() > 0:
        span = max(2.0, ratios.max(), 1.0 / ratios.min())
        ax.set_yscale("log")
        ax.set_ylim(1.0 / span**1.1, span**1.1)
        # Not the default log labels, which read "10 x 10^-1" on a narrow range.
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.yaxis.set_major_locator(ticker.LogLocator(base=2.0 if span < 16 else 10.0))


def _score_keys(logs, modalities, metric):
    """`{modality: 'val_<modality>_<metric>'}` for the keys that exist."""
    if metric is not None:
        return {m: f"val_{m}_{metric}" for m in modalities}
    keys = {}
    for m in modalities:
        # Keys of a longer modality name sharing the prefix are not ours.
        longer = [f"val_{o}_" for o in modalities if o.startswith(f"{m}_")]
        candidates = sorted(
            (key.endswith("loss"), key)
            for key in logs
            if key.startswith(f"val_{m}_")
            and not key.endswith(SUFFIXES)
            and not key.startswith(tuple(longer))
        )
        if candidates:
            keys[m] = candidates[0][1]
    return keys
