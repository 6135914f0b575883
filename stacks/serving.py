"""Model serving: a SageMaker endpoint with guarded blue/green deployments and autoscaling, or
what a KServe InferenceService on the cluster needs from AWS (the predictor's role).

The InferenceService itself is a Kubernetes object, applied by the in-cluster program
(:mod:`.workloads`); :func:`inference_service_manifest` builds it as plain data, so that its pod
template can be checked without Pulumi.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import child_options, fitted, policy_document, resource_tags, token
from ._iam import SAGEMAKER_VPC_ACTIONS, sagemaker_trust_policy, vpc_network_interface_statements
from .alarms import MISSING_DATA
from .config import (
    GPU_TOLERATION,
    GpuPoolConfig,
    MonitoringConfig,
    ServingConfig,
    StackConfigError,
)
from .constants import (
    AUTONAME_SUFFIX,
    GPU_RESOURCE,
    INFERENCE_SERVICE_KIND,
    SAGEMAKER_CHALLENGER_SUFFIX,
    SAGEMAKER_NAME_MAX,
    SAGEMAKER_VERSIONED_SUFFIXES,
)
from .instances import has_instance_store
from .model_keys import MODELS_PREFIX, STAND_IN_MODEL_KEY

__all__ = [
    "CHALLENGER_VARIANT",
    "DATA_CAPTURE_PREFIX",
    "KNATIVE_VISIBILITY_LABEL",
    "PREDICTOR_NAMESPACE",
    "SAGEMAKER_VPC_ACTIONS",
    "SERVING_PORT",
    "VARIANT_NAME",
    "Serving",
    "ServingArgs",
    "deployable_model_key",
    "inference_service_manifest",
    "predictor_service_account",
]

# the production variant, whose name must stay the same across blue/green deployments (AWS
# docs, deployment guardrails "Exclusions"); an A/B test adds CHALLENGER_VARIANT beside it
VARIANT_NAME = "primary"
CHALLENGER_VARIANT = "challenger"
DATA_CAPTURE_PREFIX = "data-capture"
SERVING_PORT = 8080
RUN_AS_USER = 10001
MODEL_MOUNT = "/mnt/models"  # where KServe's storage initializer puts the model
SAGEMAKER_MODEL_DIR = "/opt/ml/model"

PREDICTOR_NAMESPACE = "ml-serving"
#: Knative's label for a Service's visibility; ``cluster-local``: no external route
KNATIVE_VISIBILITY_LABEL = "networking.knative.dev/visibility"

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_ISVC_NAME_MAX = 53  # leaves room for the "-predictor" suffix of its Service
_SAGEMAKER_NAME_MAX = SAGEMAKER_NAME_MAX
_AUTONAME_SUFFIX = AUTONAME_SUFFIX
# child names of a SageMaker model version: "<component>-model", "<component>-config", and an
# A/B test's "<component>-challenger" model
_VERSIONED = SAGEMAKER_VERSIONED_SUFFIXES
_CHALLENGER = SAGEMAKER_CHALLENGER_SUFFIX
_ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                     "ecr:GetDownloadUrlForLayer"]


def inference_service_manifest(
        name: str, namespace: str, image: pulumi.Input[str], config: ServingConfig, *,
        storage_uri: pulumi.Input[str], service_account_name: str,
        gpu_node_group: GpuPoolConfig | None = None,
        canary_traffic_percent: pulumi.Input[int] | None = None) -> dict[str, Any]:
    """The KServe ``InferenceService`` (serving.kserve.io/v1beta1) of a custom predictor.

    One container, ``kserve-container``, runs ``serve --port 8080`` on the model KServe's
    storage initializer downloads from `storage_uri` to ``/mnt/models``. It runs as user 10001
    with a read-only root file system (``/tmp`` is an emptyDir), no privilege escalation and no
    capabilities, probed on the Open Inference health routes. With ``config.gpus`` it asks for
    that many ``nvidia.com/gpu``, tolerates the GPU taint and selects the nodes of the GPU pool
    `gpu_node_group`.
    Standard (RawDeployment) mode: a Deployment scaled by an HPA on CPU between the replica
    bounds. Serverless mode (``config.kserve_mode``): a Knative Service reachable inside the
    cluster only, scaled by Knative's autoscaler on concurrent requests between the bounds
    (``minReplicas`` 0: scale to zero), with `canary_traffic_percent` (see
    :meth:`~.config.ServingConfig.canary_traffic_percent`) as ``canaryTrafficPercent`` when not
    None.
    """
    _check_predictor(name, config, gpu_node_group)
    limits: dict[str, str] = {"cpu": config.cpu, "memory": config.memory}
    if config.gpus:
        limits[GPU_RESOURCE] = str(config.gpus)

    def probe(path: str, delay: int, period: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": SERVING_PORT}, "initialDelaySeconds": delay,
                "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": 3}

    container = {
        "name": "kserve-container",
        "image": image,
        "args": ["serve", "--port", str(SERVING_PORT)],
        "ports": [{"name": "http1", "containerPort": SERVING_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "STORAGE_URI", "value": storage_uri},
            {"name": "MODEL_DIR", "value": MODEL_MOUNT},
            {"name": "MODEL_NAME", "value": name},
            {"name": "SERVE_HOST", "value": "0.0.0.0"},
        ],
        "resources": {"requests": {"cpu": config.cpu, "memory": config.memory},
                      "limits": limits},
        "readinessProbe": probe("/v2/health/ready", 5, 10),
        "livenessProbe": probe("/v2/health/live", 15, 20),
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": RUN_AS_USER, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    predictor: dict[str, Any] = {
        "serviceAccountName": service_account_name,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER,
                            "runAsGroup": RUN_AS_USER, "fsGroup": RUN_AS_USER,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
        "minReplicas": config.min_replicas,
        "maxReplicas": config.max_replicas,
    }
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "model"}
    if config.kserve_mode == "serverless":
        # no scaleMetric: Knative's own autoscaler (KPA, KServe's class in this mode) on
        # concurrent requests; KServe refuses cpu with the KPA (kserve v0.15.2
        # inference_service_validation.go: concurrency or rps), and Knative's HPA class,
        # which scales on cpu, cannot scale to zero
        annotations = {"serving.kserve.io/deploymentMode": "Serverless"}
        # the Knative Service gets this label (KServe keeps it off the revision template
        # only: kserve v0.15.2 RevisionTemplateLabelDisallowedList): an address inside the
        # cluster, through Kourier's ClusterIP Service, no external route
        labels[KNATIVE_VISIBILITY_LABEL] = "cluster-local"
        if canary_traffic_percent is not None:
            predictor["canaryTrafficPercent"] = canary_traffic_percent
    else:
        predictor.update({"scaleMetric": "cpu", "scaleTarget": 70})
        annotations = {"serving.kserve.io/deploymentMode": "RawDeployment",
                       "serving.kserve.io/autoscalerClass": "hpa"}
    if gpu_node_group is not None and config.gpus:
        predictor["tolerations"] = [dict(GPU_TOLERATION)]
        predictor["nodeSelector"] = dict(gpu_node_group.labels)
    return {
        "apiVersion": INFERENCE_SERVICE_KIND[0],
        "kind": INFERENCE_SERVICE_KIND[1],
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": annotations},
        "spec": {"predictor": predictor},
    }


@dataclass
class ServingArgs:
    """Inputs of :class:`Serving`. SageMaker uses the VPC, repository and capture fields;
    KServe the Kubernetes ones."""

    config: ServingConfig
    """Platform, sizes, autoscaling, data capture (``platform`` must not be ``none``)."""
    monitoring: MonitoringConfig
    """Log retention and the thresholds of the SageMaker rollback alarms."""
    prefix: str
    """Resource-name prefix, ``<project>-<env>``; also the SageMaker endpoint's name."""
    tags: Mapping[str, str]
    """The platform's tags."""
    kms_key_arn: pulumi.Input[str]
    """Platform data key: model artifacts, captured data, volumes, logs."""
    model_name: str
    """Name of the model in the KServe routes and of the InferenceService."""
    image_uri: pulumi.Input[str]
    """Serving image, ``<repository_url>:<config.image_tag>``."""
    model_data_bucket: pulumi.Input[str]
    """Artifact bucket holding the model."""
    model_data_key: str
    """Key of the model version's archive, ``models/<sha256>/model.tar.gz``
    (:mod:`.model_keys`; :func:`deployable_model_key` picks it); read access covers every
    version under ``models/``."""
    # SageMaker
    repository_arn: pulumi.Input[str] | None = None
    """ECR repository of the serving image (pull permission of the execution role)."""
    capture_bucket_name: pulumi.Input[str] | None = None
    """Bucket receiving captured requests and responses under ``data-capture/``."""
    private_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Subnets of the endpoint's network interfaces."""
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Security groups of the endpoint; without them one is created from the VPC fields."""
    vpc_id: pulumi.Input[str] | None = None
    """VPC of the endpoint: its network interfaces (the execution role may manage interfaces
    in this VPC only) and the created security group."""
    vpc_cidr: pulumi.Input[str] | None = None
    """HTTPS egress to the VPC (its interface endpoints)."""
    s3_prefix_list_id: pulumi.Input[str] | None = None
    """Prefix list of the VPC's S3 gateway endpoint: HTTPS egress to S3."""
    # KServe
    gpu_node_group: GpuPoolConfig | None = None
    """GPU pool the predictor runs on when ``config.gpus`` > 0."""
    irsa_trust_policy: Callable[[str, str], pulumi.Input[str]] | None = None
    """(namespace, service account) -> trust policy of an IRSA role, e.g.
    ``GpuCluster.irsa_trust_policy``; the predictor reads its model with that role."""
    namespace: str = PREDICTOR_NAMESPACE
    """Namespace of the InferenceService."""


