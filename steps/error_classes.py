"""Which library faults a retry can fix: what a step raises instead of what PostgreSQL, Redis or AWS raised.

Error names are the retry contract. Lambda reports the exception's class name as `errorType`, statemachine.asl.json
retries `TransientError` and catches everything else into a compensation (before the pivot) or ParkPayment (after
it). So a fault becomes:
- TransientError only where a retry a few seconds later can succeed: connection lost or refused, a server
  restarting or failing over, a statement/lock/idle timeout, a serialization failure or deadlock, too many
  connections, throttling, an AWS 5xx;
- InvariantViolated where PostgreSQL refused a write (integrity constraint, or a trigger's RAISE with an integrity
  code): a retry gets the same refusal;
- ConfigurationError where AWS or Redis refused who we are or what we asked for (access denied, unknown credentials,
  a missing resource, an invalid request);
- itself (None here) for anything else, a programming error above all: its own class name is what Step Functions
  sees, and no Retry names it.
Database faults are judged by SQLSTATE (psycopg's `sqlstate`), never by message text.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
import redis.exceptions as redis_errors
from botocore import exceptions as boto_errors
from sqlalchemy import exc as sa_errors

from steps.errors import ConfigurationError, InvariantViolated, StepError, TransientError

# What step() looks at; anything else passes through untouched.
LIBRARY_FAULTS: Final = (
    sa_errors.SQLAlchemyError,
    psycopg.Error,
    redis_errors.RedisError,
    boto_errors.BotoCoreError,
    boto_errors.ClientError,
)

# --- PostgreSQL (https://www.postgresql.org/docs/current/errcodes-appendix.html) ---
TRANSIENT_SQLSTATES: Final = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "57014",  # query_canceled: statement_timeout
    # lock_not_available: lock_timeout, NOWAIT. The payments_guard trigger raises it too, refusing a NEW lease
    # token while another execution's lease is unexpired; steps never change the token (the start path and replay
    # take leases), so from a step it is always a lock wait that ran out.
    "55P03",
    "25P03",  # idle_in_transaction_session_timeout: the server closed the session
    "25P04",  # transaction_timeout (PostgreSQL 17)
    "57P05",  # idle_session_timeout
    "57P01",  # admin_shutdown: terminated, server stopping, failover
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: starting up, recovering
    "53300",  # too_many_connections
})
TRANSIENT_SQLSTATE_CLASSES: Final = ("08",)  # connection_exception: 08000, 08001, 08003, 08004, 08006, ...
INVARIANT_SQLSTATE_CLASSES: Final = ("23",)  # integrity_constraint_violation: 23000, 23001 restrict, 23502 not
# null, 23503 foreign key, 23505 unique, 23514 check, 23P01 exclusion (constraints and the ledger's triggers alike)
INVARIANT_SQLSTATES: Final = frozenset({
    "40002",  # transaction_integrity_constraint_violation: a deferred constraint refused the COMMIT
    "P0001",  # raise_exception: a PL/pgSQL guard that RAISEd without naming a code
    "P0004",  # assert_failure: a PL/pgSQL ASSERT
})

# --- AWS (botocore's own retry checkers, botocore/retries/standard.py, name the same transient codes) ---
THROTTLING_CODES: Final = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "RequestThrottled",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "LimitExceededException", "SlowDown", "EC2ThrottledException",
    "TransactionInProgressException", "PriorRequestNotComplete", "KmsThrottled",
})
SERVER_FAULT_CODES: Final = frozenset({
    "InternalError", "InternalFailure", "InternalServerError", "InternalServerException", "ServiceUnavailable",
    "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
})
CONFIGURATION_CODES: Final = frozenset({
    # who we are, what we may do
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
    "InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSignatureException",
    "IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken", "ExpiredTokenException", "AuthFailure",
    "OptInRequired", "InvalidSecurity",
    # what we asked for
    "ValidationException", "ValidationError", "ResourceNotFoundException",
    "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",  # SQS: JSON and query names of a missing queue
    "KmsAccessDenied", "KmsDisabled", "KmsInvalidState", "KmsNotFound", "KmsOptInRequired", "KmsInvalidKeyUsage",
})
TRANSIENT_BOTO_ERRORS: Final = (
    boto_errors.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError, SSLError
    boto_errors.HTTPClientError,  # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError
    boto_errors.IncompleteReadError,
)
CONFIGURATION_BOTO_ERRORS: Final = (
    boto_errors.NoCredentialsError,
    boto_errors.PartialCredentialsError,
    boto_errors.CredentialRetrievalError,
    boto_errors.NoRegionError,
    boto_errors.ProfileNotFound,
)

# --- Redis ---
CONFIGURATION_REDIS_ERRORS: Final = (
    redis_errors.AuthenticationError,  # a ConnectionError subclass: judged before the transient ones
    redis_errors.AuthorizationError,
    redis_errors.NoPermissionError,
)
TRANSIENT_REDIS_ERRORS: Final = (
    redis_errors.ConnectionError,  # refused, reset, BusyLoadingError, MaxConnectionsError
    redis_errors.TimeoutError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.ReadOnlyError,  # still connected to a primary that was demoted by a failover
)


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL (or psycopg) gave `error`, whether SQLAlchemy wrapped it or not."""
    orig = error.orig if isinstance(error, sa_errors.DBAPIError) else error
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _database(error: BaseException) -> type[StepError] | None:
    if isinstance(error, sa_errors.TimeoutError | sa_errors.DisconnectionError):
        return TransientError  # no pooled connection freed up in time; a connection found dead
    if isinstance(error, sa_errors.DBAPIError):
        if error.connection_invalidated:
            return TransientError  # SQLAlchemy recognised a disconnect
        lost = isinstance(error, sa_errors.OperationalError | sa_errors.InterfaceError)
    elif isinstance(error, psycopg.Error):
        lost = isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
    else:
        return None  # an SQLAlchemy usage error (a closed result, a pending rollback...): a bug
    state = sqlstate(error)
    if state is None:
        # Raised by the driver, not the server: a connection refused, lost or closed under us; anything else the
        # driver refuses (a bad parameter, a misused cursor) is ours to fix.
        return TransientError if lost else None
    if state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_SQLSTATE_CLASSES):
        return TransientError
    if state in INVARIANT_SQLSTATES or state.startswith(INVARIANT_SQLSTATE_CLASSES):
        return InvariantViolated
    return None  # syntax, undefined object, data exception, disk full...: a bug or an operator's matter


