"""How mlscaffold is distributed, and what each use of it installs.

``pip install mlscaffold-kit`` gives the whole tool. A project's serving and training image needs
only the lifecycle runtime: it installs the distribution without dependencies plus the project's
package, whose dependencies are the runtime requirements below (requirements/runtime.txt, which
pyproject.toml also reads: one list for both).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from . import DISTRIBUTION, __version__

__all__ = ["DISTRIBUTION", "pinned", "runtime_requirements"]


def pinned() -> str:
    """The requirement that pins mlscaffold to this very version."""
    return f"{DISTRIBUTION}=={__version__}"


@cache
def runtime_requirements() -> tuple[str, ...]:
    """The lifecycle runtime's requirements (PEP 508 strings), in file order."""
    text = resources.files(__package__).joinpath("requirements", "runtime.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#"))
