"""How the study machinery writes errors and durations: one short line each."""

from __future__ import annotations

import math

from ..tracking import mask_url


def one_line(err: BaseException | str) -> str:
    """An error (or message) on one line, passwords masked, at most 500 characters."""
    text = err if isinstance(err, str) else (f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
    text = " ".join(mask_url(str(text)).split())
    return text if len(text) <= 500 else text[:497] + "..."


def duration(seconds: float | None) -> str:
    """"42s", "3m07s", "2h05m"; "?" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
