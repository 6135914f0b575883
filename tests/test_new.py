"""`mlscaffold new`: the file set each option promises, clean rendering, atomicity, git."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlscaffold.errors import BlueprintError
from mlscaffold.project import create_project
from mlscaffold.spec import load_spec, validate_spec

from .conftest import blueprint_choices

MATRIX = list(itertools.product(blueprint_choices("task"), blueprint_choices("serving"),
                                blueprint_choices("ci")))

# files every project has, whatever the options ({pkg} is the package name)
CORE_FILES = {
    ".copier-answers.yml", ".gitignore", "Makefile", "README.md", "mlscaffold.yaml",
    "pyproject.toml", "datasets/train.csv", "datasets/validation.csv", "datasets/test.csv",
    "experiments/.gitkeep", "models/staging/.gitkeep", "models/production/.gitkeep",
    "infra/Pulumi.yaml", "infra/__main__.py", "infra/requirements.txt",
    "infra/tests/test_program.py", "infra/Pulumi.dev.yaml", "infra/Pulumi.staging.yaml",
    "infra/Pulumi.prod.yaml",
    "src/{pkg}/__init__.py", "src/{pkg}/preprocessing.py", "src/{pkg}/candidates.py",
    "src/{pkg}/metrics.py", "tests/test_hooks.py",
}
SERVING_FILES = {"Dockerfile", ".dockerignore"}
CI_FILES = {"github": {".github/workflows/ci.yml", ".github/workflows/drift.yml"},
            "gitlab": {".gitlab-ci.yml"}, "none": set()}
# GitHub Actions expressions are the one place where `${{` is meant to survive
THIN_PROJECT_MAX_PYTHON_LINES = 300  # outside infra/
TEMPLATE_SYNTAX = re.compile(r"(?<!\$)\{\{|\{%|<<\s*\w[^<>\n]*>>|<%")


def _render(tmp_path: Path, task: str, serving: str, ci: str, **extra) -> tuple[Path, object]:
    spec = validate_spec({"name": "demo-proj", "task": task, "serving": serving, "ci": ci,
                          **extra})
    result = create_project(tmp_path / "demo-proj", spec, git=False)
    return result.path, result


@pytest.mark.parametrize(("task", "serving", "ci"), MATRIX)
def test_matrix_renders_the_promised_files(tmp_path: Path, task, serving, ci):
    root, result = _render(tmp_path, task, serving, ci)
    files = set(result.files)
    expected = {f.format(pkg="demo_proj") for f in CORE_FILES} | CI_FILES[ci]
    if serving != "none":
        expected |= SERVING_FILES
    assert expected <= files, sorted(expected - files)
    assert not (SERVING_FILES & files) if serving == "none" else True
    for other in set(CI_FILES) - {ci}:
        assert not (CI_FILES[other] & files)
    # nothing outside the known folders, no stray template names
    assert {f.split("/")[0] for f in files} <= {
        ".copier-answers.yml", ".gitignore", "Makefile", "README.md", "mlscaffold.yaml",
        "pyproject.toml", "datasets", "experiments", "models", "infra", "src", "tests",
        "Dockerfile", ".dockerignore", ".github", ".gitlab-ci.yml"}
    for name in files:
        assert not name.endswith(".jinja") and "{{" not in name, name
        text = (root / name).read_text(encoding="utf-8")
        leftover = TEMPLATE_SYNTAX.search(text)
        assert leftover is None, f"{name}: template syntax left: {text[leftover.start():][:60]!r}"
    assert load_spec(root / "mlscaffold.yaml") == result.spec
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["task"] == task and answers["serving"] == serving and answers["ci"] == ci
    header = (root / "datasets" / "train.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "label"
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests",
                           "infra"], cwd=root, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # a thin project: the team's hooks and their tests, the lifecycle is mlscaffold's
    python_lines = sum(len((root / name).read_text(encoding="utf-8").splitlines())
                       for name in files if name.endswith(".py") and not name.startswith("infra/"))
    assert 0 < python_lines <= THIN_PROJECT_MAX_PYTHON_LINES, python_lines


def test_label_column_and_package_follow_the_spec(tmp_path: Path):
    spec = validate_spec({"name": "revenue-forecast", "task": "regression", "label": "revenue"})
    result = create_project(tmp_path / "rf", spec, git=False)
    assert (result.path / "src" / "revenue_forecast" / "__init__.py").is_file()
    for split in ("train", "validation", "test"):
        lines = (result.path / "datasets" / f"{split}.csv").read_text().splitlines()
        assert lines[0].endswith(",revenue") and len(lines) > 100
    pyproject = (result.path / "pyproject.toml").read_text()
    assert 'name = "revenue-forecast"' in pyproject
    hooks_test = (result.path / "tests" / "test_hooks.py").read_text()
    assert 'load_hooks(ROOT, "revenue_forecast")' in hooks_test


def test_sample_data_is_deterministic(tmp_path: Path):
    a, _ = _render(tmp_path / "a", "multiclass-classification", "none", "none")
    b, _ = _render(tmp_path / "b", "multiclass-classification", "none", "none")
    for split in ("train", "validation", "test"):
        assert (a / "datasets" / f"{split}.csv").read_bytes() == \
            (b / "datasets" / f"{split}.csv").read_bytes()


def test_project_is_a_clean_git_repository(tmp_path: Path):
    spec = validate_spec({"name": "gitproj"})
    result = create_project(tmp_path / "gitproj", spec)
    assert result.git_commit and len(result.git_commit) == 40

    def git(*args):
        return subprocess.run(["git", *args], cwd=result.path, capture_output=True, text=True,
                              check=True).stdout

    assert git("status", "--porcelain") == ""
    tracked = set(git("ls-files").split())
    assert tracked == set(result.files)
    assert git("rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_empty_destination_is_used(tmp_path: Path):
    dest = tmp_path / "empty"
    dest.mkdir()
    result = create_project(dest, validate_spec({"name": "empty"}), git=False)
    assert (result.path / "mlscaffold.yaml").is_file()


def test_the_project_is_readable_by_other_users(tmp_path: Path):
    """The folder and what is in it get the umask's modes (0755, 0644 here), not mkdtemp's 0700:
    the serving image copies the project's files and serves as another user."""
    old_umask = os.umask(0o022)
    try:
        root, _ = _render(tmp_path, "binary-classification", "sagemaker", "github")
    finally:
        os.umask(old_umask)
    modes = {path.relative_to(tmp_path).as_posix(): oct(path.stat().st_mode & 0o777)
             for path in [root, *root.rglob("*")]}
    assert modes["demo-proj"] == "0o755"
    assert modes == {name: "0o755" if (tmp_path / name).is_dir() else "0o644" for name in modes}


