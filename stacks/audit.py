"""AuditTrail: a record of every request to the platform's data buckets.

Each data bucket (models and artifacts, captured inference data, offline features) delivers its
S3 server access logs to a log bucket of the stack, and a CloudTrail trail records the buckets'
data events (object-level reads and writes) into the same log bucket. CloudWatch Logs is not
involved: the logs stay in S3, where Athena can query them.

What AWS requires, and why the resources look as they do:

- S3 server access logs: the destination bucket is in the same account and region, may use
  default encryption only with SSE-S3, and grants ``logging.s3.amazonaws.com`` s3:PutObject in
  its bucket policy (ACLs are disabled), limited by aws:SourceArn to the logged buckets and by
  aws:SourceAccount to this account. The log bucket logs nothing itself (AWS S3 User Guide,
  "Enabling Amazon S3 server access logging").
- CloudTrail: the bucket policy lets ``cloudtrail.amazonaws.com`` read the bucket ACL and put
  objects under ``<prefix>/AWSLogs/<account>/`` with the bucket-owner-full-control ACL, both for
  this trail only (aws:SourceArn); the trail's log files are encrypted with a key of their own
  whose policy lets CloudTrail generate data keys for trails of this account, again for this
  trail only (AWS CloudTrail User Guide, "Amazon S3 bucket policy for CloudTrail" and
  "Configure AWS KMS key policies for CloudTrail"). Log file validation signs hourly digests.
- The trail records data events only for the listed buckets (advanced event selectors), never
  for the log bucket: recording the trail's own deliveries would never end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import child_options, policy_document, resource_tags, token
from ._storage import secure_bucket
from .constants import S3_OBJECT

__all__ = ["ACCESS_LOG_PREFIX", "TRAIL_PREFIX", "AuditTrail", "AuditTrailArgs"]

ACCESS_LOG_PREFIX = "s3-access-logs"  # <label>/ under it, one folder per logged bucket
TRAIL_PREFIX = "cloudtrail"  # CloudTrail appends AWSLogs/<account>/CloudTrail/<region>/...
# a deleted or overwritten log file stays recoverable this long (versioning), then goes
DELETED_LOG_DAYS = 30


@dataclass
class AuditTrailArgs:
    """Inputs of :class:`AuditTrail`."""

    prefix: str
    """Resource-name prefix, ``<project>-<env>``; the trail is ``<prefix>-data-events``."""
    tags: Mapping[str, str]
    """The platform's tags."""
    region: str
    """AWS region of the stack (the trail's home region)."""
    buckets: Mapping[str, pulumi.Input[str]]
    """label -> name of each data bucket to log and audit (``artifacts``, ``capture``...);
    labels name the access-log folders and the resources."""
    log_retention_days: int
    """How long access logs and trail log files are kept."""
    protect: bool = False
    """Pulumi protect on the log bucket and the trail's key (the record of data access)."""


