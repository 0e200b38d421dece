"""Fine-tune a pruned Ultralytics detector with Ultralytics' own trainer, and keep it pruned.

    model = load_ultralytics("yolov8n.yaml")
    detprune.prune(model, torch.rand(1, 3, 640, 640), criterion="l1", ratio=0.4)
    best = finetune_ultralytics(model, "data.yaml", epochs=50, imgsz=640, batch=16, run_dir="runs/pruned")
    YOLO(best).val(...)  # the pruned architecture, loadable without detprune

Why the default route silently restores the full width
------------------------------------------------------
Ultralytics never trains the module it holds. ``YOLO(...).train()`` builds a trainer and calls
``trainer.get_model(cfg=model.yaml, weights=model)``, and a trainer given ``model="x.yaml"`` or
``"x.pt"`` goes through ``BaseTrainer.setup_model``, which makes the same call.
``DetectionTrainer.get_model`` constructs a fresh ``DetectionModel(cfg)`` at the width the yaml's
scale implies, then ``DetectionModel.load`` copies only the tensors whose shapes match
(``intersect_dicts``). For a pruned module almost nothing matches, so training proceeds on a
full-width, mostly re-initialised network; the only trace is a log line ("Transferred 65/355
items" for yolov8n pruned by 40%).
The pruned structure cannot be written back into the yaml either: the yaml holds per-stage widths
under one global multiplier, while pruning leaves arbitrary per-layer widths.

How this module keeps it
------------------------
``BaseTrainer.setup_model`` returns early when ``trainer.model`` already is an ``nn.Module``.
:class:`PrunedDetectionTrainer` puts the pruned module there, and overrides ``get_model`` so a module
arriving as ``weights`` (the ``YOLO("pruned.pt").train(trainer=PrunedDetectionTrainer)`` route, or
a trainer given ``model="pruned.pt"``) is trained as it is instead of being rebuilt. Everything downstream
already works on whatever module it is given: ``ModelEMA`` deep-copies it, and ``save_model``
pickles the whole EMA module into ``last.pt``/``best.pt``. A pruned model holds only Ultralytics
and torch classes (detprune changes tensor shapes and refreshes attributes such as ``C2f.c``, used by
the exporter's ``forward_split``), so ``ultralytics.YOLO(path)`` loads it in any process, with or
without detprune, and validates, predicts and exports it at its pruned size. The one thing that
still rebuilds is a *stock* trainer: fine-tune the resulting checkpoint again with
:func:`finetune_ultralytics` or ``trainer=PrunedDetectionTrainer``, never a plain ``YOLO(path).train()``.

Ultralytics also reaches for the network: ``check_det_dataset`` downloads an Arial font (only used
for plots), the ONNX exporter pip-installs ``onnxslim`` when ``simplify=True``, and the AMP check
downloads a model. :func:`no_downloads` blocks the first two and ``YOLO.train``'s PyPI version
check; the fine-tune defaults to ``amp=False``. Note that Ultralytics writes ``labels/<split>.cache``
beside a dataset's labels whenever the directory is writable.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any, Iterator

from torch import nn
from ultralytics.cfg import DEFAULT_CFG
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.tasks import DetectionModel, guess_model_task, load_checkpoint, yaml_model_load

__all__ = ["PrunedDetectionTrainer", "finetune_ultralytics", "load_ultralytics", "no_downloads"]

_YAML_SUFFIXES = {".yaml", ".yml"}


def load_ultralytics(spec: str | Path) -> DetectionModel:
    """An Ultralytics detection model from a config name (``"yolov8n.yaml"``) or a local ``.pt``/``.yaml``.

    Config names resolve against the configs shipped with Ultralytics and build a randomly
    initialised model. ``.pt`` files are never downloaded: a missing one is an error, because
    Ultralytics would otherwise fetch any official asset name from the internet. Parameters come back
    trainable (Ultralytics' final checkpoints store them with ``requires_grad=False``).
    """
    text = str(spec)
    if "://" in text:
        raise ValueError(f"{text!r}: URLs are not loaded, detprune never downloads models; pass a local file")
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix == ".pt":
        if not path.is_file():
            raise FileNotFoundError(f"{text!r} does not exist locally; detprune never downloads weights "
                                    "(Ultralytics would fetch official names such as 'yolov8n.pt')")
        with _safe_unpickling():
            model, _ = load_checkpoint(path)
    elif suffix in _YAML_SUFFIXES:
        if len(path.parts) > 1 and not path.is_file():
            raise FileNotFoundError(f"model config {text!r} does not exist")
        try:
            cfg = yaml_model_load(text)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{text!r} is neither a local file nor a config shipped with Ultralytics") from e
        _check_task(text, guess_model_task(cfg), "config")  # before paying for the build
        model = DetectionModel(cfg, verbose=False)
    else:
        raise ValueError(f"{text!r}: expected a model config ('yolov8n.yaml') or a local '.pt' checkpoint")
    _check_task(text, getattr(model, "task", None) or guess_model_task(model), type(model).__name__)
    if not isinstance(model, DetectionModel):
        raise TypeError(f"{text!r} holds a {type(model).__name__}, not an Ultralytics DetectionModel")
    for p in model.parameters():
        if p.is_floating_point():
            p.requires_grad_(True)
    return model


@contextlib.contextmanager
def _safe_unpickling() -> Iterator[None]:
    """Ultralytics loads a ``.pt`` with ``weights_only=False`` by default: the pickle may run any code, and a
    module it names is pip-installed. Its opt-in loader rebuilds only allow-listed torch/Ultralytics classes."""
    from ultralytics.nn import tasks

    safe = getattr(tasks, "_SafeLoad", None)  # Ultralytics' allow-list loader (ULTRALYTICS_SAFE_LOAD), 8.4+
    if safe is None or not hasattr(tasks, "SAFE_LOAD") or not safe.SUPPORTED:
        raise ImportError("this Ultralytics / torch cannot load a .pt file without running the code pickled in it "
                          "(needs Ultralytics' restricted loader and torch >= 2.6); refusing to unpickle")
    old, tasks.SAFE_LOAD = tasks.SAFE_LOAD, True
    try:
        yield
    finally:
        tasks.SAFE_LOAD = old


def _check_task(spec: str, task: str, kind: str) -> None:
    if task != "detect":
        raise TypeError(f"{spec!r} is a {task!r} model ({kind}); only detection models are supported")


def _local_font(font: str = "Arial.ttf") -> Path | None:
    """``check_font`` without the download: the font only if it is already in Ultralytics' config dir."""
    from ultralytics.utils import USER_CONFIG_DIR

    file = USER_CONFIG_DIR / Path(font).name
    return file if file.exists() else None  # plotting falls back to PIL's default font on None


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def no_downloads() -> Iterator[None]:
    """Stop Ultralytics' incidental network use: font download, requirement auto-install, PyPI version check.

    Both are module globals read at call time, so patching them for the duration is enough; a
    missing export requirement then fails with Ultralytics' own message instead of running pip.
    """
    import ultralytics.data.utils as data_utils
    import ultralytics.utils.checks as checks
    import ultralytics.utils.plotting as plotting

    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(data_utils, "check_font", _local_font))
        stack.enter_context(_patched(plotting, "check_font", _local_font))
        stack.enter_context(_patched(checks, "AUTOINSTALL", False))
        stack.enter_context(_patched(checks, "check_pip_update_available", lambda: False))  # YOLO.train() asks PyPI
        yield


