"""The CDK app synthesized once per session, in-process (no Docker, no AWS account): tests read the template."""

from __future__ import annotations

import os

import pytest

# jsii prints a banner on every process start under Node 20; it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from tests.unit.infra.support import Synth, synthesize  # (after the environment above)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
