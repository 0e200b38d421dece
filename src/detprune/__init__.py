"""detprune: structured channel pruning for object detectors."""

from detprune.api import PruneReport, UnsupportedLayerError, check_ratio, groups, prune, trace
from detprune.graph import Group, TraceError

__version__ = "0.1.0"
__all__ = ["Group", "PruneReport", "TraceError", "UnsupportedLayerError", "check_ratio", "groups", "prune", "trace"]
