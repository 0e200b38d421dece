"""How many channels each group loses: local ratios, global ranking, cluster and latency targets."""

from detprune.schedule.select import select_lowest
from detprune.schedule.local import local_removal

__all__ = ["local_removal", "select_lowest"]
