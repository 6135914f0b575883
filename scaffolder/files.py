"""Writes that matter: through a temporary sibling, then renamed into place.

Temporary files and folders get the modes open() and mkdir() give (0o666 and 0o777 less the
umask), not the 0o600 and 0o700 of tempfile's mkstemp and mkdtemp: a project, a promoted model
and its registry are copied into the serving image as they are, and read there by a non-root
user, so they must be readable by others whenever the umask allows it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import OutputExists

__all__ = ["atomic_write", "atomic_write_text", "refuse_to_replace", "temporary_directory"]


def _temporary_sibling(path: Path) -> tuple[int, str]:
    """Create a new empty file beside `path` with the umask's mode: (descriptor, name)."""
    for _ in range(tempfile.TMP_MAX):
        name = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def temporary_directory(parent: Path, prefix: str) -> Path:
    """Create a new empty directory in `parent` named `prefix` + a random part, with the
    umask's mode (what mkdir gives), to be renamed into place once complete."""
    for _ in range(tempfile.TMP_MAX):
        path = Path(parent) / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir(0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {parent}")


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through a temporary sibling, fsync it and rename it over `path`: readers
    see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _temporary_sibling(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


HEAD_BYTES = 64 * 1024  # what refuse_to_replace reads of an existing file


def refuse_to_replace(path: Path, written_here: Callable[[bytes], bool], kind: str,
                      fix: str) -> None:
    """Raise OutputExists if `path` exists and is neither empty nor, by its first HEAD_BYTES
    (`written_here(head)`), a `kind` this command wrote before: running a command again
    replaces its own output, but a typo in an output option must not replace a data set (or any
    other file) of the team's, which is not read whole. `fix` ends the message: what to do
    instead."""
    path = Path(path)
    if path.is_dir():
        raise OutputExists(f"{path} is a directory; {fix}")
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except FileNotFoundError:
        return
    if head.strip() and not written_here(head):
        raise OutputExists(f"{path} exists and is not a {kind}; {fix}")
