"""`mlscaffold update`: a v1 -> v2 blueprint change merged three ways with the team's edits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlscaffold.project import TEMPLATE_BRANCH, bundled_blueprint, create_project
from mlscaffold.spec import validate_spec

MAKEFILE_LINE = "TIME ?= 60"  # v2 changes it, and so does the team: a conflict
GITIGNORE_ADDITION = "# v2: editor folders\n.idea/\n"  # v2 only: applied
README_TEAM_LINE = "Our team's note: ask #ml-platform before changing the gate.\n"  # team only


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()


def _commit(root: Path, message: str) -> None:
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=team", "-c", "user.email=team@example.com", "commit", "-qm",
         message)


@pytest.fixture
def blueprint(tmp_path: Path) -> Path:
    """A copy of the bundled blueprint: v1 as it ships; tests turn it into v2."""
    return Path(shutil.copytree(bundled_blueprint(), tmp_path / "blueprint",
                                ignore=shutil.ignore_patterns("__pycache__")))


@pytest.fixture
def project(tmp_path: Path, blueprint: Path) -> Path:
    spec = validate_spec({"name": "upd", "serving": "none", "ci": "none"})
    return create_project(tmp_path / "upd", spec, blueprint=str(blueprint)).path


def _make_v2(blueprint: Path) -> None:
    template = blueprint / "template"
    (template / "CONTRIBUTING.md.jinja").write_text("# Contributing to [[ project_name ]]\n")
    makefile = template / "Makefile.jinja"
    makefile.write_text(makefile.read_text().replace(MAKEFILE_LINE, "TIME ?= 120"))
    gitignore = template / ".gitignore"
    gitignore.write_text(gitignore.read_text() + GITIGNORE_ADDITION)


def test_new_keeps_the_pristine_render_on_its_branch(project: Path):
    assert _git(project, "rev-parse", TEMPLATE_BRANCH) == _git(project, "rev-parse", "HEAD")


def test_a_blueprint_change_merges_three_ways(run_cli, project: Path, blueprint: Path):
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text().replace(MAKEFILE_LINE, "TIME ?= 30"))
    readme = project / "README.md"
    readme.write_text(readme.read_text() + README_TEAM_LINE)
    _commit(project, "team edits")
    _make_v2(blueprint)

    result = run_cli(["update", str(project), "--blueprint", str(blueprint)])

    assert result.exit_code == 1, result.stderr
    assert "conflicts in Makefile" in result.stderr and "git merge --abort" in result.stderr
    assert (project / "CONTRIBUTING.md").read_text() == "# Contributing to upd\n"  # added
    assert (project / ".gitignore").read_text().endswith(GITIGNORE_ADDITION)  # applied
    assert readme.read_text().endswith(README_TEAM_LINE)  # the team's own edit, kept
    merged = makefile.read_text()
    assert "<<<<<<< HEAD\nTIME ?= 30\n=======\nTIME ?= 120\n>>>>>>>" in merged  # in place
    assert _git(project, "diff", "--name-only", "--diff-filter=U") == "Makefile"
    assert "Unmerged paths" in _git(project, "status")


def test_an_aborted_update_runs_again_and_a_resolved_one_is_up_to_date(run_cli, project,
                                                                        blueprint):
    """`git merge --abort` (which the conflict message suggests) leaves the project as it was:
    `update` then merges against the same pristine render, not the one it abandoned."""
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text().replace(MAKEFILE_LINE, "TIME ?= 30"))
    spec = project / "mlscaffold.yaml"  # a changed answer too: the two renders' answers differ
    spec.write_text(spec.read_text().replace("region: us-east-1", "region: eu-west-1"))
    _commit(project, "team edits")
    _make_v2(blueprint)
    update = ["update", str(project), "--blueprint", str(blueprint)]
    assert run_cli(update).exit_code == 1

    _git(project, "merge", "--abort")
    again = run_cli(update)

    assert again.exit_code == 1, again.stderr
    assert "conflicts in Makefile" in again.stderr
    assert "eu-west-1" in (project / ".copier-answers.yml").read_text()
    makefile.write_text(makefile.read_text().split("<<<<<<<")[0] + "TIME ?= 30\n"
                        + makefile.read_text().split(">>>>>>> ")[1].split("\n", 1)[1])
    _git(project, "add", "Makefile")
    _git(project, "-c", "user.name=team", "-c", "user.email=team@example.com", "commit", "-q",
         "--no-edit")
    last = run_cli(update)
    assert last.exit_code == 0 and "is up to date" in last.stdout, last.stderr
    assert _git(project, "status", "--porcelain") == ""


def test_a_clean_update_commits_a_merge_and_then_is_up_to_date(run_cli, project, blueprint):
    _make_v2(blueprint)
    result = run_cli(["update", str(project), "--blueprint", str(blueprint)])
    assert result.exit_code == 0, result.stderr
    assert "merge commit" in result.stdout and "M Makefile" in result.stdout
    assert "TIME ?= 120" in (project / "Makefile").read_text()
    assert _git(project, "status", "--porcelain") == ""
    assert _git(project, "rev-parse", "HEAD^2") == _git(project, "rev-parse", TEMPLATE_BRANCH)
    again = run_cli(["update", str(project), "--blueprint", str(blueprint)])
    assert again.exit_code == 0 and "is up to date" in again.stdout


def test_dry_run_prints_the_diff_and_writes_nothing(run_cli, project, blueprint):
    _make_v2(blueprint)
    head, branch = _git(project, "rev-parse", "HEAD"), _git(project, "rev-parse", TEMPLATE_BRANCH)
    result = run_cli(["update", str(project), "--blueprint", str(blueprint), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert "+TIME ?= 120" in result.stdout and "would change" in result.stdout
    assert not (project / "CONTRIBUTING.md").exists()
    assert _git(project, "rev-parse", "HEAD") == head
    assert _git(project, "rev-parse", TEMPLATE_BRANCH) == branch
    assert _git(project, "status", "--porcelain") == ""


def test_a_dry_run_previews_an_uncommitted_spec_edit_and_names_the_uncommitted_files(
        run_cli, project):
    spec = project / "mlscaffold.yaml"
    spec.write_text(spec.read_text().replace("region: us-east-1", "region: eu-west-1"))
    (project / "notes.txt").write_text("ours\n")
    head, branch = _git(project, "rev-parse", "HEAD"), _git(project, "rev-parse", TEMPLATE_BRANCH)
    status = _git(project, "status", "--porcelain")
    result = run_cli(["update", str(project), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert "+region: eu-west-1" in result.stdout and "M infra/Pulumi.dev.yaml" in result.stdout
    assert result.stderr == ("note: previewed against the last commit, with mlscaffold.yaml as "
                             "it is now; the update itself needs these committed or stashed: "
                             "mlscaffold.yaml, notes.txt\n")
    assert _git(project, "rev-parse", "HEAD") == head
    assert _git(project, "rev-parse", TEMPLATE_BRANCH) == branch
    assert _git(project, "status", "--porcelain") == status
    assert "us-east-1" in (project / "infra" / "Pulumi.dev.yaml").read_text()
    as_json = json.loads(run_cli(["update", str(project), "--dry-run", "--format", "json"]).stdout)
    assert as_json["uncommitted"] == ["mlscaffold.yaml", "notes.txt"]
    refused = run_cli(["update", str(project)])
    assert refused.exit_code == 2 and "has uncommitted changes" in refused.stderr


# (start, the edit of mlscaffold.yaml, {file: (text it holds, text it no longer holds)},
#  files deleted); each case from the bundled blueprint
SPEC_CHANGES = {
    "region": ({}, ("region: us-east-1", "region: eu-west-1"),
               {name: ("eu-west-1", "us-east-1") for name in (
                   "README.md", ".copier-answers.yml", "infra/Pulumi.dev.yaml",
                   "infra/Pulumi.prod.yaml")}, []),
    # main is now the production environment: sized and protected as production
    "environments": ({}, ("- dev\n- staging\n- prod\n", "- dev\n- main\n"),
                     {"infra/Pulumi.main.yaml": ("# Stack main of upd (prod sizing)",
                                                 "- spot\n"),
                      ".copier-answers.yml": ("- dev\n- main\n", "\n- staging\n")},
                     ["infra/Pulumi.prod.yaml", "infra/Pulumi.staging.yaml"]),
    "serving": ({"serving": "sagemaker"}, ("serving: sagemaker", "serving: kserve"),
                {"infra/Pulumi.dev.yaml": ("platform: kserve", "platform: sagemaker"),
                 "infra/Pulumi.prod.yaml": ("platform: kserve", "platform: sagemaker"),
                 ".copier-answers.yml": ("serving: kserve", "serving: sagemaker")}, []),
}


@pytest.mark.parametrize("case", sorted(SPEC_CHANGES))
def test_a_spec_change_reaches_every_file_that_depends_on_it(run_cli, tmp_path: Path, case):
    start, (old, new), expected, deleted = SPEC_CHANGES[case]
    spec = validate_spec({"name": "upd", "ci": "none", "serving": "none", **start})
    project = create_project(tmp_path / "upd", spec).path
    spec_file = project / "mlscaffold.yaml"
    assert old in spec_file.read_text()
    spec_file.write_text(spec_file.read_text().replace(old, new))
    _commit(project, f"change {case}")

    result = run_cli(["update", str(project)])

    assert result.exit_code == 0, result.stderr
    for name, (present, absent) in expected.items():
        text = (project / name).read_text()
        assert present in text and absent not in text, name
    for name in deleted:
        assert not (project / name).exists(), name
        assert f"  D {name} (deleted)" in result.stdout.splitlines()
    assert _git(project, "status", "--porcelain") == ""


def test_datasets_stay_the_teams(run_cli, project):
    spec = project / "mlscaffold.yaml"
    spec.write_text(spec.read_text().replace("label: label", "label: churned"))
    (project / "datasets" / "train.csv").write_text("a,churned\n1,0\n")
    _commit(project, "our data")
    result = run_cli(["update", str(project)])
    assert result.exit_code == 0, result.stderr
    assert (project / "datasets" / "train.csv").read_text() == "a,churned\n1,0\n"


@pytest.mark.parametrize(("change", "expected"), [
    (lambda root: (root / "Makefile").write_text("dirty\n"),
     "has uncommitted changes (Makefile)"),
    (lambda root: (root / "notes.txt").write_text("new\n"),
     "has uncommitted changes (notes.txt)"),
    (lambda root: shutil.rmtree(root / ".git"), "is not a git repository"),
    (lambda root: (root / "mlscaffold.yaml").write_text(
        (root / "mlscaffold.yaml").read_text().replace("mlscaffold_version: 0.2.0",
                                                       "mlscaffold_version: 9.0.0")),
     "was made by mlscaffold 9.0.0, newer than this mlscaffold"),
    (lambda root: (root / "mlscaffold.yaml").write_text("task: [\n"), "is not valid YAML"),
])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(run_cli, project, change, expected):
    change(project)
    if (project / ".git").is_dir() and "uncommitted" not in expected:
        _commit(project, "the change")
    before = sorted((p.relative_to(project).as_posix(), p.read_bytes())
                    for p in project.rglob("*") if p.is_file() and ".git" not in p.parts)
    result = run_cli(["update", str(project)])
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    after = sorted((p.relative_to(project).as_posix(), p.read_bytes())
                   for p in project.rglob("*") if p.is_file() and ".git" not in p.parts)
    assert after == before


def test_an_answer_changed_through_copier_is_refused_naming_the_file(run_cli, project):
    answers = project / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace("region: us-east-1", "region: eu-west-1"))
    _commit(project, "copier update --data region=eu-west-1")
    result = run_cli(["update", str(project)])
    assert result.exit_code == 2
    assert ".copier-answers.yml differs from the last render" in result.stderr
    assert f"git checkout {TEMPLATE_BRANCH} -- .copier-answers.yml" in result.stderr
    listed = run_cli(["list", "--project", str(project)])
    assert ".copier-answers.yml (the last render) has region: 'eu-west-1'" in listed.stderr
    checked = run_cli(["check", str(project), "--stack", "dev", "--format", "json"])
    assert ".copier-answers.yml (the last render) has region: 'eu-west-1'" in checked.stderr


# ------------------------------------------------- the blueprint the last render was made from

ORG_LINE = "# Acme: ask #ml-platform before changing these targets.\n"  # not in the bundled one


def _tagged_blueprint(run_cli, folder: Path) -> Path:
    """The exported blueprint with the organisation's own Makefile line, in git, tagged v1."""
    assert run_cli(["blueprint", str(folder)]).exit_code == 0
    makefile = folder / "template" / "Makefile.jinja"
    makefile.write_text(ORG_LINE + makefile.read_text())
    _git(folder, "init", "-q")
    _commit(folder, "v1")
    _git(folder, "tag", "v1")
    return folder


