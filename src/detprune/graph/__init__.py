"""Trace a model, find its coupled channel groups, and remove channels physically."""

from detprune.graph.groups import Group, Member, build_groups
from detprune.graph.surgery import refresh_submodules, register_refresher, remove_channels
from detprune.graph.tracer import Slot, TraceError, TraceResult, Tracer
from detprune.inputs import call_model

__all__ = ["Group", "Member", "Slot", "TraceError", "TraceResult", "Tracer", "build_groups", "call_model",
           "refresh_submodules", "register_refresher", "remove_channels"]
