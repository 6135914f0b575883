"""Fixtures: real projects made by mlscaffold (one per task), and the lifecycle commands run
through the real `mlscaffold` CLI.

A project is rendered once per task and session with mlscaffold.project.create_project (no git);
tests that write get a copy (shutil.copytree is much faster than rendering). A trained project
(one quick experiment, exp-001) is made once per task and session too and is read-only; tests
that change it take a copy.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlscaffold import catalog
from mlscaffold.cli import cli
from mlscaffold.lifecycle.metrics import use_custom_metrics
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

TASKS = tuple(catalog.TASKS)
SHORT = {task: task.split("-")[0] for task in TASKS}  # binary, multiclass, regression
QUICK_TRAIN_SECONDS = 3
# how long a test waits for a server or a process at most: a guard against hangs, not a deadline
PATIENCE_SECONDS = 180


@dataclass
class Result:
    code: int
    out: str
    err: str


def invoke(*args: object) -> Result:
    """`mlscaffold ARGS` in-process: the real Click group, its error map and exit codes."""
    result = CliRunner().invoke(cli, [str(arg) for arg in args], prog_name="mlscaffold")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug, not an error the CLI reports: show its traceback
    return Result(result.exit_code, result.stdout, result.stderr)


def run_cli(project: Path, command: str, *args: object) -> Result:
    """`mlscaffold COMMAND --project PROJECT ARGS` in-process."""
    return invoke(command, "--project", project, *args)


def assert_error(result: Result, code: int, *fragments: str) -> None:
    """One line on stderr starting with 'error: ', the exit code, no traceback."""
    assert result.code == code, result.out + result.err
    assert result.err.startswith("error: "), result.err
    assert result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in result.err, result.err


def python_m(*args: object, env: dict | None = None, **options) -> subprocess.Popen:
    """`python -m mlscaffold ARGS` as a user runs it."""
    return subprocess.Popen([sys.executable, "-m", "mlscaffold", *map(str, args)],
                            text=True, env={**os.environ, **(env or {})}, **options)


def copy_project(source: Path, destination: Path) -> Path:
    """A copy of a project with its experiments and models, without bytecode caches."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def spec_path(project: Path) -> Path:
    return project / "mlscaffold.yaml"


def read_spec(project: Path) -> dict:
    return yaml.safe_load(spec_path(project).read_text())


def set_config(project: Path, **changes) -> None:
    """Change keys of a project's mlscaffold.yaml (None removes a key), and the same answers of
    its .copier-answers.yml as `mlscaffold update` would (else commands warn that they differ)."""
    config = read_spec(project)
    answers_path = project / ".copier-answers.yml"
    answers = yaml.safe_load(answers_path.read_text()) if answers_path.is_file() else None
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
            if isinstance(answers, dict) and key in answers:
                answers[key] = value
    spec_path(project).write_text(yaml.safe_dump(config, sort_keys=False))
    if isinstance(answers, dict):
        answers_path.write_text(yaml.safe_dump(answers, sort_keys=False))


def package_dir(project: Path) -> Path:
    """src/<package>/, where the team's hooks live."""
    (package,) = (project / "src").iterdir()
    return package


def wait_for(condition: Callable[[], bool], failure: Callable[[], str]) -> None:
    """Poll `condition` until it holds; fail with `failure()` after PATIENCE_SECONDS."""
    give_up = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        assert time.monotonic() < give_up, failure()
        time.sleep(0.1)


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _isolated_hooks():
    """Each test starts without another project's src/ on sys.path or its custom metrics."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    use_custom_metrics(())


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> Callable[[str], Path]:
    """rendered(task): the project `mlscaffold new` makes for `task`. Read-only."""
    made: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in made:
            name = f"lc-{SHORT[task]}"
            spec = validate_spec({"name": name, "task": task, "ci": "none"})
            destination = tmp_path_factory.mktemp(f"rendered-{SHORT[task]}") / name
            made[task] = create_project(destination, spec, git=False).path
        return made[task]

    return get


@pytest.fixture(scope="session")
def trained(rendered, tmp_path_factory) -> Callable[[str], Path]:
    """trained(task): a rendered project with one quick experiment, exp-001. Read-only."""
    made: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in made:
            source = rendered(task)
            root = copy_project(source, tmp_path_factory.mktemp(f"trained-{SHORT[task]}")
                                / source.name)
            result = run_cli(root, "train", "--time", QUICK_TRAIN_SECONDS)
            assert result.code == 0, result.err
            made[task] = root
        return made[task]

    return get


@pytest.fixture
def make_project(rendered, trained, tmp_path) -> Callable[..., Path]:
    """make_project(task, with_experiment=False): a writable copy of the rendered project of
    `task` (default binary-classification), or of its trained one."""
    numbers = itertools.count(1)

    def make(task: str = "binary-classification", *, with_experiment: bool = False) -> Path:
        source = trained(task) if with_experiment else rendered(task)
        return copy_project(source, tmp_path / f"copy-{next(numbers)}" / source.name)

    return make


@pytest.fixture
def project(make_project) -> Path:
    """A writable binary-classification project without experiments."""
    return make_project()


@pytest.fixture
def trained_copy(make_project) -> Path:
    """A writable binary-classification project with exp-001."""
    return make_project(with_experiment=True)
