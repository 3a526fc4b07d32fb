"""The one base class of every user mistake: the CLI prints its message as one line and
exits with code 2. Anything else is a bug and keeps its traceback."""


class UserInputError(ValueError):
    """Bad input that the user can fix; the message names the problem and the fix."""
