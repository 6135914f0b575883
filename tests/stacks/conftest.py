"""Fixtures for component tests: platform configs per environment, and the mocked runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlscaffold.graph import ResourceGraph, run_under_mocks
from mlscaffold.spec import validate_spec
from mlscaffold.stacks.config import PlatformConfig, platform_config


def make_config(environment: str = "dev", overrides: dict[str, Any] | None = None,
                **spec_values: Any) -> PlatformConfig:
    """A platform config for `environment` of a spec (serving, feature_store... as keywords)."""
    spec = validate_spec({"name": "demo", **spec_values})
    return platform_config(spec, environment, overrides)


@pytest.fixture
def config_for() -> Callable[..., PlatformConfig]:
    return make_config


@pytest.fixture
def run_mocked() -> Callable[..., ResourceGraph]:
    """Run a function declaring resources under mocks (project 'demo', stack 'dev')."""

    def run(program: Callable[[], Any], stack: str = "dev", **kwargs: Any) -> ResourceGraph:
        return run_under_mocks(program, project="demo", stack=stack, **kwargs)

    return run
