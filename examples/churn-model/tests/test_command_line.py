"""`python -m churn_model` as a user runs it, including two trainings at once."""

import json
import os
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"


def python_m(project, *args):
    environment = dict(os.environ)
    paths = [str(SOURCE), os.environ.get("PYTHONPATH")]
    environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return subprocess.Popen(
        [sys.executable, "-m", "churn_model", "--project", str(project), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def test_help_lists_the_commands(project):
    process = python_m(project, "--help")
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    for command in ("analyze", "train", "evaluate", "list", "promote", "predict", "drift"):
        assert command in out


def test_two_trainings_at_once_get_different_ids(project):
    processes = [python_m(project, "train", "--time", "1", "--seed", seed) for seed in (1, 2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    index = json.loads((project / "experiments" / "index.json").read_text())
    assert sorted(entry["id"] for entry in index["experiments"]) == ["exp-001", "exp-002"]


def test_user_errors_print_no_traceback(project):
    process = python_m(project, "evaluate", "--experiment", "exp-123")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert err.startswith("error: unknown experiment") and "Traceback" not in err
