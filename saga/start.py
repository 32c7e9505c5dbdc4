"""Start one payment, the use case behind POST /v1/payments: idempotency gate -> payment row -> a saga execution
under the payment's lease -> the answer, stored for the key. It knows nothing of HTTP: the handler passes the
function that renders a payment as its answer (saga.api.answers) and maps the outcome and refusals to responses.

Crash safety, line by line: the gate's IN_PROGRESS record holds the payment id before anything else is written, so a
holder that dies anywhere below leaves a record that a retry takes over after the in-progress expiry, with the same
payment id; every write below is idempotent for that id, and every saga step skips what already took effect.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import SQLAlchemyError
from ulid import ULID

from core import observability, telemetry_names
from saga import idempotency
from saga.api.request import PaymentRequest
from saga.bootstrap import Services
from saga.execution import ExecutionRun, PaymentBusyError, run_execution
from steps.contract import ExecutionInput
from steps.errors import ExecutionSuperseded
from steps.registry import Workflow
from store import lifecycle
from store.merchants import Merchant
from store.payments import Payment, get_payment, insert_payment

__all__ = ["Answered", "BackendUnavailable", "KeyInFlight", "KeyReused", "Render", "StartRefused", "StillRunning",
           "answer_within", "open_key", "run_and_answer", "start_payment"]

logger = observability.logger(telemetry_names.SERVICE_START)

SUPERSEDED = ExecutionSuperseded.__name__
# How a payment's recorded state reads as the stored answer (None: not final yet).
Render = Callable[[Payment], idempotency.StoredResponse | None]


@dataclass(frozen=True)
class Answered:
    """The answer for the key: this request's, or (replayed) the one stored by the request that ran the payment."""

    response: idempotency.StoredResponse
    replayed: bool


@dataclass(frozen=True)
class StillRunning:
    """The saga outlived the answer budget: the payment as it stands (not final). Nothing is stored for the key: the
    saga runs on and stores the final answer, which a retry with the key gets; the client polls the payment."""

    payment: Payment


class StartRefused(Exception):
    """The request gets no payment answer; the subclass says why."""


class KeyInFlight(StartRefused):
    """Another request with this key, or another execution of its payment, is still running."""


class KeyReused(StartRefused):
    """This key was used with a different request body."""


