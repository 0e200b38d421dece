"""Hand-computed precision / recall / F1, edge cases, and the adapter-driven ``evaluate`` loop."""

from __future__ import annotations

import io
import math

import pytest
import torch
from rich.console import Console
from torch import Tensor, nn

from detprune.detection.evaluate import evaluate, evaluate_predictions
from detprune.detection.types import Prediction, Target


def T(boxes: list[list[float]], labels: list[int], image_id: int = 0) -> Target:
    return Target(
        boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.int64),
        image_id=image_id,
    )


def P(boxes: list[list[float]], scores: list[float], labels: list[int]) -> Prediction:
    return Prediction(
        boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor(scores),
        labels=torch.tensor(labels, dtype=torch.int64),
    )


A, B = [0, 0, 10, 10], [20, 20, 30, 30]


def test_duplicates_low_scores_and_other_classes() -> None:
    # A found twice (2nd is FP), B only below score 0.25 (ignored -> FN), a class-1 box without gt (FP)
    pred = P([A, A, B, [50, 50, 60, 60]], [0.9, 0.8, 0.1, 0.5], [0, 0, 0, 1])
    m = evaluate_predictions([pred], [T([A, B], [0, 0])], num_classes=2)
    assert (m.tp, m.fp, m.fn) == (1, 2, 1)
    assert m.precision == pytest.approx(1 / 3) and m.recall == pytest.approx(1 / 2)
    assert m.f1 == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))  # 0.4
    assert [c.name for c in m.per_class] == ["0"]  # class 1 has no gt: not listed, not averaged


def test_greedy_matching_follows_score_not_optimal_assignment() -> None:
    g1, g2 = [0, 0, 10, 10], [0, 5, 10, 15]  # IoU(g1, g2) = 1/3
    high = [0, 2, 10, 12]  # IoU 0.667 with g1, 0.538 with g2 -> takes g1 first
    m = evaluate_predictions([P([g1, high], [0.3, 0.9], [0, 0])], [T([g1, g2], [0, 0])], num_classes=1)
    # an optimal matcher would pair high-g2 and low-g1 (2 TP); greedy-by-score gives 1 TP, 1 FP
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)
    assert m.f1 == pytest.approx(0.5)


def test_iou_threshold_is_inclusive() -> None:
    pred, gt = P([[0, 0, 10, 10]], [0.9], [0]), T([[0, 0, 10, 20]], [0])  # IoU exactly 0.5
    assert evaluate_predictions([pred], [gt], 1, iou_thres=0.5).tp == 1
    assert evaluate_predictions([pred], [gt], 1, iou_thres=0.51).tp == 0


def test_micro_average_over_images_and_classes() -> None:
    img1 = (P([A], [0.9], [0]), T([A], [0]))
    gts2 = [[0, 0, 10, 10], [100, 100, 110, 110], [200, 200, 210, 210]]
    img2 = (P([gts2[0], [300, 300, 310, 310], [400, 400, 410, 410]], [0.9, 0.8, 0.7], [1, 1, 1]), T(gts2, [1, 1, 1]))
    m = evaluate_predictions([img1[0], img2[0]], [img1[1], img2[1]], 2, names={0: "cat", 1: "dog"})
    assert (m.tp, m.fp, m.fn) == (2, 2, 2)
    assert m.precision == pytest.approx(0.5) and m.recall == pytest.approx(0.5)  # macro would give 2/3
    cat, dog = m.per_class
    assert (cat.name, cat.precision, cat.recall) == ("cat", 1.0, 1.0)
    assert (dog.name, dog.num_gt) == ("dog", 3) and dog.precision == pytest.approx(1 / 3)


def test_empty_predictions_give_zero() -> None:
    empty = P([], [], [])
    m = evaluate_predictions([empty, empty], [T([A, B], [0, 1]), T([], [])], num_classes=3)
    assert m.map == 0 and m.map50 == 0 and m.f1 == 0 and m.precision == 0 and m.recall == 0
    assert (m.tp, m.fp, m.fn, m.num_predictions) == (0, 0, 2, 0)


