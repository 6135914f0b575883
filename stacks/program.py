"""What a project's infra program reads of its project: the spec, ``../mlscaffold.yaml``.

Under ``pulumi up`` the program reads and validates the file itself. When mlscaffold runs the
program offline (``preview``, ``check``, ``cost``, ``preflight``), the command has already
loaded the spec once, and hands that over rather than have every stack parse the file again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["project_spec", "spec_provided"]

# project folder -> the spec the running mlscaffold command loaded (set while it runs programs)
_PROVIDED: dict[Path, Any] = {}


def project_spec(project: str | Path) -> Any:
    """The validated spec (a :class:`mlscaffold.spec.ProjectSpec`) of the project in folder
    `project`: the one mlscaffold provided for it, else read from its ``mlscaffold.yaml``."""
    root = Path(project).resolve()
    if root in _PROVIDED:
        return _PROVIDED[root]
    from mlscaffold.spec import SPEC_FILENAME, load_spec

    return load_spec(root / SPEC_FILENAME)


@contextmanager
def spec_provided(project: Path, spec: Any) -> Iterator[None]:
    """While the block runs, :func:`project_spec` of `project` is `spec`, not the file."""
    root = Path(project).resolve()
    previous = _PROVIDED.get(root)
    _PROVIDED[root] = spec
    try:
        yield
    finally:
        if previous is None:
            del _PROVIDED[root]
        else:
            _PROVIDED[root] = previous
