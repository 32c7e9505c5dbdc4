"""Differential test: every corpus scenario gives the same status, output, error, cause and sequence of Lambda
calls on the local runtime and on moto's Step Functions engine. Known moto deviations from AWS are listed in
MOTO_DIFFERS with the reason; there the runtime follows AWS and the test checks the AWS behaviour instead."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local.asl.differential import Result, Script, run_local, run_moto

CORPUS = Path(__file__).resolve().parent / "corpus"

PRODUCT = {"comment": "Example for Parameters.",
           "product": {"details": {"color": "blue", "size": "small", "material": "cotton"},
                       "availability": "in stock", "sku": "2317", "cost": "$23"}}
COMBINED = {"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
            "lambda": {"who": "AWS Step Functions"}}
INTRINSICS_INPUT = {"name": "Arnav", "escaped": "{\"foo\": \"bar\"}", "obj": {"a": 1, "b": [1, 2]},
                    "more": {"b": 3, "c": 4}, "id": 123456, "nums": [1, 2, 3, 4, 5, 6, 7, 8, 9],
                    "dups": [1, 2, 3, 3, 3, 4], "plain": "Data to encode", "csv": "1,2,3"}

# (corpus file, scenario id, input, handler plan)
SCENARIOS: list[tuple[str, str, Any, dict[str, list[str | None]]]] = [
    ("doc_paths", "docs-example", COMBINED, {}),
    ("doc_parameters", "docs-example", PRODUCT, {}),
    ("retry_catch", "succeeds", {"order": 1}, {}),
    ("retry_catch", "retried-then-succeeds", {"order": 2}, {"Charge": ["ErrorA", "ErrorB", None]}),
    ("retry_catch", "retries-exhausted-caught", {"order": 3}, {"Charge": ["ErrorA"]}),
    ("retry_catch", "shared-retrier-count", {"order": 4}, {"Charge": ["ErrorA", "ErrorB", "ErrorA"]}),
    ("retry_catch", "max-attempts-zero", {"order": 5}, {"Charge": ["ErrorC"]}),
    ("retry_catch", "states-all-retrier", {"order": 6}, {"Charge": ["ErrorD", None]}),
    ("retry_catch", "states-all-catcher", {"order": 7}, {"Charge": ["ErrorE"]}),
    ("retry_catch", "compensation-fails", {"order": 8}, {"Charge": ["ErrorA"], "Refund": ["ErrorZ"]}),
    ("choice_operators", "not", {"type": "Public", "value": 1}, {}),
    ("choice_operators", "numeric-equals", {"type": "Private", "value": 0}, {}),
    ("choice_operators", "and", {"type": "Private", "value": 22}, {}),
    ("choice_operators", "or-string-matches", {"type": "Private", "value": 5, "name": "vip-ann", "flag": False}, {}),
    ("choice_operators", "path-variant", {"type": "Private", "value": 50, "limit": 40, "name": "a", "flag": False}, {}),
    ("choice_operators", "timestamp", {"type": "Private", "value": 5, "limit": 40, "name": "a", "flag": False,
                                       "when": "2019-06-01T00:00:00Z"}, {}),
    ("choice_operators", "is-present", {"type": "Private", "value": 5, "limit": 40, "name": "a", "flag": False,
                                        "when": "2021-06-01T00:00:00Z", "optional": None}, {}),
    ("choice_operators", "string-compare", {"type": "Private", "value": 5, "limit": 40, "name": "zed",
                                            "flag": False, "when": "2021-06-01T00:00:00Z"}, {}),
    ("choice_operators", "default-fail", {"type": "Private", "value": 5, "limit": 40, "name": "abc",
                                          "flag": False, "when": "2021-06-01T00:00:00Z"}, {}),
    ("intrinsics", "docs-examples", INTRINSICS_INPUT, {}),
    ("parallel", "both-branches", {"customer": "c-1"}, {}),
    ("parallel", "branch-fails-caught", {"customer": "c-2"}, {"PhoneFinder": ["ErrorA"]}),
    ("saga_compensation", "happy-path", {"payment_id": "p-1"}, {}),
    ("saga_compensation", "transient-retried", {"payment_id": "p-2"}, {"Reserve": ["TransientError", None]}),
    ("saga_compensation", "authorize-declined", {"payment_id": "p-3"}, {"Authorize": ["CardDeclined"]}),
    ("saga_compensation", "authorize-transient-exhausted", {"payment_id": "p-4"},
     {"Authorize": ["TransientError"]}),
    ("saga_compensation", "reserve-fails", {"payment_id": "p-5"}, {"Reserve": ["InsufficientFunds"]}),
    ("context_object", "retry-count", {"k": "v"}, {"Echo": ["ErrorA", "ErrorA", None]}),
    ("lambda_invoke_result", "whole-response", {"k": 1}, {}),
    ("runtime_error", "missing-parameter-path", {"payment": {}}, {}),
    ("runtime_error", "path-present", {"payment": {"id": "p"}}, {"Echo": ["ErrorA", None]}),
    ("timeouts_and_fail", "ok", {"reason": "r"}, {}),
    ("timeouts_and_fail", "task-failed-caught", {"reason": "declined by issuer"}, {"Echo": ["CardDeclined"]}),
]

# Where moto's engine is known to differ from AWS: (file, scenario) -> (reason, the AWS behaviour the local
# runtime must show instead). Other recorded deviations, handled by normalising rather than listing: moto returns a
# top-level string output unquoted (differential.py) and re-serialises Lambda error causes compactly (below).
MOTO_DIFFERS: dict[tuple[str, str], tuple[str, Callable[[dict[str, Any]], bool]]] = {
    ("lambda_invoke_result", "whole-response"): (
        "moto's lambda:invoke result keeps only StatusCode/ExecutedVersion/Payload; AWS also returns "
        "SdkHttpMetadata and SdkResponseMetadata (developer guide, 'Invoke an AWS Lambda function' output)",
        lambda local: set(local["output"]["invoke"]) == {"ExecutedVersion", "Payload", "SdkHttpMetadata",
                                                         "SdkResponseMetadata", "StatusCode"}),
    ("runtime_error", "missing-parameter-path"): (
        "moto lets States.ALL catch States.Runtime; AWS documents that States.ALL never catches it and that "
        "it always fails the execution (concepts-error-handling, States.ALL and States.Runtime)",
        lambda local: local["status"] == "FAILED" and local["error"] == "States.Runtime" and not local["calls"]),
}


def normalise_cause(cause: str | None) -> Any:
    """Lambda error causes: AWS passes the function's error payload through as the runtime wrote it (Python's
    json.dumps, with spaces); moto re-serialises it compactly. Compare the documents, minus the request id."""
    if cause is None:
        return None
    try:
        document = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    if isinstance(document, dict):
        document.pop("requestId", None)
    return document


def normalise_event(value: Any) -> Any:
    """Error objects a Catch put into the data carry the same Lambda cause: normalise them alike."""
    if isinstance(value, dict):
        return {key: normalise_cause(sub) if key == "Cause" and isinstance(sub, str) else normalise_event(sub)
                for key, sub in value.items()}
    if isinstance(value, list):
        return [normalise_event(sub) for sub in value]
    return value


# Parallel branches run concurrently (on AWS too): whether a sibling of a failing branch gets to call its
# function before the failure stops it is timing, not semantics. Those calls are left out of the comparison.
RACY_CALLS: dict[tuple[str, str], set[str]] = {("parallel", "branch-fails-caught"): {"AddressFinder"}}


def comparable(result: Result, script: Script, parallel: bool, racy: set[str]) -> dict[str, Any]:
    calls = [(name, json.dumps(normalise_event(event), sort_keys=True)) for name, event in script.calls
             if name not in racy]
    return {"status": result.status, "output": normalise_event(result.output), "error": result.error,
            "cause": normalise_cause(result.cause), "calls": sorted(calls) if parallel else calls}


@pytest.mark.parametrize(("corpus", "scenario", "payload", "plan"), SCENARIOS,
                         ids=[f"{c}-{s}" for c, s, _, _ in SCENARIOS])
def test_local_runtime_agrees_with_moto(monkeypatch: pytest.MonkeyPatch, corpus: str, scenario: str,
                                        payload: Any, plan: dict[str, list[str | None]]) -> None:
    definition = (CORPUS / f"{corpus}.asl.json").read_text()
    local_script, moto_script = Script(dict(plan)), Script(dict(plan))
    racy = RACY_CALLS.get((corpus, scenario), set())
    parallel = corpus == "parallel"
    local = comparable(run_local(definition, payload, local_script), local_script, parallel, racy)
    moto = comparable(run_moto(monkeypatch, definition, payload, moto_script), moto_script, parallel, racy)
    if (corpus, scenario) in MOTO_DIFFERS:
        reason, aws_behaviour = MOTO_DIFFERS[corpus, scenario]
        assert local != moto, f"listed as a moto difference but both agree: {reason}"
        assert aws_behaviour(local), reason
        return
    assert local == moto
    assert local["calls"] or corpus in {"choice_operators", "intrinsics"}


def test_every_corpus_file_has_a_scenario() -> None:
    assert {p.name.removesuffix(".asl.json") for p in CORPUS.glob("*.asl.json")} == {c for c, *_ in SCENARIOS}
