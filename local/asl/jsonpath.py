"""JSONPath as Step Functions uses it: Paths (may select many values) and Reference Paths (one node, only `.name`
and `[n]` / `['name']` steps), plus writing a value at a Reference Path (ResultPath)."""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

from jsonpath_ng.ext.parser import parse as _parse_ext

_NAME = r"[^\s.\[\]'\"()*@$,?:]+"
_STEP_RE = re.compile(rf"\.({_NAME})|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class PathError(Exception):
    """A path that is malformed or selects nothing; the caller turns it into the state's error."""


Step = str | int


@functools.lru_cache(maxsize=4096)
def reference_steps(path: str) -> tuple[Step, ...] | None:
    """The steps of a Reference Path (`$`, `$.a.b`, `$.a[0]`, `$['a b']`), or None when path is not one."""
    if not path.startswith("$") or path.startswith("$$"):
        return None
    steps: list[Step] = []
    pos = 1
    while pos < len(path):
        match = _STEP_RE.match(path, pos)
        if match is None:
            return None
        name, index, quoted1, quoted2 = match.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(int(index))
        else:
            steps.append(quoted1 if quoted1 is not None else quoted2)
        pos = match.end()
    return tuple(steps)


def is_reference_path(path: str) -> bool:
    return reference_steps(path) is not None


@functools.lru_cache(maxsize=1024)
def _compiled(path: str) -> Any:
    try:
        return _parse_ext(path)
    except Exception as exc:  # jsonpath-ng raises several exception types for syntax errors
        raise PathError(f"Invalid JSONPath {path!r}: {exc}") from exc


def validate_path(path: str) -> None:
    """Raise PathError when path is not a syntactically valid Path."""
    if not path.startswith("$"):
        raise PathError(f"Invalid JSONPath {path!r}: must start with '$'")
    if reference_steps(path) is None:
        _compiled(path[1:] if path.startswith("$$") else path)


def _get_reference(data: Any, steps: tuple[Step, ...], path: str) -> Any:
    node = data
    for step in steps:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise PathError(f"No results for path: {path}")
            node = node[step]
        else:
            if not isinstance(node, dict) or step not in node:
                raise PathError(f"No results for path: {path}")
            node = node[step]
    return node


def select(data: Any, path: str) -> Any:
    """Apply a Path to data. A Reference Path yields its single node; an indefinite path (wildcards, recursive
    descent, filters, slices, unions) yields the list of matches, as AWS's Jayway-based engine does."""
    steps = reference_steps(path)
    if steps is not None:
        return _get_reference(data, steps, path)
    matches = _compiled(path).find(data)
    return [m.value for m in matches]


def exists(data: Any, path: str) -> bool:
    try:
        select(data, path)
    except PathError:
        return False
    return True


def put(data: Any, path: str, value: Any) -> Any:
    """ResultPath: a copy of data with value placed at the Reference Path path, creating missing objects.
    Raises PathError when an existing node on the way is not an object (States.ResultPathMatchFailure)."""
    steps = reference_steps(path)
    if steps is None:
        raise PathError(f"ResultPath {path!r} is not a reference path")
    if not steps:
        return value
    root = copy.deepcopy(data)
    node = root
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise PathError(f"Unable to apply ResultPath {path!r}: no array element {step}")
            if last:
                node[step] = value
            else:
                node = node[step]
            continue
        if not isinstance(node, dict):
            raise PathError(f"Unable to apply ResultPath {path!r}: {step!r} is not inside a JSON object")
        if last:
            node[step] = value
        else:
            if step not in node:
                node[step] = {}
            node = node[step]
    return root
