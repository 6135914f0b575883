"""The MLflow tracking server option under mocks: off by default; on, a SageMaker MLflow
tracking server with its artifacts under mlflow/ of the artifact bucket, a role scoped to that
prefix and key, exported for mlscaffold.yaml, and passing both packs in every environment."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest

from mlscaffold.graph import ResourceGraph, run_under_mocks
from mlscaffold.policies import PACKS
from mlscaffold.policies.config import pack_config
from mlscaffold.policies.engine import evaluate
from mlscaffold.sample_data import write_sample_datasets
from mlscaffold.spec import validate_spec
from mlscaffold.stacks import MlPlatform, MlPlatformArgs
from mlscaffold.stacks.config import PlatformConfig, StackConfigError, platform_config

from .conftest import SAGEMAKER_TRUST, make_config

SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ON = {"tracking": {"mlflow_server": True}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    return write_sample_datasets(folder, "binary-classification", "label")[0]


def build(config: PlatformConfig, dataset: Path) -> ResourceGraph:
    """The deployed platform's graph (not a preview: every value known to the rules); serving
    gets a model version, as `make deploy` sets one."""
    config = config.model_copy(update={"serving": config.serving.model_copy(
        update={"model_key": f"models/{'c0' * 32}/model.tar.gz"})})

    def program() -> None:
        platform = MlPlatform(config.prefix, MlPlatformArgs(config=config, dataset=dataset))
        for name, value in platform.exports().items():
            pulumi.export(name, value)

    return run_under_mocks(program, project=config.project, stack=config.environment,
                           region=config.region, preview=False)


def test_no_tracking_server_unless_asked_for(dataset):
    graph = build(make_config("dev", serving="none"), dataset)
    assert not graph.of_type(SERVER, "mlscaffold:stacks:TrackingServer")
    assert "mlflow_tracking_server_arn" not in graph.outputs


def test_the_tracking_server_keeps_its_artifacts_in_the_artifact_bucket(dataset):
    graph = build(make_config("dev", ON, serving="none"), dataset)
    (component,) = graph.of_type("mlscaffold:stacks:TrackingServer")
    (platform,) = graph.of_type("mlscaffold:stacks:MlPlatform")
    assert component.parent == platform.urn and component.name == "demo-dev-tracking"
    children = [r for r in graph.resources if r.parent == component.urn]
    assert sorted(r.type for r in children) == ["aws:iam/role:Role", ROLE_POLICY, SERVER]
    assert all(r.name.startswith("demo-dev-tracking-") for r in children)

    (server,) = graph.of_type(SERVER)
    (bucket,) = [b for b in graph.of_type("aws:s3/bucket:Bucket")
                 if b.name == "demo-dev-registry-artifacts"]
    inputs = server.inputs
    assert inputs["trackingServerName"] == "demo-dev-mlflow"
    assert inputs["artifactStoreUri"] == f"s3://{bucket.outputs['bucket']}/mlflow"
    assert inputs["trackingServerSize"] == "Small"
    assert inputs["mlflowVersion"] == "3.0"
    assert inputs["automaticModelRegistration"] is False
    assert inputs["weeklyMaintenanceWindowStart"] == "Sun:03:00"
    assert inputs["tags"]["project"] == "demo" and inputs["tags"]["cost-center"]
    (role,) = [r for r in children if r.type == "aws:iam/role:Role"]
    (policy,) = [r for r in children if r.type == ROLE_POLICY]
    assert inputs["roleArn"] == role.outputs["arn"]
    # the server starts with its role able to reach the artifacts
    assert policy.urn in server.dependencies
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [SAGEMAKER_TRUST]
    assert graph.outputs["mlflow_tracking_server_arn"] == server.outputs["arn"]


def test_the_tracking_server_role_reaches_its_prefix_and_key_only(dataset):
    graph = build(make_config("prod", ON, serving="none"), dataset)
    (policy,) = [r for r in graph.of_type(ROLE_POLICY) if r.name.startswith("demo-prod-tracking")]
    (bucket,) = [b for b in graph.of_type("aws:s3/bucket:Bucket")
                 if b.name == "demo-prod-registry-artifacts"]
    (key,) = [k for k in graph.of_type("aws:kms/key:Key") if k.name == "demo-prod-data-key"]
    bucket_arn = bucket.outputs["arn"]
    statements = {s.pop("Sid"): s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements == {
        "ListArtifacts": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn,
                          "Condition": {"StringLike": {"s3:prefix": ["mlflow", "mlflow/*"]}}},
        "BucketLocation": {"Effect": "Allow", "Action": "s3:GetBucketLocation",
                           "Resource": bucket_arn},
        "Artifacts": {"Effect": "Allow",
                      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                      "Resource": f"{bucket_arn}/mlflow/*"},
        "ArtifactKey": {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                        "Resource": key.outputs["arn"],
                        "Condition": {"StringEquals": {
                            "kms:ViaService": "s3.us-east-1.amazonaws.com"}}},
    }


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
@pytest.mark.parametrize("serving", ["sagemaker", "none"])
def test_a_platform_with_a_tracking_server_passes_both_packs(dataset, environment, serving):
    size = {"prod": "Medium"}.get(environment, "Small")
    config = make_config(environment, {"tracking": {"mlflow_server": True, "server_size": size}},
                         serving=serving)
    graph = build(config, dataset)
    configs = {pack: pack_config(pack, environment=environment, profile=config.profile,
                                 region=config.region) for pack in PACKS}
    result = evaluate(graph, configs)
    assert [f.message for f in result.mandatory] == []
    assert [f.message for f in result.findings if "mlflow" in f.rule] == []
    # the tracking server is checked by its rules, not skipped
    assert {"sagemaker-mlflow-artifacts-in-stack-bucket", "mlflow-server-size",
            "required-tags"} <= {rule for rule, _ in _rules_seen(graph)}


def _rules_seen(graph: ResourceGraph) -> list[tuple[str, str]]:
    from mlscaffold.policies.registry import RULES

    return [(rule.name, resource.type) for rule in RULES.values()
            for resource in graph.of_type(SERVER) if resource.type in rule.resource_types]


@pytest.mark.parametrize(("tracking", "key", "fragment"), [
    ({"server_size": "Huge"}, "platform.tracking.server_size",
     "Input should be 'Small', 'Medium' or 'Large'"),
    ({"mlflow_version": "2.16.2"}, "platform.tracking.mlflow_version",
     "String should match pattern"),
    ({"maintenance_window": "Sunday 3am"}, "platform.tracking.maintenance_window",
     "String should match pattern"),
    ({"mlflow_sever": True}, "platform.tracking.mlflow_sever", "unknown key"),
])
def test_tracking_settings_are_validated(tracking, key, fragment):
    spec = validate_spec({"name": "demo"})
    with pytest.raises(StackConfigError) as raised:
        platform_config(spec, "dev", {"tracking": tracking})
    assert raised.value.key == key
    assert fragment in str(raised.value)
