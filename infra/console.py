"""The operations console on AWS (issue 17): its function, served by the API's /console routes (infra/api.py), and
the REQUEST authorizer in front of every console route but the login form and its static files.

Both are made by `make_function` like every other function: their roles hold their log group, the VPC and X-Ray;
the stack adds what their code calls (infra/stack.py): the console replays executions (StartSyncExecution on every
workflow's machine), reads an Express execution's events from its machine's log group (FilterLogEvents) and the
database; the authorizer reads the database only (the operator's session).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from core import limits, telemetry_names
from infra.functions import FunctionBase, make_function

__all__ = [
    "AUTHORIZER_CONCURRENCY",
    "AUTHORIZER_HANDLER",
    "AUTHORIZER_MEMORY_MB",
    "AUTHORIZER_TIMEOUT_S",
    "CONSOLE_CONCURRENCY",
    "CONSOLE_HANDLER",
    "CONSOLE_MEMORY_MB",
    "CONSOLE_TIMEOUT_S",
    "ConsoleFunctions",
]

CONSOLE_HANDLER: Final[str] = "saga.console.handler.handler"
AUTHORIZER_HANDLER: Final[str] = "saga.console.authorizer.handler"
# A replay runs the new execution synchronously (StartSyncExecution, as the start function does) and then writes its
# 'finished' audit row: the function outlives the execution like the start function, even when API Gateway has
# already answered the operator 504 at its 29 s (the audit page shows the outcome).
CONSOLE_TIMEOUT_S: Final[int] = limits.START_FUNCTION_TIMEOUT_S
# One session lookup (an indexed read and an update of last_seen_at) per request; API Gateway answers 500 to an
# authorizer that fails, and refuses one that runs past its own ceiling anyway.
AUTHORIZER_TIMEOUT_S: Final[int] = 10
# Pages render server-side (timelines, inline SVG charts); the authorizer does one query.
CONSOLE_MEMORY_MB: Final[int] = 1_024
AUTHORIZER_MEMORY_MB: Final[int] = 512
# A handful of operators: what they can run at once, each holding at most one RDS Proxy client connection. The
# authorizer runs once per console request (its results are not cached: a revoked session ends at once).
CONSOLE_CONCURRENCY: Final[int] = 10
AUTHORIZER_CONCURRENCY: Final[int] = 10
assert limits.API_INTEGRATION_TIMEOUT_MS < CONSOLE_TIMEOUT_S * 1_000 <= limits.LAMBDA_MAX_TIMEOUT_S * 1_000


class ConsoleFunctions(Construct):
    """saga.console.handler.handler (the console's pages and JSON) and saga.console.authorizer.handler."""

    def __init__(self, scope: Construct, construct_id: str, base: FunctionBase, *, console_name: str,
                 authorizer_name: str) -> None:
        super().__init__(scope, construct_id)
        self.function: lambda_.Function = make_function(
            self, "Function", base,
            name=console_name,
            handler=CONSOLE_HANDLER,
            timeout=Duration.seconds(CONSOLE_TIMEOUT_S),
            memory_mb=CONSOLE_MEMORY_MB,
            reserved_concurrency=CONSOLE_CONCURRENCY,
            service=telemetry_names.SERVICE_CONSOLE,
            description="the operations console: executions, timelines, parked payments, discrepancies, audited "
                        "replays (/console behind its authorizer)",
        )
        self.authorizer: lambda_.Function = make_function(
            self, "Authorizer", base,
            name=authorizer_name,
            handler=AUTHORIZER_HANDLER,
            timeout=Duration.seconds(AUTHORIZER_TIMEOUT_S),
            memory_mb=AUTHORIZER_MEMORY_MB,
            reserved_concurrency=AUTHORIZER_CONCURRENCY,
            service=telemetry_names.SERVICE_CONSOLE,
            description="the console's API Gateway REQUEST authorizer: the operator's session cookie",
        )

    @property
    def functions(self) -> tuple[lambda_.Function, lambda_.Function]:
        return self.function, self.authorizer
