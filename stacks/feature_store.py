"""SageMaker Feature Store: one feature group whose schema comes from the project's dataset.

The schema (:mod:`.feature_schema`, no Pulumi) is derived from the CSV and the spec's
declarations; :class:`FeatureStore` creates the group with a KMS-encrypted offline store
(S3 + Glue catalog), an optional encrypted online store and a least-privilege ingestion role.

Every input that forces a new feature group (the feature definitions, record identifier, event
time, stores, role, description) goes into the group's name as a short hash, and so into its
Glue table's name: a changed schema makes a group of another name, which Pulumi creates before
it deletes the old one, and never collides with the old group or the Glue table SageMaker
leaves behind.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import child_options, fitted, policy_document, resource_tags, token
from ._iam import sagemaker_trust_policy
from ._storage import secure_bucket
from .config import FeatureStoreConfig
from .feature_schema import (
    FEATURE_NAME_PATTERN,
    RESERVED_FEATURE_NAMES,
    FeatureSchema,
    check_definitions,
    feature_definitions_from_csv,
)

__all__ = [
    "FEATURE_GROUP_NAME_MAX",
    "FEATURE_GROUP_NAME_PATTERN",
    "FEATURE_NAME_PATTERN",
    "RESERVED_FEATURE_NAMES",
    "FeatureSchema",
    "FeatureStore",
    "FeatureStoreArgs",
    "feature_definitions_from_csv",
    "feature_group_name",
]

OFFLINE_STORE_PREFIX = "offline-store"
TABLE_FORMAT = "Glue"  # the provider's default, spelled out because it is part of the hash
# pulumi-aws validates group names with hyphens only (no `_`), stricter than the API's
# pattern; both allow 64 characters (hashicorp/terraform-provider-aws, sagemaker/feature_group.go)
FEATURE_GROUP_NAME_PATTERN = re.compile(r"^[0-9A-Za-z](-*[0-9A-Za-z]){0,63}$")
FEATURE_GROUP_NAME_MAX = 64
_HASH_LENGTH = 8


def _name_base(prefix: str) -> str:
    """The stack's prefix as the start of a group name: lower case (SageMaker ARNs of some
    resources are lower-cased, IAM matches ARNs by case), runs of other characters as one `-`,
    cut to leave room for ``-<hash>``."""
    base = re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-")
    return base[:FEATURE_GROUP_NAME_MAX - _HASH_LENGTH - 1].rstrip("-") or "features"


def feature_group_name(prefix: str, replacement_inputs: Any) -> str:
    """``<prefix>-<hash>``: the hash of every input whose change replaces the group, so a
    replacement gets a new name. At most 64 characters, lower case, letters, digits and `-`."""
    digest = hashlib.sha256(json.dumps(replacement_inputs, sort_keys=True,
                                       separators=(",", ":")).encode()).hexdigest()
    return f"{_name_base(prefix)}-{digest[:_HASH_LENGTH]}"


@dataclass
class FeatureStoreArgs:
    """Inputs of :class:`FeatureStore`."""

    config: FeatureStoreConfig
    """Whether the store is enabled and has an online store."""
    prefix: str
    """Resource-name prefix, ``<project>-<env>``; the feature group's name starts with it."""
    tags: Mapping[str, str]
    """The platform's tags."""
    kms_key_arn: pulumi.Input[str]
    """Platform data key: encrypts the offline and online stores."""
    schema: FeatureSchema
    """The group's features, record identifier and event time, usually from
    :func:`feature_definitions_from_csv`."""
    noncurrent_version_days: int = 90
    """How long overwritten offline-store objects are kept."""
    protect: bool = False
    """Pulumi protect on the offline-store bucket."""


