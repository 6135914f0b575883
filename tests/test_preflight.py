"""`preflight`: capacity needs from built graphs, quotas read through Service Quotas, the
comparison, and the command end to end with the AWS client stubbed.

Quotas are read with botocore's Stubber, which checks every request and response against the
real service-quotas model: moto 5.2's servicequotas implements only the VPC defaults
(ListAWSDefaultServiceQuotas, GetServiceQuota), not ListServiceQuotas nor the ec2 and
sagemaker quotas preflight reads. SageMaker quota codes below are stand-ins: preflight finds
SageMaker quotas by their exact name and takes the code from the response.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from mlscaffold import preflight
from mlscaffold.graph import GraphResource, ResourceGraph
from mlscaffold.preflight import (
    EC2_VCPU_QUOTAS,
    NOT_FOUND,
    OK,
    SHORT,
    SHORT_AT_FULL_SCALE,
    Need,
    QuotaValue,
    compare,
    ec2_quota,
    needs_of,
    read_quotas,
    request_command,
)
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

from .tools.environments import without_aws_credentials

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
INSTANCE = "aws:ec2/instance:Instance"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
TARGET = "aws:appautoscaling/target:Target"
JOB = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
GPU_LABELS = {"nvidia.com/gpu.present": "true", "mlscaffold.io/node-pool": "gpu"}

STANDARD = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
STANDARD_SPOT = "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"
G_ON_DEMAND = "Running On-Demand G and VT instances"
G_SPOT = "All G and VT Spot Instance Requests"


def _resource(type_: str, name: str, inputs: dict[str, Any]) -> GraphResource:
    return GraphResource(urn=f"urn:pulumi:dev::demo::{type_}::{name}", type=type_, name=name,
                         custom=True, parent=None, dependencies=(), inputs=inputs)


def _graph(*resources: GraphResource) -> ResourceGraph:
    return ResourceGraph("demo", "dev", sorted(resources, key=lambda r: r.urn))


def _node_pool(name: str, requirements: list[dict[str, Any]],
               limits: dict[str, Any] | None) -> GraphResource:
    spec: dict[str, Any] = {"template": {"spec": {"requirements": requirements,
                                                  "nodeClassRef": {"name": "default"}}}}
    if limits is not None:
        spec["limits"] = limits
    return _resource(NODE_POOL, name, {"apiVersion": "karpenter.sh/v1", "kind": "NodePool",
                                       "metadata": {"name": name}, "spec": spec})


def _in(key: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": list(values)}


def _summary(graph: ResourceGraph) -> list[tuple[str, str, int, int]]:
    return [(n.quota, n.resource, n.deploy, n.full_scale) for n in needs_of(graph).needs]


# ---------------------------------------------------------------- the quota table


@pytest.mark.parametrize(("family", "purchase", "code"), [
    ("m6i", "on-demand", "L-1216C47A"), ("t4g", "on-demand", "L-1216C47A"),
    ("im4gn", "on-demand", "L-1216C47A"), ("z1d", "spot", "L-34B43A08"),
    ("g5", "on-demand", "L-DB2E81BA"), ("g6e", "spot", "L-3819A6DF"),
    ("gr6", "on-demand", "L-DB2E81BA"), ("vt1", "spot", "L-3819A6DF"),
    ("p5", "on-demand", "L-417A185B"), ("p4d", "spot", "L-7212CCBC"),
    ("p3", "spot", "L-7212CCBC"), ("p5en", "spot", "L-C4BD4855"),
    ("inf2", "on-demand", "L-1945791B"), ("trn1n", "spot", "L-6B0D517C"),
    ("trn2", "on-demand", "L-2C3B7624"), ("dl1", "on-demand", "L-6E869C2A"),
    ("f1", "spot", "L-88CF9481"), ("x2idn", "on-demand", "L-7295265B"),
    ("hpc7g", "on-demand", "L-F7808C92"), ("u-6tb1", "on-demand", "L-43DA4232"),
    ("u7i-12tb", "on-demand", "L-43DA4232"), ("mac1", "on-demand", None),
    ("hpc7g", "spot", None), ("p6-b200", "spot", None),
])
def test_each_family_maps_to_its_vcpu_quota(family, purchase, code):
    quota = ec2_quota(family, purchase)
    assert (quota.code if quota else None) == code


def test_the_quota_table_has_one_row_per_code_and_consistent_names():
    codes = [q.code for q in EC2_VCPU_QUOTAS]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"L-[0-9A-F]{8}", code) for code in codes)
    for quota in EC2_VCPU_QUOTAS:
        if quota.purchase == "on-demand":
            assert re.fullmatch(r"Running On-Demand .+ instances", quota.name), quota
        else:
            assert re.fullmatch(r"All .+ Spot Instance Requests", quota.name), quota
    # no family prefix is claimed twice for one purchase option
    for purchase in ("on-demand", "spot"):
        prefixes = [p for q in EC2_VCPU_QUOTAS if q.purchase == purchase for p in q.families]
        assert len(prefixes) == len(set(prefixes)), purchase


def test_the_users_table_of_quota_codes_is_the_code_table():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "deploy.md").read_text()
    section = docs.split("## Quotas", 1)[1].split("\n## ", 1)[0]
    for quota in EC2_VCPU_QUOTAS:
        assert f"`{quota.code}` {quota.name}" in section, quota
    assert set(re.findall(r"L-[0-9A-F]{8}", section)) == {q.code for q in EC2_VCPU_QUOTAS}


def test_request_command_is_the_aws_cli_call():
    assert request_command("eu-west-1", "ec2", "L-DB2E81BA", 64.0) == (
        "aws service-quotas request-service-quota-increase --region eu-west-1 "
        "--service-code ec2 --quota-code L-DB2E81BA --desired-value 64")


# ---------------------------------------------------------------- needs from graphs


def test_node_groups_count_their_largest_type_per_quota():
    graph = _graph(
        _resource(NODE_GROUP, "system", {
            "instanceTypes": ["m6i.large", "m6i.xlarge"], "capacityType": "ON_DEMAND",
            "scalingConfig": {"minSize": 2, "desiredSize": 3, "maxSize": 5}}),
        _resource(NODE_GROUP, "gpu", {
            "instanceTypes": ["g5.xlarge", "g6.2xlarge"], "capacityType": "SPOT",
            "scalingConfig": {"minSize": 1, "desiredSize": 0, "maxSize": 4}}))
    needs = needs_of(graph)
    assert _summary(graph) == [("L-3819A6DF", "gpu", 8, 32), ("L-1216C47A", "system", 12, 20)]
    assert needs.needs[0].name == G_SPOT
    assert needs.needs[0].basis == (
        "node group gpu: 1 x g6.2xlarge (8 vCPUs, the largest of g6.2xlarge, g5.xlarge) spot "
        "(minimum/desired size), 4 at full scale (maximum size)")
    assert needs.needs[1].unit == "vCPUs" and needs.notes == ()


def test_a_node_group_spanning_two_classes_needs_both_quotas():
    graph = _graph(_resource(NODE_GROUP, "mixed", {
        "instanceTypes": ["g5.2xlarge", "p3.2xlarge"], "capacityType": "ON_DEMAND",
        "scalingConfig": {"minSize": 0, "desiredSize": 1, "maxSize": 2}}))
    assert _summary(graph) == [("L-DB2E81BA", "mixed", 8, 16), ("L-417A185B", "mixed", 8, 16)]


def test_unknown_instance_types_are_noted_not_guessed():
    graph = _graph(_resource(NODE_GROUP, "odd", {
        "instanceTypes": ["z9.huge"], "scalingConfig": {"minSize": 1, "maxSize": 1}}),
        _resource(NODE_GROUP, "later", {"instanceTypes": None}))
    needs = needs_of(graph)
    assert needs.needs == ()
    assert needs.notes == (
        "node group later: instanceTypes unknown before deployment; its quota is not checked",
        "node group odd: vCPUs of instance type 'z9.huge' are unknown (add it to "
        "mlscaffold.stacks.instances); its quota is not checked")


def test_karpenter_node_pools_start_at_zero_and_scale_to_their_cpu_limit():
    graph = _graph(
        _node_pool("gpu", [_in("karpenter.k8s.aws/instance-family", "g5", "g6"),
                           _in("karpenter.sh/capacity-type", "spot", "on-demand")],
                   {"cpu": "64", "nvidia.com/gpu": "4"}),
        _node_pool("train", [_in("node.kubernetes.io/instance-type", "p4d.24xlarge",
                                 "p5.48xlarge"),
                             _in("karpenter.sh/capacity-type", "spot")], {"cpu": "384000m"}))
    needs = needs_of(graph)
    assert _summary(graph) == [("L-DB2E81BA", "gpu", 0, 64), ("L-3819A6DF", "gpu", 0, 64),
                               ("L-7212CCBC", "train", 0, 384), ("L-C4BD4855", "train", 0, 384)]
    assert needs.needs[1].basis == ("Karpenter NodePool gpu: starts at zero; full scale "
                                    "limits.cpu 64 vCPUs of g5, g6 spot")
    assert needs.notes == ()


def test_a_karpenter_cpu_pool_counts_against_the_standard_quotas():
    """m, c and t families are standard-class: the CPU pool's limits.cpu is a need of the
    standard on-demand or spot quota, once for all its families."""
    graph = _graph(
        _node_pool("cpu", [_in("karpenter.k8s.aws/instance-family", "m7i", "m6i", "c6i"),
                           _in("karpenter.k8s.aws/instance-size", "large", "xlarge"),
                           _in("karpenter.sh/capacity-type", "spot")], {"cpu": "8"}),
        _node_pool("cpu-prod", [_in("karpenter.k8s.aws/instance-family", "m7i", "t3"),
                                _in("karpenter.sh/capacity-type", "on-demand")],
                   {"cpu": "64"}))
    needs = needs_of(graph)
    assert _summary(graph) == [("L-34B43A08", "cpu", 0, 8), ("L-1216C47A", "cpu-prod", 0, 64)]
    assert needs.needs[0].name == STANDARD_SPOT and needs.needs[1].name == STANDARD
    assert needs.needs[0].basis == ("Karpenter NodePool cpu: starts at zero; full scale "
                                    "limits.cpu 8 vCPUs of m7i, m6i, c6i spot")
    assert needs.notes == ()


def test_karpenter_categories_and_unrestricted_capacity_types():
    graph = _graph(_node_pool("any-gpu", [_in("karpenter.k8s.aws/instance-category", "g", "p")],
                              {"cpu": 32}))
    needs = needs_of(graph)
    assert _summary(graph) == [
        ("L-DB2E81BA", "any-gpu", 0, 32), ("L-417A185B", "any-gpu", 0, 32),
        ("L-3819A6DF", "any-gpu", 0, 32), ("L-7212CCBC", "any-gpu", 0, 32),
        ("L-C4BD4855", "any-gpu", 0, 32)]
    assert needs.notes == ("Karpenter NodePool any-gpu: karpenter.sh/capacity-type is not "
                           "restricted; counted against both the on-demand and the spot "
                           "quotas",)


@pytest.mark.parametrize(("requirements", "limits", "note"), [
    ([_in("karpenter.k8s.aws/instance-family", "g5")], None,
     "Karpenter NodePool pool: no limits.cpu, so its full scale has no bound; not checked "
     "(set spec.limits.cpu)"),
    ([_in("kubernetes.io/arch", "amd64")], {"cpu": "16"},
     "Karpenter NodePool pool: its requirements do not restrict instance families "
     "(instance-family, instance-type or instance-category), so any quota may be used; "
     "not checked"),
])
def test_unbounded_node_pools_are_noted(requirements, limits, note):
    needs = needs_of(_graph(_node_pool("pool", requirements, limits)))
    assert needs.needs == () and needs.notes == (note,)


def test_the_relay_instance_counts_one_instance():
    graph = _graph(_resource(INSTANCE, "relay", {"instanceType": "t4g.nano"}),
                   _resource(INSTANCE, "spot-relay", {
                       "instanceType": "t4g.micro",
                       "instanceMarketOptions": {"marketType": "spot"}}))
    needs = needs_of(graph)
    assert _summary(graph) == [("L-1216C47A", "relay", 2, 2), ("L-34B43A08", "spot-relay", 2, 2)]
    assert needs.needs[0].basis == "instance relay: 1 x t4g.nano (2 vCPUs) on-demand"
    assert needs.needs[1].name == STANDARD_SPOT


def test_endpoints_need_twice_their_instances_and_monitoring_jobs_their_own():
    graph = _graph(
        _resource(ENDPOINT_CONFIG, "serving-config", {"productionVariants": [
            {"variantName": "primary", "instanceType": "ml.g5.xlarge",
             "initialInstanceCount": 2}]}),
        _resource(ENDPOINT, "serving-endpoint", {"name": "demo-dev",
                                                 "endpointConfigName": "serving-config"}),
        _resource(TARGET, "serving-scaling", {"serviceNamespace": "sagemaker",
                                              "resourceId": "endpoint/demo-dev/variant/primary",
                                              "minCapacity": 2, "maxCapacity": 5}),
        _resource(JOB, "drift", {"jobResources": {"clusterConfig": {
            "instanceType": "ml.m5.xlarge", "instanceCount": 1, "volumeSizeInGb": 20}}}))
    needs = needs_of(graph)
    assert _summary(graph) == [("ml.g5.xlarge for endpoint usage", "serving-config", 4, 10),
                               ("ml.m5.xlarge for processing job usage", "drift", 1, 1)]
    assert needs.needs[0].unit == "instances"
    assert needs.needs[0].basis == (
        "endpoint configuration serving-config variant primary: 2 x ml.g5.xlarge, x 2 while "
        "a blue/green update runs the new fleet beside the old; full scale 2 x 5 (autoscaling "
        "maximum)")
    assert needs.needs[1].basis == ("Model Monitor job drift: 1 x ml.m5.xlarge per scheduled "
                                    "run")


def _inference_service(min_replicas: int, gpus: int) -> GraphResource:
    limits: dict[str, Any] = {"cpu": "1", "memory": "2Gi"}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    return _resource(ISVC, "model", {"spec": {"predictor": {
        "minReplicas": min_replicas, "maxReplicas": 6, "nodeSelector": dict(GPU_LABELS),
        "containers": [{"name": "kserve-container", "resources": {"limits": limits}}]}}})


def _gpu_pool(*capacity: str) -> GraphResource:
    pool = _node_pool("gpu", [_in("karpenter.k8s.aws/instance-family", "g5", "g6"),
                              _in("karpenter.k8s.aws/instance-size", "xlarge", "2xlarge"),
                              _in("karpenter.sh/capacity-type", *capacity)],
                      {"cpu": "64", "nvidia.com/gpu": "8"})
    pool.inputs["spec"]["template"]["metadata"] = {"labels": dict(GPU_LABELS)}
    return pool


@pytest.mark.parametrize(("capacity", "code", "purchase"), [
    (("on-demand",), "L-DB2E81BA", "on-demand"),
    (("spot",), "L-3819A6DF", "spot"),
    (("spot", "on-demand"), "L-DB2E81BA",
     "on-demand (the pool allows spot too; on-demand is the fallback)"),
])
def test_a_gpu_predictors_minimum_is_a_deploy_need_of_its_pools_quota(capacity, code,
                                                                      purchase):
    """pulumi up waits until the InferenceService is Ready: its minReplicas need GPU nodes
    right away, on the type the cost estimator places them on (the cheapest that holds a
    replica: g6.xlarge, 1 GPU, 4 vCPUs), against the quota of the pool's purchase option."""
    from mlscaffold.policies.cost.estimate import estimate, graph_resources

    graph = _graph(_gpu_pool(*capacity), _inference_service(3, 1))
    needs = needs_of(graph)
    predictor = [n for n in needs.needs if n.resource == "model"]
    assert [(n.quota, n.deploy, n.full_scale) for n in predictor] == [(code, 12, 0)]
    assert predictor[0].basis == (
        f"InferenceService model: minReplicas 3 x 1 GPU keep 3 x g6.xlarge (4 vCPUs) {purchase} "
        "of NodePool gpu up; pulumi up waits until it is Ready")
    # the pool's own need is unchanged: nothing at first, limits.cpu at full scale
    assert all((n.deploy, n.full_scale) == (0, 64) for n in needs.needs if n.resource == "gpu")
    # one reckoning: the estimator prices the same nodes
    [line] = [line for line in estimate(graph_resources(graph), "us-east-1").lines
              if line.resource == "model"]
    assert line.basis.startswith("minReplicas 3 x 1 GPU keep 3 x g6.xlarge ")


