"""SageMaker Feature Store: one feature group whose schema comes from the project's dataset.

:func:`feature_definitions_from_csv` derives the schema from a CSV file (no Pulumi needed);
:class:`FeatureStore` creates the group with a KMS-encrypted offline store (S3 + Glue catalog),
an optional encrypted online store and a least-privilege ingestion role.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_aws as aws

from ._common import child_options, policy_document, resource_tags, token
from ._iam import sagemaker_trust_policy
from ._storage import secure_bucket
from .config import FeatureStoreConfig

__all__ = [
    "FEATURE_NAME_PATTERN",
    "RESERVED_FEATURE_NAMES",
    "FeatureSchema",
    "FeatureStore",
    "FeatureStoreArgs",
    "feature_definitions_from_csv",
]

FeatureType = Literal["String", "Integral", "Fractional"]
FEATURE_TYPES: tuple[str, ...] = ("String", "Integral", "Fractional")
# SageMaker's feature-name pattern; names are also at most 64 characters
FEATURE_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
FEATURE_NAME_MAX = 64
# columns SageMaker adds to the offline store; features may not use these names
RESERVED_FEATURE_NAMES = frozenset({"is_deleted", "write_time", "api_invocation_time"})
MAX_FEATURES = 2500
SAMPLE_ROWS = 1000
RECORD_ID = "record_id"
EVENT_TIME = "event_time"
OFFLINE_STORE_PREFIX = "offline-store"

_INTEGRAL = re.compile(r"^[+-]?\d+$")
_ID_LIKE = re.compile(r"(^id$|_id$|[a-z0-9]Id$)", re.IGNORECASE)


@dataclass(frozen=True)
class FeatureSchema:
    """A feature group's schema derived from a dataset."""

    feature_definitions: tuple[tuple[str, FeatureType], ...]
    """(feature name, type) in column order, then any generated features."""
    record_identifier: str
    """Feature that identifies a record."""
    event_time_feature: str
    """Feature holding the record's event time (ISO-8601 string or epoch seconds)."""
    columns: Mapping[str, str]
    """CSV column -> feature name; ingestion renames columns accordingly and fills the
    generated features (``record_id``, ``event_time``) that have no column."""


def _feature_name(column: str, index: int) -> str:
    """A column name made to fit SageMaker's pattern: runs of other characters become one
    ``_``, leading and trailing ``_`` go, at most 64 characters; empty -> ``feature_<i>``."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", column).strip("_")[:FEATURE_NAME_MAX].rstrip("_")
    return name or f"feature_{index}"


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`... so that it differs (ignoring case) from `taken` and
    from the reserved names."""
    candidate, number = name, 1
    while candidate.lower() in taken or candidate.lower() in RESERVED_FEATURE_NAMES:
        number += 1
        suffix = f"_{number}"
        candidate = name[:FEATURE_NAME_MAX - len(suffix)].rstrip("_") + suffix
    taken.add(candidate.lower())
    return candidate


