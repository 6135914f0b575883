"""Inputs that are refused rather than silently accepted, and the everyday friction of a new
user: each with one line naming the value and the fix, and nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec
from mlscaffold.stacks.config import StackConfigError, platform_config


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs") / "churn"
    return create_project(root, validate_spec({"name": "churn", "serving": "sagemaker"}),
                          git=False).path


def test_a_misspelt_stack_config_namespace_is_refused(run_cli, tmp_path: Path, project: Path):
    config = project / "infra" / "Pulumi.dev.yaml"
    original = config.read_text()
    try:
        config.write_text(original.replace("  churn:platform:", "  chrun:platform:"))
        result = run_cli(["check", str(project), "--stack", "dev"])
        assert result.exit_code == 2
        assert ("infra/Pulumi.dev.yaml: stack config chrun:platform: namespace 'chrun' is "
                "neither the project's ('churn')") in result.stderr
        assert "did you mean churn:platform?" in result.stderr
    finally:
        config.write_text(original)
    # the program refuses it too, under `pulumi up` (all keys of the stack's config)
    spec = validate_spec({"name": "churn"})
    with pytest.raises(StackConfigError, match="namespace 'chrun'"):
        platform_config(spec, "dev", None, config_keys=["aws:region", "chrun:platform"])
    platform_config(spec, "dev", None, config_keys=["aws:region", "churn:platform",
                                                    "pulumi:tags", "kubernetes:context"])


@pytest.mark.parametrize("key", ["churn:platfrom", "churn:platforms", "plattform"])
def test_a_misspelt_platform_key_is_refused(run_cli, project: Path, key: str):
    config = project / "infra" / "Pulumi.dev.yaml"
    original = config.read_text()
    try:
        config.write_text(original.replace("  churn:platform:", f"  {key}:"))
        result = run_cli(["check", str(project), "--stack", "dev"])
        assert result.exit_code == 2
        name = key.rpartition(":")[2]
        assert (f"infra/Pulumi.dev.yaml: stack config {key}: nothing reads {name!r}: the "
                "stack's settings are under churn:platform; did you mean churn:platform?"
                ) in result.stderr
    finally:
        config.write_text(original)
    spec = validate_spec({"name": "churn"})
    with pytest.raises(StackConfigError, match="did you mean churn:platform"):
        platform_config(spec, "dev", None, config_keys=[f"churn:{key.rpartition(':')[2]}"])
    # a key of the team's own in the project's namespace is theirs to read
    platform_config(spec, "dev", None, config_keys=["churn:platform", "churn:alert_email"])


def test_data_the_blueprint_does_not_ask_for_is_refused(run_cli, tmp_path: Path):
    result = run_cli(["new", str(tmp_path / "p"), "--no-input", "--data", "colur=blue"])
    assert result.exit_code == 2
    assert "--data colur: the blueprint asks no question 'colur'" in result.stderr
    assert not (tmp_path / "p").exists()


def test_ci_dry_run_says_it_would_write_the_spec(run_cli, tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    result = run_cli(["ci", str(repo), "--provider", "github", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert "would write the spec" in result.stdout + result.stderr
    assert "wrote the spec" not in result.stdout + result.stderr
    assert list(repo.iterdir()) == []


def _make(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=project,
                          capture_output=True, text=True, env={**os.environ, **env})


def test_make_promote_passes_force(project: Path):
    forced = _make(project, "promote", "EXP=exp-002", "FORCE=1", "MLSCAFFOLD=true")
    assert "promote exp-002 --to staging --force" in forced.stdout, forced.stderr
    plain = _make(project, "promote", "EXP=exp-002", "MLSCAFFOLD=true")
    assert "--force" not in plain.stdout


def test_make_predict_passes_force(project: Path):
    forced = _make(project, "predict", "FORCE=1", "MLSCAFFOLD=true")
    assert forced.stdout.rstrip().endswith("--model production --force"), forced.stderr
    plain = _make(project, "predict", "MLSCAFFOLD=true")
    assert "--force" not in plain.stdout


def test_make_install_takes_mlscaffold_from_the_source_given(project: Path):
    """`make install MLSCAFFOLD_SOURCE=…` hands the checkout or wheel to the pip run that
    installs the dev extra (whose pin holds it to the project's version); without it, nothing
    but the project."""
    given = _make(project, "install", "MLSCAFFOLD_SOURCE=/home/me/kits/mlscaffold kit.whl")
    assert given.stdout.splitlines()[-1].endswith(
        "pip install -e '.[dev]' '/home/me/kits/mlscaffold kit.whl'"), given.stdout
    plain = _make(project, "install")
    assert plain.stdout.splitlines()[-1].rstrip().endswith("pip install -e '.[dev]'")


def test_a_target_before_make_install_says_to_run_it(project: Path):
    result = subprocess.run(["make", "train", "MLSCAFFOLD=false"], cwd=project,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "mlscaffold is not installed (false fails): run `make install` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_stages_answer_to_their_environments_names(run_cli, tmp_path: Path):
    root = create_project(tmp_path / "st", validate_spec({"name": "st", "serving": "none",
                                                          "ci": "none"}), git=False).path
    trained = run_cli(["train", "--project", str(root), "--time", "2", "--seed", "1"])
    assert trained.exit_code == 0, trained.stderr
    promoted = run_cli(["promote", "exp-001", "--to", "prod", "--force", "--project",
                        str(root)])
    assert promoted.exit_code == 0, promoted.stderr
    stages = yaml.safe_load((root / "models" / "registry.json").read_text())["stages"]
    assert stages["production"]["current"] == 1 and stages["staging"]["current"] is None


def test_stack_names_complete_from_the_spec(project: Path):
    env = {**os.environ, "_MLSCAFFOLD_COMPLETE": "bash_complete",
           "COMP_WORDS": "mlscaffold preview --stack s", "COMP_CWORD": "3"}
    completed = subprocess.run([os.path.join(os.path.dirname(sys.executable), "mlscaffold")],
                               cwd=project, env=env, capture_output=True, text=True)
    assert completed.stdout.split() == ["plain,staging"]
    env["COMP_WORDS"] = "mlscaffold check --stack "
    completed = subprocess.run([os.path.join(os.path.dirname(sys.executable), "mlscaffold")],
                               cwd=project, env=env, capture_output=True, text=True)
    assert completed.stdout.split() == ["plain,dev", "plain,staging", "plain,prod", "plain,all"]


def test_stack_names_complete_from_the_project_argument(project: Path, tmp_path: Path):
    """`preview PROJECT --stack <TAB>` from another folder reads PROJECT's spec."""
    env = {**os.environ, "_MLSCAFFOLD_COMPLETE": "bash_complete",
           "COMP_WORDS": f"mlscaffold preview {project} --stack ", "COMP_CWORD": "4"}
    command = [os.path.join(os.path.dirname(sys.executable), "mlscaffold")]
    completed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert completed.stdout.split() == ["plain,dev", "plain,staging", "plain,prod"]
    env.update(COMP_WORDS=f"mlscaffold check {project} --format json -s p", COMP_CWORD="6")
    completed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert completed.stdout.split() == ["plain,prod"]


def test_a_name_making_reserved_bucket_names_is_refused_in_one_line(run_cli, tmp_path: Path):
    result = run_cli(["new", str(tmp_path / "p"), "--no-input", "--name", "sthree-churn"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: project name 'sthree-churn' makes S3 bucket names starting with 'sthree-' "
        "(sthree-churn-dev-artifacts-…), a prefix AWS reserves; choose another name, e.g. "
        "my-sthree-churn\n")
    assert not (tmp_path / "p").exists()


def test_messages_name_the_value_and_the_fix(run_cli, tmp_path: Path):
    cases = {
        ("new", str(tmp_path / "My_Model"), "--no-input"):
            f"error: the project name comes from the folder {tmp_path / 'My_Model'}: project "
            "name 'My_Model' cannot name AWS resources (S3 and ECR take lower case, SageMaker "
            "and KServe no '_' or '.'); use lower-case letters, digits and single dashes, "
            "starting with a letter, e.g. my-model; rename the folder, or give the name with "
            "--name\n",
        ("new", str(tmp_path / "p"), "--no-input", "--owner", "a,b"):
            "error: --owner: 'a,b' is not a tag value AWS takes on every resource; use at most "
            "128 letters, digits, spaces and _ . : / = + @ -, e.g. ml-platform\n",
        ("new", str(tmp_path / "p"), "--no-input", "--name", "a" * 41):
            f"error: --name: project name '{'a' * 41}' is 41 characters long; AWS resource "
            "names start with '<name>-<environment>', which must fit in 36 characters "
            "(SageMaker's name limit, less what mlscaffold appends), so use a name of at most "
            "34 characters\n",
        ("policy", "path", "nope"):
            "error: Invalid value for 'PACK': 'nope' is not one of 'security', 'cost'. (see "
            "'mlscaffold policy path --help')\n",
    }
    for args, message in cases.items():
        result = run_cli(list(args))
        assert (result.exit_code, result.stderr) == (2, message)
    assert not any(tmp_path.iterdir())
