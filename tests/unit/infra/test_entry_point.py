"""`cdk synth` runs cdk.json's app command: the entry point must synthesize the stack on its own, without Docker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.app import STACK_ID
from infra.paths import REPO_ROOT


def test_cdk_json_runs_the_entry_point_module() -> None:
    app = json.loads((REPO_ROOT / "cdk.json").read_text())["app"]
    assert app.split() == [".venv/bin/python", "-m", "infra.app"]


def test_the_entry_point_writes_a_cloud_assembly(tmp_path: Path) -> None:
    # The CDK CLI hands the output folder and context to the app through these variables.
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path), "CDK_CONTEXT_JSON": json.dumps({"gateway": "sandbox"}),
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("CDK_DEFAULT_ACCOUNT", None)
    result = subprocess.run([sys.executable, "-m", "infra.app"], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    template = json.loads((tmp_path / f"{STACK_ID}.template.json").read_text())
    assert any(r["Type"] == "AWS::StepFunctions::StateMachine" for r in template["Resources"].values())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert STACK_ID in manifest["artifacts"]
