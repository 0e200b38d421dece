"""Typer option types shared by the commands: one help text per flag, the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

MODEL_HELP = ("yolov3-tiny | yolov8n | ultralytics:yolov8n.yaml | torchvision:fasterrcnn_resnet50_fpn | "
              "path/to/model.safetensors | demo-baseline; with --task saliency: vgg16 | vgg16_bn | a .safetensors")
ModelOpt = Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)]
DataOpt = Annotated[str, typer.Option("--data", "-d", help="data.yaml | COCO .json | VOC root | synthetic[:N]; "
                                      "with --task saliency: a folder of images/ + masks/ | synthetic[:N]")]
OptDataOpt = Annotated[str | None, typer.Option("--data", "-d", help=DataOpt.__metadata__[0].help)]
SizeOpt = Annotated[int, typer.Option("--size", help="example input size (square, multiple of 32) used to trace the model")]
ImgOpt = Annotated[int, typer.Option("--img-size", help="square input size (multiple of 32)")]
TaskImgOpt = Annotated[int | None, typer.Option("--img-size", help="square input size (multiple of 32; default 320, "
                                                "64 for --task saliency on synthetic data)")]
TaskOpt = Annotated[str, typer.Option("--task", help="detection | saliency (VGG16 salient-object net: BCE+IoU, "
                                      "six SOD metrics)")]
WidthOpt = Annotated[float | None, typer.Option("--width", help="--task saliency: width multiplier of a fresh "
                                                "vgg16 / vgg16_bn (default 0.25)")]
BnSparsityOpt = Annotated[float, typer.Option("--bn-sparsity", help="L1 penalty on BatchNorm scales added to the "
                                              "loss (Network Slimming, e.g. 1e-4; then prune with -c bn_scale)")]
DistillOpt = Annotated[float, typer.Option("--distill", metavar="W", help="fine-tune with knowledge distillation "
                                           "from the model before pruning (or --teacher), weight W per image "
                                           "(e.g. 4; built-in detectors)")]
ClassesOpt = Annotated[int, typer.Option("--num-classes", help="classes of a freshly built model")]
KeepOpt = Annotated[list[str] | None, typer.Option("--classes", metavar="NAMES", help="specialise to these classes "
                                                  "(names or indices; repeat or comma-separate): the class outputs "
                                                  "are sliced to them, the data relabelled, then pruned / tuned")]
NcOpt = Annotated[int | None, typer.Option("--num-classes", help="classes of a fresh model (default: the data's)")]
ProjectOpt = Annotated[str, typer.Option("--project", help="parent folder of run folders")]
NameOpt = Annotated[str | None, typer.Option("--name", help="run folder name (default: a timestamp; name2.. if taken)")]
ThreadsOpt = Annotated[str, typer.Option("--threads", help="torch threads: auto (idle cores) or a number")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="training epochs")]
LrOpt = Annotated[float | None, typer.Option("--lr", help="learning rate (default: 0.01 train, 0.002 fine-tune; "
                                             "saliency 1e-3 / 3e-4)")]
BatchOpt = Annotated[int, typer.Option("--batch", help="batch size")]
EvalImgOpt = Annotated[int | None, typer.Option("--eval-images", help="evaluate on the first N validation images")]
RuntimeOpt = Annotated[list[str] | None, typer.Option("--runtime", metavar="RUNTIME",
                                                      help="torch | onnxruntime | openvino, on a GPU with :DEVICE "
                                                           "(torch:cuda, onnxruntime:cuda, openvino:gpu); "
                                                           "repeat or comma-separate")]
MaxImagesOpt = Annotated[int | None, typer.Option("--max-images", help="use the first N images only")]
OptimizerOpt = Annotated[str | None, typer.Option("--optimizer", help="sgd | adamw (default sgd; saliency adamw)")]
CriteriaOpt = Annotated[list[str] | None, typer.Option("--criterion", "-c", metavar="NAME",
                                                       help="criterion (repeat or comma-separate to compare)")]
RatioOpt = Annotated[float | None, typer.Option("--ratio", help="fraction of each group's channels removed, in [0, 1)")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="cost target instead of a ratio: macs=0.5, "
                                               "params=2.5M, latency=0.7@onnxruntime, latency=0.5@torch:cuda "
                                               "(params=0.4: keep 40%)")]
ScheduleOpt = Annotated[str, typer.Option("--schedule", help="local (same ratio per group) | global (one ranking) | "
                                          "layerwise (set by --ratios) | cluster (latency staircases; needs --target) | "
                                          "sequential (local ratio, groups cut in forward order, each re-scored)")]
RatiosOpt = Annotated[Path | None, typer.Option("--ratios", metavar="FILE.yaml", help="per-layer ratios (module path "
                                                "prefix or group index -> ratio; schedule layerwise)")]
RoundOpt = Annotated[int | None, typer.Option("--round-to", help="keep channel counts multiples of this (schedule cluster: "
                                             "cluster sizes too; default there: the SIMD block on ONNX Runtime / OpenVINO)")]
IgnoreOpt = Annotated[list[str] | None, typer.Option("--ignore", metavar="MODULE",
                                                     help="module path to leave unpruned (repeatable)")]
LutOpt = Annotated[Path | None, typer.Option("--lut", metavar="FILE.json", help="--schedule cluster: latency table "
                                             "to read and extend (e.g. built on the device with `detprune lut`)")]
CalibOpt = Annotated[int, typer.Option("--calib-batches", help="calibration batches for data-driven criteria")]
OptionOpt = Annotated[list[str] | None, typer.Option("--option", "-o", metavar="KEY=VALUE",
                                                     help="criterion option, e.g. tau=0.05 (repeatable)")]
FormatOpt = Annotated[list[str] | None, typer.Option("--format", "-f", metavar="FORMAT",
                                                     help="onnx | openvino (repeat or comma-separate)")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed")]
StepsOpt = Annotated[int, typer.Option("--steps", help="iterative pruning: N rounds of prune -> fine-tune (--epochs "
                                       "per round)")]
StepScheduleOpt = Annotated[str, typer.Option("--step-schedule", help="linear | geometric: how the cut is split over "
                                              "--steps")]
MaxDropOpt = Annotated[float | None, typer.Option("--max-drop", help="with --steps: stop when mAP50 falls more than "
                                                  "this below the unpruned model (e.g. 0.02)")]
MaxRatioOpt = Annotated[float, typer.Option("--max-ratio", help="global / cluster schedule: most of one group's "
                                            "channels removed")]
MinChannelsOpt = Annotated[int, typer.Option("--min-channels", help="global / cluster schedule: fewest channels a "
                                             "group, and each of its layers, keeps")]
PricingOpt = Annotated[str, typer.Option("--pricing", help="cluster schedule: price a step from per-layer timings "
                                         "(table), a group's layers alone (layers), the whole model (model, slow), or "
                                         "prune with table and layers and keep the faster (best)")]
MarginOpt = Annotated[float, typer.Option("--margin", help="cluster schedule: aim this fraction under a latency "
                                         "goal, so a later timing still finds it met")]
StagesOpt = Annotated[int | None, typer.Option("--stages", help="sequential schedule: score and cut the groups in "
                                             "this many runs of consecutive groups (default: one per group)")]
FinetuneEveryOpt = Annotated[int | None, typer.Option("--finetune-every", help="cluster schedule: re-score every N "
                                                      "greedy steps, after 1 epoch of fine-tuning with --epochs")]
