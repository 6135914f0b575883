"""SageMaker security: endpoints, models, feature groups, Model Monitor jobs and MLflow
tracking servers.

Data at rest is encrypted with KMS keys, except on instance types with local NVMe storage
(``ml.g5``, ``ml.g4dn``, ``ml.p4d``...): that storage is encrypted by the instance's hardware
and SageMaker refuses a KMS key for it (:func:`mlscaffold.stacks.instances.has_instance_store`,
the table the serving stack reads too). Models run network-isolated inside the VPC. A key ARN,
subnet or security group unknown before deployment (one of the program) counts as set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from mlscaffold.stacks.instances import has_instance_store

from ..buckets import BUCKET_TYPES, bucket_ids
from ..props import as_mapping, is_false, is_set, is_true, items_of, number
from ..rule import Subject, rule, stack_rule, violation

__all__: list[str] = []

ENDPOINT_CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
MODEL = "aws:sagemaker/model:Model"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
MONITORING_JOB_TYPES = ("aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",)
MLFLOW_TRACKING_SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"


# ------------------------------------------------------------------ endpoints


def _instance_store_type(subject: Subject) -> str | None:
    """The first instance type of the endpoint's variants with local instance storage."""
    variants = [*items_of(subject.props.get("productionVariants")),
                *items_of(subject.props.get("shadowProductionVariants"))]
    types = [as_mapping(v).get("instanceType") for v in variants]
    return next((t for t in types if isinstance(t, str) and has_instance_store(t)), None)


@rule("sagemaker-endpoint-kms", pack="security", severity="high",
      resource_types=[ENDPOINT_CONFIGURATION],
      description="SageMaker endpoint configurations encrypt the instances' storage volumes "
                  "(and asynchronous inference results) with a KMS key; instance types with "
                  "hardware-encrypted local storage take none.")
