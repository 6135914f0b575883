"""Monitoring under mocks: alert topic, endpoint alarms, drift schedule, the Alertmanager role of
KServe's in-cluster Prometheus (installed by test_workloads.py's component), and the cluster's
GPU/CPU alarms through the CloudWatch Observability add-on."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from mlscaffold.graph import GraphResource, ResourceGraph
from mlscaffold.stacks.config import SUPPORTED_KUBERNETES_VERSIONS
from mlscaffold.stacks.constants import GPU_TAINT, TAINT_EFFECTS
from mlscaffold.stacks.monitoring import (
    BASELINE_DATA_PREFIX,
    BASELINE_RUNS_PREFIX,
    CLOUDWATCH_OBSERVABILITY_ADDON,
    CLOUDWATCH_OBSERVABILITY_VERSIONS,
    Monitoring,
    MonitoringArgs,
    model_monitor_image_uri,
)

from .conftest import SAGEMAKER_TRUST, assert_network_interfaces_in_vpc

EMAILS = ["ml-oncall@example.com", "owner@example.com"]
OUTPUTS = ("alert_topic_arn", "dashboard_name", "alarm_names", "drift_baseline")
CLUSTER = "demo-dev-eks"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:demo-dev-alerts"
ADDON = "aws:eks/addon:Addon"
CLUSTER_ALARMS = {"demo-dev-cluster-gpu-utilization", "demo-dev-cluster-node-cpu"}


def _trust_policy(namespace: str, service_account: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/mock"},
        "Condition": {"StringEquals": {
            "mock:sub": f"system:serviceaccount:{namespace}:{service_account}"}}}]})


def _args(config, key_arn: Any = "arn:aws:kms:us-east-1:123456789012:key/mock",
          **changes: Any) -> MonitoringArgs:
    values: dict[str, Any] = {
        "config": config.monitoring, "serving": config.serving, "prefix": config.prefix,
        "tags": config.tags, "kms_key_arn": key_arn, "region": config.region,
        "endpoint_name": config.prefix, "artifact_bucket_name": "demo-dev-artifacts",
        "capture_bucket_name": "demo-dev-capture", "private_subnet_ids": ["subnet-a"],
        "vpc_id": "vpc-1",
        "security_group_ids": ["sg-serving"], "irsa_trust_policy": _trust_policy,
        "cluster_name": CLUSTER,
    }
    values.update(changes)
    return MonitoringArgs(**values)


@pytest.fixture
def monitoring_graph(config_for, run_mocked):
    def build(platform: str = "sagemaker", overrides: dict | None = None,
              environment: str = "dev", **changes: Any) -> ResourceGraph:
        monitoring = {"alert_emails": EMAILS, **(overrides or {}).get("monitoring", {})}
        config = config_for(environment, {**(overrides or {}), "monitoring": monitoring},
                            serving=platform)

        def program() -> None:
            key = aws.kms.Key("data-key")
            node_group = aws.eks.NodeGroup(
                "gpu-nodes", cluster_name=CLUSTER, node_role_arn="arn:aws:iam::1:role/nodes",
                subnet_ids=["subnet-a"],
                scaling_config={"min_size": 0, "max_size": 2, "desired_size": 0})
            monitoring = Monitoring("monitoring", _args(config, key.arn,
                                                        node_groups=[node_group], **changes))
            pulumi.export("monitoring", {name: getattr(monitoring, name) for name in OUTPUTS})

        return run_mocked(program, stack=environment)

    return build


def _one(graph: ResourceGraph, type_: str) -> GraphResource:
    (resource,) = graph.of_type(type_)
    return resource


def _alarms(graph: ResourceGraph) -> dict[str, dict]:
    return {a.inputs["name"]: a.inputs
            for a in graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}


def _no_wildcard_pairs(policy: str) -> None:
    for statement in json.loads(policy)["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else \
            statement["Action"]
        assert not ("*" in actions and statement["Resource"] == "*")
        assert not any(a == "*" or a.endswith(":*") for a in actions)


def test_component_shape_and_outputs(monitoring_graph):
    graph = monitoring_graph()
    component = _one(graph, "mlscaffold:stacks:Monitoring")
    children = [r for r in graph.resources if r.urn != component.urn
                and r.name not in ("data-key", "gpu-nodes")]
    assert children and all(r.parent == component.urn for r in children)
    outputs = graph.outputs["monitoring"]
    assert outputs["alert_topic_arn"] == "arn:aws:sns:us-east-1:123456789012:demo-dev-alerts"
    assert outputs["dashboard_name"] == "demo-dev-ml-platform"
    assert sorted(outputs["alarm_names"]) == sorted(_alarms(graph))


def test_alert_topic_is_encrypted_and_tls_only(monitoring_graph):
    graph = monitoring_graph()
    topic = _one(graph, "aws:sns/topic:Topic").inputs
    assert topic["kmsMasterKeyId"].startswith("arn:aws:kms:")
    statements = {s["Sid"]: s for s in json.loads(
        _one(graph, "aws:sns/topicPolicy:TopicPolicy").inputs["policy"])["Statement"]}
    assert statements["CloudWatchAlarms"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statements["CloudWatchAlarms"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert statements["DenyInsecureTransport"]["Effect"] == "Deny"
    subscriptions = graph.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == sorted(EMAILS)
    assert {s.inputs["protocol"] for s in subscriptions} == {"email"}


def _without_wiring(alarm: dict[str, Any]) -> dict[str, Any]:
    """An alarm's inputs but its tags and notification targets (asserted on their own)."""
    assert alarm["alarmActions"] == alarm["okActions"] == [alarm["alarmActions"][0]]
    assert alarm["tags"]["project"] == "demo"
    return {k: v for k, v in alarm.items() if k not in ("tags", "alarmActions", "okActions")}


