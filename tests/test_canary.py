"""`mlscaffold endpoint canary`: the version a KServe Serverless canary decides on, from a
generated project's stack config and a deployed stack's outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mlscaffold.canary import CanaryVersion, canary_version
from mlscaffold.errors import UsageError
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

KEY = f"models/{'ab' * 32}/model.tar.gz"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop-dev-serving:1.4.0"
CANARY = {"kserve_mode": "serverless", "rollout": {"strategy": "canary"}}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "shop", "serving": "kserve"})
    return create_project(tmp_path_factory.mktemp("p") / "shop", spec, git=False).path


@pytest.fixture
def project(made, tmp_path) -> Path:
    return shutil.copytree(made, tmp_path / "shop")


def _set_serving(project: Path, values: dict) -> None:
    path = project / "infra" / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["shop:platform"]["serving"].update(values)
    path.write_text(yaml.safe_dump(document))


def _outputs(project: Path, serving: dict | None) -> str:
    cluster = {"name": "shop-dev-eks", **({"serving": serving} if serving else {})}
    path = project / "outputs.json"
    path.write_text(json.dumps({"cluster": cluster, "model_key": KEY}))
    return str(path)


def test_the_version_the_cluster_serves(project, run_cli):
    _set_serving(project, CANARY)
    outputs = _outputs(project, {"model_url": f"s3://shop-dev-artifacts/{KEY}",
                                 "image_uri": IMAGE})
    assert canary_version(project, "dev", outputs) == CanaryVersion(KEY, "1.4.0")
    cli = run_cli(["endpoint", "canary", str(project), "--stack", "dev", "--outputs", outputs])
    assert cli.exit_code == 0, cli.stderr
    assert cli.stdout == f"model_key={KEY}\nimage_tag=1.4.0\n"


def test_a_stack_without_a_kserve_canary_is_refused_naming_the_settings(project):
    with pytest.raises(UsageError) as caught:
        canary_version(project, "dev", _outputs(project, None))
    assert caught.value.message == ("stack dev runs no KServe canary (serving.platform kserve, "
                                 "kserve_mode standard, rollout.strategy auto)")
    assert caught.value.hint == ("a canary needs serving.platform kserve, serving.kserve_mode "
                                 "serverless and serving.rollout.strategy canary in "
                                 "infra/Pulumi.dev.yaml")


@pytest.mark.parametrize(("serving", "message", "hint"), [
    (None, "stack dev's output 'cluster' names no model it serves",
     "deploy the stack with KServe serving first (make deploy STACK=dev)"),
    ({"model_url": "s3://shop-dev-artifacts/models/production/model.tar.gz",
      "image_uri": IMAGE},
     "stack dev serves models/production/model.tar.gz, not a content-addressed model version",
     "deploy a registered version first (make deploy STACK=dev)"),
])
def test_a_stack_that_serves_no_version_yet_is_refused(project, serving, message, hint):
    _set_serving(project, CANARY)
    with pytest.raises(UsageError) as caught:
        canary_version(project, "dev", _outputs(project, serving))
    assert (caught.value.message, caught.value.hint) == (message, hint)


def test_status_shows_the_share_the_stack_gives_the_deployed_version(project):
    """`mlscaffold status` reads the stack config's canary for the version the cluster gets
    (what the stack asks KServe for, not a reading of the cluster)."""
    from mlscaffold.canary import canary_status
    from mlscaffold.model_registry import registry_target

    path = project / "outputs.json"
    path.write_text(json.dumps({
        "model_package_group": "shop-dev", "artifact_bucket": "shop-dev-artifacts",
        "cluster": {"serving": {"model_url": f"s3://shop-dev-artifacts/{KEY}",
                                "image_uri": IMAGE}}}))
    assert registry_target(project, "dev", str(path)).canary_percent is None  # standard mode
    _set_serving(project, CANARY)
    assert registry_target(project, "dev", str(path)).canary_percent == 10
    _set_serving(project, {"rollout": {"strategy": "canary", "canary_decision": {
        "outcome": "rollback", "model_key": KEY, "image_tag": "1.4.0"}}})
    assert registry_target(project, "dev", str(path)).canary_percent == 0
    assert canary_status(None) == ""
    assert canary_status(10) == ("; canaryTrafficPercent 10: a canary taking 10% of the "
                                 "requests, the version before it the rest (make "
                                 "canary-promote or canary-rollback)")
    assert canary_status(100) == "; canaryTrafficPercent 100: promoted, it takes all the requests"
    assert canary_status(0) == ("; canaryTrafficPercent 0: rolled back, the version before it "
                                "takes all the requests")
