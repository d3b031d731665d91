"""The method's named choices (partition methods, weight strategies), in a module that imports
nothing heavy, so the command line can offer them without loading numpy or scikit-learn."""

from __future__ import annotations

from enum import Enum


class PartitionMethod(str, Enum):
    """APA's semantic partition (by sample or by user) and the baselines."""

    APA = "apa"
    APA_USER = "apa-user"
    RANDOM = "random"
    USER = "user"
    BEKM = "bekm"


METHODS = tuple(method.value for method in PartitionMethod)


class Strategy(str, Enum):
    """How adapter weights are chosen per sample."""

    ADAPTIVE = "adaptive"
    AVERAGE = "average"
    MAJOR = "major"
    SEMANTIC = "semantic"


STRATEGIES = tuple(strategy.value for strategy in Strategy)


SERVED_POINTS = 4  # grid points `tune` shortlists by the proxy for scoring with the served merge
