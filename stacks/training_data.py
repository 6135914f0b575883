"""Training data from the feature store: what `mlscaffold train --data feature-store` needs.

- An Athena workgroup of the platform (``<prefix>-training-data``, engine version 3) whose
  configuration is enforced: every query's results go to ``training/queries/`` of the
  artifact bucket, encrypted with the platform key (SSE_KMS), in a bucket the account must own,
  whatever the client asks for; a query scanning more than ``training.query_scan_limit_gb`` is
  cancelled (Athena bills per byte scanned, and a query over a grown offline store scans it
  all).
- A query policy, for the people and the CI role that start runs (attach it beside the
  training launcher policy): queries in this workgroup only; the feature group's description,
  its Glue database and table only; reads of the offline store's prefix and of the results
  prefix, writes of the results prefix; the platform key.

The training role needs nothing new: the command uploads the query's results, split into the
two channels, to ``training/data/<sha256>/``, which the role reads already
(:mod:`.training`); it never reads ``training/queries/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import child_options, policy_document, resource_tags, token
from .constants import ATHENA_BYTES_PER_GB
from .feature_store import OFFLINE_STORE_PREFIX
from .training_layout import TRAINING_QUERIES_PREFIX

__all__ = ["ATHENA_ENGINE_VERSION", "TrainingData", "TrainingDataArgs"]

# Athena engine 3 (Trino functions: xxhash64, from_iso8601_timestamp, from_big_endian_64)
ATHENA_ENGINE_VERSION = "Athena engine version 3"


@dataclass
class TrainingDataArgs:
    """Inputs of :class:`TrainingData`."""

    prefix: str
    """Resource-name prefix, ``<project>-<env>``; the workgroup is ``<prefix>-training-data``."""
    tags: Mapping[str, str]
    """The platform's tags."""
    region: str
    """The platform's region."""
    kms_key_arn: pulumi.Input[str]
    """The platform's data key: the offline store's and the query results'."""
    artifact_bucket_name: pulumi.Input[str]
    """The bucket of ``training/queries/`` (and of the channels the command uploads)."""
    offline_store_bucket: pulumi.Input[str]
    """The feature group's offline store bucket (Parquet under ``offline-store/``)."""
    feature_group_name: pulumi.Input[str]
    """The feature group; its Glue table has the same name with ``_`` for ``-``."""
    database_name: pulumi.Input[str]
    """The Glue database of the offline store."""
    scan_limit_gb: int
    """The most one query may scan, in GB (the workgroup's BytesScannedCutoffPerQuery)."""


