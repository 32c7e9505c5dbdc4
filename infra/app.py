"""CDK entry point: `cdk synth` / `cdk deploy` (cdk.json runs `.venv/bin/python -m infra.app`)."""

from __future__ import annotations

import os

from aws_cdk import App, Environment

from infra.config import config_from_context
from infra.stack import PaysagaStack

STACK_ID = "Paysaga"


def build(app: App) -> PaysagaStack:
    """Add the paysaga stack to `app`, configured from its context; the account/region come from the CLI's profile."""
    config = config_from_context(app.node.try_get_context)
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    return PaysagaStack(app, STACK_ID, config=config, env=env,
                        description="paysaga: payment saga orchestrator (API, Express saga, ledger database)")


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
