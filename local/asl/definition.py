"""Loading and validating a state machine definition. Anything the interpreter does not implement exactly is
rejected here, naming the state and field, instead of being run differently from AWS."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local.asl import choice, errors, intrinsics, jsonpath
from local.asl.template import Node, TemplateError, compile_template, field_names, field_value, has_field

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_LAMBDA_ARN_RE = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$")
_SUBSTITUTION_RE = re.compile(r"\$\{([^}]*)\}")
MAX_STATE_NAME_CHARS = 80
MAX_TIMEOUT_S = 99_999_999
MAX_RETRY_ATTEMPTS = 99_999_999
MAX_RETRY_DELAY_S = 31_622_400  # just under a year: the documented MaxDelaySeconds bound

_COMMON = {"Type", "Comment"}
_FIELDS: dict[str, set[str]] = {
    "Pass": {"Next", "End", "InputPath", "OutputPath", "ResultPath", "Parameters", "Result"},
    "Task": {"Next", "End", "InputPath", "OutputPath", "ResultPath", "Parameters", "ResultSelector", "Retry",
             "Catch", "Resource", "TimeoutSeconds", "TimeoutSecondsPath"},
    "Choice": {"Choices", "Default", "InputPath", "OutputPath"},
    "Wait": {"Next", "End", "InputPath", "OutputPath", "Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
    "Succeed": {"InputPath", "OutputPath"},
    "Fail": {"Error", "ErrorPath", "Cause", "CausePath"},
    "Parallel": {"Next", "End", "InputPath", "OutputPath", "ResultPath", "Parameters", "ResultSelector", "Retry",
                 "Catch", "Branches"},
}
_UNSUPPORTED = {
    "Assign": "workflow variables ('Assign') are not supported by the local runtime",
    "Arguments": "'Arguments' is JSONata; only the JSONPath query language is supported",
    "Output": "'Output' is JSONata; only the JSONPath query language is supported",
    "HeartbeatSeconds": "heartbeats only apply to callback and activity tasks, which the local runtime lacks",
    "HeartbeatSecondsPath": "heartbeats only apply to callback and activity tasks, which the local runtime lacks",
    "Credentials": "cross-account task credentials are not supported by the local runtime",
    "QueryLanguage": "only the JSONPath query language is supported",
}


class DefinitionError(ValueError):
    """The definition is invalid or uses something the local runtime does not support."""


_UNSET = object()


@dataclass(frozen=True)
class Retrier:
    error_equals: tuple[str, ...]
    interval_s: int = 1
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_s: int | None = None
    jitter_full: bool = False

    def delay_s(self, retries_done: int) -> float:
        """The un-jittered wait before retry number retries_done + 1."""
        delay = self.interval_s * self.backoff_rate**retries_done
        return min(delay, self.max_delay_s) if self.max_delay_s is not None else delay


@dataclass(frozen=True)
class Catcher:
    error_equals: tuple[str, ...]
    next: str
    result_path: str | None = "$"


@dataclass
class State:
    name: str
    type: str
    next: str | None = None
    end: bool = False
    input_path: str | None = "$"
    output_path: str | None = "$"
    result_path: str | None = "$"
    parameters: Node | None = None
    result_selector: Node | None = None
    result: Any = _UNSET
    retriers: tuple[Retrier, ...] = ()
    catchers: tuple[Catcher, ...] = ()
    resource: str = ""
    timeout_s: int | None = None
    timeout_path: str | None = None
    choices: tuple[tuple[choice.Predicate, str], ...] = ()
    default: str | None = None
    wait_seconds: int | None = None
    wait_seconds_path: str | None = None
    wait_timestamp: str | None = None
    wait_timestamp_path: str | None = None
    error: str | None = None
    error_path: str | None = None
    cause: str | None = None
    cause_path: str | None = None
    branches: tuple[StateMachine, ...] = ()

    @property
    def has_result(self) -> bool:
        return self.result is not _UNSET


@dataclass
class StateMachine:
    start_at: str
    states: dict[str, State]
    timeout_s: int | None = None
    comment: str | None = None
    lambda_functions: set[str] = field(default_factory=set)  # static FunctionNames / ARNs the definition calls


def substitute(text: str, substitutions: Mapping[str, str]) -> str:
    """Replace `${Name}` placeholders as CloudFormation's DefinitionSubstitutions does (textually, before parsing).
    An unknown placeholder is an error: on AWS it would reach the service and fail validation."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise DefinitionError(f"DefinitionSubstitutions has no value for placeholder ${{{name}}}")
        return substitutions[name]

    return _SUBSTITUTION_RE.sub(replace, text)


