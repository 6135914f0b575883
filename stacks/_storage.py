"""The one shape of every S3 bucket of the platform (artifacts, offline features, data capture,
audit logs).

KMS encryption with a bucket key (SSE-S3 only for the bucket receiving S3 server access logs),
all four public-access blocks, versioning, a policy that refuses plain HTTP, and lifecycle rules
that expire old object versions and abandoned multipart uploads. Used by the registry, feature
store, platform and audit components; the resources are children of the component that asks
for the bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import child_options, policy_document, resource_tags

__all__ = ["PolicyStatements", "SecureBucket", "secure_bucket"]

ABORT_MULTIPART_DAYS = 7
#: more statements of a bucket's policy, built from the bucket's ARN
PolicyStatements = Callable[[pulumi.Output[str]], Sequence[Mapping[str, Any]]]
_BUCKET_PREFIX_MAX = 37  # S3 appends a 26-character unique suffix


@dataclass(frozen=True)
class SecureBucket:
    """A secure bucket and the resources that configure it."""

    bucket: aws.s3.Bucket
    configuration: list[pulumi.Resource]
    """Encryption, public-access block, versioning, lifecycle and policy: writers that must
    not see an unconfigured bucket depend on these."""


def _tls_only(bucket_arn: pulumi.Output[str]) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _read_only_for(principals: Sequence[pulumi.Input[str]], prefix: str,
                   bucket_arn: pulumi.Output[str]) -> list[dict]:
    """Read access for `principals` to the objects under `prefix` only (AWS S3 User Guide,
    bucket policy examples: ListBucket limited by an s3:prefix condition)."""
    if not principals:
        return []
    principal = {"AWS": list(principals)}
    return [
        {"Sid": "CrossAccountList", "Effect": "Allow", "Principal": principal,
         "Action": "s3:ListBucket", "Resource": bucket_arn,
         "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*"]}}},
        {"Sid": "CrossAccountRead", "Effect": "Allow", "Principal": principal,
         "Action": "s3:GetObject", "Resource": pulumi.Output.concat(bucket_arn, f"/{prefix}/*")},
    ]


def _encryption_rule(kms_key_arn: pulumi.Input[str] | None
                     ) -> aws.s3.BucketServerSideEncryptionConfigurationRuleArgs:
    if kms_key_arn is None:  # SSE-S3: the only default encryption log delivery supports
        return aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=aws.s3.
            BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"))
    return aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
        apply_server_side_encryption_by_default=aws.s3.
        BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn),
        bucket_key_enabled=True)


def secure_bucket(name: str, *, parent: pulumi.Resource, physical_name: str,
                  kms_key_arn: pulumi.Input[str] | None, tags: Mapping[str, str],
                  noncurrent_version_days: int,
                  read_only_principals: Sequence[pulumi.Input[str]] = (),
                  read_only_prefix: str = "",
                  policy_statements: PolicyStatements | None = None,
                  expire_days: int | None = None, protect: bool = False) -> SecureBucket:
    """A bucket whose name starts with `physical_name` (e.g. ``demo-dev-artifacts``; cut to
    fit, then made globally unique by S3).

    `kms_key_arn`: the default encryption key; None only for a bucket that receives S3 server
    access logs, which get SSE-S3 (log delivery supports no SSE-KMS default encryption).
    `noncurrent_version_days`: overwritten or deleted versions are kept this long.
    `read_only_principals`: IAM principals (e.g. another account's root) granted
    ``s3:GetObject`` on the objects under `read_only_prefix` and ``s3:ListBucket`` of that
    prefix only (the KMS key policy must also let them decrypt).
    `policy_statements`: more bucket policy statements, from the bucket's ARN (services that
    deliver logs to it).
    `expire_days`: current objects are deleted after this many days (logs).
    `protect`: Pulumi refuses to delete (or replace) the bucket until this is turned off.
    """
    if read_only_principals and not read_only_prefix.strip("/"):
        raise ValueError(f"bucket {name}: read_only_principals need a read_only_prefix (e.g. "
                         "'models'); other accounts never read the whole bucket")
    bucket_prefix = physical_name[:_BUCKET_PREFIX_MAX - 1].rstrip("-.") + "-"
    bucket = aws.s3.Bucket(name, bucket_prefix=bucket_prefix, tags=resource_tags(tags, name=name),
                           opts=child_options(parent, protect=protect))
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption", bucket=bucket.id, rules=[_encryption_rule(kms_key_arn)],
        opts=child_options(parent))
    public_access = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access", bucket=bucket.id, block_public_acls=True,
        block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
        opts=child_options(parent))
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning", bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
            status="Enabled"),
        opts=child_options(parent))
    expiry = [aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="expire-objects", status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expire_days),
    )] if expire_days else []
    lifecycle = aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle", bucket=bucket.id,
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-noncurrent-versions", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                noncurrent_version_expiration=aws.s3.
                BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=noncurrent_version_days)),
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="abort-incomplete-multipart-uploads", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                abort_incomplete_multipart_upload=aws.s3.
                BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=ABORT_MULTIPART_DAYS)),
            *expiry,
        ],
        # noncurrent-version rules need versioning in place first
        opts=child_options(parent, depends_on=[versioning]))
    policy = aws.s3.BucketPolicy(
        f"{name}-policy", bucket=bucket.id,
        policy=policy_document([
            _tls_only(bucket.arn),
            *_read_only_for(read_only_principals, read_only_prefix.strip("/"), bucket.arn),
            *(policy_statements(bucket.arn) if policy_statements else [])]),
        # S3 rejects concurrent policy and public-access-block changes
        opts=child_options(parent, depends_on=[public_access]))
    return SecureBucket(bucket, [encryption, public_access, versioning, lifecycle, policy])