@pytest.mark.parametrize("to_v2", [["--vcs-ref", "v2"], ["--blueprint", "URL", "--vcs-ref", "v2"]],
                         ids=["vcs-ref", "blueprint-and-vcs-ref"])
def test_update_renders_from_the_git_blueprint_and_tag_of_the_last_render(run_cli, tmp_path,
                                                                           to_v2):
    source = _tagged_blueprint(run_cli, tmp_path / "orgbp")
    url = f"git+file://{source}"
    project = tmp_path / "proj"
    made = run_cli(["new", str(project), "--no-input", "--blueprint", url, "--vcs-ref", "v1",
                    "--ci", "none"])
    assert made.exit_code == 0, made.stderr
    spec = project / "mlscaffold.yaml"
    spec.write_text(spec.read_text().replace("region: us-east-1", "region: eu-west-1"))
    _commit(project, "move to Ireland")
    answers = project / ".copier-answers.yml"

    plain = run_cli(["update", str(project)])  # the org's blueprint at v1, not the bundled one

    assert plain.exit_code == 0, plain.stderr
    assert (project / "Makefile").read_text().startswith(ORG_LINE)
    assert f"_src_path: {url}\n" in answers.read_text()
    assert "_commit: v1\n" in answers.read_text() and "eu-west-1" in answers.read_text()
    assert "M Makefile" not in plain.stdout

    makefile = source / "template" / "Makefile.jinja"
    makefile.write_text(makefile.read_text().replace(MAKEFILE_LINE, "TIME ?= 120"))
    _commit(source, "v2")
    _git(source, "tag", "v2")
    assert run_cli(["update", str(project)]).stdout.endswith("is up to date with mlscaffold "
                                                              f"{_version()}\n")  # still v1
    to_v2 = [url if arg == "URL" else arg for arg in to_v2]
    moved = run_cli(["update", str(project), *to_v2])

    assert moved.exit_code == 0, moved.stderr
    assert "  M Makefile" in moved.stdout.splitlines()
    text = (project / "Makefile").read_text()
    assert text.startswith(ORG_LINE) and "TIME ?= 120" in text
    assert f"_src_path: {url}\n" in answers.read_text() and "_commit: v2\n" in answers.read_text()
    assert "is up to date" in run_cli(["update", str(project)]).stdout  # now at v2


