"""Per-layer ratios: a mapping (or YAML file) from module path prefixes or group indices to ratios.

    # ratios.yaml
    default: 0.3            # groups no key matches (0 when absent: left untouched)
    ratios:
      backbone16.conv0: 0.0 # protect the stem
      backbone32: 0.6       # every group produced inside backbone32
      7: 0.5                # group 7, as numbered by detprune.groups / `detprune inspect`

A flat mapping (without ``ratios:``) works too. A path key names the groups whose *producing*
layers (the member slots with role "out") lie at or under that module path, so a consumer
conv's input slot does not drag its producer's group along. The most specific key wins and
integer keys beat paths. A key that matches nothing is an error: a typo would otherwise
silently leave a layer unpruned.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detprune.atomic import atomic_write_text
from detprune.graph.groups import Group
from detprune.schedule.local import n_to_remove
from detprune.schedule.select import select_lowest

RatioSpec = Mapping[str | int, float]


def load_ratios(path: str | Path) -> tuple[dict[str | int, float], float | None]:
    """(key -> ratio, default) from a YAML file in either layout of the module docstring."""
    data = yaml.safe_load(Path(path).read_text())
    return split_spec(data, str(path))


def split_spec(data: Any, where: str = "ratios") -> tuple[dict[str | int, float], float | None]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of module path / group index -> ratio")
    default = data.get("default")
    body = data.get("ratios", {k: v for k, v in data.items() if k != "default"})
    if not isinstance(body, Mapping):
        raise ValueError(f"{where}: 'ratios' must be a mapping")
    out: dict[str | int, float] = {}
    for k, v in body.items():
        out[k if isinstance(k, int) else str(k)] = _check(v, f"{where}[{k!r}]")
    return out, None if default is None else _check(default, f"{where}[default]")


def _check(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        raise ValueError(f"{name} must be a ratio in [0, 1), got {v!r}")
    return float(v)


def producers(group: Group) -> list[str]:
    """Module paths whose output channels the group holds (all members if none produce)."""
    out = [m.slot.module_path for m in group.members if m.slot.role == "out"]
    return out or [m.slot.module_path for m in group.members]


def group_key(group: Group) -> str:
    """A stable, human-readable name of a group: its first producing module path."""
    return producers(group)[0] or "<model>"


def _matches(path: str, key: str) -> bool:
    return key == "" or path == key or path.startswith(key + ".")


def resolve_ratios(groups: list[Group], spec: RatioSpec | str | Path, default: float | None = None) -> dict[int, float]:
    """Ratio of every group from ``spec`` (a mapping or a YAML path); unmatched groups get the default."""
    if isinstance(spec, (str, Path)):
        mapping, file_default = load_ratios(spec)
    else:
        mapping, file_default = split_spec(dict(spec))
    fallback = default if default is not None else (file_default if file_default is not None else 0.0)
    by_index = {g.index: g for g in groups}
    unknown = [k for k in mapping if isinstance(k, int) and k not in by_index]
    out: dict[int, float] = {}
    used: set[str | int] = set()
    for g in groups:
        if g.index in mapping:
            out[g.index] = mapping[g.index]
            used.add(g.index)
            continue
        paths = producers(g)
        hits = [k for k in mapping if isinstance(k, str) and any(_matches(p, k) for p in paths)]
        if hits:
            best = max(hits, key=len)
            out[g.index] = mapping[best]
            used.add(best)
        else:
            out[g.index] = fallback
    unknown += [k for k in mapping if isinstance(k, str) and k not in used
                and not any(_matches(p, k) for g in groups for p in producers(g))]
    if unknown:
        raise ValueError(f"ratio keys match no coupling group: {unknown}; keys are module path prefixes of "
                         "producing layers or group indices (see `detprune inspect`)")
    return out


def layerwise_removal(groups: list[Group], scores: dict[int, np.ndarray], ratios: Mapping[int, float],
                      round_to: int | None = None) -> dict[int, np.ndarray]:
    return {g.index: select_lowest(g, scores[g.index], n_to_remove(g, ratios.get(g.index, 0.0)),
                                   round_to=round_to)
            for g in groups}


def dump_ratios(groups: list[Group], ratios: Mapping[int, float], path: str | Path,
                default: float | None = None) -> Path:
    """Write per-group ratios keyed by producing module path, loadable by :func:`resolve_ratios`."""
    # every prunable group is written, even at the default: a shorter key must not capture it on reload
    body = {group_key(g): round(float(ratios.get(g.index, default or 0.0)), 4) for g in groups if g.prunable}
    data: dict[str, Any] = {"ratios": body}
    if default is not None:
        data["default"] = float(default)
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))  # a reader never sees half a file
