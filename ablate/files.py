"""Writing files so that a crash never leaves a half-written one: every write goes to a
temporary file of its own beside the target and replaces the target in one rename; a set
of files (a report) is written into a temporary folder and moved in once all is written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write to; on leaving the block it replaces
    `path` (or is removed, if the block raised). Concurrent writers never share one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


@contextlib.contextmanager
def staged_folder(path: str | Path) -> Iterator[Path]:
    """A fresh empty folder beside `path` to write into. When the block ends without an
    error, every file written there replaces its namesake in `path` (created if need be);
    the temporary folder is removed either way, so what `path` held stays whole until
    the new files are all there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield stage
        for written in sorted(stage.rglob("*")):
            if written.is_file():
                target = path / written.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(written, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