def _version() -> str:
    from mlscaffold import __version__

    return __version__


def _untouched(project: Path) -> tuple[str, str, str]:
    return (_git(project, "rev-parse", "HEAD"), _git(project, "rev-parse", TEMPLATE_BRANCH),
            _git(project, "status", "--porcelain"))


def test_a_blueprint_folder_that_is_gone_is_refused_naming_it(run_cli, project, blueprint):
    before = _untouched(project)
    moved = shutil.move(blueprint, blueprint.with_name("moved"))

    result = run_cli(["update", str(project)])

    assert result.exit_code == 2
    assert result.stderr == (f"error: {project} was rendered from the blueprint folder "
                             f"{blueprint}, which no longer exists; pass the blueprint with "
                             "--blueprint (a folder or git URL)\n")
    assert _untouched(project) == before
    again = run_cli(["update", str(project), "--blueprint", str(moved)])
    assert again.exit_code == 0 and "is up to date" in again.stdout, again.stderr


def test_a_blueprint_folder_the_render_does_not_record_is_refused(run_cli, tmp_path):
    """A project made before the render recorded its blueprint folder: a tagged local git
    folder leaves `_commit` in the answers but no `_src_path`, so it is not the bundled one."""
    source = _tagged_blueprint(run_cli, tmp_path / "orgbp")
    spec = validate_spec({"name": "upd", "serving": "none", "ci": "none"})
    project = create_project(tmp_path / "upd", spec, blueprint=str(source), vcs_ref="v1").path
    assert "_commit: v1\n" in (project / ".copier-answers.yml").read_text()
    _git(project, "commit", "-q", "--amend", "-m", "Create upd with mlscaffold")
    _git(project, "branch", "-f", TEMPLATE_BRANCH, "HEAD")
    before = _untouched(project)

    result = run_cli(["update", str(project)])

    assert result.exit_code == 2
    assert result.stderr == (f"error: {project} was rendered from a git blueprint at v1 but "
                             "does not record which one; pass the blueprint with --blueprint (a "
                             "folder or git URL)\n")
    assert _untouched(project) == before
    assert (project / "Makefile").read_text().startswith(ORG_LINE)


