"""Reading what the handlers wrote on stdout (pytest's capsys): Powertools' JSON log lines and CloudWatch EMF
documents, as CloudWatch Logs would read them from a function's log stream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

EMF_ON = {"POWERTOOLS_METRICS_DISABLED": "false"}  # off Lambda EMF is written only when asked for


def _documents(out: str) -> list[dict[str, Any]]:
    found = []
    for raw in out.splitlines():
        line = raw.strip()
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                found.append(parsed)
    return found


def log_lines(out: str) -> list[dict[str, Any]]:
    return [d for d in _documents(out) if "_aws" not in d]


@dataclass(frozen=True)
class Emitted:
    namespace: str
    name: str
    unit: str
    dimensions: dict[str, str]
    values: list[float]


def metrics(out: str) -> list[Emitted]:
    """Every metric of every EMF document, with the dimensions CloudWatch files it under."""
    emitted = []
    for doc in _documents(out):
        for directive in doc.get("_aws", {}).get("CloudWatchMetrics", []):
            for dimension_set in directive["Dimensions"]:
                for definition in directive["Metrics"]:
                    value = doc[definition["Name"]]
                    emitted.append(Emitted(directive["Namespace"], definition["Name"], definition["Unit"],
                                           {key: doc[key] for key in dimension_set},
                                           value if isinstance(value, list) else [value]))
    return emitted


def named(out: str, name: str) -> list[Emitted]:
    return [m for m in metrics(out) if m.name == name]