ENDPOINT = {"EndpointName": "demo-prod", "VariantName": "primary"}


def _sum(metric_id: str, name: str) -> dict[str, Any]:
    return {"id": metric_id, "returnData": False, "metric": {
        "namespace": "AWS/SageMaker", "metricName": name, "period": 300, "stat": "Sum",
        "dimensions": ENDPOINT}}


@pytest.mark.parametrize(("instance_type", "threshold", "basis"), [
    ("ml.g5.12xlarge", 80 * 48, "all vCPUs"),  # g5.12xlarge's 48 vCPUs
    ("ml.inf2.xlarge", 80, "one vCPU (ml.inf2.xlarge's vCPUs are not in mlscaffold's instance "
                           "table)"),
])
def test_the_cpu_alarm_of_a_type_the_table_does_not_list(monitoring_graph, instance_type,
                                                         threshold, basis):
    """A SageMaker type the config accepts by its family: vCPUs from its EC2 counterpart, or,
    unknown, one (the alarm fires early rather than never)."""
    graph = monitoring_graph(environment="prod",
                             overrides={"serving": {"instance_type": instance_type}})
    alarm = _alarms(graph)["demo-prod-endpoint-cpu"]
    assert alarm["threshold"] == threshold
    assert alarm["alarmDescription"].startswith(f"CPU above 80% of {basis}, or no CPU metrics")


