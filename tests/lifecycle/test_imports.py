"""A lifecycle command runs without Pulumi, Copier or boto3: a fresh interpreter runs it and
reports which of those it imported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

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


# every lifecycle command, run one after another in one interpreter (each a fresh one cost
# seconds of imports apiece): a command that imports a heavy module is named by the probe
# (train's own seed: another model than the project's exp-001, which promote tells by its bytes)
COMMANDS = [
    ["analyze"], ["list"], ["train", "--time", "1", "--seed", "5"], ["evaluate"],
    ["promote", "exp-001"],
    ["promote", "exp-002", "--to", "staging", "--force"],
    ["promote", "exp-002", "--to", "staging"], ["rollback", "--to", "staging"],
    ["predict", "--model", "exp-001", "--input", "{project}/datasets/test.csv", "--output",
     "{project}/p.csv"],
    ["drift", "--input", "{project}/datasets/train.csv"], ["serve", "--help"],
]
SEQUENCE = f"""
import json, sys
from mlscaffold.cli import main
for argv in json.loads(sys.argv[1]):
    sys.argv = ["mlscaffold", *argv]
    try:
        main()
    except SystemExit as exit:
        code = exit.code
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {set(HEAVY)!r})
    print(json.dumps({{"command": argv[0], "code": code, "heavy": heavy}}))
"""


def test_no_lifecycle_command_imports_an_infrastructure_tool(make_project):
    project = make_project(with_experiment=True)
    commands = [[command[0], "--project", str(project),
                 *(part.format(project=project) for part in command[1:])]
                for command in COMMANDS]
    done = subprocess.run([sys.executable, "-c", SEQUENCE, json.dumps(commands)],
                          capture_output=True, text=True, timeout=PATIENCE_SECONDS)
    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [report["command"] for report in reports] == [command[0] for command in COMMANDS]
    assert [report for report in reports if report["code"] != 0 or report["heavy"]] == [], \
        done.stderr


def test_the_probe_sees_an_import():
    """The checks above can fail: the same probes report a module a command did import."""
    done = subprocess.run([sys.executable, "-c", "import copier\n" + CODE, "--version"],
                          capture_output=True, text=True, timeout=PATIENCE_SECONDS)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["code"] == 0 and "copier" in report["heavy"]
    done = subprocess.run([sys.executable, "-c", SEQUENCE.replace(
        "    heavy =", "    __import__('copier') if argv[0] == 'list' else None\n    heavy =", 1),
        json.dumps([["--version"], ["list", "--help"], ["--version"]])],
        capture_output=True, text=True, timeout=PATIENCE_SECONDS)
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [bool(report["heavy"]) for report in reports] == [False, True, True]


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


def test_list_and_promote_do_not_import_scikit_learn(trained_copy):
    """The commands that read experiments need the metrics' names and directions, not the
    estimators (scikit-learn takes over a second to import)."""
    probe = CODE.replace(repr(set(HEAVY)), repr({"sklearn"}))
    assert probe != CODE
    experiments = trained_copy / "experiments"
    shutil.copytree(experiments / "exp-001", experiments / "exp-002")  # a second experiment
    with (experiments / "exp-002" / "model.joblib").open("ab") as model:
        model.write(b"\0")  # another model's bytes: promote knows a model by its sha256
    index = json.loads((experiments / "index.json").read_text())
    index["experiments"].append({**index["experiments"][0], "id": "exp-002"})
    (experiments / "index.json").write_text(json.dumps(index))
    for argv in (["list"], ["promote", "exp-001", "--to", "staging"],
                 ["promote", "exp-002", "--to", "staging", "--force"],
                 ["promote", "exp-002", "--to", "staging"],
                 ["promote", "--rollback", "--to", "staging"]):
        done = subprocess.run([sys.executable, "-c", probe, *argv, "--project",
                               str(trained_copy)], capture_output=True, text=True,
                              timeout=PATIENCE_SECONDS)
        report = json.loads(done.stdout.splitlines()[-1])
        assert report == {"code": 0, "heavy": []}, (argv, done.stderr)
    done = subprocess.run([sys.executable, "-c", "import sklearn\n" + probe, "--version"],
                          capture_output=True, text=True, timeout=PATIENCE_SECONDS)
    assert "sklearn" in json.loads(done.stdout.splitlines()[-1])["heavy"]  # the probe sees it
