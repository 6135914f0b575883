"""mlscaffold: scaffold ML projects on AWS and Kubernetes.

The public API is small: build a :class:`ProjectSpec`, then :func:`create_project`.
Everything else is private to the package. Imports here stay lazy so that
``mlscaffold --help`` does not pay for pydantic, Copier or Pulumi.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"
# the distribution on package indexes ("mlscaffold" on PyPI is another project); the command
# and the import name stay mlscaffold
DISTRIBUTION = "mlscaffold-kit"

__all__ = [
    "MlscaffoldError",
    "ProjectResult",
    "ProjectSpec",
    "UsageError",
    "__version__",
    "create_project",
    "load_spec",
]

if TYPE_CHECKING:
    from .errors import MlscaffoldError, UsageError
    from .project import ProjectResult, create_project
    from .spec import ProjectSpec, load_spec

_LAZY = {
    "MlscaffoldError": "errors",
    "UsageError": "errors",
    "ProjectResult": "project",
    "create_project": "project",
    "ProjectSpec": "spec",
    "load_spec": "spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
