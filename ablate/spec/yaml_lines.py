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
        where = f"{file}:{line}" if file is not None and line is not None else file  # a line needs a file
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


# libyaml's parser where PyYAML has it: several times faster, and it refuses nesting
# beyond 1000 levels instead of overflowing the stack
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StudyLoader(_BaseLoader):
    """SafeLoader that also reads 1e-4 as a number (YAML 1.1 wants 1.0e-4, and a weight
    decay silently read as text would be a poor first experience)."""


_StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))

# Limits that keep reading a study file fast and its memory bounded whatever the file
# holds; the shipped studies are under 4 KiB, 5 levels and 200 values.
MAX_STUDY_BYTES = 1 << 20  # 1 MiB
MAX_VALUES = 1_000_000  # values in the document once every alias is expanded (billion laughs)
MAX_NESTING = 32  # levels of mappings and lists
# what YAML does not allow in a document (PyYAML's Reader.NON_PRINTABLE): NUL and other control characters
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]")


def read_with_lines(path: Path, file: str) -> tuple[object, Source]:
    """The document in the study file at `path` (shown to the user as `file`) and its Source."""
    if not path.exists():
        raise SpecError("no such study file; check the path (shipped studies are under studies/)", file=file)
    if path.is_dir():
        raise SpecError("is a folder; give a study's .yaml file", file=file)
    if not path.is_file():
        raise SpecError("is not a regular file; give a study's .yaml file", file=file)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_STUDY_BYTES + 1)
    except OSError as err:
        raise SpecError(f"cannot be read ({err.strerror}); check its permissions", file=file) from None
    if len(raw) > MAX_STUDY_BYTES:
        raise SpecError(f"is larger than {MAX_STUDY_BYTES >> 20} MiB, the limit of a study file; "
                        "list fewer values (a study names its cells, not its data)", file=file)
    source = Source(file, {})
    data = parse_document(raw, file, source=source)
    if data is None:
        raise SpecError("the file is empty; a study needs 'settings:' and a 'grid:', 'cells:' or 'search:'",
                        file=file, line=1)
    return data, source


def parse_value(text: str, what: str):
    """A value given on the command line (`--set key=VALUE`), read by the study file's rules."""
    return parse_document(text, None, what)


def parse_document(raw: bytes | str, file: str | None, what: str = "the file", source: Source | None = None):
    """The data of one YAML document (None when it is empty), refused with a SpecError
    when it is not UTF-8 text, holds control characters, is recursive, or expands beyond
    the limits. `source`, when given, receives the line of every key and list item."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw[:err.start].count(b"\n") + 1
            raise SpecError(f"not UTF-8 text (byte {raw[err.start]:#04x} at offset {err.start}); "
                            "save it as UTF-8", file=file, line=line) from None
    else:
        text = raw
    bad = _NON_PRINTABLE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise SpecError(f"control character U+{ord(bad.group()):04X} in {what}; YAML allows only printable "
                        "text, remove it", file=file, line=line)
    try:
        loader = _StudyLoader(text)
    except yaml.YAMLError as err:
        raise SpecError(f"invalid YAML: {' '.join(str(err).split())}", file=file) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, file)
        if source is not None:  # before constructing, which merges '<<' keys into the node in place
            _record_lines(source, node)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = " ".join(str(err.problem or err.context or "cannot be read").split())
        if err.context and err.context_mark and err.problem_mark and err.context_mark.line != mark.line:
            problem += f" ({err.context} on line {err.context_mark.line + 1})"
        raise SpecError(f"invalid YAML: {problem}", file=file, line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as err:
        raise SpecError(f"invalid YAML: {' '.join(str(err).split())}", file=file) from None
    finally:
        loader.dispose()
    return data


def _children(node: yaml.Node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_size(root: yaml.Node, file: str | None) -> None:
    """Refuse a recursive alias, aliases that expand the document beyond MAX_VALUES
    values, and nesting deeper than MAX_NESTING, walking each node once (no recursion)."""
    size: dict[int, int] = {}  # node id -> values under it once aliases are expanded
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_VALUES:
                raise SpecError(f"aliases expand it to more than {MAX_VALUES:,} values, the limit of a study; "
                                "write the values out instead of nesting aliases",
                                file=file, line=node.start_mark.line + 1)
            if depth[key] > MAX_NESTING:
                raise SpecError(f"nested more than {MAX_NESTING} levels deep, the limit of a study; "
                                "flatten it", file=file, line=node.start_mark.line + 1)
            continue
        if key in size:
            continue
        if key in on_path:
            raise SpecError("a recursive alias (an anchor used inside itself); a study's values are finite, "
                            "remove the alias", file=file, line=node.start_mark.line + 1)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)


def _record_lines(source: Source, root: yaml.Node) -> None:
    """Fill source.lines for every mapping key and list item under `root`; a key given
    twice in one mapping is an error (PyYAML would keep the last silently). A node that
    an alias repeats is walked once: errors under its copies name the alias's line."""
    seen_nodes: set[int] = set()
    stack = [(root, ())]
    while stack:
        node, path = stack.pop()
        source.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = set()
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                child = path + (key,)
                if key is not None and key != "<<":
                    source.lines[child] = key_node.start_mark.line + 1
                    if key in keys:
                        raise source.error(child, "given twice in the same mapping; keep one")
                    keys.add(key)
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, path + (index,)) for index, item in enumerate(node.value))