def test_a_predictor_on_a_gpu_node_group_needs_the_nodes_beyond_its_desired_size():
    group = _resource(NODE_GROUP, "gpu-group", {
        "instanceTypes": ["g5.xlarge"], "capacityType": "SPOT", "labels": dict(GPU_LABELS),
        "scalingConfig": {"minSize": 0, "desiredSize": 1, "maxSize": 4}})
    graph = _graph(group, _inference_service(3, 1))
    assert _summary(graph) == [("L-3819A6DF", "gpu-group", 4, 16), ("L-3819A6DF", "model", 8, 0)]
    assert needs_of(graph).needs[1].basis == (
        "InferenceService model: minReplicas 3 x 1 GPU keep 2 x g5.xlarge (4 vCPUs) spot of "
        "node group gpu-group up beyond its desired size 1; pulumi up waits until it is Ready")


def test_a_serverless_canary_needs_both_revisions_minimum():
    """KServe Serverless: a new version's revision starts its minReplicas beside the previous
    one's before it takes any traffic; the monthly estimate prices the one that stays."""
    from mlscaffold.policies.cost.estimate import estimate, graph_resources

    service = _inference_service(3, 1)
    service.inputs["spec"]["predictor"]["canaryTrafficPercent"] = 10
    graph = _graph(_gpu_pool("on-demand"), service)
    (need,) = [n for n in needs_of(graph).needs if n.resource == "model"]
    assert (need.deploy, need.basis) == (24, (
        "InferenceService model: minReplicas 3 x 2 revisions (a canary and the one before it) "
        "x 1 GPU keep 6 x g6.xlarge (4 vCPUs) on-demand of NodePool gpu up; pulumi up waits "
        "until it is Ready"))
    [line] = [line for line in estimate(graph_resources(graph), "us-east-1").lines
              if line.resource == "model"]
    assert line.basis.startswith("minReplicas 3 x 1 GPU keep 3 x g6.xlarge ")


