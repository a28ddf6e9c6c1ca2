"""Figures, drawn off-screen (pyplot untouched): each function returns the
matplotlib `Figure` and writes it to `path` if given."""

from keras_miam._lazy import lazy_exports

_NAMES = {
    "plot_dynamics": ".dynamics",
    "plot_hypercube": ".hypercube",
    "plot_image_contributions": ".contributions",
    "plot_shapley": ".contributions",
    "plot_strategies": ".hypercube",
    "plot_subsets": ".subsets",
    "plot_time_contributions": ".contributions",
}
# matplotlib (the `plot` extra) loads with the first figure function used.
__getattr__, __dir__ = lazy_exports(
    __name__, _NAMES, extras=dict.fromkeys(_NAMES.values(), "plot")
)

__all__ = sorted(_NAMES)
