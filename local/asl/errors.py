"""Error names of the States Language and the exception that carries a state's error through the interpreter."""

from __future__ import annotations

ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
RUNTIME = "States.Runtime"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
BRANCH_FAILED = "States.BranchFailed"

# Terminal errors: AWS documents that States.ALL never matches them (concepts-error-handling, "States.ALL").
_NOT_MATCHED_BY_ALL = frozenset({RUNTIME, DATA_LIMIT_EXCEEDED})


class StatesError(Exception):
    """An error a state reports: a name (matched by Retry/Catch ErrorEquals) and an optional cause string."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause is not None else error)
        self.error = error
        self.cause = cause

    def as_output(self) -> dict[str, str]:
        """The error output a Catcher hands to its ResultPath: {"Error": ..., "Cause": ...}."""
        out = {"Error": self.error}
        if self.cause is not None:
            out["Cause"] = self.cause
        return out


class StatesRuntimeError(StatesError):
    """States.Runtime: never retried nor caught, it always fails the execution (AWS error-handling docs)."""

    def __init__(self, cause: str) -> None:
        super().__init__(RUNTIME, cause)


def error_matches(error_equals: list[str], error: str) -> bool:
    """Whether a Retrier's or Catcher's ErrorEquals matches error, with AWS's wildcard rules:
    States.ALL matches everything but the terminal errors; States.TaskFailed matches everything but
    States.Timeout and the terminal errors."""
    if error == RUNTIME:
        return False  # documented as never retriable nor catchable, even by its own name
    for name in error_equals:
        if name == error:
            return True
        if name == ALL and error not in _NOT_MATCHED_BY_ALL:
            return True
        if name == TASK_FAILED and error not in _NOT_MATCHED_BY_ALL and error != TIMEOUT:
            return True
    return False
