"""`make test` runs pytest as groups side by side (Makefile: PYTEST_GROUP_A, _B, ...): together they must hold every
test folder, each once, or a folder's tests silently stop running in CI."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _group(makefile: str, name: str) -> list[str]:
    found = re.search(rf"^{name} := (.+)$", makefile, flags=re.MULTILINE)
    assert found is not None, f"the Makefile no longer defines {name}"
    return found.group(1).split()


def test_the_pytest_groups_hold_every_test_folder_once() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    names = re.findall(r"^(PYTEST_GROUP_[A-Z]) :=", makefile, flags=re.MULTILINE)
    assert names == [f"PYTEST_GROUP_{letter}" for letter in "ABCD"[:len(names)]] and len(names) >= 2, names
    targets = re.findall(r"^pytest-([a-z]):$", makefile, flags=re.MULTILINE)
    assert [f"PYTEST_GROUP_{t.upper()}" for t in targets] == names, "each group has its pytest-x target"
    assert f"pytest-{' pytest-'.join(targets)}" in makefile.split("\npytest:", 1)[1].split("\n\n", 1)[0]
    groups = [folder for name in names for folder in _group(makefile, name)]
    folders = sorted(f"tests/{path.name}" for path in (PROJECT_ROOT / "tests").iterdir()
                     if path.is_dir() and any(path.rglob("test_*.py")))
    assert sorted(groups) == folders
    assert len(groups) == len(set(groups))
    assert not list((PROJECT_ROOT / "tests").glob("test_*.py")), "a test module at tests/ runs in no group"
