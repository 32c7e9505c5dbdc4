"""Loading rejects what the runtime does not support, naming the state and field, instead of running it wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.asl import DefinitionError, load_definition

TASK = "arn:aws:lambda:us-east-1:123456789012:function:fn"


def load(document: dict[str, Any]) -> None:
    load_definition(json.dumps(document))


def one(state: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "S", "States": {"S": state}}


@pytest.mark.parametrize(("document", "message"), [
    (one({"Type": "Pass", "End": True, "Bogus": 1}), "state 'S': unknown field 'Bogus'"),
    (one({"Type": "Pass"}), "state 'S': exactly one of Next and End"),
    (one({"Type": "Pass", "Next": "S", "End": True}), "state 'S': exactly one of Next and End"),
    (one({"Type": "Pass", "Next": "Nowhere"}), "state 'S': Next 'Nowhere' is not a state"),
    ({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}, "unreachable states ['B']"),
    ({"StartAt": "Z", "States": {"A": {"Type": "Succeed"}}}, "StartAt 'Z' is not a state"),
    (one({"Type": "Map", "End": True}), "state 'S': Type 'Map' is not supported"),
    (one({"Type": "Dance", "End": True}), "state 'S': unknown Type 'Dance'"),
    ({**one({"Type": "Succeed"}), "QueryLanguage": "JSONata"}, "JSONata"),
    (one({"Type": "Pass", "End": True, "QueryLanguage": "JSONata"}), "state 'S'.QueryLanguage"),
    (one({"Type": "Pass", "End": True, "Output": {"a": 1}}), "'Output' is JSONata"),
    (one({"Type": "Pass", "End": True, "Assign": {"a": 1}}), "'Assign'"),
    (one({"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True}), "is not supported"),
    (one({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "End": True,
          "Parameters": {"FunctionName": "f"}}), "is not supported"),
    (one({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}), "FunctionName is required"),
    (one({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
          "Parameters": {"FunctionName": "f", "Payload.$": "$", "Body": 1}}), "unknown field 'Body'"),
    (one({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
          "Parameters": {"FunctionName": "f", "InvocationType": "Event"}}), "Parameters.InvocationType"),
    (one({"Type": "Task", "Resource": TASK, "End": True, "HeartbeatSeconds": 5}), "state 'S'.HeartbeatSeconds"),
    (one({"Type": "Task", "Resource": TASK, "End": True, "TimeoutSeconds": 0}), "state 'S'.TimeoutSeconds"),
    (one({"Type": "Task", "Resource": TASK, "End": True, "Retry": [{"ErrorEquals": []}]}), "Retry[0].ErrorEquals"),
    (one({"Type": "Task", "Resource": TASK, "End": True,
          "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]}), "must be the last one"),
    (one({"Type": "Task", "Resource": TASK, "End": True,
          "Retry": [{"ErrorEquals": ["States.ALL", "X"]}]}), "States.ALL must appear alone"),
    (one({"Type": "Task", "Resource": TASK, "End": True,
          "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]}), "BackoffRate"),
    (one({"Type": "Task", "Resource": TASK, "End": True,
          "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}]}), "JitterStrategy"),
    (one({"Type": "Task", "Resource": TASK, "End": True,
          "Catch": [{"ErrorEquals": ["X"], "Next": "Gone"}]}), "Catch[0].Next 'Gone' is not a state"),
    (one({"Type": "Pass", "End": True, "ResultPath": "$.a[*]"}), "must be a reference path"),
    (one({"Type": "Pass", "End": True, "Parameters": {"a.$": 5}}), "the value of 'a.$'"),
    (one({"Type": "Pass", "End": True, "Parameters": {"a.$": "States.Nope()"}}), "unsupported intrinsic"),
    (one({"Type": "Pass", "End": True, "Parameters": {"a.$": "States.Format('x'"}}), "missing ')'"),
    (one({"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEquals": 1, "Next": "S"}]}),
     "invalid value for StringEquals"),
    (one({"Type": "Choice", "Choices": [{"Variable": "$.a", "Next": "S"}]}), "exactly one operator"),
    (one({"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEquals": "x"}]}), "Next is required"),
    (one({"Type": "Choice", "Choices": [{"Not": {"Variable": "$.a", "StringEquals": "x", "Next": "S"},
                                          "Next": "S"}]}), "must not have 'Next'"),
    (one({"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "S"}]}), "JSONata"),
    (one({"Type": "Wait", "End": True}), "exactly one of Seconds"),
    (one({"Type": "Wait", "End": True, "Timestamp": "tomorrow"}), "RFC 3339"),
    (one({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}), "mutually exclusive"),
    (one({"Type": "Parallel", "End": True, "Branches": []}), "Branches must be a non-empty array"),
    (one({"Type": "Parallel", "End": True, "Branches": [{"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}]}),
     "unique"),
    (one({"Type": "Pass", "Next": "S"}), "no terminal state"),
    ({"StartAt": "S", "States": {"S": {"Type": "Pass", "End": True}}, "Extra": 1}, "top level: unknown field"),
])
def test_rejects_with_state_and_field(document: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError) as error:
        load(document)
    assert message in str(error.value)


def test_unresolved_placeholder_is_rejected() -> None:
    with pytest.raises(DefinitionError, match=r"\$\{Missing\}"):
        load_definition(json.dumps(one({"Type": "Pass", "Result": "${Missing}", "End": True})), {"Other": "x"})


def test_accepts_every_supported_construct() -> None:
    document = {"Comment": "c", "StartAt": "T", "TimeoutSeconds": 60, "Version": "1.0", "QueryLanguage": "JSONPath",
                "States": {
                    "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "C",
                          "Parameters": {"FunctionName": "f", "Payload.$": "$", "Qualifier": "live"},
                          "ResultSelector": {"p.$": "$.Payload"}, "ResultPath": "$.r", "OutputPath": "$",
                          "InputPath": "$", "TimeoutSecondsPath": "$.t",
                          "Retry": [{"ErrorEquals": ["X"], "IntervalSeconds": 2, "MaxAttempts": 0,
                                     "BackoffRate": 1.5, "MaxDelaySeconds": 9, "JitterStrategy": "FULL"}],
                          "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F", "ResultPath": "$.e"}]},
                    "C": {"Type": "Choice", "Choices": [{"Variable": "$$.Execution.Name", "IsPresent": True,
                                                         "Next": "P"}], "Default": "F"},
                    "P": {"Type": "Parallel", "Next": "W", "Branches": [
                        {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}]},
                    "W": {"Type": "Wait", "Seconds": 0, "Next": "S"},
                    "S": {"Type": "Succeed"},
                    "F": {"Type": "Fail", "ErrorPath": "$.e.Error", "CausePath": "$$.State.Name"}}}
    machine = load_definition(json.dumps(document))
    assert set(machine.states) == {"T", "C", "P", "W", "S", "F"}
    assert machine.timeout_s == 60
    assert machine.lambda_functions == {"f"}
