"""Logs, metrics and traces of the Lambda functions, built in one place with Powertools for AWS Lambda; the names
(services, namespace, metrics, dimensions, annotations) are core/telemetry_names.py's.

Every handler runs its work inside ``invocation(...)``, which for that one invocation:
- logs: appends the Lambda context (function_name, function_arn, function_memory_size, function_request_id,
  cold_start) and the payment id as ``correlation_id`` to every JSON log line of every Powertools logger, on this
  thread only (Powertools' thread-safe keys: the local server runs many invocations at once), and puts back what
  was there before when it ends (the local runtime may run an invocation inside another's thread);
- metrics: collects what the code records (``count``, ``milliseconds``) and publishes it once, when it ends, as
  CloudWatch EMF on stdout: one document per dimension set, each metric with exactly the dimensions written beside
  its name (no ``service`` dimension);
- traces: opens an X-Ray subsegment ``## <name>`` annotated with the payment and merchant ids, under which the
  patched libraries (botocore, requests, httpx, SQLAlchemy) and ``subsegment(...)`` (Redis, the gateway port) nest
  theirs. An error the handler calls an outcome (a decline) is annotated ``outcome``, not recorded as a fault.

Where it all goes:
- logs: JSON on stdout, at POWERTOOLS_LOG_LEVEL / LOG_LEVEL, on Lambda and off it alike;
- metrics: EMF on stdout on Lambda unless POWERTOOLS_METRICS_DISABLED=true; off Lambda (the local stack, tests, the
  simulation's thousands of payments) nothing unless POWERTOOLS_METRICS_DISABLED=false;
- traces: X-Ray on Lambda (the function's active tracing) unless POWERTOOLS_TRACE_DISABLED=true; off Lambda nothing:
  the X-Ray SDK is not even imported there, so no daemon is ever called (Lambda: LAMBDA_TASK_ROOT is set).

POWERTOOLS_METRICS_NAMESPACE overrides the namespace (telemetry_names.NAMESPACE by default). Logs and EMF are
written to whatever ``sys.stdout`` is at the time, so a test reads both with pytest's ``capsys``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from core import telemetry_names as names

__all__ = [
    "Invocation",
    "Metric",
    "correlate",
    "correlated",
    "count",
    "current",
    "invocation",
    "logger",
    "metrics_enabled",
    "milliseconds",
    "on_lambda",
    "subsegment",
    "tracing_enabled",
]

_log = logging.getLogger(__name__)

# The libraries whose calls become X-Ray subsegments by themselves (aws-xray-sdk's patchers): AWS (boto3), the
# gateways' HTTP (Adyen's SDK sends with requests; Stripe's client and the sandbox adapter with httpx) and every
# SQL statement (SQLAlchemy Core's Connection.execute: one subsegment per statement, named by the database host).
# Redis has no patcher: steps/fence.py opens its subsegments itself, as the gateway port does (steps/gateway/traced.py).
PATCH_MODULES: Final = ("botocore", "requests", "httpx", "sqlalchemy_core")

_TRUE: Final = frozenset({"1", "true", "t", "yes", "y", "on"})


def _flag(name: str) -> bool | None:
    """An environment flag: True/False as set, None when unset or empty."""
    value = os.environ.get(name, "").strip().lower()
    return None if not value else value in _TRUE


def on_lambda() -> bool:
    """Running in the Lambda service (not an emulator): what Powertools' Tracer checks too."""
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not _flag("AWS_SAM_LOCAL") and not _flag("AWS_CHALICE_CLI_MODE")


def metrics_enabled() -> bool:
    """EMF is written on Lambda unless POWERTOOLS_METRICS_DISABLED says otherwise; off Lambda only when it says
    false (POWERTOOLS_DEV, as in Powertools, disables it where the flag is unset). Read at each publication."""
    disabled = _flag("POWERTOOLS_METRICS_DISABLED")
    if disabled is not None:
        return not disabled
    if _flag("POWERTOOLS_DEV"):
        return False
    return on_lambda()


def tracing_enabled() -> bool:
    """X-Ray on Lambda unless POWERTOOLS_TRACE_DISABLED; never off Lambda (no daemon listens there)."""
    return on_lambda() and not _flag("POWERTOOLS_TRACE_DISABLED")


def namespace() -> str:
    return os.environ.get(names.METRICS_NAMESPACE_ENV, "").strip() or names.NAMESPACE


# ---- logs ----------------------------------------------------------------------------------------------------------


class _Stdout(io.TextIOBase):
    """Whatever sys.stdout is at each write: the function's stdout on Lambda, pytest's capture in a test."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_STDOUT: Final = _Stdout()
_loggers: dict[str, Logger] = {}
_loggers_lock = threading.Lock()


def logger(service: str) -> Logger:
    """The Powertools logger of a service (telemetry_names.SERVICE_*), made once per process. Its handler writes to
    the current stdout even where another module made a Logger of the same service first."""
    with _loggers_lock:
        made = _loggers.get(service)
        if made is None:
            made = _loggers[service] = Logger(service=service, stream=cast("IO[str]", _STDOUT))
            handler = made.registered_handler
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(_STDOUT)
    return made


_level_followed: list[str | None] = [None]


def _follow_log_level() -> None:
    """Off Lambda the environment changes under a running process (the simulation sets LOG_LEVEL after importing the
    handlers, a test per test): the loggers take POWERTOOLS_LOG_LEVEL / LOG_LEVEL again at each invocation. On
    Lambda the environment is fixed: Powertools read it when it made them (with the log level Lambda sets first)."""
    if on_lambda():
        return
    level = (os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO").strip().upper()
    if level == _level_followed[0] or not isinstance(logging.getLevelName(level), int):
        return
    with _loggers_lock:
        for made in _loggers.values():
            made.setLevel(level)
    _level_followed[0] = level


# Powertools keeps thread-safe keys in one context variable that every Powertools logger reads: appending them
# through one logger puts them on the lines of all.
_keys: Final = logger(names.SERVICE_STEPS)


def _lambda_context_keys(context: Any) -> dict[str, Any]:
    if context is None:
        return {}
    try:
        return dict(build_lambda_context_model(context).__dict__)
    except AttributeError:  # not a Lambda context (a test's stand-in): nothing to add
        return {}


@contextlib.contextmanager
def _log_keys(**keys: Any) -> Iterator[None]:
    saved = dict(_keys.thread_safe_get_current_keys())
    _keys.thread_safe_append_keys(**{k: v for k, v in keys.items() if v is not None})
    try:
        yield
    finally:
        _keys.thread_safe_clear_keys()
        if saved:
            _keys.thread_safe_append_keys(**saved)


# ---- traces --------------------------------------------------------------------------------------------------------


class Segment(Protocol):
    def put_annotation(self, key: str, value: str) -> None: ...


class _Traces(Protocol):
    def subsegment(self, name: str, namespace: str) -> AbstractContextManager[Segment | None]: ...


class _NoTraces:
    def subsegment(self, name: str, namespace: str) -> AbstractContextManager[Segment | None]:
        return contextlib.nullcontext()


class _XRay:
    """Powertools' Tracer (aws-xray-sdk underneath), made once per process, on Lambda only."""

    def __init__(self) -> None:
        from aws_lambda_powertools import Tracer  # noqa: PLC0415  (the X-Ray SDK is imported on Lambda only)

        self._tracer = Tracer(patch_modules=PATCH_MODULES)
        # Statement subsegments keep timing, database and URL, not the SQL text: the patcher compiles each statement
        # again to show it, about 0.8 ms a statement on the payment path.
        recorder: Any = self._tracer.provider
        recorder.configure(stream_sql=False)

    def subsegment(self, name: str, namespace: str) -> AbstractContextManager[Segment | None]:
        made: AbstractContextManager[Segment | None] = self._tracer.provider.in_subsegment(name=name,
                                                                                            namespace=namespace)
        return made


# Made at import, so the libraries are patched before any client is (the functions' init phase).
_traces: Final[_Traces] = _XRay() if tracing_enabled() else _NoTraces()


def _annotate(segment: Segment | None, **annotations: str | None) -> None:
    if segment is None:
        return
    for key, value in annotations.items():
        if value is not None:
            segment.put_annotation(key, value)


@contextlib.contextmanager
def subsegment(name: str, *, remote: bool = True, **annotations: str | None) -> Iterator[None]:
    """An X-Ray subsegment around a call (remote: a call to another service, shown as its node on the service map),
    annotated; nothing off Lambda. Ids are annotated as strings: X-Ray keeps numbers as doubles."""
    with _traces.subsegment(name, "remote" if remote else "local") as segment:
        _annotate(segment, **annotations)
        yield


# ---- metrics -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    unit: MetricUnit
    value: float
    dimensions: tuple[tuple[str, str], ...] = ()


def _publish(metrics: Sequence[Metric]) -> None:
    """EMF on stdout, one document per dimension set; never raises (a metric is not worth a failed payment)."""
    if not metrics or not metrics_enabled():
        return
    groups: dict[tuple[tuple[str, str], ...], list[Metric]] = {}
    for metric in metrics:
        groups.setdefault(metric.dimensions, []).append(metric)
    try:
        for dimensions, group in groups.items():
            emf = EphemeralMetrics(namespace=namespace(), service="")  # "": no service dimension
            for key, value in dimensions:
                emf.add_dimension(name=key, value=value)
            for metric in group:
                emf.add_metric(name=metric.name, unit=metric.unit, value=metric.value)
            emf.flush_metrics(raise_on_empty_metrics=False)
    except Exception:
        _log.exception("metrics could not be published")


def _metric(name: str, unit: MetricUnit, value: float, dimensions: dict[str, str]) -> Metric:
    return Metric(name, unit, float(value), tuple(sorted(dimensions.items())))


# ---- invocations ---------------------------------------------------------------------------------------------------


class Invocation:
    """One handler invocation: its metrics (published when it ends), its subsegment, its log keys."""

    def __init__(self, name: str, segment: Segment | None) -> None:
        self.name = name
        self._segment = segment
        self._metrics: list[Metric] = []
        self._started = time.perf_counter()
        self._lock = threading.Lock()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000

    def count(self, name: str, **dimensions: str) -> None:
        with self._lock:
            self._metrics.append(_metric(name, MetricUnit.Count, 1, dimensions))

    def milliseconds(self, name: str, value_ms: float, **dimensions: str) -> None:
        with self._lock:
            self._metrics.append(_metric(name, MetricUnit.Milliseconds, value_ms, dimensions))

    def discard_metrics(self) -> list[Metric]:
        """Drop what was recorded so far (a step body that raised committed nothing to count); what was dropped."""
        with self._lock:
            dropped, self._metrics = self._metrics, []
        return dropped

    def metrics(self) -> list[Metric]:
        with self._lock:
            return list(self._metrics)

    def correlate(self, *, payment_id: int | str | None = None, merchant_id: str | None = None) -> None:
        """From here to the invocation's end: the payment id as correlation_id (and the merchant) in the logs, and
        both as annotations of the invocation's subsegment."""
        pid = None if payment_id is None else str(payment_id)
        _keys.thread_safe_append_keys(**{k: v for k, v in (("correlation_id", pid), ("merchant_id", merchant_id))
                                         if v is not None})
        _annotate(self._segment, **{names.ANNOTATION_PAYMENT_ID: pid, names.ANNOTATION_MERCHANT_ID: merchant_id})

    def _outcome(self, error: BaseException) -> None:
        _annotate(self._segment, **{names.ANNOTATION_OUTCOME: type(error).__name__})


_current: ContextVar[Invocation | None] = ContextVar("paysaga_invocation", default=None)
_cold_start = [True]


def current() -> Invocation | None:
    return _current.get()


def _never_a_fault(_: BaseException) -> bool:
    return False


@contextlib.contextmanager
def invocation(
    name: str, context: Any, *, service: str, payment_id: int | str | None = None, merchant_id: str | None = None,
    is_outcome: Callable[[BaseException], bool] = _never_a_fault, **log_keys: str,
) -> Iterator[Invocation]:
    """Run one invocation of a handler (module docstring). `is_outcome`: the errors that are answers, not faults
    (annotated on the subsegment instead of recorded as its exception)."""
    cold, _cold_start[0] = _cold_start[0], False
    _follow_log_level()
    with _log_keys(**_lambda_context_keys(context), cold_start=cold, **log_keys):
        tracing = _traces.subsegment(f"## {name}", "local")
        segment = tracing.__enter__()
        call = Invocation(name, segment)
        _annotate(segment, **{names.ANNOTATION_SERVICE: service})
        call.correlate(payment_id=payment_id, merchant_id=merchant_id)
        token = _current.set(call)
        try:
            yield call
        except BaseException as error:
            if is_outcome(error):
                call._outcome(error)
                tracing.__exit__(None, None, None)
            else:
                tracing.__exit__(type(error), error, error.__traceback__)
            raise
        else:
            tracing.__exit__(None, None, None)
        finally:
            _current.reset(token)
            _publish(call.metrics())


def count(name: str, **dimensions: str) -> None:
    """Count one on the current invocation (published when it ends), or publish at once outside any."""
    call = current()
    if call is not None:
        call.count(name, **dimensions)
    else:
        _publish([_metric(name, MetricUnit.Count, 1, dimensions)])


def milliseconds(name: str, value_ms: float, **dimensions: str) -> None:
    call = current()
    if call is not None:
        call.milliseconds(name, value_ms, **dimensions)
    else:
        _publish([_metric(name, MetricUnit.Milliseconds, value_ms, dimensions)])


def correlate(*, payment_id: int | str | None = None, merchant_id: str | None = None) -> None:
    """Correlate the rest of the current invocation with this payment (Invocation.correlate); outside any, only the
    log lines of this thread (until something clears them: prefer `correlated`)."""
    call = current()
    if call is not None:
        call.correlate(payment_id=payment_id, merchant_id=merchant_id)
    else:
        _keys.thread_safe_append_keys(**{k: v for k, v in (("correlation_id", None if payment_id is None else
                                                                str(payment_id)), ("merchant_id", merchant_id))
                                         if v is not None})


@contextlib.contextmanager
def correlated(payment_id: int | str, merchant_id: str | None = None) -> Iterator[None]:
    """The log lines written inside carry this payment as correlation_id (one payment of several a handler works
    through: the sync, a webhook's notices); the keys before it are back afterwards."""
    with _log_keys(correlation_id=str(payment_id), merchant_id=merchant_id):
        yield
