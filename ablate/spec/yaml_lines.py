"""Reading a study file: its data plus the line of every key and list item, so that every
mistake is a SpecError naming the file, the line and the key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import UserInputError
from .wording import did_you_mean, kind_of


class SpecError(UserInputError):
    """A mistake in a study file, in one line: "FILE:LINE: key 'KEY': problem; fix"."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None, kind: str = "key"):
        self.file, self.line, self.key = file, line, key
        where = ":".join(str(p) for p in (file, line) if p is not None)
        text = " ".join(message.split())
        if key is not None:
            text = f"{kind} '{key}': {text}"
        super().__init__(f"{where}: {text}" if where else text)


Location = tuple  # where a value sits in the document: ("grid", "aux_depth", 2)


@dataclass
class Source:
    file: str
    lines: dict  # Location -> 1-based line

    def error(self, path: Location, message: str) -> SpecError:
        if path[:1] == ("override",):
            return SpecError(message, file=self.file, key=path[1], kind="override")
        at = path
        while at not in self.lines and at:
            at = at[:-1]
        return SpecError(message, file=self.file, line=self.lines.get(at), key=_key_label(path))

    def line(self, path: Location) -> int | None:
        return self.lines.get(path)

    def mapping(self, data, path: Location, what: str) -> dict:
        if not isinstance(data, dict):
            raise self.error(path, f"{what} must be a mapping (key: value lines), got {kind_of(data)}")
        return data

    def check_keys(self, data: dict, path: Location, allowed, what: str) -> None:
        for key in data:
            if key not in allowed:
                raise self.error(path + (key,), f"unknown {what} key" + did_you_mean(key, allowed))


def _key_label(path: Location) -> str | None:
    """The dotted key a user sees: settings' keys bare, list positions left to the line."""
    names = [p for p in path if isinstance(p, str)]
    if names[:1] == ["settings"] and len(names) > 1:
        names = names[1:]
    return ".".join(names) or None


class _StudyLoader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-4 as a number (YAML 1.1 wants 1.0e-4, and a weight
    decay silently read as text would be a poor first experience)."""


_StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def read_with_lines(path: Path, file: str) -> tuple[object, Source]:
    """The document in the study file at `path` (shown to the user as `file`) and its Source."""
    if not path.exists():
        raise SpecError("no such study file; check the path (shipped studies are under studies/)", file=file)
    if path.is_dir():
        raise SpecError("is a folder; give a study's .yaml file", file=file)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"not UTF-8 text ({err.reason} at byte {err.start})", file=file) from None
    loader = _StudyLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "cannot be read"
        if err.context and err.context_mark and err.problem_mark and err.context_mark.line != mark.line:
            problem += f" ({err.context} on line {err.context_mark.line + 1})"
        raise SpecError(f"invalid YAML: {problem}", file=file, line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as err:
        raise SpecError(f"invalid YAML: {err}", file=file) from None
    finally:
        loader.dispose()
    if data is None:
        raise SpecError("the file is empty; a study needs 'settings:' and a 'grid:', 'cells:' or 'search:'",
                        file=file, line=1)
    source = Source(file, {})
    _record_lines(source, node, (), set())
    return data, source


def _record_lines(source: Source, node: yaml.Node, path: Location, active: set) -> None:
    """Fill source.lines for every mapping key and list item under `node`; a key given
    twice in one mapping is an error (PyYAML would keep the last silently)."""
    source.lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in active:  # a recursive alias
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            child = path + (key,)
            if key is not None and key != "<<":
                source.lines[child] = key_node.start_mark.line + 1
                if key in seen:
                    raise source.error(child, "given twice in the same mapping; keep one")
                seen.add(key)
            _record_lines(source, value_node, child, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(source, item, path + (index,), active)
    active.discard(id(node))
