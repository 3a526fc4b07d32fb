"""The one base class of every user mistake: the CLI prints its message as one line and
exits with code 2. Anything else is a bug and keeps its traceback."""


class UserInputError(ValueError):
    """Bad input that the user can fix; the message names the problem and the fix."""


def validation_text(error: dict) -> str:
    """One pydantic error as a sentence: a validator's own message without pydantic's
    "Value error, " prefix, otherwise pydantic's."""
    return str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