def _tiny_blueprint(root: Path, body: str) -> Path:
    (root / "template").mkdir(parents=True)
    (root / "copier.yml").write_text(
        "_subdirectory: template\n_envops:\n  undefined: jinja2.StrictUndefined\n"
        "project_name: {type: str}\ncolour: {type: str, default: blue}\n")
    (root / "template" / "a.txt").write_text("first file\n")
    (root / "template" / "b.txt.jinja").write_text(body)
    return root


def test_failure_mid_render_leaves_nothing(tmp_path: Path):
    blueprint = _tiny_blueprint(tmp_path / "bp", "{{ project_name }} {{ not_defined }}\n")
    workdir = tmp_path / "work"
    workdir.mkdir()
    dest = workdir / "deep" / "proj"
    with pytest.raises(BlueprintError, match="not_defined"):
        create_project(dest, validate_spec({"name": "proj"}), blueprint=str(blueprint))
    assert list(workdir.iterdir()) == [], "no half project, no temporary folder, no parents"


def test_a_destination_under_a_file_is_refused_in_one_line(run_cli, tmp_path: Path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    dest = tmp_path / "data.csv" / "deep" / "proj"
    result = run_cli(["new", str(dest), "--no-input"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: cannot create {dest}: {tmp_path / 'data.csv'} is a "
                                  "file; choose a folder outside it")
    assert (tmp_path / "data.csv").read_text() == "a,b\n1,2\n"


def test_an_unwritable_destination_is_refused_and_its_new_parents_removed(
        run_cli, tmp_path: Path, monkeypatch):
    """A read-only file system (or a folder the user may not write) fails where the staging
    folder is made; as root here, permissions cannot make it fail, so the file system's error
    is raised where it would be."""
    import errno

    from mlscaffold import project

    workable = project.temporary_directory

    def read_only(parent: Path, prefix: str) -> Path:
        if parent != workdir / "deep":  # the bundled blueprint's temporary copy
            return workable(parent, prefix)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(parent / prefix))

    monkeypatch.setattr(project, "temporary_directory", read_only)
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run_cli(["new", str(workdir / "deep" / "proj"), "--no-input"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: cannot create {workdir / 'deep' / 'proj'}: read-only "
                                  "file system; choose a folder you can write to")
    assert list(workdir.iterdir()) == [], "the parents new made are removed"


def test_custom_blueprint_gets_spec_answers_and_data(tmp_path: Path):
    blueprint = _tiny_blueprint(tmp_path / "bp", "{{ project_name }} is {{ colour }}\n")
    result = create_project(tmp_path / "proj", validate_spec({"name": "proj"}),
                            blueprint=str(blueprint), data={"colour": "green"}, git=False)
    assert (result.path / "b.txt").read_text() == "proj is green\n"
    # a blueprint that does not render the spec gets it written, and is told so
    spec_text = (result.path / "mlscaffold.yaml").read_text()
    assert spec_text == validate_spec({"name": "proj"}).to_yaml()
    assert any("mlscaffold.yaml" in note for note in result.notes)
    assert (result.path / "datasets" / "train.csv").is_file()


def test_cli_new_prints_what_it_made(run_cli, tmp_path: Path):
    result = run_cli(["new", str(tmp_path / "churn"), "--no-input", "--serving", "kserve"])
    assert result.exit_code == 0, result.stderr
    assert f"Created churn in {tmp_path / 'churn'}" in result.stdout
    assert "datasets/" in result.stdout and "make train" in result.stdout
    assert "Git repository initialised" in result.stdout


PROGRESS = ["deriving stack settings and diagram…", "rendering blueprint…",
            "writing sample data…", "git commit…"]


def test_cli_new_shows_progress_on_a_terminal(run_cli, tmp_path: Path, monkeypatch):
    monkeypatch.setattr("mlscaffold.cli._stderr_is_tty", lambda: True)
    result = run_cli(["new", str(tmp_path / "churn"), "--no-input"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == PROGRESS
    assert "rendering" not in result.stdout
    without_git = run_cli(["new", str(tmp_path / "nogit"), "--no-input", "--no-git"])
    assert without_git.stderr.splitlines() == PROGRESS[:-1]


@pytest.mark.parametrize(("tty", "output_format"), [(False, "text"), (True, "json")])
def test_cli_new_shows_no_progress_to_a_pipe_or_in_json(run_cli, tmp_path: Path, monkeypatch,
                                                        tty, output_format):
    monkeypatch.setattr("mlscaffold.cli._stderr_is_tty", lambda: tty)
    result = run_cli(["new", str(tmp_path / "churn"), "--no-input", "--format", output_format])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    if output_format == "json":
        assert json.loads(result.stdout)["git_commit"]
    else:
        assert result.stdout.startswith("Created churn in ")


def test_a_destination_that_is_a_link_is_made_where_it_points_and_a_dangling_one_refused(
        run_cli, tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    result = run_cli(["new", str(tmp_path / "link"), "--no-input", "--no-git"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "Makefile").is_file()
    (tmp_path / "dangling").symlink_to("nowhere")
    result = run_cli(["new", str(tmp_path / "dangling"), "--no-input"])
    assert result.exit_code == 2
    assert result.stderr == (f"error: destination {tmp_path / 'dangling'} is a link to "
                             f"{tmp_path / 'nowhere'}, which does not exist; create that "
                             "folder or choose another\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "link", "real"]


@pytest.mark.parametrize(("name", "ci"), [("null", "github"), ("true", "gitlab"),
                                         ("off", "github")])
def test_names_yaml_reads_as_something_else_stay_strings_in_every_yaml_file(tmp_path, name, ci):
    """A name, tag or environment spelt like a YAML null, boolean or number is written quoted
    wherever a generated YAML file holds it alone, so it reads back as the string (Pulumi
    needs a string project name)."""
    values = {"name": name, "owner": "yes", "cost_center": "on", "environments": ["dev", "no"],
              "ci": ci, "serving": "kserve" if ci == "gitlab" else "sagemaker"}
    root = create_project(tmp_path / name, validate_spec(values), git=False).path
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*")
             if p.suffix in (".yaml", ".yml")}
    assert {"infra/Pulumi.yaml", "infra/cluster/Pulumi.yaml", "mlscaffold.yaml",
            ".copier-answers.yml"} <= set(files)
    # words no generated file uses for a boolean of its own (they write true and false)
    words = {"yes", "on", "no", "off"}
    for shown, path in files.items():
        nodes = [yaml.compose(path.read_text())]
        while nodes:
            node = nodes.pop()
            if isinstance(node, yaml.ScalarNode):
                assert node.value not in words or node.tag == "tag:yaml.org,2002:str", (
                    f"{shown}: {node.value!r} reads as {node.tag}")
            elif isinstance(node, yaml.MappingNode):  # values: GitHub's own key `on:` is one
                nodes.extend(value for _, value in node.value)
            elif node is not None:
                nodes.extend(node.value)
    read = {shown: yaml.safe_load(path.read_text()) for shown, path in files.items()}
    assert read["infra/Pulumi.yaml"]["name"] == name
    assert read["infra/cluster/Pulumi.yaml"]["name"] == f"{name}-cluster"
    assert read[".copier-answers.yml"]["project_name"] == name
    spec = read["mlscaffold.yaml"]
    assert (spec["name"], spec["owner"], spec["cost_center"], spec["environments"]) == (
        name, "yes", "on", ["dev", "no"])