def test_endpoint_alarms(monitoring_graph):
    """Every input of each endpoint alarm of a prod stack (ml.m5.xlarge: 4 vCPUs)."""
    graph = monitoring_graph(environment="prod")
    alarms = {name: _without_wiring(alarm) for name, alarm in _alarms(graph).items()}
    topic = "arn:aws:sns:us-east-1:123456789012:demo-prod-alerts"
    assert {a["alarmActions"][0] for a in _alarms(graph).values()} == {topic}
    assert set(alarms) == {"demo-prod-endpoint-5xx-rate", "demo-prod-endpoint-latency-p99",
                           "demo-prod-endpoint-cpu", "demo-prod-endpoint-invocations-low",
                           "demo-prod-cluster-gpu-utilization", "demo-prod-cluster-node-cpu"}
    assert alarms["demo-prod-endpoint-5xx-rate"] == {
        "name": "demo-prod-endpoint-5xx-rate",
        "alarmDescription": "more than 5% of invocations fail (5xx)",
        "metricQueries": [
            _sum("errors", "Invocation5XXErrors"), _sum("invocations", "Invocations"),
            {"id": "rate", "label": "5xx rate (%)", "returnData": True,
             "expression": "IF(invocations > 0, 100 * errors / invocations, 0)"}],
        "comparisonOperator": "GreaterThanThreshold", "threshold": 5,
        "evaluationPeriods": 3, "datapointsToAlarm": 2,
        "treatMissingData": "notBreaching"}  # no invocations: nothing failed
    assert alarms["demo-prod-endpoint-latency-p99"] == {
        "name": "demo-prod-endpoint-latency-p99",
        "alarmDescription": "p99 model latency above 500 ms",
        "namespace": "AWS/SageMaker", "metricName": "ModelLatency", "dimensions": ENDPOINT,
        "extendedStatistic": "p99", "period": 300, "evaluationPeriods": 3,
        "datapointsToAlarm": 2, "comparisonOperator": "GreaterThanThreshold",
        "threshold": 500_000,  # microseconds
        "treatMissingData": "notBreaching"}  # no invocations: no latency
    assert alarms["demo-prod-endpoint-cpu"] == {
        "name": "demo-prod-endpoint-cpu",
        "alarmDescription": "CPU above 80% of all vCPUs, or no CPU metrics for 15 minutes (the "
                            "endpoint's instances are gone or failing: check the endpoint's "
                            "status and its CloudWatch logs)",
        "namespace": "/aws/sagemaker/Endpoints", "metricName": "CPUUtilization",
        "dimensions": ENDPOINT, "statistic": "Average", "period": 300,
        "evaluationPeriods": 3, "comparisonOperator": "GreaterThanThreshold",
        "threshold": 80 * 4,
        "treatMissingData": "breaching"}  # running instances always report their CPU
    assert alarms["demo-prod-endpoint-invocations-low"] == {
        "name": "demo-prod-endpoint-invocations-low",
        "alarmDescription": (
            "fewer than 1 invocations in the last hour (no data counts as none): check that "
            "the clients still call the endpoint demo-prod (their errors, network path and "
            "sagemaker:InvokeEndpoint permission) and the endpoint's last deployment; if the "
            "quiet hour is normal, lower monitoring.min_invocations_per_hour or set it to 0"),
        "namespace": "AWS/SageMaker", "metricName": "Invocations", "dimensions": ENDPOINT,
        "statistic": "Sum", "period": 3600, "evaluationPeriods": 1,
        "comparisonOperator": "LessThanThreshold", "threshold": 1,
        "treatMissingData": "breaching"}  # no data: no traffic, what it alarms on

    body = json.loads(_one(graph, "aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    metrics = {m[1] for w in body["widgets"] if w["type"] == "metric"
               for m in w["properties"]["metrics"]}
    assert {"Invocations", "Invocation5XXErrors", "ModelLatency", "CPUUtilization"} <= metrics
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == 6


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_idle_endpoints_outside_prod_have_no_invocation_alarm(monitoring_graph, config_for,
                                                              environment):
    """A dev or staging endpoint gets no traffic most hours: no alarm pages for it."""
    assert config_for(environment).monitoring.min_invocations_per_hour == 0
    alarms = _alarms(monitoring_graph(environment=environment))
    assert f"demo-{environment}-endpoint-invocations-low" not in alarms
    assert f"demo-{environment}-endpoint-cpu" in alarms
    # asked for in the stack's config, a dev stack gets it
    alarms = _alarms(monitoring_graph(environment=environment, overrides={"monitoring": {
        "min_invocations_per_hour": 10}}))
    assert alarms[f"demo-{environment}-endpoint-invocations-low"]["threshold"] == 10


def test_no_invocation_alarm_without_a_minimum(monitoring_graph):
    alarms = _alarms(monitoring_graph(environment="prod", overrides={"monitoring": {
        "min_invocations_per_hour": 0}}))
    assert "demo-prod-endpoint-invocations-low" not in alarms
    assert "demo-prod-endpoint-cpu" in alarms


def test_missing_data_follows_the_one_table(monitoring_graph):
    """Each alarm's TreatMissingData is its row of stacks/alarms.py."""
    from mlscaffold.stacks.alarms import MISSING_DATA

    alarms = _alarms(monitoring_graph(environment="prod"))
    for name, alarm in alarms.items():
        assert alarm["treatMissingData"] == MISSING_DATA[name.removeprefix("demo-prod-")].treat


def test_drift_schedule_is_isolated_and_encrypted(monitoring_graph, config_for):
    graph = monitoring_graph()
    job = _one(graph, "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition")
    inputs = job.inputs
    assert inputs["dataQualityAppSpecification"]["imageUri"] == (
        "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer")
    baseline = inputs["dataQualityBaselineConfig"]
    assert baseline["statisticsResource"]["s3Uri"] == (
        "s3://demo-dev-artifacts/monitoring/baseline/statistics.json")
    assert baseline["constraintsResource"]["s3Uri"] == (
        "s3://demo-dev-artifacts/monitoring/baseline/constraints.json")
    assert inputs["dataQualityJobInput"]["endpointInput"]["endpointName"] == "demo-dev"
    assert inputs["dataQualityJobOutputConfig"]["kmsKeyId"].startswith("arn:aws:kms:")
    assert inputs["jobResources"]["clusterConfig"]["volumeKmsKeyId"].startswith("arn:aws:kms:")
    network = inputs["networkConfig"]
    assert network["enableNetworkIsolation"] is True
    assert network["enableInterContainerTrafficEncryption"] is True
    assert network["vpcConfig"] == {"subnets": ["subnet-a"], "securityGroupIds": ["sg-serving"]}

    schedule = _one(graph, "aws:sagemaker/monitoringSchedule:MonitoringSchedule")
    config = schedule.inputs["monitoringScheduleConfig"]
    assert config["monitoringType"] == "DataQuality"
    assert config["monitoringJobDefinitionName"] == "monitoring-data-quality"
    assert config["scheduleConfig"]["scheduleExpression"] == config_for(
        "dev").monitoring.drift_schedule
    assert job.urn in schedule.dependencies

    (trust,) = json.loads(_named(graph, "monitoring-monitor-role").inputs["assumeRolePolicy"])[
        "Statement"]
    assert trust == SAGEMAKER_TRUST
    policy = _named(graph, "monitoring-monitor-policy")
    _no_wildcard_pairs(policy.inputs["policy"])
    assert_network_interfaces_in_vpc(policy.inputs["policy"], "vpc-1")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements["WriteReports"]["Resource"] == (
        "arn:aws:s3:::demo-dev-artifacts/monitoring/reports/*")
    assert "arn:aws:s3:::demo-dev-capture/data-capture/*" in statements[
        "ReadCapturedDataAndBaseline"]["Resource"]


def _named(graph: ResourceGraph, name: str) -> GraphResource:
    (resource,) = [r for r in graph.resources if r.name == name]
    return resource


def test_baseline_job_role_reads_its_data_and_writes_its_results_only(monitoring_graph):
    graph = monitoring_graph()
    role = _named(graph, "monitoring-baseline-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [SAGEMAKER_TRUST]
    policy = _named(graph, "monitoring-baseline-policy")
    _no_wildcard_pairs(policy.inputs["policy"])
    assert_network_interfaces_in_vpc(policy.inputs["policy"], "vpc-1")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    bucket = "arn:aws:s3:::demo-dev-artifacts"
    assert statements["ReadBaselineData"]["Resource"] == f"{bucket}/{BASELINE_DATA_PREFIX}/*"
    assert statements["WriteResults"] == {
        "Sid": "WriteResults", "Effect": "Allow", "Action": "s3:PutObject",
        "Resource": f"{bucket}/{BASELINE_RUNS_PREFIX}/*"}
    s3_actions = {a for s in statements.values() for a in
                  ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
                  if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}

    # everything the project's baseline command needs, in one stack output
    target = graph.outputs["monitoring"]["drift_baseline"]
    assert target == {
        "region": "us-east-1", "bucket": "demo-dev-artifacts",
        "role_arn": "arn:aws:iam::123456789012:role/monitoring-baseline-role",
        "image_uri": model_monitor_image_uri("us-east-1"),
        "kms_key_arn": target["kms_key_arn"], "subnet_ids": ["subnet-a"],
        "security_group_ids": ["sg-serving"], "instance_type": "ml.m5.xlarge",
        "data_prefix": BASELINE_DATA_PREFIX, "runs_prefix": BASELINE_RUNS_PREFIX,
        "baseline_prefix": "monitoring/baseline"}
    assert target["kms_key_arn"].startswith("arn:aws:kms:")


def test_no_drift_schedule_without_captured_data(monitoring_graph):
    graph = monitoring_graph(overrides={"serving": {"data_capture_percent": 0}})
    assert not graph.of_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule")
    assert graph.outputs["monitoring"]["drift_baseline"] is None


def test_model_monitor_image_per_region():
    assert model_monitor_image_uri("eu-west-1").startswith("468650794304.dkr.ecr.eu-west-1.")
    with pytest.raises(ValueError, match=r"'xx-east-9' is not an AWS region mlscaffold knows"):
        model_monitor_image_uri("xx-east-9")


def test_kserve_gets_the_alertmanager_role_and_no_cloudwatch_agent(monitoring_graph):
    graph = monitoring_graph("kserve")
    assert not graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert graph.outputs["monitoring"]["alarm_names"] == []
    # the cluster's GPUs are watched by Prometheus: no CloudWatch agent besides it
    assert not graph.of_type(ADDON)
    assert not graph.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert not [r for r in graph.resources if r.type.startswith("kubernetes:")]
    (role,) = graph.of_type("aws:iam/role:Role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"]["StringEquals"]["mock:sub"] == (
        "system:serviceaccount:monitoring:alertmanager")
    (policy,) = graph.of_type("aws:iam/rolePolicy:RolePolicy")
    _no_wildcard_pairs(policy.inputs["policy"])
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements["Publish"] == {"Sid": "Publish", "Effect": "Allow",
                                     "Action": "sns:Publish", "Resource": TOPIC_ARN}


def test_no_node_alarms_without_a_cluster(monitoring_graph, config_for, run_mocked):
    config = config_for("dev")

    def program() -> None:
        Monitoring("monitoring", _args(config, cluster_name=None))

    graph = run_mocked(program)
    assert not graph.of_type(ADDON)
    assert set(_alarms(graph)) == {f"demo-dev-endpoint-{name}" for name in (
        "5xx-rate", "latency-p99", "cpu")}


def test_missing_inputs_are_refused(config_for):
    with pytest.raises(ValueError, match="needs endpoint_name, vpc_id, security_group_ids"):
        Monitoring("monitoring", _args(config_for("dev"), endpoint_name=None, vpc_id=None,
                                       security_group_ids=None))
    with pytest.raises(ValueError, match="is not an AWS region mlscaffold knows"):
        Monitoring("monitoring", _args(config_for("dev"), region="xx-east-9"))
    with pytest.raises(ValueError, match="needs irsa_trust_policy"):
        Monitoring("monitoring", _args(config_for("dev", serving="kserve"),
                                       irsa_trust_policy=None))
    with pytest.raises(ValueError, match=r"serving 'none'\) needs irsa_trust_policy "):
        Monitoring("monitoring", _args(config_for("dev", serving="none"),
                                       irsa_trust_policy=None))
    # KServe does not install the add-on: no cluster name needed
    Monitoring("monitoring", _args(config_for("dev", serving="kserve"), cluster_name=None))


def _tolerates(toleration: dict[str, str], taint: dict[str, str]) -> bool:
    """Kubernetes' matching of a toleration against a taint (EKS API taint form)."""
    effect = TAINT_EFFECTS[taint["effect"]]
    if toleration.get("effect") not in (None, "", effect):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return toleration.get("key") in (None, "", taint["key"])
    return toleration.get("key") == taint["key"] and toleration.get("value") == taint["value"]


@pytest.mark.parametrize("platform", ["sagemaker", "none"])
def test_cloudwatch_observability_addon(monitoring_graph, config_for, platform):
    graph = monitoring_graph(platform)
    addon = _one(graph, ADDON)
    inputs = addon.inputs
    assert inputs["addonName"] == CLOUDWATCH_OBSERVABILITY_ADDON == (
        "amazon-cloudwatch-observability")
    assert inputs["clusterName"] == CLUSTER
    # pinned: its metrics (read by the node alarms) change only with this table
    assert inputs["addonVersion"] == CLOUDWATCH_OBSERVABILITY_VERSIONS["1.34"] == (
        "v6.4.0-eksbuild.1")
    assert (inputs["resolveConflictsOnCreate"], inputs["resolveConflictsOnUpdate"]) == (
        "OVERWRITE", "OVERWRITE")

    # IRSA: the agent's service account assumes a role with the managed agent policy
    role = graph.named("monitoring-cloudwatch-agent-role")
    assert inputs["serviceAccountRoleArn"] == (
        "arn:aws:iam::123456789012:role/monitoring-cloudwatch-agent-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"]["StringEquals"]["mock:sub"] == (
        "system:serviceaccount:amazon-cloudwatch:cloudwatch-agent")
    (attachment,) = graph.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy")
    assert role.urn in attachment.dependencies

    # only metrics, and the agent and its DCGM exporter tolerate the GPU nodes' taint
    values = json.loads(inputs["configurationValues"])
    assert values["containerLogs"] == {"enabled": False}
    assert any(_tolerates(t, GPU_TAINT) for t in values["tolerations"])

    # the performance log group exists first: encrypted, bounded retention
    log_group = _one(graph, "aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["name"] == f"/aws/containerinsights/{CLUSTER}/performance"
    assert log_group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    assert log_group.inputs["retentionInDays"] == config_for("dev").monitoring.log_retention_days
    # pods need nodes: the add-on waits for the node groups, its policy and its log group
    assert {graph.named("gpu-nodes").urn, attachment.urn, log_group.urn} <= set(
        addon.dependencies)


@pytest.mark.parametrize("platform", ["sagemaker", "none"])
def test_cluster_node_alarms(monitoring_graph, config_for, platform):
    graph = monitoring_graph(platform)
    monitoring = config_for("dev").monitoring
    alarms = _alarms(graph)
    others = {name for name in alarms if name.startswith("demo-dev-endpoint-")}
    assert set(alarms) == CLUSTER_ALARMS | others
    assert bool(others) == (platform == "sagemaker")  # "none" has only the cluster alarms
    assert sorted(graph.outputs["monitoring"]["alarm_names"]) == sorted(alarms)

    gpu = alarms["demo-dev-cluster-gpu-utilization"]
    cpu = alarms["demo-dev-cluster-node-cpu"]
    assert (gpu["namespace"], gpu["metricName"]) == ("ContainerInsights", "node_gpu_utilization")
    assert (cpu["namespace"], cpu["metricName"]) == ("ContainerInsights", "node_cpu_utilization")
    assert gpu["threshold"] == monitoring.gpu_utilization_percent
    assert cpu["threshold"] == 80
    assert "raise max_gpus of a GPU pool" in gpu["alarmDescription"]
    for alarm in (gpu, cpu):
        assert alarm["dimensions"] == {"ClusterName": CLUSTER}
        assert alarm["statistic"] == "Average"
        assert alarm["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm["period"] * alarm["evaluationPeriods"] == 15 * 60
        assert alarm["alarmActions"] == alarm["okActions"] == [TOPIC_ARN]
    assert gpu["treatMissingData"] == "notBreaching"  # GPU pools scale to zero
    assert cpu["treatMissingData"] == "breaching"  # the system nodes always report
    assert cpu["alarmDescription"].endswith(
        "; or no CPU metrics for 15 minutes: check the amazon-cloudwatch-observability "
        "add-on's pods (kubectl -n amazon-cloudwatch get pods) and the nodes")

    body = json.loads(_one(graph, "aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    (widget,) = [w for w in body["widgets"]
                 if w["properties"].get("title") == "GPU nodes: GPU and CPU (%)"]
    assert widget["properties"]["metrics"] == [
        ["ContainerInsights", "node_gpu_utilization", "ClusterName", CLUSTER],
        ["ContainerInsights", "node_cpu_utilization", "ClusterName", CLUSTER]]
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == len(alarms)


def test_node_cpu_alarm_without_always_on_nodes(monitoring_graph):
    """A system node group that may scale to zero: no CPU data is then idle, not broken."""
    cpu = _alarms(monitoring_graph("none", always_on_nodes=False))["demo-dev-cluster-node-cpu"]
    assert cpu["treatMissingData"] == "notBreaching"
    assert "no CPU metrics" not in cpu["alarmDescription"]


def test_addon_version_for_every_supported_kubernetes_version():
    assert set(CLOUDWATCH_OBSERVABILITY_VERSIONS) == set(SUPPORTED_KUBERNETES_VERSIONS)
    for version in CLOUDWATCH_OBSERVABILITY_VERSIONS.values():
        assert re.fullmatch(r"v\d+\.\d+\.\d+-eksbuild\.\d+", version)


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
def test_addon_version_follows_the_cluster(monitoring_graph, version):
    addon = _one(monitoring_graph("none", kubernetes_version=version), ADDON)
    assert addon.inputs["addonVersion"] == CLOUDWATCH_OBSERVABILITY_VERSIONS[version]


def test_unpinned_kubernetes_version_is_refused(config_for):
    with pytest.raises(ValueError, match=r"no amazon-cloudwatch-observability add-on version "
                                         r"is pinned for Kubernetes '1\.99'; add one to "
                                         r"KUBERNETES_VERSIONS \(stacks/config\.py\)"):
        Monitoring("monitoring", _args(config_for("dev"), kubernetes_version="1.99"))


def test_the_missing_data_table_of_the_docs_is_the_code_s():
    """docs/deploy.md explains each alarm's TreatMissingData: the same alarms, the same
    treatment as stacks/alarms.py."""
    from mlscaffold.stacks.alarms import MISSING_DATA

    from ..conftest import REPO

    text = (REPO / "docs" / "deploy.md").read_text()
    section = text[text.index("## Monitoring"):]
    rows = [line.split("|")[1:-1] for line in section.splitlines()
            if line.startswith("| `") and line.count("|") == 5]
    documented = {cells[0].strip().strip("`"): cells[3].strip().split()[0].strip("`")
                  for cells in rows}
    assert documented == {name: entry.treat for name, entry in MISSING_DATA.items()}


def test_an_ab_test_puts_each_variants_metrics_on_the_dashboard(monitoring_graph):
    key = f"models/{'cd' * 32}/model.tar.gz"
    graph = monitoring_graph(environment="prod", overrides={"serving": {"ab_test": {
        "challenger_model_key": key}}})
    body = json.loads(_one(graph, "aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    widgets = {w["properties"]["title"]: w["properties"]["metrics"] for w in body["widgets"]
               if w["type"] == "metric"}
    latency = widgets["Model latency p99 (microseconds)"]
    assert [(m[1], m[5], m[6]) for m in latency] == [
        ("ModelLatency", "primary", {"label": "ModelLatency (primary)"}),
        ("ModelLatency", "challenger", {"label": "ModelLatency (challenger)"})]
    assert [(m[1], m[5]) for m in widgets["Invocations"]] == [
        (metric, variant) for variant in ("primary", "challenger")
        for metric in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors")]
    assert all(m[2:4] == ["EndpointName", "demo-prod"] for title in (
        "Invocations", "Model latency p99 (microseconds)", "Instances: CPU and memory (%)")
        for m in widgets[title])
    # one variant: the lines as before, unlabelled
    single = json.loads(_one(monitoring_graph(environment="prod"),
                             "aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    (line,) = next(w["properties"]["metrics"] for w in single["widgets"]
                   if w["properties"].get("title") == "Model latency p99 (microseconds)")
    assert line == ["AWS/SageMaker", "ModelLatency", "EndpointName", "demo-prod",
                    "VariantName", "primary"]
