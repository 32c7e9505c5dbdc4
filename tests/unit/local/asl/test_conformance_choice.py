"""Choice state: every comparison operator, the Path variants, And/Or/Not and the type tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.local.asl.support import Harness, output


def choose(rule: dict[str, Any], data: Any) -> str:
    """Run a Choice with one rule: 'yes' when it matches, 'no' (Default) otherwise."""
    machine = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "yes", "End": True},
        "No": {"Type": "Pass", "Result": "no", "End": True}}}
    return str(output(Harness().run(machine, data)))


def test_spec_choice_example() -> None:
    # States Language spec, Choice State example (Not/StringEquals, NumericEquals, And of two numeric rules).
    machine = {"StartAt": "ChoiceStateX", "States": {
        "ChoiceStateX": {"Type": "Choice", "Choices": [
            {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
            {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
            {"And": [{"Variable": "$.value", "NumericGreaterThanEquals": 20},
                     {"Variable": "$.value", "NumericLessThan": 30}], "Next": "ValueInTwenties"}],
            "Default": "DefaultState"},
        "Public": {"Type": "Pass", "Result": "Public", "End": True},
        "ValueIsZero": {"Type": "Pass", "Result": "ValueIsZero", "End": True},
        "ValueInTwenties": {"Type": "Pass", "Result": "ValueInTwenties", "End": True},
        "DefaultState": {"Type": "Fail", "Cause": "No Matches!"}}}
    harness = Harness()
    assert output(harness.run(machine, {"type": "Private", "value": 22})) == "ValueInTwenties"
    assert output(harness.run(machine, {"type": "Public", "value": 22})) == "Public"
    assert output(harness.run(machine, {"type": "Private", "value": 0})) == "ValueIsZero"
    failed = harness.run(machine, {"type": "Private", "value": 31})
    assert (failed["status"], failed["cause"]) == ("FAILED", "No Matches!")


@pytest.mark.parametrize(("op", "value", "data", "expected"), [
    ("StringEquals", "abc", "abc", "yes"), ("StringEquals", "abc", "abd", "no"),
    ("StringEquals", "1", 1, "no"),  # a type mismatch is false, not an error
    ("StringLessThan", "b", "a", "yes"), ("StringLessThan", "a", "a", "no"),
    ("StringGreaterThan", "a", "b", "yes"), ("StringLessThanEquals", "a", "a", "yes"),
    ("StringGreaterThanEquals", "b", "a", "no"),
    ("NumericEquals", 1, 1.0, "yes"), ("NumericEquals", 1, True, "no"),
    ("NumericLessThan", 5, 4.5, "yes"), ("NumericGreaterThan", 5, 5, "no"),
    ("NumericLessThanEquals", 5, 5, "yes"), ("NumericGreaterThanEquals", 5, 4, "no"),
    ("BooleanEquals", True, True, "yes"), ("BooleanEquals", False, 0, "no"),
    ("TimestampEquals", "2016-03-14T01:59:00Z", "2016-03-14T02:59:00+01:00", "yes"),
    ("TimestampLessThan", "2016-03-14T01:59:00Z", "2016-03-14T01:58:59Z", "yes"),
    ("TimestampGreaterThan", "2016-03-14T01:59:00Z", "2016-03-14T01:59:00.5Z", "yes"),
    ("TimestampLessThanEquals", "2016-03-14T01:59:00Z", "2016-03-14T01:59:00Z", "yes"),
    ("TimestampGreaterThanEquals", "2016-03-14T01:59:00Z", "2016-03-14T01:58:00Z", "no"),
    ("TimestampEquals", "2016-03-14T01:59:00Z", "not a time", "no"),
    ("StringMatches", "log-*.txt", "log-2024.txt", "yes"), ("StringMatches", "log-*.txt", "log-.csv", "no"),
    ("StringMatches", "a\\*b", "a*b", "yes"), ("StringMatches", "a\\*b", "axb", "no"),
])
def test_comparison_operators(op: str, value: Any, data: Any, expected: str) -> None:
    assert choose({"Variable": "$.v", op: value}, {"v": data}) == expected


@pytest.mark.parametrize(("op", "left", "right", "expected"), [
    ("StringEqualsPath", "x", "x", "yes"), ("StringLessThanPath", "a", "b", "yes"),
    ("StringGreaterThanPath", "a", "b", "no"), ("StringLessThanEqualsPath", "b", "b", "yes"),
    ("StringGreaterThanEqualsPath", "c", "b", "yes"),
    ("NumericEqualsPath", 3, 3, "yes"), ("NumericLessThanPath", 2, 3, "yes"),
    ("NumericGreaterThanPath", 2, 3, "no"), ("NumericLessThanEqualsPath", 3, 3, "yes"),
    ("NumericGreaterThanEqualsPath", 4, 3, "yes"), ("BooleanEqualsPath", True, False, "no"),
    ("TimestampEqualsPath", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "yes"),
    ("TimestampLessThanPath", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", "yes"),
    ("TimestampGreaterThanPath", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", "no"),
    ("TimestampLessThanEqualsPath", "2021-01-01T00:00:00Z", "2021-01-01T00:00:00Z", "yes"),
    ("TimestampGreaterThanEqualsPath", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", "no"),
])
def test_path_variants_compare_two_input_values(op: str, left: Any, right: Any, expected: str) -> None:
    assert choose({"Variable": "$.a", op: "$.b"}, {"a": left, "b": right}) == expected


@pytest.mark.parametrize(("op", "data", "expected"), [
    ("IsNull", None, "yes"), ("IsNull", 0, "no"), ("IsString", "s", "yes"), ("IsString", 1, "no"),
    ("IsNumeric", 1.5, "yes"), ("IsNumeric", "1", "no"), ("IsNumeric", True, "no"),
    ("IsBoolean", False, "yes"), ("IsBoolean", "false", "no"),
    ("IsTimestamp", "2016-03-14T01:59:00Z", "yes"), ("IsTimestamp", "2016-03-14", "no"),
])
def test_type_tests(op: str, data: Any, expected: str) -> None:
    assert choose({"Variable": "$.v", op: True}, {"v": data}) == expected
    assert choose({"Variable": "$.v", op: False}, {"v": data}) == ("no" if expected == "yes" else "yes")


def test_is_present_does_not_fail_on_missing_paths() -> None:
    assert choose({"Variable": "$.v", "IsPresent": True}, {"v": None}) == "yes"
    assert choose({"Variable": "$.v", "IsPresent": True}, {}) == "no"
    assert choose({"Variable": "$.v", "IsPresent": False}, {}) == "yes"


def test_or_and_not_combine() -> None:
    rule = {"Or": [{"Variable": "$.a", "NumericEquals": 1},
                   {"Not": {"Variable": "$.b", "StringEquals": "x"}}]}
    assert choose(rule, {"a": 1, "b": "x"}) == "yes"
    assert choose(rule, {"a": 2, "b": "y"}) == "yes"
    assert choose(rule, {"a": 2, "b": "x"}) == "no"


def test_missing_variable_is_a_runtime_error() -> None:
    machine = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "Y"}], "Default": "Y"},
        "Y": {"Type": "Succeed"}}}
    response = Harness().run(machine, {})
    assert (response["status"], response["error"]) == ("FAILED", "States.Runtime")
    assert "Invalid path '$.v'" in response["cause"]


def test_no_match_without_default_fails_with_no_choice_matched() -> None:
    machine = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "Y"}]},
        "Y": {"Type": "Succeed"}}}
    response = Harness().run(machine, {"v": 2})
    assert (response["status"], response["error"]) == ("FAILED", "States.NoChoiceMatched")


def test_choice_applies_input_and_output_path_and_reads_context() -> None:
    machine = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "InputPath": "$.inner", "OutputPath": "$.keep",
              "Choices": [{"Variable": "$$.Execution.Input.flag", "BooleanEquals": True, "Next": "Y"}],
              "Default": "N"},
        "Y": {"Type": "Succeed"}, "N": {"Type": "Fail", "Error": "Wrong"}}}
    response = Harness().run(machine, {"flag": True, "inner": {"keep": {"k": 1}, "drop": 2}})
    assert output(response) == {"k": 1}
