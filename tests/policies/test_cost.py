"""Cost pack: the price table, the estimator and every cost rule.

Rules run through pulumi_policy's public API (see conftest): each test builds the passing
props, changes one field and asserts the exact messages. Estimates are compared with the
arithmetic of the price table's own figures, never with hard-coded totals. The example
projects' stacks must pass the pack with each environment's profile defaults, and the same
defaults must catch the mistakes they exist for.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from mlscaffold.policies.config import pack_config
from mlscaffold.policies.cost.estimate import estimate, graph_resources, policy_resources
from mlscaffold.policies.cost.prices import PriceError, prices
from mlscaffold.policies.cost.rules import TAGGABLE_TYPES, is_accelerated
from mlscaffold.policies.engine import evaluate
from mlscaffold.policies.nodepools import instance_types
from mlscaffold.policies.registry import RULES, rules_of
from mlscaffold.stacks.config import CpuPoolConfig, GpuPoolConfig, environment_profile
from mlscaffold.stacks.instances import EC2_INSTANCES, SAGEMAKER_INSTANCES, gpu_count
from mlscaffold.stacks.karpenter import node_pool

from .conftest import check, check_stack

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
STACKS = [("churn-model", "dev"), ("churn-model", "staging"), ("churn-model", "prod"),
          ("lifetime-value", "dev"), ("lifetime-value", "prod")]

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
TARGET = "aws:appautoscaling/target:Target"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
CLUSTER = "aws:eks/cluster:Cluster"
NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
JOB = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"

TAGS = {"project": "demo", "env": "dev", "owner": "ml-platform", "cost-center": "ml"}
CPU_GROUP = {"instanceTypes": ["m6i.large"], "capacityType": "ON_DEMAND", "tags": TAGS,
             "scalingConfig": {"minSize": 1.0, "desiredSize": 2.0, "maxSize": 3.0},
             "launchTemplate": {"id": "system-lt-id", "version": "1"},
             "labels": {"mlscaffold.io/node-pool": "system"}}
GPU_GROUP = {"instanceTypes": ["g5.xlarge", "g6.xlarge"], "capacityType": "SPOT", "tags": TAGS,
             "scalingConfig": {"minSize": 0.0, "desiredSize": 0.0, "maxSize": 2.0},
             "labels": {"mlscaffold.io/node-pool": "gpu", "nvidia.com/gpu.present": "true"}}
# the dev GPU pool as the in-cluster program declares it (stacks/karpenter.py node_pool)
GPU_POOL = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"},
            "spec": {"template": {
                "metadata": {"labels": {"mlscaffold.io/node-pool": "gpu",
                                        "nvidia.com/gpu.present": "true"}},
                "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                          "name": "gpu"},
                         "taints": [{"key": "nvidia.com/gpu", "value": "true",
                                     "effect": "NoSchedule"}],
                         "requirements": [
                             {"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                              "values": ["g6", "g5", "g4dn"]},
                             {"key": "karpenter.k8s.aws/instance-size", "operator": "In",
                              "values": ["xlarge", "2xlarge"]},
                             {"key": "karpenter.sh/capacity-type", "operator": "In",
                              "values": ["spot"]}]}},
                "limits": {"cpu": "16", "nvidia.com/gpu": "2"},
                "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized",
                               "consolidateAfter": "5m"}}}
# the dev CPU pool as the in-cluster program declares it (the same builder)
CPU_POOL = node_pool(CpuPoolConfig(name="cpu", instance_families=["m7i", "m6i", "c6i"],
                                   instance_sizes=["large", "xlarge"], capacity_types=["spot"],
                                   max_vcpus=8))
CPU_NODE_CLASS = {"metadata": {"name": "cpu"}, "spec": {"blockDeviceMappings": [
    {"deviceName": "/dev/xvda", "rootVolume": True,
     "ebs": {"volumeSize": "50Gi", "volumeType": "gp3", "encrypted": True}}]}}
NODE_CLASS_PROPS = {"metadata": {"name": "gpu"}, "spec": {"blockDeviceMappings": [
    {"deviceName": "/dev/xvda", "rootVolume": True,
     "ebs": {"volumeSize": "200Gi", "volumeType": "gp3", "encrypted": True}}]}}
TEMPLATE = {"tags": TAGS, "blockDeviceMappings": [
    {"deviceName": "/dev/xvda", "ebs": {"volumeSize": 100, "volumeType": "gp3"}}]}
ENDPOINT_CONFIG_PROPS = {"tags": TAGS, "productionVariants": [
    {"variantName": "primary", "instanceType": "ml.m5.large", "initialInstanceCount": 1.0}]}
ENDPOINT_PROPS = {"name": "demo", "endpointConfigName": "endpoint-config", "tags": TAGS}
TARGET_PROPS = {"serviceNamespace": "sagemaker", "resourceId": "endpoint/demo/variant/primary",
                "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "minCapacity": 1.0, "maxCapacity": 2.0, "tags": TAGS}


def changed(props: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `props` with `path` (``a.b[0].c``) set to `value`."""
    new = copy.deepcopy(props)
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    target: Any = new
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return new


# ------------------------------------------------------------------ price table


def test_price_table_is_dated_sourced_and_complete() -> None:
    table = prices()
    assert table.as_of.isoformat() == "2026-11-01"
    assert "AWS" in table.source and table.sources["ec2"].startswith("https://aws.amazon.com/")
    assert (table.currency, table.base_region, table.hours_per_month) == ("USD", "us-east-1",
                                                                        730)
    assert 0 < table.spot_discount < 1
    assert [t for t in EC2_INSTANCES
            if t not in table.ec2_hourly and t not in table.unpriced.ec2_hourly] == []
    assert [t for t in SAGEMAKER_INSTANCES if t not in table.sagemaker_hosting_hourly
            and t not in table.unpriced.sagemaker_hosting_hourly] == []
    assert all(price > 0 for price in table.ec2_hourly.values())
    assert {entry.source for entry in table.services.values()} <= set(table.sources)
    with pytest.raises(PriceError, match=r"no price for EC2 instance type 'x9\.huge'; add it "
                                         r"to policies/cost/prices.json under ec2_hourly"):
        table.ec2("x9.huge")


def test_a_type_is_priced_or_declared_unpriced() -> None:
    """A type of the instance tables missing from the prices must be listed under unpriced;
    listing it both ways, or a type the tables do not know, is refused."""
    data = prices().model_dump(mode="json")
    table = type(prices())
    forgotten = copy.deepcopy(data)
    del forgotten["sagemaker_hosting_hourly"]["ml.m5.large"]
    with pytest.raises(ValueError, match=r"no price for ml\.m5\.large \(price it or list it "
                                         r"under unpriced\.sagemaker_hosting_hourly\)"):
        table.model_validate(forgotten)
    both = copy.deepcopy(data)
    both["unpriced"]["sagemaker_hosting_hourly"].append("ml.m5.large")
    with pytest.raises(ValueError, match=r"ml\.m5\.large both priced and unpriced"):
        table.model_validate(both)
    stray = copy.deepcopy(data)
    stray["unpriced"]["ec2_hourly"].append("x9.huge")
    with pytest.raises(ValueError, match=r"x9\.huge not in the instance table"):
        table.model_validate(stray)


def test_an_endpoint_on_an_unpriced_type_is_not_priced_and_the_total_says_so() -> None:
    """A SageMaker type the price table has no price for (one it lists as unpriced, or one
    the config accepts by its family) gets a line that says so, left out of the totals."""
    for instance_type in ("ml.m5.4xlarge", "ml.g5.12xlarge"):
        props = changed(ENDPOINT_CONFIG_PROPS, "productionVariants[0].instanceType",
                        instance_type)
        result = estimate([(ENDPOINT_CONFIG, "cfg", props)], "us-east-1")
        reason = f"not priced: {instance_type} is not in mlscaffold's price table"
        (line,) = result.lines
        assert (line.resource, line.unpriced, line.monthly_usd) == ("cfg", reason, 0.0)
        assert line.basis == f"primary: 1 x {instance_type}, {reason}; full scale 1"
        assert result.total == 0.0 and result.excluded == (f"cfg ({reason})",)
        assert result.as_dict()["total_excludes"] == [f"cfg ({reason})"]
        assert result.as_dict()["lines"][0]["not_priced"] == reason


def test_a_node_pool_that_may_launch_an_unpriced_type_is_not_priced_at_full_scale() -> None:
    """g6e.8xlarge is a real size (the pool accepts it) without a sourced price: the pool's
    full scale, and the nodes a predictor keeps up there, are not priced, not guessed."""
    pool = node_pool(GpuPoolConfig(name="gpu", instance_families=["g6e"],
                                   instance_sizes=["8xlarge"], max_gpus=2))
    isvc = {"spec": {"predictor": {"minReplicas": 1, "nodeSelector": pool["spec"]["template"][
        "metadata"]["labels"], "model": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}}
    result = estimate([(POOL, "gpu", pool), (ISVC, "isvc", isvc)], "us-east-1")
    lines = {line.resource: line for line in result.lines}
    reason = "not priced: g6e.8xlarge is not in mlscaffold's price table"
    assert lines["gpu"].full_scale_unpriced == f"{reason}, and the pool may launch it"
    assert lines["isvc"].unpriced == f"{reason}, and NodePool 'gpu' may run its replicas on it"
    assert result.excluded == (f"isvc ({reason}, and NodePool 'gpu' may run its replicas on it)",)
    assert len(result.excluded_at_full_scale) == 2


def test_prices_live_in_one_table() -> None:
    """Distinctive figures of the table appear in no other source file."""
    figures = re.compile(r"\b(1\.006|16\.288|13\.3504|30\.13118|55\.04|0\.7364)\b")
    holders = [path.relative_to(REPO) for folder in ("policies", "stacks", "scaffolder",
                                                     "blueprints", "templates")
               for path in (REPO / folder).rglob("*") if path.is_file()
               and path.suffix in {".py", ".json", ".yaml", ".yml", ".jinja", ".md"}
               and path.name != "prices.json" and figures.search(path.read_text(errors="ignore"))]
    assert holders == []


def test_unknown_region_uses_the_default_multiplier_and_says_so() -> None:
    table = prices()
    assert table.region_multiplier("eu-west-1") == (table.regions.multipliers["eu-west-1"],
                                                    None)
    multiplier, note = table.region_multiplier("mx-central-1")
    assert multiplier == table.regions.default_multiplier
    assert note is not None and note.startswith(
        f"region 'mx-central-1' is not in the price table; priced at us-east-1 x "
        f"{table.regions.default_multiplier:g} (default multiplier). Known regions: ")
    assert all(region in note for region in table.regions.multipliers)


# ------------------------------------------------------------------ estimator

HOURS = 730


def small_stack(capacity: str = "ON_DEMAND") -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (CLUSTER, "eks", {"version": "1.36", "upgradePolicy": {"supportType": "STANDARD"},
                          "tags": TAGS}),
        (LAUNCH_TEMPLATE, "system-lt", TEMPLATE),
        (NODE_GROUP, "system", changed(CPU_GROUP, "capacityType", capacity)),
        (ENDPOINT_CONFIG, "endpoint-config", ENDPOINT_CONFIG_PROPS),
        (ENDPOINT, "endpoint", ENDPOINT_PROPS),
        (TARGET, "scaling", TARGET_PROPS),
        (NAT, "nat", {"subnetId": "subnet-1", "tags": TAGS}),
        (EIP, "nat-eip", {"domain": "vpc", "tags": TAGS}),
        ("aws:iam/role:Role", "role", {"tags": TAGS}),
    ]


