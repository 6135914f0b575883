"""Generated projects pass their own tests; every option combination passes its own lint.

The project's tests cover the team's hooks (they vary by task) and infra/ under Pulumi's mocks
(by serving platform); three projects cover every task, serving platform and CI provider once.
The lifecycle itself is mlscaffold's and tested once, in tests/lifecycle/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

from .conftest import blueprint_choices

pytestmark = pytest.mark.slow

# each task, serving platform and CI provider once
COVERING = list(zip(blueprint_choices("task"), blueprint_choices("serving"),
                    blueprint_choices("ci"), strict=True))


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=900)


@pytest.mark.parametrize(("task", "serving", "ci"), COVERING)
def test_generated_project_passes_its_own_tests(tmp_path: Path, task, serving, ci):
    spec = validate_spec({"name": "gen-proj", "task": task, "serving": serving, "ci": ci})
    root = create_project(tmp_path / "gen-proj", spec).path
    # the project's own `make test`, as its pipeline runs it (tests/test_ci.py's run of the
    # pipeline's local steps leaves it to this test)
    tests = _run(["make", "--no-print-directory", "test", f"PY={sys.executable}"], root)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout
    infra = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "infra/tests"],
                 root)
    assert infra.returncode == 0, infra.stdout[-4000:] + infra.stderr[-2000:]
    assert "warning" not in infra.stdout, infra.stdout[-4000:]
    status = _run(["git", "status", "--porcelain", "--untracked-files=all"], root)
    assert status.stdout == "", f"the tests left files git would commit:\n{status.stdout}"
