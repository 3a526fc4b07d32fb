"""A small registry per family (rules, datasets, backbones), timm-style: entries by name,
in the order they were registered, and one line naming the choices for an unknown name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from .errors import UserInputError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Named entries of one kind. `registry[name]` raises `error` (a UserInputError) that
    lists the registered names when `name` is unknown."""

    def __init__(self, kind: str, entries: Iterable[T] | Mapping[str, T] = (), *,
                 error: type[UserInputError] = UserInputError):
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}
        for name, entry in (entries.items() if isinstance(entries, Mapping) else ((e.name, e) for e in entries)):
            self.register(entry, name)

    def register(self, entry: T, name: str | None = None) -> T:
        """Add an entry under `name` (default: its `name`); a name can be registered once."""
        name = entry.name if name is None else name
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.error(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"
