"""Make ``tests/graph/blocks.py`` importable as ``blocks`` (test dirs are not packages)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graph"))
