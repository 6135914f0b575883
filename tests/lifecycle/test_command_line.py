"""`mlscaffold` (and `python -m mlscaffold`) as a user runs it, including two trainings at once."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import PATIENCE_SECONDS, invoke, python_m

LIFECYCLE = ("analyze", "train", "evaluate", "list", "promote", "rollback", "predict", "drift",
             "baseline", "serve", "track")


def test_help_lists_the_lifecycle_commands():
    result = invoke("--help")
    assert result.code == 0
    section = result.out.split("The ML lifecycle (inside a project):")[1].split("\n\n")[0]
    listed = {line.split()[0] for line in section.splitlines() if line.strip()}
    assert listed == set(LIFECYCLE)


@pytest.mark.parametrize("command", LIFECYCLE)
def test_every_lifecycle_command_takes_project(command):
    result = invoke(command, "--help")
    assert result.code == 0, result.err
    assert "--project DIR" in result.out


def test_python_m_mlscaffold_runs_the_cli(project):
    process = python_m("list", "--project", project, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=PATIENCE_SECONDS)
    assert (process.returncode, out, err) == (0, "no experiments yet; run `mlscaffold train`\n",
                                              "")


def test_user_errors_print_no_traceback(trained):
    process = python_m("evaluate", "--project", trained("binary-classification"),
                       "--experiment", "exp-123", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = process.communicate(timeout=PATIENCE_SECONDS)
    assert process.returncode == 2
    assert err == ("error: unknown experiment 'exp-123'; run `mlscaffold list` to see the "
                   "experiments\n")
