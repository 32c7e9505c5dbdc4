"""Errors, Retry and Catch: Lambda's error document, the States.* wildcards and terminal errors, backoff with
MaxDelaySeconds and FULL jitter on an injected clock, per-entry retry counts, timeouts."""

from __future__ import annotations

import json
import threading
from typing import Any

from local.asl.interpreter import PAYLOAD_LIMIT_BYTES
from tests.unit.local.asl.support import Harness, lambda_arn, output, task_machine


class ErrorA(Exception):
    pass


class ErrorB(Exception):
    pass


class ErrorC(Exception):
    pass


def raising(*errors: Exception | None, result: Any = "done") -> Any:
    """A handler raising the given errors in turn (None: succeed), then returning result."""
    queue = list(errors)

    def handler(event: Any, context: Any) -> Any:
        if queue:
            error = queue.pop(0)
            if error is not None:
                raise error
        return result

    return handler


def test_handler_exception_becomes_lambda_error_document() -> None:
    harness = Harness({"fn": raising(ValueError("amount must be positive"))})
    response = harness.run(task_machine({}), {})
    assert (response["status"], response["error"]) == ("FAILED", "ValueError")
    cause = json.loads(response["cause"])
    assert list(cause) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert cause["errorMessage"] == "amount must be positive"
    assert cause["errorType"] == "ValueError"
    assert any("in handler" in line and "raise error" in line for line in cause["stackTrace"])
    assert "lambda_invoke.py" not in "".join(cause["stackTrace"])


def test_spec_retry_example_intervals_with_backoff() -> None:
    # States Language spec, Retry example: IntervalSeconds 3, MaxAttempts 2, BackoffRate 1.5 -> waits 3 s, 4.5 s.
    harness = Harness({"fn": raising(ErrorA(), ErrorA(), ErrorA())})
    machine = task_machine({"Retry": [{"ErrorEquals": ["ErrorA"], "IntervalSeconds": 3, "MaxAttempts": 2,
                                       "BackoffRate": 1.5}]})
    response = harness.run(machine, {})
    assert (response["status"], response["error"]) == ("FAILED", "ErrorA")
    assert harness.clock.sleeps == [3, 4.5]
    assert len(harness.calls) == 3


def test_spec_retrier_counts_are_shared_by_its_error_names() -> None:
    # States Language spec, second Retry example: ErrorA and ErrorB share one retrier's MaxAttempts 2;
    # ErrorC has its own retrier (IntervalSeconds 5, default MaxAttempts 3 and BackoffRate 2).
    retry = [{"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 2},
             {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}]
    harness = Harness({"fn": raising(ErrorA(), ErrorC(), ErrorB(), ErrorC(), ErrorA())})
    response = harness.run(task_machine({"Retry": retry}), {})
    assert (response["status"], response["error"]) == ("FAILED", "ErrorA")
    assert harness.clock.sleeps == [1, 5, 2, 10]


def test_max_attempts_zero_never_retries() -> None:
    harness = Harness({"fn": raising(ErrorA(), result="ok")})
    machine = task_machine({"Retry": [{"ErrorEquals": ["ErrorA"], "MaxAttempts": 0},
                                      {"ErrorEquals": ["States.ALL"]}]})
    response = harness.run(machine, {})
    # The first matching retrier decides, even when it allows no attempt.
    assert (response["status"], response["error"]) == ("FAILED", "ErrorA")
    assert harness.clock.sleeps == []


def test_max_delay_caps_backoff_and_full_jitter_draws_below_it() -> None:
    retry = {"ErrorEquals": ["ErrorA"], "IntervalSeconds": 2, "MaxAttempts": 5, "BackoffRate": 3,
             "MaxDelaySeconds": 10}
    harness = Harness({"fn": raising(*[ErrorA()] * 5, result="ok")})
    assert output(harness.run(task_machine({"Retry": [retry]}), {})) == "ok"
    assert harness.clock.sleeps == [2, 6, 10, 10, 10]

    jittered = Harness({"fn": raising(*[ErrorA()] * 5, result="ok")}, seed=11)
    assert output(jittered.run(task_machine({"Retry": [{**retry, "JitterStrategy": "FULL"}]}), {})) == "ok"
    assert all(0 <= got <= cap for got, cap in zip(jittered.clock.sleeps, [2, 6, 10, 10, 10], strict=True))
    assert jittered.clock.sleeps != [2, 6, 10, 10, 10]
    again = Harness({"fn": raising(*[ErrorA()] * 5, result="ok")}, seed=11)
    again.run(task_machine({"Retry": [{**retry, "JitterStrategy": "FULL"}]}), {})
    assert again.clock.sleeps == jittered.clock.sleeps  # the injected random source makes it reproducible


def test_retry_counts_restart_on_each_entry_of_the_state() -> None:
    # A loop re-enters T: its retrier (MaxAttempts 1) allows one retry per entry, and $$.State.RetryCount restarts.
    seen_counts: list[int] = []

    def flaky(event: Any, context: Any) -> Any:
        seen_counts.append(event["retry"])
        if event["retry"] == 0:
            raise ErrorA("first attempt of each entry fails")
        return event["n"] + 1

    machine = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": lambda_arn("fn"), "Next": "Loop",
              "Parameters": {"n.$": "$.n", "retry.$": "$$.State.RetryCount"}, "ResultPath": "$.n",
              "Retry": [{"ErrorEquals": ["ErrorA"], "MaxAttempts": 1, "IntervalSeconds": 1}]},
        "Loop": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 3, "Next": "T"}],
                 "Default": "Done"},
        "Done": {"Type": "Succeed"}}}
    harness = Harness({"fn": flaky})
    assert output(harness.run(machine, {"n": 0})) == {"n": 3}
    assert seen_counts == [0, 1, 0, 1, 0, 1]


