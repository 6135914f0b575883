"""Open the project a lifecycle command runs in: its validated spec and the team's hooks."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ProjectConfig, load_project

if TYPE_CHECKING:
    from ..spec import ProjectSpec
    from .hooks import ProjectHooks


@dataclass(frozen=True)
class Project:
    config: ProjectConfig
    spec: ProjectSpec
    hooks: ProjectHooks
    warnings: list[str] = field(default_factory=list)


def open_project(root: Path | None = None, *, hooks: Collection[str] | None = None) -> Project:
    """Find (or take) the project, validate its mlscaffold.yaml and import its hooks: all of them,
    or the modules named in `hooks` (``()`` for none).

    The team's custom metrics become selectable for the rest of the process. ``warnings`` says
    when the rendered files no longer match the spec (answers changed since the last render).
    """
    from ..spec import answers_drift
    from .hooks import ProjectHooks, load_hooks
    from .metrics import use_custom_metrics

    config, spec = load_project(root)
    loaded = (load_hooks(config.root, config.package, hooks) if hooks is None or hooks
              else ProjectHooks(config.root))
    use_custom_metrics(loaded.metrics())
    drift = answers_drift(config.root, spec)
    return Project(config, spec, loaded, [drift] if drift else [])