# ---------------------------------------------------------------- plain `copier update`


def test_a_tagged_git_blueprint_updates_with_plain_copier_update(run_cli, tmp_path: Path):
    """Copier renders every generated file, so `copier update` alone refreshes CI, the stack
    configs and the spec from a newer tag of an exported blueprint, keeping the team's edits."""
    import copier

    source = tmp_path / "ml-blueprint"
    assert run_cli(["blueprint", str(source)]).exit_code == 0
    _git(source, "init", "-q")
    _commit(source, "v1")
    _git(source, "tag", "v1")
    url = f"git+file://{source}"
    made = run_cli(["new", str(tmp_path / "proj"), "--no-input", "--blueprint", url,
                    "--vcs-ref", "v1"])
    assert made.exit_code == 0, made.stderr
    project = tmp_path / "proj"
    answers = (project / ".copier-answers.yml").read_text()
    assert f"_src_path: {url}" in answers and "_commit: v1" in answers
    config = project / "infra" / "Pulumi.dev.yaml"
    config.write_text(config.read_text().replace("max_size: 3", "max_size: 5"))
    (project / "Makefile").write_text((project / "Makefile").read_text() + "# ours\n")
    _commit(project, "team edits")

    ci_facts = source / "copier-ci.yml"
    ci_facts.write_text(ci_facts.read_text().replace('python: "3.11"', 'python: "3.12"'))
    partial = source / "partials" / "stack-config.yaml.jinja"
    partial.write_text(partial.read_text().replace("# Edit freely;", "# Edit freely (v2);"))
    spec_template = source / "template" / "mlscaffold.yaml.jinja"
    spec_template.write_text(spec_template.read_text().replace("# JSON Schema:",
                                                               "# JSON Schema (v2):"))
    _commit(source, "v2")
    _git(source, "tag", "v2")

    copier.run_update(str(project), vcs_ref="v2", defaults=True, overwrite=True, quiet=True,
                      unsafe=False)

    workflow = (project / ".github" / "workflows" / "ci.yml").read_text()
    assert 'python-version: "3.12"' in workflow and '"3.11"' not in workflow
    for environment in ("dev", "staging", "prod"):
        text = (project / "infra" / f"Pulumi.{environment}.yaml").read_text()
        assert "# Edit freely (v2);" in text, environment
    assert "max_size: 5" in config.read_text()  # the team's setting, kept
    assert (project / "Makefile").read_text().endswith("# ours\n")
    assert "# JSON Schema (v2):" in (project / "mlscaffold.yaml").read_text()
    assert "_commit: v2" in (project / ".copier-answers.yml").read_text()


