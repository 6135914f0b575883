"""Pulumi components of the ML platform (``mlscaffold.stacks``).

A project's ``infra/__main__.py`` needs two names::

    from mlscaffold.stacks import MlPlatform, MlPlatformArgs, platform_config

Components import Pulumi; :mod:`.config` does not, so importing this package lazily loads the
components only when they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import PlatformConfig, StackConfigError, platform_config

__all__ = ["MlPlatform", "MlPlatformArgs", "PlatformConfig", "StackConfigError",
           "platform_config"]

if TYPE_CHECKING:
    from .platform import MlPlatform, MlPlatformArgs


def __getattr__(name: str) -> Any:
    if name in {"MlPlatform", "MlPlatformArgs"}:
        from . import platform

        return getattr(platform, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