def expected_small_stack(rate: float) -> tuple[float, float]:
    """(baseline, full scale) of small_stack from the table's figures; `rate` per node-hour."""
    t = prices()
    gp3, node = t.service("ebs_gp3_gb_month"), rate * HOURS
    nodes = (2 * node + 2 * 100 * gp3, 3 * node + 3 * 100 * gp3)
    sagemaker = t.sagemaker_hosting("ml.m5.large") * HOURS
    fixed = (t.service("eks_cluster_hour") * HOURS + t.service("nat_gateway_hour") * HOURS
             + t.usage("nat_gb_processed_per_gateway_month") * t.service("nat_gateway_gb")
             + t.service("public_ipv4_hour") * HOURS)
    return nodes[0] + 1 * sagemaker + fixed, nodes[1] + 2 * sagemaker + fixed


def test_estimate_of_a_small_stack() -> None:
    t = prices()
    result = estimate(small_stack(), "us-east-1")
    baseline, full = expected_small_stack(t.ec2("m6i.large"))
    assert result.total == pytest.approx(baseline)
    assert result.at_full_scale == pytest.approx(full)
    lines = {line.resource: line for line in result.lines}
    assert set(lines) == {"eks", "system", "endpoint-config", "nat", "nat-eip"}
    assert lines["system"].basis == ("2 x m6i.large on-demand x 730 h + 2 x 100 GiB gp3; full "
                                     "scale 3 nodes")
    assert lines["endpoint-config"].basis == ("primary: 1 x ml.m5.large x 730 h ($0.115/h); "
                                              "full scale 2")
    assert result.unpriced == () and result.multiplier == 1.0
    assert result.assumptions[:2] == (
        "prices as of 2026-11-01: USD, us-east-1 on-demand list prices (sources in "
        "mlscaffold/policies/cost/prices.json)",
        "730 hours per month; resources run all month")
    assert result.as_dict()["total_monthly_usd"] == round(baseline, 2)


@pytest.mark.parametrize(("props", "baseline", "full", "basis"), [
    ({"version": "1.34", "upgradePolicy": {"supportType": "STANDARD"}}, "standard", "standard",
     "1 cluster x 730 h x $0.1 (standard support; upgrade policy STANDARD: EKS upgrades it "
     "instead of extending)"),
    # 1.34 leaves standard support after the price table's date (2026-11-01)
    ({"version": "1.34", "upgradePolicy": {"supportType": "EXTENDED"}}, "standard", "extended",
     "1 cluster x 730 h x $0.1 (standard support); full scale $0.6/h extended support from "
     "2026-12-02 (upgrade policy EXTENDED)"),
    # not set: AWS's default is EXTENDED
    ({"version": "1.33"}, "extended", "extended",
     "1 cluster x 730 h x $0.6 (Kubernetes 1.33 in extended support since 2026-07-29; upgrade "
     "policy not set (AWS's default: EXTENDED))"),
    ({"version": "1.36", "upgradePolicy": {"supportType": "EXTENDED"}}, "standard", "extended",
     "1 cluster x 730 h x $0.1 (standard support); full scale $0.6/h extended support from "
     "2027-08-02 (upgrade policy EXTENDED)"),
])
def test_eks_control_plane_standard_and_extended_support(props, baseline, full, basis) -> None:
    t = prices()
    rate = {"standard": t.service("eks_cluster_hour"),
            "extended": t.service("eks_cluster_extended_support_hour")}
    assert rate["extended"] == pytest.approx(6 * rate["standard"])  # AWS: 6x the control plane
    (line,) = estimate([(CLUSTER, "eks", {**props, "tags": TAGS})], "us-east-1",
                       on=date(2026, 11, 1)).lines
    assert line.monthly_usd == pytest.approx(rate[baseline] * HOURS)
    assert line.at_full_scale_usd == pytest.approx(rate[full] * HOURS)
    assert line.basis == basis
    assert line.prop == "upgradePolicy.supportType"


@pytest.mark.parametrize(("version", "since"), [("1.32", "2026-03-23"), ("1.34", "2026-12-02")])
def test_a_standard_cluster_pinned_past_standard_support_is_priced_extended(version, since):
    # EKS release calendar: 1.32 and 1.34 left standard support on these days; a cluster on
    # such a version is billed the extended rate ($0.60 instead of $0.10 per cluster-hour, EKS
    # pricing page) and cannot be switched to STANDARD (AWS docs, disable extended support)
    props = {"version": version, "upgradePolicy": {"supportType": "STANDARD"}, "tags": TAGS}
    (line,) = estimate([(CLUSTER, "eks", props)], "us-east-1", on=date(2026, 12, 5)).lines
    assert line.monthly_usd == pytest.approx(prices().service(
        "eks_cluster_extended_support_hour") * HOURS)
    assert line.basis == (
        f"1 cluster x 730 h x $0.6 (Kubernetes {version} in extended support since {since}; "
        "upgrade policy STANDARD cannot be set on a cluster in extended support: raise "
        "cluster.kubernetes_version)")
    assert line.prop == "version"


def test_spot_capacity_gets_the_spot_discount() -> None:
    t = prices()
    result = estimate(small_stack("SPOT"), "us-east-1")
    spot = t.ec2("m6i.large") * (1 - t.spot_discount)
    assert result.total == pytest.approx(expected_small_stack(spot)[0])
    line = next(line for line in result.lines if line.resource == "system")
    assert line.basis.startswith("2 x m6i.large spot (on-demand - 65%) x 730 h")
    assert f"spot price = on-demand x (1 - {t.spot_discount:g}); real spot prices vary by zone " \
           "and over time" in result.assumptions


def test_region_multiplier_scales_every_line() -> None:
    t = prices()
    base = estimate(small_stack(), "us-east-1")
    eu = estimate(small_stack(), "eu-west-1")
    assert eu.multiplier == t.regions.multipliers["eu-west-1"] != 1.0
    assert eu.total == pytest.approx(base.total * eu.multiplier)
    assert "region eu-west-1: us-east-1 prices x 1.11 (approximation)" in eu.assumptions


def test_unknown_region_is_estimated_with_a_printed_assumption() -> None:
    t = prices()
    result = estimate(small_stack(), "mx-central-1")
    assert result.multiplier == t.regions.default_multiplier
    assert result.total == pytest.approx(
        estimate(small_stack(), "us-east-1").total * t.regions.default_multiplier)
    assert any(a.startswith("region 'mx-central-1' is not in the price table")
               for a in result.assumptions)


def test_node_disk_from_disk_size_or_the_default() -> None:
    t = prices()
    gp3, node = t.service("ebs_gp3_gb_month"), t.ec2("m6i.large") * HOURS
    own_disk = changed(CPU_GROUP, "diskSize", 50)
    del own_disk["launchTemplate"]
    assert estimate([(NODE_GROUP, "g", own_disk)], "us-east-1").total == pytest.approx(
        2 * (node + 50 * gp3))
    no_template = estimate([(NODE_GROUP, "g", CPU_GROUP)], "us-east-1")
    default = t.usage("node_disk_gib_default")
    assert no_template.total == pytest.approx(2 * (node + default * gp3))