def test_blueprint_refuses_a_folder_that_is_not_empty(run_cli, tmp_path: Path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep\n")
    result = run_cli(["blueprint", str(tmp_path / "taken")])
    assert result.exit_code == 2 and "is not empty" in result.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["mine.txt"]


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_blueprint_that_is_not_this_projects_is_refused_before_it_deletes(run_cli, project,
                                                                           tmp_path, dry_run):
    """A mistyped --blueprint path to some folder would render that folder as it is, and the
    merge would delete every generated file: a folder without copier.yml is no template, and a
    template that renders none of the last render's files is not this project's."""
    before = _untouched(project)
    plain = tmp_path / "notes"
    plain.mkdir()
    (plain / "README.txt").write_text("hi\n")
    dry = ["--dry-run"] if dry_run else []
    result = run_cli(["update", str(project), "--blueprint", str(plain), *dry])
    assert result.exit_code == 2
    assert result.stderr == (f"error: blueprint {plain} has no copier.yml: it is not a Copier "
                             "template; pass the folder that holds copier.yml (`mlscaffold "
                             "blueprint DEST` writes the bundled one to start from)\n")
    other = tmp_path / "other"
    (other / "template").mkdir(parents=True)
    (other / "copier.yml").write_text("_subdirectory: template\n")
    (other / "template" / "README.txt").write_text("another template\n")
    result = run_cli(["update", str(project), "--blueprint", str(other), *dry])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: the blueprint {other} would delete ")
    assert "it is not this project's blueprint; check --blueprint" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert _untouched(project) == before
    assert (project / "Makefile").is_file()


def test_files_the_team_deleted_itself_do_not_count_as_the_updates_deletions(run_cli, project,
                                                                            blueprint):
    """The refusal's own advice: a blueprint that really drops most files (here infra/ and
    src/, 14 of 27) updates once the team has deleted them in a commit of its own."""
    shutil.rmtree(blueprint / "template" / "infra")
    shutil.rmtree(blueprint / "template" / "src")
    refused = run_cli(["update", str(project)])
    assert refused.exit_code == 2 and "would delete 14 of the 27 files" in refused.stderr
    _git(project, "rm", "-rq", "infra", "src")
    _commit(project, "we keep no infra/ or src/")
    result = run_cli(["update", str(project)])
    assert result.exit_code == 0, result.stderr
    assert not (project / "infra").exists() and (project / "Makefile").is_file()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_file_deleted_on_one_side_and_changed_on_the_other_says_how_to_resolve_it(
        run_cli, project, blueprint, dry_run):
    """Such a file has no conflict markers: the message says to keep it or drop it."""
    _git(project, "rm", "-q", "Makefile")
    _commit(project, "we drive it without make")
    _make_v2(blueprint)  # changes the Makefile
    result = run_cli(["update", str(project), *(["--dry-run"] if dry_run else [])])
    assert result.exit_code == 1
    assert "  C Makefile (conflict: changed on one side, deleted on the other)" in result.stdout
    _assert_count_matches_list(result.stdout)
    if dry_run:
        assert result.stderr == "error: the update would conflict in Makefile\n"
        return
    assert result.stderr == ("error: Makefile changed on one side and deleted on the other: keep "
                             "with `git add Makefile` or drop with `git rm Makefile`; then `git "
                             "commit` (or `git merge --abort` to undo the update)\n")
    _git(project, "rm", "-q", "Makefile")
    _commit(project, "still without make")
    assert not (project / "Makefile").exists()
    assert run_cli(["update", str(project)]).exit_code == 0


def test_a_project_made_without_git_updates_once_committed_as_the_refusal_says(run_cli,
                                                                              tmp_path):
    made = run_cli(["new", str(tmp_path / "nogit"), "--no-input", "--no-git"])
    assert made.exit_code == 0, made.stderr
    project = tmp_path / "nogit"
    refused = run_cli(["update", str(project)])
    assert refused.exit_code == 2
    command = refused.stderr.split("commit them as that render: `")[1].split("`")[0]
    assert command == "git init && git add -A && git commit -m 'Create nogit with mlscaffold'"
    _git(project, "init", "-q")
    _commit(project, "Create nogit with mlscaffold")
    result = run_cli(["update", str(project)])
    assert result.exit_code == 0 and "is up to date" in result.stdout, result.stderr


def _assert_count_matches_list(stdout: str) -> None:
    """update's first line counts the files it lists below it, one per line."""
    listed = [line for line in stdout.splitlines() if re.match(r"  [ACDM] ", line)]
    assert re.search(rf"\b(?:would change|changed) {len(listed)} file\(s\)", stdout), stdout


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_file_the_team_changed_and_the_blueprint_dropped_counts_as_changed(
        run_cli, project, blueprint, dry_run):
    """A modify/delete conflict is a changed file, as a conflict with markers is: in the count,
    the list and the JSON's `changed`."""
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nOur notes.\n")
    _commit(project, "our notes")
    (blueprint / "template" / "README.md.jinja").unlink()
    result = run_cli(["update", str(project), *(["--dry-run"] if dry_run else [])])
    assert result.exit_code == 1
    assert "  C README.md (conflict: changed on one side, deleted on the other)" in result.stdout
    _assert_count_matches_list(result.stdout)
    if not dry_run:
        _git(project, "merge", "--abort")
    as_json = run_cli(["update", str(project), "--dry-run", "--format", "json"])
    assert "README.md" in json.loads(as_json.stdout)["changed"]


def test_update_keeps_the_kubernetes_version_a_stack_file_pins(run_cli, project, blueprint,
                                                                monkeypatch):
    from mlscaffold.stacks import config as stack_config

    made_with = stack_config.default_kubernetes_version()
    assert f"kubernetes_version: '{made_with}'" in (project / "infra/Pulumi.dev.yaml").read_text()
    # later, another version is the default: the update must not move the cluster to it
    later = next(v for v in stack_config.KUBERNETES_VERSIONS if v != made_with)
    monkeypatch.setattr(stack_config, "default_kubernetes_version", lambda on=None: later)
    _make_v2(blueprint)
    result = run_cli(["update", str(project), "--blueprint", str(blueprint)])
    assert result.exit_code == 0, result.stderr
    assert "TIME ?= 120" in (project / "Makefile").read_text()
    for name in ("dev", "staging", "prod"):
        text = (project / f"infra/Pulumi.{name}.yaml").read_text()
        assert f"kubernetes_version: '{made_with}'" in text, name
