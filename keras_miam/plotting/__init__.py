"""Figures: strategies on the hypercube, dynamics, subsets, contributions.

Every function draws off-screen (Agg canvas, no display, pyplot untouched),
writes the figure when given `path` and returns the matplotlib `Figure`.
"""

from keras_miam.plotting.contributions import plot_image_contributions
from keras_miam.plotting.contributions import plot_shapley
from keras_miam.plotting.contributions import plot_time_contributions
from keras_miam.plotting.dynamics import plot_dynamics
from keras_miam.plotting.hypercube import plot_hypercube
from keras_miam.plotting.hypercube import plot_strategies
from keras_miam.plotting.subsets import plot_subsets

__all__ = [
    "plot_dynamics",
    "plot_hypercube",
    "plot_image_contributions",
    "plot_shapley",
    "plot_strategies",
    "plot_subsets",
    "plot_time_contributions",
]