def _is_fractional(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _is_timestamp(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return "-" in value  # a date, not a bare number


def _infer_type(values: Sequence[str]) -> FeatureType:
    if values and all(_INTEGRAL.match(v) for v in values):
        return "Integral"
    if values and all(_is_fractional(v) for v in values):
        return "Fractional"
    return "String"


def feature_definitions_from_csv(path: Path, label: str) -> FeatureSchema:
    """Derive a feature group schema from the header and the first rows of a CSV file.

    Types: a column whose sampled values are all integers is ``Integral``, all finite numbers
    ``Fractional``, anything else (or empty) ``String``. Names are made to fit SageMaker's
    pattern (:data:`FEATURE_NAME_PATTERN`) and made unique ignoring case.

    The record identifier is the first ID-like column (``id``, ``*_id``, ``*Id``) of type
    String or Integral with unique, complete values, else the first String column with unique,
    complete values, else a generated ``record_id`` feature. The event time is a column named
    ``event_time`` or the first complete String column of ISO-8601 timestamps, else a generated
    ``event_time`` String feature. `label` is kept as a feature (training sets are read from
    the offline store) but is never the identifier. Raises ValueError naming the fix.
    """
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        rows = list(itertools.islice(reader, SAMPLE_ROWS))
    if not header:
        raise ValueError(f"{path}: no header row; the first line must name the columns")
    if label not in header:
        raise ValueError(f"{path}: label column {label!r} is not in the header "
                         f"({', '.join(header)}); set `label` to one of them")
    if len(header) + 2 > MAX_FEATURES:
        raise ValueError(f"{path}: {len(header)} columns; a feature group holds at most "
                         f"{MAX_FEATURES - 2} columns plus identifier and event time")

    taken: set[str] = set()
    names = [_unique(_feature_name(column, i), taken) for i, column in enumerate(header)]
    samples = [[row[i].strip() for row in rows if i < len(row) and row[i].strip()]
               for i in range(len(header))]
    types: list[FeatureType] = [_infer_type(values) for values in samples]

    def complete_and_unique(i: int) -> bool:
        return bool(rows) and len(samples[i]) == len(rows) and len(set(samples[i])) == len(rows)

    candidates = [i for i, column in enumerate(header) if column != label]
    identifier = next(
        (i for i in candidates if _ID_LIKE.search(header[i])
         and types[i] in ("String", "Integral") and complete_and_unique(i)),
        next((i for i in candidates if types[i] == "String" and complete_and_unique(i)), None))
    event_time = next(
        (i for i in candidates if i != identifier and names[i].lower() == EVENT_TIME
         and len(samples[i]) == len(rows)),
        next((i for i in candidates if i != identifier and types[i] == "String" and rows
              and len(samples[i]) == len(rows) and all(map(_is_timestamp, samples[i]))),
             None))
    if event_time is not None and types[event_time] == "Integral":
        types[event_time] = "Fractional"  # epoch seconds; SageMaker takes no Integral times

    definitions: list[tuple[str, FeatureType]] = list(zip(names, types, strict=True))
    record_identifier = names[identifier] if identifier is not None else _unique(RECORD_ID, taken)
    event_time_feature = names[event_time] if event_time is not None else _unique(EVENT_TIME,
                                                                                  taken)
    if identifier is None:
        definitions.append((record_identifier, "String"))
    if event_time is None:
        definitions.append((event_time_feature, "String"))
    return FeatureSchema(tuple(definitions), record_identifier, event_time_feature,
                         dict(zip(header, names, strict=True)))


def _check_definitions(definitions: Sequence[tuple[str, str]], record_identifier: str,
                       event_time_feature: str) -> None:
    types = dict(definitions)
    if len(types) != len(definitions) or len({n.lower() for n in types}) != len(types):
        raise ValueError("feature names must be unique (ignoring case)")
    if len(definitions) > MAX_FEATURES:
        raise ValueError(f"{len(definitions)} features; a feature group holds at most "
                         f"{MAX_FEATURES}")
    for name, type_ in definitions:
        if not FEATURE_NAME_PATTERN.match(name) or name.lower() in RESERVED_FEATURE_NAMES:
            raise ValueError(f"feature name {name!r} is not allowed: use letters, digits and "
                             "single - or _ inside, at most 64 characters, and none of "
                             f"{', '.join(sorted(RESERVED_FEATURE_NAMES))}")
        if type_ not in FEATURE_TYPES:
            raise ValueError(f"feature {name!r} has type {type_!r}; use one of "
                             f"{', '.join(FEATURE_TYPES)}")
    if types.get(record_identifier) not in ("String", "Integral"):
        raise ValueError(f"record identifier {record_identifier!r} must be a String or "
                         "Integral feature of the definitions")
    if types.get(event_time_feature) not in ("String", "Fractional"):
        raise ValueError(f"event time {event_time_feature!r} must be a String (ISO-8601) or "
                         "Fractional (epoch seconds) feature of the definitions")


@dataclass
class FeatureStoreArgs:
    """Inputs of :class:`FeatureStore`; the schema usually comes from
    :func:`feature_definitions_from_csv`."""

    config: FeatureStoreConfig
    """Whether the store is enabled and has an online store."""
    prefix: str
    """Resource-name prefix, ``<project>-<env>``; also the feature group's name."""
    tags: Mapping[str, str]
    """The platform's tags."""
    kms_key_arn: pulumi.Input[str]
    """Platform data key: encrypts the offline and online stores."""
    feature_definitions: Sequence[tuple[str, str]]
    """(name, ``String`` | ``Integral`` | ``Fractional``) of every feature."""
    record_identifier: str
    """Feature identifying a record (String or Integral)."""
    event_time_feature: str
    """Feature holding the event time (String ISO-8601 or Fractional epoch seconds)."""
    noncurrent_version_days: int = 90
    """How long overwritten offline-store objects are kept."""


class FeatureStore(pulumi.ComponentResource):
    """A SageMaker feature group with encrypted offline and online stores.

    The offline store writes Parquet under ``s3://<bucket>/offline-store/`` of a secure bucket
    and registers its table in a Glue database of its own; the online store (when
    ``config.online_store``) is encrypted with the same key. The ingestion role, assumed by
    SageMaker (the feature group and ingestion jobs), may put and get records of this group,
    write its offline-store prefix, use the key and manage tables of its database: nothing more.
    """

    feature_group_name: pulumi.Output[str]
    offline_store_bucket: pulumi.Output[str]
    ingestion_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: FeatureStoreArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.config.enabled:
            raise ValueError("feature_store.enabled is false: do not create a FeatureStore "
                             "(or set feature_store: sagemaker in mlscaffold.yaml)")
        _check_definitions(args.feature_definitions, args.record_identifier,
                           args.event_time_feature)
        super().__init__(token("FeatureStore"), name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        region = aws.get_region_output(opts=invoke).region
        group_name = args.prefix
        table_name = group_name.replace("-", "_")

        def arn(service: str, resource: str) -> pulumi.Output[str]:
            return pulumi.Output.format("arn:{0}:{1}:{2}:{3}:{4}", partition, service, region,
                                        account, resource)

        store = secure_bucket(
            f"{name}-offline-store", parent=self, physical_name=f"{args.prefix}-features",
            kms_key_arn=args.kms_key_arn, tags=args.tags,
            noncurrent_version_days=args.noncurrent_version_days)
        bucket = store.bucket
        database = aws.glue.CatalogDatabase(
            f"{name}-catalog", name=f"{table_name}_features",
            description=f"Offline feature store of {args.prefix}",
            tags=resource_tags(args.tags, name=f"{name}-catalog"), opts=child_options(self))

        role = aws.iam.Role(
            f"{name}-ingestion-role", assume_role_policy=sagemaker_trust_policy(self),
            description=f"Feature group {group_name}: offline-store writes and ingestion",
            tags=resource_tags(args.tags, name=f"{name}-ingestion-role"),
            opts=child_options(self))
        offline_objects = pulumi.Output.concat(bucket.arn, f"/{OFFLINE_STORE_PREFIX}/*")
        policy = aws.iam.RolePolicy(
            f"{name}-ingestion-policy", role=role.id, policy=policy_document([
                {"Sid": "Records", "Effect": "Allow",
                 "Action": ["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord",
                            "sagemaker:GetRecord"],
                 "Resource": arn("sagemaker", f"feature-group/{group_name}")},
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
            f"{name}-group", feature_group_name=group_name,
            description=f"Features of {args.prefix}",
            record_identifier_feature_name=args.record_identifier,
            event_time_feature_name=args.event_time_feature, role_arn=role.arn,
            feature_definitions=[aws.sagemaker.FeatureGroupFeatureDefinitionArgs(
                feature_name=feature, feature_type=type_)
                for feature, type_ in args.feature_definitions],
            offline_store_config=aws.sagemaker.FeatureGroupOfflineStoreConfigArgs(
                s3_storage_config=aws.sagemaker.FeatureGroupOfflineStoreConfigS3StorageConfigArgs(
                    s3_uri=pulumi.Output.concat("s3://", bucket.bucket, "/",
                                                OFFLINE_STORE_PREFIX),
                    kms_key_id=args.kms_key_arn),
                data_catalog_config=aws.sagemaker.
                FeatureGroupOfflineStoreConfigDataCatalogConfigArgs(
                    catalog="AwsDataCatalog", database=database.name, table_name=table_name),
                disable_glue_table_creation=False),
            online_store_config=online,
            tags=resource_tags(args.tags, name=f"{name}-group"),
            # SageMaker checks the role's access to the bucket when creating the group
            opts=child_options(self, depends_on=[policy, *store.configuration]))

        self.feature_group_name = group.feature_group_name
        self.offline_store_bucket = bucket.bucket
        self.ingestion_role_arn = role.arn
        self.register_outputs({
            "feature_group_name": self.feature_group_name,
            "offline_store_bucket": self.offline_store_bucket,
            "ingestion_role_arn": self.ingestion_role_arn,
        })