class AuditTrail(pulumi.ComponentResource):
    """S3 server access logs and CloudTrail data events of the given buckets, in one log bucket.

    The log bucket is versioned, TLS-only, blocks public access, is encrypted with SSE-S3 and
    expires logs after ``log_retention_days``; the trail's files are also KMS-encrypted with
    the trail's own rotating key and validated by signed digests. Reading the trail's files
    needs kms:Decrypt on that key, granted through IAM policies (the key policy delegates to
    the account).
    """

    log_bucket_name: pulumi.Output[str]
    trail_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AuditTrailArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.buckets:
            raise ValueError("AuditTrail needs at least one bucket to log and audit")
        super().__init__(token("AuditTrail"), name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke).partition
        account = aws.get_caller_identity_output(opts=invoke).account_id
        trail_name = f"{args.prefix}-data-events"
        # named up front: the bucket and key policies must name the trail before it exists
        trail_arn = pulumi.Output.format("arn:{0}:cloudtrail:{1}:{2}:trail/{3}", partition,
                                         args.region, account, trail_name)
        sources = {label: pulumi.Output.format("arn:{0}:s3:::{1}", partition, bucket)
                   for label, bucket in args.buckets.items()}

        key = aws.kms.Key(
            f"{name}-trail-key", description=f"CloudTrail data events of {args.prefix}",
            enable_key_rotation=True, deletion_window_in_days=30,
            policy=self._key_policy(partition, account, trail_arn),
            tags=resource_tags(args.tags, name=f"{name}-trail-key"),
            opts=child_options(self, protect=args.protect))
        aws.kms.Alias(f"{name}-trail-key-alias", name=f"alias/{args.prefix}-audit",
                      target_key_id=key.key_id, opts=child_options(self))

        def delivery_statements(bucket_arn: pulumi.Output[str]) -> list[dict[str, Any]]:
            return [
                {"Sid": "S3ServerAccessLogs", "Effect": "Allow",
                 "Principal": {"Service": "logging.s3.amazonaws.com"},
                 "Action": "s3:PutObject",
                 "Resource": pulumi.Output.concat(bucket_arn, f"/{ACCESS_LOG_PREFIX}/*"),
                 "Condition": {"ArnLike": {"aws:SourceArn": list(sources.values())},
                               "StringEquals": {"aws:SourceAccount": account}}},
                {"Sid": "CloudTrailAclCheck", "Effect": "Allow",
                 "Principal": {"Service": "cloudtrail.amazonaws.com"},
                 "Action": "s3:GetBucketAcl", "Resource": bucket_arn,
                 "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
                {"Sid": "CloudTrailWrite", "Effect": "Allow",
                 "Principal": {"Service": "cloudtrail.amazonaws.com"},
                 "Action": "s3:PutObject",
                 "Resource": pulumi.Output.format("{0}/{1}/AWSLogs/{2}/*", bucket_arn,
                                                  TRAIL_PREFIX, account),
                 "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                                "aws:SourceArn": trail_arn}}},
            ]

        logs = secure_bucket(
            f"{name}-logs", parent=self, physical_name=f"{args.prefix}-audit-logs",
            kms_key_arn=None,  # SSE-S3: access-log delivery supports no SSE-KMS default
            tags=args.tags, noncurrent_version_days=DELETED_LOG_DAYS,
            policy_statements=delivery_statements, expire_days=args.log_retention_days,
            protect=args.protect)

        for label, bucket in args.buckets.items():
            aws.s3.BucketLogging(
                f"{name}-{label}-access-logs", bucket=bucket, target_bucket=logs.bucket.id,
                target_prefix=f"{ACCESS_LOG_PREFIX}/{label}/",
                opts=child_options(self, depends_on=logs.configuration))

        trail = aws.cloudtrail.Trail(
            f"{name}-trail", name=trail_name, s3_bucket_name=logs.bucket.id,
            s3_key_prefix=TRAIL_PREFIX, kms_key_id=key.arn, enable_log_file_validation=True,
            is_multi_region_trail=False,  # the buckets are in this region
            advanced_event_selectors=[aws.cloudtrail.TrailAdvancedEventSelectorArgs(
                name="Object reads and writes of the platform's data buckets",
                field_selectors=[
                    aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                        field="eventCategory", equals=["Data"]),
                    aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                        field="resources.type", equals=[S3_OBJECT]),
                    aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                        field="resources.ARN",
                        starts_withs=[pulumi.Output.concat(arn, "/")
                                      for arn in sources.values()]),
                ])],
            tags=resource_tags(args.tags, name=f"{name}-trail"),
            # CloudTrail checks the bucket policy and the key policy when the trail is created
            opts=child_options(self, depends_on=[*logs.configuration, key]))

        self.log_bucket_name = logs.bucket.bucket
        self.trail_arn = trail.arn
        self.key_arn = key.arn
        self.register_outputs({"log_bucket_name": self.log_bucket_name,
                               "trail_arn": self.trail_arn, "key_arn": self.key_arn})

    @staticmethod
    def _key_policy(partition: pulumi.Output[str], account: pulumi.Output[str],
                    trail_arn: pulumi.Output[str]) -> pulumi.Output[str]:
        """IAM of this account administers the key; CloudTrail may encrypt this trail's files
        and describe the key, for this trail only."""
        return policy_document([
            {"Sid": "AccountIam", "Effect": "Allow",
             "Principal": {"AWS": pulumi.Output.format("arn:{0}:iam::{1}:root", partition,
                                                       account)},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "CloudTrailEncrypt", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "kms:GenerateDataKey*", "Resource": "*",
             "Condition": {
                 "StringEquals": {"aws:SourceArn": trail_arn},
                 "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": pulumi.Output.format(
                     "arn:{0}:cloudtrail:*:{1}:trail/*", partition, account)}}},
            {"Sid": "CloudTrailDescribe", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "kms:DescribeKey", "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
        ])