def test_no_ground_truth_at_all_is_undefined_map_and_zero_f1() -> None:
    m = evaluate_predictions([P([A], [0.9], [0])], [T([], [])], num_classes=2)
    assert math.isnan(m.map) and math.isnan(m.map50) and m.per_class == []
    assert (m.tp, m.fp, m.f1) == (0, 1, 0.0)


def test_false_positives_on_images_without_gt_lower_ap() -> None:
    preds, gts = [P([A], [0.5], [0]), P([B], [0.9], [0])], [T([A], [0]), T([], [])]
    assert evaluate_predictions(preds[:1], gts[:1], 1).map50 == pytest.approx(1.0)
    # the FP on the gt-less image ranks first: precision 1/2 at recall 1 -> interpolated AP 0.5
    m = evaluate_predictions(preds, gts, 1)
    assert m.map50 == pytest.approx(0.5) and m.map == pytest.approx(0.5)
    assert math.isnan(m.map_medium) and m.map_small == pytest.approx(0.5)  # only small boxes exist


def test_invalid_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="predictions has 1 images but targets has 2"):
        evaluate_predictions([P([], [], [])], [T([], []), T([], [])], 1)
    with pytest.raises(ValueError, match=r"targets\[0\]: labels must be in \[0, 2\)"):
        evaluate_predictions([P([], [], [])], [T([A], [5])], 2)
    with pytest.raises(ValueError, match="names has 1 entries"):
        evaluate_predictions([P([], [], [])], [T([A], [0])], 2, names=["x"])


def test_as_dict_and_table() -> None:
    m = evaluate_predictions([P([A], [0.9], [0])], [T([A, B], [0, 1])], 2, names=["person", "bike"])
    d = m.as_dict()
    assert d["per_class"]["person"]["ap"] == pytest.approx(1.0) and d["per_class"]["bike"]["ap50"] == 0.0
    assert d["f1"] == pytest.approx(2 / 3) and d["tp"] == 1
    buf = io.StringIO()
    m.render(Console(file=buf, width=200))
    out = buf.getvalue()
    assert "person" in out and "bike" in out and "all" in out and "F1 0.667" in out


class _FakeAdapter:
    """Predicts the gt boxes it was told about, so evaluate() must reach mAP 1."""

    num_classes = 2

    def __init__(self, answers: list[Prediction]) -> None:
        self.model = nn.Conv2d(3, 1, 1)
        self.answers = iter(answers)
        self.calls: list[tuple[float, float, int, bool, bool]] = []

    def predict(self, images: Tensor, conf_thres: float = 0.001, iou_thres: float = 0.6, max_det: int = 300):
        self.calls.append((conf_thres, iou_thres, max_det, self.model.training, torch.is_inference_mode_enabled()))
        return [next(self.answers) for _ in range(len(images))]


def test_evaluate_runs_adapter_over_loader() -> None:
    targets = [T([A], [0]), T([B], [1]), T([A, B], [1, 0])]
    answers = [P(t["boxes"].tolist(), [0.9] * len(t["labels"]), t["labels"].tolist()) for t in targets]
    loader = [(torch.zeros(2, 3, 8, 8), targets[:2]), (torch.zeros(1, 3, 8, 8), targets[2:])]
    adapter = _FakeAdapter(answers)
    adapter.model.train()
    m = evaluate(adapter, loader, conf_thres=0.01, iou_thres=0.7, max_det=10, progress=False)
    assert m.map == pytest.approx(1.0) and m.f1 == 1.0 and m.num_images == 3
    assert adapter.calls == [(0.01, 0.7, 10, False, True)] * 2  # eval mode, inference mode, args forwarded
    assert adapter.model.training  # mode restored
