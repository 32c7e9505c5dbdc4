"""Error classes that mean what they say (issue 11, item 8). Each fault is raised the way its library raises it (a
statement PostgreSQL refuses, a Redis server that times out or refuses our user, an HTTP answer botocore parses),
goes through a handler wrapped by `step()`, and comes out under the name Step Functions will see:
- TransientError (the only name retried) for what a retry can fix;
- InvariantViolated for a write the database refused, ConfigurationError for a deployment AWS or Redis refuses;
- the original exception for anything else, a programming error above all.
The last tests read statemachine.asl.json: only TransientError is retried, and the non-transient names reach a
compensation before the pivot and ParkPayment (or ParkNotification) after it."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import redis as redis_lib
from botocore import exceptions as boto_errors
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine, create_engine, exc, make_url, text
from sqlalchemy.pool import NullPool

from steps import error_classes
from steps.errors import (
    NOT_RETRIED,
    ConfigurationError,
    ExecutionSuperseded,
    FraudRejected,
    InvariantViolated,
    TransientError,
)
from steps.runtime import StepInput, StepResult, step

ROOT = Path(__file__).resolve().parents[3]
EVENT = {"payment_id": "1", "merchant_id": "m-1", "lease_token": 1}
Body = Callable[[StepInput], StepResult]


def raised(body: Body, name: str = "Probe") -> BaseException:
    """What a Lambda handler made of `body` by step() raises: its class name is the error Step Functions sees."""
    handler = step(name)(body)
    try:
        handler(dict(EVENT), None)
    except Exception as error:
        return error
    raise AssertionError("the handler returned instead of raising")


def failing(action: Callable[[], object]) -> Body:
    def body(_: StepInput) -> StepResult:
        action()
        raise AssertionError("the action was expected to raise")

    return body


def sqlstate_of(error: BaseException) -> str | None:
    assert error.__cause__ is not None, "a named error keeps what the library raised as its cause"
    return error_classes.sqlstate(error.__cause__)


# --- PostgreSQL ---------------------------------------------------------------------------------------------------

@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_engine(database_url, poolclass=NullPool)
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO merchants (id, name, api_key_sha256, api_key_prefix, max_amount_minor,"
                          " currencies, gateway) VALUES ('m-1', 'M', decode(repeat('00', 32), 'hex'), 'pk_test',"
                          " 100000, ARRAY['EUR'], 'sandbox')"))
        conn.execute(text("INSERT INTO payments (id, merchant_id, amount_minor, currency)"
                          " VALUES (1, 'm-1', 500, 'EUR')"))
        conn.execute(text("CREATE TABLE pair (id int PRIMARY KEY, v int NOT NULL)"))
        conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
    yield eng
    eng.dispose()


def in_transaction(engine: Engine, *statements: str) -> Callable[[], object]:
    def run() -> None:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))

    return run


@pytest.mark.parametrize(("statements", "state"), [
    pytest.param(["INSERT INTO payments (id, merchant_id, amount_minor, currency) VALUES (2, 'm-1', 0, 'EUR')"],
                 "23514", id="check constraint: amount_minor = 0"),
    pytest.param(["INSERT INTO payments (id, merchant_id, amount_minor, currency) VALUES (2, 'nobody', 5, 'EUR')"],
                 "23503", id="foreign key"),
    pytest.param(["INSERT INTO payments (id, merchant_id, amount_minor, currency) VALUES (1, 'm-1', 5, 'EUR')"],
                 "23505", id="unique: the same payment twice"),
    pytest.param(["INSERT INTO payments (id, merchant_id, amount_minor) VALUES (2, 'm-1', 5)"],
                 "23502", id="not null"),
    pytest.param(["UPDATE payments SET status = 'succeeded' WHERE id = 1"],
                 "23514", id="trigger check_violation: created -> succeeded is no lifecycle move"),
    pytest.param(["UPDATE payments SET lease_token = 5 WHERE id = 1",
                  "UPDATE payments SET lease_token = 4 WHERE id = 1"],
                 "23514", id="trigger check_violation: the lease token goes back"),
    pytest.param(["TRUNCATE ledger_entries"], "23001", id="trigger restrict_violation: the ledger is append-only"),
])
def test_a_write_the_database_refuses_is_an_invariant_violation(
    engine: Engine, statements: list[str], state: str
) -> None:
    error = raised(failing(in_transaction(engine, *statements)))
    assert type(error) is InvariantViolated and sqlstate_of(error) == state
    assert isinstance(error.__cause__, exc.IntegrityError | exc.DBAPIError)
    assert "INSERT" not in str(error) and "UPDATE" not in str(error), "the Cause carries no SQL nor parameters"


def test_a_statement_timeout_is_transient(engine: Engine) -> None:
    error = raised(failing(in_transaction(engine, "SET LOCAL statement_timeout = 1", "SELECT pg_sleep(1)")))
    assert type(error) is TransientError and sqlstate_of(error) == "57014"


def test_a_lock_timeout_is_transient(engine: Engine) -> None:
    with engine.begin() as holder:
        holder.execute(text("SELECT * FROM pair WHERE id = 1 FOR UPDATE"))
        error = raised(failing(in_transaction(
            engine, "SET LOCAL lock_timeout = '50ms'", "SELECT * FROM pair WHERE id = 1 FOR UPDATE")))
    assert type(error) is TransientError and sqlstate_of(error) == "55P03"


def test_the_lease_guard_refusing_a_new_token_is_lock_not_available_and_transient(engine: Engine) -> None:
    """payments_guard raises 55P03 when a NEW lease token is written while another lease is held. Steps never write
    a new token (the start path and replay take leases), so 55P03 is classed by what it means for a step: a lock
    wait that ran out, worth a retry."""
    in_transaction(engine, "UPDATE payments SET lease_token = 1, lease_holder = 'exec-a',"
                           " lease_expires_at = now() + interval '1 hour' WHERE id = 1")()
    error = raised(failing(in_transaction(engine, "UPDATE payments SET lease_token = 2 WHERE id = 1")))
    assert type(error) is TransientError and sqlstate_of(error) == "55P03"


def test_a_serialization_failure_is_transient(engine: Engine) -> None:
    def race() -> None:
        with engine.connect() as plain:
            conn = plain.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SELECT v FROM pair WHERE id = 1"))  # the snapshot is taken here
                in_transaction(engine, "UPDATE pair SET v = v + 1 WHERE id = 1")()
                conn.execute(text("UPDATE pair SET v = v + 10 WHERE id = 1"))

    error = raised(failing(race))
    assert type(error) is TransientError and sqlstate_of(error) == "40001"


def test_a_deadlock_is_transient_and_the_other_transaction_goes_through(engine: Engine) -> None:
    both_hold_one = threading.Barrier(2, timeout=10)
    outcomes: dict[str, object] = {}

    def locking(first: int, second: int) -> Body:
        def body(_: StepInput) -> StepResult:
            with engine.begin() as conn:
                conn.execute(text("SELECT * FROM pair WHERE id = :id FOR UPDATE"), {"id": first})
                both_hold_one.wait()
                conn.execute(text("SELECT * FROM pair WHERE id = :id FOR UPDATE"), {"id": second})
            return {"locked": [first, second]}

        return body

    def run(name: str, body: Body) -> None:
        try:
            outcomes[name] = step(name)(body)(dict(EVENT), None)
        except Exception as error:
            outcomes[name] = error

    threads = [threading.Thread(target=run, args=("A", locking(1, 2))),
               threading.Thread(target=run, args=("B", locking(2, 1)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    errors = [o for o in outcomes.values() if isinstance(o, BaseException)]
    assert len(outcomes) == 2 and len(errors) == 1, outcomes
    assert type(errors[0]) is TransientError and sqlstate_of(errors[0]) == "40P01"


def test_a_connection_terminated_under_the_step_is_transient(engine: Engine) -> None:
    def terminated() -> None:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with engine.connect() as admin:  # waits (up to 5 s) until the backend is gone
                assert admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()
            conn.execute(text("SELECT 1"))

    error = raised(failing(terminated))
    assert type(error) is TransientError
    assert isinstance(error.__cause__, exc.OperationalError)
    assert sqlstate_of(error) in {None, "57P01"}  # what libpq read first: the FATAL message or the closed socket


def test_a_refused_connection_is_transient() -> None:
    unreachable = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", poolclass=NullPool,
                                connect_args={"connect_timeout": 2})
    error = raised(failing(unreachable.connect))
    assert type(error) is TransientError and isinstance(error.__cause__, exc.OperationalError)


def test_too_many_connections_is_transient(engine: Engine, database_url: str) -> None:
    role = f"capped_{uuid.uuid4().hex[:12]}"
    in_transaction(engine, f"CREATE ROLE {role} LOGIN PASSWORD '{role}' CONNECTION LIMIT 0")()
    try:
        capped = create_engine(make_url(database_url).set(username=role, password=role), poolclass=NullPool)
        error = raised(failing(capped.connect))
        # libpq reports a refusal at connect time without its SQLSTATE (53300): the driver's OperationalError
        assert type(error) is TransientError and "too many connections" in str(error)
    finally:
        in_transaction(engine, f"DROP ROLE {role}")()


def test_an_exhausted_pool_is_transient(database_url: str) -> None:
    pool = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    try:
        with pool.connect():
            error = raised(failing(pool.connect))
    finally:
        pool.dispose()
    assert type(error) is TransientError and isinstance(error.__cause__, exc.TimeoutError)


@pytest.mark.parametrize(("statement", "wrapper"), [
    pytest.param("SELECT * FROM no_such_table", exc.ProgrammingError, id="42P01 undefined table"),
    pytest.param("SELECT 'x'::int", exc.DataError, id="22P02 invalid input"),
])
def test_a_database_error_no_retry_fixes_and_no_invariant_names_goes_on_as_it_is(
    engine: Engine, statement: str, wrapper: type[Exception]
) -> None:
    error = raised(failing(in_transaction(engine, statement)))
    assert type(error) is wrapper


# SQLSTATEs a test cannot cause on demand (a crash, a server starting up, a connection dropped mid-COMMIT): the
# error class psycopg raises for each, wrapped as SQLAlchemy wraps it (DBAPIError.instance).
@pytest.mark.parametrize(("state", "expected"), [
    ("57P01", TransientError), ("57P02", TransientError), ("57P03", TransientError), ("53300", TransientError),
    ("08006", TransientError), ("08001", TransientError), ("40001", TransientError), ("40P01", TransientError),
    ("57014", TransientError), ("55P03", TransientError), ("25P03", TransientError),
    ("23000", InvariantViolated), ("23001", InvariantViolated), ("23502", InvariantViolated),
    ("23503", InvariantViolated), ("23505", InvariantViolated), ("23514", InvariantViolated),
    ("23P01", InvariantViolated), ("40002", InvariantViolated), ("P0001", InvariantViolated),
    ("42P01", None), ("42703", None), ("22003", None), ("53100", None), ("54000", None), ("XX000", None),
])
def test_the_sqlstate_decides(state: str, expected: type[Exception] | None) -> None:
    orig = psycopg.errors.lookup(state)("refused")
    assert orig.sqlstate == state
    wrapped = exc.DBAPIError.instance("SELECT 1", None, orig, psycopg.Error)

    def fault() -> None:
        raise wrapped

    error = raised(failing(fault))
    assert type(error) is (expected or type(wrapped)), (state, error)


@pytest.mark.parametrize("orig", [psycopg.OperationalError("the connection is lost"),
                                  psycopg.InterfaceError("the connection is closed")], ids=type)
def test_a_connection_fault_the_driver_raises_without_sqlstate_is_transient(orig: psycopg.Error) -> None:
    wrapped = exc.DBAPIError.instance("SELECT 1", None, orig, psycopg.Error)

    def fault() -> None:
        raise wrapped

    assert type(raised(failing(fault))) is TransientError


# --- Redis --------------------------------------------------------------------------------------------------------

def redis_client(url: str, **options: Any) -> redis_lib.Redis[bytes]:
    settings: dict[str, Any] = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry": Retry(NoBackoff(), 0)}
    return redis_lib.Redis.from_url(url, **{**settings, **options})


def test_redis_unreachable_is_transient() -> None:
    error = raised(failing(redis_client("redis://127.0.0.1:1/0").ping))
    assert type(error) is TransientError and isinstance(error.__cause__, redis_lib.ConnectionError)


def test_a_redis_timeout_is_transient(redis_url: str) -> None:
    client = redis_client(redis_url, socket_timeout=0.1)
    error = raised(failing(lambda: client.blpop(["never-filled"], timeout=2)))
    assert type(error) is TransientError and isinstance(error.__cause__, redis_lib.TimeoutError)


@pytest.fixture
def redis_user(redis_url: str) -> Iterator[str]:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    admin = redis_client(redis_url)
    admin.execute_command("ACL", "SETUSER", name, "on", ">right-password", "~*", "-@all")
    yield name
    admin.execute_command("ACL", "DELUSER", name)


def test_redis_refusing_our_user_is_a_configuration_error(redis_url: str, redis_user: str) -> None:
    wrong = redis_client(redis_url, username=redis_user, password="wrong-password")
    error = raised(failing(wrong.ping))
    assert type(error) is ConfigurationError and isinstance(error.__cause__, redis_lib.AuthenticationError)

    no_rights = redis_client(redis_url, username=redis_user, password="right-password")
    error = raised(failing(lambda: no_rights.get("k")))
    assert type(error) is ConfigurationError
    assert isinstance(error.__cause__, redis_lib.exceptions.NoPermissionError)


def test_a_redis_command_error_goes_on_as_it_is(redis_url: str) -> None:
    client = redis_client(redis_url)
    client.set("a-string", "x")
    error = raised(failing(lambda: client.lpush("a-string", "y")))
    assert type(error) is redis_lib.ResponseError  # WRONGTYPE: our bug


# --- AWS ----------------------------------------------------------------------------------------------------------

class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def sqs_answering(status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> Any:
    """An SQS client whose every request gets this HTTP answer, parsed by botocore as any answer from AWS is."""
    client = boto3.client(
        "sqs", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing",
        endpoint_url="https://sqs.eu-west-1.amazonaws.com",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    data = json.dumps(body).encode() if body is not None else b""

    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.0", **(headers or {})},
                           _Body(data))

    client.meta.events.register("before-send.sqs", answer)
    return client


def send(client: Any) -> Callable[[], object]:
    return lambda: client.send_message(QueueUrl="https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo",
                                       MessageBody="{}", MessageGroupId="1", MessageDeduplicationId="e-1")


def _aws_error(kind: str, message: str = "refused") -> dict[str, str]:
    return {"__type": kind, "message": message}


@pytest.mark.parametrize(("status", "body", "headers", "code", "expected"), [
    pytest.param(403, _aws_error("com.amazon.coral.service#AccessDeniedException"),
                 {"x-amzn-query-error": "AccessDenied;Sender"}, "AccessDenied", ConfigurationError,
                 id="access denied"),
    pytest.param(400, _aws_error("com.amazon.coral.service#UnrecognizedClientException"), None,
                 "UnrecognizedClientException", ConfigurationError, id="unknown credentials"),
    pytest.param(400, _aws_error("com.amazon.coral.validate#ValidationException"), None, "ValidationException",
                 ConfigurationError, id="validation"),
    pytest.param(400, _aws_error("com.amazonaws.sqs#QueueDoesNotExist"),
                 {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
                 "AWS.SimpleQueueService.NonExistentQueue", ConfigurationError, id="missing queue"),
    pytest.param(400, _aws_error("com.amazonaws.sqs#QueueDoesNotExist"), None, "QueueDoesNotExist",
                 ConfigurationError, id="missing queue (JSON name)"),
    pytest.param(400, _aws_error("ResourceNotFoundException"), None, "ResourceNotFoundException",
                 ConfigurationError, id="missing resource"),
    pytest.param(400, _aws_error("com.amazonaws.sqs#RequestThrottled"),
                 {"x-amzn-query-error": "RequestThrottled;Sender"}, "RequestThrottled", TransientError,
                 id="SQS throttling"),
    pytest.param(400, _aws_error("ThrottlingException"), None, "ThrottlingException", TransientError,
                 id="throttling"),
    pytest.param(429, _aws_error("TooManyRequestsException"), None, "TooManyRequestsException", TransientError,
                 id="too many requests"),
    pytest.param(500, _aws_error("InternalError"), None, "InternalError", TransientError, id="internal error"),
    pytest.param(503, _aws_error("ServiceUnavailable"), None, "ServiceUnavailable", TransientError,
                 id="service unavailable"),
    pytest.param(502, None, None, "502", TransientError, id="bad gateway, no body"),
    pytest.param(400, _aws_error("com.amazonaws.sqs#InvalidMessageContents"), None, "InvalidMessageContents", None,
                 id="another 4xx: goes on as it is"),
])
def test_an_aws_error_answer(
    status: int, body: dict[str, Any] | None, headers: dict[str, str] | None, code: str,
    expected: type[Exception] | None,
) -> None:
    error = raised(failing(send(sqs_answering(status, body, headers))))
    cause = error if expected is None else error.__cause__
    assert isinstance(cause, boto_errors.ClientError), error
    assert cause.response["Error"]["Code"] == code
    if expected is None:  # botocore's modeled class for the code (a ClientError): that name is what SFN sees
        assert type(error).__name__ == code
    else:
        assert type(error) is expected


def test_an_unreachable_aws_endpoint_is_transient() -> None:
    client = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing", endpoint_url="http://127.0.0.1:1",
                          config=Config(retries={"total_max_attempts": 1}, connect_timeout=1))
    error = raised(failing(send(client)))
    assert type(error) is TransientError and isinstance(error.__cause__, boto_errors.EndpointConnectionError)


def test_an_aws_read_timeout_is_transient() -> None:
    with closing(socket.socket()) as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing", endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
                              config=Config(retries={"total_max_attempts": 1}, read_timeout=0.2))
        error = raised(failing(send(client)))
    assert type(error) is TransientError and isinstance(error.__cause__, boto_errors.ReadTimeoutError)


@pytest.mark.parametrize(("fault", "expected"), [
    (boto_errors.ConnectTimeoutError(endpoint_url="https://sqs.eu-west-1.amazonaws.com"), TransientError),
    (boto_errors.ConnectionClosedError(endpoint_url="https://sqs.eu-west-1.amazonaws.com"), TransientError),
    (boto_errors.NoCredentialsError(), ConfigurationError),
    (boto_errors.NoRegionError(), ConfigurationError),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "")
def test_botocore_faults_before_an_answer(fault: Exception, expected: type[Exception]) -> None:
    def fail() -> None:
        raise fault

    assert type(raised(failing(fail))) is expected


def test_an_invalid_aws_call_goes_on_as_it_is() -> None:
    client = sqs_answering(200, {})
    error = raised(failing(lambda: client.send_message(QueueUrl="q")))  # MessageBody missing
    assert type(error) is boto_errors.ParamValidationError


# --- programming errors and the steps' own errors -----------------------------------------------------------------

@pytest.mark.parametrize("fault", [ValueError("bad input"), KeyError("missing"), AssertionError("broken"),
                                   TypeError("wrong type"), TransientError("raised by a step"),
                                   FraudRejected("score 99"), ExecutionSuperseded("another execution holds it")],
                         ids=lambda v: type(v).__name__)
def test_any_other_exception_goes_on_as_it_is(fault: Exception) -> None:
    def fail() -> None:
        raise fault

    assert raised(failing(fail)) is fault


def test_a_step_that_succeeds_returns_its_result() -> None:
    assert step("Probe")(lambda data: {"payment_id": data.payment_id})(dict(EVENT), None) == {"payment_id": 1}


# --- the state machine --------------------------------------------------------------------------------------------

DEFINITION = json.loads((ROOT / "statemachine.asl.json").read_text())
TASKS = {name: state for name, state in DEFINITION["States"].items() if state["Type"] == "Task"}
MATCH_ANY = {"States.ALL", "States.TaskFailed"}
# Where a non-transient error of each Task goes: a compensation before the pivot (CaptureOrVoid), ParkPayment after
# it and from every compensation, ParkNotification from NotifyMerchant (a notification never unwinds a payment).
ROUTES = {
    "ValidatePayment": "RejectPayment",
    "ReserveBalance": "ReleaseReservation",
    "AuthorizeGateway": "VoidAuthorization",
    "CaptureOrVoid": "ParkPayment",
    "CommitLedger": "ParkPayment",
    "NotifyMerchant": "ParkNotification",
    "VoidAuthorization": "ParkPayment",
    "ReleaseReservation": "ParkPayment",
    "RejectPayment": "ParkPayment",
    "RefundCapture": "ParkPayment",
    "ReverseLedger": "ParkPayment",
}
# The recovery states end the execution on a failure: there is nothing left to route it to.
RECOVERY = {"ParkPayment", "ParkNotification"}


def first_catch(state: dict[str, Any], error: str) -> dict[str, Any] | None:
    """The Catcher Step Functions picks for `error`: the first whose ErrorEquals names it or matches any."""
    for catcher in state.get("Catch", []):
        if error in catcher["ErrorEquals"] or MATCH_ANY & set(catcher["ErrorEquals"]):
            return dict(catcher)
    return None


def test_every_task_is_routed_or_a_recovery_state() -> None:
    assert set(TASKS) == set(ROUTES) | RECOVERY


@pytest.mark.parametrize("task", sorted(TASKS))
def test_only_transient_error_is_retried(task: str) -> None:
    retried = [name for retrier in TASKS[task].get("Retry", []) for name in retrier["ErrorEquals"]]
    assert "TransientError" in retried
    assert not set(retried) & (NOT_RETRIED | MATCH_ANY), f"{task} retries {retried}"


@pytest.mark.parametrize("task", sorted(ROUTES))
@pytest.mark.parametrize("error", sorted(NOT_RETRIED))
def test_a_non_transient_error_goes_to_compensation_or_parking(task: str, error: str) -> None:
    catcher = first_catch(TASKS[task], error)
    assert catcher is not None and catcher["Next"] == ROUTES[task], (task, error, catcher)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_execution_superseded_keeps_its_own_first_catch(task: str) -> None:
    first = TASKS[task]["Catch"][0]
    assert first["ErrorEquals"] == ["ExecutionSuperseded"] and first["Next"] == "ExecutionSuperseded"


def test_the_error_names_are_the_class_names() -> None:
    assert {InvariantViolated.__name__, ConfigurationError.__name__} == NOT_RETRIED
    assert TransientError.__name__ == "TransientError"

