"""Figures drawn off-screen with Agg: no display and no pyplot state."""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(figsize, layout="constrained"):
    """A new Figure on an Agg canvas (pyplot's figure list is untouched)."""
    figure = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def figure_and_axes(ax, figsize, **subplot_kw):
    """`ax` and its figure, or a new figure with one subplot."""
    if ax is not None:
        return ax.figure, ax
    figure = new_figure(figsize)
    return figure, figure.add_subplot(**subplot_kw)


def finish(figure, path):
    """Writes the figure to `path` (format from the extension), returns it."""
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
