"""Fixtures: throwaway copies of this project, so tests never touch its experiments or models."""

import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from churn_model.cli import main

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUICK_TRAIN_SECONDS = 2


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(project: Path, *args) -> Result:
    """Run the command line in-process against `project`; capture its exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--project", str(project), *map(str, args)])
    return Result(code, out.getvalue(), err.getvalue())


def copy_project(destination: Path, source: Path = PROJECT_ROOT) -> Path:
    """A copy of the project's config and data (and, from a copied project, its runs)."""
    destination.mkdir(parents=True)
    shutil.copy2(source / "mlscaffold.yaml", destination)
    shutil.copytree(source / "datasets", destination / "datasets")
    for folder in ("experiments", "models"):
        if source is not PROJECT_ROOT and (source / folder).exists():
            shutil.copytree(source / folder, destination / folder)
    return destination


def set_config(project: Path, **changes) -> None:
    """Change keys of a project copy's mlscaffold.yaml (None removes a key)."""
    path = project / "mlscaffold.yaml"
    config = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="session")
def config() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "mlscaffold.yaml").read_text())


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh copy of the project without experiments or models."""
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory) -> Path:
    """A project copy with one quick experiment (exp-001); treat as read-only."""
    root = copy_project(tmp_path_factory.mktemp("trained") / "project")
    result = run_cli(root, "train", "--time", QUICK_TRAIN_SECONDS)
    assert result.code == 0, result.err
    return root


@pytest.fixture
def trained_copy(trained_project, tmp_path) -> Path:
    """A writable copy of `trained_project`."""
    return copy_project(tmp_path / "project", source=trained_project)