def sagemaker_endpoint_kms(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    if not is_set(subject.props, "kmsKeyArn") and _instance_store_type(subject) is None:
        yield violation(subject, "kmsKeyArn", "is not set (storage volumes use the AWS "
                        "managed key)", "set kms_key_arn to a KMS key ARN, or serve on an "
                        "instance type with local NVMe storage (e.g. ml.g5), which is "
                        "hardware-encrypted")
    asynchronous = as_mapping(subject.props.get("asyncInferenceConfig"))
    if asynchronous and not is_set(as_mapping(asynchronous.get("outputConfig")), "kmsKeyId"):
        yield violation(subject, "asyncInferenceConfig.outputConfig.kmsKeyId", "is not set",
                        "set it to a KMS key ARN for the inference results written to S3")


def _capture_enabled(subject: Subject) -> bool | None:
    """Whether the endpoint captures data: None without dataCaptureConfig; AWS's default when
    enableCapture is not set is to capture."""
    if not is_set(subject.props, "dataCaptureConfig"):
        return None
    return not is_false(as_mapping(subject.props["dataCaptureConfig"]).get("enableCapture"))


@rule("sagemaker-data-capture-kms", pack="security", severity="high",
      resource_types=[ENDPOINT_CONFIGURATION],
      description="SageMaker endpoints that capture requests and responses encrypt the "
                  "captured data with a KMS key.")
def sagemaker_data_capture_kms(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    capture = as_mapping(subject.props.get("dataCaptureConfig"))
    if _capture_enabled(subject) and not is_set(capture, "kmsKeyId"):
        yield violation(subject, "dataCaptureConfig.kmsKeyId", "is not set (captured requests "
                        "and responses use the bucket's default encryption)",
                        "set it to the KMS key ARN of the capture bucket")


@rule("sagemaker-data-capture", pack="security", severity="medium",
      resource_types=[ENDPOINT_CONFIGURATION],
      description="SageMaker endpoints capture requests and responses, the record drift "
                  "monitoring and audits work from (not required in dev by default).",
      config={"require_capture": {
          "type": "boolean", "default": True,
          "description": "Require data capture on every endpoint."}},
      profiles={"dev": {"require_capture": False}})
def sagemaker_data_capture(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    if not config["require_capture"]:
        return
    capture = as_mapping(subject.props.get("dataCaptureConfig"))
    if not is_true(capture.get("enableCapture")):
        yield violation(subject, "dataCaptureConfig.enableCapture",
                        "is not true" if capture else "is not set (dataCaptureConfig is "
                        "missing)", "capture Input and Output to S3 (serving."
                        "data_capture_percent above 0 in the stack config)")


# ------------------------------------------------------------------ progressive delivery


def _rollback_alarms(subject: Subject) -> list[Any]:
    deployment = as_mapping(subject.props.get("deploymentConfig"))
    return items_of(as_mapping(deployment.get("autoRollbackConfiguration")).get("alarms"))


@rule("sagemaker-endpoint-auto-rollback", pack="security", severity="high",
      resource_types=[ENDPOINT],
      description="SageMaker endpoints update blue/green and roll a new model version back "
                  "when CloudWatch alarms fire (not required in dev by default).",
      config={"require_auto_rollback": {
          "type": "boolean", "default": True,
          "description": "Require an update policy and rollback alarms on every endpoint."}},
      profiles={"dev": {"require_auto_rollback": False}})
def sagemaker_endpoint_auto_rollback(subject: Subject, config: Mapping[str, Any]
                                     ) -> Iterator[str]:
    if not config["require_auto_rollback"]:
        return
    deployment = as_mapping(subject.props.get("deploymentConfig"))
    if not (is_set(deployment, "blueGreenUpdatePolicy")
            or is_set(deployment, "rollingUpdatePolicy")):
        yield violation(subject, "deploymentConfig.blueGreenUpdatePolicy", "is not set (an "
                        "update moves every request to the new model with no time to roll "
                        "back)", "set deployment_config.blue_green_update_policy "
                        "(serving.rollout in the stack config)")
    if not _rollback_alarms(subject):
        yield violation(subject, "deploymentConfig.autoRollbackConfiguration.alarms",
                        "is empty (nothing rolls a failing update back)",
                        "name CloudWatch alarms on the endpoint's errors and latency, as "
                        "mlscaffold's serving stack does (<endpoint>-rollback-*)")


@rule("sagemaker-endpoint-rollback-window", pack="security", severity="medium",
      resource_types=[ENDPOINT],
      description="A SageMaker blue/green update with rollback alarms bakes long enough after "
                  "each traffic step for the alarms to fire (two one-minute periods).",
      config={"min_wait_seconds": {
          "type": "integer", "minimum": 0, "default": 120,
          "description": "Shortest baking time after a traffic step (the rollback alarms "
                         "evaluate two 60-second periods)."}})
def sagemaker_endpoint_rollback_window(subject: Subject, config: Mapping[str, Any]
                                       ) -> Iterator[str]:
    policy = as_mapping(as_mapping(subject.props.get("deploymentConfig")).get(
        "blueGreenUpdatePolicy"))
    wait = number(as_mapping(policy.get("trafficRoutingConfiguration")).get(
        "waitIntervalInSeconds"))
    minimum = int(config["min_wait_seconds"])
    if _rollback_alarms(subject) and wait is not None and wait < minimum:
        yield violation(subject, "deploymentConfig.blueGreenUpdatePolicy."
                        "trafficRoutingConfiguration.waitIntervalInSeconds",
                        f"is {wait:g}, shorter than the {minimum} seconds the rollback alarms "
                        "need to fire before traffic moves on",
                        f"set serving.rollout.wait_seconds to {minimum} or more, or lower "
                        "sagemaker-endpoint-rollback-window.min_wait_seconds in the policy file")


# ------------------------------------------------------------------ models


@rule("sagemaker-model-network-isolation", pack="security", severity="high",
      resource_types=[MODEL],
      description="SageMaker models run network-isolated: the container makes no outbound "
                  "calls.")
def sagemaker_model_network_isolation(subject: Subject, config: Mapping[str, Any]
                                      ) -> Iterator[str]:
    if not is_true(subject.props.get("enableNetworkIsolation")):
        yield violation(subject, "enableNetworkIsolation", "is not true (the model container "
                        "can reach the network)", "set enable_network_isolation=True and "
                        "package everything the model needs into the image or model data")


@rule("sagemaker-model-vpc", pack="security", severity="high", resource_types=[MODEL],
      description="SageMaker models run in the VPC's private subnets with security groups.")
def sagemaker_model_vpc(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    vpc = as_mapping(subject.props.get("vpcConfig"))
    fix = "set vpc_config with the private subnets and a security group of the endpoint"
    if not vpc:
        yield violation(subject, "vpcConfig", "is not set (the model runs outside the VPC)", fix)
        return
    for key in ("subnets", "securityGroupIds"):
        if not is_set(vpc, key):
            yield violation(subject, f"vpcConfig.{key}", "is empty", fix)


# ------------------------------------------------------------------ feature store


@rule("sagemaker-feature-group-kms", pack="security", severity="high",
      resource_types=[FEATURE_GROUP],
      description="SageMaker feature groups encrypt the offline store (S3) and the online "
                  "store with KMS keys.")
def sagemaker_feature_group_kms(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    offline = as_mapping(subject.props.get("offlineStoreConfig"))
    if offline and not is_set(as_mapping(offline.get("s3StorageConfig")), "kmsKeyId"):
        yield violation(subject, "offlineStoreConfig.s3StorageConfig.kmsKeyId", "is not set",
                        "set it to the KMS key ARN of the offline store bucket")
    online = as_mapping(subject.props.get("onlineStoreConfig"))
    if is_true(online.get("enableOnlineStore")) and not is_set(
            as_mapping(online.get("securityConfig")), "kmsKeyId"):
        yield violation(subject, "onlineStoreConfig.securityConfig.kmsKeyId",
                        "is not set (the online store uses an AWS owned key)",
                        "set it to a KMS key ARN")


# ------------------------------------------------------------------ Model Monitor


def _output_config(subject: Subject) -> tuple[str, Mapping[str, Any]]:
    """The job's output configuration (``dataQualityJobOutputConfig`` and the like)."""
    key = next((k for k in list(subject.props) if k.endswith("JobOutputConfig")),
               "dataQualityJobOutputConfig")
    return key, as_mapping(subject.props.get(key))


@rule("sagemaker-monitoring-job-kms", pack="security", severity="high",
      resource_types=list(MONITORING_JOB_TYPES),
      description="SageMaker Model Monitor jobs encrypt their reports and their processing "
                  "volume with KMS keys.")
def sagemaker_monitoring_job_kms(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    key, output = _output_config(subject)
    if not is_set(output, "kmsKeyId"):
        yield violation(subject, f"{key}.kmsKeyId", "is not set",
                        "set it to the KMS key ARN for the reports written to S3")
    cluster = as_mapping(as_mapping(subject.props.get("jobResources")).get("clusterConfig"))
    instance_type = cluster.get("instanceType")
    local_storage = isinstance(instance_type, str) and has_instance_store(instance_type)
    if not local_storage and not is_set(cluster, "volumeKmsKeyId"):
        yield violation(subject, "jobResources.clusterConfig.volumeKmsKeyId", "is not set",
                        "set it to a KMS key ARN for the processing volume")


@rule("sagemaker-monitoring-job-network", pack="security", severity="medium",
      resource_types=list(MONITORING_JOB_TYPES),
      description="SageMaker Model Monitor jobs run network-isolated in the VPC and encrypt "
                  "traffic between their containers.")
def sagemaker_monitoring_job_network(subject: Subject, config: Mapping[str, Any]
                                     ) -> Iterator[str]:
    network = as_mapping(subject.props.get("networkConfig"))
    for key in ("enableNetworkIsolation", "enableInterContainerTrafficEncryption"):
        if not is_true(network.get(key)):
            yield violation(subject, f"networkConfig.{key}", "is not true",
                            f"set network_config {_snake(key)}=True")
    vpc = as_mapping(network.get("vpcConfig"))
    if not (is_set(vpc, "subnets") and is_set(vpc, "securityGroupIds")):
        yield violation(subject, "networkConfig.vpcConfig", "does not name subnets and "
                        "security groups (the job runs outside the VPC)",
                        "set network_config vpc_config with the private subnets and a "
                        "security group")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


# ------------------------------------------------------------------ MLflow tracking servers

_S3_URI = re.compile(r"^s3://([^/]+)(/|$)")


@stack_rule("sagemaker-mlflow-artifacts-in-stack-bucket", pack="security", severity="high",
            resource_types=[MLFLOW_TRACKING_SERVER, *BUCKET_TYPES],
            description="SageMaker MLflow tracking servers keep their artifacts in a bucket of "
                        "the stack, which the storage rules hold to KMS encryption, a public "
                        "access block, TLS only and versioning.")
def sagemaker_mlflow_artifacts_in_stack_bucket(subjects: Sequence[Subject],
                                               config: Mapping[str, Any]
                                               ) -> Iterator[tuple[Subject, str]]:
    buckets: set[Any] = set()
    for bucket in (s for s in subjects if s.type in BUCKET_TYPES):
        buckets |= bucket_ids(bucket.name, bucket.props)
    fix = ("keep the artifacts in the platform's artifact bucket, "
           "artifact_store_uri=s3://<artifact bucket>/mlflow")
    unknown: UnknownValueError | None = None
    for server in (s for s in subjects if s.type == MLFLOW_TRACKING_SERVER):
        try:
            uri = server.props.get("artifactStoreUri")
        except UnknownValueError as error:  # from a bucket not named yet: decided on deploy
            unknown = unknown or error
            continue
        match = _S3_URI.match(uri) if isinstance(uri, str) else None
        if match is None:
            yield server, violation(server, "artifactStoreUri", f"is {uri!r}, not an s3:// URI "
                                    "of a bucket of this stack", fix)
        elif match.group(1) not in buckets:
            yield server, violation(server, "artifactStoreUri", f"names the bucket "
                                    f"{match.group(1)}, which is not a bucket of this stack "
                                    "(its encryption and public access are not checked)", fix)
    if unknown is not None:
        raise unknown


@rule("sagemaker-mlflow-no-automatic-registration", pack="security", severity="medium",
      resource_types=[MLFLOW_TRACKING_SERVER],
      description="SageMaker MLflow tracking servers do not register MLflow models in the "
                  "SageMaker Model Registry by themselves: models enter it through a promotion "
                  "that applies the quality gate and records the lineage.")
def sagemaker_mlflow_no_automatic_registration(subject: Subject, config: Mapping[str, Any]
                                               ) -> Iterator[str]:
    if is_true(subject.props.get("automaticModelRegistration")):
        yield violation(subject, "automaticModelRegistration", "is true (every model "
                        "registered in MLflow becomes a SageMaker model package, past the "
                        "quality gate)", "set automatic_model_registration=False and promote "
                        "models with `mlscaffold promote`")
