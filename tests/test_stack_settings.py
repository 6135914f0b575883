"""A stack's settings (infra/Pulumi.<env>.yaml) that contradict mlscaffold.yaml, or ask for what
AWS or the cluster cannot give, are refused by `check` with one line naming the file, the key
and the fix; what the blueprint writes passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "r7", "serving": "sagemaker", "region": "eu-west-1"})
    return create_project(tmp_path_factory.mktemp("s") / "r7", spec, git=False).path


@pytest.fixture
def project(made, tmp_path) -> Path:
    copy = tmp_path / "r7"
    shutil.copytree(made, copy)
    return copy


def _edit(project: Path, change, stack: str = "dev") -> None:
    path = project / "infra" / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"])
    path.write_text(yaml.safe_dump(document))


def test_the_blueprints_stacks_pass(run_cli, made):
    for stack in ("dev", "staging", "prod"):
        result = run_cli(["check", str(made), "--stack", stack])
        assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("change", "message"), [
    # the repro: the dev stack would have created r7-prod-* resources, the prod stack's names
    (lambda c: c["r7:platform"].update(environment="prod"),
     "infra/Pulumi.dev.yaml: stack config platform.environment: not a stack setting: the "
     "environment is the stack's name (dev)"),
    (lambda c: c["r7:platform"].update(project="other"),
     "infra/Pulumi.dev.yaml: stack config platform.project: not a stack setting: it comes from "
     "'name' of mlscaffold.yaml"),
])
def test_a_stack_setting_that_contradicts_the_spec_is_refused(run_cli, project, change,
                                                                message):
    _edit(project, change)
    result = run_cli(["check", str(project), "--stack", "dev"])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(("region", "message"), [
    ("us-west-2",
     "infra/Pulumi.dev.yaml: stack config aws:region: 'us-west-2' is not the region of "
     "mlscaffold.yaml ('eu-west-1'): set aws:region back to eu-west-1, or change region in "
     "mlscaffold.yaml and run mlscaffold update"),
    ("us-east-9",
     "infra/Pulumi.dev.yaml: stack config aws:region: 'us-east-9' is not the region of "
     "mlscaffold.yaml ('eu-west-1'), nor an AWS region mlscaffold knows: set aws:region back "
     "to eu-west-1"),
])
@pytest.mark.parametrize("command", ["check", "cost", "preview"])
def test_a_stack_in_another_region_than_the_spec_is_refused(run_cli, project, region, message,
                                                              command):
    """Prices, Model Monitor's image account and the zones are the spec region's."""
    _edit(project, lambda c: c.update({"aws:region": region}))
    result = run_cli([command, str(project), "--stack", "dev"])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_stack_serving_on_another_platform_than_the_spec_is_refused(run_cli, project):
    """The repro: a sagemaker project whose dev stack would build a KServe InferenceService."""
    _edit(project, lambda c: c["r7:platform"]["serving"].update(platform="kserve"))
    result = run_cli(["check", str(project), "--stack", "dev"])
    assert result.exit_code == 2
    assert ("infra/Pulumi.dev.yaml: stack config platform.serving.platform: 'kserve' "
            "contradicts serving 'sagemaker' of mlscaffold.yaml") in result.stderr
    assert result.stderr.count("\n") == 1