@pytest.mark.parametrize(("min_replicas", "gpus"), [(2, 0), (0, 1)])
def test_a_cpu_predictor_or_one_scaled_to_zero_adds_no_gpu_need(min_replicas, gpus):
    graph = _graph(_gpu_pool("on-demand"), _inference_service(min_replicas, gpus))
    assert [n.resource for n in needs_of(graph).needs] == ["gpu"]


def test_generated_stacks_need_what_their_config_sizes_say(quotas_project):
    from mlscaffold.infra import preview_stack

    dev = [(n.quota, n.deploy, n.full_scale) for n in
           needs_of(preview_stack(quotas_project, "dev")).needs]
    prod = [(n.quota, n.deploy, n.full_scale) for n in
            needs_of(preview_stack(quotas_project, "prod")).needs]
    # the CPU and GPU pools (Karpenter NodePools) from zero to their limits.cpu, on spot in
    # dev and on demand in prod; the API relay (t4g.nano); the system node group
    assert dev == [("L-34B43A08", 0, 8), ("L-3819A6DF", 0, 16), ("L-1216C47A", 2, 2),
                   ("L-1216C47A", 4, 6), ("ml.t2.medium for endpoint usage", 2, 4),
                   ("ml.m5.xlarge for processing job usage", 1, 1)]
    assert prod == [("L-1216C47A", 0, 64), ("L-DB2E81BA", 0, 128), ("L-1216C47A", 2, 2),
                    ("L-1216C47A", 12, 24), ("ml.m5.xlarge for endpoint usage", 4, 12),
                    ("ml.m5.xlarge for processing job usage", 1, 1)]


