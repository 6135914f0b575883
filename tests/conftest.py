"""Shared fixtures: the CLI in-process, and the bundled blueprint's option matrix."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlscaffold.cli import cli

from .tools import jinja_memo

REPO = Path(__file__).resolve().parents[1]
BLUEPRINT = REPO / "blueprints" / "ml-project"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def _run(args: list[str], input: str | None = None) -> CliResult:
    result = CliRunner().invoke(cli, args, input=input, prog_name="mlscaffold")
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def run_cli() -> Callable[..., CliResult]:
    """Run `mlscaffold ARGS` in-process; returns exit code, stdout and stderr."""
    return _run


def blueprint_questions() -> dict:
    """The bundled blueprint's own copier.yml questions: its first YAML document (the second
    includes the shared CI facts, templates/ci/copier-ci.yml)."""
    return next(yaml.safe_load_all((BLUEPRINT / "copier.yml").read_text()))


def blueprint_choices(question: str) -> list[str]:
    """The choices of a question in the bundled blueprint's copier.yml (the option matrix)."""
    return list(blueprint_questions()[question]["choices"])


def pytest_configure(config: pytest.Config) -> None:
    """mlscaffold's cache folder (the empty MLflow store new projects start from,
    store_template.py) is one for the run's workers and the commands they start, not the
    user's. Jinja's compilations are memoized across the run's renders (tools/jinja_memo.py)."""
    jinja_memo.install()
    os.environ.setdefault("MLSCAFFOLD_CACHE_DIR", os.path.join(
        tempfile.gettempdir(), f"mlscaffold-test-cache-{os.getuid()}"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tier first, in its own order: with one worker per core, the long tests then run
    beside the many short ones instead of leaving one worker alone at the end of the run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