def test_usage_driven_and_fixed_monthly_items() -> None:
    t = prices()
    resources = [
        (LOG_GROUP, "logs", {"retentionInDays": 365.0, "tags": TAGS}),
        (LOG_GROUP, "forever", {"tags": TAGS}),
        ("aws:kms/key:Key", "key", {"tags": TAGS}),
        ("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm", {"metricQueries": [
            {"id": "a", "metric": {"metricName": "Errors"}},
            {"id": "b", "metric": {"metricName": "Invocations"}},
            {"id": "rate", "expression": "a / b"}], "tags": TAGS}),
        ("aws:ec2/vpcEndpoint:VpcEndpoint", "ecr", {"vpcEndpointType": "Interface",
                                                    "subnetIds": ["a", "b", "c"]}),
        ("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"}),
        ("aws:s3/bucket:Bucket", "bucket", {"tags": TAGS}),
        ("aws:sagemaker/featureGroup:FeatureGroup", "features",
         {"onlineStoreConfig": {"enableOnlineStore": True}}),
        ("aws:rds/instance:Instance", "db", {"instanceClass": "db.r6g.large"}),
    ]
    result = estimate(resources, "us-east-1")
    lines = {line.resource: line.monthly_usd for line in result.lines}
    gb = t.usage("logs_gb_ingested_per_group_month")
    ingest, store = t.service("cloudwatch_logs_ingested_gb"), t.service(
        "cloudwatch_logs_stored_gb_month")
    assert lines["logs"] == pytest.approx(gb * ingest + gb * 365 / (HOURS / 24) * store)
    assert lines["forever"] == pytest.approx(gb * ingest + gb * 12 * store)
    assert lines["key"] == t.service("kms_key_month")
    assert lines["alarm"] == pytest.approx(2 * t.service("cloudwatch_alarm_metric_month"))
    assert lines["ecr"] == pytest.approx(3 * t.service("vpc_interface_endpoint_az_hour") * HOURS)
    assert lines["bucket"] == pytest.approx(t.usage("s3_gb_per_bucket")
                                            * t.service("s3_standard_gb_month"))
    assert lines["features"] == pytest.approx(
        t.usage("feature_store_online_write_million_units_month")
        * t.service("feature_store_write_million_units")
        + t.usage("feature_store_online_read_million_units_month")
        * t.service("feature_store_read_million_units")
        + t.usage("feature_store_online_gb") * t.service("feature_store_storage_gb_month"))
    assert "s3" not in lines and "db" not in lines
    assert result.unpriced == ("aws:rds/instance:Instance",)
    assert "not priced (no price model): aws:rds/instance:Instance" in result.assumptions


def test_audit_trail_and_log_bucket() -> None:
    """Data events are priced per audited bucket; a bucket receiving access logs is priced as
    a log store, not as a data bucket."""
    t = prices()
    selector = {"fieldSelectors": [
        {"field": "eventCategory", "equals": ["Data"]},
        {"field": "resources.type", "equals": ["AWS::S3::Object"]},
        {"field": "resources.ARN", "startsWiths": ["arn:aws:s3:::a/", "arn:aws:s3:::b/"]}]}
    resources = [
        ("aws:s3/bucket:Bucket", "a", {"tags": TAGS}),
        ("aws:s3/bucket:Bucket", "b", {"tags": TAGS}),
        ("aws:s3/bucket:Bucket", "logs", {"tags": TAGS}),
        ("aws:s3/bucketLogging:BucketLogging", "a-logs",
         {"bucket": "a", "targetBucket": "logs-id"}),
        ("aws:cloudtrail/trail:Trail", "trail", {"tags": TAGS,
                                                 "advancedEventSelectors": [selector]}),
    ]
    result = estimate(resources, "eu-west-1")
    lines = {line.resource: line for line in result.lines}
    multiplier = t.regions.multipliers["eu-west-1"]
    per_bucket = t.usage("cloudtrail_data_events_million_per_bucket_month") * 10 * t.service(
        "cloudtrail_data_events_100k")
    assert lines["trail"].monthly_usd == pytest.approx(2 * per_bucket * multiplier)
    assert lines["trail"].basis == "2 bucket(s) x 1M S3 data events x $0.1 per 100k"
    gb_month = t.service("s3_standard_gb_month")
    assert lines["logs"].monthly_usd == pytest.approx(
        t.usage("s3_log_gb_per_log_bucket") * gb_month * multiplier)
    assert lines["a"].monthly_usd == pytest.approx(
        t.usage("s3_gb_per_bucket") * gb_month * multiplier)
    assert "a-logs" not in lines and result.unpriced == ()
    assert any(a.startswith("cloudtrail_data_events_million_per_bucket_month: 1 million")
               for a in result.assumptions)

    # a selector without resources.ARN records every data bucket of the stack
    every = {"fieldSelectors": selector["fieldSelectors"][:2]}
    trail = ("aws:cloudtrail/trail:Trail", "trail", {"advancedEventSelectors": [every]})
    line = next(x for x in estimate([*resources[:4], trail], "us-east-1").lines
                if x.resource == "trail")
    assert line.monthly_usd == pytest.approx(2 * per_bucket)
    # management events only: the first copy is free
    line = next(x for x in estimate([("aws:cloudtrail/trail:Trail", "trail", {})],
                                    "us-east-1").lines)
    assert (line.monthly_usd, line.basis) == (0.0, "no S3 data events (the first copy of "
                                                   "management events is free)")


@pytest.mark.parametrize(("expression", "runs"), [
    ("cron(0 * ? * * *)", HOURS), ("cron(0 0 ? * * *)", HOURS / 24),
    ("cron(0 0/6 ? * * *)", 4 * HOURS / 24), ("cron(0 17/12 ? * * *)", 2 * HOURS / 24),
    ("NOW", 1),
    # not a form SageMaker accepts (the stack config refuses it): priced as hourly
    ("cron(0 8-17 ? * * *)", HOURS), ("every day", HOURS),
])
def test_model_monitor_schedule(expression: str, runs: float) -> None:
    t = prices()
    job = {"jobResources": {"clusterConfig": {"instanceType": "ml.m5.xlarge",
                                              "instanceCount": 1.0}}, "tags": TAGS}
    schedule = {"monitoringScheduleConfig": {"monitoringJobDefinitionName": "quality",
                                             "scheduleConfig": {"scheduleExpression":
                                                                expression}}}
    result = estimate([(JOB, "quality", job), (SCHEDULE, "drift", schedule)], "us-east-1")
    assert result.total == pytest.approx(runs * t.usage("model_monitor_hours_per_run")
                                         * t.sagemaker_processing("ml.m5.xlarge"))
    refused = [a for a in result.assumptions if a.startswith("monitoring schedule 'drift'")]
    assert refused == ([] if expression not in ("cron(0 8-17 ? * * *)", "every day") else [
        f"monitoring schedule 'drift': {expression!r} is not a schedule SageMaker Model Monitor "
        "accepts; use cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H, 0-23) or "
        "cron(0 H/N ? * * *) (every N hours from hour H, N 1-24); priced as hourly"])


def test_kserve_costs_only_the_gpu_nodes_its_replicas_keep_up() -> None:
    t = prices()
    isvc = {"spec": {"predictor": {
        "minReplicas": 1.0, "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "containers": [{"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}]}}}
    resources = [(NODE_GROUP, "gpu", GPU_GROUP), (ISVC, "model", isvc)]
    line = next(line for line in estimate(resources, "us-east-1").lines
                if line.resource == "model")
    node = (t.spot(t.ec2("g5.xlarge")) * HOURS
            + t.usage("node_disk_gib_default") * t.service("ebs_gp3_gb_month"))
    assert line.monthly_usd == pytest.approx(node) and line.at_full_scale_usd == 0
    assert line.basis == ("minReplicas 1 x 1 GPU keep 1 x g5.xlarge spot (on-demand - 65%) of "
                          "node group 'gpu' up beyond its desired size 0")
    warm = changed(GPU_GROUP, "scalingConfig.desiredSize", 1.0)
    cpu_only = changed(isvc, "spec.predictor.containers[0].resources.limits", {"cpu": "1"})
    for group, service in ((warm, isvc), (GPU_GROUP, cpu_only)):
        line = next(line for line in estimate([(NODE_GROUP, "gpu", group), (ISVC, "m", service)],
                                              "us-east-1").lines if line.resource == "m")
        assert line.monthly_usd == 0
        assert line.basis.startswith("no extra cost: runs on the cluster's nodes, priced with "
                                     "the node groups")


def test_a_node_pool_costs_nothing_until_pods_need_its_nodes() -> None:
    t = prices()
    resources = [(POOL, "pool", GPU_POOL), (NODE_CLASS, "class", NODE_CLASS_PROPS)]
    result = estimate(resources, "us-east-1")
    (line,) = result.lines
    assert line.monthly_usd == 0
    # full scale: the limits filled with the type that costs most for them: 2 GPUs as
    # 2 x g5.2xlarge (1 GPU, 8 vCPUs each; 16 vCPUs), spot, with the node class's 200 GiB disk
    node = t.spot(t.ec2("g5.2xlarge")) * HOURS + 200 * t.service("ebs_gp3_gb_month")
    assert line.at_full_scale_usd == pytest.approx(2 * node)
    assert line.basis == ("0 at baseline (no node until pods need one); full scale "
                          "nvidia.com/gpu 2, cpu 16: 2 x g5.2xlarge spot (on-demand - 65%) x 730 "
                          "h + 2 x 200 GiB gp3 (the costliest way to fill the limits)")
    assert line.prop == "spec.limits"
    assert ("Karpenter NodePools start with no node (their controller runs on the system node "
            "group, priced with it)") in result.assumptions
    assert result.unpriced == ()
    # on-demand allowed: priced on-demand; no cpu limit: the GPUs bind alone
    on_demand = changed(changed(GPU_POOL, "spec.template.spec.requirements[2].values",
                                ["spot", "on-demand"]), "spec.limits", {"nvidia.com/gpu": "2"})
    (line,) = estimate([(POOL, "pool", on_demand)], "us-east-1").lines
    widest = max(t.ec2(x) for x in ("g4dn.2xlarge", "g5.2xlarge", "g6.2xlarge"))
    assert line.at_full_scale_usd == pytest.approx(
        2 * (widest * HOURS + t.usage("node_disk_gib_default") * t.service("ebs_gp3_gb_month")))
    # no limits: nothing to price at full scale, and the estimate says so
    unbounded = changed(GPU_POOL, "spec.limits", {})
    result = estimate([(POOL, "pool", unbounded)], "us-east-1")
    assert result.lines[0].at_full_scale_usd == 0
    assert ("NodePool 'pool': instance types or limits not restricted; full scale not priced"
            in result.assumptions)


