"""Choice rules: compiled at load into predicates over (state input, context object)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from local.asl import jsonpath
from local.asl.errors import StatesRuntimeError
from local.asl.template import resolve_path

Predicate = Callable[[Any, Any], bool]


class ChoiceRuleError(Exception):
    """A Choice rule that is not valid ASL; raised at load time."""


_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (uppercase T, explicit zone) as Step Functions accepts it, or None."""
    if not isinstance(value, str) or not _TIMESTAMP_RE.match(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: isinstance(a, str) and isinstance(b, str) and op(a, b)


def _numeric_cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: _is_number(a) and _is_number(b) and op(a, b)


def _timestamp_cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        left, right = parse_timestamp(a), parse_timestamp(b)
        return left is not None and right is not None and op(left, right)

    return compare


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    return bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    return bool(a >= b)


_COMPARATORS: dict[str, tuple[Callable[[Any, Any], bool], Callable[[Any], bool]]] = {
    # operator -> (comparison, validity check of the literal operand)
    "StringEquals": (_string_cmp(_eq), lambda v: isinstance(v, str)),
    "StringLessThan": (_string_cmp(_lt), lambda v: isinstance(v, str)),
    "StringGreaterThan": (_string_cmp(_gt), lambda v: isinstance(v, str)),
    "StringLessThanEquals": (_string_cmp(_le), lambda v: isinstance(v, str)),
    "StringGreaterThanEquals": (_string_cmp(_ge), lambda v: isinstance(v, str)),
    "NumericEquals": (_numeric_cmp(_eq), _is_number),
    "NumericLessThan": (_numeric_cmp(_lt), _is_number),
    "NumericGreaterThan": (_numeric_cmp(_gt), _is_number),
    "NumericLessThanEquals": (_numeric_cmp(_le), _is_number),
    "NumericGreaterThanEquals": (_numeric_cmp(_ge), _is_number),
    "BooleanEquals": (lambda a, b: isinstance(a, bool) and isinstance(b, bool) and a == b,
                      lambda v: isinstance(v, bool)),
    "TimestampEquals": (_timestamp_cmp(_eq), lambda v: parse_timestamp(v) is not None),
    "TimestampLessThan": (_timestamp_cmp(_lt), lambda v: parse_timestamp(v) is not None),
    "TimestampGreaterThan": (_timestamp_cmp(_gt), lambda v: parse_timestamp(v) is not None),
    "TimestampLessThanEquals": (_timestamp_cmp(_le), lambda v: parse_timestamp(v) is not None),
    "TimestampGreaterThanEquals": (_timestamp_cmp(_ge), lambda v: parse_timestamp(v) is not None),
}

_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsString": lambda v: isinstance(v, str),
    "IsNumeric": _is_number,
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: parse_timestamp(v) is not None,
}

OPERATORS = frozenset(
    {*_COMPARATORS, *(f"{name}Path" for name in _COMPARATORS), *_TYPE_TESTS, "IsPresent", "StringMatches"}
)
_COMBINATORS = frozenset({"And", "Or", "Not"})


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    # StringMatches: '*' matches any run of characters; '\*' is a literal '*' and '\\' a literal backslash.
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "*" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _read_variable(path: str, data: Any, context: Any) -> Any:
    try:
        return resolve_path(path, data, context)
    except jsonpath.PathError:
        raise StatesRuntimeError(
            f"Invalid path '{path}': The choice state's condition path references an invalid value."
        ) from None


def _check_path(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or jsonpath.reference_steps(value if not value.startswith("$$")
                                                              else value[1:]) is None:
        raise ChoiceRuleError(f"{where}: {field} must be a reference path, got {value!r}")
    return value


def compile_rule(rule: Any, where: str, top_level: bool) -> Predicate:
    if not isinstance(rule, dict):
        raise ChoiceRuleError(f"{where}: a choice rule must be a JSON object")
    allowed = {"Variable", "Comment", *OPERATORS, *_COMBINATORS}
    if top_level:
        allowed.add("Next")
    for key in rule:
        if key == "Next" and not top_level:
            raise ChoiceRuleError(f"{where}: a nested choice rule must not have 'Next'")
        if key == "Condition":
            raise ChoiceRuleError(f"{where}: 'Condition' is JSONata; only the JSONPath query language is supported")
        if key == "Assign":
            raise ChoiceRuleError(f"{where}: 'Assign' (workflow variables) is not supported by the local runtime")
        if key not in allowed:
            raise ChoiceRuleError(f"{where}: unknown field {key!r}")
    operators = [key for key in rule if key in OPERATORS or key in _COMBINATORS]
    if len(operators) != 1:
        raise ChoiceRuleError(f"{where}: a choice rule needs exactly one operator, found {operators or 'none'}")
    op = operators[0]
    operand = rule[op]
    if op in _COMBINATORS:
        if "Variable" in rule:
            raise ChoiceRuleError(f"{where}: {op} must not have 'Variable'")
        if op == "Not":
            inner = compile_rule(operand, f"{where}.Not", top_level=False)
            return lambda data, ctx: not inner(data, ctx)
        if not isinstance(operand, list) or not operand:
            raise ChoiceRuleError(f"{where}: {op} must be a non-empty array of rules")
        rules = [compile_rule(sub, f"{where}.{op}[{i}]", top_level=False) for i, sub in enumerate(operand)]
        if op == "And":
            return lambda data, ctx: all(r(data, ctx) for r in rules)
        return lambda data, ctx: any(r(data, ctx) for r in rules)
    if "Variable" not in rule:
        raise ChoiceRuleError(f"{where}: {op} needs 'Variable'")
    variable = _check_path(rule["Variable"], where, "Variable")
    if op == "IsPresent":
        if not isinstance(operand, bool):
            raise ChoiceRuleError(f"{where}: IsPresent must be true or false")
        want = operand
        return lambda data, ctx: _present(variable, data, ctx) == want
    if op in _TYPE_TESTS:
        if not isinstance(operand, bool):
            raise ChoiceRuleError(f"{where}: {op} must be true or false")
        test, want = _TYPE_TESTS[op], operand
        return lambda data, ctx: test(_read_variable(variable, data, ctx)) == want
    if op == "StringMatches":
        if not isinstance(operand, str):
            raise ChoiceRuleError(f"{where}: StringMatches must be a string")
        regex = _wildcard_regex(operand)
        return lambda data, ctx: _matches(regex, _read_variable(variable, data, ctx))
    if op.endswith("Path"):
        compare = _COMPARATORS[op[: -len("Path")]][0]
        other = _check_path(operand, where, op)
        return lambda data, ctx: compare(_read_variable(variable, data, ctx), _read_variable(other, data, ctx))
    compare, valid = _COMPARATORS[op]
    if not valid(operand):
        raise ChoiceRuleError(f"{where}: invalid value for {op}: {operand!r}")
    return lambda data, ctx: compare(_read_variable(variable, data, ctx), operand)


def _present(path: str, data: Any, context: Any) -> bool:
    try:
        resolve_path(path, data, context)
    except jsonpath.PathError:
        return False
    return True


def _matches(regex: re.Pattern[str], value: Any) -> bool:
    return isinstance(value, str) and regex.fullmatch(value) is not None
