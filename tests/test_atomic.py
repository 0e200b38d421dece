import os
from pathlib import Path

import pytest

from detprune.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_success_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".out.txt.") and tmp.is_file()
        tmp.write_text("new")
        assert dest.read_text() == "old"  # nothing visible before the block ends
    assert dest.read_text() == "new"
    assert _leftovers(tmp_path) == []


def test_an_error_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("killed")
    assert dest.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_an_error_before_the_first_write_creates_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "new.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(dest):
            raise KeyboardInterrupt
    assert not dest.exists() and _leftovers(dest.parent) == []


def test_helpers_create_parents_and_return_the_path(tmp_path: Path) -> None:
    assert atomic_write_text(tmp_path / "a" / "t.txt", "h\u00e9\n") == tmp_path / "a" / "t.txt"
    assert (tmp_path / "a" / "t.txt").read_bytes() == "h\u00e9\n".encode()
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_temporaries_are_unique_and_get_ordinary_permissions(tmp_path: Path) -> None:
    dest = tmp_path / "f"
    with atomic_path(dest) as a, atomic_path(dest) as b:
        assert a != b
        a.write_text("a")
        b.write_text("b")
    assert dest.read_text() == "a"  # the outer block ends last
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask
