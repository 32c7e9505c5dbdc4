"""An execution, state by state: one reader interface (TimelineSource) with two sources of the same events.

Locally the runtime keeps each execution's history (GetExecutionHistory's shape, local/asl/history.py) and the start
path writes it into saga_executions.history: LocalHistorySource reads that. On AWS an Express workflow keeps no
history of its own; Step Functions writes the same events to the state machine's CloudWatch Logs log group as JSON
lines (id, type, details, previous_event_id, event_timestamp in epoch milliseconds, execution_arn):
CloudWatchLogsSource reads those. Both normalise the events and build the timeline with the same code, so one run
reads the same whichever recorded it. Everything shown (inputs, outputs, causes) goes through `redact` first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from core.aws import client
from saga.sfn import MAX_HISTORY_EVENTS
from store.executions import ExecutionRecord

if TYPE_CHECKING:
    from saga.bootstrap import Services

__all__ = [
    "REDACTED",
    "STATE_TYPES",
    "STEP_STATUSES",
    "CloudWatchLogsSource",
    "LocalHistorySource",
    "StateStep",
    "Timeline",
    "TimelineSource",
    "log_group_of",
    "redact",
    "timeline_source",
]

STATE_TYPES: Final[tuple[str, ...]] = ("Task", "Choice", "Pass", "Fail", "Succeed", "Wait", "Parallel", "Map")
STEP_STATUSES: Final[tuple[str, ...]] = ("succeeded", "failed", "caught", "running")
REDACTED: Final[str] = "[redacted]"
# Step Functions' vended-logs naming of an Express state machine's log group (infra/names.py workflow_log_group;
# tests/unit/saga/console/test_timeline.py keeps the two equal).
LOG_GROUP_PREFIX: Final[str] = "/aws/vendedlogs/states/"
# Bounds on one read of CloudWatch Logs: a saga writes a few dozen events, so these only stop a runaway.
MAX_LOG_PAGES: Final[int] = 20
# The window searched around the record's times: an Express execution runs at most 5 minutes.
_BEFORE: Final[timedelta] = timedelta(minutes=1)
_AFTER: Final[timedelta] = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class StateStep:
    """One entry into one state. `status`: succeeded; caught (it failed and a Catch took the execution to another
    state); failed (the execution ended in it); running. `retries`: attempts beyond the first (Retry). `error` and
    `cause`: the last error met in the state, retried or caught or final (a succeeded step keeps its retried one)."""

    name: str
    state_type: str
    entered_at: datetime
    exited_at: datetime | None
    duration_ms: int | None
    status: str
    retries: int
    input: Any
    output: Any
    error: str | None
    cause: str | None


@dataclass(frozen=True, slots=True)
class Timeline:
    execution_arn: str
    status: str
    started_at: datetime | None
    stopped_at: datetime | None
    steps: tuple[StateStep, ...]
    error: str | None
    cause: str | None
    source: str  # "local-history" or "cloudwatch-logs"


class TimelineSource(Protocol):
    def timeline(self, record: ExecutionRecord) -> Timeline: ...


# ---- redaction ---------------------------------------------------------------------------------------------------

# Keys whose whole value is a secret (compared with case, '_' and '-' removed). Exact names for short words that
# would match inside harmless ones ("pan" in "company").
_SECRET_KEYS_EXACT: Final[frozenset[str]] = frozenset({"pan", "cvc", "cvv", "cvv2", "cardnumber", "authorization",
                                                      "cookie", "setcookie", "xapikey"})
_SECRET_KEY_PARTS: Final[tuple[str, ...]] = ("secret", "password", "passwd", "apikey", "signature", "hmac",
                                            "privatekey", "credential", "accesskey", "csrf")
# Card tokens keep their prefix and last four characters, enough to tell two apart.
_TOKEN_RE: Final[re.Pattern[str]] = re.compile(r"\b(tok|pm)_([A-Za-z0-9_]+)")
# Secrets written inline: merchant API keys (psk_), Stripe secret/restricted keys, webhook secrets, bearer tokens.
_SECRET_RE: Final[re.Pattern[str]] = re.compile(r"\b(?:psk|sk|rk|whsec)_[A-Za-z0-9_\-]+")
_BEARER_RE: Final[re.Pattern[str]] = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+")
# "password=...", "api_key: ...", "'token': '...'" inside free text (an error message, a log line in a cause).
_INLINE_RE: Final[re.Pattern[str]] = re.compile(
    r"(?i)([A-Za-z_\-]*(?:password|passwd|secret|api[_\-]?key|signature|token)['\"]?\s*[=:]\s*['\"]?)"
    r"([^\s,;&'\"}\]]+)")


def redact(value: Any) -> Any:
    """A copy of `value` with card tokens masked ("tok_…1234") and secrets, API keys, passwords and signatures
    replaced by "[redacted]": by key at any depth of dicts and lists, and inside strings (JSON text included)."""
    if isinstance(value, Mapping):
        return {key: _redact_field(str(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact(item) for item in value)
    if isinstance(value, str):
        return _redact_text(value)
    return value


def _redact_field(key: str, value: Any) -> Any:
    if value is None:
        return None
    normal = re.sub(r"[^a-z0-9]", "", key.lower())
    if normal in _SECRET_KEYS_EXACT or any(part in normal for part in _SECRET_KEY_PARTS):
        return REDACTED
    if "token" in normal:
        if isinstance(value, int):  # a fencing token (lease_token) is a number, not a credential
            return value
        return _mask_token(value) if isinstance(value, str) else REDACTED
    return redact(value)


def _mask_token(text: str) -> str:
    found = _TOKEN_RE.fullmatch(text.strip())
    return _masked(found) if found is not None else REDACTED


def _masked(found: re.Match[str]) -> str:
    rest = found.group(2)
    return f"{found.group(1)}_…{rest[-4:] if len(rest) > 4 else ''}"


def _redact_text(text: str) -> str:
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            cleaned = redact(parsed)
            return text if cleaned == parsed else json.dumps(cleaned, ensure_ascii=False, separators=(",", ":"))
    text = _SECRET_RE.sub(REDACTED, text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _INLINE_RE.sub(lambda m: m.group(1) + (_mask_token(m.group(2)) if "token" in m.group(1).lower()
                                                  else REDACTED), text)
    return _TOKEN_RE.sub(_masked, text)


# ---- events, whichever source they come from ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    id: int
    previous_id: int
    type: str
    at: datetime
    details: Mapping[str, Any]


def _local_event(raw: Any) -> _Event | None:
    """An event as local/asl/history.py writes it (and saga.sfn.history_of stores it: the timestamp as text)."""
    if not isinstance(raw, Mapping):
        return None
    try:
        at = raw["timestamp"]
        moment = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        details = next((v for k, v in raw.items() if k.endswith("EventDetails") and isinstance(v, Mapping)), {})
        return _Event(int(raw["id"]), int(raw.get("previousEventId") or 0), str(raw["type"]), _aware(moment),
                      details)
    except (KeyError, TypeError, ValueError):
        return None


def _cloudwatch_event(message: str, execution_arn: str) -> _Event | None:
    """A log event's message as Step Functions writes it (ids and the epoch-millisecond timestamp are strings), if
    it is one of this execution's: the record's ARN, or the real Express ARN, which appends a uuid to it."""
    try:
        raw = json.loads(message)
        logged = str(raw["execution_arn"])
        if logged != execution_arn and not logged.startswith(execution_arn + ":"):
            return None
        details = raw.get("details") or {}
        millis = int(raw["event_timestamp"])
        return _Event(int(raw["id"]), int(raw.get("previous_event_id") or 0), str(raw["type"]),
                      datetime.fromtimestamp(millis // 1000, UTC) + timedelta(milliseconds=millis % 1000),
                      details if isinstance(details, Mapping) else {})
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ---- building the timeline ---------------------------------------------------------------------------------------

# Which kind of state an activity event belongs to, and what it says about the attempt.
_ATTEMPT: Final[frozenset[str]] = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled",
                                             "ParallelStateStarted", "MapStateStarted"})
_FAILURE: Final[frozenset[str]] = frozenset({
    "TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed", "LambdaFunctionFailed",
    "LambdaFunctionTimedOut", "LambdaFunctionStartFailed", "LambdaFunctionScheduleFailed", "ActivityFailed",
    "ActivityTimedOut", "ActivityScheduleFailed", "ParallelStateFailed", "MapStateFailed"})
_SUCCESS: Final[frozenset[str]] = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded",
                                             "ParallelStateSucceeded", "MapStateSucceeded"})
_EXECUTION_END: Final[dict[str, str]] = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED",
                                         "ExecutionTimedOut": "TIMED_OUT", "ExecutionAborted": "ABORTED"}


def _owning_type(event_type: str) -> str | None:
    for prefix, state_type in (("Task", "Task"), ("LambdaFunction", "Task"), ("Activity", "Task"),
                               ("ParallelState", "Parallel"), ("MapState", "Map")):
        if event_type.startswith(prefix):
            return state_type
    return None


@dataclass
class _Step:
    """A step while its events are read."""

    name: str
    state_type: str
    entered_at: datetime
    input: Any
    exited_at: datetime | None = None
    output: Any = None
    attempts: int = 0
    failed_last: bool = False
    error: str | None = None
    cause: str | None = None

    @property
    def open(self) -> bool:
        return self.exited_at is None


@dataclass
class _Reading:
    steps: list[_Step] = field(default_factory=list)
    owner: dict[int, _Step] = field(default_factory=dict)  # event id -> the step it belongs to
    failures: set[int] = field(default_factory=set)  # the ids of failure events
    started_at: datetime | None = None
    ended: _Event | None = None

    def owner_of(self, event: _Event, state_type: str | None, name: str | None = None) -> _Step | None:
        """The step an event belongs to: the one its previous event belongs to (each line of execution chains its
        events), else the latest open step of its kind (a Parallel's end follows its branches' last events)."""
        found = self.owner.get(event.previous_id)
        if found is not None and found.open and found.state_type == state_type and name in (None, found.name):
            return found
        return next((s for s in reversed(self.steps)
                     if s.open and s.state_type == state_type and name in (None, s.name)), None)


def _payload(text: Any) -> Any:
    """A payload as the events carry it (JSON text), parsed and redacted; None where the log left data out."""
    if text is None:
        return None
    if isinstance(text, str):
        try:
            return redact(json.loads(text))
        except ValueError:
            return redact(text)
    return redact(text)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _read(events: Iterable[_Event]) -> _Reading:
    reading = _Reading()
    unique = {event.id: event for event in events}
    for event in (unique[key] for key in sorted(unique)):
        kind, details = event.type, event.details
        if kind == "ExecutionStarted":
            reading.started_at = event.at
        elif kind in _EXECUTION_END:
            reading.ended = event
        elif kind.endswith("StateEntered"):
            caught = reading.owner.get(event.previous_id)
            if caught is not None and caught.open and caught.failed_last and event.previous_id in reading.failures:
                caught.exited_at = event.at  # a Catch went on without an exit event: closed where the next began
            step = _Step(name=str(details.get("name", "")), state_type=kind.removesuffix("StateEntered"),
                         entered_at=event.at, input=_payload(details.get("input")))
            reading.steps.append(step)
            reading.owner[event.id] = step
        elif kind.endswith("StateExited"):
            exited = reading.owner_of(event, kind.removesuffix("StateExited"), _text(details.get("name")))
            if exited is not None:
                exited.exited_at, exited.output = event.at, _payload(details.get("output"))
                reading.owner[event.id] = exited
        else:
            owner = reading.owner_of(event, _owning_type(kind))
            if owner is None:
                continue  # an activity whose state's events are not in the log (log level ERROR)
            reading.owner[event.id] = owner
            if kind in _ATTEMPT:
                owner.attempts += 1
                owner.failed_last = False
            elif kind in _FAILURE:
                owner.failed_last = True
                reading.failures.add(event.id)
                owner.error, owner.cause = _text(details.get("error")), _text(details.get("cause"))
            elif kind in _SUCCESS:
                owner.failed_last = False
    return reading


def _finished(step: _Step, ended: _Event | None) -> StateStep:
    error, cause = step.error, step.cause
    exited_at = step.exited_at
    if exited_at is not None:
        status = "caught" if step.failed_last else "succeeded"
    elif ended is not None and ended.type != "ExecutionSucceeded":
        # The execution ended in this state: a Fail state's error is the execution's; so is a timeout's.
        status, exited_at = "failed", ended.at
        if step.state_type == "Fail" or error is None:
            error, cause = _text(ended.details.get("error")) or error, _text(ended.details.get("cause")) or cause
    elif ended is not None:
        # Left open by a run that succeeded: a Parallel branch stopped by its sibling's caught failure, or a state
        # whose exit the log lost (CloudWatch Logs delivers on a best-effort basis).
        status, exited_at = ("failed" if step.failed_last else "succeeded"), ended.at
    else:
        status = "running"
    duration = None if exited_at is None else round((exited_at - step.entered_at).total_seconds() * 1000)
    return StateStep(name=step.name, state_type=step.state_type, entered_at=step.entered_at, exited_at=exited_at,
                     duration_ms=duration, status=status, retries=max(step.attempts - 1, 0), input=step.input,
                     output=step.output, error=error, cause=None if cause is None else redact(cause))


def _timeline(record: ExecutionRecord, events: Iterable[_Event], source: str) -> Timeline:
    """The record (the project's own: status, error, cause) joined with what the events say state by state."""
    reading = _read(events)
    ended = reading.ended
    status = record.status
    if status == "RUNNING" and ended is not None:  # the run ended but its end was not recorded (a crashed start)
        status = _EXECUTION_END[ended.type]
    error = record.error if record.error is not None else (None if ended is None else _text(ended.details.get("error")))
    cause = record.cause if record.cause is not None else (None if ended is None else _text(ended.details.get("cause")))
    return Timeline(
        execution_arn=record.execution_arn,
        status=status,
        started_at=reading.started_at or record.started_at,
        stopped_at=ended.at if ended is not None else record.stopped_at,
        steps=tuple(_finished(step, ended) for step in reading.steps),
        error=error,
        cause=None if cause is None else redact(cause),
        source=source,
    )


# ---- the two sources ---------------------------------------------------------------------------------------------


class LocalHistorySource:
    """The local runtime's history, as the start path stored it in saga_executions.history."""

    source = "local-history"

    def timeline(self, record: ExecutionRecord) -> Timeline:
        history = record.history
        raw = history.get("events") if isinstance(history, Mapping) else history
        events = [found for item in (raw if isinstance(raw, list) else []) if (found := _local_event(item))]
        return _timeline(record, events, self.source)


class CloudWatchLogsSource:
    """The Express state machine's CloudWatch Logs. Every state shows at log level ALL, its inputs and outputs with
    includeExecutionData; at level ERROR only the Fail state and the execution's end are there to show (what is
    logged is what is read). `log_group` names the log group of an execution ARN (log_group_of: the state
    machine's, by its name)."""

    source = "cloudwatch-logs"

    def __init__(self, logs_client: Any, log_group: Callable[[str], str]) -> None:
        self._logs = logs_client
        self._log_group = log_group

    def timeline(self, record: ExecutionRecord) -> Timeline:
        return _timeline(record, self._events(record), self.source)

    def _events(self, record: ExecutionRecord) -> list[_Event]:
        # The record's ARN is the one known before the start; the real Express ARN appends a uuid (saga.sfn
        # recorded_execution_arn), so the log is searched for the phrase and each match checked (_cloudwatch_event).
        arn = record.execution_arn
        start = record.started_at - _BEFORE
        end = (record.stopped_at or record.started_at) + _AFTER
        request: dict[str, Any] = {
            "logGroupName": self._log_group(arn),
            "filterPattern": f'"{arn}"',
            "startTime": int(start.timestamp() * 1000),
            "endTime": int(end.timestamp() * 1000),
        }
        events: list[_Event] = []
        for _ in range(MAX_LOG_PAGES):
            try:
                page = self._logs.filter_log_events(**request)
            except Exception as exc:
                if _error_code(exc) == "ResourceNotFoundException":
                    return events  # no log group (yet): the record alone
                raise
            for item in page.get("events", []):
                event = _cloudwatch_event(str(item.get("message", "")), arn)
                if event is not None:
                    events.append(event)
            token = page.get("nextToken")
            if not token or len(events) >= MAX_HISTORY_EVENTS:
                break
            request["nextToken"] = token
        return events[:MAX_HISTORY_EVENTS]


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def log_group_of(execution_arn: str) -> str:
    """The log group of the Express state machine that ran an execution:
    arn:aws:states:<region>:<account>:express:<state machine>:<name>[:<uuid>]."""
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[5] not in ("express", "execution") or not parts[6]:
        raise ValueError(f"not a Step Functions execution ARN: {execution_arn!r}")
    return LOG_GROUP_PREFIX + parts[6]


def timeline_source(services: Services) -> TimelineSource:
    """Local history where the runtime keeps it (services.keeps_history), else the state machines' CloudWatch Logs."""
    if services.keeps_history:
        return LocalHistorySource()
    return CloudWatchLogsSource(client("logs", services.settings), log_group_of)
