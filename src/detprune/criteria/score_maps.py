"""Where a detector's class scores live in its raw outputs (the score-location interface).

Attribution pruning needs differentiable class scores per level and position. A *scores_fn*
maps the raw output of ``model(inputs)`` (with grad) to one tensor per output level:

    scores_fn(raw) -> list[Tensor]     each [B, A, nc, H, W]   (A = anchors per position)

By convention the defaults below return **logits** (pre-sigmoid class outputs); a scores_fn in
probability space is used with ``space="prob"`` in the attribution criterion. Defaults:

* built-in YOLOs (``detprune.detection.models``): the model's/adapter's ``class_logits``
  accessor (YOLOv3-tiny: A = 3, logits after the 5 box/objectness entries of each anchor;
  YOLOv8: A = 1, the last nc channels of each level's cat(box, cls) map);
* Ultralytics ``DetectionModel`` (:func:`ultralytics_scores`): train-mode output is a dict
  ``{"boxes", "scores": [B, nc, sum HW], "feats"}`` (8.4+; end-to-end heads nest it under
  ``"one2many"``/``"one2one"``) and eval-mode output is ``(decoded, that dict)``; older versions give
  per-level ``cat(box, cls)`` maps ``[B, 4 * reg_max + nc, H, W]`` whose last nc channels are the
  class logits. The one-to-many branch is used (it is the one trained through the backbone).

A *boxes_fn* (``Attribution(with_boxes=True)``) maps the same raw output to the box outputs at those
positions, per level [B, A, k, H, W]: the adapter's/model's ``box_outputs`` (built-in YOLOs), or for
Ultralytics' anchor-free heads each side's DFL expected distance.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn

from detprune.detection.models.box_coder import dfl_expectation

ScoresFn = Callable[[Any], list[Tensor]]


def _unflatten_levels(flat: Tensor, feats: list[Tensor]) -> list[Tensor]:
    """[B, C, sum HW] -> per level [B, 1, C, H, W], level sizes from ``feats``."""
    out, start = [], 0
    for f in feats:
        h, w = f.shape[-2:]
        out.append(flat[..., start:start + h * w].unflatten(-1, (h, w)).unsqueeze(1))
        start += h * w
    return out


def _ultralytics_levels(raw: Any, key: str, legacy: Callable[[Tensor], Tensor], hint: str) -> list[Tensor]:
    """Per level [B, 1, C, H, W]: ``raw[key]`` of the dict layout, or ``legacy(map)`` of each per-level map."""
    if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[1], (dict, list, tuple)):
        raw = raw[1]  # eval mode: (decoded predictions, raw)
    if isinstance(raw, dict):
        d = raw if key in raw else (raw.get("one2many") or raw.get("one2one"))  # {} when fused away
        return _unflatten_levels(d[key], d["feats"])
    if isinstance(raw, (list, tuple)) and all(isinstance(r, Tensor) and r.dim() == 4 for r in raw):
        return [legacy(r).unsqueeze(1) for r in raw]
    raise TypeError(f"unrecognised Ultralytics head output {type(raw).__name__}; pass {hint}=")


def ultralytics_scores(raw: Any, nc: int) -> list[Tensor]:
    """Class logits per level [B, 1, nc, H, W] from an Ultralytics Detect head's raw output."""
    return _ultralytics_levels(raw, "scores", lambda r: r[:, -nc:], "scores_fn")


def ultralytics_boxes(raw: Any, reg_max: int) -> list[Tensor]:
    """Box outputs per level [B, 1, 4, H, W] (DFL expected distances) from an Ultralytics Detect head's raw output."""
    levels = _ultralytics_levels(raw, "boxes", lambda r: r[:, : 4 * reg_max], "boxes_fn")
    if reg_max <= 1:  # direct ltrb regression: nothing to decode
        return levels
    return [dfl_expectation(lv.movedim(2, -1), reg_max).movedim(-1, 2) for lv in levels]


def _ultralytics_head(model: nn.Module) -> nn.Module | None:
    for m in model.modules():
        if all(hasattr(m, a) for a in ("nc", "reg_max", "no", "stride")) and hasattr(m, "cv3"):
            return m
    return None


def _accessor(model: nn.Module, adapter: Any, attr: str, from_head: Callable[[nn.Module], ScoresFn],
              error: str) -> ScoresFn:
    """``attr`` of the adapter or model, else ``from_head`` of an Ultralytics Detect head, else ValueError."""
    for owner in (adapter, model):
        if owner is not None and callable(getattr(owner, attr, None)):
            return getattr(owner, attr)
    head = _ultralytics_head(model)
    if head is not None:
        return from_head(head)
    raise ValueError(f"no known {error}")


def default_scores_fn(model: nn.Module, adapter: Any = None) -> ScoresFn:
    """The class-logit accessor for ``model``: adapter/model ``class_logits`` or Ultralytics' Detect."""
    def from_head(head: nn.Module) -> ScoresFn:
        nc = int(head.nc)
        return lambda raw: ultralytics_scores(raw, nc)

    return _accessor(model, adapter, "class_logits", from_head,
                     f"class-score layout for {type(model).__name__}: pass "
                     "scores_fn=callable(raw_outputs) -> list of [B, A, nc, H, W] class logits")


def default_boxes_fn(model: nn.Module, adapter: Any = None) -> ScoresFn:
    """The box-output accessor for ``model``: adapter/model ``box_outputs`` or Ultralytics' Detect."""
    def from_head(head: nn.Module) -> ScoresFn:
        reg_max = int(head.reg_max)
        return lambda raw: ultralytics_boxes(raw, reg_max)

    return _accessor(model, adapter, "box_outputs", from_head,
                     f"box-output layout for {type(model).__name__}: pass boxes_fn=callable(raw_outputs) -> "
                     "list of [B, A, k, H, W] box outputs, or with_boxes=False")
