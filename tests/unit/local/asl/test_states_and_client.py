"""Parallel, Wait, lambda:invoke's response wrapping, history events, the boto3-shaped client and concurrency."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.unit.local.asl.support import Harness, lambda_arn, output, pass_machine


def echo(event: Any, context: Any) -> Any:
    return {"echo": event, "fn": context.function_name}


def test_lambda_invoke_wraps_the_result_like_lambda() -> None:
    machine = {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states::" + ":lambda:invoke", "End": True,
        "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:echo", "Payload.$": "$"}}}}
    result = output(Harness({"echo": echo}).run(machine, {"a": 1}))
    assert result["Payload"] == {"echo": {"a": 1}, "fn": "echo"}
    assert (result["StatusCode"], result["ExecutedVersion"]) == (200, "$LATEST")
    assert result["SdkHttpMetadata"]["HttpStatusCode"] == 200
    assert result["SdkResponseMetadata"]["RequestId"] == result["SdkHttpMetadata"]["HttpHeaders"]["x-amzn-RequestId"]


def test_lambda_invoke_payload_selection_and_function_name_forms() -> None:
    machine = {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
        "Parameters": {"FunctionName": "echo", "Payload": {"id.$": "$.id", "fixed": 1}},
        "ResultSelector": {"body.$": "$.Payload.echo"}, "ResultPath": "$.r"}}}
    assert output(Harness({"echo": echo}).run(machine, {"id": "p1"})) == {"id": "p1", "r": {"body": {
        "id": "p1", "fixed": 1}}}


def test_lambda_invoke_error_is_error_type_and_cause() -> None:
    def declined(event: Any, context: Any) -> Any:
        raise PermissionError("card declined")

    machine = {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
        "Parameters": {"FunctionName": "d", "Payload.$": "$"}}}}
    response = Harness({"d": declined}).run(machine, {})
    assert response["error"] == "PermissionError"
    assert json.loads(response["cause"])["errorMessage"] == "card declined"


def test_handler_gets_a_copy_and_cannot_mutate_state_data() -> None:
    def mutate(event: Any, context: Any) -> Any:
        event["injected"] = True
        return None

    machine = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn("m"), "End": True,
                                                 "ResultPath": "$.r"}}}
    assert output(Harness({"m": mutate}).run(machine, {"a": 1})) == {"a": 1, "r": None}


def test_parallel_spec_example_collects_branch_outputs_in_order() -> None:
    # States Language spec, Parallel State example ("LookupCustomerInfo" with LookupAddress / LookupPhone).
    machine = {"StartAt": "LookupCustomerInfo", "States": {"LookupCustomerInfo": {
        "Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "LookupAddress", "States": {"LookupAddress": {
                "Type": "Task", "Resource": lambda_arn("AddressFinder"), "End": True}}},
            {"StartAt": "LookupPhone", "States": {"LookupPhone": {
                "Type": "Task", "Resource": lambda_arn("PhoneFinder"), "End": True}}}]}}}
    harness = Harness({"AddressFinder": lambda e, c: {"address": "1 Main St"},
                       "PhoneFinder": lambda e, c: {"phone": "555"}})
    assert output(harness.run(machine, {"customer": 1})) == [{"address": "1 Main St"}, {"phone": "555"}]
    assert sorted(harness.call_names()) == ["AddressFinder", "PhoneFinder"]


def test_parallel_failure_is_catchable_with_the_branch_error() -> None:
    def fails(event: Any, context: Any) -> Any:
        raise KeyError("missing")

    machine = {"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "Ok", "ResultSelector": {"first.$": "$[0]"}, "ResultPath": "$.p",
              "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": True}}},
                           {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": lambda_arn("f"),
                                                             "End": True}}}],
              "Catch": [{"ErrorEquals": ["KeyError"], "ResultPath": "$.err", "Next": "Caught"}]},
        "Ok": {"Type": "Succeed"}, "Caught": {"Type": "Pass", "End": True}}}
    result = output(Harness({"f": fails}).run(machine, {"in": 1}))
    assert result["in"] == 1 and result["err"]["Error"] == "KeyError"
    ok = output(Harness({"f": lambda e, c: 2}).run(machine, {"in": 1}))
    assert ok == {"in": 1, "p": {"first": 1}}


def test_wait_seconds_path_and_timestamp() -> None:
    # States Language spec, Wait State examples (Seconds, Timestamp, TimestampPath).
    harness = Harness()
    machine = {"StartAt": "W1", "States": {
        "W1": {"Type": "Wait", "Seconds": 10, "Next": "W2"},
        "W2": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "W3"},
        "W3": {"Type": "Wait", "TimestampPath": "$.expirydate", "Next": "W4"},
        "W4": {"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z", "End": True}}}
    data = {"delay": 5, "expirydate": "2024-01-02T03:05:05.678Z"}
    assert output(harness.run(machine, data)) == data
    assert harness.clock.sleeps == [10, 5, 45.0, 0.0]


def test_wait_seconds_path_must_be_a_non_negative_integer() -> None:
    machine = {"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.d", "End": True}}}
    response = Harness().run(machine, {"d": "soon"})
    assert (response["status"], response["error"]) == ("FAILED", "States.Runtime")


def test_history_events_use_step_functions_names_and_links() -> None:
    machine = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "C",
              "Parameters": {"FunctionName": "echo", "Payload.$": "$"}, "ResultPath": None},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": 1, "Next": "P"}]},
        "P": {"Type": "Pass", "Next": "F"},
        "F": {"Type": "Fail", "Error": "Done", "Cause": "end"}}}
    harness = Harness({"echo": echo})
    response = harness.run(machine, {"a": 1})
    events = harness.sfn.get_execution_history(executionArn=response["executionArn"])["events"]
    assert [e["type"] for e in events] == [
        "ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded",
        "TaskStateExited", "ChoiceStateEntered", "ChoiceStateExited", "PassStateEntered", "PassStateExited",
        "FailStateEntered", "ExecutionFailed"]
    assert [e["id"] for e in events] == list(range(1, 13))
    assert [e["previousEventId"] for e in events] == list(range(0, 12))
    assert all(isinstance(e["timestamp"], datetime) for e in events)
    assert events[0]["executionStartedEventDetails"]["input"] == '{"a": 1}'  # kept as sent
    assert events[1]["stateEnteredEventDetails"] == {"name": "T", "input": '{"a":1}',
                                                     "inputDetails": {"truncated": False}}
    scheduled = events[2]["taskScheduledEventDetails"]
    assert (scheduled["resourceType"], scheduled["resource"]) == ("lambda", "invoke")
    assert json.loads(scheduled["parameters"]) == {"FunctionName": "echo", "Payload": {"a": 1}}
    assert events[-1]["executionFailedEventDetails"] == {"error": "Done", "cause": "end"}


def test_start_sync_execution_response_shape() -> None:
    harness = Harness()
    arn = harness.register(pass_machine({"Type": "Pass"}), name="shape")
    response = harness.sfn.start_sync_execution(stateMachineArn=arn, name="n1", input='{"x": 1}')
    assert response["status"] == "SUCCEEDED" and response["output"] == '{"x":1}'
    assert response["stateMachineArn"] == arn and response["name"] == "n1" and response["input"] == '{"x": 1}'
    assert isinstance(response["startDate"], datetime) and isinstance(response["stopDate"], datetime)
    assert response["billingDetails"] == {"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": 100}
    assert "error" not in response and "cause" not in response
    failed = harness.sfn.start_sync_execution(
        stateMachineArn=harness.register({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}))
    assert failed["status"] == "FAILED" and "output" not in failed and failed["error"] == "E"


def test_client_errors_use_boto3_codes() -> None:
    harness = Harness()
    with pytest.raises(ClientError) as missing:
        harness.sfn.start_sync_execution(stateMachineArn=harness.sfn.state_machine_arn("nope"), input="{}")
    assert missing.value.response["Error"]["Code"] == "StateMachineDoesNotExist"
    arn = harness.register(pass_machine({"Type": "Pass"}))
    with pytest.raises(ClientError) as bad_input:
        harness.sfn.start_sync_execution(stateMachineArn=arn, input="{not json")
    assert bad_input.value.response["Error"]["Code"] == "InvalidExecutionInput"
    with pytest.raises(ClientError) as invalid:
        harness.register({"StartAt": "X", "States": {"X": {"Type": "Pass"}}})
    assert invalid.value.response["Error"]["Code"] == "InvalidDefinition"
    standard = harness.register(pass_machine({"Type": "Pass"}), type="STANDARD")
    with pytest.raises(ClientError) as unsupported:
        harness.sfn.start_sync_execution(stateMachineArn=standard, input="{}")
    assert unsupported.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"


def test_definition_substitutions_resolve_function_names() -> None:
    text = json.dumps({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
        "Parameters": {"FunctionName": "${EchoFunctionArn}", "Payload.$": "$"}, "OutputPath": "$.Payload"}}})
    harness = Harness({"paysaga-Echo": echo})
    arn = harness.register(text, definitionSubstitutions={
        "EchoFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:paysaga-Echo"})
    described = harness.sfn.describe_state_machine(stateMachineArn=arn)
    assert (described["type"], described["status"], described["definition"]) == ("EXPRESS", "ACTIVE", text)
    response = harness.sfn.start_sync_execution(stateMachineArn=arn, input='{"k": 2}')
    assert output(response) == {"echo": {"k": 2}, "fn": "paysaga-Echo"}
    with pytest.raises(ClientError, match="EchoFunctionArn"):
        harness.register(text)


def test_register_under_a_given_arn() -> None:
    harness = Harness()
    arn = "arn:aws:states:eu-west-1:000000000000:stateMachine:paysaga"
    harness.sfn.register(arn, json.dumps(pass_machine({"Type": "Pass", "Result": "${Word}"})), {"Word": "hi"})
    assert output(harness.sfn.start_sync_execution(stateMachineArn=arn, input="{}")) == "hi"


def test_many_concurrent_executions_keep_their_own_data() -> None:
    gate = threading.Barrier(8)

    def work(event: Any, context: Any) -> Any:
        gate.wait(timeout=10)  # all eight executions are inside a handler at once
        return event["n"] * 2

    harness = Harness({"w": work})
    arn = harness.register({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": lambda_arn("w"), "ResultPath": "$.r", "Next": "P"},
        "P": {"Type": "Pass", "Parameters": {"n.$": "$.n", "r.$": "$.r", "who.$": "$$.Execution.Name"},
              "End": True}}})
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda n: harness.sfn.start_sync_execution(
            stateMachineArn=arn, name=f"e{n}", input=json.dumps({"n": n})), range(8)))
    assert [output(r) for r in responses] == [{"n": n, "r": 2 * n, "who": f"e{n}"} for n in range(8)]
    listed = harness.sfn.list_executions(stateMachineArn=arn)["executions"]
    assert len(listed) == 8 and {e["status"] for e in listed} == {"SUCCEEDED"}


def test_start_execution_runs_in_background_for_standard_machines() -> None:
    harness = Harness()
    arn = harness.register(pass_machine({"Type": "Pass", "Result": 5}), type="STANDARD")
    started = harness.sfn.start_execution(stateMachineArn=arn, name="bg", input="{}")
    assert harness.sfn.wait_for_execution(started["executionArn"], timeout_s=10)
    described = harness.sfn.describe_execution(executionArn=started["executionArn"])
    assert (described["status"], described["output"]) == ("SUCCEEDED", "5")


def test_execution_timeout_while_a_handler_hangs() -> None:
    release = threading.Event()

    def hangs(event: Any, context: Any) -> Any:
        harness.clock.advance(301)  # past the Express 5-minute ceiling
        release.wait(10)
        return "late"

    harness = Harness({"h": hangs})
    machine = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn("h"), "End": True,
                                                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}]},
                                           "C": {"Type": "Succeed"}}}
    response = harness.run(machine, {})
    release.set()
    assert response["status"] == "TIMED_OUT"  # an execution timeout is not a catchable task error
    events = harness.sfn.get_execution_history(executionArn=response["executionArn"])["events"]
    assert events[-1]["type"] == "ExecutionTimedOut"


def test_nested_parallel_and_branch_history() -> None:
    inner = {"StartAt": "In", "States": {"In": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "X", "States": {"X": {"Type": "Pass", "Result": "x", "End": True}}},
        {"StartAt": "Y", "States": {"Y": {"Type": "Task", "Resource": lambda_arn("y"), "End": True}}}]}}}
    machine = {"StartAt": "Out", "States": {"Out": {"Type": "Parallel", "End": True, "Branches": [
        inner, {"StartAt": "Z", "States": {"Z": {"Type": "Pass", "Result": "z", "End": True}}}]}}}
    harness = Harness({"y": lambda e, c: "y"})
    response = harness.run(machine, {})
    assert output(response) == [["x", "y"], "z"]
    types = [e["type"] for e in harness.sfn.get_execution_history(executionArn=response["executionArn"])["events"]]
    assert types[:3] == ["ExecutionStarted", "ParallelStateEntered", "ParallelStateStarted"]
    assert types[-3:] == ["ParallelStateSucceeded", "ParallelStateExited", "ExecutionSucceeded"]
    assert types.count("ParallelStateStarted") == 2 and types.count("LambdaFunctionSucceeded") == 1


def test_runtime_error_in_a_branch_fails_the_execution_through_parallel_catch() -> None:
    machine = {"StartAt": "P", "States": {"P": {
        "Type": "Parallel", "End": True,
        "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "InputPath": "$.nope", "End": True}}}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}]}, "C": {"Type": "Succeed"}}}
    response = Harness().run(machine, {})
    assert (response["status"], response["error"]) == ("FAILED", "States.Runtime")
    assert response["cause"].startswith("An error occurred while executing the state 'B' (entered at the event id")


def test_parameters_larger_than_the_payload_limit_fail_with_data_limit_exceeded() -> None:
    machine = pass_machine({"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"}})
    response = Harness().run(machine, {"s": "x" * 140_000})
    assert (response["status"], response["error"]) == ("FAILED", "States.DataLimitExceeded")


def test_lambda_context_reports_remaining_time_from_the_task_timeout() -> None:
    seen: list[int] = []

    def timed(event: Any, context: Any) -> Any:
        seen.append(context.get_remaining_time_in_millis())
        return context.aws_request_id

    harness = Harness({"t": timed})
    machine = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn("t"), "End": True,
                                                 "TimeoutSeconds": 7}}}
    request_id = output(harness.run(machine, {}))
    assert seen == [7000]
    assert len(request_id) == 36
