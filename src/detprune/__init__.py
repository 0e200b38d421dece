"""detprune: structured channel pruning for object detectors."""

from detprune.api import PruneReport, UnsupportedLayerError, check_ratio, groups, prune, trace
from detprune.graph import Group, TraceError
from detprune.io import CheckpointError, load, save

__version__ = "0.1.0"
__all__ = ["CheckpointError", "Group", "PruneReport", "TraceError", "UnsupportedLayerError", "check_ratio", "groups",
           "load", "prune", "save", "trace"]
