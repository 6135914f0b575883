"""A lifecycle command runs without Pulumi, Copier or boto3: a fresh interpreter runs it and
reports which of those it imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import PATIENCE_SECONDS

# the SageMaker Python SDK too: only `baseline` and remote runs import it (~3.4 s)
HEAVY = ("pulumi", "pulumi_aws", "copier", "boto3", "sagemaker")
CODE = f"""
import json, sys
from mlscaffold.cli import main
sys.argv = ["mlscaffold", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {set(HEAVY)!r})
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


@pytest.mark.parametrize("command", [
    ["analyze"], ["list"], ["train", "--time", "1"], ["evaluate"], ["promote", "exp-001"],
    ["rollback", "--to", "staging"],
    ["predict", "--model", "exp-001", "--input", "{project}/datasets/test.csv", "--output",
     "{project}/p.csv"],
    ["drift", "--input", "{project}/datasets/train.csv"], ["serve", "--help"],
], ids=lambda command: command[0])
def test_a_lifecycle_command_imports_no_infrastructure_tool(make_project, command):
    project = make_project(with_experiment=True)
    if command[0] == "rollback":  # something to roll back to: two promotions
        for _ in range(2):
            subprocess.run([sys.executable, "-m", "mlscaffold", "promote", "exp-001", "--to",
                            "staging", "--force", "--project", str(project)],
                           check=True, capture_output=True, timeout=PATIENCE_SECONDS)
    args = [part.format(project=project) for part in command[1:]]
    done = subprocess.run([sys.executable, "-c", CODE, command[0], "--project", str(project),
                           *args], capture_output=True, text=True, timeout=PATIENCE_SECONDS)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, done.stderr


def test_the_probe_sees_an_import():
    """The check above can fail: the same probe reports a module the command did import."""
    done = subprocess.run([sys.executable, "-c", "import copier\n" + CODE, "--version"],
                          capture_output=True, text=True, timeout=PATIENCE_SECONDS)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["code"] == 0 and "copier" in report["heavy"]


def test_only_baseline_imports_the_sagemaker_sdk(trained_copy, tmp_path):
    """`baseline --dry-run` plans the SDK's job without importing it; other commands' help
    does not import it either (the same probe as above)."""
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"drift_baseline": {
        "region": "us-east-1", "bucket": "b", "role_arn": "r", "image_uri": "i",
        "kms_key_arn": "k", "subnet_ids": ["s"], "security_group_ids": ["g"],
        "instance_type": "ml.m5.xlarge", "data_prefix": "d", "runs_prefix": "u",
        "baseline_prefix": "p"}}))
    for argv in (["baseline", "--project", str(trained_copy), "--outputs", str(outputs),
                  "--dry-run"], ["promote", "--help"], ["drift", "--help"]):
        done = subprocess.run([sys.executable, "-c", CODE, *argv], capture_output=True,
                              text=True, timeout=PATIENCE_SECONDS)
        report = json.loads(done.stdout.splitlines()[-1])
        assert report == {"code": 0, "heavy": []}, (argv, done.stderr)
