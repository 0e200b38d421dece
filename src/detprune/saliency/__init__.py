"""Salient object detection: a VGG16 encoder-decoder, its data, the six SOD metrics, training and pruning.

Entry points for scripts and the CLI (``detprune train/prune/eval --task saliency``):

* :func:`train_saliency` - train / fine-tune through the shared ``fit`` loop and run folders;
* :func:`prune_saliency` - prune to a parameter budget with any criterion (``wrg`` by default);
* :func:`evaluate_saliency` - MAE, max F, mean (adaptive) F, weighted F, S-measure, E-measure.
"""

from detprune.saliency.adapter import SaliencyAdapter, as_adapter
from detprune.saliency.data import SaliencyFolder, check_mask, collate, resolve_loader, saliency_loader
from detprune.saliency.evaluate import evaluate_saliency
from detprune.saliency.loss import bce_iou_loss, saliency_loss_fn, soft_iou_loss
from detprune.saliency.metrics import SaliencyEvaluator, SaliencyMetrics
from detprune.saliency.model import SALIENCY_MODELS, SaliencyNet, build_saliency_model
from detprune.saliency.prune import prune_saliency, prune_to_param_fraction
from detprune.saliency.synthetic import render_sample, synthetic_saliency
from detprune.saliency.train import saliency_train_config, train_saliency

__all__ = [
    "SALIENCY_MODELS",
    "SaliencyAdapter",
    "SaliencyEvaluator",
    "SaliencyFolder",
    "SaliencyMetrics",
    "SaliencyNet",
    "as_adapter",
    "bce_iou_loss",
    "build_saliency_model",
    "check_mask",
    "collate",
    "evaluate_saliency",
    "prune_saliency",
    "prune_to_param_fraction",
    "render_sample",
    "resolve_loader",
    "saliency_loader",
    "saliency_loss_fn",
    "saliency_train_config",
    "soft_iou_loss",
    "synthetic_saliency",
    "train_saliency",
]