def test_catch_first_match_wins_and_error_output_goes_to_result_path() -> None:
    machine = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": lambda_arn("fn"), "End": True,
              "Catch": [{"ErrorEquals": ["ErrorB"], "Next": "B"},
                        {"ErrorEquals": ["ErrorA", "ErrorB"], "Next": "A", "ResultPath": "$.err"},
                        {"ErrorEquals": ["States.ALL"], "Next": "B"}]},
        "A": {"Type": "Pass", "End": True}, "B": {"Type": "Fail", "Error": "Wrong"}}}
    result = output(Harness({"fn": raising(ErrorA("boom"))}).run(machine, {"keep": 1}))
    assert result["keep"] == 1
    assert result["err"]["Error"] == "ErrorA"
    assert json.loads(result["err"]["Cause"])["errorMessage"] == "boom"


def test_catch_result_path_null_keeps_the_input_only() -> None:
    machine = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": lambda_arn("fn"), "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "A", "ResultPath": None}]},
        "A": {"Type": "Pass", "End": True}}}
    assert output(Harness({"fn": raising(ErrorA())}).run(machine, {"keep": 1})) == {"keep": 1}


def test_catch_default_result_path_replaces_input_with_error() -> None:
    machine = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": lambda_arn("fn"), "End": True,
              "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "A"}]},
        "A": {"Type": "Pass", "End": True}}}
    result = output(Harness({"fn": raising(ErrorA())}).run(machine, {"keep": 1}))
    assert set(result) == {"Error", "Cause"}
    assert result["Error"] == "ErrorA"


def test_states_all_does_not_catch_runtime_errors() -> None:
    machine = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": lambda_arn("fn"), "End": True, "Parameters": {"x.$": "$.missing"},
              "Retry": [{"ErrorEquals": ["States.ALL"]}],
              "Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "A"},
                        {"ErrorEquals": ["States.ALL"], "Next": "A"}]},
        "A": {"Type": "Pass", "End": True}}}
    harness = Harness({"fn": raising()})
    response = harness.run(machine, {})
    assert (response["status"], response["error"]) == ("FAILED", "States.Runtime")
    assert harness.calls == [] and harness.clock.sleeps == []


