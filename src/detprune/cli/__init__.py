"""The ``detprune`` command line (Typer + Rich).

Every command that computes something is a recipe (:mod:`detprune.pipeline.recipe`) run into a
run folder ``<project>/<command>/<name>`` holding ``config.yaml`` (re-run it with
``detprune run``), logs, checkpoints, ``metrics.json`` and ``report.html``/``report.md``.
Wrong arguments end with a one-line reason naming the argument and exit code 2, never a traceback.
``train``, ``prune``, ``finetune`` and ``eval`` take ``--task saliency`` for the VGG16 salient-object
network of :mod:`detprune.saliency` (six SOD metrics instead of mAP; see :mod:`detprune.pipeline.saliency`).

Layout: :mod:`~detprune.cli.common` (the app, errors, running a recipe), :mod:`~detprune.cli.options`
(flag types), :mod:`~detprune.cli.pipeline` (commands that run recipes), :mod:`~detprune.cli.tools`
(bench, export, inspect, lut, version). Importing the command modules registers their commands.
"""

from detprune.cli import pipeline, tools  # noqa: F401 - registers the commands on app
from detprune.cli.common import app

__all__ = ["app"]
