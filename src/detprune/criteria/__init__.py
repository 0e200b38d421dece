"""Importance criteria, one module per method, selected by name through :func:`get_criterion`."""

from detprune.criteria import magnitude, random  # noqa: F401  (register)
from detprune.criteria.base import CRITERIA, Criterion, get_criterion, register_criterion

__all__ = ["CRITERIA", "Criterion", "get_criterion", "register_criterion"]
