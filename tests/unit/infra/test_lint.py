"""The synthesized template passes cfn-lint and cdk-nag's AwsSolutions and Serverless packs with no finding left.

cdk-nag runs as an Aspect of infra/app.py build() (so `cdk synth` applies it too): an unsuppressed finding is an error
or warning annotation in the cloud assembly. A suppression names its rule and its reason next to the resource it
concerns (infra/nag.py for the stack-wide ones); this test refuses a reason too short to explain anything.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.unit.infra.support import Synth

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
# cfn-lint rules ignored, each with why.
IGNORED_CFN_LINT_RULES: dict[str, str] = {
    # CDK gives each Lambda function a DependsOn on its role and the role's default policy, so the policy exists before
    # the function can run; the role entry is redundant with the function's GetAtt on it, and harmless.
    "W3005": "CDK's own DependsOn on a function's role, redundant with its GetAtt",
}
MIN_REASON_CHARS = 40


def test_cdk_nag_reports_no_unsuppressed_finding(synth: Synth) -> None:
    findings = [f"{f.level} at {f.path}: {f.text.splitlines()[0]}" for f in synth.findings]
    assert findings == [], "\n".join(findings)


def test_both_nag_packs_ran_on_the_stack(synth: Synth) -> None:
    for pack in ("AwsSolutions", "Serverless"):
        report = synth.outdir / f"{pack}--{synth.template_file.stem.removesuffix('.template')}-NagReport.csv"
        with report.open() as lines:
            compliance = [row["Compliance"] for row in csv.DictReader(lines)]
        assert compliance.count("Compliant") > 50, pack
        assert set(compliance) <= {"Compliant", "Suppressed", "Non-Compliant", "N/A"}, pack


def _suppressions(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(where, rule id, reason) of every cdk-nag suppression written into the template's metadata."""
    found = []
    for logical_id, resource in template["Resources"].items():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            found.append((logical_id, rule["id"], rule.get("reason", "")))
    for rule in template.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
        found.append(("stack", rule["id"], rule.get("reason", "")))
    return found


def test_every_suppression_gives_a_specific_reason(synth: Synth) -> None:
    suppressions = _suppressions(synth.data)
    assert suppressions, "cdk-nag writes each suppression into the template's metadata"
    short = [(where, rule, reason) for where, rule, reason in suppressions if len(reason) < MIN_REASON_CHARS]
    assert short == [], f"suppressions without a real reason: {short}"


def test_cfn_lint_passes_on_the_synthesized_template(synth: Synth) -> None:
    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", "--ignore-checks", *IGNORED_CFN_LINT_RULES, "--",
         str(synth.template_file)],
        capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_the_linted_template_is_the_one_the_tests_read(synth: Synth) -> None:
    assert json.loads(synth.template_file.read_text()) == synth.data
