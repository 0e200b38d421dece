"""Pipelines behind the CLI: recipes, run folders, and the steps (train, prune, fine-tune, evaluate, bench, export)."""
