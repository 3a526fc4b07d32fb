"""How values and suggestions read in a SpecError: as the user wrote them in YAML."""

from __future__ import annotations

import difflib


def show(value) -> str:
    """A value as the user wrote it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    return str(value)


def kind_of(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {show(value)}"


def _closest(name, options) -> str | None:
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=1)
    return close[0] if close else None


def did_you_mean(name, options) -> str:
    close = _closest(name, options)
    return f"; did you mean '{close}'?" if close else f"; choose from {', '.join(options)}"


def unknown_choice(what: str, value, options) -> str:
    text = f"unknown {what} {show(value)}; choose one of {', '.join(options)}"
    close = _closest(value, options)
    return text + (f" (did you mean '{close}'?)" if close else "")
