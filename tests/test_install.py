"""A non-editable `pip install .` into a fresh venv runs `mlscaffold new` from anywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow


def test_wheel_install_makes_a_project_from_another_directory(tmp_path: Path):
    # install from a copy of the tracked files, so the repo gets no build/ or egg-info
    source = tmp_path / "src"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((REPO / name).read_bytes())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)],
                   check=True)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    completed = subprocess.run([str(venv / "bin" / "mlscaffold"), "new", "churn", "--no-input",
                                "--serving", "kserve", "--ci", "gitlab"],
                               cwd=workdir, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    project = workdir / "churn"
    for name in ("mlscaffold.yaml", "Dockerfile", ".gitlab-ci.yml", "src/churn/model.py",
                 "datasets/train.csv", "infra/Pulumi.yaml"):
        assert (project / name).is_file(), name
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import mlscaffold, os; print(os.path.dirname(mlscaffold.__file__))"],
                          capture_output=True, text=True, check=True, cwd=workdir).stdout.strip()
    assert "site-packages" in site, "the installed package, not the source tree, was used"
    answers = (project / ".copier-answers.yml").read_text()
    assert "site-packages/mlscaffold/blueprints/ml-project" in answers
    # the packs, the price table and the stacks ship in the wheel too
    checked = subprocess.run([str(venv / "bin" / "mlscaffold"), "check", "churn", "--stack",
                              "dev"], cwd=workdir, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    pack = subprocess.run([str(venv / "bin" / "mlscaffold"), "policy", "path", "security"],
                          cwd=workdir, capture_output=True, text=True, check=True).stdout.strip()
    assert "site-packages" in pack
    assert {p.name for p in Path(pack).iterdir()} >= {"PulumiPolicy.yaml", "requirements.txt",
                                                      "__main__.py"}
