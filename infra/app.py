"""CDK entry point: `cdk synth` / `cdk deploy` (cdk.json runs `.venv/bin/python -m infra.app`).

`build()` also applies cdk-nag's AwsSolutions and Serverless packs, so `cdk synth` reports what the tests refuse
(tests/unit/infra/test_lint.py: no unsuppressed finding; every suppression is written with its reason next to the
resource it concerns, or in infra/nag.py for the stack-wide ones).
"""

from __future__ import annotations

import os

from aws_cdk import App, Aspects, Environment
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import config_from_context
from infra.nag import suppress_stack_findings
from infra.stack import PaysagaStack

STACK_ID = "Paysaga"


def build(app: App) -> PaysagaStack:
    """Add the paysaga stack to `app`, configured from its context; the account/region come from the CLI's profile."""
    config = config_from_context(app.node.try_get_context)
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    stack = PaysagaStack(app, STACK_ID, config=config, env=env,
                         description="paysaga: payment saga orchestrator (API, Express saga, ledger database)")
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    Aspects.of(app).add(ServerlessChecks(verbose=True))
    suppress_stack_findings(stack)
    return stack


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