class Serving(pulumi.ComponentResource):
    """Serves the registry's model on SageMaker or KServe (``config.platform``).

    SageMaker: a network-isolated model in the private subnets (a security group allowing
    only HTTPS to the VPC and S3 unless groups are given), an endpoint configuration with
    KMS and data capture, an endpoint whose updates are blue/green (canary when it has two or
    more instances) and roll back on its 5xx-rate and p99-latency alarms, target-tracking
    autoscaling on invocations per instance, and a least-privilege execution role. Each model
    version (``model_data_key``) gets a model and an endpoint configuration of its own, which
    Pulumi keeps in AWS when it replaces them (a rolled-back endpoint still runs them).

    KServe: the IRSA role the predictor's service account reads its model with, and nothing
    else: the in-cluster program (:class:`~.workloads.ClusterWorkloads`) runs KServe and the
    InferenceService with the role, image and model given here.
    """

    endpoint_name: pulumi.Output[str] | None = None
    endpoint_arn: pulumi.Output[str] | None = None
    execution_role_arn: pulumi.Output[str] | None = None
    security_group_ids: pulumi.Output[list[str]] | None = None
    predictor_role_arn: pulumi.Output[str] | None = None
    model_url: pulumi.Output[str] | None = None
    image_uri: pulumi.Output[str] | None = None
    model_key: pulumi.Output[str] | None = None
    deployment: pulumi.Output[dict[str, Any]] | None = None
    """SageMaker: what the endpoint was deployed with and what `mlscaffold endpoint verify`,
    ``prepare`` and ``cleanup`` read (the stack output ``endpoint``)."""

    def __init__(self, name: str, args: ServingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        platform = args.config.platform
        if platform == "none":
            raise ValueError("serving.platform is 'none': do not create a Serving component")
        _check_args(name, args)
        super().__init__(token("Serving"), name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._partition = aws.get_partition_output(opts=invoke).partition
        # every version under models/ (one key per version): what a replaced instance or pod
        # still loads during an update stays readable
        self._model_objects = pulumi.Output.format(
            "arn:{0}:s3:::{1}/{2}/*", self._partition, args.model_data_bucket, MODELS_PREFIX)
        self._model_url = pulumi.Output.format("s3://{0}/{1}", args.model_data_bucket,
                                               args.model_data_key)
        if platform == "sagemaker":
            outputs = self._sagemaker(name, args)
        else:
            outputs = self._kserve(name, args)
        outputs["model_key"] = pulumi.Output.from_input(args.model_data_key)
        for key, value in outputs.items():
            setattr(self, key, value)
        self.register_outputs(outputs)

    # ------------------------------------------------------------------ SageMaker

    def _sagemaker(self, name: str, args: ServingArgs) -> dict[str, pulumi.Output[Any]]:
        config = args.config
        endpoint_name = args.prefix

        def tags(resource: str) -> dict[str, str]:
            return resource_tags(args.tags, name=f"{name}-{resource}")

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-endpoint-logs", name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
            retention_in_days=args.monitoring.log_retention_days, kms_key_id=args.kms_key_arn,
            tags=tags("endpoint-logs"), opts=child_options(self))
        role, policy = self._execution_role(name, args, log_group)

        security_groups = args.security_group_ids
        if security_groups is None:
            group = aws.ec2.SecurityGroup(
                f"{name}-sg", vpc_id=args.vpc_id,
                description=f"SageMaker endpoint {endpoint_name}: HTTPS to the VPC and S3 only",
                egress=[
                    aws.ec2.SecurityGroupEgressArgs(
                        protocol="tcp", from_port=443, to_port=443,
                        cidr_blocks=[args.vpc_cidr],
                        description="HTTPS to the VPC's interface endpoints"),
                    aws.ec2.SecurityGroupEgressArgs(
                        protocol="tcp", from_port=443, to_port=443,
                        prefix_list_ids=[args.s3_prefix_list_id],
                        description="HTTPS to S3 through the gateway endpoint"),
                ],
                tags=tags("sg"), opts=child_options(self))
            security_groups = [group.id]

        # A new model key or image replaces the model and the endpoint configuration (every
        # input of both forces a replacement) under new auto-generated names, and the endpoint
        # moves to the new configuration blue/green. Both are retained when Pulumi replaces
        # them: after an alarm-triggered rollback the endpoint still runs the old pair while
        # the provider reports success (hashicorp/terraform-provider-aws#48997, #46663), and
        # deleting them would break the endpoint's next update. `mlscaffold endpoint cleanup`
        # deletes the ones no endpoint uses, keeping the previous pair for a rollback.
        def sagemaker_model(resource: str, model_url: pulumi.Input[str]) -> aws.sagemaker.Model:
            return aws.sagemaker.Model(
                f"{name}-{resource}", execution_role_arn=role.arn,
                enable_network_isolation=True,
                primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                    image=args.image_uri, model_data_url=model_url,
                    environment={"MODEL_DIR": SAGEMAKER_MODEL_DIR, "MODEL_NAME": args.model_name,
                                 "SERVE_HOST": "0.0.0.0"}),
                vpc_config=aws.sagemaker.ModelVpcConfigArgs(
                    subnets=args.private_subnet_ids, security_group_ids=security_groups),
                tags=tags(resource),
                opts=child_options(self, retain_on_delete=True, depends_on=[policy]))

        model = sagemaker_model(_VERSIONED[0], self._model_url)
        ab_test = config.ab_test
        # A/B: the challenger variant takes its weight in percent, the primary the rest
        # (API reference, ProductionVariant InitialVariantWeight: a variant's share is its
        # weight over the sum of all weights)
        variants = [aws.sagemaker.EndpointConfigurationProductionVariantArgs(
            variant_name=VARIANT_NAME, model_name=model.name,
            instance_type=config.instance_type,
            initial_instance_count=config.initial_instance_count,
            initial_variant_weight=1 if ab_test is None else 100 - ab_test.challenger_weight)]
        challenger = None
        if ab_test is not None:
            challenger = sagemaker_model(_CHALLENGER, pulumi.Output.format(
                "s3://{0}/{1}", args.model_data_bucket, ab_test.challenger_model_key))
            variants.append(aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=CHALLENGER_VARIANT, model_name=challenger.name,
                instance_type=config.instance_type,
                initial_instance_count=ab_test.challenger_instance_count,
                initial_variant_weight=ab_test.challenger_weight))

        endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-{_VERSIONED[1]}",
            production_variants=variants,
            # AWS refuses a KMS key for instance types with (hardware-encrypted) local storage
            kms_key_arn=None if has_instance_store(config.instance_type) else args.kms_key_arn,
            data_capture_config=aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
                enable_capture=config.data_capture_percent > 0,
                initial_sampling_percentage=config.data_capture_percent,
                destination_s3_uri=pulumi.Output.format(
                    "s3://{0}/{1}", args.capture_bucket_name, DATA_CAPTURE_PREFIX),
                kms_key_id=args.kms_key_arn,
                capture_options=[
                    aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(
                        capture_mode=mode) for mode in ("Input", "Output")],
                capture_content_type_header=aws.sagemaker.
                EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
                    csv_content_types=["text/csv"], json_content_types=["application/json"])),
            tags=tags(_VERSIONED[1]), opts=child_options(self, retain_on_delete=True))

        alarms = self._rollback_alarms(name, args, endpoint_name, VARIANT_NAME)
        if ab_test is not None:
            alarms += self._rollback_alarms(f"{name}-{_CHALLENGER}", args, endpoint_name,
                                            CHALLENGER_VARIANT)
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint", name=endpoint_name, endpoint_config_name=endpoint_config.name,
            deployment_config=aws.sagemaker.EndpointDeploymentConfigArgs(
                blue_green_update_policy=_blue_green(config),
                auto_rollback_configuration=aws.sagemaker.
                EndpointDeploymentConfigAutoRollbackConfigurationArgs(alarms=[
                    aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(
                        alarm_name=alarm.name) for alarm in alarms])),
            tags=tags("endpoint"), opts=child_options(self))

        target = aws.appautoscaling.Target(
            f"{name}-scaling-target", service_namespace="sagemaker",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=pulumi.Output.format("endpoint/{0}/variant/{1}", endpoint.name,
                                             VARIANT_NAME),
            min_capacity=config.min_instances, max_capacity=config.max_instances,
            tags=tags("scaling-target"), opts=child_options(self))
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy", name=f"{endpoint_name}-invocations",
            policy_type="TargetTrackingScaling", service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension, resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.
            PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(config.target_invocations_per_instance),
                predefined_metric_specification=aws.appautoscaling.
                PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"),
                scale_in_cooldown=300, scale_out_cooldown=60),
            opts=child_options(self))
        ab = {} if ab_test is None else {
            "challenger": {"variant": CHALLENGER_VARIANT, "model_key": ab_test.challenger_model_key,
                           "weight": ab_test.challenger_weight,
                           "model_name_base": f"{name}-{_CHALLENGER}"}}
        deployment = pulumi.Output.all(
            endpoint.name, endpoint.endpoint_config_name, model.name,
            *(alarm.name for alarm in alarms)).apply(lambda values: {
                "name": values[0], "config_name": values[1], "model_name": values[2],
                "model_key": args.model_data_key, "variant": VARIANT_NAME,
                "rollback_alarms": list(values[3:]),
                # the auto-generated names of retained versions start with these
                "model_name_base": f"{name}-{_VERSIONED[0]}",
                "config_name_base": f"{name}-{_VERSIONED[1]}", **ab})
        return {"endpoint_name": endpoint.name, "endpoint_arn": endpoint.arn,
                "execution_role_arn": role.arn,
                "security_group_ids": pulumi.Output.from_input(security_groups),
                "deployment": deployment}

    def _execution_role(self, name: str, args: ServingArgs, log_group: aws.cloudwatch.LogGroup
                        ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The role SageMaker hosts the model with: read the model, pull the image, write
        captured data and logs, manage the endpoint's network interfaces."""
        role = aws.iam.Role(
            f"{name}-execution-role", name=fitted(aws.iam.Role, f"{name}-execution-role"),
            assume_role_policy=sagemaker_trust_policy(self),
            description=f"SageMaker endpoint {args.prefix}: hosts the model",
            tags=resource_tags(args.tags, name=f"{name}-execution-role"),
            opts=child_options(self))
        policy = aws.iam.RolePolicy(
            f"{name}-execution-policy", role=role.id, policy=policy_document([
                {"Sid": "ModelArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": self._model_objects},
                {"Sid": "DataCapture", "Effect": "Allow", "Action": "s3:PutObject",
                 "Resource": pulumi.Output.format("arn:{0}:s3:::{1}/{2}/*", self._partition,
                                                  args.capture_bucket_name,
                                                  DATA_CAPTURE_PREFIX)},
                {"Sid": "Key", "Effect": "Allow",
                 "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                 "Resource": args.kms_key_arn},
                {"Sid": "ImagePull", "Effect": "Allow", "Action": _ECR_PULL_ACTIONS,
                 "Resource": args.repository_arn},
                # the registry token has no resource-level permission
                {"Sid": "RegistryToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
                 "Resource": "*"},
                {"Sid": "Logs", "Effect": "Allow",
                 "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                            "logs:DescribeLogStreams"],
                 "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")]},
                {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
                 "Resource": "*", "Condition": {"StringLike": {
                     "cloudwatch:namespace": ["AWS/SageMaker", "/aws/sagemaker/*"]}}},
                # VPC mode: SageMaker attaches network interfaces in the private subnets
                *vpc_network_interface_statements(self, args.vpc_id),
            ]),
            opts=child_options(self))
        return role, policy

    def _rollback_alarms(self, name: str, args: ServingArgs, endpoint_name: str,
                         variant: str) -> list[aws.cloudwatch.MetricAlarm]:
        """Alarms a deployment rolls back on: 5xx rate and p99 latency of `variant` over
        1-minute periods (the primary's are named after the endpoint, another variant's after
        the endpoint and the variant).

        They name the endpoint, not depend on it (the endpoint depends on them)."""
        dimensions = {"EndpointName": endpoint_name, "VariantName": variant}
        tags = resource_tags(args.tags, name=f"{name}-rollback")
        primary = variant == VARIANT_NAME
        alarm_prefix = endpoint_name if primary else f"{endpoint_name}-{variant}"
        watched = "the endpoint" if primary else f"the endpoint's {variant} variant"

        def metric(metric_id: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=metric_id, return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/SageMaker", metric_name=metric_name, period=60, stat="Sum",
                    dimensions=dimensions))

        errors = aws.cloudwatch.MetricAlarm(
            f"{name}-rollback-5xx", name=f"{alarm_prefix}-rollback-5xx",
            alarm_description=f"5xx rate (%) of {watched}; rolls back deployments",
            comparison_operator="GreaterThanThreshold",
            threshold=args.monitoring.error_rate_5xx, evaluation_periods=2,
            datapoints_to_alarm=2, treat_missing_data=MISSING_DATA["rollback-5xx"].treat,
            metric_queries=[
                metric("errors", "Invocation5XXErrors"), metric("invocations", "Invocations"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate", label="5xx rate (%)", return_data=True,
                    expression="IF(invocations > 0, 100 * errors / invocations, 0)"),
            ],
            tags=tags, opts=child_options(self))
        latency = aws.cloudwatch.MetricAlarm(
            f"{name}-rollback-latency", name=f"{alarm_prefix}-rollback-latency-p99",
            alarm_description=f"p99 model latency of {watched}; rolls back deployments",
            namespace="AWS/SageMaker", metric_name="ModelLatency", dimensions=dimensions,
            extended_statistic="p99", period=60, evaluation_periods=2, datapoints_to_alarm=2,
            comparison_operator="GreaterThanThreshold",
            threshold=args.monitoring.latency_p99_ms * 1000,  # ModelLatency is in microseconds
            treat_missing_data=MISSING_DATA["rollback-latency-p99"].treat, tags=tags,
            opts=child_options(self))
        return [errors, latency]

    # ------------------------------------------------------------------ KServe

    def _kserve(self, name: str, args: ServingArgs) -> dict[str, pulumi.Output[Any]]:
        """The predictor's IRSA role: read and list the model versions, decrypt them."""
        account_name = predictor_service_account(args.model_name)
        role = aws.iam.Role(
            f"{name}-predictor-role", name=fitted(aws.iam.Role, f"{name}-predictor-role"),
            assume_role_policy=args.irsa_trust_policy(args.namespace, account_name),
            description=f"KServe predictor {args.namespace}/{args.model_name}: reads its model",
            tags=resource_tags(args.tags, name=f"{name}-predictor-role"),
            opts=child_options(self))
        policy = aws.iam.RolePolicy(
            f"{name}-predictor-policy", role=role.id, policy=policy_document([
                {"Sid": "ModelArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": self._model_objects},
                {"Sid": "ModelListing", "Effect": "Allow", "Action": "s3:ListBucket",
                 "Resource": pulumi.Output.format("arn:{0}:s3:::{1}", self._partition,
                                                  args.model_data_bucket),
                 "Condition": {"StringLike": {"s3:prefix": f"{MODELS_PREFIX}/*"}}},
                {"Sid": "Key", "Effect": "Allow", "Action": "kms:Decrypt",
                 "Resource": args.kms_key_arn},
            ]),
            opts=child_options(self))
        # given out once the policy is attached, so the predictor can read when it starts
        return {"predictor_role_arn": pulumi.Output.all(role.arn, policy.id).apply(
                    lambda ids: ids[0]),
                "model_url": self._model_url,
                "image_uri": pulumi.Output.from_input(args.image_uri)}


