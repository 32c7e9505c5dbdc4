"""Input/output processing, checked against the examples of the AWS Step Functions developer guide and the
States Language specification (states-language.net/spec.html). Each test names the example it reproduces."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.local.asl.support import Harness, lambda_arn, output, pass_machine, task_machine


def hello(event: Any, context: Any) -> str:
    # The HelloFunction of the developer guide's ResultPath examples: returns "Hello, " + who + "!".
    return "Hello, " + str(event["who"]) + "!"


HELLO_INPUT = {"comment": "This is a test of the input and output of a Task state.",
               "details": "Default example", "who": "AWS Step Functions"}


def test_input_path_selects_part_of_the_input() -> None:
    # Developer guide, "Processing input and output" > InputPath example.
    raw = {"comment": "Example for InputPath.", "dataset1": {"val1": 1, "val2": 2, "val3": 3},
           "dataset2": {"val1": "a", "val2": "b", "val3": "c"}}
    response = Harness().run(pass_machine({"Type": "Pass", "InputPath": "$.dataset2"}), raw)
    assert output(response) == {"val1": "a", "val2": "b", "val3": "c"}


def test_parameters_select_and_add_fields() -> None:
    # Developer guide, "Manipulate parameters in Step Functions workflows" > Parameters example.
    raw = {"comment": "Example for Parameters.",
           "product": {"details": {"color": "blue", "size": "small", "material": "cotton"},
                       "availability": "in stock", "sku": "2317", "cost": "$23"}}
    params = {"comment": "Selecting what I care about.",
              "MyDetails": {"size.$": "$.product.details.size", "exists.$": "$.product.availability",
                            "StaticValue": "foo"}}
    response = Harness().run(pass_machine({"Type": "Pass", "Parameters": params}), raw)
    assert output(response) == {"comment": "Selecting what I care about.",
                                "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}}


def test_parameters_with_indefinite_paths_yield_arrays() -> None:
    # States Language spec, "Parameters" example ("first.$": "$.vals[0]", "last3.$": "$.vals[-3:]").
    raw = {"flagged": 7, "vals": [0, 10, 20, 30, 40, 50]}
    params = {"flagged": True, "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[-3:]"}}
    response = Harness().run(pass_machine({"Type": "Pass", "Parameters": params}), raw)
    assert output(response) == {"flagged": True, "parts": {"first": 0, "last3": [30, 40, 50]}}


def test_result_selector_picks_from_the_task_result() -> None:
    # Developer guide, ResultSelector example (EMR createCluster result -> ClusterId, ResourceType).
    result = {"resourceType": "elasticmapreduce", "resource": "createCluster.sync",
              "output": {"SdkHttpMetadata": {"HttpHeaders": {"Content-Length": "1112"}, "HttpStatusCode": 200},
                         "SdkResponseMetadata": {"RequestId": "1234-5678-9012"},
                         "ClusterId": "AKIAIOSFODNN7EXAMPLE"}}
    harness = Harness({"fn": lambda event, context: result})
    machine = task_machine({"ResultSelector": {"ClusterId.$": "$.output.ClusterId",
                                               "ResourceType.$": "$.resourceType"}})
    assert output(harness.run(machine, {})) == {"ClusterId": "AKIAIOSFODNN7EXAMPLE",
                                                "ResourceType": "elasticmapreduce"}


def test_result_path_dollar_replaces_the_input() -> None:
    # Developer guide, "Specifying state output using ResultPath": "ResultPath": "$" (the default).
    harness = Harness({"HelloFunction": hello})
    response = harness.run(task_machine({"ResultPath": "$"}, "HelloFunction"), HELLO_INPUT)
    assert output(response) == "Hello, AWS Step Functions!"


def test_result_path_null_discards_the_result() -> None:
    # Developer guide, ResultPath examples: "ResultPath": null passes the input through.
    harness = Harness({"HelloFunction": hello})
    response = harness.run(task_machine({"ResultPath": None}, "HelloFunction"), HELLO_INPUT)
    assert output(response) == HELLO_INPUT


def test_result_path_adds_the_result_to_the_input() -> None:
    # Developer guide, ResultPath examples: "ResultPath": "$.taskresult".
    harness = Harness({"HelloFunction": hello})
    response = harness.run(task_machine({"ResultPath": "$.taskresult"}, "HelloFunction"), HELLO_INPUT)
    assert output(response) == {**HELLO_INPUT, "taskresult": "Hello, AWS Step Functions!"}


COMBINED_INPUT = {"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
                  "lambda": {"who": "AWS Step Functions"}}


def test_input_result_and_output_paths_together() -> None:
    # Developer guide, "Example: Manipulating state data with paths": InputPath "$.lambda",
    # ResultPath "$.data.lambdaresult", OutputPath "$.data".
    harness = Harness({"HelloFunction": hello})
    machine = task_machine({"InputPath": "$.lambda", "ResultPath": "$.data.lambdaresult", "OutputPath": "$.data"},
                           "HelloFunction")
    assert output(harness.run(machine, COMBINED_INPUT)) == {"val1": 23, "val2": 17,
                                                            "lambdaresult": "Hello, AWS Step Functions!"}
    assert harness.calls == [("HelloFunction", {"who": "AWS Step Functions"})]


def test_result_path_without_output_path_keeps_everything() -> None:
    # Same developer-guide example without OutputPath: the whole input with the nested result.
    harness = Harness({"HelloFunction": hello})
    machine = task_machine({"InputPath": "$.lambda", "ResultPath": "$.data.lambdaresult"}, "HelloFunction")
    expected = json.loads(json.dumps(COMBINED_INPUT))
    expected["data"]["lambdaresult"] = "Hello, AWS Step Functions!"
    assert output(harness.run(machine, COMBINED_INPUT)) == expected


def test_spec_numbers_to_add_example() -> None:
    # States Language spec, "Using InputPath, ResultPath and OutputPath": InputPath "$.numbers",
    # ResultPath "$.sum" on {"title": "Numbers to add", "numbers": [3, 4]}.
    harness = Harness({"Add": lambda event, context: sum(event)})
    machine = task_machine({"InputPath": "$.numbers", "ResultPath": "$.sum"}, "Add")
    assert output(harness.run(machine, {"title": "Numbers to add", "numbers": [3, 4]})) == {
        "title": "Numbers to add", "numbers": [3, 4], "sum": 7}


def test_pass_state_result_and_result_path() -> None:
    # States Language spec, Pass State example ("No-op" with Result coords and ResultPath "$.coords").
    state = {"Type": "Pass", "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
             "ResultPath": "$.coords"}
    assert output(Harness().run(pass_machine(state), {"georefOf": "Home"})) == {
        "georefOf": "Home", "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355}}


def test_result_path_replaces_an_existing_node() -> None:
    # States Language spec, ResultPath: the result overwrites "$.master.detail" when it exists.
    state = {"Type": "Pass", "Result": "X", "ResultPath": "$.master.detail"}
    assert output(Harness().run(pass_machine(state), {"master": {"detail": [1, 2, 3]}})) == {
        "master": {"detail": "X"}}


def test_result_path_into_a_non_object_fails_with_result_path_match_failure() -> None:
    state = {"Type": "Pass", "Result": "X", "ResultPath": "$.master.detail.more"}
    response = Harness().run(pass_machine(state), {"master": {"detail": [1, 2, 3]}})
    assert response["status"] == "FAILED"
    assert response["error"] == "States.ResultPathMatchFailure"


def test_null_input_and_output_paths_give_empty_objects() -> None:
    # Developer guide: InputPath null -> the state sees {}; OutputPath null -> it emits {}.
    harness = Harness({"fn": lambda event, context: {"got": event}})
    machine = task_machine({"InputPath": None, "ResultPath": "$.r"})
    assert output(harness.run(machine, {"a": 1})) == {"a": 1, "r": {"got": {}}}
    assert output(harness.run(pass_machine({"Type": "Pass", "OutputPath": None}), {"a": 1})) == {}


def test_catch_result_path_keeps_input_and_adds_error() -> None:
    # Developer guide, "Use ResultPath to include both error and input in a Catch".
    def fails(event: Any, context: Any) -> Any:
        raise RuntimeError("Error here")

    machine = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": lambda_arn("fn"), "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled", "ResultPath": "$.error"}]},
        "Handled": {"Type": "Pass", "End": True}}}
    result = output(Harness({"fn": fails}).run(machine, {"foo": "bar"}))
    assert result["foo"] == "bar"
    assert result["error"]["Error"] == "RuntimeError"
    assert json.loads(result["error"]["Cause"])["errorMessage"] == "Error here"


def test_context_object_fields() -> None:
    # Developer guide, "Accessing execution data from the Context object": $$.Execution.*, $$.State.*.
    params = {"ExecutionName.$": "$$.Execution.Name", "Id.$": "$$.Execution.Id", "In.$": "$$.Execution.Input",
              "Start.$": "$$.Execution.StartTime", "StateName.$": "$$.State.Name",
              "Entered.$": "$$.State.EnteredTime", "Retry.$": "$$.State.RetryCount",
              "Machine.$": "$$.StateMachine.Name"}
    harness = Harness()
    arn = harness.register(pass_machine({"Type": "Pass", "Parameters": params}), name="ctx")
    response = harness.sfn.start_sync_execution(stateMachineArn=arn, name="exec-1", input='{"k": 1}')
    result = output(response)
    assert result == {"ExecutionName": "exec-1", "Id": response["executionArn"], "In": {"k": 1},
                      "Start": "2024-01-02T03:04:05.678Z", "StateName": "S",
                      "Entered": "2024-01-02T03:04:05.678Z", "Retry": 0, "Machine": "ctx"}
    assert response["executionArn"].startswith("arn:aws:states:us-east-1:123456789012:express:ctx:exec-1:")


def test_missing_parameter_path_is_a_runtime_error() -> None:
    # Developer guide error text: "The JSONPath '$.x' specified for the field 'a.$' could not be found".
    machine = pass_machine({"Type": "Pass", "Parameters": {"a.$": "$.x"}})
    response = Harness().run(machine, {"y": 1})
    assert response["status"] == "FAILED"
    assert response["error"] == "States.Runtime"
    assert response["cause"] == (
        "An error occurred while executing the state 'S' (entered at the event id #2). The JSONPath '$.x' "
        "specified for the field 'a.$' could not be found in the input '{\"y\":1}'")


def test_missing_input_path_is_a_runtime_error() -> None:
    response = Harness().run(pass_machine({"Type": "Pass", "InputPath": "$.nope"}), {"y": 1})
    assert (response["status"], response["error"]) == ("FAILED", "States.Runtime")
    assert response["cause"].endswith("Invalid path '$.nope' : No results for path: $['nope']")