class PrunedDetectionTrainer(DetectionTrainer):
    """A ``DetectionTrainer`` that trains the module it is given instead of rebuilding it from ``model.yaml``.

    Use it directly (``PrunedDetectionTrainer(overrides=..., model=pruned).train()``) or through
    ``YOLO("pruned.pt").train(trainer=PrunedDetectionTrainer, ...)``; both keep the pruned shapes.
    """

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict[str, Any] | None = None,
                 _callbacks: dict | None = None, model: nn.Module | None = None) -> None:
        super().__init__(cfg, overrides, _callbacks)
        if self.ddp:
            # DDP re-creates the trainer in subprocesses from its args alone, which rebuilds from yaml.
            raise NotImplementedError("multi-GPU DDP would rebuild the pruned model from its yaml; train on one device")
        if model is not None:
            if self.resume:
                raise ValueError("resume continues the run's last.pt; pass model=None to resume")
            self.model = model  # setup_model() keeps a module it finds here

    def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> DetectionModel:
        """The ``weights`` module itself when there is one (a pruned module's shapes match no yaml)."""
        if isinstance(weights, nn.Module):
            for p in weights.parameters():  # best.pt stores frozen params; freeze= is re-applied afterwards
                if p.is_floating_point():
                    p.requires_grad_(True)
            return weights
        return super().get_model(cfg, weights, verbose)


