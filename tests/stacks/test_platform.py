"""The whole platform: every serving x feature-store x environment combination builds under
mocks with the expected resources, wired, tagged and valid for Kubernetes."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import kubernetes_validate
import pulumi
import pytest

from mlscaffold.graph import ResourceGraph, run_under_mocks
from mlscaffold.sample_data import write_sample_datasets
from mlscaffold.stacks import MlPlatform, MlPlatformArgs
from mlscaffold.stacks.config import PlatformConfig

from .conftest import make_config

COMBINATIONS = list(itertools.product(("sagemaker", "kserve", "none"), ("sagemaker", "none"),
                                      ("dev", "staging", "prod")))
ALWAYS = {
    "mlscaffold:stacks:MlPlatform", "mlscaffold:stacks:Network", "mlscaffold:stacks:GpuCluster",
    "mlscaffold:stacks:ModelRegistry", "mlscaffold:stacks:Monitoring",
    "aws:ec2/vpc:Vpc", "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup",
    "aws:ec2/launchTemplate:LaunchTemplate", "kubernetes:helm.sh/v3:Release",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup", "aws:ecr/repository:Repository",
    "aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:sns/topic:Topic",
    "aws:cloudwatch/dashboard:Dashboard",
}
# the cluster's GPU and CPU alarms come from the CloudWatch Observability add-on, except with
# KServe, whose Prometheus watches the GPUs
NODE_ALARMS = {"aws:eks/addon:Addon", "aws:cloudwatch/metricAlarm:MetricAlarm",
               "aws:cloudwatch/logGroup:LogGroup"}
BY_SERVING = {
    "sagemaker": {"mlscaffold:stacks:Serving", "aws:sagemaker/model:Model",
                  "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                  "aws:sagemaker/endpoint:Endpoint", "aws:appautoscaling/policy:Policy",
                  "aws:sagemaker/monitoringSchedule:MonitoringSchedule", *NODE_ALARMS},
    "kserve": {"mlscaffold:stacks:Serving",
               "kubernetes:serving.kserve.io/v1beta1:InferenceService",
               "kubernetes:core/v1:Namespace"},
    "none": NODE_ALARMS,
}
FEATURE_STORE = {"mlscaffold:stacks:FeatureStore", "aws:sagemaker/featureGroup:FeatureGroup",
                 "aws:glue/catalogDatabase:CatalogDatabase"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    return write_sample_datasets(folder, "binary-classification", "label")[0]


def _build(config: PlatformConfig, dataset: Path) -> ResourceGraph:
    def program() -> None:
        platform = MlPlatform(config.prefix, MlPlatformArgs(config=config, dataset=dataset))
        for name, value in platform.exports().items():
            pulumi.export(name, value)

    return run_under_mocks(program, project=config.project, stack=config.environment,
                           region=config.region)


@pytest.mark.parametrize(("serving", "feature_store", "environment"), COMBINATIONS)
def test_platform_builds_with_the_expected_resources(dataset, serving, feature_store,
                                                     environment):
    config = make_config(environment, serving=serving, feature_store=feature_store)
    graph = _build(config, dataset)
    types = {r.type for r in graph.resources}
    expected = ALWAYS | BY_SERVING[serving] | (FEATURE_STORE if feature_store != "none" else set())
    assert expected <= types, sorted(expected - types)
    if serving == "none":
        assert "mlscaffold:stacks:Serving" not in types
    if serving == "kserve":
        assert "aws:eks/addon:Addon" not in types
    if feature_store == "none":
        assert not FEATURE_STORE & types

    # one tree: every resource descends from the platform component
    by_urn = graph.by_urn()
    root = graph.named(config.prefix)
    for resource in graph.resources:
        node = resource
        while node.parent:
            node = by_urn[node.parent]
        assert node.urn == root.urn, f"{resource.name} is outside the platform"

    # every taggable AWS resource carries the platform's tags
    for resource in graph.resources:
        if resource.type.startswith("aws:") and isinstance(resource.inputs.get("tags"), dict):
            for key, value in config.tags.items():
                assert resource.inputs["tags"].get(key) == value, (resource.name, key)

    gpu_groups = [r for r in graph.of_type("aws:eks/nodeGroup:NodeGroup")
                  if r.inputs.get("taints")]
    assert len(gpu_groups) == len(config.cluster.gpu_node_groups)
    capacity = "ON_DEMAND" if environment == "prod" else "SPOT"
    assert {g.inputs["capacityType"] for g in gpu_groups} == {capacity}


def test_stack_outputs_are_wired(dataset):
    config = make_config("dev", serving="sagemaker", feature_store="sagemaker")
    graph = _build(config, dataset)
    outputs = graph.outputs
    assert outputs["cluster_name"] == "demo-dev-eks"
    assert outputs["endpoint_name"] == "demo-dev"
    (group,) = graph.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    assert outputs["feature_group"] == group.inputs["featureGroupName"]
    # what `mlscaffold features ingest` reads: the region and the deployed schema
    settings = outputs["feature_store"]
    assert settings["region"] == "us-east-1"
    assert [(f["name"], f["type"]) for f in settings["features"]] == [
        (d["featureName"], d["featureType"]) for d in group.inputs["featureDefinitions"]]
    assert settings["record_identifier"] == group.inputs["recordIdentifierFeatureName"]
    assert settings["event_time"] == group.inputs["eventTimeFeatureName"]
    for key in ("vpc_id", "artifact_bucket", "repository_url", "model_package_group",
                "alert_topic_arn"):
        assert outputs[key], key


def test_the_program_logs_the_derived_schema(dataset, caplog):
    config = make_config("dev", feature_store="sagemaker",
                         features={"types": {"support_tickets": "Fractional"}})
    with caplog.at_level(logging.INFO):
        graph = _build(config, dataset)
    (message,) = [r.getMessage() for r in caplog.records
                  if r.getMessage().startswith("feature group schema")]
    assert "  support_tickets: Fractional (declared; column 'support_tickets')" in message
    assert "  customer_id: String (inferred; column 'customer_id') record identifier" in message
    assert "  event_time: String (generated; filled at ingestion) event time" in message
    (group,) = graph.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    assert {"featureName": "support_tickets", "featureType": "Fractional"} in \
        group.inputs["featureDefinitions"]


def test_without_a_feature_store_nothing_is_exported_for_it(dataset):
    outputs = _build(make_config("dev"), dataset).outputs
    assert "feature_group" not in outputs and "feature_store" not in outputs


@pytest.mark.parametrize("serving", ["sagemaker", "none"])
def test_cloudwatch_observability_addon_is_wired_to_the_cluster(dataset, serving):
    config = make_config("dev", serving=serving)
    graph = _build(config, dataset)
    (addon,) = graph.of_type("aws:eks/addon:Addon")
    assert addon.inputs["clusterName"] == "demo-dev-eks"
    node_groups = {g.urn for g in graph.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert len(node_groups) == 1 + len(config.cluster.gpu_node_groups)
    assert node_groups <= set(addon.dependencies)  # its pods need nodes
    # trusted through the cluster's OIDC provider, for the agent's service account only
    role = graph.named("demo-dev-monitoring-cloudwatch-agent-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert "system:serviceaccount:amazon-cloudwatch:cloudwatch-agent" in (
        trust["Condition"]["StringEquals"].values())
    alarms = {a.inputs["name"]: a.inputs
              for a in graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms["demo-dev-cluster-gpu-utilization"]["dimensions"] == {
        "ClusterName": "demo-dev-eks"}


def test_data_key_policy_lets_only_the_services_that_need_it_use_the_key(dataset):
    config = make_config("dev")
    key = _build(config, dataset).named("demo-dev-data-key")
    assert key.inputs["enableKeyRotation"] is True
    statements = json.loads(key.inputs["policy"])["Statement"]
    services = {s["Principal"].get("Service") for s in statements} - {None}
    assert services == {"logs.us-east-1.amazonaws.com", "cloudwatch.amazonaws.com"}


def _kubernetes_version(config: PlatformConfig) -> str:
    return f"{config.cluster.kubernetes_version}.0"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_kubernetes_objects_validate_against_the_cluster_version(dataset, environment):
    config = make_config(environment, serving="kserve")
    graph = _build(config, dataset)
    objects = [r for r in graph.resources if r.type.startswith("kubernetes:")
               and r.type.split(":")[1].split("/")[0] in {"core", "apps", "rbac", "batch"}]
    assert objects, "the KServe platform declares Kubernetes objects"
    for resource in objects:
        kubernetes_validate.validate(resource.inputs, _kubernetes_version(config), strict=True)


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_inference_service_pod_validates_as_a_deployment(dataset, environment):
    config = make_config(environment, serving="kserve")
    graph = _build(config, dataset)
    service = graph.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")[0]
    predictor = service.inputs["spec"]["predictor"]
    pod = {key: predictor[key] for key in ("containers", "tolerations", "nodeSelector",
                                           "serviceAccountName", "securityContext")
           if key in predictor}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "predictor", "namespace": service.inputs["metadata"]["namespace"]},
        "spec": {"selector": {"matchLabels": {"app": "predictor"}},
                 "template": {"metadata": {"labels": {"app": "predictor"}}, "spec": pod}},
    }
    kubernetes_validate.validate(deployment, _kubernetes_version(config), strict=True)
    if config.serving.gpus:  # on GPU nodes: selects a GPU pool's labels
        gpu_pool = config.cluster.gpu_node_groups[0]
        assert predictor["nodeSelector"].items() <= gpu_pool.labels.items()
    else:  # dev serves on CPU: no GPU placement at all
        assert "nodeSelector" not in predictor and "tolerations" not in predictor