def test_a_cpu_node_pool_costs_nothing_until_pods_need_its_nodes() -> None:
    t = prices()
    resources = [(POOL, "cpu-pool", CPU_POOL), (NODE_CLASS, "cpu-class", CPU_NODE_CLASS)]
    result = estimate(resources, "us-east-1")
    (line,) = result.lines
    assert line.monthly_usd == 0 and line.prop == "spec.limits"
    # full scale: 8 vCPUs filled the costliest way: 4 nodes of the dearest 2-vCPU type (more
    # root volumes than 2 xlarge nodes), spot, with the node class's 50 GiB disk each
    dearest = max(("m7i.large", "m6i.large", "c6i.large"), key=t.ec2)
    node = t.spot(t.ec2(dearest)) * HOURS + 50 * t.service("ebs_gp3_gb_month")
    assert line.at_full_scale_usd == pytest.approx(4 * node)
    assert line.basis == ("0 at baseline (no node until pods need one); full scale cpu 8: "
                          f"4 x {dearest} spot (on-demand - 65%) x 730 h + 4 x 50 GiB gp3 (the "
                          "costliest way to fill the limits)")
    assert result.unpriced == ()
    # production's pool: on-demand, larger types, 64 vCPUs
    prod = node_pool(CpuPoolConfig(instance_families=["m7i", "m6i", "c6i"],
                                   instance_sizes=["xlarge", "2xlarge"],
                                   capacity_types=["on-demand"], max_vcpus=64))
    (line,) = estimate([(POOL, "cpu-pool", prod)], "us-east-1").lines
    dearest = max(("m7i.xlarge", "m6i.xlarge", "c6i.xlarge"), key=t.ec2)
    assert line.at_full_scale_usd == pytest.approx(16 * (
        t.ec2(dearest) * HOURS + t.usage("node_disk_gib_default") * t.service("ebs_gp3_gb_month")))
    # a CPU predictor costs nothing of its own: it runs on the system nodes or in the pool
    isvc = {"spec": {"predictor": {"minReplicas": 2.0, "containers": [
        {"resources": {"limits": {"cpu": "1", "memory": "2Gi"}}}]}}}
    line = next(line for line in estimate([*resources, (ISVC, "model", isvc)],
                                          "us-east-1").lines if line.resource == "model")
    assert (line.monthly_usd, line.at_full_scale_usd) == (0, 0)