def load_definition(text: str, substitutions: Mapping[str, str] | None = None) -> StateMachine:
    """Parse and validate a definition (JSON text), after applying substitutions."""
    if substitutions:
        text = substitute(text, substitutions)
    elif _SUBSTITUTION_RE.search(text):
        raise DefinitionError(f"unresolved placeholder {_SUBSTITUTION_RE.search(text).group(0)}"  # type: ignore[union-attr]
                              " and no DefinitionSubstitutions given")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"definition is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise DefinitionError("definition must be a JSON object")
    if document.get("QueryLanguage", "JSONPath") != "JSONPath":
        raise DefinitionError("QueryLanguage: only 'JSONPath' is supported (JSONata is not) by the local runtime")
    for key in document:
        if key not in {"Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"}:
            raise DefinitionError(f"top level: unknown field {key!r}")
    if "Version" in document and document["Version"] != "1.0":
        raise DefinitionError("top level: Version must be '1.0'")
    machine = _load_machine(document, "top level", top_level=True)
    _check_unique_names(machine)
    return machine


def _check_unique_names(machine: StateMachine) -> None:
    seen: set[str] = set()

    def visit(scope: StateMachine) -> None:
        for state in scope.states.values():
            if state.name in seen:
                raise DefinitionError(f"state {state.name!r}: state names must be unique across the whole "
                                      "state machine, including Parallel branches")
            seen.add(state.name)
            for branch in state.branches:
                visit(branch)

    visit(machine)


def _load_machine(document: Mapping[str, Any], where: str, top_level: bool) -> StateMachine:
    start_at = document.get("StartAt")
    states_doc = document.get("States")
    if not isinstance(start_at, str):
        raise DefinitionError(f"{where}: StartAt is required and must be a string")
    if not isinstance(states_doc, dict) or not states_doc:
        raise DefinitionError(f"{where}: States is required and must be a non-empty object")
    timeout_s = None
    if top_level and "TimeoutSeconds" in document:
        timeout_s = _positive_int(document["TimeoutSeconds"], f"{where}: TimeoutSeconds")
    machine = StateMachine(start_at=start_at, states={}, timeout_s=timeout_s, comment=document.get("Comment"))
    for name, body in states_doc.items():
        machine.states[name] = _load_state(name, body, machine)
    if start_at not in machine.states:
        raise DefinitionError(f"{where}: StartAt {start_at!r} is not a state")
    _check_transitions(machine, where)
    return machine


def _targets(state: State) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if state.next is not None:
        out.append(("Next", state.next))
    if state.default is not None:
        out.append(("Default", state.default))
    out.extend((f"Choices[{i}].Next", target) for i, (_, target) in enumerate(state.choices))
    out.extend((f"Catch[{i}].Next", c.next) for i, c in enumerate(state.catchers))
    return out


def _check_transitions(machine: StateMachine, where: str) -> None:
    for state in machine.states.values():
        for fld, target in _targets(state):
            if target not in machine.states:
                raise DefinitionError(f"state {state.name!r}: {fld} {target!r} is not a state in {where}")
    reached = {machine.start_at}
    pending = [machine.start_at]
    while pending:
        for _, target in _targets(machine.states[pending.pop()]):
            if target not in reached:
                reached.add(target)
                pending.append(target)
    unreachable = [name for name in machine.states if name not in reached]
    if unreachable:
        raise DefinitionError(f"{where}: unreachable states {unreachable} (not reachable from StartAt)")
    if not any(s.end or s.type in {"Succeed", "Fail"} for s in machine.states.values()):
        raise DefinitionError(f"{where}: no terminal state (End, Succeed or Fail)")


def _positive_int(value: Any, where: str, maximum: int = MAX_TIMEOUT_S) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= maximum:
        raise DefinitionError(f"{where} must be an integer between 1 and {maximum}, got {value!r}")
    return value