class FeatureStore(pulumi.ComponentResource):
    """A SageMaker feature group with encrypted offline and online stores.

    The offline store writes Parquet under ``s3://<bucket>/offline-store/`` of a secure bucket
    and registers its table (named like the group) in a Glue database of its own; the online
    store (when ``config.online_store``) is encrypted with the same key. The ingestion role,
    assumed by SageMaker (the feature group and ingestion jobs), may put and get records of
    this group, write its offline-store prefix, use the key and manage tables of its database:
    nothing more.

    The group's name is ``<prefix>-<hash of what forces a replacement>`` (see
    :func:`feature_group_name`): changing the schema creates a new, empty group beside the old
    one, then deletes the old one; its records must be ingested again.
    """

    feature_group_name: pulumi.Output[str]
    offline_store_bucket: pulumi.Output[str]
    database_name: pulumi.Output[str]
    """The Glue database of the offline store's table."""
    ingestion_role_arn: pulumi.Output[str]
    ingestion_settings: pulumi.Output[dict[str, Any]]
    """What ingestion needs besides the group's name: its region and the schema
    (:meth:`FeatureSchema.as_dict` plus ``region``)."""

    def __init__(self, name: str, args: FeatureStoreArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.config.enabled:
            raise ValueError("feature_store.enabled is false: do not create a FeatureStore "
                             "(or set feature_store: sagemaker in mlscaffold.yaml)")
        schema = args.schema
        check_definitions(schema.feature_definitions, schema.record_identifier,
                          schema.event_time_feature)
        super().__init__(token("FeatureStore"), name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        region = aws.get_region_output(opts=invoke).region
        base = _name_base(args.prefix)

        def arn(service: str, resource: pulumi.Input[str]) -> pulumi.Output[str]:
            return pulumi.Output.format("arn:{0}:{1}:{2}:{3}:{4}", partition, service, region,
                                        account, resource)

        store = secure_bucket(
            f"{name}-offline-store", parent=self, physical_name=f"{args.prefix}-features",
            kms_key_arn=args.kms_key_arn, tags=args.tags,
            noncurrent_version_days=args.noncurrent_version_days, protect=args.protect)
        bucket = store.bucket
        database = aws.glue.CatalogDatabase(
            f"{name}-catalog", name=f"{base.replace('-', '_')}_features",
            description=f"Offline feature store of {args.prefix}",
            tags=resource_tags(args.tags, name=f"{name}-catalog"), opts=child_options(self))

        role = aws.iam.Role(
            f"{name}-ingestion-role", name=fitted(aws.iam.Role, f"{name}-ingestion-role"),
            assume_role_policy=sagemaker_trust_policy(self),
            description=f"Feature groups of {args.prefix}: offline-store writes and ingestion",
            tags=resource_tags(args.tags, name=f"{name}-ingestion-role"),
            opts=child_options(self))

        # every input of the group that forces a replacement (ForceNew in the provider's
        # schema: hashicorp/terraform-provider-aws sagemaker/feature_group.go; adding a feature
        # replaces the group too, hashicorp/terraform-provider-aws#36784); tags and throughput
        # update in place and stay out
        description = f"Features of {args.prefix}"
        replacement = {
            "description": description,
            "record_identifier": schema.record_identifier,
            "event_time": schema.event_time_feature,
            "features": [list(d) for d in schema.feature_definitions],
            "online_store": args.config.online_store,
            "offline_store": {"prefix": OFFLINE_STORE_PREFIX, "catalog": "AwsDataCatalog",
                              "table_format": TABLE_FORMAT, "glue_table": True},
        }
        group_name = pulumi.Output.all(
            role=role.arn, key=args.kms_key_arn, bucket=bucket.bucket, database=database.name,
        ).apply(lambda resolved: feature_group_name(args.prefix, {**replacement, **resolved}))
        # SageMaker leaves a deleted group's Glue table in place (API DeleteFeatureGroup): the
        # table is named after the group, so a replacement never meets the old one
        table_name = group_name.apply(lambda group: group.replace("-", "_"))

        offline_objects = pulumi.Output.concat(bucket.arn, f"/{OFFLINE_STORE_PREFIX}/*")
        policy = aws.iam.RolePolicy(
            f"{name}-ingestion-policy", role=role.id, policy=policy_document([
                {"Sid": "Records", "Effect": "Allow",
                 "Action": ["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord",
                            "sagemaker:GetRecord"],
                 "Resource": arn("sagemaker", pulumi.Output.concat("feature-group/",
                                                                   group_name))},
                {"Sid": "OfflineStoreObjects", "Effect": "Allow",
                 "Action": ["s3:PutObject", "s3:PutObjectAcl", "s3:GetObject"],
                 "Resource": offline_objects},
                {"Sid": "OfflineStoreBucket", "Effect": "Allow", "Action": "s3:GetBucketAcl",
                 "Resource": bucket.arn},
                {"Sid": "OfflineStoreList", "Effect": "Allow", "Action": "s3:ListBucket",
                 "Resource": bucket.arn,
                 "Condition": {"StringLike": {"s3:prefix": f"{OFFLINE_STORE_PREFIX}/*"}}},
                {"Sid": "Key", "Effect": "Allow",
                 "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey",
                            "kms:DescribeKey"],
                 "Resource": args.kms_key_arn},
                {"Sid": "CatalogTables", "Effect": "Allow",
                 "Action": ["glue:GetDatabase", "glue:GetTable", "glue:CreateTable",
                            "glue:UpdateTable"],
                 "Resource": [arn("glue", "catalog"),
                              pulumi.Output.concat(arn("glue", "database/"), database.name),
                              pulumi.Output.concat(arn("glue", "table/"), database.name, "/*")]},
            ]),
            opts=child_options(self))

        online = None
        if args.config.online_store:
            online = aws.sagemaker.FeatureGroupOnlineStoreConfigArgs(
                enable_online_store=True,
                security_config=aws.sagemaker.FeatureGroupOnlineStoreConfigSecurityConfigArgs(
                    kms_key_id=args.kms_key_arn))
        group = aws.sagemaker.FeatureGroup(
            f"{name}-group", feature_group_name=group_name, description=description,
            record_identifier_feature_name=schema.record_identifier,
            event_time_feature_name=schema.event_time_feature, role_arn=role.arn,
            feature_definitions=[aws.sagemaker.FeatureGroupFeatureDefinitionArgs(
                feature_name=feature, feature_type=type_)
                for feature, type_ in schema.feature_definitions],
            offline_store_config=aws.sagemaker.FeatureGroupOfflineStoreConfigArgs(
                s3_storage_config=aws.sagemaker.FeatureGroupOfflineStoreConfigS3StorageConfigArgs(
                    s3_uri=pulumi.Output.concat("s3://", bucket.bucket, "/",
                                                OFFLINE_STORE_PREFIX),
                    kms_key_id=args.kms_key_arn),
                data_catalog_config=aws.sagemaker.
                FeatureGroupOfflineStoreConfigDataCatalogConfigArgs(
                    catalog="AwsDataCatalog", database=database.name, table_name=table_name),
                disable_glue_table_creation=False, table_format=TABLE_FORMAT),
            online_store_config=online,
            tags=resource_tags(args.tags, name=f"{name}-group"),
            # SageMaker checks the role's access to the bucket when creating the group; the
            # default create-before-delete makes a replacement's new group first
            opts=child_options(self, depends_on=[policy, *store.configuration]))

        self.feature_group_name = group.feature_group_name
        self.offline_store_bucket = bucket.bucket
        self.database_name = database.name
        self.ingestion_role_arn = role.arn
        settings = schema.as_dict()
        self.ingestion_settings = region.apply(lambda value: {"region": value, **settings})
        self.register_outputs({
            "feature_group_name": self.feature_group_name,
            "offline_store_bucket": self.offline_store_bucket,
            "database_name": self.database_name,
            "ingestion_role_arn": self.ingestion_role_arn,
            "ingestion_settings": self.ingestion_settings,
        })
