"""Pulumi components of the ML platform (``mlscaffold.stacks``).

A project's ``infra/__main__.py`` needs four names, its in-cluster program
``infra/cluster/__main__.py`` two more::

    from mlscaffold.stacks import MlPlatform, MlPlatformArgs, platform_config, project_spec
    from mlscaffold.stacks import ClusterWorkloads, ClusterWorkloadsArgs, platform_config

Components import Pulumi, :mod:`.config` pydantic; importing this package loads neither until a
name is used, so the modules of plain facts (:mod:`.regions`, :mod:`.model_keys`) stay cheap to
import (the CLI's ``--help`` reads them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ClusterWorkloads", "ClusterWorkloadsArgs", "MlPlatform", "MlPlatformArgs",
           "PlatformConfig", "StackConfigError", "platform_config", "project_spec"]

if TYPE_CHECKING:
    from .config import PlatformConfig, StackConfigError, platform_config
    from .platform import MlPlatform, MlPlatformArgs
    from .program import project_spec
    from .workloads import ClusterWorkloads, ClusterWorkloadsArgs

# public name -> the module that defines it (imported on first use: it loads Pulumi or pydantic)
_LAZY = {"PlatformConfig": "config", "StackConfigError": "config", "platform_config": "config",
         "MlPlatform": "platform", "MlPlatformArgs": "platform",
         "ClusterWorkloads": "workloads", "ClusterWorkloadsArgs": "workloads",
         "project_spec": "program"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