def _path(value: Any, where: str, reference: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise DefinitionError(f"{where} must be a JSONPath string or null")
    if reference:
        if jsonpath.reference_steps(value) is None:
            raise DefinitionError(f"{where} must be a reference path (only '.name' and '[index]' steps), "
                                  f"got {value!r}")
        return value
    try:
        jsonpath.validate_path(value)
    except jsonpath.PathError as exc:
        raise DefinitionError(f"{where}: {exc}") from exc
    if value.startswith("$$"):
        raise DefinitionError(f"{where}: a context-object path is not allowed here")
    return value


def _error_equals(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DefinitionError(f"{where}.ErrorEquals must be a non-empty array of strings")
    if errors.ALL in value and len(value) != 1:
        raise DefinitionError(f"{where}.ErrorEquals: States.ALL must appear alone")
    return tuple(value)


def _load_retriers(value: Any, where: str) -> tuple[Retrier, ...]:
    if not isinstance(value, list):
        raise DefinitionError(f"{where}: Retry must be an array")
    out: list[Retrier] = []
    for i, doc in enumerate(value):
        at = f"{where}: Retry[{i}]"
        if not isinstance(doc, dict):
            raise DefinitionError(f"{at} must be an object")
        for key in doc:
            if key not in {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds",
                           "JitterStrategy", "Comment"}:
                raise DefinitionError(f"{at}: unknown field {key!r}")
        names = _error_equals(doc.get("ErrorEquals"), at)
        if errors.ALL in names and i != len(value) - 1:
            raise DefinitionError(f"{at}: a States.ALL retrier must be the last one")
        max_attempts = doc.get("MaxAttempts", 3)
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or not (
                0 <= max_attempts <= MAX_RETRY_ATTEMPTS):
            raise DefinitionError(f"{at}.MaxAttempts must be an integer between 0 and {MAX_RETRY_ATTEMPTS}")
        backoff = doc.get("BackoffRate", 2.0)
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 1.0:
            raise DefinitionError(f"{at}.BackoffRate must be a number >= 1.0")
        jitter = doc.get("JitterStrategy", "NONE")
        if jitter not in {"FULL", "NONE"}:
            raise DefinitionError(f"{at}.JitterStrategy must be FULL or NONE")
        max_delay = doc.get("MaxDelaySeconds")
        out.append(Retrier(
            error_equals=names,
            interval_s=_positive_int(doc.get("IntervalSeconds", 1), f"{at}.IntervalSeconds"),
            max_attempts=max_attempts,
            backoff_rate=float(backoff),
            max_delay_s=None if max_delay is None else _positive_int(max_delay, f"{at}.MaxDelaySeconds",
                                                                     MAX_RETRY_DELAY_S),
            jitter_full=jitter == "FULL",
        ))
    return tuple(out)


def _load_catchers(value: Any, where: str) -> tuple[Catcher, ...]:
    if not isinstance(value, list):
        raise DefinitionError(f"{where}: Catch must be an array")
    out: list[Catcher] = []
    for i, doc in enumerate(value):
        at = f"{where}: Catch[{i}]"
        if not isinstance(doc, dict):
            raise DefinitionError(f"{at} must be an object")
        for key in doc:
            if key in _UNSUPPORTED:
                raise DefinitionError(f"{at}.{key}: {_UNSUPPORTED[key]}")
            if key not in {"ErrorEquals", "Next", "ResultPath", "Comment"}:
                raise DefinitionError(f"{at}: unknown field {key!r}")
        names = _error_equals(doc.get("ErrorEquals"), at)
        if errors.ALL in names and i != len(value) - 1:
            raise DefinitionError(f"{at}: a States.ALL catcher must be the last one")
        target = doc.get("Next")
        if not isinstance(target, str):
            raise DefinitionError(f"{at}.Next is required")
        result_path = _path(doc.get("ResultPath", "$"), f"{at}.ResultPath", reference=True)
        out.append(Catcher(error_equals=names, next=target, result_path=result_path))
    return tuple(out)


def _template(value: Any, where: str) -> Node:
    try:
        return compile_template(value, where)
    except TemplateError as exc:
        raise DefinitionError(str(exc)) from exc


def _load_state(name: str, body: Any, machine: StateMachine) -> State:
    where = f"state {name!r}"
    if len(name) > MAX_STATE_NAME_CHARS:
        raise DefinitionError(f"{where}: state names are limited to {MAX_STATE_NAME_CHARS} characters")
    if not isinstance(body, dict):
        raise DefinitionError(f"{where} must be a JSON object")
    kind = body.get("Type")
    if kind == "Map":
        raise DefinitionError(f"{where}: Type 'Map' is not supported by the local runtime")
    if kind not in _FIELDS:
        raise DefinitionError(f"{where}: unknown Type {kind!r}")
    allowed = _FIELDS[kind] | _COMMON
    for key in body:
        if key == "QueryLanguage" and body[key] == "JSONPath":
            continue
        if key in _UNSUPPORTED and key not in allowed:
            raise DefinitionError(f"{where}.{key}: {_UNSUPPORTED[key]}")
        if key not in allowed:
            raise DefinitionError(f"{where}: unknown field {key!r} for a {kind} state")
    state = State(name=name, type=kind)
    if kind in {"Pass", "Task", "Wait", "Parallel"}:
        has_next, has_end = "Next" in body, "End" in body
        if has_next == has_end:
            raise DefinitionError(f"{where}: exactly one of Next and End is required")
        if has_end and body["End"] is not True:
            raise DefinitionError(f"{where}: End must be true")
        if has_next and not isinstance(body["Next"], str):
            raise DefinitionError(f"{where}: Next must be a state name")
        state.next = body.get("Next")
        state.end = has_end
    if "InputPath" in body:
        state.input_path = _path(body["InputPath"], f"{where}.InputPath", reference=False)
    if "OutputPath" in body:
        state.output_path = _path(body["OutputPath"], f"{where}.OutputPath", reference=False)
    if "ResultPath" in body:
        state.result_path = _path(body["ResultPath"], f"{where}.ResultPath", reference=True)
    if "Parameters" in body:
        state.parameters = _template(body["Parameters"], f"{where}.Parameters")
    if "ResultSelector" in body:
        if not isinstance(body["ResultSelector"], dict):
            raise DefinitionError(f"{where}.ResultSelector must be an object")
        state.result_selector = _template(body["ResultSelector"], f"{where}.ResultSelector")
    if "Result" in body:
        state.result = body["Result"]
    if "Retry" in body:
        state.retriers = _load_retriers(body["Retry"], where)
    if "Catch" in body:
        state.catchers = _load_catchers(body["Catch"], where)
    loader = {"Task": _load_task, "Choice": _load_choice, "Wait": _load_wait, "Fail": _load_fail,
              "Parallel": _load_parallel}.get(kind)
    if loader is not None:
        loader(state, body, where, machine)
    return state


def _load_task(state: State, body: dict[str, Any], where: str, machine: StateMachine) -> None:
    resource = body.get("Resource")
    if not isinstance(resource, str):
        raise DefinitionError(f"{where}: Resource is required")
    if resource == LAMBDA_INVOKE:
        params = state.parameters
        if params is None or not (has_field(params, "FunctionName")):
            raise DefinitionError(f"{where}.Parameters: FunctionName is required for {LAMBDA_INVOKE}")
        for key in field_names(params):
            if key in {"InvocationType", "ClientContext", "LogType"}:
                raise DefinitionError(f"{where}.Parameters.{key} is not supported by the local runtime")
            if key not in {"FunctionName", "Payload", "Qualifier"}:
                raise DefinitionError(f"{where}.Parameters: unknown field {key!r} for {LAMBDA_INVOKE}")
        static, function_name = field_value(params, "FunctionName")
        if static:
            if not isinstance(function_name, str) or not function_name:
                raise DefinitionError(f"{where}.Parameters.FunctionName must be a non-empty string")
            machine.lambda_functions.add(function_name)
    elif _LAMBDA_ARN_RE.match(resource):
        machine.lambda_functions.add(resource)
    else:
        raise DefinitionError(
            f"{where}.Resource {resource!r} is not supported: use {LAMBDA_INVOKE} or a Lambda function ARN"
            " (callbacks '.waitForTaskToken', '.sync', activities and other services are not supported)"
        )
    state.resource = resource
    if "TimeoutSeconds" in body and "TimeoutSecondsPath" in body:
        raise DefinitionError(f"{where}: TimeoutSeconds and TimeoutSecondsPath are mutually exclusive")
    if "TimeoutSeconds" in body:
        state.timeout_s = _positive_int(body["TimeoutSeconds"], f"{where}.TimeoutSeconds")
    if "TimeoutSecondsPath" in body:
        state.timeout_path = _path(body["TimeoutSecondsPath"], f"{where}.TimeoutSecondsPath", reference=True)


def _load_choice(state: State, body: dict[str, Any], where: str, machine: StateMachine) -> None:
    rules = body.get("Choices")
    if not isinstance(rules, list) or not rules:
        raise DefinitionError(f"{where}: Choices must be a non-empty array")
    compiled: list[tuple[choice.Predicate, str]] = []
    for i, rule in enumerate(rules):
        at = f"{where}.Choices[{i}]"
        try:
            predicate = choice.compile_rule(rule, at, top_level=True)
        except choice.ChoiceRuleError as exc:
            raise DefinitionError(str(exc)) from exc
        target = rule.get("Next")
        if not isinstance(target, str):
            raise DefinitionError(f"{at}: Next is required")
        compiled.append((predicate, target))
    state.choices = tuple(compiled)
    default = body.get("Default")
    if default is not None and not isinstance(default, str):
        raise DefinitionError(f"{where}: Default must be a state name")
    state.default = default


def _load_wait(state: State, body: dict[str, Any], where: str, machine: StateMachine) -> None:
    given = [k for k in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if k in body]
    if len(given) != 1:
        raise DefinitionError(f"{where}: exactly one of Seconds, SecondsPath, Timestamp, TimestampPath is required")
    if "Seconds" in body:
        seconds = body["Seconds"]
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 <= seconds <= MAX_TIMEOUT_S:
            raise DefinitionError(f"{where}.Seconds must be a non-negative integer")
        state.wait_seconds = seconds
    if "SecondsPath" in body:
        state.wait_seconds_path = _path(body["SecondsPath"], f"{where}.SecondsPath", reference=True)
    if "Timestamp" in body:
        if choice.parse_timestamp(body["Timestamp"]) is None:
            raise DefinitionError(f"{where}.Timestamp must be an RFC 3339 timestamp")
        state.wait_timestamp = body["Timestamp"]
    if "TimestampPath" in body:
        state.wait_timestamp_path = _path(body["TimestampPath"], f"{where}.TimestampPath", reference=True)


def _load_fail(state: State, body: dict[str, Any], where: str, machine: StateMachine) -> None:
    for plain, path in (("Error", "ErrorPath"), ("Cause", "CausePath")):
        if plain in body and path in body:
            raise DefinitionError(f"{where}: {plain} and {path} are mutually exclusive")
        if plain in body and not isinstance(body[plain], str):
            raise DefinitionError(f"{where}.{plain} must be a string")
    state.error = body.get("Error")
    state.cause = body.get("Cause")
    if "ErrorPath" in body:
        state.error_path = _fail_path(body["ErrorPath"], f"{where}.ErrorPath")
    if "CausePath" in body:
        state.cause_path = _fail_path(body["CausePath"], f"{where}.CausePath")


def _fail_path(value: Any, where: str) -> str:
    # ErrorPath/CausePath take a reference path, a context path or an intrinsic function.
    if isinstance(value, str) and value.startswith("States."):
        try:
            intrinsics.parse(value)
        except intrinsics.IntrinsicError as exc:
            raise DefinitionError(f"{where}: {exc}") from exc
        return value
    if isinstance(value, str) and value.startswith("$$"):
        if jsonpath.reference_steps(value[1:]) is None:
            raise DefinitionError(f"{where} must be a reference path")
        return value
    result = _path(value, where, reference=True)
    if result is None:
        raise DefinitionError(f"{where} must not be null")
    return result


def _load_parallel(state: State, body: dict[str, Any], where: str, machine: StateMachine) -> None:
    branches = body.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise DefinitionError(f"{where}: Branches must be a non-empty array")
    loaded: list[StateMachine] = []
    for i, branch in enumerate(branches):
        at = f"{where}.Branches[{i}]"
        if not isinstance(branch, dict):
            raise DefinitionError(f"{at} must be an object")
        for key in branch:
            if key == "QueryLanguage" and branch[key] == "JSONPath":
                continue
            if key not in {"StartAt", "States", "Comment"}:
                raise DefinitionError(f"{at}: unknown field {key!r}")
        sub = _load_machine(branch, at, top_level=False)
        machine.lambda_functions |= sub.lambda_functions
        loaded.append(sub)
    state.branches = tuple(loaded)