def deployable_model_key(config: ServingConfig, stack: str) -> str:
    """The key of the model version serving loads: ``config.model_key``.

    Without one, a preview (``pulumi preview``) plans with a stand-in key and warns, and a
    deployment is refused with a StackConfigError naming the fix: an endpoint or predictor
    without a model would never become healthy.
    """
    if config.model_key is not None:
        return config.model_key
    upload = (f"`make deploy STACK={stack}` sets it to the version the stack's model registry "
              f"serves (EXP=exp-NNN registers one first); by hand, `mlscaffold model served "
              f"--stack {stack} --stage STAGE` prints the key to set with `pulumi config set "
              "--path platform.serving.model_key KEY`")
    if pulumi.runtime.is_dry_run():
        pulumi.log.warn(f"platform.serving.model_key is not set: previewing serving with the "
                        f"stand-in model {STAND_IN_MODEL_KEY}; {upload}")
        return STAND_IN_MODEL_KEY
    raise StackConfigError("platform.serving.model_key",
                           f"not set, and serving.platform {config.platform} needs the model "
                           f"version to serve; {upload}")


def predictor_service_account(model_name: str) -> str:
    """The service account of a model's KServe predictor (its IRSA role trusts exactly it)."""
    return f"{model_name}-predictor"


def _blue_green(config: ServingConfig
                ) -> aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgsDict:
    """The blue/green update of ``config.rollout``.

    auto: canary (one instance first, 10 minutes of baking) when the endpoint has two or more
    instances, else all at once after 5 minutes; the old fleet stays 5 more minutes. The
    other strategies take their sizes and times from the rollout settings: canary and linear
    steps are shares of the new fleet's capacity (CAPACITY_PERCENT; API reference,
    TrafficRoutingConfig: a canary at most 50%, a linear step 10-50%)."""
    rollout = config.rollout
    if rollout.strategy == "auto":
        if config.initial_instance_count >= 2:  # a canary is at most half of the fleet
            traffic = {"type": "CANARY", "wait_interval_in_seconds": 600,
                       "canary_size": {"type": "INSTANCE_COUNT", "value": 1}}
        else:
            traffic = {"type": "ALL_AT_ONCE", "wait_interval_in_seconds": 300}
        return {"traffic_routing_configuration": traffic, "termination_wait_in_seconds": 300,
                "maximum_execution_timeout_in_seconds": 3600}
    traffic = {"type": rollout.strategy.upper().replace("-", "_"),
               "wait_interval_in_seconds": rollout.wait_seconds}
    if rollout.strategy == "canary":
        traffic["canary_size"] = {"type": "CAPACITY_PERCENT", "value": rollout.canary_percent}
    elif rollout.strategy == "linear":
        traffic["linear_step_size"] = {"type": "CAPACITY_PERCENT",
                                       "value": rollout.linear_step_percent}
    return {"traffic_routing_configuration": traffic,
            "termination_wait_in_seconds": rollout.termination_wait_seconds,
            "maximum_execution_timeout_in_seconds": rollout.max_seconds}


