"""The infra program builds every environment's platform under Pulumi's mocks.

Run with mlscaffold installed: `python -m pytest infra/tests`. No cloud account is used.
"""

import functools
import json
from pathlib import Path

import pytest
import yaml
from mlscaffold.infra import preview_stack
from mlscaffold.lifecycle.baseline import load_target

PROJECT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((PROJECT / "mlscaffold.yaml").read_text(encoding="utf-8"))


@functools.cache
def _graph(environment):
    """The environment's platform under the mocks: one run, read by every test below."""
    return preview_stack(PROJECT, environment)


def _cluster_enabled(environment):
    stack = yaml.safe_load((PROJECT / "infra" / f"Pulumi.{environment}.yaml").read_text())
    platform = stack["config"].get(f"{SPEC['name']}:platform") or {}
    return (platform.get("cluster") or {}).get("enabled", SPEC["serving"] == "kserve")


@pytest.mark.parametrize("environment", SPEC["environments"])
def test_every_environment_builds(environment):
    """Both programs: infra/ (AWS) and, with a cluster, infra/cluster (in-cluster)."""
    graph = _graph(environment)
    types = {resource.type for resource in graph.resources}
    assert "aws:sagemaker/modelPackageGroup:ModelPackageGroup" in types
    if SPEC["serving"] == "sagemaker":
        assert "aws:sagemaker/endpoint:Endpoint" in types
    if SPEC["serving"] == "kserve":
        assert "kubernetes:serving.kserve.io/v1beta1:InferenceService" in types
    if SPEC["feature_store"] == "sagemaker":
        assert "aws:sagemaker/featureGroup:FeatureGroup" in types
    # the EKS cluster exists only where something runs on it
    assert ("aws:eks/cluster:Cluster" in types) == _cluster_enabled(environment)
    if _cluster_enabled(environment):
        assert graph.outputs["cluster"]["name"] == f"{SPEC['name']}-{environment}-eks"
        assert "mlscaffold:stacks:ClusterWorkloads" in types


@pytest.mark.parametrize("environment", SPEC["environments"])
def test_every_taggable_resource_carries_the_platform_tags(environment):
    graph = _graph(environment)
    tagged = [r for r in graph.resources if isinstance(r.inputs.get("tags"), dict)]
    assert tagged
    for resource in tagged:
        assert resource.inputs["tags"].get("env") == environment, resource.name
        assert resource.inputs["tags"].get("project") == SPEC["name"], resource.name


@pytest.mark.parametrize("environment", SPEC["environments"])
def test_the_baseline_command_reads_the_stack_outputs(environment):
    """`make baseline` pipes `pulumi stack output --json` into `mlscaffold baseline`."""
    graph = _graph(environment)
    monitored = "aws:sagemaker/monitoringSchedule:MonitoringSchedule" in {
        resource.type for resource in graph.resources}
    assert ("drift_baseline" in graph.outputs) == monitored
    if monitored:
        target = load_target(json.dumps(graph.outputs))
        assert target.bucket == graph.outputs["artifact_bucket"]
        assert target.baseline_prefix == "monitoring/baseline"
