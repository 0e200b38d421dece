"""detprune: structured channel pruning for object detectors."""

__version__ = "0.1.0"
