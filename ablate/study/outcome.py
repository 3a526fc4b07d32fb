"""What became of one claimed trial, as worker processes report it to the parent."""

from __future__ import annotations

from dataclasses import dataclass

from .text import duration


@dataclass(frozen=True)
class TrialOutcome:
    """What became of one claimed trial (sent from worker processes to the parent)."""

    key: str
    label: str  # "auglocal d=3 · s1"
    number: int  # Optuna trial number
    status: str  # "finished" | "failed" | "pruned" | "duplicate" | "interrupted" | "lost"
    reason: str = ""
    value: float | None = None  # the (first) objective
    seconds: float = 0.0
    resumed_from_epoch: int = 0
    value_name: str = "objective"  # what `value` is (an accuracy, a fraction, is shown in percent)

    def line(self, done: int, total: int) -> str:
        head = f"[{done}/{total}] {self.label} ({self.key}, trial {self.number})"
        resumed = f", resumed after epoch {self.resumed_from_epoch}" if self.resumed_from_epoch else ""
        if self.status == "finished":
            value = "" if self.value is None else f": {self._value_text()}"
            return f"{head} finished{value} in {duration(self.seconds)}{resumed}"
        return f"{head} {self.status}: {self.reason}"

    def _value_text(self) -> str:
        if self.value_name.endswith("_acc"):
            return f"{self.value_name} {100 * self.value:.1f}%"
        return f"{self.value_name} {self.value:.4g}"