def test_kserve_on_a_node_pool_costs_the_nodes_its_replicas_keep_up() -> None:
    t = prices()
    isvc = {"spec": {"predictor": {
        "minReplicas": 2.0, "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "containers": [{"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}]}}}
    resources = [(POOL, "pool", GPU_POOL), (ISVC, "model", isvc)]
    line = next(line for line in estimate(resources, "us-east-1").lines
                if line.resource == "model")
    cheapest = min(("g4dn.xlarge", "g5.xlarge", "g6.xlarge"), key=t.ec2)
    node = (t.spot(t.ec2(cheapest)) * HOURS
            + t.usage("node_disk_gib_default") * t.service("ebs_gp3_gb_month"))
    assert line.monthly_usd == pytest.approx(2 * node) and line.at_full_scale_usd == 0
    assert line.basis == (f"minReplicas 2 x 1 GPU keep 2 x {cheapest} spot (on-demand - 65%) "
                          "of NodePool 'gpu' up")
    # replicas beyond the pool's GPU limit stay Pending and cost nothing
    many = changed(isvc, "spec.predictor.minReplicas", 5.0)
    line = next(line for line in estimate([(POOL, "pool", GPU_POOL), (ISVC, "model", many)],
                                          "us-east-1").lines if line.resource == "model")
    assert line.monthly_usd == pytest.approx(2 * node)
    # more GPUs a replica than any node of the pool has: it is never scheduled, and says why
    greedy = changed(isvc, "spec.predictor.containers", [
        {"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "4"}}}])
    line = next(line for line in estimate([(POOL, "pool", GPU_POOL), (ISVC, "model", greedy)],
                                          "us-east-1").lines if line.resource == "model")
    assert line.monthly_usd == 0
    largest = max(instance_types(GPU_POOL)[0], key=gpu_count)
    assert line.basis == (
        "no extra cost: runs on the cluster's nodes, priced with the node groups and NodePools "
        f"(a replica requests 4 GPUs and the largest node of NodePool 'gpu' ({largest}: 1) has "
        "fewer: its replicas cannot be scheduled)")


def test_adapters_and_values_unknown_before_deployment() -> None:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    # a real preview: ids and computed names are unknown; mlscaffold's `<group>-lt` naming and
    # the lone endpoint configuration still link the resources
    preview = [
        (LAUNCH_TEMPLATE, "system-lt", TEMPLATE),
        (NODE_GROUP, "system", changed(CPU_GROUP, "launchTemplate.id", UNKNOWN_STRING_VALUE)),
        (ENDPOINT_CONFIG, "endpoint-config", ENDPOINT_CONFIG_PROPS),
        (ENDPOINT, "endpoint", changed(ENDPOINT_PROPS, "endpointConfigName",
                                       UNKNOWN_STRING_VALUE)),
        (TARGET, "scaling", changed(TARGET_PROPS, "resourceId", UNKNOWN_STRING_VALUE)),
    ]
    items = [PolicyResource(t, unknown_checking_proxy(p), f"urn:{n}", n, options, None, None, [],
                            {}) for t, n, p in preview]
    known = estimate([r for r in small_stack() if r[0] in {t for t, _, _ in preview}],
                     "us-east-1")
    unknown = estimate(policy_resources(items), "us-east-1")
    assert unknown.total == pytest.approx(known.total)
    assert unknown.at_full_scale == pytest.approx(known.at_full_scale)
    unknown_type = changed(changed(CPU_GROUP, "instanceTypes", [UNKNOWN_STRING_VALUE]),
                           "scalingConfig.desiredSize", UNKNOWN_NUMBER_VALUE)
    result = estimate([(NODE_GROUP, "g", unknown_checking_proxy(unknown_type))], "us-east-1")
    assert result.assumptions[-2:] == (
        "node group 'g': instanceTypes not set or unknown before deployment; priced as EKS's "
        "default t3.medium",
        "NodeGroup 'g': scalingConfig.desiredSize unknown before deployment; priced with "
        "defaults")


def test_graph_adapter_skips_components(graphs: dict[tuple[str, str], Any]) -> None:
    graph = graphs[("churn-model", "dev")]
    triples = graph_resources(graph)
    assert len(triples) == sum(r.custom for r in graph.resources)
    assert not any(t.startswith("mlscaffold:") for t, _, _ in triples)


# ------------------------------------------------------------------ rule table

COST_RULES = {"cpu-instance-types", "gpu-instance-types", "sagemaker-instance-types",
              "max-nodes", "max-gpus", "gpu-spot-outside-prod", "gpu-scale-to-zero-outside-prod",
              "required-tags", "endpoint-instance-count", "log-retention-bounded",
              "monthly-budget", "mlflow-server-size", "eks-upgrade-policy",
              "athena-scan-cutoff"}


def test_rule_table_entries() -> None:
    rules = {r.name: r for r in rules_of("cost")}
    assert set(rules) == COST_RULES
    for entry in rules.values():
        assert entry.level == "mandatory" and entry.description.endswith(".")
        assert entry.resource_types and entry.config_schema
    assert {r.name for r in rules.values() if r.stack} == {"max-gpus", "monthly-budget"}
    config = pack_config("cost", environment="prod", profile="prod", region="eu-west-1")
    assert config["monthly-budget"] == {"enforcementLevel": "mandatory", "budget_usd": 6000,
                                        "scale": "desired", "region": "eu-west-1",
                                        "environment": "prod"}


def test_taggable_types_take_tags_in_the_sdk(graphs: dict[tuple[str, str], Any]) -> None:
    def takes_tags(resource_type: str) -> bool:
        module, cls = resource_type.split(":")[1].split("/")[0], resource_type.split(":")[2]
        module = {"index": "", "lambda": "lambda_"}.get(module, module)
        sdk = importlib.import_module(f"pulumi_aws.{module}" if module else "pulumi_aws")
        return "tags" in inspect.signature(getattr(sdk, cls)._internal_init).parameters

    assert [t for t in TAGGABLE_TYPES if not takes_tags(t)] == []
    seen = {r.type for g in graphs.values() for r in g.resources if r.type.startswith("aws:")}
    assert sorted(t for t in seen if takes_tags(t) and t not in TAGGABLE_TYPES) == []


# ------------------------------------------------------------------ instance types

CPU_FIX = ("use one of t3.medium, t3.large, m6i.large, m6i.xlarge, m7i.large, m7i.xlarge, "
           "c6i.large, c6i.xlarge, or add it to cpu-instance-types.allowed in the policy file")


def test_cpu_instance_types() -> None:
    assert check("cpu-instance-types", NODE_GROUP, CPU_GROUP) == []
    assert check("cpu-instance-types", NODE_GROUP, GPU_GROUP) == []  # the GPU rule's business
    big = changed(CPU_GROUP, "instanceTypes", ["m6i.large", "m6i.4xlarge"])
    assert check("cpu-instance-types", NODE_GROUP, big, name="system") == [
        "NodeGroup 'system': instanceTypes[1] is m6i.4xlarge, not an allowed CPU instance type "
        f"in this environment; {CPU_FIX}"]
    assert check("cpu-instance-types", NODE_GROUP, big, profile="prod") == []
    assert check("cpu-instance-types", NODE_GROUP, big, allowed=["m6i.4xlarge", "m6i.large"]) \
        == []


CPU_POOL_FIX = ("restrict karpenter.k8s.aws/instance-family and karpenter.k8s.aws/instance-size "
                "(the CPU pool's instance_families and instance_sizes) to types in t3.medium, "
                "t3.large, m6i.large, m6i.xlarge, m7i.large, m7i.xlarge, c6i.large, c6i.xlarge, "
                "or add them to cpu-instance-types.allowed in the policy file")


def test_cpu_instance_types_of_a_node_pool() -> None:
    assert check("cpu-instance-types", POOL, CPU_POOL) == []
    # a GPU pool is the GPU rule's business
    assert check("cpu-instance-types", POOL, GPU_POOL) == []
    larger = changed(CPU_POOL, "spec.template.spec.requirements[1].values", ["large", "2xlarge"])
    assert check("cpu-instance-types", POOL, larger, name="cpu") == [
        "NodePool 'cpu': spec.template.spec.requirements[0] allows m7i.2xlarge, m6i.2xlarge, "
        "c6i.2xlarge, not allowed CPU instance types in this environment; " + CPU_POOL_FIX]
    assert check("cpu-instance-types", POOL, larger, profile="staging") == []
    # every family x size: a type the instance table does not know is judged as well
    huge = changed(CPU_POOL, "spec.template.spec.requirements[1].values", ["large", "8xlarge"])
    assert check("cpu-instance-types", POOL, huge, name="cpu", profile="prod") == [
        "NodePool 'cpu': spec.template.spec.requirements[0] allows m7i.8xlarge (a type "
        "mlscaffold does not know), m6i.8xlarge (a type mlscaffold does not know), c6i.8xlarge "
        "(a type mlscaffold does not know), not allowed CPU instance types in this "
        "environment; " + CPU_POOL_FIX.replace(
            "t3.medium, t3.large, m6i.large, m6i.xlarge, m7i.large, m7i.xlarge, c6i.large, "
            "c6i.xlarge", ", ".join(t for t, i in EC2_INSTANCES.items()
                                    if not i.gpus and i.arch == "x86_64"))]
    # no size requirement: every size of the families, known or not
    any_size = changed(CPU_POOL, "spec.template.spec.requirements",
                       [r for r in CPU_POOL["spec"]["template"]["spec"]["requirements"]
                        if r["key"] != "karpenter.k8s.aws/instance-size"])
    found = check("cpu-instance-types", POOL, any_size, name="cpu", profile="prod")
    assert found == [
        "NodePool 'cpu': spec.template.spec.requirements[0] allows m7i.* (every size: no "
        "karpenter.k8s.aws/instance-size requirement), m6i.* (every size: no "
        "karpenter.k8s.aws/instance-size requirement), c6i.* (every size: no "
        "karpenter.k8s.aws/instance-size requirement), not allowed CPU instance types in this "
        "environment; " + found[0].split("; ", 1)[1]]
    types = changed(CPU_POOL, "spec.template.spec.requirements[0]",
                    {"key": "node.kubernetes.io/instance-type", "operator": "In",
                     "values": ["m6i.large", "m6i.4xlarge"]})
    assert check("cpu-instance-types", POOL, types, name="cpu") == [
        "NodePool 'cpu': spec.template.spec.requirements[0] allows m6i.4xlarge, not allowed CPU "
        "instance types in this environment; " + CPU_POOL_FIX]
    anything = changed(CPU_POOL, "spec.template.spec.requirements",
                       CPU_POOL["spec"]["template"]["spec"]["requirements"][2:])
    assert check("cpu-instance-types", POOL, anything, name="cpu") == [
        "NodePool 'cpu': spec.template.spec.requirements do not restrict "
        "karpenter.k8s.aws/instance-family or node.kubernetes.io/instance-type (Karpenter may "
        "launch any CPU type); " + CPU_POOL_FIX]
    assert check("cpu-instance-types", POOL, changed(
        CPU_POOL, "spec.template.spec.requirements[1].values", ["large", "4xlarge"]),
        allowed=["m7i.large", "m6i.large", "c6i.large", "m7i.4xlarge", "m6i.4xlarge",
                 "c6i.4xlarge"]) == []


def test_gpu_rules_leave_a_cpu_node_pool_alone() -> None:
    """On-demand, warm or large, a CPU pool is none of the GPU rules' business."""
    on_demand = changed(CPU_POOL, "spec.template.spec.requirements[2].values", ["on-demand"])
    warm = changed(on_demand, "spec.disruption.consolidateAfter", "Never")
    for rule in ("gpu-instance-types", "gpu-spot-outside-prod",
                 "gpu-scale-to-zero-outside-prod"):
        assert check(rule, POOL, warm) == [], rule
    assert check_stack("max-gpus", [(POOL, "cpu", changed(CPU_POOL, "spec.limits",
                                                           {"cpu": "512"}))]) == []


def test_gpu_instance_types() -> None:
    assert check("gpu-instance-types", NODE_GROUP, GPU_GROUP) == []
    p5 = changed(GPU_GROUP, "instanceTypes", ["p5.48xlarge"])
    assert check("gpu-instance-types", NODE_GROUP, p5, name="gpu") == [
        "NodeGroup 'gpu': instanceTypes[0] is p5.48xlarge (8 GPUs), not an allowed GPU instance "
        "type in this environment; use one of g4dn.xlarge, g4dn.2xlarge, g5.xlarge, g5.2xlarge, "
        "g6.xlarge, g6.2xlarge, or add it to gpu-instance-types.allowed in the policy file"]
    assert check("gpu-instance-types", NODE_GROUP, p5, profile="staging")[0].startswith(
        "NodeGroup 'res': instanceTypes[0] is p5.48xlarge (8 GPUs), not an allowed GPU")
    assert check("gpu-instance-types", NODE_GROUP, p5, profile="prod") == []
    # a GPU type the instance table does not know yet is still judged as a GPU type
    new = changed(GPU_GROUP, "instanceTypes", ["p6-b200.48xlarge"])
    assert is_accelerated("p6-b200.48xlarge") and not is_accelerated("m8g.large")
    assert check("gpu-instance-types", NODE_GROUP, new, profile="prod")[0].startswith(
        "NodeGroup 'res': instanceTypes[0] is p6-b200.48xlarge, not an allowed GPU")
    assert check("cpu-instance-types", NODE_GROUP, new) == []
    old = changed(GPU_GROUP, "instanceTypes", ["p3.2xlarge"])
    assert len(check("gpu-instance-types", NODE_GROUP, old, profile="prod")) == 1


def test_sagemaker_instance_types() -> None:
    assert check("sagemaker-instance-types", ENDPOINT_CONFIG, ENDPOINT_CONFIG_PROPS) == []
    gpu = changed(ENDPOINT_CONFIG_PROPS, "productionVariants[0].instanceType", "ml.g5.2xlarge")
    assert check("sagemaker-instance-types", ENDPOINT_CONFIG, gpu, name="cfg") == [
        "EndpointConfiguration 'cfg': productionVariants[0].instanceType is ml.g5.2xlarge, not "
        "an allowed SageMaker instance type in this environment; use one of ml.t2.medium, "
        "ml.m5.large, ml.m5.xlarge, ml.c5.large, ml.c5.xlarge, or add it to "
        "sagemaker-instance-types.allowed in the policy file"]
    assert check("sagemaker-instance-types", ENDPOINT_CONFIG, gpu, profile="prod") == []
    serverless = {"productionVariants": [{"variantName": "a", "serverlessConfig": {
        "maxConcurrency": 5, "memorySizeInMb": 2048}}]}
    assert check("sagemaker-instance-types", ENDPOINT_CONFIG, serverless) == []


# ------------------------------------------------------------------ sizes and GPUs


def test_max_nodes() -> None:
    assert check("max-nodes", NODE_GROUP, CPU_GROUP) == []
    big = changed(CPU_GROUP, "scalingConfig.maxSize", 12.0)
    assert check("max-nodes", NODE_GROUP, big, name="system") == [
        "NodeGroup 'system': scalingConfig.maxSize is 12, above the limit of 5 nodes per node "
        "group in this environment; lower it to 5 or less, or raise max-nodes.max_nodes in the "
        "policy file"]
    assert check("max-nodes", NODE_GROUP, big, profile="staging")[0].endswith(
        "lower it to 10 or less, or raise max-nodes.max_nodes in the policy file")
    assert check("max-nodes", NODE_GROUP, big, profile="prod") == []


def test_gpu_instance_types_of_a_node_pool() -> None:
    assert check("gpu-instance-types", POOL, GPU_POOL) == []
    # every size of the families: the large ones are not dev types
    any_size = changed(GPU_POOL, "spec.template.spec.requirements",
                       [GPU_POOL["spec"]["template"]["spec"]["requirements"][0]])
    found = check("gpu-instance-types", POOL, any_size, name="pool")
    assert found == [
        "NodePool 'pool': spec.template.spec.requirements[0] allows g4dn.4xlarge (1 GPU), "
        "g4dn.8xlarge (1 GPU), g4dn.12xlarge (4 GPUs), g4dn.16xlarge (1 GPU), g5.4xlarge "
        "(1 GPU), g5.8xlarge (1 GPU), g5.12xlarge (4 GPUs), g5.16xlarge (1 GPU), g5.24xlarge "
        "(4 GPUs), g5.48xlarge (8 GPUs), g6.4xlarge (1 GPU), g6.8xlarge (1 GPU), g6.12xlarge "
        "(4 GPUs), g6.16xlarge (1 GPU), g6.24xlarge (4 GPUs), g6.48xlarge (8 GPUs), not "
        "allowed GPU instance types in this environment; restrict "
        "karpenter.k8s.aws/instance-family and karpenter.k8s.aws/instance-size (the GPU pool's "
        "instance_families and instance_sizes) to types in g4dn.xlarge, g4dn.2xlarge, "
        "g5.xlarge, g5.2xlarge, g6.xlarge, g6.2xlarge, or add them to gpu-instance-types.allowed "
        "in the policy file"]
    assert check("gpu-instance-types", POOL, any_size, profile="prod") == []
    unknown = changed(GPU_POOL, "spec.template.spec.requirements[0].values", ["g5", "g7"])
    assert check("gpu-instance-types", POOL, unknown, name="pool")[0].startswith(
        "NodePool 'pool': spec.template.spec.requirements[0] allows g7.* (a family mlscaffold "
        "does not know), not allowed GPU instance types in this environment")
    types = changed(GPU_POOL, "spec.template.spec.requirements[0]",
                    {"key": "node.kubernetes.io/instance-type", "operator": "In",
                     "values": ["g5.xlarge", "p5.48xlarge"]})
    assert check("gpu-instance-types", POOL, types, name="pool")[0].startswith(
        "NodePool 'pool': spec.template.spec.requirements[0] allows p5.48xlarge (8 GPUs), not")
    anything = changed(GPU_POOL, "spec.template.spec.requirements",
                       [GPU_POOL["spec"]["template"]["spec"]["requirements"][2]])
    assert check("gpu-instance-types", POOL, anything, name="pool")[0].startswith(
        "NodePool 'pool': spec.template.spec.requirements do not restrict "
        "karpenter.k8s.aws/instance-family or node.kubernetes.io/instance-type (Karpenter may "
        "launch any GPU type); restrict")
    # a CPU pool is the cpu rule's business, not this one's
    cpu = changed(changed(changed(GPU_POOL, "spec.template.spec.taints", []),
                          "spec.template.metadata.labels", {}),
                  "spec.template.spec.requirements[0].values", ["m6i"])
    assert check("gpu-instance-types", POOL, cpu) == []


def test_max_nodes_of_a_node_pool() -> None:
    assert check("max-nodes", POOL, GPU_POOL) == []
    wide = changed(GPU_POOL, "spec.limits", {"cpu": "64", "nvidia.com/gpu": "8"})
    assert check("max-nodes", POOL, wide, name="pool") == [
        "NodePool 'pool': spec.limits let the NodePool grow to 8 nodes (limits.nvidia.com/gpu "
        "8 / 1 GPU of g4dn.xlarge), above the limit of 5 nodes per node group in this "
        "environment; lower the limits (max_gpus of the GPU pool) or allow larger instance "
        "sizes, or raise max-nodes.max_nodes in the policy file"]
    assert check("max-nodes", POOL, wide, profile="staging") == []
    assert check("max-nodes", POOL, changed(GPU_POOL, "spec.limits", {}), name="pool") == [
        "NodePool 'pool': spec.limits set no cpu or nvidia.com/gpu limit (the NodePool may "
        "launch nodes without bound); set spec.limits (max_gpus of the GPU pool)"]


def test_max_nodes_of_a_cpu_node_pool() -> None:
    assert check("max-nodes", POOL, CPU_POOL) == []  # 8 vCPUs: 4 nodes of 2 vCPUs
    wide = changed(CPU_POOL, "spec.limits", {"cpu": "16"})
    assert check("max-nodes", POOL, wide, name="cpu") == [
        "NodePool 'cpu': spec.limits let the NodePool grow to 8 nodes (limits.cpu 16 / 2 vCPUs "
        "of m6i.large), above the limit of 5 nodes per node group in this environment; lower "
        "the limits (max_vcpus of the CPU pool) or allow larger instance sizes, or raise "
        "max-nodes.max_nodes in the policy file"]
    assert check("max-nodes", POOL, wide, profile="staging") == []
    assert check("max-nodes", POOL, changed(CPU_POOL, "spec.limits", {}), name="cpu") == [
        "NodePool 'cpu': spec.limits set no cpu or nvidia.com/gpu limit (the NodePool may "
        "launch nodes without bound); set spec.limits (max_vcpus of the CPU pool)"]


def test_max_gpus_of_node_pools() -> None:
    stack = [(NODE_GROUP, "system", CPU_GROUP), (POOL, "pool", GPU_POOL)]
    assert check_stack("max-gpus", stack) == []
    six = changed(GPU_POOL, "spec.limits", {"cpu": "48", "nvidia.com/gpu": "6"})
    assert check_stack("max-gpus", [(POOL, "pool", six)]) == [(
        "pool", "NodePool 'pool': spec.limits lets the stack scale to 6 GPUs (NodePool pool: "
                "limits.nvidia.com/gpu 6), above the limit of 4 GPUs in this environment; "
                "lower the GPU pools' max_gpus (NodePool limits), the GPU node groups' "
                "scalingConfig.maxSize or the GPU endpoints' maximum instances, or raise "
                "max-gpus.max_gpus in the policy file")]
    # no GPU limit: as many GPUs as the cpu limit buys on the allowed types
    cpu_only = changed(GPU_POOL, "spec.limits", {"cpu": "24"})
    assert check_stack("max-gpus", [(POOL, "pool", cpu_only)])[0][1].startswith(
        "NodePool 'pool': spec.limits lets the stack scale to 6 GPUs (NodePool pool: limits.cpu "
        "24 on g4dn.xlarge (1 GPU))")
    unbounded = changed(GPU_POOL, "spec.limits", {})
    assert check_stack("max-gpus", [(POOL, "pool", unbounded)])[0][1].startswith(
        "NodePool 'pool': spec.limits lets the stack scale without bound (NodePool pool: no "
        "limits)")
    assert check_stack("max-gpus", [(POOL, "pool", six)], profile="staging") == []


def test_max_gpus() -> None:
    stack = [(NODE_GROUP, "system", CPU_GROUP), (NODE_GROUP, "gpu", GPU_GROUP),
             (ENDPOINT_CONFIG, "cfg", ENDPOINT_CONFIG_PROPS)]
    assert check_stack("max-gpus", stack) == []
    fifty = changed(GPU_GROUP, "scalingConfig.maxSize", 50.0)
    assert check_stack("max-gpus", [(NODE_GROUP, "gpu", fifty)]) == [(
        "gpu", "NodeGroup 'gpu': scalingConfig.maxSize lets the stack scale to 50 GPUs (gpu: 50 x "
               "g5.xlarge (1 GPU)), above the limit of 4 GPUs in this environment; lower the GPU "
               "pools' max_gpus (NodePool limits), the GPU node groups' scalingConfig.maxSize "
               "or the GPU endpoints' maximum instances, or raise max-gpus.max_gpus in the "
               "policy file")]
    assert check_stack("max-gpus", [(NODE_GROUP, "gpu", fifty)], profile="prod")[0][1].startswith(
        "NodeGroup 'gpu': scalingConfig.maxSize lets the stack scale to 50 GPUs")
    # multi-GPU types count every GPU; GPU endpoints count at their autoscaling maximum
    eight = changed(GPU_GROUP, "instanceTypes", ["g5.xlarge", "g5.48xlarge"])
    gpu_endpoint = changed(ENDPOINT_CONFIG_PROPS, "productionVariants[0].instanceType",
                           "ml.g5.xlarge")
    found = check_stack("max-gpus", [
        (NODE_GROUP, "gpu", eight), (ENDPOINT_CONFIG, "endpoint-config", gpu_endpoint),
        (ENDPOINT, "endpoint", ENDPOINT_PROPS), (TARGET, "scaling", TARGET_PROPS)],
        profile="staging")
    assert found == [("gpu", "NodeGroup 'gpu': scalingConfig.maxSize lets the stack scale to 18 "
                             "GPUs (gpu: 2 x g5.48xlarge (8 GPU); endpoint-config/primary: 2 x "
                             "ml.g5.xlarge (1 GPU)), above the limit of 8 GPUs in this "
                             "environment; lower the GPU pools' max_gpus (NodePool limits), the "
                             "GPU node groups' scalingConfig.maxSize or the GPU endpoints' "
                             "maximum instances, or raise max-gpus.max_gpus in the policy "
                             "file")]
    # a SageMaker type of the table's EC2 family has its EC2 counterpart's GPUs; a GPU type
    # mlscaffold has no specs of counts without bound rather than as none
    four = changed(ENDPOINT_CONFIG_PROPS, "productionVariants[0].instanceType", "ml.g5.12xlarge")
    assert check_stack("max-gpus", [(ENDPOINT_CONFIG, "cfg", four), (ENDPOINT, "endpoint",
                                    ENDPOINT_PROPS), (TARGET, "scaling", TARGET_PROPS)],
                       profile="staging") == []
    unknown = changed(ENDPOINT_CONFIG_PROPS, "productionVariants[0].instanceType",
                      "ml.p5e.48xlarge")
    found = check_stack("max-gpus", [(ENDPOINT_CONFIG, "cfg", unknown)], profile="prod")
    assert found == [("cfg", "EndpointConfiguration 'cfg': productionVariants lets the stack "
                             "scale without bound (cfg/primary: 1 x ml.p5e.48xlarge (GPUs per "
                             "instance not in mlscaffold's instance table)), above the limit of "
                             "32 GPUs in this environment; lower the GPU pools' max_gpus "
                             "(NodePool limits), the GPU node groups' scalingConfig.maxSize or "
                             "the GPU endpoints' maximum instances, or raise max-gpus.max_gpus "
                             "in the policy file")]


# ------------------------------------------------------------------ SPOT and scale to zero


def test_gpu_spot_outside_prod() -> None:
    assert check("gpu-spot-outside-prod", NODE_GROUP, GPU_GROUP) == []
    assert check("gpu-spot-outside-prod", NODE_GROUP, CPU_GROUP) == []  # CPU groups: free
    on_demand = changed(GPU_GROUP, "capacityType", "ON_DEMAND")
    message = ("NodeGroup 'gpu': capacityType is ON_DEMAND on a GPU node group outside "
               "production; set it to SPOT (about 65% cheaper; training and test workloads "
               "tolerate interruptions), or turn gpu-spot-outside-prod.required off in the "
               "policy file")
    assert check("gpu-spot-outside-prod", NODE_GROUP, on_demand, name="gpu") == [message]
    unset = {k: v for k, v in GPU_GROUP.items() if k != "capacityType"}  # AWS's default
    assert check("gpu-spot-outside-prod", NODE_GROUP, unset, name="gpu") == [message]
    assert len(check("gpu-spot-outside-prod", NODE_GROUP, on_demand, profile="staging")) == 1
    assert check("gpu-spot-outside-prod", NODE_GROUP, on_demand, profile="prod") == []


def test_gpu_scale_to_zero_outside_prod() -> None:
    assert check("gpu-scale-to-zero-outside-prod", NODE_GROUP, GPU_GROUP) == []
    warm = changed(GPU_GROUP, "scalingConfig.minSize", 1.0)
    assert check("gpu-scale-to-zero-outside-prod", NODE_GROUP, warm, name="gpu") == [
        "NodeGroup 'gpu': scalingConfig.minSize is 1 on a GPU node group outside production "
        "(idle GPU nodes keep running); set it to 0 so that idle GPU nodes are removed, or "
        "turn gpu-scale-to-zero-outside-prod.required off in the policy file"]
    assert check("gpu-scale-to-zero-outside-prod", NODE_GROUP, warm, profile="prod") == []
    assert check("gpu-scale-to-zero-outside-prod", NODE_GROUP,
                 changed(CPU_GROUP, "scalingConfig.minSize", 2.0)) == []


def test_node_pools_on_spot_outside_prod() -> None:
    assert check("gpu-spot-outside-prod", POOL, GPU_POOL) == []
    fix = ("allow spot only (capacity_types [spot] of the GPU pool; about 65% cheaper, and "
           "training and test workloads tolerate interruptions), or turn "
           "gpu-spot-outside-prod.required off in the policy file")
    both = changed(GPU_POOL, "spec.template.spec.requirements[2].values", ["spot", "on-demand"])
    assert check("gpu-spot-outside-prod", POOL, both, name="pool") == [
        "NodePool 'pool': spec.template.spec.requirements[2] allows on-demand capacity on a GPU "
        f"NodePool outside production; {fix}"]
    unset = changed(GPU_POOL, "spec.template.spec.requirements",
                    GPU_POOL["spec"]["template"]["spec"]["requirements"][:2])
    assert check("gpu-spot-outside-prod", POOL, unset, name="pool") == [
        "NodePool 'pool': spec.template.spec.requirements do not restrict "
        "karpenter.sh/capacity-type on a GPU NodePool outside production (Karpenter launches "
        f"on-demand); {fix}"]
    assert check("gpu-spot-outside-prod", POOL, both, profile="prod") == []


def test_node_pools_scale_to_zero_outside_prod() -> None:
    assert check("gpu-scale-to-zero-outside-prod", POOL, GPU_POOL) == []
    static = changed(GPU_POOL, "spec.replicas", 2)
    assert check("gpu-scale-to-zero-outside-prod", POOL, static, name="pool") == [
        "NodePool 'pool': spec.replicas is 2 on a GPU NodePool outside production (a static "
        "NodePool keeps 2 GPU nodes running); remove it so that Karpenter launches GPU nodes "
        "only for pending pods, or turn gpu-scale-to-zero-outside-prod.required off in the "
        "policy file"]
    never = changed(GPU_POOL, "spec.disruption.consolidateAfter", "Never")
    assert check("gpu-scale-to-zero-outside-prod", POOL, never, name="pool") == [
        "NodePool 'pool': spec.disruption.consolidateAfter is Never on a GPU NodePool outside "
        "production (idle GPU nodes keep running); set a duration such as 5m (consolidate_after "
        "of the GPU pool) so that Karpenter removes idle GPU nodes, or turn "
        "gpu-scale-to-zero-outside-prod.required off in the policy file"]
    assert check("gpu-scale-to-zero-outside-prod", POOL, never, profile="prod") == []


# ------------------------------------------------------------------ tags

TAG_FIX = ("tag it with project, env, owner, cost-center (mlscaffold's components pass the "
           "platform's tags; provider default tags are not seen by policies)")


def test_required_tags() -> None:
    bucket = "aws:s3/bucket:Bucket"
    assert check("required-tags", bucket, {"tags": {**TAGS, "Name": "b"}}) == []
    assert check("required-tags", bucket, {"bucketPrefix": "b-"}, name="artifacts") == [
        f"Bucket 'artifacts': tags are not set; {TAG_FIX}"]
    partial = {"tags": {"project": "demo", "env": "dev"}}
    assert check("required-tags", bucket, partial, name="artifacts") == [
        f"Bucket 'artifacts': tags lack owner, cost-center; {TAG_FIX}"]
    empty = {"tags": {**TAGS, "owner": " "}}
    assert check("required-tags", bucket, empty, name="artifacts") == [
        "Bucket 'artifacts': tags.owner is empty; give owner a value"]
    computed = {"tags": {**TAGS, "owner": UNKNOWN_STRING_VALUE}}
    assert check("required-tags", bucket, computed) == []
    assert check("required-tags", bucket, partial, tags=["project"]) == []
    # types that take no tags are not looked at
    assert check("required-tags", "aws:s3/bucketPolicy:BucketPolicy", {"bucket": "b"}) == []


# ------------------------------------------------------------------ endpoints and logs


def test_endpoint_instance_count() -> None:
    assert check("endpoint-instance-count", ENDPOINT_CONFIG, ENDPOINT_CONFIG_PROPS) == []
    assert check("endpoint-instance-count", TARGET, TARGET_PROPS) == []
    many = changed(ENDPOINT_CONFIG_PROPS, "productionVariants[0].initialInstanceCount", 4.0)
    assert check("endpoint-instance-count", ENDPOINT_CONFIG, many, name="cfg") == [
        "EndpointConfiguration 'cfg': productionVariants[0].initialInstanceCount is 4, above the "
        "limit of 2 instances per endpoint variant in this environment; lower it to 2 or less, "
        "or raise endpoint-instance-count.max_instances in the policy file"]
    wide = changed(TARGET_PROPS, "maxCapacity", 20.0)
    assert check("endpoint-instance-count", TARGET, wide, name="scaling") == [
        "Target 'scaling': maxCapacity is 20, above the limit of 2 instances per endpoint "
        "variant in this environment; lower it to 2 or less, or raise "
        "endpoint-instance-count.max_instances in the policy file"]
    assert check("endpoint-instance-count", TARGET, wide, profile="prod")[0].startswith(
        "Target 'res': maxCapacity is 20, above the limit of 10 instances")
    assert check("endpoint-instance-count", ENDPOINT_CONFIG, many, profile="staging") == []
    ecs = changed(wide, "serviceNamespace", "ecs")
    assert check("endpoint-instance-count", TARGET, ecs) == []


def test_log_retention_bounded() -> None:
    logs = {"retentionInDays": 30.0, "tags": TAGS}
    assert check("log-retention-bounded", LOG_GROUP, logs) == []
    assert check("log-retention-bounded", LOG_GROUP, {"tags": TAGS}, name="flow-logs") == [
        "LogGroup 'flow-logs': retentionInDays is not set (events are kept forever and storage "
        "grows every month); set it to at most 90 days, e.g. 30"]
    assert check("log-retention-bounded", LOG_GROUP, changed(logs, "retentionInDays", 0))[0] \
        .startswith("LogGroup 'res': retentionInDays is not set")
    year = changed(logs, "retentionInDays", 365.0)
    assert check("log-retention-bounded", LOG_GROUP, year, name="flow-logs") == [
        "LogGroup 'flow-logs': retentionInDays is 365, above the limit of 90 days in this "
        "environment; lower it to 90 days or less (export older logs to S3 if they must be "
        "kept), or raise log-retention-bounded.max_days in the policy file"]
    assert check("log-retention-bounded", LOG_GROUP, year, profile="staging") != []
    assert check("log-retention-bounded", LOG_GROUP, year, profile="prod") == []


def test_athena_scan_cutoff() -> None:
    workgroup = "aws:athena/workgroup:Workgroup"
    capped = {"configuration": {"bytesScannedCutoffPerQuery": 100e9}, "tags": TAGS}
    assert check("athena-scan-cutoff", workgroup, capped) == []
    assert check("athena-scan-cutoff", workgroup, {"configuration": {}, "tags": TAGS},
                 name="queries") == [
        "Workgroup 'queries': configuration.bytesScannedCutoffPerQuery is not set (one query "
        "may scan, and bill, whole tables); set bytes_scanned_cutoff_per_query to at most "
        "100000000000 (100 GB; mlscaffold's stacks: training.query_scan_limit_gb)"]
    big = changed(capped, "configuration.bytesScannedCutoffPerQuery", 2.5e12)
    assert check("athena-scan-cutoff", workgroup, big, name="queries") == [
        "Workgroup 'queries': configuration.bytesScannedCutoffPerQuery is 2500 GB, above the "
        "limit of 100 GB in this environment; lower it to 100 GB or less, or raise "
        "athena-scan-cutoff.max_gb in the policy file"]
    assert check("athena-scan-cutoff", workgroup, big, profile="staging") != []
    assert check("athena-scan-cutoff", workgroup, big, profile="prod") == []


# ------------------------------------------------------------------ EKS upgrade policy

EKS = {"version": "1.34", "upgradePolicy": {"supportType": "STANDARD"}, "tags": TAGS}
EXTENDED_BILL = ("from 2026-12-02, the end of Kubernetes 1.34's standard support, the control "
                 "plane is billed $0.60 instead of $0.10 per cluster-hour (extended support)")


def test_eks_upgrade_policy_standard_passes_and_extended_is_reported() -> None:
    assert check("eks-upgrade-policy", CLUSTER, EKS) == []
    extended = changed(EKS, "upgradePolicy.supportType", "EXTENDED")
    assert check("eks-upgrade-policy", CLUSTER, extended, name="demo-eks") == [
        f"Cluster 'demo-eks': upgradePolicy.supportType is EXTENDED: {EXTENDED_BILL}; set it to "
        "STANDARD (cluster.support_type in the stack config) and raise the version before that "
        "date, or turn eks-upgrade-policy.allow_extended on in the policy file to pay for "
        "extended support deliberately"]
    # paid for deliberately: allowed by the policy file, in any environment
    assert check("eks-upgrade-policy", CLUSTER, extended, allow_extended=True) == []
    assert check("eks-upgrade-policy", CLUSTER, extended, profile="prod") != []


@pytest.mark.parametrize("unset", [{}, {"supportType": None}])
def test_eks_upgrade_policy_unset_is_aws_default_extended(unset: dict[str, Any]) -> None:
    """AWS's default is EXTENDED: a cluster without a policy is billed silently, so it is
    reported even where EXTENDED is allowed."""
    bare = changed(EKS, "upgradePolicy", unset)
    message = (f"Cluster 'demo-eks': upgradePolicy.supportType is not set, so AWS applies "
               f"EXTENDED: {EXTENDED_BILL}; set it to STANDARD (cluster.support_type in the "
               "stack config), or set EXTENDED explicitly and turn "
               "eks-upgrade-policy.allow_extended on in the policy file")
    assert check("eks-upgrade-policy", CLUSTER, bare, name="demo-eks") == [message]
    assert check("eks-upgrade-policy", CLUSTER, bare, name="demo-eks",
                 allow_extended=True) == [message]
    no_policy = {k: v for k, v in EKS.items() if k != "upgradePolicy"}
    assert check("eks-upgrade-policy", CLUSTER, no_policy, name="demo-eks") == [message]


def test_eks_upgrade_policy_message_without_a_known_version() -> None:
    newer = changed(changed(EKS, "version", "1.99"), "upgradePolicy.supportType", "EXTENDED")
    [message] = check("eks-upgrade-policy", CLUSTER, newer)
    assert message.startswith(
        "Cluster 'res': upgradePolicy.supportType is EXTENDED: from the end of its Kubernetes "
        "version's standard support, the control plane is billed $0.60 instead of $0.10 per "
        "cluster-hour (extended support); ")
    assert check("eks-upgrade-policy", CLUSTER, changed(EKS, "upgradePolicy.supportType",
                                                        "LTS")) == [
        "Cluster 'res': upgradePolicy.supportType is 'LTS', not a support type EKS knows "
        "(STANDARD or EXTENDED); set it to STANDARD (cluster.support_type in the stack config)"]
    computed = changed(EKS, "version", UNKNOWN_STRING_VALUE)
    assert check("eks-upgrade-policy", CLUSTER, computed) == []


def test_eks_upgrade_policy_rates_are_the_price_tables() -> None:
    t = prices()
    assert f"${t.service('eks_cluster_extended_support_hour'):.2f} instead of " \
        f"${t.service('eks_cluster_hour'):.2f}" in EXTENDED_BILL


# ------------------------------------------------------------------ budget


def test_monthly_budget() -> None:
    stack = small_stack()
    total = estimate(stack, "us-east-1").total
    assert check_stack("monthly-budget", stack) == []
    found = check_stack("monthly-budget", stack, budget_usd=100, environment="dev")
    t = prices()
    nodes = 2 * (t.ec2("m6i.large") * HOURS + 100 * t.service("ebs_gp3_gb_month"))
    assert found == [("system", (
        f"NodeGroup 'system': scalingConfig.desiredSize costs ${nodes:,.2f}/month, the largest "
        f"item of the stack's estimate of ${total:,.2f}/month at baseline size in us-east-1, "
        "above the dev budget of $100.00 (largest items: "
        + ", ".join(f"{line.resource} ${line.monthly_usd:,.2f}"
                    for line in estimate(stack, "us-east-1").lines[:3])
        + "); use smaller or fewer instances or SPOT capacity (`mlscaffold cost` shows every "
          "item), or raise monthly-budget.budget_usd in the policy file"))]
    # the region and the scale setting change the figure compared with the budget
    full = estimate(stack, "us-east-1").at_full_scale
    between = (total + full) / 2
    assert check_stack("monthly-budget", stack, budget_usd=between) == []
    assert check_stack("monthly-budget", stack, budget_usd=between, scale="max") != []
    assert check_stack("monthly-budget", stack, budget_usd=total * 1.05) == []
    assert check_stack("monthly-budget", stack, budget_usd=total * 1.05, region="sa-east-1") != []


def test_budget_catches_a_large_gpu_fleet_in_dev() -> None:
    p5 = changed(changed(GPU_GROUP, "instanceTypes", ["p5.48xlarge"]),
                 "scalingConfig.desiredSize", 1.0)
    found = check_stack("monthly-budget", [*small_stack(), (NODE_GROUP, "gpu", p5)])
    assert [name for name, _ in found] == ["gpu"]
    assert found[0][1].startswith("NodeGroup 'gpu': scalingConfig.desiredSize costs $")


# ------------------------------------------------------------------ the examples


@pytest.fixture(scope="module")
def graphs() -> dict[tuple[str, str], Any]:
    from mlscaffold.infra import preview_stack

    return {(project, stack): preview_stack(EXAMPLES / project, stack)
            for project, stack in STACKS}


def _configs(project: str, stack: str, region: str | None = None) -> dict[str, Any]:
    from mlscaffold.spec import load_spec

    spec = load_spec(EXAMPLES / project / "mlscaffold.yaml")
    return {"cost": pack_config("cost", environment=stack,
                                profile=environment_profile(stack, spec.environments),
                                region=region or spec.region)}


@pytest.mark.parametrize(("project", "stack"), STACKS)
def test_examples_pass_the_cost_pack(graphs: dict[tuple[str, str], Any], project: str,
                                     stack: str) -> None:
    result = evaluate(graphs[(project, stack)], _configs(project, stack))
    assert result.rules == len(COST_RULES)
    assert result.findings == []


@pytest.mark.parametrize(("project", "stack"), STACKS)
def test_examples_fit_the_budget_in_every_priced_region(graphs: dict[tuple[str, str], Any],
                                                        project: str, stack: str) -> None:
    """A generated stack stays under its profile's budget wherever the user deploys it."""
    t = prices()
    costliest = max(t.regions.multipliers, key=t.regions.multipliers.__getitem__)
    from mlscaffold.spec import load_spec

    environments = load_spec(EXAMPLES / project / "mlscaffold.yaml").environments
    budget = RULES["monthly-budget"].defaults(environment_profile(stack, environments))[
        "budget_usd"]
    resources = graph_resources(graphs[(project, stack)])
    for region in (costliest, "mx-central-1"):
        assert estimate(resources, region).total < budget
    assert estimate(resources, "us-east-1").unpriced == ()


def _with(graph: Any, edits: list[tuple[str, str, Any]]) -> Any:
    """A copy of `graph` with each (resource name suffix, input path, value) edit applied."""
    resources = list(graph.resources)
    for suffix, path, value in edits:
        resources = [dataclasses.replace(r, inputs=changed(r.inputs, path, value))
                     if r.name.endswith(suffix) else r for r in resources]
    return dataclasses.replace(graph, resources=resources)


GPU, CPU = "-gpu-node-pool", "-cpu-node-pool"
SYSTEM, MODEL = "-cluster-system", "-inference-service"
FAMILIES, SIZES, CAPACITY = (f"spec.template.spec.requirements[{i}].values" for i in range(3))
MISTAKES = {
    "p5 in dev": ([(GPU, FAMILIES, ["p5"]), (GPU, SIZES, ["48xlarge"]),
                   (GPU, "spec.limits", {"cpu": "192", "nvidia.com/gpu": "8"})],
                  {"gpu-instance-types", "max-gpus"}),
    "50 GPUs in dev": ([(GPU, "spec.limits", {"cpu": "400", "nvidia.com/gpu": "50"})],
                       {"max-gpus", "max-nodes"}),
    "no SPOT in dev": ([(GPU, CAPACITY, ["spot", "on-demand"])], {"gpu-spot-outside-prod"}),
    "warm GPUs in dev": ([(GPU, "spec.disruption.consolidateAfter", "Never")],
                         {"gpu-scale-to-zero-outside-prod"}),
    "large CPU nodes in dev": ([(CPU, SIZES, ["2xlarge"])], {"cpu-instance-types"}),
    "extended support in dev": ([("-eks", "upgradePolicy.supportType", "EXTENDED")],
                                {"eks-upgrade-policy"}),
    "40 CPU nodes in dev": ([(CPU, "spec.limits", {"cpu": "80"})], {"max-nodes"}),
    # every setting within its own limit, the sum over the budget: more system nodes, and
    # 4 GPU replicas of the model keeping 4 g6.2xlarge up
    "budget blown": ([(SYSTEM, "instanceTypes", ["m6i.xlarge"]),
                      (SYSTEM, "scalingConfig.desiredSize", 5),
                      (SYSTEM, "scalingConfig.maxSize", 5),
                      (GPU, FAMILIES, ["g6"]), (GPU, SIZES, ["2xlarge"]),
                      (GPU, "spec.limits", {"cpu": "32", "nvidia.com/gpu": "4"}),
                      (MODEL, "spec.predictor.minReplicas", 4),
                      (MODEL, "spec.predictor.containers[0].resources.limits",
                       {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"})],
                     {"monthly-budget"}),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_dev_defaults_catch_real_mistakes(graphs: dict[tuple[str, str], Any],
                                          mistake: str) -> None:
    edits, rules = MISTAKES[mistake]
    # the KServe example: its stack has the EKS cluster and GPU pools
    result = evaluate(_with(graphs[("lifetime-value", "dev")], edits),
                      _configs("lifetime-value", "dev"))
    assert {f.rule for f in result.mandatory} == rules


@pytest.mark.parametrize("feature_store", ["none", "sagemaker"])
def test_a_sagemaker_dev_stack_idles_under_100_usd(tmp_path, feature_store: str) -> None:
    """Nothing runs for nobody: no EKS cluster, NAT or interface endpoints without a cluster
    workload, and the smallest real-time endpoint in dev (its VPC, isolation and drift kept)."""
    from mlscaffold.infra import preview_stack
    from mlscaffold.project import create_project
    from mlscaffold.spec import validate_spec

    spec = validate_spec({"name": "idle", "serving": "sagemaker", "feature_store": feature_store,
                          "ci": "none"})
    root = create_project(tmp_path / "idle", spec, git=False).path
    result = estimate(graph_resources(preview_stack(root, "dev")), "us-east-1")
    assert result.total <= 100, "\n".join(f"{line.resource}: {line.monthly_usd}"
                                          for line in result.lines)
    kinds = {line.type for line in result.lines}
    assert not {"aws:eks/cluster:Cluster", "aws:ec2/natGateway:NatGateway"} & kinds
