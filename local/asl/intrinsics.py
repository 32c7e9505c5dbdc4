"""Intrinsic functions (States.Format, States.Array, ...) of the JSONPath query language: a small parser run at
definition load (so syntax errors are rejected early) and an evaluator run per state."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.asl import jsonpath

MAX_NESTING = 10  # AWS allows up to 10 nested intrinsics in one field
_MAX_STRING_CHARS = 10_000  # Base64Encode/Decode and Hash inputs (intrinsic-functions docs)
_MAX_RANGE_ITEMS = 1000  # ArrayRange result size limit


class IntrinsicError(Exception):
    """An intrinsic that cannot be parsed (load time) or evaluated (run time: States.Runtime)."""


@dataclass(frozen=True)
class Literal:
    value: Any
    raw: str | None = None  # a string literal as written (escapes kept), for States.Format's template


@dataclass(frozen=True)
class PathArg:
    path: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Literal | PathArg | Call, ...]
    text: str


Arg = Literal | PathArg | Call

_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_NAME_RE = re.compile(r"States\.[A-Za-z0-9]+")


def looks_like_intrinsic(text: str) -> bool:
    return text.startswith("States.")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> IntrinsicError:
        return IntrinsicError(f"Invalid intrinsic function {self.text!r} at offset {self.pos}: {why}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def call(self, depth: int) -> Call:
        if depth > MAX_NESTING:
            raise self.fail(f"more than {MAX_NESTING} nested intrinsic functions")
        start = self.pos
        match = _NAME_RE.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a States.* function name")
        name = match.group(0)
        if name not in FUNCTIONS:
            raise self.fail(f"unsupported intrinsic function {name}")
        self.pos = match.end()
        if self.pos >= len(self.text) or self.text[self.pos] != "(":
            raise self.fail("expected '('")
        self.pos += 1
        args: list[Arg] = []
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] == ")":
            self.pos += 1
            return Call(name, tuple(args), self.text[start : self.pos])
        while True:
            self.skip_ws()
            args.append(self.arg(depth))
            self.skip_ws()
            if self.pos >= len(self.text):
                raise self.fail("missing ')'")
            char = self.text[self.pos]
            self.pos += 1
            if char == ")":
                return Call(name, tuple(args), self.text[start : self.pos])
            if char != ",":
                raise self.fail(f"unexpected {char!r}")

    def arg(self, depth: int) -> Arg:
        text = self.text
        if self.pos >= len(text):
            raise self.fail("missing argument")
        char = text[self.pos]
        if char == "'":
            return self.string()
        if char == "$":
            return self.path()
        if text.startswith("States.", self.pos):
            return self.call(depth + 1)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, self.pos):
                self.pos += len(word)
                return Literal(value)
        match = _NUMBER_RE.match(text, self.pos)
        if match is not None:
            self.pos = match.end()
            number = match.group(0)
            return Literal(float(number) if match.group(1) or match.group(2) else int(number))
        raise self.fail(f"unexpected {char!r}")

    def string(self) -> Literal:
        self.pos += 1
        raw: list[str] = []
        value: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                raw.append(self.text[self.pos : self.pos + 2])
                value.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == "'":
                self.pos += 1
                return Literal("".join(value), "".join(raw))
            raw.append(char)
            value.append(char)
            self.pos += 1
        raise self.fail("unterminated string literal")

    def path(self) -> PathArg:
        start = self.pos
        depth = 0
        quote: str | None = None
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quote is not None:
                if char == quote:
                    quote = None
            elif char in "'\"" and depth > 0:
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            self.pos += 1
        path = self.text[start : self.pos].rstrip()
        try:
            jsonpath.validate_path(path)
        except jsonpath.PathError as exc:
            raise self.fail(str(exc)) from exc
        return PathArg(path)


def parse(text: str) -> Call:
    parser = _Parser(text.strip())
    call = parser.call(1)
    parser.skip_ws()
    if parser.pos != len(parser.text):
        raise parser.fail("trailing characters")
    return call


Lookup = Callable[[str], Any]  # resolves a `$...` or `$$...` path argument


def evaluate(call: Call, lookup: Lookup, rng: random.Random) -> Any:
    args = [_eval_arg(arg, lookup, rng) for arg in call.args]
    try:
        return FUNCTIONS[call.name](call, args, rng)
    except IntrinsicError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as exc:
        raise IntrinsicError(f"The function {call.text} had the following error: {exc}") from exc


def _eval_arg(arg: Arg, lookup: Lookup, rng: random.Random) -> Any:
    if isinstance(arg, Literal):
        return arg.value
    if isinstance(arg, PathArg):
        return lookup(arg.path)
    return evaluate(arg, lookup, rng)


def _fail(call: Call, why: str) -> IntrinsicError:
    return IntrinsicError(f"The function {call.text} had the following error: {why}")


def _arity(call: Call, args: list[Any], *counts: int) -> None:
    if len(args) not in counts:
        raise _fail(call, f"expected {' or '.join(map(str, counts))} arguments, got {len(args)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_arg(call: Call, value: Any, what: str) -> int:
    # AWS rounds non-integer numbers for the Math and ArrayRange functions; booleans are not numbers.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(call, f"{what} must be a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(call, f"{what} must be finite")
        return math.floor(value + 0.5)
    return value


def _str_arg(call: Call, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _fail(call, f"{what} must be a string")
    return value


def _list_arg(call: Call, value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(call, f"{what} must be an array")
    return value


def to_json_text(value: Any) -> str:
    """JSON as Step Functions serialises it: compact, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _format_value(call: Call, value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return to_json_text(value)
    raise _fail(call, "States.Format arguments must be strings, numbers, booleans or null")


def _format(call: Call, args: list[Any], _rng: random.Random) -> Any:
    if not args:
        raise _fail(call, "expected a template argument")
    first = call.args[0]
    if not isinstance(first, Literal) or first.raw is None:
        raise _fail(call, "the template must be a string literal")
    template = first.raw
    values = args[1:]
    out: list[str] = []
    used = 0
    i = 0
    while i < len(template):
        char = template[i]
        if char == "\\" and i + 1 < len(template):
            out.append(template[i + 1])
            i += 2
            continue
        if template.startswith("{}", i):
            if used >= len(values):
                raise _fail(call, "more placeholders than arguments")
            out.append(_format_value(call, values[used]))
            used += 1
            i += 2
            continue
        out.append(char)
        i += 1
    if used != len(values):
        raise _fail(call, "more arguments than placeholders")
    return "".join(out)


def _string_to_json(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 1)
    text = _str_arg(call, args[0], "argument")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(call, f"invalid JSON: {exc}") from exc


def _json_to_string(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 1)
    if not isinstance(call.args[0], PathArg):
        raise _fail(call, "argument must be a path")
    return to_json_text(args[0])


def _array(call: Call, args: list[Any], _rng: random.Random) -> Any:
    return list(args)


def _array_partition(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 2)
    items = _list_arg(call, args[0], "first argument")
    size = _int_arg(call, args[1], "chunk size")
    if size <= 0:
        raise _fail(call, "chunk size must be greater than 0")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_contains(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 2)
    items = _list_arg(call, args[0], "first argument")
    return any(_json_equal(item, args[1]) for item in items)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _array_range(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 3)
    start = _int_arg(call, args[0], "start")
    end = _int_arg(call, args[1], "end")
    step = _int_arg(call, args[2], "step")
    if step == 0:
        raise _fail(call, "step must not be 0")
    count = max(0, (end - start) // step + 1)
    if count > _MAX_RANGE_ITEMS:
        raise _fail(call, f"the result has more than {_MAX_RANGE_ITEMS} items")
    return [start + i * step for i in range(count)]


def _array_get_item(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 2)
    items = _list_arg(call, args[0], "first argument")
    index = _int_arg(call, args[1], "index")
    if index < 0 or index >= len(items):
        raise _fail(call, f"index {index} out of bounds")
    return items[index]


def _array_length(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 1)
    return len(_list_arg(call, args[0], "argument"))


def _array_unique(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 1)
    out: list[Any] = []
    for item in _list_arg(call, args[0], "argument"):
        if not any(_json_equal(item, seen) for seen in out):
            out.append(item)
    return out


def _base64_encode(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 1)
    text = _str_arg(call, args[0], "argument")
    if len(text) > _MAX_STRING_CHARS:
        raise _fail(call, f"input longer than {_MAX_STRING_CHARS} characters")
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _base64_decode(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 1)
    text = _str_arg(call, args[0], "argument")
    if len(text) > _MAX_STRING_CHARS:
        raise _fail(call, f"input longer than {_MAX_STRING_CHARS} characters")
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(call, f"invalid base64 input: {exc}") from exc


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 2)
    data = args[0]
    text = data if isinstance(data, str) else to_json_text(data)
    if len(text) > _MAX_STRING_CHARS:
        raise _fail(call, f"input longer than {_MAX_STRING_CHARS} characters")
    algorithm = _str_arg(call, args[1], "algorithm")
    if algorithm not in _HASHES:
        raise _fail(call, f"unsupported algorithm {algorithm!r}; use one of {', '.join(_HASHES)}")
    return hashlib.new(_HASHES[algorithm], text.encode("utf-8")).hexdigest()


def _json_merge(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 3)
    left, right, deep = args
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise _fail(call, "the first two arguments must be JSON objects")
    if deep is not False:
        raise _fail(call, "only shallow merging (false) is supported")
    return {**left, **right}


def _math_random(call: Call, args: list[Any], rng: random.Random) -> Any:
    _arity(call, args, 2, 3)
    start = _int_arg(call, args[0], "start")
    end = _int_arg(call, args[1], "end")
    if end <= start:
        raise _fail(call, "end must be greater than start")
    seeded = len(args) == 3
    source = random.Random(_int_arg(call, args[2], "seed")) if seeded else rng  # noqa: S311
    return source.randrange(start, end)  # start inclusive, end exclusive, as documented


_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _math_add(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 2)
    a = _int_arg(call, args[0], "first argument")
    b = _int_arg(call, args[1], "second argument")
    for value in (a, b):
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise _fail(call, "arguments must be between -2147483648 and 2147483647")
    return a + b


def _string_split(call: Call, args: list[Any], _rng: random.Random) -> Any:
    _arity(call, args, 2)
    text = _str_arg(call, args[0], "first argument")
    delimiters = _str_arg(call, args[1], "delimiter")
    if not delimiters:
        raise _fail(call, "delimiter must not be empty")
    # Each character of the second argument is a delimiter and empty tokens are dropped, as AWS's examples show.
    return [token for token in re.split("[" + re.escape(delimiters) + "]", text) if token]


def _uuid(call: Call, args: list[Any], rng: random.Random) -> Any:
    _arity(call, args, 0)
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


FUNCTIONS: dict[str, Callable[[Call, list[Any], random.Random], Any]] = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": _json_to_string,
    "States.Array": _array,
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _array_contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": _array_length,
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _base64_encode,
    "States.Base64Decode": _base64_decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": _uuid,
}
