"""Running one execution of a loaded state machine, with AWS's input/output processing order
(InputPath -> Parameters -> task -> ResultSelector -> ResultPath -> OutputPath), retries, catchers, timeouts and
the history events Step Functions records."""

from __future__ import annotations

import concurrent.futures
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from local.asl import errors, intrinsics, jsonpath, lambda_invoke
from local.asl.choice import parse_timestamp
from local.asl.clock import Clock
from local.asl.definition import LAMBDA_INVOKE, State, StateMachine
from local.asl.errors import StatesError, StatesRuntimeError
from local.asl.history import History
from local.asl.template import render, resolve_path

PAYLOAD_LIMIT_BYTES = 256 * 1024  # Step Functions' input/output quota per state and execution


def iso_millis(moment: datetime) -> str:
    """Context-object timestamps: ISO 8601 with milliseconds and 'Z', as Step Functions writes them."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class ExecutionTimedOut(Exception):
    """The execution's TimeoutSeconds (or the Express 5-minute ceiling) passed."""


class _Aborted(Exception):
    """A sibling Parallel branch failed; this branch stops at its next state boundary."""


@dataclass
class Outcome:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT
    output: Any = None
    error: str | None = None
    cause: str | None = None


class _Cursor:
    """The id of the last event on one line of execution (main flow or one Parallel branch)."""

    def __init__(self, last_id: int) -> None:
        self.last_id = last_id


@dataclass
class _Entry:
    """What a state knows about its own entry: used for $$.State and States.Runtime's message."""

    name: str
    entered_time: str
    entered_event_id: int
    retry_count: int = 0


