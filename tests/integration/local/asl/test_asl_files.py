"""Every ASL file in the repository (and the corpus) passes asl-validator (npm, pinned in package.json) and loads
in the local runtime. The validator must be installed (`npm ci`): its absence is an error, not a skip."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from local.asl import load_definition

ROOT = Path(__file__).resolve().parents[4]
VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
CORPUS = Path(__file__).resolve().parent / "corpus"
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def asl_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.asl.json"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split()
    files = {ROOT / name for name in listed} | set(CORPUS.glob("*.asl.json"))
    return sorted(path for path in files if path.exists())


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    if not VALIDATOR.exists():
        raise AssertionError(f"{VALIDATOR} is missing: run `npm ci` in {ROOT}")
    args = [str(VALIDATOR)]
    for path in paths:
        args += ["--json-path", str(path)]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_corpus_and_workflow_are_present() -> None:
    names = {path.name for path in asl_files()}
    assert len(names & {p.name for p in CORPUS.glob("*.asl.json")}) >= 8


def test_every_asl_file_passes_asl_validator() -> None:
    result = validate(*asl_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_rejects_an_invalid_definition(tmp_path: Path) -> None:
    bad = tmp_path / "bad.asl.json"
    bad.write_text('{"StartAt": "A", "States": {"A": {"Type": "Pass"}}}')
    result = validate(bad)
    assert result.returncode != 0
    assert "MUST contain exactly one of" in result.stdout + result.stderr


@pytest.mark.parametrize("path", asl_files(), ids=lambda p: p.name)
def test_every_asl_file_loads_in_the_runtime(path: Path) -> None:
    text = path.read_text()
    substitutions = {name: f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
                     for name in _PLACEHOLDER.findall(text)}
    machine = load_definition(text, substitutions)
    assert machine.start_at in machine.states
