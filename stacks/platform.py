"""MlPlatform: the whole ML platform of one environment, composed from one validated config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import child_options, policy_document, resource_tags, token
from ._storage import secure_bucket
from .audit import AuditTrail, AuditTrailArgs
from .cluster import GpuCluster, GpuClusterArgs
from .config import PlatformConfig
from .feature_schema import feature_definitions_from_csv
from .feature_store import FeatureStore, FeatureStoreArgs
from .monitoring import Monitoring, MonitoringArgs, alert_topic_name
from .network import INTERFACE_ENDPOINT_SERVICES, Network, NetworkArgs
from .regions import REGIONS
from .registry import ModelRegistry, ModelRegistryArgs
from .serving import Serving, ServingArgs, deployable_model_key
from .tracking import TrackingServer, TrackingServerArgs
from .training import Training, TrainingArgs
from .training_data import TrainingData, TrainingDataArgs

__all__ = ["MlPlatform", "MlPlatformArgs"]


@dataclass
class MlPlatformArgs:
    """Inputs of :class:`MlPlatform`."""

    #: the environment's validated config (:func:`~mlscaffold.stacks.config.platform_config`)
    config: PlatformConfig
    #: the training data, whose columns become the feature group's features
    dataset: Path | None = None


def _data_key_policy(config: PlatformConfig) -> pulumi.Output[str]:
    """Key policy of the platform's data key: IAM in this account, plus the AWS services
    that encrypt with it on the platform's behalf (CloudWatch Logs, alarms publishing to the
    encrypted SNS topic) and, if configured, read-only use by the production account."""
    identity = aws.get_caller_identity_output()
    partition = aws.get_partition_output().partition
    account = identity.account_id
    root = pulumi.Output.format("arn:{0}:iam::{1}:root", partition, account)
    statements: list[dict] = [
        {"Sid": "AccountIam", "Effect": "Allow", "Principal": {"AWS": root},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "CloudWatchLogs", "Effect": "Allow",
         "Principal": {"Service": f"logs.{config.region}.amazonaws.com"},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                    "kms:Describe*"],
         "Resource": "*",
         "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": pulumi.Output.format(
             "arn:{0}:logs:{1}:{2}:log-group:*", partition, config.region, account)}}},
        # for the alert topic only, from this account's alarms (AWS SNS docs, "Key management":
        # a service publishing to an encrypted topic, limited by aws:SourceArn and the topic's
        # encryption context)
        {"Sid": "CloudWatchAlarmsToSns", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
         "Condition": {
             "ArnLike": {"aws:SourceArn": pulumi.Output.format(
                 "arn:{0}:cloudwatch:{1}:{2}:alarm:*", partition, config.region, account)},
             "StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": pulumi.Output.format(
                 "arn:{0}:sns:{1}:{2}:{3}", partition, config.region, account,
                 alert_topic_name(config.prefix))}}},
    ]
    if config.registry.prod_account_id:
        statements.append({
            "Sid": "ProductionAccountReads", "Effect": "Allow",
            "Principal": {"AWS": pulumi.Output.format(
                "arn:{0}:iam::{1}:root", partition, config.registry.prod_account_id)},
            "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"})
    return policy_document(statements)


class MlPlatform(pulumi.ComponentResource):
    """Network, GPU cluster, model registry, feature store, serving, monitoring, the audit
    trail of the data buckets and, if asked for, an MLflow tracking server.

    Every component shares one KMS data key (rotated yearly) and the platform's tags
    (project, env, owner, cost-center). Serving and feature store are built only when the
    spec asks for them.
    """

    data_key_arn: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    cluster_name: pulumi.Output[str] | None
    cluster: pulumi.Output[dict[str, Any]] | None
    """What the in-cluster program (infra/cluster) reads: how to reach the cluster, the IRSA
    roles of its workloads, and with KServe the image, the model and the alert topic."""
    artifact_bucket: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    model_package_group: pulumi.Output[str]
    alert_topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: MlPlatformArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        config = args.config
        # before anything is registered: a deployment without a model version changes nothing
        model_key = deployable_model_key(config.serving, config.environment) \
            if config.serving.platform != "none" else None
        super().__init__(token("MlPlatform"), name, None, opts)
        tags = config.tags
        retention = config.monitoring.log_retention_days

        key = aws.kms.Key(
            f"{name}-data-key", description=f"Data key of the {config.prefix} ML platform",
            enable_key_rotation=True, deletion_window_in_days=30,
            policy=_data_key_policy(config), tags=resource_tags(tags, f"{name}-data-key"),
            opts=child_options(self, protect=config.protect))
        aws.kms.Alias(f"{name}-data-key-alias", name=f"alias/{config.prefix}-data",
                      target_key_id=key.key_id, opts=child_options(self))

        # the cluster (and what only its nodes need: NAT, interface endpoints) exists only when
        # something runs on it
        with_cluster = config.cluster.enabled
        cluster_name = f"{config.prefix}-eks"
        network = Network(f"{name}-network", NetworkArgs(
            config=config.network, tags=tags, region=config.region,
            cluster_name=cluster_name if with_cluster else None, kms_key_arn=key.arn,
            log_retention_days=retention, internet_egress=with_cluster,
            interface_endpoints=INTERFACE_ENDPOINT_SERVICES if with_cluster else (),
            exclude_zone_ids=REGIONS[config.region].eks_unsupported_zone_ids
            if with_cluster else ()), child_options(self))
        cluster = GpuCluster(f"{name}-cluster", GpuClusterArgs(
            config=config.cluster, tags=tags, region=config.region, vpc_id=network.vpc_id,
            vpc_cidr=network.vpc_cidr, private_subnet_ids=network.private_subnet_ids,
            cluster_name=cluster_name, prefix=config.prefix, log_retention_days=retention,
            protect=config.protect), child_options(self)) if with_cluster else None
        registry = ModelRegistry(f"{name}-registry", ModelRegistryArgs(
            config=config.registry, prefix=config.prefix, tags=tags, kms_key_arn=key.arn,
            protect=config.protect), child_options(self))

        # what `mlscaffold train --on sagemaker|eks` needs: roles, the launcher policy
        training = Training(f"{name}-training", TrainingArgs(
            config=config.training, prefix=config.prefix, tags=tags, region=config.region,
            kms_key_arn=key.arn, artifact_bucket_name=registry.artifact_bucket_name,
            repository_arn=registry.repository_arn, repository_url=registry.repository_url,
            cluster_name=cluster.cluster_name if cluster else None), child_options(self))
        # a team's MLflow tracking server, when asked for (projects log to their own store)
        tracking = TrackingServer(f"{name}-tracking", TrackingServerArgs(
            config=config.tracking, prefix=config.prefix, tags=tags,
            artifact_bucket_name=registry.artifact_bucket_name,
            artifact_bucket_arn=registry.artifact_bucket_arn, kms_key_arn=key.arn),
            child_options(self)) if config.tracking.mlflow_server else None
        self.mlflow_tracking_server_arn = tracking.tracking_server_arn if tracking else None

        self.feature_group_name: pulumi.Output[str] | None = None
        self.feature_store_settings: pulumi.Output[dict] | None = None
        self.training_data: pulumi.Output[dict] | None = None
        feature_store = None
        if config.feature_store.enabled:
            if args.dataset is None:
                raise ValueError("the feature store needs the dataset whose columns it stores; "
                                 "pass MlPlatformArgs(dataset=...)")
            schema = feature_definitions_from_csv(args.dataset, config.label, config.features)
            # `pulumi up` and `pulumi preview` show what was declared and what inferred
            pulumi.log.info(f"feature group schema from {args.dataset.name} "
                            f"(`mlscaffold features schema` prints it as YAML):\n"
                            f"{schema.describe()}", resource=self)
            feature_store = FeatureStore(f"{name}-features", FeatureStoreArgs(
                config=config.feature_store, prefix=config.prefix, tags=tags,
                kms_key_arn=key.arn, schema=schema, protect=config.protect),
                child_options(self))
            self.feature_group_name = feature_store.feature_group_name
            self.feature_store_settings = feature_store.ingestion_settings
            # `mlscaffold train --data feature-store`: the Athena workgroup and query policy
            self.training_data = TrainingData(f"{name}-training-data", TrainingDataArgs(
                prefix=config.prefix, tags=tags, region=config.region, kms_key_arn=key.arn,
                artifact_bucket_name=registry.artifact_bucket_name,
                offline_store_bucket=feature_store.offline_store_bucket,
                feature_group_name=feature_store.feature_group_name,
                database_name=feature_store.database_name,
                scan_limit_gb=config.training.query_scan_limit_gb),
                child_options(self)).settings

        serving_config = config.serving
        sagemaker = serving_config.platform == "sagemaker"
        kserve = serving_config.platform == "kserve"
        # captured requests and responses: a bucket of their own, which the production account
        # (a reader of the registry's models) cannot read
        capture = secure_bucket(
            f"{name}-capture", parent=self, physical_name=f"{config.prefix}-capture",
            kms_key_arn=key.arn, tags=tags, noncurrent_version_days=retention,
            protect=config.protect) if sagemaker else None
        serving = None
        if serving_config.platform != "none":
            gpu_pool = config.cluster.gpu_pools[0]
            serving = Serving(f"{name}-serving", ServingArgs(
                config=serving_config, monitoring=config.monitoring, prefix=config.prefix,
                tags=tags, kms_key_arn=key.arn, model_name=config.project,
                image_uri=pulumi.Output.concat(registry.repository_url, ":",
                                               serving_config.image_tag),
                model_data_bucket=registry.artifact_bucket_name,
                model_data_key=model_key,
                repository_arn=registry.repository_arn,
                capture_bucket_name=capture.bucket.bucket if capture else None,
                private_subnet_ids=network.private_subnet_ids, vpc_id=network.vpc_id,
                vpc_cidr=network.vpc_cidr, s3_prefix_list_id=network.s3_prefix_list_id,
                gpu_node_group=gpu_pool,
                irsa_trust_policy=cluster.irsa_trust_policy if cluster else None),
                child_options(self))

        # a cluster is watched by KServe's Prometheus (in-cluster program) or, serving
        # anything else, by the CloudWatch Observability add-on once the system nodes exist
        # (Karpenter adds GPU nodes later, and the add-on's agents come to them)
        monitoring = Monitoring(f"{name}-monitoring", MonitoringArgs(
            config=config.monitoring, serving=serving_config, prefix=config.prefix, tags=tags,
            kms_key_arn=key.arn, region=config.region,
            endpoint_name=serving.endpoint_name if sagemaker and serving else None,
            artifact_bucket_name=registry.artifact_bucket_name if sagemaker else None,
            capture_bucket_name=capture.bucket.bucket if capture else None,
            private_subnet_ids=network.private_subnet_ids if sagemaker else None,
            vpc_id=network.vpc_id if sagemaker else None,
            security_group_ids=serving.security_group_ids if sagemaker and serving else None,
            cluster_name=cluster.cluster_name if cluster and not kserve else None,
            node_groups=[cluster.system_node_group] if cluster and not kserve else (),
            kubernetes_version=config.cluster.kubernetes_version,
            always_on_nodes=config.cluster.system_node_group.min_size > 0,
            irsa_trust_policy=cluster.irsa_trust_policy if cluster else None),
            child_options(self))

        # access logs and data events of every data bucket
        data_buckets = {"artifacts": registry.artifact_bucket_name}
        if capture:
            data_buckets["capture"] = capture.bucket.bucket
        if feature_store:
            data_buckets["features"] = feature_store.offline_store_bucket
        AuditTrail(f"{name}-audit", AuditTrailArgs(
            prefix=config.prefix, tags=tags, region=config.region, buckets=data_buckets,
            log_retention_days=retention, protect=config.protect), child_options(self))

        self.data_key_arn = key.arn
        self.vpc_id = network.vpc_id
        self.cluster_name = cluster.cluster_name if cluster else None
        self.cluster = _cluster_export(cluster, serving if kserve else None, monitoring)
        self.artifact_bucket = registry.artifact_bucket_name
        self.repository_url = registry.repository_url
        self.model_package_group = registry.model_package_group_name
        self.alert_topic_arn = monitoring.alert_topic_arn
        self.drift_baseline = monitoring.drift_baseline
        self.training = training.settings
        self.endpoint_name = serving.endpoint_name if serving else None
        # the model version served, and (SageMaker) what the endpoint runs, for the deploy's
        # `mlscaffold endpoint prepare|verify|cleanup`
        self.model_key = serving.model_key if serving else None
        self.endpoint = serving.deployment if serving else None
        self.register_outputs(self.exports())

    def exports(self) -> dict[str, pulumi.Output]:
        """The stack outputs a project exports (None values left out)."""
        outputs = {
            "vpc_id": self.vpc_id,
            "cluster_name": self.cluster_name,
            "cluster": self.cluster,
            "artifact_bucket": self.artifact_bucket,
            "repository_url": self.repository_url,
            "model_package_group": self.model_package_group,
            "alert_topic_arn": self.alert_topic_arn,
            "feature_group": self.feature_group_name,
            # region and schema of the feature group, for `mlscaffold features ingest`
            "feature_store": self.feature_store_settings,
            "endpoint_name": self.endpoint_name,
            "endpoint": self.endpoint,
            "model_key": self.model_key,
            "drift_baseline": self.drift_baseline,
            # what `mlscaffold train --on sagemaker|eks` starts runs with
            "training": self.training,
            # tracking_uri of mlscaffold.yaml, for train, evaluate and list
            "mlflow_tracking_server_arn": self.mlflow_tracking_server_arn,
            # the Athena workgroup of `mlscaffold train --data feature-store`
            "training_data": self.training_data,
        }
        return {k: v for k, v in outputs.items() if v is not None}


def _cluster_export(cluster: GpuCluster | None, kserve: Serving | None,
                    monitoring: Monitoring) -> pulumi.Output[dict[str, Any]] | None:
    """The stack output ``cluster``: the in-cluster program's only input from this stack."""
    if cluster is None:
        return None
    roles: dict[str, pulumi.Input[str]] = {}
    extra: dict[str, Any] = {}
    if kserve is not None and monitoring.alertmanager_role_arn is not None:
        roles["predictor"] = kserve.predictor_role_arn
        roles["alertmanager"] = monitoring.alertmanager_role_arn
        extra = {"serving": {"image_uri": kserve.image_uri, "model_url": kserve.model_url},
                 "alert_topic_arn": monitoring.alert_topic_arn}
    return pulumi.Output.all(cluster.connection, roles, extra).apply(
        lambda values: {**values[0], "roles": values[1], **values[2]})
