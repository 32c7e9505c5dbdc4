"""The composition root of the start path: every per-process service, made in one place.

The Lambda handler builds one `Services` per process (cold start); the local server, the simulation, the benchmarks
and the tests build their own with the collaborators they need swapped in (a local Step Functions runtime, a gate on
a clock they move, an id source they step), never by patching module attributes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine

from core.aws import client
from core.db import engine as db_engine
from core.settings import Settings, SettingsError
from saga.idempotency import IdempotencyGate
from saga.sfn import StepFunctions, aws_step_functions
from saga.snowflake import create_generator
from steps.gateway.factory import gateway_for
from steps.gateway.notices import notice_reader
from steps.gateway.port import Gateway
from steps.registry import Workflow

__all__ = ["IdSource", "Services", "bootstrap"]


class IdSource(Protocol):
    """What mints payment ids (a Snowflake generator holding a worker slot)."""

    def next_id(self) -> int: ...

    def close(self) -> None: ...


class _LazyIds:
    """Claims its worker slot on the first id, not at construction: a process that only answers GETs holds none."""

    def __init__(self, make: Callable[[], IdSource]) -> None:
        self._make = make
        self._ids: IdSource | None = None

    def next_id(self) -> int:
        if self._ids is None:
            self._ids = self._make()
        return self._ids.next_id()

    def close(self) -> None:
        if self._ids is not None:
            self._ids.close()
            self._ids = None


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    gate: IdempotencyGate
    ids: IdSource
    sfn: StepFunctions
    state_machine_arn: str
    # The adapter of a gateway by name (made once each): the webhook routes verify and read events with it.
    gateways: Callable[[str], Gateway]
    # Where the execution's history can be read back (the local runtime keeps it; Express on AWS does not).
    keeps_history: bool = field(default=False)
    # The operations' state machines (capture, cancel, refund) on the same service as the saga's.
    operation_machines: Mapping[Workflow, str] = field(default_factory=dict)

    def machine_arn(self, workflow: Workflow) -> str:
        """The ARN of the workflow's state machine; ConfigurationError-like SettingsError when it was not given."""
        if workflow is Workflow.PAYMENT:
            return self.state_machine_arn
        arn = self.operation_machines.get(workflow)
        if not arn:
            raise SettingsError(f"no state machine for {workflow.value} operations: set "
                                f"{workflow.value.upper()}_STATE_MACHINE_ARN (the CDK stack does)")
        return arn

    def close(self) -> None:
        """Give back what the process holds (its Snowflake worker slot)."""
        self.ids.close()


def bootstrap(
    settings: Settings,
    *,
    step_functions: tuple[StepFunctions, str] | None = None,
    gate: IdempotencyGate | None = None,
    ids: IdSource | None = None,
    operation_machines: Mapping[Workflow, str] | None = None,
) -> Services:
    """The services for these settings. `step_functions` is (client, state machine ARN); without it the settings
    must name the deployed state machine (STATE_MACHINE_ARN): off AWS the local tooling passes its own runtime.
    `operation_machines`: the operations' state machines on that runtime; without it, the settings' ARNs."""
    if step_functions is None:
        if not settings.state_machine_arn:
            raise SettingsError("STATE_MACHINE_ARN is not set: on AWS it names the payment saga; off AWS the local "
                                "stack runs the saga on its own runtime (paysaga stack up / make run)")
        step_functions = aws_step_functions(settings)
    sfn, arn = step_functions
    engine = db_engine(settings)
    if operation_machines is None:
        given = {Workflow.CAPTURE: settings.capture_state_machine_arn,
                 Workflow.CANCEL: settings.cancel_state_machine_arn,
                 Workflow.REFUND: settings.refund_state_machine_arn}
        operation_machines = {workflow: found for workflow, found in given.items() if found}
    return Services(
        settings=settings,
        engine=engine,
        gate=gate or IdempotencyGate(client("dynamodb", settings), settings.idempotency_table,
                                     in_progress_ttl_ms=settings.idempotency_in_progress_ttl_ms),
        ids=ids or _LazyIds(lambda: create_generator(settings)),
        sfn=sfn,
        state_machine_arn=arn,
        gateways=functools.cache(lambda name: gateway_for(name, settings, timeout_ms=settings.gateway_timeout_ms,
                                                          notices=notice_reader(engine))),
        keeps_history=hasattr(sfn, "get_execution_history") and not settings.state_machine_arn,
        operation_machines=dict(operation_machines),
    )