class TrainingData(pulumi.ComponentResource):
    """The workgroup and query policy of feature-store training runs (see the module).

    :attr:`settings` is the stack output ``training_data``.
    """

    workgroup_name: pulumi.Output[str]
    launcher_policy_arn: pulumi.Output[str]
    settings: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: TrainingDataArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(token("TrainingData"), name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        def arn(service: str, resource: pulumi.Input[str]) -> pulumi.Output[str]:
            return pulumi.Output.format("arn:{0}:{1}:{2}:{3}:{4}", partition, service,
                                        args.region, account, resource)

        results_uri = pulumi.Output.concat("s3://", args.artifact_bucket_name, "/",
                                           TRAINING_QUERIES_PREFIX, "/")
        workgroup = aws.athena.Workgroup(
            f"{name}-workgroup", name=f"{args.prefix}-training-data",
            description=f"Training data of {args.prefix} from its feature store "
                        "(mlscaffold train --data feature-store)",
            state="ENABLED",
            configuration=aws.athena.WorkgroupConfigurationArgs(
                # the workgroup's settings override the client's (Athena docs, "Override
                # client-side settings"): results always land here, KMS-encrypted
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                # at least 10 MB (10^7 bytes: the API model of WorkGroupConfiguration); changed
                # in place by UpdateWorkGroup (WorkGroupConfigurationUpdates has the field)
                bytes_scanned_cutoff_per_query=args.scan_limit_gb * ATHENA_BYTES_PER_GB,
                engine_version=aws.athena.WorkgroupConfigurationEngineVersionArgs(
                    selected_engine_version=ATHENA_ENGINE_VERSION),
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=results_uri,
                    expected_bucket_owner=account,
                    encryption_configuration=aws.athena.
                    WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS", kms_key_arn=args.kms_key_arn))),
            tags=resource_tags(args.tags, name=f"{name}-workgroup"), opts=child_options(self))

        artifacts = pulumi.Output.format("arn:{0}:s3:::{1}", partition,
                                         args.artifact_bucket_name)
        offline = pulumi.Output.format("arn:{0}:s3:::{1}", partition, args.offline_store_bucket)
        table = pulumi.Output.from_input(args.feature_group_name).apply(
            lambda group: group.replace("-", "_"))
        policy = aws.iam.Policy(
            f"{name}-launcher", description=f"Query {args.prefix}'s feature store for training "
                                            "runs (mlscaffold train --data feature-store)",
            policy=policy_document([
                {"Sid": "Queries", "Effect": "Allow",
                 "Action": ["athena:StartQueryExecution", "athena:GetQueryExecution",
                            "athena:GetQueryResults", "athena:StopQueryExecution",
                            "athena:GetWorkGroup"],
                 "Resource": arn("athena", pulumi.Output.concat("workgroup/",
                                                                workgroup.name))},
                {"Sid": "FeatureGroup", "Effect": "Allow",
                 "Action": "sagemaker:DescribeFeatureGroup",
                 "Resource": arn("sagemaker", pulumi.Output.concat(
                     "feature-group/", args.feature_group_name))},
                # Athena reads the table's metadata as the caller (Athena docs, "Identity and
                # access management in Athena")
                {"Sid": "CatalogTable", "Effect": "Allow",
                 "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions",
                            "glue:BatchGetPartition"],
                 "Resource": [arn("glue", "catalog"),
                              pulumi.Output.concat(arn("glue", "database/"),
                                                   args.database_name),
                              pulumi.Output.concat(arn("glue", "table/"), args.database_name,
                                                   "/", table)]},
                {"Sid": "ReadOfflineStore", "Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": pulumi.Output.concat(offline, f"/{OFFLINE_STORE_PREFIX}/*")},
                {"Sid": "ListOfflineStore", "Effect": "Allow", "Action": "s3:ListBucket",
                 "Resource": offline, "Condition": {"StringLike": {
                     "s3:prefix": f"{OFFLINE_STORE_PREFIX}/*"}}},
                # the results, written and read as the caller (AWS re:Post, "athena-access-iam":
                # the result bucket's object and multipart-upload actions)
                {"Sid": "QueryResults", "Effect": "Allow",
                 "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload",
                            "s3:ListMultipartUploadParts"],
                 "Resource": pulumi.Output.concat(artifacts, f"/{TRAINING_QUERIES_PREFIX}/*")},
                {"Sid": "ListQueryResults", "Effect": "Allow", "Action": "s3:ListBucket",
                 "Resource": artifacts, "Condition": {"StringLike": {
                     "s3:prefix": f"{TRAINING_QUERIES_PREFIX}/*"}}},
                {"Sid": "BucketLocations", "Effect": "Allow", "Action": "s3:GetBucketLocation",
                 "Resource": [artifacts, offline]},
                {"Sid": "DataKey", "Effect": "Allow",
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                 "Resource": args.kms_key_arn},
            ]),
            tags=resource_tags(args.tags, name=f"{name}-launcher"), opts=child_options(self))

        self.workgroup_name = workgroup.name
        self.launcher_policy_arn = policy.arn
        self.settings = pulumi.Output.from_input({
            "workgroup": workgroup.name,
            "results_uri": results_uri,
            "database": args.database_name,
            "table": table,
            "launcher_policy_arn": policy.arn,
            "scan_limit_gb": args.scan_limit_gb,
        })
        self.register_outputs({"workgroup_name": self.workgroup_name,
                               "launcher_policy_arn": self.launcher_policy_arn,
                               "settings": self.settings})
