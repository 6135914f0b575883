"""Monitoring: an encrypted alert topic, CloudWatch alarms and dashboard, SageMaker Model Monitor
for data drift (SageMaker serving), and what the cluster's own monitoring needs from AWS.

GPU alerting for KServe is done in the cluster: dcgm-exporter's metrics are scraped by the
kube-prometheus-stack Prometheus that the in-cluster program installs (:mod:`.workloads`); a rule
fires on ``DCGM_FI_DEV_GPU_UTIL`` above ``config.gpu_utilization_percent`` for 15 minutes, and
Alertmanager publishes to this component's SNS topic with the IRSA role made here. KServe stacks
already run that Prometheus, so they do not also get the CloudWatch Observability add-on: two
agents would scrape the same GPUs twice.

A stack whose cluster serves nothing (``cluster.enabled`` with SageMaker serving, for training on
its GPU pools) has no Prometheus. There the AWS-native path is used: the EKS add-on
``amazon-cloudwatch-observability`` at a version pinned per Kubernetes version
(:data:`CLOUDWATCH_OBSERVABILITY_VERSIONS`; CloudWatch agent with its own DCGM exporter, IRSA
role with ``CloudWatchAgentServerPolicy``; Fluent Bit container logs off, only metrics)
publishes Container Insights metrics, and CloudWatch alarms on ``node_gpu_utilization`` and
``node_cpu_utilization`` (namespace ``ContainerInsights``, dimension ``ClusterName``) notify
the alert topic. The log group the agent writes those metrics to as performance events is
created here first, KMS-encrypted and with bounded retention. A stack without a cluster has no
node alarms. How each alarm treats missing data is the table of :mod:`.alarms`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import child_options, fitted, policy_document, resource_tags, token
from ._iam import sagemaker_trust_policy, vpc_network_interface_statements
from .alarms import MISSING_DATA
from .config import (
    CLOUDWATCH_OBSERVABILITY_ADDON,
    GPU_TOLERATION,
    KUBERNETES_VERSIONS,
    UNPINNED_KUBERNETES_VERSION,
    MonitoringConfig,
    ServingConfig,
)
from .instances import instance_info
from .regions import model_monitor_image_uri
from .serving import CHALLENGER_VARIANT, DATA_CAPTURE_PREFIX, VARIANT_NAME

__all__ = [
    "ALERTMANAGER_SERVICE_ACCOUNT",
    "CLOUDWATCH_AGENT_SERVICE_ACCOUNT",
    "CLOUDWATCH_NAMESPACE",
    "CLOUDWATCH_OBSERVABILITY_ADDON",
    "CLOUDWATCH_OBSERVABILITY_VERSIONS",
    "MONITORING_NAMESPACE",
    "NODE_CPU_ALARM_PERCENT",
    "Monitoring",
    "MonitoringArgs",
    "alert_topic_name",
    "model_monitor_image_uri",
]

MONITORING_NAMESPACE = "monitoring"
ALERTMANAGER_SERVICE_ACCOUNT = "alertmanager"

# EKS add-on of the CloudWatch agent (Container Insights with enhanced observability, NVIDIA GPU
# metrics through its own DCGM exporter). Its agent runs as this service account in this
# namespace (AWS docs: "Install the CloudWatch agent with the Amazon CloudWatch Observability EKS
# add-on", IRSA option; helm chart aws-observability/amazon-cloudwatch-observability).
CLOUDWATCH_NAMESPACE = "amazon-cloudwatch"
CLOUDWATCH_AGENT_SERVICE_ACCOUNT = "cloudwatch-agent"
CLOUDWATCH_AGENT_POLICY = "CloudWatchAgentServerPolicy"
CONTAINER_INSIGHTS_NAMESPACE = "ContainerInsights"
# The add-on's version per Kubernetes version of the cluster (the Kubernetes version table's
# cloudwatch_observability), pinned so that what it collects (the node_* metrics the node
# alarms read) changes only when that table does. Its OTel Container Insights pipeline, whose
# metrics have other names, is off by default since v6.2.0 (the chart's RELEASE_NOTES; on by
# default in v6.0.0-v6.1.0), so the classic Container Insights metrics stay. Before changing a
# version, check it with `aws eks describe-addon-versions --addon-name
# amazon-cloudwatch-observability --kubernetes-version <v>` for every supported version.
CLOUDWATCH_OBSERVABILITY_VERSIONS: dict[str, str] = {
    version: facts.cloudwatch_observability for version, facts in KUBERNETES_VERSIONS.items()}
# node_cpu_utilization counts all of a node's CPUs as 100%
NODE_CPU_ALARM_PERCENT = 80
# Only metrics: Fluent Bit's container logs are off. Tolerations replace the add-on's default
# (``operator: Exists``, every taint; it already covers the GPU taint) with the GPU taint, the
# only one the cluster's nodes carry, so the agent and its DCGM exporter run on the GPU nodes.
ADDON_CONFIGURATION: dict[str, Any] = {
    "containerLogs": {"enabled": False},
    "tolerations": [dict(GPU_TOLERATION)],
}

BASELINE_PREFIX = "monitoring/baseline"  # what the schedule compares with
BASELINE_DATA_PREFIX = "monitoring/baseline-data"  # training data a baseline job analyzes
BASELINE_RUNS_PREFIX = "monitoring/baseline-runs"  # results of each job, before publication
REPORTS_PREFIX = "monitoring/reports"
# CPUUtilization of an endpoint instance counts every vCPU as 100%
CPU_ALARM_PERCENT_PER_VCPU = 80


def alert_topic_name(prefix: str) -> str:
    """Name of the platform's alert topic (the data key's policy names it too)."""
    return f"{prefix}-alerts"


@dataclass
class MonitoringArgs:
    """Inputs of :class:`Monitoring`. SageMaker serving uses the endpoint, bucket and VPC
    fields; KServe serving the Kubernetes ones; every platform but KServe the cluster ones
    (GPU and CPU alarms of the cluster's nodes through the CloudWatch Observability add-on)."""

    config: MonitoringConfig
    """Thresholds, retention, drift schedule, alert e-mails."""
    serving: ServingConfig
    """Which platform serves, and on which instance type."""
    prefix: str
    """Resource-name prefix, ``<project>-<env>``."""
    tags: Mapping[str, str]
    """The platform's tags."""
    kms_key_arn: pulumi.Input[str]
    """Platform data key: the topic, drift reports and job volumes (its policy must let
    CloudWatch and SNS use it)."""
    region: str
    """AWS region: the Model Monitor image and the dashboard."""
    # SageMaker
    endpoint_name: pulumi.Input[str] | None = None
    """The endpoint to watch (``Serving.endpoint_name``)."""
    artifact_bucket_name: pulumi.Input[str] | None = None
    """Bucket with the drift baseline (``monitoring/baseline/``) and reports."""
    capture_bucket_name: pulumi.Input[str] | None = None
    """Bucket with the endpoint's captured data (``data-capture/``)."""
    private_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Subnets of the drift jobs."""
    vpc_id: pulumi.Input[str] | None = None
    """VPC of those subnets: the jobs' roles may manage network interfaces in it only."""
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Security groups of the drift jobs (HTTPS to S3 and the VPC endpoints)."""
    drift_instance_type: str = "ml.m5.xlarge"
    """Instance type of the drift jobs."""
    # the EKS cluster, when the stack has one
    cluster_name: pulumi.Input[str] | None = None
    """Name of the EKS cluster (``GpuCluster.cluster_name``): with serving other than KServe the
    CloudWatch Observability add-on goes there and the node alarms watch it; None: no cluster."""
    node_groups: Sequence[pulumi.Resource] = ()
    """The cluster's node groups (the system one; Karpenter launches GPU nodes later): the
    add-on waits for them, its pods need nodes to run on."""
    kubernetes_version: str = UNPINNED_KUBERNETES_VERSION
    """The cluster's Kubernetes version: which add-on version is installed."""
    always_on_nodes: bool = True
    """The cluster always runs a node (its system node group's min_size is at least 1): no
    node CPU metrics then means the nodes or the agent are broken, and the alarm fires."""
    irsa_trust_policy: Callable[[str, str], pulumi.Input[str]] | None = None
    """(namespace, service account) -> IRSA trust policy: Alertmanager (KServe) publishes with
    it, the CloudWatch agent (other platforms) sends metrics with it."""


class Monitoring(pulumi.ComponentResource):
    """Alerts to an encrypted SNS topic (e-mail subscriptions) and a dashboard.

    SageMaker serving: alarms on the endpoint's 5xx rate, p99 model latency, invocation drop
    and CPU, and (when data is captured) a Model Monitor data-quality schedule comparing
    captured requests with the baseline (network-isolated, in the VPC, KMS-encrypted). The
    baseline (``statistics.json``, ``constraints.json`` under ``monitoring/baseline/``) is made
    by the project's ``baseline`` command with a processing job under its own role, both
    described by :attr:`drift_baseline`; scheduled runs fail until it exists.
    KServe serving: kube-prometheus-stack and dcgm-exporter, GPU alerts through Alertmanager.
    Other platforms (SageMaker, none) with a cluster: the CloudWatch Observability add-on on
    the cluster and alarms on the nodes' GPU and CPU utilisation.
    """

    alert_topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]
    drift_baseline: pulumi.Output[dict[str, Any]] | None
    alertmanager_role_arn: pulumi.Output[str] | None
    """The IRSA role the cluster's Alertmanager publishes to the topic with (KServe)."""
    """Where and as whom the project's ``baseline`` command runs its Model Monitor job
    (SageMaker serving with data capture; else None)."""

    def __init__(self, name: str, args: MonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        _check_args(args)
        super().__init__(token("Monitoring"), name, None, opts)
        self._name, self._args = name, args
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        self._partition = aws.get_partition_output(opts=invoke).partition

        topic = self._alert_topic()
        self.drift_baseline = None
        alarms: list[aws.cloudwatch.MetricAlarm] = []
        widgets: list[dict[str, Any]] = []
        if args.serving.platform == "sagemaker":
            alarms = self._endpoint_alarms(topic)
            widgets = self._endpoint_widgets()
            if args.serving.data_capture_percent > 0:  # drift is measured on captured data
                self._drift_schedule()
        self.alertmanager_role_arn = None
        if args.serving.platform == "kserve":  # GPUs watched by its Prometheus
            self.alertmanager_role_arn = self._alertmanager_role(topic)
            widgets = [{"type": "text", "properties": {"markdown": (
                "KServe: model and GPU metrics are in the cluster's Grafana "
                f"(`kubectl -n {MONITORING_NAMESPACE} port-forward "
                "svc/kube-prometheus-stack-grafana 3000:80`); GPU alerts reach the alert "
                "topic through Alertmanager.")}}]
        elif args.cluster_name is not None:  # GPUs watched by CloudWatch Container Insights
            self._cloudwatch_observability()
            alarms += self._node_alarms(topic)
            widgets.append(self._node_widget())
        widgets.append(_widget("Alerts", [
            ["AWS/SNS", "NumberOfMessagesPublished", "TopicName", topic.name],
            ["AWS/SNS", "NumberOfNotificationsFailed", "TopicName", topic.name]],
            args.region, "Sum"))
        if alarms:
            widgets.append({"type": "alarm", "properties": {
                "title": "Alarms", "alarms": [alarm.arn for alarm in alarms]}})
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=f"{args.prefix}-ml-platform",
            dashboard_body=pulumi.Output.json_dumps({"widgets": _layout(widgets)}),
            opts=child_options(self))

        self.alert_topic_arn = topic.arn
        self.dashboard_name = dashboard.dashboard_name
        self.alarm_names = pulumi.Output.all(*[alarm.name for alarm in alarms])
        self.register_outputs({
            "alert_topic_arn": self.alert_topic_arn,
            "dashboard_name": self.dashboard_name,
            "alarm_names": self.alarm_names,
            "drift_baseline": self.drift_baseline,
            "alertmanager_role_arn": self.alertmanager_role_arn,
        })

    def _tags(self, resource: str) -> dict[str, str]:
        return resource_tags(self._args.tags, name=f"{self._name}-{resource}")

    def _arn(self, service: str, resource: str) -> pulumi.Output[str]:
        return pulumi.Output.format("arn:{0}:{1}:{2}:{3}:{4}", self._partition, service,
                                    self._args.region, self._account, resource)

    def _alert_topic(self) -> aws.sns.Topic:
        """KMS-encrypted topic that CloudWatch alarms of this account publish to over TLS."""
        name, args = self._name, self._args
        topic = aws.sns.Topic(
            f"{name}-alerts", name=alert_topic_name(args.prefix),
            kms_master_key_id=args.kms_key_arn,
            tags=self._tags("alerts"), opts=child_options(self))
        aws.sns.TopicPolicy(
            f"{name}-alerts-policy", arn=topic.arn, policy=policy_document([
                {"Sid": "AccountUsesTopic", "Effect": "Allow",
                 "Principal": {"AWS": pulumi.Output.format("arn:{0}:iam::{1}:root",
                                                           self._partition, self._account)},
                 "Action": ["sns:GetTopicAttributes", "sns:SetTopicAttributes",
                            "sns:Subscribe", "sns:ListSubscriptionsByTopic", "sns:Publish"],
                 "Resource": topic.arn},
                {"Sid": "CloudWatchAlarms", "Effect": "Allow",
                 "Principal": {"Service": "cloudwatch.amazonaws.com"},
                 "Action": "sns:Publish", "Resource": topic.arn,
                 "Condition": {"StringEquals": {"aws:SourceAccount": self._account}}},
                {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
                 "Action": "sns:Publish", "Resource": topic.arn,
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ]),
            opts=child_options(self))
        for index, email in enumerate(args.config.alert_emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{index}", topic=topic.arn, protocol="email", endpoint=email,
                opts=child_options(self))
        return topic

    # ------------------------------------------------------------------ SageMaker

    def _alarm(self, topic: aws.sns.Topic, resource: str, alarm_name: str, description: str,
               **settings: Any) -> aws.cloudwatch.MetricAlarm:
        """A CloudWatch alarm notifying the alert topic when it fires and when it clears."""
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{resource}", name=alarm_name, alarm_description=description,
            alarm_actions=[topic.arn], ok_actions=[topic.arn], tags=self._tags(resource),
            opts=child_options(self), **settings)

    def _endpoint_alarms(self, topic: aws.sns.Topic) -> list[aws.cloudwatch.MetricAlarm]:
        """5xx rate, p99 latency, invocation drop and CPU of the endpoint's variant."""
        args = self._args
        config = args.config
        dimensions = {"EndpointName": args.endpoint_name, "VariantName": VARIANT_NAME}
        prefix = f"{args.prefix}-endpoint"
        # CPUUtilization is the sum over the instance's vCPUs (up to 100% each); a type whose
        # vCPUs mlscaffold does not know is judged as having one, so the alarm fires early
        # rather than never
        info = instance_info(args.serving.instance_type)
        vcpus = info.vcpus if info else 1
        cpu_basis = "all vCPUs" if info else (
            f"one vCPU ({args.serving.instance_type}'s vCPUs are not in mlscaffold's instance "
            "table)")

        def alarm(resource: str, description: str, **settings: Any) -> aws.cloudwatch.MetricAlarm:
            return self._alarm(topic, resource, f"{prefix}-{resource}", description, **settings)

        def metric(metric_id: str, metric_name: str) -> dict[str, Any]:
            return {"id": metric_id, "return_data": False, "metric": {
                "namespace": "AWS/SageMaker", "metric_name": metric_name, "period": 300,
                "stat": "Sum", "dimensions": dimensions}}

        alarms = [
            alarm("5xx-rate", f"more than {config.error_rate_5xx}% of invocations fail (5xx)",
                  metric_queries=[
                      metric("errors", "Invocation5XXErrors"),
                      metric("invocations", "Invocations"),
                      {"id": "rate", "label": "5xx rate (%)", "return_data": True,
                       "expression": "IF(invocations > 0, 100 * errors / invocations, 0)"}],
                  comparison_operator="GreaterThanThreshold", threshold=config.error_rate_5xx,
                  evaluation_periods=3, datapoints_to_alarm=2,
                  treat_missing_data=MISSING_DATA["endpoint-5xx-rate"].treat),
            alarm("latency-p99", f"p99 model latency above {config.latency_p99_ms} ms",
                  namespace="AWS/SageMaker", metric_name="ModelLatency", dimensions=dimensions,
                  extended_statistic="p99", period=300, evaluation_periods=3,
                  datapoints_to_alarm=2, comparison_operator="GreaterThanThreshold",
                  threshold=config.latency_p99_ms * 1000,  # ModelLatency is in microseconds
                  treat_missing_data=MISSING_DATA["endpoint-latency-p99"].treat),
            alarm("cpu", f"CPU above {CPU_ALARM_PERCENT_PER_VCPU}% of {cpu_basis}, or no CPU "
                  "metrics for 15 minutes (the endpoint's instances are gone or failing: check "
                  "the endpoint's status and its CloudWatch logs)",
                  namespace="/aws/sagemaker/Endpoints", metric_name="CPUUtilization",
                  dimensions=dimensions, statistic="Average", period=300,
                  evaluation_periods=3, comparison_operator="GreaterThanThreshold",
                  threshold=CPU_ALARM_PERCENT_PER_VCPU * vcpus,
                  treat_missing_data=MISSING_DATA["endpoint-cpu"].treat),
        ]
        if config.min_invocations_per_hour > 0:  # 0 in the dev and staging profiles
            alarms.append(alarm(
                "invocations-low",
                f"fewer than {config.min_invocations_per_hour} invocations in the last hour "
                "(no data counts as none): check that the clients still call the endpoint "
                f"{args.prefix} (their errors, network path and sagemaker:InvokeEndpoint "
                "permission) and the endpoint's last deployment; if the quiet hour is normal, "
                "lower monitoring.min_invocations_per_hour or set it to 0",
                namespace="AWS/SageMaker", metric_name="Invocations", dimensions=dimensions,
                statistic="Sum", period=3600, evaluation_periods=1,
                comparison_operator="LessThanThreshold",
                threshold=config.min_invocations_per_hour,
                treat_missing_data=MISSING_DATA["endpoint-invocations-low"].treat))
        return alarms

    def _endpoint_widgets(self) -> list[dict[str, Any]]:
        """Invocations and errors, p99 latency, CPU and memory of the endpoint: one line per
        metric and variant (an A/B test's challenger beside the primary, each labelled)."""
        args = self._args
        variants = [VARIANT_NAME, *([CHALLENGER_VARIANT] if args.serving.ab_test else [])]

        def lines(namespace: str, *metrics: str) -> list[list[Any]]:
            return [[namespace, metric, "EndpointName", args.endpoint_name, "VariantName",
                     variant, *([{"label": f"{metric} ({variant})"}] if len(variants) > 1
                                else [])]
                    for variant in variants for metric in metrics]

        return [
            _widget("Invocations", lines("AWS/SageMaker", "Invocations", "Invocation4XXErrors",
                                         "Invocation5XXErrors"), args.region, "Sum"),
            _widget("Model latency p99 (microseconds)", lines("AWS/SageMaker", "ModelLatency"),
                    args.region, "p99", threshold=args.config.latency_p99_ms * 1000),
            _widget("Instances: CPU and memory (%)", lines(
                "/aws/sagemaker/Endpoints", "CPUUtilization", "MemoryUtilization"),
                args.region, "Average"),
        ]

    def _drift_schedule(self) -> None:
        """Model Monitor data-quality job on ``config.drift_schedule``: captured requests
        against the baseline statistics and constraints under ``monitoring/baseline/``."""
        name, args = self._name, self._args
        artifacts = pulumi.Output.format("arn:{0}:s3:::{1}", self._partition,
                                         args.artifact_bucket_name)
        capture = pulumi.Output.format("arn:{0}:s3:::{1}", self._partition,
                                       args.capture_bucket_name)
        baseline = pulumi.Output.format("s3://{0}/{1}", args.artifact_bucket_name,
                                        BASELINE_PREFIX)
        processing_logs = self._arn("logs", "log-group:/aws/sagemaker/ProcessingJobs")
        role = aws.iam.Role(
            f"{name}-monitor-role", name=fitted(aws.iam.Role, f"{name}-monitor-role"),
            assume_role_policy=sagemaker_trust_policy(self),
            description=f"Model Monitor of {args.prefix}: reads captured data, writes reports",
            tags=self._tags("monitor-role"), opts=child_options(self))
        policy = aws.iam.RolePolicy(
            f"{name}-monitor-policy", role=role.id, policy=policy_document([
                {"Sid": "ReadCapturedDataAndBaseline", "Effect": "Allow",
                 "Action": "s3:GetObject",
                 "Resource": [pulumi.Output.concat(capture, f"/{DATA_CAPTURE_PREFIX}/*"),
                              pulumi.Output.concat(artifacts, f"/{BASELINE_PREFIX}/*")]},
                {"Sid": "WriteReports", "Effect": "Allow", "Action": "s3:PutObject",
                 "Resource": pulumi.Output.concat(artifacts, f"/{REPORTS_PREFIX}/*")},
                {"Sid": "ListInputs", "Effect": "Allow", "Action": "s3:ListBucket",
                 "Resource": [capture, artifacts],
                 "Condition": {"StringLike": {"s3:prefix": [f"{DATA_CAPTURE_PREFIX}/*",
                                                            "monitoring/*"]}}},
                *self._processing_job_statements(processing_logs),
                {"Sid": "DriftMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
                 "Resource": "*", "Condition": {"StringEquals": {
                     "cloudwatch:namespace": "aws/sagemaker/Endpoints/data-metrics"}}},
            ]),
            opts=child_options(self))
        job = aws.sagemaker.DataQualityJobDefinition(
            f"{name}-data-quality",
            name=fitted(aws.sagemaker.DataQualityJobDefinition, f"{name}-data-quality"),
            role_arn=role.arn,
            data_quality_app_specification={"image_uri": model_monitor_image_uri(args.region)},
            data_quality_baseline_config={
                "constraints_resource": {"s3_uri": pulumi.Output.concat(
                    baseline, "/constraints.json")},
                "statistics_resource": {"s3_uri": pulumi.Output.concat(
                    baseline, "/statistics.json")}},
            data_quality_job_input={"endpoint_input": {
                "endpoint_name": args.endpoint_name,
                "local_path": "/opt/ml/processing/input/endpoint",
                "s3_data_distribution_type": "FullyReplicated", "s3_input_mode": "File"}},
            data_quality_job_output_config={
                "kms_key_id": args.kms_key_arn,
                "monitoring_outputs": {"s3_output": {
                    "s3_uri": pulumi.Output.format("s3://{0}/{1}", args.artifact_bucket_name,
                                                   REPORTS_PREFIX),
                    "local_path": "/opt/ml/processing/output", "s3_upload_mode": "EndOfJob"}}},
            job_resources={"cluster_config": {
                "instance_count": 1, "instance_type": args.drift_instance_type,
                "volume_size_in_gb": 20, "volume_kms_key_id": args.kms_key_arn}},
            network_config={
                "enable_network_isolation": True,
                "enable_inter_container_traffic_encryption": True,
                "vpc_config": {"subnets": args.private_subnet_ids,
                               "security_group_ids": args.security_group_ids}},
            stopping_condition={"max_runtime_in_seconds": 1800},
            tags=self._tags("data-quality"), opts=child_options(self, depends_on=[policy]))
        aws.sagemaker.MonitoringSchedule(
            f"{name}-drift-schedule",
            name=fitted(aws.sagemaker.MonitoringSchedule, f"{name}-drift-schedule"),
            monitoring_schedule_config={
                "monitoring_type": "DataQuality",
                "monitoring_job_definition_name": job.name,
                "schedule_config": {"schedule_expression": args.config.drift_schedule}},
            tags=self._tags("drift-schedule"), opts=child_options(self))
        self.drift_baseline = self._baseline_job(artifacts, processing_logs)

    def _processing_job_statements(self, processing_logs: pulumi.Output[str]) -> list[dict]:
        """What every Model Monitor processing job of the platform needs: the data key, its
        log group, and network interfaces in the VPC."""
        return [
            {"Sid": "Key", "Effect": "Allow",
             "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
             "Resource": self._args.kms_key_arn},
            {"Sid": "Logs", "Effect": "Allow",
             "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                        "logs:DescribeLogStreams"],
             "Resource": [processing_logs, pulumi.Output.concat(processing_logs, ":*")]},
            *vpc_network_interface_statements(self, self._args.vpc_id),
        ]

    def _baseline_job(self, artifacts: pulumi.Output[str],
                      processing_logs: pulumi.Output[str]) -> pulumi.Output[dict[str, Any]]:
        """The role of the project's baseline processing job (reads the data set it is given,
        writes its results, nothing else) and what the job needs to know, as one output."""
        name, args = self._name, self._args
        role = aws.iam.Role(
            f"{name}-baseline-role", name=fitted(aws.iam.Role, f"{name}-baseline-role"),
            assume_role_policy=sagemaker_trust_policy(self),
            description=f"Model Monitor baseline jobs of {args.prefix}: training data in, "
                        "statistics and constraints out",
            tags=self._tags("baseline-role"), opts=child_options(self))
        policy = aws.iam.RolePolicy(
            f"{name}-baseline-policy", role=role.id, policy=policy_document([
                {"Sid": "ReadBaselineData", "Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": pulumi.Output.concat(artifacts, f"/{BASELINE_DATA_PREFIX}/*")},
                {"Sid": "WriteResults", "Effect": "Allow", "Action": "s3:PutObject",
                 "Resource": pulumi.Output.concat(artifacts, f"/{BASELINE_RUNS_PREFIX}/*")},
                {"Sid": "ListBaselineData", "Effect": "Allow", "Action": "s3:ListBucket",
                 "Resource": artifacts, "Condition": {"StringLike": {
                     "s3:prefix": [f"{BASELINE_DATA_PREFIX}/*"]}}},
                *self._processing_job_statements(processing_logs),
            ]),
            opts=child_options(self))
        # read by `python -m <package> baseline` from `pulumi stack output --json`; the role
        # is given out only once its policy is attached, so a job started then may use it
        return pulumi.Output.from_input({
            "region": args.region,
            "bucket": args.artifact_bucket_name,
            "role_arn": pulumi.Output.all(role.arn, policy.id).apply(lambda ids: ids[0]),
            "image_uri": model_monitor_image_uri(args.region),
            "kms_key_arn": args.kms_key_arn,
            "subnet_ids": args.private_subnet_ids,
            "security_group_ids": args.security_group_ids,
            "instance_type": args.drift_instance_type,
            "data_prefix": BASELINE_DATA_PREFIX,
            "runs_prefix": BASELINE_RUNS_PREFIX,
            "baseline_prefix": BASELINE_PREFIX,
        })

    # ------------------------------------------------------------------ cluster nodes

    def _cloudwatch_observability(self) -> aws.eks.Addon:
        """The CloudWatch Observability add-on (IRSA role), after the log group it writes the
        Container Insights performance events to."""
        name, args = self._name, self._args
        role = aws.iam.Role(
            f"{name}-cloudwatch-agent-role",
            name=fitted(aws.iam.Role, f"{name}-cloudwatch-agent-role"),
            assume_role_policy=args.irsa_trust_policy(
                CLOUDWATCH_NAMESPACE, CLOUDWATCH_AGENT_SERVICE_ACCOUNT),
            description=f"CloudWatch agent of {args.prefix}: sends Container Insights metrics",
            tags=self._tags("cloudwatch-agent-role"), opts=child_options(self))
        # the managed policy the add-on documents: PutMetricData, log streams and events, EC2
        # and EBS describes; it grants no administration
        policy = aws.iam.RolePolicyAttachment(
            f"{name}-cloudwatch-agent-policy", role=role.name,
            policy_arn=pulumi.Output.format("arn:{0}:iam::aws:policy/{1}", self._partition,
                                            CLOUDWATCH_AGENT_POLICY),
            opts=child_options(self))
        # created before the agent runs, else it creates the group unencrypted and unexpiring
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-container-insights-logs",
            name=pulumi.Output.format("/aws/containerinsights/{0}/performance", args.cluster_name),
            retention_in_days=args.config.log_retention_days, kms_key_id=args.kms_key_arn,
            tags=self._tags("container-insights-logs"), opts=child_options(self))
        return aws.eks.Addon(
            f"{name}-cloudwatch-observability", cluster_name=args.cluster_name,
            addon_name=CLOUDWATCH_OBSERVABILITY_ADDON,
            addon_version=CLOUDWATCH_OBSERVABILITY_VERSIONS[args.kubernetes_version],
            service_account_role_arn=role.arn,
            configuration_values=json.dumps(ADDON_CONFIGURATION),
            # Pulumi's configuration is the truth: fields edited in the cluster are overwritten
            resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
            tags=self._tags("cloudwatch-observability"),
            opts=child_options(self, depends_on=[*args.node_groups, policy, log_group]))

    def _node_alarms(self, topic: aws.sns.Topic) -> list[aws.cloudwatch.MetricAlarm]:
        """GPU utilisation of the GPU nodes and CPU utilisation of all nodes, cluster-wide
        averages over 15 minutes. No GPU data (GPU pools scaled to zero) is not an alarm; no
        CPU data from a cluster that always runs nodes is (see :data:`.alarms.MISSING_DATA`)."""
        args = self._args
        gpu_percent = args.config.gpu_utilization_percent
        dimensions = {"ClusterName": args.cluster_name}
        common: dict[str, Any] = {
            "namespace": CONTAINER_INSIGHTS_NAMESPACE, "dimensions": dimensions,
            "statistic": "Average", "period": 300, "evaluation_periods": 3,
            "comparison_operator": "GreaterThanThreshold"}
        cpu_missing = (MISSING_DATA["cluster-node-cpu"].treat if args.always_on_nodes
                       else "notBreaching")
        cpu_description = (
            f"CPU utilisation of the cluster's nodes averaged above {NODE_CPU_ALARM_PERCENT}% "
            "for 15 minutes: check the training jobs' data loading (CPU-bound input pipelines "
            "starve the GPUs) or add nodes")
        if cpu_missing == "breaching":
            cpu_description += (
                f"; or no CPU metrics for 15 minutes: check the {CLOUDWATCH_OBSERVABILITY_ADDON}"
                f" add-on's pods (kubectl -n {CLOUDWATCH_NAMESPACE} get pods) and the nodes")
        return [
            self._alarm(
                topic, "cluster-gpu-utilization", f"{args.prefix}-cluster-gpu-utilization",
                f"GPU utilisation of the cluster's GPU nodes averaged above {gpu_percent}% for "
                "15 minutes: allow more GPUs (raise max_gpus of a GPU pool) or check the "
                "training jobs for stuck or runaway work",
                metric_name="node_gpu_utilization", threshold=gpu_percent,
                treat_missing_data=MISSING_DATA["cluster-gpu-utilization"].treat, **common),
            self._alarm(
                topic, "cluster-node-cpu", f"{args.prefix}-cluster-node-cpu", cpu_description,
                metric_name="node_cpu_utilization", threshold=NODE_CPU_ALARM_PERCENT,
                treat_missing_data=cpu_missing, **common),
        ]

    def _node_widget(self) -> dict[str, Any]:
        args = self._args
        return _widget("GPU nodes: GPU and CPU (%)", [
            [CONTAINER_INSIGHTS_NAMESPACE, "node_gpu_utilization", "ClusterName",
             args.cluster_name],
            [CONTAINER_INSIGHTS_NAMESPACE, "node_cpu_utilization", "ClusterName",
             args.cluster_name]], args.region, "Average",
            threshold=args.config.gpu_utilization_percent)

    # ------------------------------------------------------------------ KServe

    def _alertmanager_role(self, topic: aws.sns.Topic) -> pulumi.Output[str]:
        """The IRSA role of the cluster's Alertmanager: publish to the (encrypted) topic."""
        name, args = self._name, self._args
        role = aws.iam.Role(
            f"{name}-alertmanager-role", name=fitted(aws.iam.Role, f"{name}-alertmanager-role"),
            assume_role_policy=args.irsa_trust_policy(
                MONITORING_NAMESPACE, ALERTMANAGER_SERVICE_ACCOUNT),
            description=f"Alertmanager of {args.prefix}: publishes to the alert topic",
            tags=self._tags("alertmanager-role"), opts=child_options(self))
        policy = aws.iam.RolePolicy(
            f"{name}-alertmanager-policy", role=role.id, policy=policy_document([
                {"Sid": "Publish", "Effect": "Allow", "Action": "sns:Publish",
                 "Resource": topic.arn},
                {"Sid": "EncryptedTopic", "Effect": "Allow",
                 "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                 "Resource": args.kms_key_arn},
            ]),
            opts=child_options(self))
        return pulumi.Output.all(role.arn, policy.id).apply(lambda ids: ids[0])


def _widget(title: str, metrics: list[list[Any]], region: str, stat: str,
            threshold: float | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"title": title, "metrics": metrics, "region": region,
                                  "stat": stat, "period": 300, "view": "timeSeries"}
    if threshold is not None:
        properties["annotations"] = {"horizontal": [{"label": "alarm", "value": threshold}]}
    return {"type": "metric", "properties": properties}


def _layout(widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two 12x6 widgets per row."""
    return [{**widget, "x": 12 * (i % 2), "y": 6 * (i // 2), "width": 12, "height": 6}
            for i, widget in enumerate(widgets)]


def _check_args(args: MonitoringArgs) -> None:
    """Fail before any resource exists when the platform's inputs are missing."""
    if args.serving.platform == "sagemaker":
        missing = [field for field in ("endpoint_name", "artifact_bucket_name",
                                       "capture_bucket_name", "private_subnet_ids", "vpc_id",
                                       "security_group_ids") if getattr(args, field) is None]
        if missing:
            raise ValueError(f"monitoring of SageMaker serving needs {', '.join(missing)}")
        model_monitor_image_uri(args.region)
    if args.serving.platform == "kserve":
        if args.irsa_trust_policy is None:
            raise ValueError("monitoring of KServe serving needs irsa_trust_policy (e.g. "
                             "GpuCluster.irsa_trust_policy): Alertmanager publishes to SNS "
                             "with it")
        return
    if args.cluster_name is not None and (
            args.kubernetes_version not in CLOUDWATCH_OBSERVABILITY_VERSIONS):
        raise ValueError(
            f"no {CLOUDWATCH_OBSERVABILITY_ADDON} add-on version is pinned for Kubernetes "
            f"{args.kubernetes_version!r}; add one to KUBERNETES_VERSIONS (stacks/config.py) "
            f"(pinned: {', '.join(CLOUDWATCH_OBSERVABILITY_VERSIONS)})")
    if args.cluster_name is not None and args.irsa_trust_policy is None:
        raise ValueError(
            f"monitoring of the cluster's GPU nodes (serving {args.serving.platform!r}) needs "
            "irsa_trust_policy (GpuCluster.irsa_trust_policy): the CloudWatch Observability "
            "add-on is installed there with an IRSA role")
