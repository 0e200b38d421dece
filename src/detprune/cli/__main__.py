"""``python -m detprune.cli``."""

from detprune.cli import app

app()
