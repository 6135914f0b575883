"""Small file helpers: atomic writes, checksums, an inter-process lock."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from .errors import DataError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt


def utc_now() -> str:
    """Current UTC time as an ISO-8601 string with seconds precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _temporary_sibling(path: Path) -> tuple[int, str]:
    """Create a new empty file beside `path`: (descriptor, name).

    Made with mode 0o666 less the umask, as open() makes files, not mkstemp's 0o600: a model
    promoted here must stay readable by the serving image's non-root user once copied in.
    """
    for _ in range(tempfile.TMP_MAX):
        name = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def temporary_directory(parent: Path, prefix: str) -> Path:
    """Create a new empty directory in `parent` named `prefix` + a random part.

    Made with mode 0o777 less the umask, as mkdir makes directories, not mkdtemp's 0o700: a
    model version renamed from it must stay readable by the serving image's non-root user.
    """
    for _ in range(tempfile.TMP_MAX):
        path = Path(parent) / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir(0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {parent}")


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through a temporary sibling, fsync it and rename it over `path`."""
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


def to_json(data: Any) -> str:
    """Pretty JSON; NaN/inf become null (so every parser reads it), numpy values Python ones."""
    return json.dumps(_finite(data), indent=2, default=_plain) + "\n"


def atomic_write_json(path: Path, data: Any) -> Path:
    """Atomically write `data` as pretty JSON."""
    return atomic_write_text(path, to_json(data))


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file, or return `default` when it does not exist."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); restore it from a backup") from None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) across processes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        else:  # pragma: no cover - Windows
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            else:  # pragma: no cover - Windows
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """json.dumps fallback for numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