def finetune_ultralytics(model: DetectionModel, data: str | Path, epochs: int, imgsz: int = 640, batch: int = 16,
                         project: str | Path | None = None, name: str | None = None,
                         run_dir: str | Path | None = None, offline: bool = True, **overrides: Any) -> Path:
    """Fine-tune a (pruned) detection model with Ultralytics' trainer; return the best (else last) weights.

    ``model`` is deep-copied, so the caller's module is left untouched; load the result with
    ``ultralytics.YOLO(path)`` or :func:`load_ultralytics`. Outputs go to ``run_dir`` (or
    ``project/name``, Ultralytics' default run directory when neither is given). ``overrides`` are any
    Ultralytics train arguments (``workers``, ``fraction``, ``lr0``, ``val``...); ``amp`` and ``plots``
    default to off, since the AMP check downloads a model and plots need fonts. ``offline`` wraps the
    run in :func:`no_downloads`.
    """
    if run_dir is not None:
        if project is not None or name is not None:
            raise ValueError("give either run_dir or project/name, not both")
        run_dir = Path(run_dir).resolve()
        project, name = run_dir.parent, run_dir.name
        overrides.setdefault("exist_ok", True)
    for key in ("model", "resume", "pretrained"):
        if key in overrides:
            raise ValueError(f"{key!r} cannot be overridden: the model to train is the module passed in")
    args: dict[str, Any] = {"amp": False, "plots": False, **overrides, "data": str(data), "epochs": epochs,
                            "imgsz": imgsz, "batch": batch, "mode": "train", "task": "detect",
                            "model": str(model.yaml.get("yaml_file", "pruned.yaml"))}  # a label only
    if project is not None:
        args["project"] = str(Path(project).resolve())
    if name is not None:
        args["name"] = name
    net = copy.deepcopy(model)
    with no_downloads() if offline else contextlib.nullcontext():
        trainer = PrunedDetectionTrainer(overrides=args, model=net)
        _check_classes(net, trainer.data)
        trainer.train()
    weights = trainer.best if trainer.best.exists() else trainer.last
    if not weights.exists():
        raise FileNotFoundError(f"training finished without writing {trainer.last}")
    _check_same_shapes(model, load_checkpoint(weights)[0], weights)
    return weights


def _check_classes(model: DetectionModel, data: dict) -> None:
    head_nc = model.model[-1].nc
    if data["nc"] != head_nc:
        raise ValueError(f"the model's head predicts {head_nc} classes but the dataset has {data['nc']}; "
                         "a class-count change rebuilds the head, which the pruned fine-tune does not do")


def _check_same_shapes(expected: nn.Module, saved: nn.Module, path: Path) -> None:
    """Guard against an Ultralytics change that rebuilds the model again: shapes must survive the run."""
    want = {k: tuple(v.shape) for k, v in expected.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in saved.state_dict().items()}
    diff = [k for k in want if got.get(k) != want[k]]
    if diff or want.keys() != got.keys():
        raise RuntimeError(f"{path} does not hold the pruned architecture (first mismatch: {(diff or ['keys'])[0]}); "
                           "the trainer rebuilt the model")