class Execution:
    def __init__(
        self,
        *,
        machine: StateMachine,
        execution: dict[str, Any],
        state_machine: dict[str, Any],
        clock: Clock,
        rng: random.Random,
        resolver: lambda_invoke.Resolver,
        history: History,
        executor: concurrent.futures.Executor,
        deadline_monotonic_s: float | None,
        region: str,
        account: str,
    ) -> None:
        self.machine = machine
        self.execution = execution
        self.state_machine = state_machine
        self.clock = clock
        self.rng = rng
        self.rng_lock = threading.Lock()
        self.resolver = resolver
        self.history = history
        self.executor = executor
        self.deadline = deadline_monotonic_s
        self.region = region
        self.account = account

    # ---- running -------------------------------------------------------------------------------------------

    def run(self, input_value: Any, cursor_id: int) -> Outcome:
        cursor = _Cursor(cursor_id)
        try:
            output = self._run_machine(self.machine, input_value, cursor, None)
        except ExecutionTimedOut:
            return Outcome("TIMED_OUT", error=errors.TIMEOUT)
        except StatesError as err:
            return Outcome("FAILED", error=err.error or None, cause=err.cause)
        return Outcome("SUCCEEDED", output=output)

    def _event(self, cursor: _Cursor, event_type: str, details_key: str | None = None,
               details: dict[str, Any] | None = None) -> int:
        cursor.last_id = self.history.add(self.clock.now(), event_type, cursor.last_id, details_key, details)
        return cursor.last_id

    def remaining_s(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock.monotonic()

    def _check_deadline(self) -> None:
        remaining = self.remaining_s()
        if remaining is not None and remaining <= 0:
            raise ExecutionTimedOut

    def _sleep(self, seconds: float) -> None:
        remaining = self.remaining_s()
        if remaining is not None and seconds >= remaining:
            self.clock.sleep(max(remaining, 0.0))
            raise ExecutionTimedOut
        self.clock.sleep(seconds)

    def _run_machine(self, machine: StateMachine, data: Any, cursor: _Cursor,
                     cancel: threading.Event | None) -> Any:
        name = machine.start_at
        while True:
            self._check_deadline()
            if cancel is not None and cancel.is_set():
                raise _Aborted
            state = machine.states[name]
            entered_id = self._event(cursor, f"{state.type}StateEntered", "stateEnteredEventDetails",
                                     _payload_details(state.name, data, "input"))
            entry = _Entry(state.name, iso_millis(self.clock.now()), entered_id)
            try:
                data, next_name = self._run_state(state, data, entry, cursor, cancel)
            except StatesError as err:
                if not hasattr(err, "entry"):
                    err.entry = entry  # type: ignore[attr-defined]
                    if err.error == errors.RUNTIME:
                        err.cause = (f"An error occurred while executing the state '{state.name}' (entered at the "
                                     f"event id #{entered_id}). {err.cause}")
                raise
            if state.type != "Fail":
                self._event(cursor, f"{state.type}StateExited", "stateExitedEventDetails",
                            _payload_details(state.name, data, "output"))
            if next_name is None:
                return data
            name = next_name

    def _context(self, entry: _Entry) -> dict[str, Any]:
        return {
            "Execution": self.execution,
            "State": {"EnteredTime": entry.entered_time, "Name": entry.name, "RetryCount": entry.retry_count},
            "StateMachine": self.state_machine,
        }

    # ---- input/output processing -------------------------------------------------------------------------

    def _input_path(self, state: State, raw: Any) -> Any:
        if state.input_path is None:
            return {}
        try:
            return jsonpath.select(raw, state.input_path)
        except jsonpath.PathError:
            raise StatesRuntimeError(_invalid_path(state.input_path)) from None

    def _output_path(self, state: State, value: Any) -> Any:
        if state.output_path is None:
            return {}
        try:
            return jsonpath.select(value, state.output_path)
        except jsonpath.PathError:
            raise StatesRuntimeError(_invalid_path(state.output_path)) from None

    def _effective_input(self, state: State, raw: Any, entry: _Entry) -> Any:
        value = self._input_path(state, raw)
        if state.parameters is not None:
            value = self._render(state.parameters, value, entry)
            _check_size(value, f"The state/task '{state.name}' has an input with a size exceeding the maximum "
                               "number of bytes service limit.")
        return value

    def _render(self, node: Any, value: Any, entry: _Entry) -> Any:
        with self.rng_lock:
            return render(node, value, self._context(entry), self.rng)

    def _apply_result(self, state: State, raw: Any, result: Any) -> Any:
        if state.result_path is None:
            return raw
        try:
            return jsonpath.put(raw, state.result_path, result)
        except jsonpath.PathError as exc:
            raise StatesError(errors.RESULT_PATH_MATCH_FAILURE, str(exc)) from None

    def _finish(self, state: State, raw: Any, result: Any, entry: _Entry) -> Any:
        if state.result_selector is not None:
            result = self._render(state.result_selector, result, entry)
        output = self._output_path(state, self._apply_result(state, raw, result))
        _check_size(output, f"The state/task '{state.name}' returned a result with a size exceeding the maximum "
                            "number of bytes service limit.")
        return output

    # ---- states ---------------------------------------------------------------------------------------------

    def _run_state(self, state: State, raw: Any, entry: _Entry, cursor: _Cursor,
                   cancel: threading.Event | None) -> tuple[Any, str | None]:
        kind = state.type
        if kind == "Pass":
            effective = self._effective_input(state, raw, entry)
            result = state.result if state.has_result else effective
            output = self._output_path(state, self._apply_result(state, raw, result))
            _check_size(output, f"The state '{state.name}' returned an output exceeding the service limit.")
            return output, state.next
        if kind == "Choice":
            return self._choice(state, raw, entry)
        if kind == "Wait":
            return self._wait(state, raw, entry)
        if kind == "Succeed":
            return self._output_path(state, self._input_path(state, raw)), None
        if kind == "Fail":
            raise self._fail(state, raw, entry)
        return self._with_retry(state, raw, entry, cursor, cancel)

    def _choice(self, state: State, raw: Any, entry: _Entry) -> tuple[Any, str | None]:
        value = self._input_path(state, raw)
        context = self._context(entry)
        for predicate, target in state.choices:
            if predicate(value, context):
                return self._output_path(state, value), target
        if state.default is not None:
            return self._output_path(state, value), state.default
        raise StatesError(errors.NO_CHOICE_MATCHED, "No Matches!")

    def _wait(self, state: State, raw: Any, entry: _Entry) -> tuple[Any, str | None]:
        value = self._input_path(state, raw)
        if state.wait_seconds is not None:
            seconds: float = state.wait_seconds
        elif state.wait_seconds_path is not None:
            found = self._reference(state.wait_seconds_path, value, entry)
            if isinstance(found, bool) or not isinstance(found, int) or found < 0:
                raise StatesRuntimeError(f"The SecondsPath parameter does not reference a valid integer value: "
                                         f"{intrinsics.to_json_text(found)}")
            seconds = found
        else:
            text = state.wait_timestamp
            if state.wait_timestamp_path is not None:
                text = self._reference(state.wait_timestamp_path, value, entry)
            moment = parse_timestamp(text)
            if moment is None:
                raise StatesRuntimeError(f"The TimestampPath parameter does not reference a valid ISO-8601 "
                                         f"extended offset date-time format string: {text}")
            seconds = max(0.0, (moment - self.clock.now()).total_seconds())
        self._sleep(seconds)
        return self._output_path(state, value), state.next

    def _reference(self, path: str, value: Any, entry: _Entry) -> Any:
        try:
            return resolve_path(path, value, self._context(entry))
        except jsonpath.PathError:
            raise StatesRuntimeError(_invalid_path(path)) from None

    def _fail(self, state: State, raw: Any, entry: _Entry) -> StatesError:
        error, cause = state.error, state.cause
        if state.error_path is not None:
            error = self._fail_value(state.error_path, raw, entry, "ErrorPath")
        if state.cause_path is not None:
            cause = self._fail_value(state.cause_path, raw, entry, "CausePath")
        return StatesError(error or "", cause)

    def _fail_value(self, spec: str, raw: Any, entry: _Entry, fld: str) -> str:
        if spec.startswith("States."):
            with self.rng_lock:
                try:
                    value = intrinsics.evaluate(intrinsics.parse(spec), lambda p: resolve_path(
                        p, raw, self._context(entry)), self.rng)
                except (intrinsics.IntrinsicError, jsonpath.PathError) as exc:
                    raise StatesRuntimeError(str(exc)) from None
        else:
            try:
                value = resolve_path(spec, raw, self._context(entry))
            except jsonpath.PathError:
                raise StatesRuntimeError(
                    f"The JSONPath '{spec}' specified for the field '{fld}' could not be found in the input "
                    f"'{intrinsics.to_json_text(raw)}'") from None
        if not isinstance(value, str):
            raise StatesRuntimeError(f"The {fld} '{spec}' did not resolve to a string: "
                                     f"{intrinsics.to_json_text(value)}")
        return value

    # ---- Task and Parallel: retry and catch ---------------------------------------------------------------

    def _with_retry(self, state: State, raw: Any, entry: _Entry, cursor: _Cursor,
                    cancel: threading.Event | None) -> tuple[Any, str | None]:
        retries_done = [0] * len(state.retriers)  # counts live for this entry of the state only
        while True:
            try:
                effective = self._effective_input(state, raw, entry)
                if state.type == "Task":
                    result = self._task(state, effective, entry, cursor)
                else:
                    result = self._parallel(state, effective, cursor, cancel)
                _check_size(result, f"The state/task '{state.name}' returned a result with a size exceeding "
                                    "the maximum number of bytes service limit.")
                return self._finish(state, raw, result, entry), state.next
            except StatesError as err:
                if err.error == errors.RUNTIME:
                    raise
                # The first retrier whose ErrorEquals matches decides; an exhausted one does not fall through.
                index = next((i for i, r in enumerate(state.retriers)
                              if errors.error_matches(list(r.error_equals), err.error)), None)
                if index is not None and retries_done[index] < state.retriers[index].max_attempts:
                    retrier = state.retriers[index]
                    delay = retrier.delay_s(retries_done[index])
                    if retrier.jitter_full:
                        with self.rng_lock:
                            delay = self.rng.uniform(0.0, delay)
                    retries_done[index] += 1
                    entry.retry_count += 1
                    self._sleep(delay)
                    continue
                for catcher in state.catchers:
                    if errors.error_matches(list(catcher.error_equals), err.error):
                        if catcher.result_path is None:
                            output = raw
                        else:
                            try:
                                output = jsonpath.put(raw, catcher.result_path, err.as_output())
                            except jsonpath.PathError as exc:
                                raise StatesRuntimeError(str(exc)) from None
                        return output, catcher.next
                raise

    def _task(self, state: State, effective: Any, entry: _Entry, cursor: _Cursor) -> Any:
        timeout_s: float | None = state.timeout_s
        if state.timeout_path is not None:
            found = self._reference(state.timeout_path, effective, entry)
            if isinstance(found, bool) or not isinstance(found, int) or found <= 0:
                raise StatesRuntimeError(f"The TimeoutSecondsPath '{state.timeout_path}' did not resolve to a "
                                         "positive integer")
            timeout_s = found
        with self.rng_lock:
            request_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        optimized = state.resource == LAMBDA_INVOKE
        if optimized:
            if not isinstance(effective, dict):
                raise StatesRuntimeError("The Parameters of a lambda:invoke task must be a JSON object")
            function_name = effective.get("FunctionName")
            if not isinstance(function_name, str) or not function_name:
                raise StatesRuntimeError("The FunctionName parameter must be a non-empty string")
            payload = effective.get("Payload", {})
            qualifier = effective.get("Qualifier")
            if isinstance(qualifier, str) and qualifier and ":" not in function_name.split(":function:")[-1]:
                function_name = f"{function_name}:{qualifier}"
            scheduled: dict[str, Any] = {"resourceType": "lambda", "resource": "invoke", "region": self.region,
                                         "parameters": intrinsics.to_json_text(effective)}
            if timeout_s is not None:
                scheduled["timeoutInSeconds"] = timeout_s
            self._event(cursor, "TaskScheduled", "taskScheduledEventDetails", scheduled)
        else:
            function_name = state.resource
            payload = effective
            text, in_details = _payload_json(payload)
            lf_scheduled: dict[str, Any] = {"resource": function_name, "input": text, "inputDetails": in_details}
            if timeout_s is not None:
                lf_scheduled["timeoutInSeconds"] = timeout_s
            self._event(cursor, "LambdaFunctionScheduled", "lambdaFunctionScheduledEventDetails", lf_scheduled)
        try:
            result = self._call_lambda(function_name, payload, timeout_s, request_id=request_id,
                                       optimized=optimized, cursor=cursor)
        except StatesError as err:
            if optimized:
                kind = "TaskTimedOut" if err.error == errors.TIMEOUT else "TaskFailed"
                details: dict[str, Any] = {"resourceType": "lambda", "resource": "invoke", "error": err.error}
                key = "taskTimedOutEventDetails" if kind == "TaskTimedOut" else "taskFailedEventDetails"
            else:
                kind = "LambdaFunctionTimedOut" if err.error == errors.TIMEOUT else "LambdaFunctionFailed"
                details = {"error": err.error}
                key = ("lambdaFunctionTimedOutEventDetails" if kind == "LambdaFunctionTimedOut"
                       else "lambdaFunctionFailedEventDetails")
            if err.cause is not None:
                details["cause"] = err.cause
            self._event(cursor, kind, key, details)
            raise
        if optimized:
            result = lambda_invoke.invoke_response(result, request_id, format_datetime(self.clock.now(),
                                                                                       usegmt=True))
            text, out_details = _payload_json(result)
            self._event(cursor, "TaskSucceeded", "taskSucceededEventDetails",
                        {"resourceType": "lambda", "resource": "invoke", "output": text,
                         "outputDetails": out_details})
        else:
            text, out_details = _payload_json(result)
            self._event(cursor, "LambdaFunctionSucceeded", "lambdaFunctionSucceededEventDetails",
                        {"output": text, "outputDetails": out_details})
        return result

    def _call_lambda(self, function_name: str, payload: Any, timeout_s: float | None, *, request_id: str,
                     optimized: bool, cursor: _Cursor) -> Any:
        try:
            handler = self.resolver(function_name)
        except LookupError:
            self._event(cursor, "TaskStarted" if optimized else "LambdaFunctionStarted",
                        "taskStartedEventDetails" if optimized else None,
                        {"resourceType": "lambda", "resource": "invoke"} if optimized else None)
            raise lambda_invoke.resource_not_found(function_name, self.region, self.account, request_id) from None
        started_s = self.clock.monotonic()
        remaining = self.remaining_s()
        wait_s = timeout_s if remaining is None else (remaining if timeout_s is None else min(timeout_s, remaining))
        context = lambda_invoke.LambdaContext(
            function_name=lambda_invoke.function_name_of(function_name),
            invoked_function_arn=lambda_invoke.function_arn_of(function_name, self.region, self.account),
            aws_request_id=request_id,
            deadline_monotonic_s=started_s + (wait_s if wait_s is not None else 900.0),
            monotonic=self.clock.monotonic,
        )
        event_json = intrinsics.to_json_text(payload)
        if optimized:
            self._event(cursor, "TaskStarted", "taskStartedEventDetails",
                        {"resourceType": "lambda", "resource": "invoke"})
        else:
            self._event(cursor, "LambdaFunctionStarted")
        future = self.executor.submit(lambda_invoke.invoke, handler, event_json, context)
        if not self.clock.wait(future, None if wait_s is None else started_s + wait_s):
            # AWS stops waiting and lets the function run on; so do we (the worker finishes on its own).
            if timeout_s is None or (remaining is not None and remaining <= timeout_s):
                raise ExecutionTimedOut
            raise StatesError(errors.TIMEOUT)
        return future.result()

    def _parallel(self, state: State, effective: Any, cursor: _Cursor,
                  parent_cancel: threading.Event | None) -> Any:
        self._event(cursor, "ParallelStateStarted")
        cancel = threading.Event()
        results: list[Any] = [None] * len(state.branches)
        failures: list[BaseException] = []
        lock = threading.Lock()

        def run_branch(index: int) -> None:
            try:
                results[index] = self._run_machine(state.branches[index], effective, _Cursor(cursor.last_id),
                                                   cancel)
            except _Aborted:
                return
            except BaseException as exc:
                with lock:
                    failures.append(exc)
                cancel.set()

        threads = [threading.Thread(target=run_branch, args=(i,), daemon=True,
                                    name=f"asl-branch-{state.name}-{i}") for i in range(len(state.branches))]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.05)
                if parent_cancel is not None and parent_cancel.is_set():
                    cancel.set()
        if parent_cancel is not None and parent_cancel.is_set() and not failures:
            raise _Aborted
        if failures:
            first = failures[0]
            if isinstance(first, StatesError):
                self._event(cursor, "ParallelStateFailed")
            raise first
        self._event(cursor, "ParallelStateSucceeded")
        return results


def _invalid_path(path: str) -> str:
    """AWS's message, which spells the path in bracket notation: $['a']['b'][0]."""
    steps = jsonpath.reference_steps(path)
    if steps is None:
        return f"Invalid path '{path}' : No results for path: {path}"
    spelled = "$" + "".join(f"[{s}]" if isinstance(s, int) else f"['{s}']" for s in steps)
    return f"Invalid path '{path}' : No results for path: {spelled}"


def _payload_json(value: Any) -> tuple[str, dict[str, bool]]:
    return intrinsics.to_json_text(value), {"truncated": False}


def _payload_details(name: str, value: Any, kind: str) -> dict[str, Any]:
    text, details = _payload_json(value)
    return {"name": name, kind: text, f"{kind}Details": details}


def _check_size(value: Any, message: str) -> None:
    if len(intrinsics.to_json_text(value).encode("utf-8")) > PAYLOAD_LIMIT_BYTES:
        raise StatesError(errors.DATA_LIMIT_EXCEEDED, message)
