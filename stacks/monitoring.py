"""Monitoring: an encrypted alert topic, CloudWatch alarms and dashboard, SageMaker Model Monitor
for data drift (SageMaker serving), and Prometheus with GPU metrics (KServe serving).

GPU alerting for KServe is done in the cluster: dcgm-exporter's metrics are scraped by the
kube-prometheus-stack Prometheus, a rule fires on ``DCGM_FI_DEV_GPU_UTIL`` above
``config.gpu_utilization_percent`` for 15 minutes, and Alertmanager publishes to the same SNS
topic (IRSA role). This needs nothing beyond what this component installs, unlike a CloudWatch
alarm on Container Insights' ``node_gpu_utilization``, which would need the CloudWatch
Observability add-on in the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from ._common import assume_role_policy, child_options, policy_document, resource_tags, token
from .config import GPU_NODE_SELECTOR, GPU_TOLERATION, MonitoringConfig, ServingConfig
from .instances import SAGEMAKER_INSTANCES
from .serving import DATA_CAPTURE_PREFIX, SAGEMAKER_VPC_ACTIONS, VARIANT_NAME

__all__ = [
    "DCGM_EXPORTER_VERSION",
    "KUBE_PROMETHEUS_STACK_VERSION",
    "MODEL_MONITOR_REGISTRIES",
    "Monitoring",
    "MonitoringArgs",
    "model_monitor_image_uri",
]

# Accounts of the SageMaker Model Monitor analyzer image (sagemaker-model-monitor-analyzer)
# per region, from AWS's "Amazon SageMaker Model Monitor prebuilt container" documentation and
# the SageMaker Python SDK's image_uri_config/model-monitor.json.
MODEL_MONITOR_REGISTRIES: dict[str, str] = {
    "ap-east-1": "001633400207",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-south-1": "126357580389",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "ca-central-1": "536280801234",
    "eu-central-1": "048819808253",
    "eu-north-1": "895015795356",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "me-south-1": "607024016150",
    "sa-east-1": "539772159869",
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}

KUBE_PROMETHEUS_STACK_REPO = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_VERSION = "88.6.4"
DCGM_EXPORTER_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_EXPORTER_VERSION = "4.1.1"
MONITORING_NAMESPACE = "monitoring"
ALERTMANAGER_SERVICE_ACCOUNT = "alertmanager"

BASELINE_PREFIX = "monitoring/baseline"
REPORTS_PREFIX = "monitoring/reports"
# CPUUtilization of an endpoint instance counts every vCPU as 100%
CPU_ALARM_PERCENT_PER_VCPU = 80


def model_monitor_image_uri(region: str) -> str:
    """The SageMaker Model Monitor analyzer image of `region`."""
    account = MODEL_MONITOR_REGISTRIES.get(region)
    if account is None:
        raise ValueError(f"no SageMaker Model Monitor image is known for region {region!r}; "
                         f"use one of {', '.join(sorted(MODEL_MONITOR_REGISTRIES))} or add the "
                         "region's account (AWS docs: Model Monitor prebuilt container)")
    return f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-model-monitor-analyzer"


@dataclass
class MonitoringArgs:
    """Inputs of :class:`Monitoring`. SageMaker serving uses the endpoint, bucket and VPC
    fields; KServe serving the Kubernetes ones."""

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
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Security groups of the drift jobs (HTTPS to S3 and the VPC endpoints)."""
    drift_instance_type: str = "ml.m5.xlarge"
    """Instance type of the drift jobs."""
    # KServe
    kubernetes_provider: pulumi.ProviderResource | None = None
    """Provider of the EKS cluster."""
    irsa_trust_policy: Callable[[str, str], pulumi.Input[str]] | None = None
    """(namespace, service account) -> IRSA trust policy; Alertmanager publishes with it."""


