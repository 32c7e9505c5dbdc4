"""The CDK app synthesized once per session, in-process (no Docker, no AWS account), with cdk.json's context: the
tests read the template `cdk deploy` would deploy. One more synthesis, `other`, is a second stack with another prefix
and every context key a test needs set (the names test compares the two; the config test reads the rest)."""

from __future__ import annotations

import os
from typing import Any, Final

import pytest

# jsii prints a banner on every process start under Node 20; it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from tests.unit.infra.support import Synth, synthesize  # (after the environment above)

OTHER_PREFIX: Final[str] = "other-stage"
OTHER_CONTEXT: Final[dict[str, Any]] = {
    "prefix": OTHER_PREFIX,
    "sandbox_gateway_url": "https://sandbox.example.test",
    "alarm_email": "oncall@example.test",
    "step_concurrency": "7",
    "log_retention_days": "400",
}


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def other(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk.out.other"), context=OTHER_CONTEXT)
