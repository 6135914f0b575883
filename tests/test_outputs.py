"""Reading a deployed stack's outputs: from a file, stdin, or the Pulumi CLI; bad input named."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from mlscaffold.errors import MlscaffoldError, UsageError
from mlscaffold.outputs import read_stack_outputs, require_output


def test_outputs_come_from_a_file_or_stdin(tmp_path, monkeypatch):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"artifact_bucket": "b"}))
    assert read_stack_outputs(tmp_path, "dev", str(path)) == {"artifact_bucket": "b"}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"vpc_id": "vpc-1"}'))
    assert read_stack_outputs(tmp_path, "dev", "-") == {"vpc_id": "vpc-1"}


@pytest.mark.parametrize(("text", "message"), [
    ("not json", r"is not JSON \(Expecting value at line 1\)"),
    ("[1, 2]", "holds list, not the stack's outputs"),
])
def test_bad_outputs_are_a_usage_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "outputs.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as caught:
        read_stack_outputs(tmp_path, "dev", str(path))
    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(UsageError, match=r"--outputs nope\.json: no such file"):
        read_stack_outputs(tmp_path, "dev", "nope.json")


def _fake_pulumi(folder: Path, script: str) -> None:
    path = folder / "pulumi"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_without_a_source_the_pulumi_cli_is_asked(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_pulumi(bin_dir, 'echo "{\\"args\\": \\"$*\\"}"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    outputs = read_stack_outputs(tmp_path, "prod")
    assert outputs["args"] == f"stack output --json --stack prod --cwd {tmp_path / 'infra'}"


def test_a_failing_pulumi_cli_is_reported_with_its_last_line(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_pulumi(bin_dir, 'echo "warning" >&2; echo "error: no stack named dev" >&2; exit 255\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(MlscaffoldError, match="for stack dev failed: error: no stack named dev"):
        read_stack_outputs(tmp_path, "dev")


def test_no_pulumi_cli_says_how_to_do_without(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match="pass --outputs FILE"):
        read_stack_outputs(tmp_path, "dev")


def test_a_required_output_that_is_missing_names_it():
    assert require_output({"a": "x"}, "a", "dev", "is needed") == "x"
    with pytest.raises(UsageError, match="stack dev has no output 'cluster', which names it"):
        require_output({"cluster": None}, "cluster", "dev", "names it")
