"""Intrinsic functions, with the inputs and results of the developer guide's "Intrinsic functions" examples."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.local.asl.support import Harness, output, pass_machine


def evaluate(expression: str, data: Any) -> Any:
    response = Harness().run(pass_machine({"Type": "Pass", "Parameters": {"r.$": expression}}), data)
    return output(response)["r"]


@pytest.mark.parametrize(("expression", "data", "expected"), [
    ("States.Format('Hello, my name is {}.', $.name)", {"name": "Arnav"}, "Hello, my name is Arnav."),
    ("States.Format('{} is {} and {}', $.a, $.b, $.c)", {"a": "x", "b": 1.5, "c": True}, "x is 1.5 and true"),
    ("States.Format('braces \\{\\} and quote \\' {}', $.a)", {"a": 1}, "braces {} and quote ' 1"),
    ("States.StringToJson($.escapedJsonString)", {"escapedJsonString": "{\"foo\": \"bar\"}"}, {"foo": "bar"}),
    ("States.JsonToString($.dataset)", {"dataset": {"id": 1, "name": "myName"}}, "{\"id\":1,\"name\":\"myName\"}"),
    ("States.Array($.Id)", {"Id": 123456}, [123456]),
    ("States.Array('a', 1, $.x)", {"x": None}, ["a", 1, None]),
    ("States.ArrayPartition($.inputArray,4)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]},
     [[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
    ("States.ArrayContains($.inputArray, $.lookingFor)",
     {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5}, True),
    ("States.ArrayContains($.inputArray, $.lookingFor)", {"inputArray": [1, 2], "lookingFor": 5}, False),
    ("States.ArrayRange(1, 9, 2)", {}, [1, 3, 5, 7, 9]),
    ("States.ArrayRange(10, 0, -5)", {}, [10, 5, 0]),
    ("States.ArrayGetItem($.inputArray, $.index)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5}, 6),
    ("States.ArrayLength($.inputArray)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, 9),
    ("States.ArrayUnique($.inputArray)", {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}, [1, 2, 3, 4]),
    ("States.Base64Encode($.input)", {"input": "Data to encode"}, "RGF0YSB0byBlbmNvZGU="),
    ("States.Base64Decode($.base64)", {"base64": "RGF0YSB0byBlbmNvZGU="}, "Data to encode"),
    ("States.Hash($.Data, $.Algorithm)", {"Data": "input data", "Algorithm": "SHA-1"},
     "aaff4a450a104cd177d28d18d74485e8cae074b7"),
    ("States.JsonMerge($.json1, $.json2, false)",
     {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}},
     {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}),
    ("States.MathAdd($.value1, $.step)", {"value1": 111, "step": -1}, 110),
    ("States.StringSplit($.inputString, $.splitter)", {"inputString": "1,2,3,4,5", "splitter": ","},
     ["1", "2", "3", "4", "5"]),
    ("States.StringSplit($.inputString, $.splitter)", {"inputString": "This.is+a,test=string",
                                                        "splitter": ".+,="}, ["This", "is", "a", "test", "string"]),
    ("States.ArrayLength(States.StringSplit(States.Format('{}-{}', $.a, $.b), '-'))", {"a": "x", "b": "y"}, 2),
])
def test_documented_examples(expression: str, data: Any, expected: Any) -> None:
    assert evaluate(expression, data) == expected


def test_math_random_is_within_bounds_and_seedable() -> None:
    value = evaluate("States.MathRandom($.start, $.end)", {"start": 1, "end": 999})
    assert isinstance(value, int) and 1 <= value < 999
    seeded = [evaluate("States.MathRandom(1, 1000, 42)", {}) for _ in range(2)]
    assert seeded[0] == seeded[1]


def test_uuid_is_a_version_4_uuid() -> None:
    value = evaluate("States.UUID()", {})
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value)


@pytest.mark.parametrize(("expression", "data"), [
    ("States.StringToJson($.s)", {"s": "{not json"}),
    ("States.ArrayGetItem($.a, 3)", {"a": [1]}),
    ("States.Format('{} {}', $.a)", {"a": 1}),
    ("States.MathAdd($.a, 1)", {"a": "one"}),
    ("States.Hash($.a, 'SHA-999')", {"a": "x"}),
    ("States.Base64Decode($.a)", {"a": "***"}),
    ("States.Array($.missing)", {}),
])
def test_evaluation_failures_are_runtime_errors(expression: str, data: Any) -> None:
    response = Harness().run(pass_machine({"Type": "Pass", "Parameters": {"r.$": expression}}), data)
    assert (response["status"], response["error"]) == ("FAILED", "States.Runtime")


def test_context_path_arguments() -> None:
    assert evaluate("States.Format('state {}', $$.State.Name)", {}) == "state S"
