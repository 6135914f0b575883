"""The CLI: help everywhere, lazy imports, one-line errors with exit 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from mlscaffold import __version__
from mlscaffold.cli import cli


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *_all_commands(cli)], ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help(run_cli, path):
    result = run_cli([*path, "--help"])
    assert result.exit_code == 0
    assert "Usage: mlscaffold" in result.stdout
    assert len(result.stdout.splitlines()) > 4


def test_version(run_cli):
    result = run_cli(["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["features", "ingest", "--help"],
                                  ["model", "upload", "--help"], ["endpoint", "verify", "--help"]])
def test_help_imports_nothing_slow(args):
    code = (
        "import sys\n"
        "from mlscaffold.cli import cli\n"
        f"try:\n    cli.main({args!r})\nexcept SystemExit:\n    pass\n"
        "slow = [m for m in ('copier', 'pydantic', 'pulumi', 'pulumi_aws', 'sklearn', 'yaml',\n"
        "        'rich', 'jinja2', 'boto3', 'botocore') if m in sys.modules]\n"
        "print('SLOW', slow, file=sys.stderr)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True)
    assert "SLOW []" in completed.stderr


BAD_INPUTS = [
    (["--task", "clustering"], "'clustering' is not one of 'binary-classification'"),
    (["--serving", "lambda"], "'lambda' is not one of 'sagemaker', 'kserve', 'none'"),
    (["--ci", "jenkins"], "'jenkins' is not one of 'github', 'gitlab', 'none'"),
    (["--feature-store", "feast"], "'feast' is not one of 'sagemaker', 'none'"),
    (["--region", "moon-1"], "--region: 'moon-1' is not an AWS region mlscaffold knows; use "
                           "one of: us-east-1, "),
    (["--region", "eu-west-99"], "--region: 'eu-west-99' is not an AWS region mlscaffold knows"),
    # a real region without the facts mlscaffold needs (price multiplier, Model Monitor image):
    # refused before anything is rendered, not after
    (["--region", "il-central-1"], "--region: 'il-central-1' is not an AWS region mlscaffold "
                                   "knows; use one of: us-east-1, us-east-2"),
    (["--environments", "dev,dev"], "--environments: environment 'dev' is listed more than once"),
    (["--environments", "dev,Prod!"], "--environments: environment name 'Prod!' is not valid"),
    (["--name", "9lives"], "--name: project name '9lives' cannot name AWS resources"),
    (["--name", "import"], "--name: project name 'import' makes the package 'import'"),
    (["--data", "novalue"], "--data 'novalue' is not KEY=VALUE; write it as --data key=value"),
    (["--data", "task=regression"], "--data 'task=regression' sets a spec field; use --task"),
    (["--data", "stack_settings={}"], "--data 'stack_settings={}' sets an answer mlscaffold "
                                      "derives from the spec; change mlscaffold.yaml"),
    (["--data", "architecture=hello"], "sets an answer mlscaffold derives from the spec"),
    (["--metric", "log_loss"], "--metric-threshold: metric log_loss has no default quality "
                               "gate, as its scale is the data's; give the log_loss a model "
                               "must reach to be promoted"),
    (["--task", "regression", "--metric", "mae"], "metric mae has no default quality gate"),
    (["--vcs-ref", "v9"], "--vcs-ref picks a tag or commit of a --blueprint git URL; pass "
                          "--blueprint too"),
    (["--metric-threshold", "nan"], "metric_threshold nan is not a number a gate can compare "
                                    "with; give roc_auc a finite threshold"),
    (["--task", "regression", "--metric", "rmse", "--metric-threshold", "inf"],
     "metric_threshold inf is not a number a gate can compare with"),
    (["--metric", "rmse"], "--metric: metric 'rmse' does not fit task binary-classification"),
    (["--blueprint", "/nonexistent/bp"], "blueprint /nonexistent/bp is not a folder or a git URL"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=lambda v: str(v)[:30])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(run_cli, tmp_path: Path, args, message):
    dest = tmp_path / "proj"
    result = run_cli(["new", str(dest), "--no-input", *args])
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_non_empty_destination_is_refused_and_kept(run_cli, tmp_path: Path):
    dest = tmp_path / "proj"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    result = run_cli(["new", str(dest), "--no-input"])
    assert result.exit_code == 2
    assert f"destination {dest} exists and is not empty" in result.stderr
    assert "never overwrites" in result.stderr
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    assert (dest / "notes.txt").read_text() == "mine"


def test_destination_that_is_a_file_is_refused(run_cli, tmp_path: Path):
    dest = tmp_path / "proj"
    dest.write_text("mine")
    result = run_cli(["new", str(dest), "--no-input"])
    assert result.exit_code == 2 and "exists and is a file" in result.stderr
    assert dest.read_text() == "mine"


def test_prompts_on_a_terminal(run_cli, tmp_path: Path, monkeypatch):
    monkeypatch.setattr("mlscaffold.cli._stdin_is_tty", lambda: True)
    answers = "regression\nrevenue\nkserve\nnone\ngitlab\neu-west-1\ndev,prod\n"
    result = run_cli(["new", str(tmp_path / "ltv"), "--no-git", "--format", "json"],
                     input=answers)
    assert result.exit_code == 0, result.stderr
    spec = json.loads(result.stdout[result.stdout.index("{"):])["spec"]
    assert (spec["task"], spec["label"], spec["serving"], spec["ci"], spec["region"],
            spec["environments"]) == ("regression", "revenue", "kserve", "gitlab", "eu-west-1",
                                      ["dev", "prod"])


def test_a_bad_answer_is_asked_again(run_cli, tmp_path: Path, monkeypatch):
    monkeypatch.setattr("mlscaffold.cli._stdin_is_tty", lambda: True)
    answers = "\nlabel\n\n\n\nmoon-1\neu-west-1\ndev,dev\ndev\n"
    result = run_cli(["new", str(tmp_path / "p"), "--no-git"], input=answers)
    assert result.exit_code == 0, result.stderr
    assert "'moon-1' is not an AWS region mlscaffold knows" in result.stdout
    assert "'dev' is listed more than once" in result.stdout
    spec = (tmp_path / "p" / "mlscaffold.yaml").read_text()
    assert "region: eu-west-1" in spec and "environments:\n- dev\n" in spec


def test_given_options_are_not_asked(run_cli, tmp_path: Path, monkeypatch):
    monkeypatch.setattr("mlscaffold.cli._stdin_is_tty", lambda: True)
    # only the options not given are asked: task, serving and ci are on the command line
    answers = "churned\nnone\nus-west-2\ndev\n"
    result = run_cli(["new", str(tmp_path / "c"), "--no-git", "--task", "binary-classification",
                      "--serving", "none", "--ci", "none"], input=answers)
    assert result.exit_code == 0, result.stderr
    assert "label: churned" in (tmp_path / "c" / "mlscaffold.yaml").read_text()


def test_no_input_never_asks(run_cli, tmp_path: Path, monkeypatch):
    monkeypatch.setattr("mlscaffold.cli._stdin_is_tty", lambda: True)
    result = run_cli(["new", str(tmp_path / "p"), "--no-input", "--no-git"], input="")
    assert result.exit_code == 0, result.stderr
    assert "?" not in result.stdout.splitlines()[0]


def test_schema_command_prints_json_schema(run_cli):
    result = run_cli(["schema"])
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert "task" in schema["properties"]
