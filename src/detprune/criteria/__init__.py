"""Importance criteria, one module per method, selected by name through :func:`get_criterion`.

Weight-only: ``l1``, ``l2``, ``fpgm``, ``bn_scale``, ``random``. Data-driven (``data=`` loader,
statistics streamed by :mod:`detprune.criteria.collect`): ``coupling`` (DCODP), ``chip``,
``hrank``; with gradients of a loss (``loss_fn=`` or ``adapter=``): ``taylor``, ``wrg``; with
gradients of the class scores: ``attribution``.
"""

from detprune.criteria import (  # noqa: F401  (register)
    attribution,
    bn_scale,
    chip,
    coupling,
    fpgm,
    hrank,
    magnitude,
    random,
    taylor,
    wrg,
)
from detprune.criteria.base import CRITERIA, Criterion, get_criterion, register_criterion
from detprune.criteria.bn_scale import bn_l1_penalty
from detprune.criteria.collect import ActivationCollector

__all__ = ["CRITERIA", "ActivationCollector", "Criterion", "bn_l1_penalty", "get_criterion", "register_criterion"]