class Monitoring(pulumi.ComponentResource):
    """Alerts to an encrypted SNS topic (e-mail subscriptions) and a dashboard.

    SageMaker serving: alarms on the endpoint's 5xx rate, p99 model latency, invocation drop
    and CPU, and (when data is captured) a Model Monitor data-quality schedule comparing
    captured requests with the baseline (network-isolated, in the VPC, KMS-encrypted). The
    baseline (``statistics.json``, ``constraints.json`` under ``monitoring/baseline/``) comes
    from the project's pipeline; scheduled runs fail until it exists.
    KServe serving: kube-prometheus-stack and dcgm-exporter, GPU alerts through Alertmanager.
    """

    alert_topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: MonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        _check_args(args)
        super().__init__(token("Monitoring"), name, None, opts)
        self._name, self._args = name, args
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        self._partition = aws.get_partition_output(opts=invoke).partition

        topic = self._alert_topic()
        alarms: list[aws.cloudwatch.MetricAlarm] = []
        widgets: list[dict[str, Any]] = []
        if args.serving.platform == "sagemaker":
            alarms = self._endpoint_alarms(topic)
            widgets = self._endpoint_widgets(alarms)
            if args.serving.data_capture_percent > 0:  # drift is measured on captured data
                self._drift_schedule()
        elif args.serving.platform == "kserve":
            self._prometheus(topic)
            widgets = [{"type": "text", "properties": {"markdown": (
                "KServe: model and GPU metrics are in the cluster's Grafana "
                f"(`kubectl -n {MONITORING_NAMESPACE} port-forward "
                "svc/kube-prometheus-stack-grafana 3000:80`); GPU alerts reach the alert "
                "topic through Alertmanager.")}}]
        widgets.append(_widget("Alerts", [
            ["AWS/SNS", "NumberOfMessagesPublished", "TopicName", topic.name],
            ["AWS/SNS", "NumberOfNotificationsFailed", "TopicName", topic.name]],
            args.region, "Sum"))
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
            f"{name}-alerts", name=f"{args.prefix}-alerts", kms_master_key_id=args.kms_key_arn,
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

    def _endpoint_alarms(self, topic: aws.sns.Topic) -> list[aws.cloudwatch.MetricAlarm]:
        """5xx rate, p99 latency, invocation drop and CPU of the endpoint's variant."""
        name, args = self._name, self._args
        config = args.config
        dimensions = {"EndpointName": args.endpoint_name, "VariantName": VARIANT_NAME}
        prefix = f"{args.prefix}-endpoint"

        def alarm(resource: str, description: str, **settings: Any) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{resource}", name=f"{prefix}-{resource}",
                alarm_description=description, alarm_actions=[topic.arn],
                ok_actions=[topic.arn], tags=self._tags(resource), opts=child_options(self),
                **settings)

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
                  treat_missing_data="notBreaching"),
            alarm("latency-p99", f"p99 model latency above {config.latency_p99_ms} ms",
                  namespace="AWS/SageMaker", metric_name="ModelLatency", dimensions=dimensions,
                  extended_statistic="p99", period=300, evaluation_periods=3,
                  datapoints_to_alarm=2, comparison_operator="GreaterThanThreshold",
                  threshold=config.latency_p99_ms * 1000,  # ModelLatency is in microseconds
                  treat_missing_data="notBreaching"),
            alarm("cpu", f"CPU above {CPU_ALARM_PERCENT_PER_VCPU}% of all vCPUs",
                  namespace="/aws/sagemaker/Endpoints", metric_name="CPUUtilization",
                  dimensions=dimensions, statistic="Average", period=300,
                  evaluation_periods=3, comparison_operator="GreaterThanThreshold",
                  threshold=CPU_ALARM_PERCENT_PER_VCPU
                  * SAGEMAKER_INSTANCES[args.serving.instance_type].vcpus,
                  treat_missing_data="notBreaching"),
        ]
        if config.min_invocations_per_hour > 0:
            alarms.append(alarm(
                "invocations-low",
                f"fewer than {config.min_invocations_per_hour} invocations in an hour",
                namespace="AWS/SageMaker", metric_name="Invocations", dimensions=dimensions,
                statistic="Sum", period=3600, evaluation_periods=1,
                comparison_operator="LessThanThreshold",
                threshold=config.min_invocations_per_hour,
                treat_missing_data="breaching"))  # no data: no traffic at all
        return alarms

    def _endpoint_widgets(self, alarms: list[aws.cloudwatch.MetricAlarm]) -> list[dict]:
        args = self._args
        dimensions = ["EndpointName", args.endpoint_name, "VariantName", VARIANT_NAME]
        return [
            _widget("Invocations", [
                ["AWS/SageMaker", "Invocations", *dimensions],
                ["AWS/SageMaker", "Invocation4XXErrors", *dimensions],
                ["AWS/SageMaker", "Invocation5XXErrors", *dimensions]], args.region, "Sum"),
            _widget("Model latency p99 (microseconds)", [
                ["AWS/SageMaker", "ModelLatency", *dimensions]], args.region, "p99",
                threshold=args.config.latency_p99_ms * 1000),
            _widget("Instances: CPU and memory (%)", [
                ["/aws/sagemaker/Endpoints", "CPUUtilization", *dimensions],
                ["/aws/sagemaker/Endpoints", "MemoryUtilization", *dimensions]],
                args.region, "Average"),
            {"type": "alarm", "properties": {"title": "Alarms",
                                             "alarms": [alarm.arn for alarm in alarms]}},
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
            f"{name}-monitor-role", assume_role_policy=assume_role_policy(
                "sagemaker.amazonaws.com"),
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
                {"Sid": "Key", "Effect": "Allow",
                 "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                 "Resource": args.kms_key_arn},
                {"Sid": "Logs", "Effect": "Allow",
                 "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                            "logs:DescribeLogStreams"],
                 "Resource": [processing_logs, pulumi.Output.concat(processing_logs, ":*")]},
                {"Sid": "DriftMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
                 "Resource": "*", "Condition": {"StringEquals": {
                     "cloudwatch:namespace": "aws/sagemaker/Endpoints/data-metrics"}}},
                {"Sid": "NetworkInterfaces", "Effect": "Allow",
                 "Action": list(SAGEMAKER_VPC_ACTIONS), "Resource": "*"},
            ]),
            opts=child_options(self))
        job = aws.sagemaker.DataQualityJobDefinition(
            f"{name}-data-quality", role_arn=role.arn,
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
            f"{name}-drift-schedule", monitoring_schedule_config={
                "monitoring_type": "DataQuality",
                "monitoring_job_definition_name": job.name,
                "schedule_config": {"schedule_expression": args.config.drift_schedule}},
            tags=self._tags("drift-schedule"), opts=child_options(self))

    # ------------------------------------------------------------------ KServe

    def _prometheus(self, topic: aws.sns.Topic) -> None:
        """kube-prometheus-stack (Alertmanager -> SNS through IRSA) and dcgm-exporter."""
        name, args = self._name, self._args
        role = aws.iam.Role(
            f"{name}-alertmanager-role", assume_role_policy=args.irsa_trust_policy(
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
        non_root = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 2000,
                    "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}}
        stack = k8s.helm.v3.Release(
            f"{name}-kube-prometheus-stack", name="kube-prometheus-stack",
            chart="kube-prometheus-stack", version=KUBE_PROMETHEUS_STACK_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=KUBE_PROMETHEUS_STACK_REPO),
            namespace=MONITORING_NAMESPACE, create_namespace=True,
            values={
                "prometheus": {"prometheusSpec": {
                    # also scrape ServiceMonitors and rules of other releases (dcgm-exporter)
                    "serviceMonitorSelectorNilUsesHelmValues": False,
                    "ruleSelectorNilUsesHelmValues": False,
                    "retention": "15d", "securityContext": non_root}},
                "alertmanager": {
                    "serviceAccount": {
                        "create": True, "name": ALERTMANAGER_SERVICE_ACCOUNT,
                        "annotations": {"eks.amazonaws.com/role-arn": role.arn}},
                    "alertmanagerSpec": {"securityContext": non_root},
                    "config": _alertmanager_config(topic.arn, args.region, args.prefix)},
                # empty: the chart generates a random password instead of its well-known one
                "grafana": {"adminPassword": ""},
                "additionalPrometheusRulesMap": {"gpu": {"groups": [{
                    "name": "gpu", "rules": [{
                        "alert": "GpuUtilizationHigh",
                        "expr": f"DCGM_FI_DEV_GPU_UTIL > {args.config.gpu_utilization_percent}",
                        "for": "15m", "labels": {"severity": "warning"},
                        "annotations": {"summary": (
                            f"GPU utilisation above {args.config.gpu_utilization_percent}% "
                            "for 15 minutes: add GPU nodes or replicas")}}]}]}},
            },
            opts=child_options(self, provider=args.kubernetes_provider, depends_on=[policy]))
        k8s.helm.v3.Release(
            f"{name}-dcgm-exporter", name="dcgm-exporter", chart="dcgm-exporter",
            version=DCGM_EXPORTER_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=DCGM_EXPORTER_REPO),
            namespace=MONITORING_NAMESPACE,
            # the chart's container runs as root with SYS_ADMIN: DCGM needs them for its
            # profiling metrics, so its security context is left as the chart sets it
            values={"nodeSelector": GPU_NODE_SELECTOR, "tolerations": [dict(GPU_TOLERATION)],
                    "serviceMonitor": {"enabled": True, "interval": "30s"},
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                  "limits": {"cpu": "500m", "memory": "512Mi"}}},
            # the ServiceMonitor kind comes with kube-prometheus-stack
            opts=child_options(self, provider=args.kubernetes_provider, depends_on=[stack]))


def _alertmanager_config(topic_arn: pulumi.Output[str], region: str,
                         prefix: str) -> dict[str, Any]:
    """Every alert but the always-firing Watchdog goes to the SNS topic (SigV4, IRSA)."""
    return {
        "route": {"receiver": "sns", "group_by": ["alertname", "namespace"],
                  "routes": [{"receiver": "null", "matchers": ['alertname = "Watchdog"']}]},
        "receivers": [
            {"name": "null"},
            {"name": "sns", "sns_configs": [{"topic_arn": topic_arn, "sigv4": {"region": region},
                                             "subject": f"{prefix}: cluster alert"}]},
        ],
    }


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
                                       "capture_bucket_name", "private_subnet_ids",
                                       "security_group_ids") if getattr(args, field) is None]
        if missing:
            raise ValueError(f"monitoring of SageMaker serving needs {', '.join(missing)}")
        model_monitor_image_uri(args.region)
    elif args.serving.platform == "kserve" and args.irsa_trust_policy is None:
        raise ValueError("monitoring of KServe serving needs irsa_trust_policy (e.g. "
                         "GpuCluster.irsa_trust_policy): Alertmanager publishes to SNS with it")