class BackendUnavailable(StartRefused):
    """A backend did not answer; retrying with the same key resumes the same payment."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is unavailable")
        self.what = what


def _run(services: Services, saga_input: ExecutionInput, workflow: Workflow) -> ExecutionRun:
    prefix = "pay" if workflow is Workflow.PAYMENT else workflow.value
    return run_execution(services, name=f"{prefix}-{saga_input.payment_id}-{ULID()}", saga_input=saga_input,
                         wait_ms=services.settings.lease_wait_ms, workflow=workflow)


def start_payment(services: Services, *, merchant: Merchant, key: str, request: PaymentRequest, fingerprint: str,
                  render: Render, monotonic: Callable[[], float] = time.monotonic) -> Answered | StillRunning:
    """Run the payment the key names (new, resumed or finished) and answer it within the settings' answer budget
    (StillRunning past it); raise StartRefused otherwise."""
    budget_ms = services.settings.start_answer_budget_ms
    deadline = monotonic() + budget_ms / 1_000
    gate = services.gate
    decision = open_key(services, merchant=merchant, key=key, fingerprint=fingerprint,
                        final_answer=lambda payment_id: _final_answer(services, payment_id, render))
    if isinstance(decision, Answered):
        return decision
    payment_id, token = decision.payment_id, decision.token
    observability.correlate(payment_id=payment_id, merchant_id=merchant.id)
    saga_input = ExecutionInput(payment_id=payment_id, merchant_id=merchant.id,
                                capture_amount_minor=request.capture_amount_minor)
    try:
        with services.engine.begin() as conn:
            insert_payment(conn, payment_id=payment_id, merchant_id=merchant.id, amount_minor=request.amount_minor,
                           currency=request.currency, capture_mode=request.capture_mode,
                           gateway=merchant.gateway, customer_ref=request.customer_reference,
                           order_ref=request.order_reference, payment_method_token=request.payment_method_token,
                           metadata=request.metadata)
    except SQLAlchemyError as error:
        gate.release(merchant.id, key, token)  # let the retry resume at once, same payment id
        raise BackendUnavailable("the database") from error

    def finish() -> Answered:
        return run_and_answer(services, merchant=merchant, key=key, token=token, saga_input=saga_input,
                              render=lambda run: render(run.payment))

    return answer_within(services, finish, payment_id=payment_id, deadline=deadline, monotonic=monotonic)


def answer_within(services: Services, finish: Callable[[], Answered], *, payment_id: int, deadline: float,
                  monotonic: Callable[[], float] = time.monotonic) -> Answered | StillRunning:
    """`finish()`'s answer if it comes by `deadline` (the settings' answer budget), else StillRunning with the payment
    as it stands; with a budget of 0, `finish()` on this thread."""
    if services.settings.start_answer_budget_ms == 0:
        return finish()
    answer = _in_thread(finish, name=f"saga-{payment_id}")
    try:
        return answer.result(timeout=max(0.0, deadline - monotonic()))
    except FutureTimeout:
        pass
    # The execution runs on in its thread (on AWS, in Step Functions): it records its outcome and stores the final
    # answer for the key when it ends. This request answers with the payment as it stands.
    answer.add_done_callback(_log_late_failure)
    try:
        with services.engine.connect() as conn:
            payment = get_payment(conn, payment_id=payment_id)
    except SQLAlchemyError as error:
        raise BackendUnavailable("the database") from error
    assert payment is not None, f"payment {payment_id} is written before any execution of it"
    return StillRunning(payment)


def open_key(services: Services, *, merchant: Merchant, key: str, fingerprint: str,
             final_answer: Callable[[int], idempotency.StoredResponse | None]
             ) -> Answered | idempotency.Started | idempotency.Resumed:
    """The idempotency gate's word on the key: the stored answer, or the key held by this request (with the id of
    what it runs: a payment's, or an operation's); raise KeyInFlight or KeyReused. `final_answer(id)` is the answer
    of a run that ended without storing it (None while it has not ended)."""
    try:
        decision = services.gate.begin(merchant.id, key, fingerprint, new_payment_id=services.ids.next_id)
    except (BotoCoreError, ClientError) as error:
        raise BackendUnavailable("the idempotency store") from error
    except idempotency.GateContentionError as error:
        raise KeyInFlight() from error  # other requests with this key kept changing its record: one is in flight
    if isinstance(decision, idempotency.Replay):
        return Answered(decision.response, replayed=True)
    if isinstance(decision, idempotency.InFlight):
        # The holder may be a start that answered 202 and was frozen (Lambda) before storing the final answer: once
        # the run has ended, its answer is known, so the retry gets it instead of 409 until the key's expiry.
        finished = final_answer(decision.payment_id)
        if finished is None:
            raise KeyInFlight()
        return Answered(finished, replayed=True)  # the answer the holder stores: rendered from the same record
    if isinstance(decision, idempotency.Mismatch):
        raise KeyReused()
    return decision


def _final_answer(services: Services, payment_id: int, render: Render) -> idempotency.StoredResponse | None:
    """The answer of a payment whose saga has ended, or None (not written yet, still running, or unreadable)."""
    try:
        with services.engine.connect() as conn:
            payment = get_payment(conn, payment_id=payment_id)
    except SQLAlchemyError:
        return None  # 409 as before: the retry comes back
    if payment is None or not (payment.status in lifecycle.FINAL
                               or lifecycle.awaiting_capture(payment.status, payment.capture_mode)):
        return None
    return render(payment)


def run_and_answer(services: Services, *, merchant: Merchant, key: str, token: str, saga_input: ExecutionInput,
                   render: Callable[[ExecutionRun], idempotency.StoredResponse | None],
                   workflow: Workflow = Workflow.PAYMENT) -> Answered:
    """Run the workflow's execution under the payment's lease, store its answer for the key and return it."""
    gate = services.gate
    try:
        run = _run(services, saga_input, workflow)
        response = render(run)
        if response is None and run.response is not None and run.response.get("error") == SUPERSEDED:
            # Another execution holds the payment now: wait for it to end, then answer from what it recorded (or,
            # if it left the payment unfinished, run the saga again under a lease of our own).
            response = render(_run(services, saga_input, workflow))
    except SQLAlchemyError as error:
        gate.release(merchant.id, key, token)  # let the retry resume at once, same payment id
        raise BackendUnavailable("the database") from error
    except PaymentBusyError as error:
        gate.release(merchant.id, key, token)
        raise KeyInFlight() from error
    except (BotoCoreError, ClientError) as error:
        # The execution may be running: the key stays IN_PROGRESS and a retry after its expiry resumes it.
        raise BackendUnavailable("the workflow service") from error

    if response is None:
        gate.release(merchant.id, key, token)
        raise BackendUnavailable("a backend of the payment saga")
    # If this fails the answer is still right: the record expires, and a retry resumes the finished saga, whose
    # steps all return their recorded results, so it answers the same outcome.
    with contextlib.suppress(BotoCoreError, ClientError, idempotency.NotHolderError):
        gate.complete(merchant.id, key, token, response)
    return Answered(response, replayed=False)


def _in_thread(work: Callable[[], Answered], *, name: str) -> Future[Answered]:
    """Run `work` in a thread of its own (no pool to size: one per request that outlives nothing but its saga)."""
    future: Future[Answered] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _log_late_failure(answer: Future[Answered]) -> None:
    """A saga that ended after its request was answered 202 and failed to store its answer: the key's record expires
    and a retry resumes the payment (crash safety, above); the log says why."""
    error = answer.exception()
    if error is not None:
        logger.warning("a saga answered 202 ended without storing its answer; a retry resumes it",
                       extra={"error": type(error).__name__, "detail": str(error)})