def _check_args(name: str, args: ServingArgs) -> None:
    """Fail before any resource exists when the platform's inputs are missing."""
    if args.config.platform == "sagemaker":
        suffixes = (*_VERSIONED, *((_CHALLENGER,) if args.config.ab_test else ()))
        longest = max((f"{name}-{suffix}" for suffix in suffixes), key=len)
        if len(longest) + _AUTONAME_SUFFIX > _SAGEMAKER_NAME_MAX:
            raise ValueError(
                f"SageMaker names of {name!r} would be too long: {longest!r} plus Pulumi's "
                f"{_AUTONAME_SUFFIX}-character suffix exceeds {_SAGEMAKER_NAME_MAX} characters; "
                "shorten the project or environment name")
        missing = [field for field in ("repository_arn", "capture_bucket_name",
                                       "private_subnet_ids", "vpc_id")
                   if getattr(args, field) is None]
        if args.security_group_ids is None:
            missing += [field for field in ("vpc_cidr", "s3_prefix_list_id")
                        if getattr(args, field) is None]
        if missing:
            raise ValueError(f"SageMaker serving needs {', '.join(missing)}")
        return
    if args.irsa_trust_policy is None:
        raise ValueError("KServe serving needs irsa_trust_policy (e.g. "
                         "GpuCluster.irsa_trust_policy): the predictor reads its model from S3")
    _check_predictor(args.model_name, args.config, args.gpu_node_group)


def _check_predictor(name: str, config: ServingConfig,
                     gpu_node_group: GpuPoolConfig | None) -> None:
    if config.gpus and gpu_node_group is None:
        raise ValueError(f"serving.gpus is {config.gpus} but no GPU pool was given; "
                         "pass one of cluster.gpu_pools or set serving.gpus to 0")
    if not _DNS_1035.match(name) or len(name) > _ISVC_NAME_MAX:
        raise ValueError(f"InferenceService name {name!r} must be lower-case letters, digits "
                         f"and '-', start with a letter, at most {_ISVC_NAME_MAX} characters")
    if config.min_replicas < 1 and config.kserve_mode == "standard":
        raise ValueError("serving.min_replicas must be at least 1 with KServe RawDeployment "
                         "(it does not scale to zero; serving.kserve_mode serverless does)")