def _aws(error: BaseException) -> type[StepError] | None:
    if isinstance(error, boto_errors.ClientError):
        response: dict[str, Any] = dict(error.response)
        details: dict[str, Any] = dict(response.get("Error") or {})
        # A JSON-protocol service that keeps its query-protocol names (SQS) reports both.
        codes = {details.get("Code"), details.get("QueryErrorCode")}
        status = dict(response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if codes & CONFIGURATION_CODES:
            return ConfigurationError
        if codes & (THROTTLING_CODES | SERVER_FAULT_CODES):
            return TransientError
        if isinstance(status, int) and (status >= 500 or status == 429):
            return TransientError
        return None  # another 4xx (an invalid message, a failed condition): the request is wrong, a retry is too
    if isinstance(error, TRANSIENT_BOTO_ERRORS):
        return TransientError
    if isinstance(error, CONFIGURATION_BOTO_ERRORS):
        return ConfigurationError
    return None  # ParamValidationError and the like: a bug


def _redis(error: BaseException) -> type[StepError] | None:
    if isinstance(error, CONFIGURATION_REDIS_ERRORS):
        return ConfigurationError
    if isinstance(error, TRANSIENT_REDIS_ERRORS):
        return TransientError
    return None  # WRONGTYPE, a script error, out of memory: not fixed by retrying within seconds


def error_class(error: BaseException) -> type[StepError] | None:
    """The class a step raises instead of `error`, or None where `error` goes on as it is."""
    if isinstance(error, StepError):
        return None
    if isinstance(error, sa_errors.SQLAlchemyError | psycopg.Error):
        return _database(error)
    if isinstance(error, boto_errors.BotoCoreError | boto_errors.ClientError):
        return _aws(error)
    if isinstance(error, redis_errors.RedisError):
        return _redis(error)
    return None


def describe(error: BaseException) -> str:
    """What went wrong, for the error's message (Step Functions' Cause, maybe a payment's failure message): the
    driver's or service's own words; never the SQL statement, its parameters or the failing row."""
    if not isinstance(error, sa_errors.DBAPIError | psycopg.Error):
        return f"{type(error).__name__}: {error}"
    orig = error.orig if isinstance(error, sa_errors.DBAPIError) else error
    diag = getattr(orig, "diag", None)
    text = getattr(diag, "message_primary", None) or next(iter(str(orig).strip().splitlines()), "")
    state = sqlstate(error)
    constraint = getattr(diag, "constraint_name", None)
    about = " ".join([type(orig).__name__, *([f"SQLSTATE {state}"] if state else []),
                      *([f"constraint {constraint}"] if constraint else [])])
    return f"{about}: {text}" if text else about


def named(step: str, error: BaseException) -> StepError | None:
    """The error `step` raises instead of `error` (chain it: `raise named from error`), or None to let it through."""
    cls = error_class(error)
    if cls is None:
        return None
    what = {TransientError: "a fault a retry can fix", InvariantViolated: "the database refused the write",
            ConfigurationError: "the deployment is misconfigured"}[cls]
    return cls(f"{step}: {what}: {describe(error)}")