# ---------------------------------------------------------------- reading quotas

SERVICE_NAMES = {"ec2": "Amazon Elastic Compute Cloud (Amazon EC2)",
                 "sagemaker": "Amazon SageMaker"}


def _quota(service: str, code: str, name: str, value: float, *, default: bool = False,
           adjustable: bool = True) -> dict[str, Any]:
    """One quota as ListServiceQuotas (applied) or ListAWSDefaultServiceQuotas returns it."""
    account = "" if default else "123456789012"
    return {"ServiceCode": service, "ServiceName": SERVICE_NAMES[service],
            "QuotaArn": f"arn:aws:servicequotas:us-east-1:{account}:{service}/{code}",
            "QuotaCode": code, "QuotaName": name, "Value": value, "Unit": "None",
            "Adjustable": adjustable, "GlobalQuota": False}


def _client() -> tuple[Any, Stubber]:
    client = boto3.client("service-quotas", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, Stubber(client)


def _page(stubber: Stubber, operation: str, service: str, quotas: list[dict[str, Any]],
          token: str | None = None, next_token: str | None = None) -> None:
    expected = {"ServiceCode": service, "MaxResults": 100}
    if token:
        expected["NextToken"] = token
    response: dict[str, Any] = {"Quotas": quotas}
    if next_token:
        response["NextToken"] = next_token
    stubber.add_response(operation, response, expected)


def test_applied_values_are_read_across_pages_and_reading_stops_when_all_are_found():
    client, stubber = _client()
    _page(stubber, "list_service_quotas", "ec2",
          [_quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", 5.0),
           _quota("ec2", "L-1216C47A", STANDARD, 64.0)], next_token="page-2")
    _page(stubber, "list_service_quotas", "ec2",
          [_quota("ec2", "L-DB2E81BA", G_ON_DEMAND, 8.0)], token="page-2", next_token="page-3")
    # no third page is stubbed: asking for it would fail the test
    with stubber:
        found = read_quotas(client, "ec2", {"L-1216C47A", "L-DB2E81BA"})
    stubber.assert_no_pending_responses()
    assert found == {
        "L-1216C47A": QuotaValue("ec2", "L-1216C47A", STANDARD, 64.0),
        "L-DB2E81BA": QuotaValue("ec2", "L-DB2E81BA", G_ON_DEMAND, 8.0)}


def test_quotas_never_adjusted_come_from_the_aws_defaults():
    client, stubber = _client()
    endpoint = "ml.g5.xlarge for endpoint usage"
    processing = "ml.m5.xlarge for processing job usage"
    _page(stubber, "list_service_quotas", "sagemaker",
          [_quota("sagemaker", "L-0307F515", processing, 4.0)])
    _page(stubber, "list_aws_default_service_quotas", "sagemaker",
          [_quota("sagemaker", "L-0307F515", processing, 1.0, default=True),
           _quota("sagemaker", "L-1928E07B", endpoint, 0.0, default=True)])
    with stubber:
        found = read_quotas(client, "sagemaker", {endpoint, processing, "ml.x9.huge for "
                                                  "endpoint usage"})
    stubber.assert_no_pending_responses()
    # the applied value wins over the default; a quota the region lacks is left out
    assert found == {
        processing: QuotaValue("sagemaker", "L-0307F515", processing, 4.0),
        endpoint: QuotaValue("sagemaker", "L-1928E07B", endpoint, 0.0, default=True)}


# ---------------------------------------------------------------- comparison


def _need(deploy: int, full_scale: int, resource: str = "gpu") -> Need:
    return Need("ec2", "L-DB2E81BA", G_ON_DEMAND, resource, deploy, full_scale,
                f"node group {resource}")


@pytest.mark.parametrize(("value", "status", "command"), [
    (64.0, OK, None),
    (32.0, SHORT_AT_FULL_SCALE, "aws service-quotas request-service-quota-increase --region "
                                "us-east-1 --service-code ec2 --quota-code L-DB2E81BA "
                                "--desired-value 40"),
    (4.0, SHORT, "aws service-quotas request-service-quota-increase --region us-east-1 "
                 "--service-code ec2 --quota-code L-DB2E81BA --desired-value 40"),
])
def test_needs_are_summed_per_quota_and_compared(value, status, command):
    quotas = {("ec2", "L-DB2E81BA"): QuotaValue("ec2", "L-DB2E81BA", G_ON_DEMAND, value)}
    [check] = compare([_need(8, 32, "a"), _need(0, 8, "b")], quotas, "us-east-1")
    assert (check.deploy, check.full_scale, check.status) == (8, 40, status)
    assert check.basis == ("node group a", "node group b")
    assert check.request == command


def test_a_quota_the_region_lacks_is_not_found_and_not_adjustable_ones_get_no_request():
    missing = Need("sagemaker", "ml.x9.huge for endpoint usage", "ml.x9.huge for endpoint "
                   "usage", "cfg", 2, 2, "endpoint cfg")
    [check] = compare([missing], {}, "us-east-1")
    assert (check.status, check.code, check.quota, check.request) == (NOT_FOUND, None, None,
                                                                     None)
    fixed = {("ec2", "L-DB2E81BA"): QuotaValue("ec2", "L-DB2E81BA", G_ON_DEMAND, 0.0,
                                               adjustable=False)}
    [check] = compare([_need(8, 8)], fixed, "us-east-1")
    assert check.status == SHORT and check.request is None


# ---------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def quotas_project(tmp_path_factory) -> Path:
    """SageMaker serving, and an EKS cluster to train on in dev and prod: every kind of need."""
    spec = validate_spec({"name": "quotas", "serving": "sagemaker"})
    root = create_project(tmp_path_factory.mktemp("p") / "quotas", spec, git=False).path
    for environment in ("dev", "prod"):
        path = root / "infra" / f"Pulumi.{environment}.yaml"
        document = yaml.safe_load(path.read_text())
        document["config"]["quotas:platform"]["cluster"]["enabled"] = True
        path.write_text(yaml.safe_dump(document))
    return root


ENDPOINT_T2_MEDIUM = "ml.t2.medium for endpoint usage"
PROCESSING_M5_XLARGE = "ml.m5.xlarge for processing job usage"


def _account(endpoint_instances: float) -> Any:
    """A client factory for the dev stack of an account: 32 standard on-demand vCPUs, 16
    standard and 16 G spot vCPUs, SageMaker endpoint quota from the defaults."""
    def factory(region: str) -> Any:
        assert region == "us-east-1"
        client, stubber = _client()
        _page(stubber, "list_service_quotas", "ec2",
              [_quota("ec2", "L-1216C47A", STANDARD, 32.0),
               _quota("ec2", "L-34B43A08", STANDARD_SPOT, 16.0),
               _quota("ec2", "L-3819A6DF", G_SPOT, 16.0)])
        _page(stubber, "list_service_quotas", "sagemaker",
              [_quota("sagemaker", "L-0307F515", PROCESSING_M5_XLARGE, 4.0)])
        _page(stubber, "list_aws_default_service_quotas", "sagemaker",
              [_quota("sagemaker", "L-0307F515", PROCESSING_M5_XLARGE, 4.0, default=True),
               _quota("sagemaker", "L-4A2C8E1F", ENDPOINT_T2_MEDIUM, endpoint_instances,
                      default=True)])
        stubber.activate()
        return client
    return factory


def test_a_shortfall_fails_with_the_request_command(run_cli, quotas_project, monkeypatch):
    monkeypatch.setattr(preflight, "quota_client", _account(0.0))
    result = run_cli(["preflight", str(quotas_project), "--stack", "dev"])
    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "dev (us-east-1): 1 short of a deploy"
    rows = [line.split() for line in lines[2:7]]
    # G spot (GPU pool), standard spot (CPU pool), standard on-demand (system nodes, relay)
    assert [r[-4:] for r in rows] == [["0", "16", "16", "ok"], ["0", "8", "16", "ok"],
                                      ["6", "8", "32", "ok"], ["1", "1", "4", "ok"],
                                      ["2", "4", "0", "SHORT"]]
    assert ("    L-4A2C8E1F: endpoint configuration quotas-dev-serving-config variant "
            "primary: 1 x ml.t2.medium, x 2 while a blue/green update runs the new fleet "
            "beside the old; full scale 2 x 2 (autoscaling maximum)") in lines
    assert ("    aws service-quotas request-service-quota-increase --region us-east-1 "
            "--service-code sagemaker --quota-code L-4A2C8E1F --desired-value 4") in lines
    assert ("preflight: 1 quota is below what a deploy launches; request the increases above "
            "before deploying") in lines


def test_a_quota_short_only_at_full_scale_warns_unless_strict(run_cli, quotas_project,
                                                               monkeypatch):
    monkeypatch.setattr(preflight, "quota_client", _account(2.0))
    result = run_cli(["preflight", str(quotas_project), "--stack", "dev"])
    assert result.exit_code == 0, result.stdout
    assert "  ml.t2.medium for endpoint usage" in result.stdout
    assert result.stdout.splitlines()[6].endswith("2  short at full scale")
    assert ("preflight: the quotas cover a deploy; 1 warning (short at full scale or not "
            "found); --strict fails on these") in result.stdout
    monkeypatch.setattr(preflight, "quota_client", _account(2.0))
    strict = run_cli(["preflight", str(quotas_project), "--stack", "dev", "--strict"])
    assert strict.exit_code == 1
    assert "--desired-value 4" in strict.stdout


def test_enough_quota_passes_and_json_reports_every_quota(run_cli, quotas_project,
                                                          monkeypatch):
    import json

    monkeypatch.setattr(preflight, "quota_client", _account(4.0))
    result = run_cli(["preflight", str(quotas_project), "--stack", "dev", "--format", "json"])
    assert result.exit_code == 0, result.stdout
    [stack] = json.loads(result.stdout)
    assert (stack["stack"], stack["region"], stack["notes"]) == ("dev", "us-east-1", [])
    endpoint = next(q for q in stack["quotas"] if q["name"] == ENDPOINT_T2_MEDIUM)
    assert endpoint == {
        "service": "sagemaker", "code": "L-4A2C8E1F", "name": ENDPOINT_T2_MEDIUM,
        "unit": "instances", "needed_to_deploy": 2, "needed_at_full_scale": 4, "quota": 4.0,
        "quota_is_aws_default": True, "adjustable": True, "status": "ok",
        "basis": ["endpoint configuration quotas-dev-serving-config variant primary: "
                  "1 x ml.t2.medium, x 2 while a blue/green update runs the new fleet beside the "
                  "old; full scale 2 x 2 (autoscaling maximum)"], "request": None}
    assert [q["status"] for q in stack["quotas"]] == ["ok"] * 5


def test_every_stack_shares_one_listing_per_service_and_region(run_cli, quotas_project,
                                                              monkeypatch):
    stubbers: list[Stubber] = []

    def factory(region: str) -> Any:
        client, stubber = _client()
        stubbers.append(stubber)
        _page(stubber, "list_service_quotas", "ec2", [
            _quota("ec2", code, name, 256.0) for code, name in (
                ("L-1216C47A", STANDARD), ("L-34B43A08", STANDARD_SPOT), ("L-3819A6DF", G_SPOT),
                ("L-DB2E81BA", G_ON_DEMAND))])
        _page(stubber, "list_service_quotas", "sagemaker", [
            _quota("sagemaker", code, name, 16.0) for code, name in (
                ("L-0307F515", PROCESSING_M5_XLARGE), ("L-4A2C8E1F", ENDPOINT_T2_MEDIUM),
                ("L-5B3D9F20", "ml.m5.xlarge for endpoint usage"))])
        stubber.activate()
        return client

    monkeypatch.setattr(preflight, "quota_client", factory)
    result = run_cli(["preflight", str(quotas_project)])
    assert result.exit_code == 0, result.stdout
    assert [line.split(" (")[0] for line in result.stdout.splitlines()
            if line.endswith("covers a deploy")] == ["dev", "staging", "prod"]
    # one client for the region and two calls in all: a third would find no stubbed response
    [stubber] = stubbers
    stubber.assert_no_pending_responses()


@pytest.fixture(scope="module")
def kserve_project(tmp_path_factory) -> Path:
    """KServe serving with the defaults: prod's predictor has 2 replicas of 1 GPU each."""
    spec = validate_spec({"name": "kq", "serving": "kserve"})
    return create_project(tmp_path_factory.mktemp("p") / "kq", spec, git=False).path


def _kserve_account(g_on_demand: float) -> Any:
    """A client factory: 128 standard on-demand vCPUs, `g_on_demand` G and VT on-demand vCPUs
    (0 in a new account), both adjusted (ListServiceQuotas lists them)."""
    def factory(region: str) -> Any:
        assert region == "us-east-1"
        client, stubber = _client()
        _page(stubber, "list_service_quotas", "ec2",
              [_quota("ec2", "L-1216C47A", STANDARD, 128.0),
               _quota("ec2", "L-DB2E81BA", G_ON_DEMAND, g_on_demand)])
        stubber.activate()
        return client
    return factory


def test_a_kserve_prod_stack_needs_gpu_quota_to_deploy(run_cli, kserve_project, monkeypatch):
    """The prod predictor (minReplicas 2, 1 GPU each) keeps 2 x g6.xlarge on-demand of the GPU
    pool up before pulumi up completes: 8 G and VT vCPUs, so a new account's 0 is short of a
    deploy, not only of full scale."""
    monkeypatch.setattr(preflight, "quota_client", _kserve_account(0.0))
    result = run_cli(["preflight", str(kserve_project), "--stack", "prod"])
    assert result.exit_code == 1, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "prod (us-east-1): 1 short of a deploy"
    [row] = [line.split() for line in lines if line.startswith(f"  {G_ON_DEMAND}")]
    assert row[-4:] == ["8", "128", "0", "SHORT"]
    assert ("    L-DB2E81BA: InferenceService kq-prod-inference-service: minReplicas 2 x 1 GPU "
            "keep 2 x g6.xlarge (4 vCPUs) on-demand of NodePool gpu up; pulumi up waits until "
            "it is Ready") in lines
    assert ("    aws service-quotas request-service-quota-increase --region us-east-1 "
            "--service-code ec2 --quota-code L-DB2E81BA --desired-value 128") in lines

    monkeypatch.setattr(preflight, "quota_client", _kserve_account(8.0))
    enough = run_cli(["preflight", str(kserve_project), "--stack", "prod"])
    assert enough.exit_code == 0, enough.stdout
    [row] = [line.split() for line in enough.stdout.splitlines()
             if line.startswith(f"  {G_ON_DEMAND}")]
    assert row[-7:] == ["8", "128", "8", "short", "at", "full", "scale"]
    assert enough.stdout.startswith("prod (us-east-1): covers a deploy, 1 warning\n")


def test_no_credentials_is_a_usage_error_naming_the_fix(run_cli, quotas_project, monkeypatch,
                                                         tmp_path):
    without_aws_credentials(monkeypatch, tmp_path)
    result = run_cli(["preflight", str(quotas_project), "--stack", "dev"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no usable AWS credentials to read the service quotas of us-east-1 (Unable to "
        "locate credentials); log in (`aws sso login --profile NAME` and `export "
        "AWS_PROFILE=NAME`) or set the AWS_* credential variables; in CI, assume the deploy "
        "role first\n")
    assert result.stdout == ""


@pytest.mark.parametrize(("code", "message", "expected"), [
    ("AccessDeniedException",
     "User: arn:aws:sts::123456789012:assumed-role/deploy/ci is not authorized to perform: "
     "servicequotas:ListServiceQuotas",
     "error: AWS denied ListServiceQuotas: cannot read the service quotas of us-east-1 (User: "
     "arn:aws:sts::123456789012:assumed-role/deploy/ci is not authorized to perform: "
     "servicequotas:ListServiceQuotas); allow servicequotas:ListServiceQuotas and "
     "servicequotas:ListAWSDefaultServiceQuotas (docs/deploy.md, Quotas) for this identity\n"),
    ("ExpiredTokenException", "The security token included in the request is expired",
     "error: the AWS credentials have expired (ExpiredTokenException); log in again (`aws sso "
     "login`) or refresh the session token\n"),
])
def test_aws_refusals_are_one_line_exit_1(run_cli, quotas_project, monkeypatch, code, message,
                                          expected):
    def factory(region: str) -> Any:
        client, stubber = _client()
        stubber.add_client_error("list_service_quotas", service_error_code=code,
                                 service_message=message, http_status_code=400,
                                 expected_params={"ServiceCode": "ec2", "MaxResults": 100})
        stubber.activate()
        return client

    monkeypatch.setattr(preflight, "quota_client", factory)
    result = run_cli(["preflight", str(quotas_project), "--stack", "dev"])
    assert result.exit_code == 1
    assert result.stderr == expected
    assert "Traceback" not in result.stdout + result.stderr


def test_an_unknown_stack_is_refused_before_anything_runs(run_cli, quotas_project,
                                                         monkeypatch):
    def factory(region: str) -> Any:
        raise AssertionError("AWS must not be called")

    monkeypatch.setattr(preflight, "quota_client", factory)
    result = run_cli(["preflight", str(quotas_project), "--stack", "qa"])
    assert result.exit_code == 2
    assert result.stderr == ("error: --stack 'qa' is not an environment of the project; use one "
                             "of: dev, staging, prod, or all\n")


def test_preflight_help_imports_no_aws_sdk():
    code = ("import sys\nfrom mlscaffold.cli import cli\n"
            "try:\n    cli.main(['preflight', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', [m for m in ('boto3', 'botocore', 'pulumi') if m in sys.modules],"
            " file=sys.stderr)\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True)
    assert "Usage: mlscaffold preflight" in completed.stdout
    assert "LOADED []" in completed.stderr
