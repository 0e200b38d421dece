"""``detprune demo``: the whole story in a few minutes on a laptop CPU, with no network.

Synthetic orchard scenes -> the shipped baseline (see :mod:`detprune.pipeline.baseline`) ->
pruned with ``attribution``, ``coupling`` and ``l1`` to the same MACs target -> each fine-tuned
briefly -> evaluated, counted and timed -> comparison table and an HTML/Markdown report.
Criteria that are not registered in this installation are skipped and named. ``quick``
shrinks everything (tiny images and subsets) for tests; its numbers mean nothing.
"""

from __future__ import annotations

from detprune.pipeline.baseline import BASELINE_IMG_SIZE
from detprune.pipeline.models import DEMO_SPEC
from detprune.pipeline.recipe import BenchSpec, EvalSpec, FinetuneSpec, PruneSpec, Recipe, ReportSpec

DEMO_CRITERIA = ("attribution", "coupling", "l1")
DEMO_TARGET = "macs=0.5"


def demo_recipe(quick: bool = False, criteria: list[str] | None = None, target: str = DEMO_TARGET,
                epochs: int | None = None, runtimes: list[str] | None = None, threads: int | str = "auto") -> Recipe:
    """The demo as an ordinary recipe (so its ``config.yaml`` re-runs with ``detprune run``)."""
    criteria = list(criteria or DEMO_CRITERIA)
    if quick:
        return Recipe(
            command="demo", model=DEMO_SPEC, data="synthetic:32", img_size=64, threads=threads,
            prune=PruneSpec(criteria=criteria, target=target, calib_batches=1, calib_batch=4, skip_unavailable=True),
            finetune=FinetuneSpec(epochs=1 if epochs is None else epochs, batch=8, lr=0.001, optimizer="adamw",
                                  max_images=8, warmup_epochs=0.0),
            eval=EvalSpec(max_images=8, batch=8), bench=BenchSpec(runtimes=runtimes or ["torch"], runs=3, warmup=1),
            report=ReportSpec(samples=2, title="detprune demo (quick: tiny sizes, numbers are not meaningful)"))
    return Recipe(
        command="demo", model=DEMO_SPEC, data="synthetic:300", img_size=BASELINE_IMG_SIZE, threads=threads,
        prune=PruneSpec(criteria=criteria, target=target, calib_batches=4, calib_batch=8, skip_unavailable=True),
        finetune=FinetuneSpec(epochs=2 if epochs is None else epochs, batch=16, lr=0.003, optimizer="adamw",
                              warmup_epochs=0.1),
        eval=EvalSpec(max_images=75, batch=16), bench=BenchSpec(runtimes=runtimes or ["torch"], runs=30, warmup=5),
        report=ReportSpec(samples=4, title=f"detprune demo: {', '.join(criteria)} at {target} on synthetic scenes"))
