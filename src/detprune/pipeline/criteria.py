"""Criteria by name, looked up in the registry at run time, and the keyword arguments they accept.

Criteria are added by other modules over time (attribution, coupling, ...), so nothing here
lists them: a name is valid when :data:`detprune.criteria.CRITERIA` holds it when the run
starts. Data-driven criteria get the calibration loader as ``data`` and, when their
constructor accepts them, ``adapter`` (loss and class scores), ``max_batches`` and ``progress``.
"""

from __future__ import annotations

import inspect
from typing import Any

from detprune.criteria import CRITERIA


# keywords the pipeline fills in itself (Python objects and run settings): not for `-o KEY=VALUE`
PIPELINE_KWARGS = frozenset({"adapter", "forward_fn", "loss_fn", "scores_fn", "boxes_fn", "data", "max_batches",
                             "progress"})


def available() -> list[str]:
    return sorted(CRITERIA)


def check_criterion(name: str) -> None:
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; available: {', '.join(available())}")


def split_available(names: list[str]) -> tuple[list[str], list[str]]:
    """``(registered, missing)``, order kept."""
    return [n for n in names if n in CRITERIA], [n for n in names if n not in CRITERIA]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Build criterion ``name`` with the ``options`` it takes, so that a bad value or pair of values
    (``detected_only`` without ``use_labels``) fails when the recipe is checked, not after training."""
    try:
        CRITERIA[name](**taken(name, options))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"criterion {name!r}: {exc}") from exc


def needs_data(name: str) -> bool:
    return bool(getattr(CRITERIA[name], "needs_data", False))


def accepted_kwargs(name: str) -> set[str] | None:
    """Keyword names the criterion's constructors take (None: anything, a bare ``**kwargs`` chain)."""
    names: set[str] = set()
    for cls in CRITERIA[name].__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names  # the chain stops here: nothing further up receives extra keywords
    return None


def taken(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` criterion ``name`` takes (one set of options serves several criteria)."""
    accepted = accepted_kwargs(name)
    return {k: v for k, v in options.items() if accepted is None or k in accepted}


def criterion_kwargs(name: str, adapter: Any, calib_batches: int, options: dict[str, Any],
                     progress: bool = True) -> dict[str, Any]:
    """What the pipeline can offer and the user's ``options``, each only if the criterion takes it
    (validation rejects an option none of the named criteria takes)."""
    offered = {"adapter": adapter, "max_batches": calib_batches, "progress": progress}
    accepted = accepted_kwargs(name)
    kwargs = {k: v for k, v in offered.items() if accepted is not None and k in accepted}
    kwargs.update(taken(name, options))
    return kwargs
