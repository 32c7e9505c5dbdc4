"""Per-state-transition overhead of the local ASL runtime (saga/asl), measured side by side with calling the same
handlers directly in a loop. Prints medians over several runs and the ratio runtime / direct.

    .venv/bin/python bench/asl_bench.py [--states 50] [--runs 7] [--executions 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.asl import LocalStepFunctions
from local.asl.lambda_invoke import LambdaContext

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


def step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A trivial step handler: the cost measured is the runtime's, not the handler's."""
    return {"payment_id": event["payment_id"], "n": event.get("n", 0) + 1}


def task_chain(count: int, optimized: bool) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for i in range(count):
        state: dict[str, Any] = {"Type": "Task", "ResultPath": "$.r"}
        if optimized:
            state |= {"Resource": "arn:aws:states:::lambda:invoke",
                      "Parameters": {"FunctionName": f"{ARN}step", "Payload.$": "$"},
                      "ResultSelector": {"n.$": "$.Payload.n"}}
        else:
            state |= {"Resource": f"{ARN}step"}
        state |= {"Next": f"S{i + 1}"} if i < count - 1 else {"End": True}
        states[f"S{i}"] = state
    return {"StartAt": "S0", "States": states}


def pass_chain(count: int) -> dict[str, Any]:
    states = {f"S{i}": {"Type": "Pass", "ResultPath": "$.r", "Result": i,
                        **({"Next": f"S{i + 1}"} if i < count - 1 else {"End": True})} for i in range(count)}
    return {"StartAt": "S0", "States": states}


def time_runtime(sfn: LocalStepFunctions, arn: str, executions: int) -> float:
    payload = json.dumps({"payment_id": "123"})
    start = time.perf_counter()
    for _ in range(executions):
        response = sfn.start_sync_execution(stateMachineArn=arn, input=payload)
        assert response["status"] == "SUCCEEDED", response
    return time.perf_counter() - start


def time_direct(count: int, executions: int) -> float:
    context = LambdaContext(function_name="step", invoked_function_arn=f"{ARN}step", aws_request_id="bench",
                            deadline_monotonic_s=float("inf"), monotonic=time.monotonic)
    start = time.perf_counter()
    for _ in range(executions):
        event: dict[str, Any] = {"payment_id": "123"}
        for _ in range(count):
            event = step(event, context)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--states", type=int, default=50, help="states per execution")
    parser.add_argument("--runs", type=int, default=7, help="repetitions; medians are reported")
    parser.add_argument("--executions", type=int, default=20, help="executions per repetition")
    args = parser.parse_args()
    sfn = LocalStepFunctions(lambda name: step, max_workers=4)
    machines = {
        "Task (bare Lambda ARN)": task_chain(args.states, optimized=False),
        "Task (lambda:invoke + ResultSelector)": task_chain(args.states, optimized=True),
        "Pass (no handler)": pass_chain(args.states),
    }
    arns = {label: sfn.create_state_machine(name=f"bench{i}", definition=json.dumps(machine))["stateMachineArn"]
            for i, (label, machine) in enumerate(machines.items())}
    transitions = args.states * args.executions
    time_runtime(sfn, arns["Task (bare Lambda ARN)"], 2)  # warm-up: imports, thread pool, caches
    direct_runs = []
    runtime_runs: dict[str, list[float]] = {label: [] for label in machines}
    for _ in range(args.runs):  # interleaved so drift affects both sides alike
        direct_runs.append(time_direct(args.states, args.executions))
        for label, arn in arns.items():
            runtime_runs[label].append(time_runtime(sfn, arn, args.executions))
    direct_us = statistics.median(direct_runs) / transitions * 1e6
    print(f"{args.states} states x {args.executions} executions x {args.runs} runs (medians), "
          f"Python {sys.version.split()[0]}")
    print(f"  direct handler call:                      {direct_us:9.2f} us per call")
    for label, runs in runtime_runs.items():
        per_us = statistics.median(runs) / transitions * 1e6
        print(f"  runtime, {label:38s} {per_us:9.2f} us per transition  "
              f"(overhead {per_us - direct_us:8.2f} us, ratio {per_us / direct_us:7.1f}x direct)")
    sfn.close()


if __name__ == "__main__":
    main()
