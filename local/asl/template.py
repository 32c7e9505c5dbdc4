"""Payload templates (Parameters, ResultSelector): `.$` keys take a Path, a context-object path (`$$`) or an
intrinsic function; everything else is copied as written. Compiled at load, rendered per state."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from local.asl import intrinsics, jsonpath
from local.asl.errors import StatesRuntimeError


class TemplateError(Exception):
    """A template that is not valid ASL; raised at load time."""


@dataclass(frozen=True)
class _Literal:
    value: Any


@dataclass(frozen=True)
class _Path:
    path: str
    field: str


@dataclass(frozen=True)
class _Intrinsic:
    call: intrinsics.Call
    field: str


@dataclass(frozen=True)
class _Object:
    items: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class _Array:
    items: tuple[Node, ...]


Node = _Literal | _Path | _Intrinsic | _Object | _Array


def compile_template(value: Any, where: str) -> Node:
    if isinstance(value, dict):
        items: list[tuple[str, Node]] = []
        seen: set[str] = set()
        for key, sub in value.items():
            if key.endswith(".$"):
                out_key = key[:-2]
                items.append((out_key, _compile_dynamic(key, sub, where)))
            else:
                out_key = key
                items.append((key, compile_template(sub, f"{where}.{key}")))
            if out_key in seen:
                raise TemplateError(f"{where}: the field {out_key!r} is given twice (with and without '.$')")
            seen.add(out_key)
        return _Object(tuple(items))
    if isinstance(value, list):
        return _Array(tuple(compile_template(sub, f"{where}[{i}]") for i, sub in enumerate(value)))
    return _Literal(value)


def _compile_dynamic(key: str, value: Any, where: str) -> Node:
    if not isinstance(value, str):
        raise TemplateError(f"{where}: the value of {key!r} must be a JSONPath or intrinsic function string")
    if intrinsics.looks_like_intrinsic(value):
        try:
            return _Intrinsic(intrinsics.parse(value), key)
        except intrinsics.IntrinsicError as exc:
            raise TemplateError(f"{where}: field {key!r}: {exc}") from exc
    try:
        jsonpath.validate_path(value)
    except jsonpath.PathError as exc:
        raise TemplateError(f"{where}: field {key!r}: {exc}") from exc
    return _Path(value, key)


def is_static(node: Node) -> bool:
    return isinstance(node, _Literal)


def literal_value(node: Node) -> Any:
    """The value of a template with no `.$` anywhere (used to read FunctionName at load), else None."""
    if isinstance(node, _Literal):
        return node.value
    return None


def field_value(node: Node, key: str) -> tuple[bool, Any]:
    """For an object template: (True, literal) when key is a literal field, (False, None) otherwise."""
    if isinstance(node, _Object):
        for name, sub in node.items:
            if name == key and isinstance(sub, _Literal):
                return True, sub.value
    return False, None


def field_names(node: Node) -> list[str]:
    """The output keys of an object template (`.$` stripped); empty for anything else."""
    return [name for name, _ in node.items] if isinstance(node, _Object) else []


def has_field(node: Node, key: str) -> bool:
    return isinstance(node, _Object) and any(name == key for name, _ in node.items)


def resolve_path(path: str, data: Any, context: Any) -> Any:
    """A `$...` path against data, a `$$...` path against the context object."""
    if path.startswith("$$"):
        return jsonpath.select(context, "$" + path[2:])
    return jsonpath.select(data, path)


def render(node: Node, data: Any, context: Any, rng: random.Random) -> Any:
    if isinstance(node, _Literal):
        return node.value
    if isinstance(node, _Object):
        return {key: render(sub, data, context, rng) for key, sub in node.items}
    if isinstance(node, _Array):
        return [render(sub, data, context, rng) for sub in node.items]
    if isinstance(node, _Path):
        try:
            return resolve_path(node.path, data, context)
        except jsonpath.PathError:
            source = context if node.path.startswith("$$") else data
            raise StatesRuntimeError(
                f"The JSONPath '{node.path}' specified for the field '{node.field}' could not be found "
                f"in the input '{intrinsics.to_json_text(source)}'"
            ) from None

    def lookup(path: str) -> Any:
        try:
            return resolve_path(path, data, context)
        except jsonpath.PathError:
            raise intrinsics.IntrinsicError(
                f"The function {node.call.text} had the following error: the JSONPath '{path}' could not be found"
            ) from None

    try:
        return intrinsics.evaluate(node.call, lookup, rng)
    except intrinsics.IntrinsicError as exc:
        raise StatesRuntimeError(str(exc)) from None
