"""The project a lifecycle command runs in: found upward or given with --project, its spec
validated like `mlscaffold check` does, made by this mlscaffold series, its sample data what the
lifecycle expects."""

from __future__ import annotations

import csv

import pytest

from mlscaffold import DISTRIBUTION, __version__
from mlscaffold.lifecycle.config import check_made_by
from mlscaffold.lifecycle.errors import ConfigError

from .conftest import TASKS, assert_error, invoke, read_spec, run_cli, set_config, spec_path


@pytest.mark.parametrize("task", TASKS)
def test_the_rendered_project_has_what_the_lifecycle_reads(rendered, task):
    project = rendered(task)
    spec = read_spec(project)
    assert spec["task"] == task and spec["mlscaffold_version"] == __version__
    for split in ("train", "validation", "test"):
        with (project / "datasets" / f"{split}.csv").open(newline="") as handle:
            header = next(csv.reader(handle))
        assert spec["label"] in header, f"{split}.csv lacks the label column {spec['label']!r}"
    for stage in ("staging", "production"):
        assert (project / "models" / stage).is_dir()


def test_a_command_outside_any_project_names_the_folder_and_project_option(tmp_path,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("list")
    assert result.code == 2
    assert result.err == (f"error: no mlscaffold.yaml in {tmp_path.resolve()} or any folder "
                          "above it; run the command inside a project (`mlscaffold new` makes "
                          "one) or pass --project DIR\n")


def test_the_project_is_found_upward_from_a_subfolder(project, monkeypatch):
    monkeypatch.chdir(project / "src")
    result = invoke("list")
    assert (result.code, result.out) == (0, "no experiments yet; run `mlscaffold train`\n")


def test_an_unknown_spec_key_is_refused_as_check_refuses_it(project):
    set_config(project, lable="x")
    result = run_cli(project, "list")
    assert result.code == 2
    assert result.err.startswith(f"error: {spec_path(project).resolve()}: lable: unknown key "
                                 "'lable' (did you mean 'label'?); valid keys are: version, "
                                 "mlscaffold_version, name,")
    assert result.err.count("\n") == 1
    checked = invoke("check", project)
    assert (checked.code, checked.err) == (2, result.err)


def test_a_spec_without_mlscaffold_version_is_refused(project):
    set_config(project, mlscaffold_version=None)
    path = spec_path(project).resolve()
    assert_error(run_cli(project, "train", "--time", "1"), 2)
    assert run_cli(project, "list").err == (
        f"error: {path} has no mlscaffold_version: it was made by mlscaffold 0.1, whose "
        "projects carry their own lifecycle code (python -m <package>); keep using that code, "
        f"or make a new project with mlscaffold {__version__} and move datasets/, experiments/ "
        "and models/ into it\n")


def test_a_project_of_the_first_series_keeps_its_own_lifecycle(project):
    """0.1's projects carried the lifecycle, and its distribution name was not ours."""
    set_config(project, mlscaffold_version="0.1.0")
    result = run_cli(project, "list")
    assert result.code == 2
    assert result.err.startswith(
        f"error: {spec_path(project).resolve()} has mlscaffold_version 0.1.0: it was made by "
        "mlscaffold 0.1, whose projects carry their own lifecycle code")
    assert "pip install" not in result.err


def test_a_project_of_an_older_series_says_what_to_install_or_run(tmp_path):
    with pytest.raises(ConfigError) as raised:
        check_made_by({"mlscaffold_version": "0.2.0"}, tmp_path / "mlscaffold.yaml", "0.3.1")
    assert raised.value.message == (
        f"{tmp_path / 'mlscaffold.yaml'} was made by mlscaffold 0.2.0; this is mlscaffold 0.3.1")
    assert raised.value.hint == (
        f"install the version that made it (pip install '{DISTRIBUTION}==0.2.0'), or bring the "
        "project to 0.3.1 with `mlscaffold update`")


def test_a_project_of_a_newer_series_says_what_to_install(project):
    set_config(project, mlscaffold_version="9.0.0")
    result = run_cli(project, "evaluate")
    assert result.code == 2
    assert result.err == (
        f"error: {spec_path(project).resolve()} was made by mlscaffold 9.0.0, newer than this "
        f"mlscaffold {__version__}; install that version: pip install '{DISTRIBUTION}==9.0.0'\n")


def test_a_patch_release_of_the_same_series_runs_the_project(project):
    major, minor, _ = __version__.split(".", 2)
    set_config(project, mlscaffold_version=f"{major}.{minor}.99")
    result = run_cli(project, "list")
    assert result.code == 0, result.err
