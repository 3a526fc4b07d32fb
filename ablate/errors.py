"""The one base class of every user mistake, and how any error becomes one line. The CLI
prints a UserInputError's message as one line and exits with code 2; anything else is a
bug and keeps its traceback."""

from __future__ import annotations

from .urls import mask_url

ONE_LINE_LIMIT = 500
EXIT_USER_ERROR = 2  # the exit code of every user mistake


class UserInputError(ValueError):
    """Bad input that the user can fix; the message names the problem and the fix."""

    def __init__(self, message: object = ""):
        super().__init__(" ".join(str(message).split()))


def one_line(err: BaseException | str, limit: int = ONE_LINE_LIMIT) -> str:
    """An error, as "Type: message", or a message, on one line, passwords masked, at most
    `limit` characters."""
    if isinstance(err, str):
        text = err
    else:
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    text = " ".join(mask_url(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# pydantic's error types for a number outside a bound: (its context key, the relation)
BOUND_ERRORS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
                "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}


def validation_text(error: dict) -> str:
    """One pydantic error (an entry of `ValidationError.errors()`) as a sentence: a
    validator's own message without pydantic's "Value error, " prefix, a bound as
    "must be >= 1, got 0", otherwise pydantic's own words."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if error["type"] == "finite_number":
        return f"must be a finite number, got {_shown(error.get('input'))}"
    if error["type"] in BOUND_ERRORS:
        key, relation = BOUND_ERRORS[error["type"]]
        limit = error["ctx"][key]
        limit = int(limit) if isinstance(limit, float) and limit.is_integer() else limit
        return f"must be {relation} {limit}, got {_shown(error.get('input'))}"
    return error["msg"]


def _shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)