def test_data_limit_exceeded_is_not_caught_by_states_all() -> None:
    big = "x" * PAYLOAD_LIMIT_BYTES
    machine = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": lambda_arn("fn"), "End": True,
              "Retry": [{"ErrorEquals": ["States.ALL"]}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "A"}]},
        "A": {"Type": "Pass", "End": True}}}
    harness = Harness({"fn": raising(result=big)})
    response = harness.run(machine, {})
    assert (response["status"], response["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert len(harness.calls) == 1


def test_task_failed_matches_everything_but_timeout() -> None:
    release = threading.Event()

    def slow(event: Any, context: Any) -> Any:
        harness.clock.advance(5)
        release.wait(10)  # held until the runtime has given up on it, as AWS lets a Lambda run on
        return "late"

    machine = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": lambda_arn("fn"), "End": True, "TimeoutSeconds": 2,
              "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "TaskFailed"},
                        {"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}]},
        "TaskFailed": {"Type": "Pass", "Result": "task-failed", "End": True},
        "TimedOut": {"Type": "Pass", "Result": "timed-out", "End": True}}}
    harness = Harness({"fn": slow})
    assert output(harness.run(machine, {})) == "timed-out"
    release.set()
    assert output(Harness({"fn": raising(ErrorA())}).run(machine, {})) == "task-failed"


def test_task_timeout_is_retried_as_states_timeout() -> None:
    attempts: list[int] = []
    release = threading.Event()

    def slow_once(event: Any, context: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            harness.clock.advance(31)
            release.wait(10)
        return "ok"

    harness = Harness({"fn": slow_once})
    machine = task_machine({"TimeoutSeconds": 30, "Retry": [{"ErrorEquals": ["States.Timeout"],
                                                              "IntervalSeconds": 2}]})
    assert output(harness.run(machine, {})) == "ok"
    release.set()
    assert len(attempts) == 2 and harness.clock.sleeps == [2]
    events = harness.sfn.get_execution_history(
        executionArn=harness.sfn.list_executions(stateMachineArn=harness.sfn.state_machine_arn("sm1"))
        ["executions"][0]["executionArn"])["events"]
    assert [e["type"] for e in events if e["type"].startswith("LambdaFunction")] == [
        "LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionTimedOut",
        "LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionSucceeded"]


def test_execution_timeout_seconds_times_out_the_execution() -> None:
    machine = {"StartAt": "W", "TimeoutSeconds": 10, "States": {
        "W": {"Type": "Wait", "Seconds": 60, "Next": "Never"}, "Never": {"Type": "Succeed"}}}
    harness = Harness()
    response = harness.run(machine, {})
    assert response["status"] == "TIMED_OUT"
    assert "output" not in response
    assert harness.clock.sleeps == [10]


def test_express_five_minute_ceiling() -> None:
    machine = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    harness = Harness()
    assert harness.run(machine, {})["status"] == "TIMED_OUT"
    assert harness.clock.sleeps == [300]


def test_unknown_function_is_lambda_resource_not_found() -> None:
    response = Harness({}).run(task_machine({}, "missing"), {})
    assert (response["status"], response["error"]) == ("FAILED", "Lambda.ResourceNotFoundException")


def test_unserialisable_result_is_a_marshal_error() -> None:
    response = Harness({"fn": raising(result={1, 2})}).run(task_machine({}), {})
    assert (response["status"], response["error"]) == ("FAILED", "Runtime.MarshalError")


def test_fail_state_error_and_cause_and_their_paths() -> None:
    # States Language spec, Fail State example (Error "ErrorA", Cause "Kaiju attack").
    harness = Harness()
    fixed = harness.run({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "ErrorA",
                                                           "Cause": "Kaiju attack"}}}, {})
    assert (fixed["status"], fixed["error"], fixed["cause"]) == ("FAILED", "ErrorA", "Kaiju attack")
    dynamic = harness.run({"StartAt": "F", "States": {"F": {
        "Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('code {}', $.code)"}}},
        {"e": "Declined", "code": 51})
    assert (dynamic["error"], dynamic["cause"]) == ("Declined", "code 51")
    missing = harness.run({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.nope"}}}, {"e": 1})
    assert (missing["error"], missing["cause"]) == (
        "States.Runtime", "An error occurred while executing the state 'F' (entered at the event id #2). The "
        "JSONPath '$.nope' specified for the field 'ErrorPath' could not be found in the input '{\"e\":1}'")


