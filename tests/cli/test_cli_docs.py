"""Docs stay true to the code: method pages match the criteria registry, CLI pages name real commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detprune.cli import app
from detprune.criteria import CRITERIA

DOCS = Path(__file__).resolve().parents[2] / "docs"
NOT_CRITERIA = {"cluster"}  # a schedule, documented with the methods


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    if not DOCS.is_dir():
        pytest.skip(f"{DOCS} is absent")
    return {p.stem: p.read_text() for p in (DOCS / "methods").glob("*.md")}


def test_every_registered_criterion_has_a_page(pages: dict[str, str]) -> None:
    assert sorted(set(CRITERIA) - set(pages)) == []


def test_status_lines_match_the_registry(pages: dict[str, str]) -> None:
    for name, text in pages.items():
        status = re.search(r"\*\*Status:\*\* (.+)", text)
        assert status, f"{name}.md has no Status line"
        implemented = status.group(1).startswith("implemented")
        if name in NOT_CRITERIA:
            continue
        assert implemented == (name in CRITERIA), f"{name}.md says {status.group(1)!r}"
        if implemented:
            assert f"registered as `{name}`" in status.group(1)


def test_documented_commands_exist() -> None:
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    for path in DOCS.rglob("*.md"):
        code = "\n".join(re.findall(r"```(?:bash)?\n(.*?)```", path.read_text(), flags=re.S))
        for name in re.findall(r"^(?:\$ )?(?:uv run )?detprune ([a-z]+)", code, flags=re.M):
            assert name in commands, f"{path.name}: unknown command {name!r}"
