"""Storage security: S3 buckets, KMS keys and ECR repositories.

In pulumi-aws 7 a bucket's encryption, public access block, policy and versioning are separate
resources whose ``bucket`` input is the bucket's id (its physical name). The ``s3-bucket-*``
rules are therefore stack rules: each checks every configuration resource of its kind, and that
every bucket of the stack has a good one, or else a good deprecated inline property on the
bucket (``serverSideEncryptionConfiguration``, ``policy``, ``versioning``). The inline property
is only a fallback: Pulumi's engine gives stack rules a resource's outputs, and a bucket's
outputs hold what AWS reported when it was created, before its configuration resources ran.
A bucket's id is its ``bucket`` property; offline, under mlscaffold's mocks, ``<name>-id``.

Values only known after deployment (a new bucket's name, a key's ARN) count as set. When the
link between a bucket and its configuration is unknown during a preview, the rule reports what
it can and then stops as undecided, which Pulumi shows as an advisory note.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from ..props import as_mapping, document, is_set, is_true, one_or_many
from ..rule import Subject, rule, stack_rule, violation

__all__ = ["BUCKET_TYPES", "denies_insecure_transport"]

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
ENCRYPTION_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING_TYPES = ("aws:s3/bucketVersioning:BucketVersioning",
                    "aws:s3/bucketVersioningV2:BucketVersioningV2")
KMS_KEY = "aws:kms/key:Key"
ECR_REPOSITORY = "aws:ecr/repository:Repository"

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                       "restrictPublicBuckets")
_AWS_MANAGED_KEY = re.compile(r"(^|:)alias/aws/")
_CUSTOMER_KEY = {"require_customer_managed_key": {
    "type": "boolean", "default": True,
    "description": "Require a customer managed KMS key (not the AWS managed aws/<service> key), "
                   "so that the key policy, rotation and cross-account grants are yours."}}

_ENCRYPTION_FIX = ('add an aws.s3.BucketServerSideEncryptionConfiguration with bucket=<the '
                   'bucket>.id, sse_algorithm="aws:kms" and kms_master_key_id=<a KMS key ARN>')
_PUBLIC_ACCESS_FIX = ("add an aws.s3.BucketPublicAccessBlock with bucket=<the bucket>.id and "
                      "block_public_acls, block_public_policy, ignore_public_acls and "
                      "restrict_public_buckets all True")
_TLS_FIX = ('add an aws.s3.BucketPolicy with a statement that denies "s3:*" on the bucket and '
            'its objects to Principal "*" when aws:SecureTransport is "false"')
_VERSIONING_FIX = ('add an aws.s3.BucketVersioning with bucket=<the bucket>.id and '
                   'versioning_configuration status "Enabled"')


# ------------------------------------------------------------------ reading props


def _customer_key(props: Mapping[str, Any], key: str) -> bool:
    """Whether `key` names a KMS key other than an AWS managed ``alias/aws/...`` one."""
    if not is_set(props, key):
        return False
    try:
        value = props[key]
    except UnknownValueError:
        return True  # computed from a key of the program, not an AWS managed alias
    return not (isinstance(value, str) and _AWS_MANAGED_KEY.search(value))


# ------------------------------------------------------------------ buckets and configurations

Problems = Callable[[Subject], Iterable[str]]
Inline = Callable[[Subject], list[str] | None]
Missing = Callable[[Subject], str]
_ANY = object()  # a configuration whose bucket is unknown during a preview


def _bucket_ids(bucket: Subject) -> set[Any]:
    """What a configuration's ``bucket`` input holds for `bucket`: its id, i.e. its physical
    name (``bucket``; without one, offline, its resource name), or the mocks' ``<name>-id``."""
    ids: set[Any] = {f"{bucket.name}-id"}
    # a new bucket's generated name is unknown: its configurations' bucket is unknown too
    with suppress(UnknownValueError):
        ids.add(bucket.props.get("bucket") or bucket.name)
    return ids


def _every_bucket(subjects: Sequence[Subject], config_types: Sequence[str], problems: Problems,
                  inline: Inline, missing: Missing, covered: bool = False
                  ) -> Iterator[tuple[Subject, str]]:
    """The problems of every configuration resource of `config_types`; then, for every bucket
    no configuration applies to, the problems of its inline property (`inline` returns None
    when the bucket has none) or `missing`, unless the bucket is `covered` otherwise."""
    good, reported, undecided = set(), set(), set()
    unknown: UnknownValueError | None = None
    for config in (s for s in subjects if s.type in config_types):
        try:
            found: list[str] | None = list(problems(config))
        except UnknownValueError as error:
            found, unknown = None, unknown or error
        yield from ((config, message) for message in found or ())
        try:
            target = config.props.get("bucket")
        except UnknownValueError as error:
            target, unknown = _ANY, unknown or error
        if found is None or target is _ANY:
            undecided.add(target)
        else:
            (reported if found else good).add(target)
    pending = False
    for bucket in (s for s in subjects if s.type in BUCKET_TYPES):
        ids = _bucket_ids(bucket)
        if covered or ids & (good | reported):
            continue
        try:
            inline_problems = inline(bucket)
        except UnknownValueError as error:
            unknown, pending = unknown or error, True
            continue
        if inline_problems == []:
            continue
        if ids & undecided or _ANY in undecided:
            pending = True  # a configuration of unknown content or bucket may apply to it
        elif inline_problems is None:
            yield bucket, missing(bucket)
        else:
            yield from ((bucket, message) for message in inline_problems)
    if pending and unknown is not None:
        raise unknown


# ------------------------------------------------------------------ encryption


def _sse_rule_problems(subject: Subject, prop: str, entry: Any, config: Mapping[str, Any]
                       ) -> Iterator[str]:
    default = as_mapping(as_mapping(entry).get("applyServerSideEncryptionByDefault"))
    prop = f"{prop}.applyServerSideEncryptionByDefault"
    algorithm = default.get("sseAlgorithm")
    fix = 'set sse_algorithm="aws:kms" and kms_master_key_id to a customer managed KMS key'
    if algorithm not in KMS_ALGORITHMS:
        yield violation(subject, f"{prop}.sseAlgorithm",
                        f'is "{algorithm}", not KMS' if algorithm else "is not set", fix)
    elif config["require_customer_managed_key"] and not _customer_key(default, "kmsMasterKeyId"):
        yield violation(subject, f"{prop}.kmsMasterKeyId",
                        "does not name a customer managed key (S3 uses the AWS managed aws/s3 "
                        "key)", fix)


def _encryption_problems(config: Mapping[str, Any]) -> Problems:
    def problems(subject: Subject) -> Iterator[str]:
        entries = one_or_many(subject.props.get("rules"))
        if not entries:
            yield violation(subject, "rules", "is empty", _ENCRYPTION_FIX)
        for index, entry in enumerate(entries):
            yield from _sse_rule_problems(subject, f"rules[{index}]", entry, config)

    return problems


def _inline_encryption(config: Mapping[str, Any]) -> Inline:
    def inline(bucket: Subject) -> list[str] | None:
        if not is_set(bucket.props, "serverSideEncryptionConfiguration"):
            return None
        setting = as_mapping(bucket.props["serverSideEncryptionConfiguration"])
        prop = "serverSideEncryptionConfiguration"
        if "rules" in list(setting):  # older schemas: a list of rules
            return [message for index, entry in enumerate(one_or_many(setting["rules"]))
                    for message in _sse_rule_problems(bucket, f"{prop}.rules[{index}]", entry,
                                                      config)]
        return list(_sse_rule_problems(bucket, f"{prop}.rule", setting.get("rule"), config))

    return inline


@stack_rule("s3-bucket-kms-encryption", pack="security", severity="high",
            resource_types=[*BUCKET_TYPES, *ENCRYPTION_TYPES], config=_CUSTOMER_KEY,
            description="S3 buckets encrypt objects by default with a KMS key (SSE-KMS), set "
                        "by a BucketServerSideEncryptionConfiguration of the bucket.")
def s3_bucket_kms_encryption(subjects: Sequence[Subject], config: Mapping[str, Any]
                             ) -> Iterator[tuple[Subject, str]]:
    yield from _every_bucket(
        subjects, ENCRYPTION_TYPES, _encryption_problems(config), _inline_encryption(config),
        lambda bucket: violation(bucket, "serverSideEncryptionConfiguration", "is not set and "
                                 "no BucketServerSideEncryptionConfiguration applies to the "
                                 "bucket", _ENCRYPTION_FIX))


# ------------------------------------------------------------------ public access block


def _public_access_problems(subject: Subject) -> Iterator[str]:
    for flag in PUBLIC_ACCESS_FLAGS:
        if not is_true(subject.props.get(flag)):
            yield violation(subject, flag, "is not true", f"set {_snake(flag)}=True")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


@stack_rule("s3-bucket-public-access-block", pack="security", severity="high",
            resource_types=[*BUCKET_TYPES, PUBLIC_ACCESS_BLOCK, ACCOUNT_PUBLIC_ACCESS_BLOCK],
            description="S3 buckets have a public access block with all four settings on (or "
                        "the stack blocks public access account-wide).")
def s3_bucket_public_access_block(subjects: Sequence[Subject], config: Mapping[str, Any]
                                  ) -> Iterator[tuple[Subject, str]]:
    account = [s for s in subjects if s.type == ACCOUNT_PUBLIC_ACCESS_BLOCK]
    account_problems = [(s, m) for s in account for m in _public_access_problems(s)]
    yield from account_problems
    covered = bool(account) and not account_problems
    yield from _every_bucket(
        subjects, [PUBLIC_ACCESS_BLOCK], _public_access_problems, lambda bucket: None,
        lambda bucket: violation(bucket, "public access block", "is missing (a bucket policy "
                                 "or ACL can make objects public)", _PUBLIC_ACCESS_FIX),
        covered=covered)


# ------------------------------------------------------------------ TLS only


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return "*" in one_or_many(as_mapping(principal).get("AWS"))


def _insecure_transport_condition(condition: Any) -> bool:
    for operator, tests in as_mapping(condition).items():
        if operator.lower() not in {"bool", "boolifexists"}:
            continue
        for key, value in as_mapping(tests).items():
            values = [value] if isinstance(value, str | bool) else one_or_many(value)
            if key.lower() == "aws:securetransport" and "false" in {str(v).lower()
                                                                     for v in values}:
                return True
    return False


def denies_insecure_transport(policy: Any) -> bool:
    """Whether a bucket policy denies every S3 action on the bucket's objects to everyone over
    plain HTTP (``aws:SecureTransport`` false)."""
    statements = document(policy).get("Statement")
    for statement in [statements] if isinstance(statements, Mapping) else one_or_many(statements):
        statement = as_mapping(statement)
        actions = {str(a).lower() for a in one_or_many(statement.get("Action"))}
        resources = [str(r) for r in one_or_many(statement.get("Resource"))]
        if (statement.get("Effect") == "Deny" and _everyone(statement.get("Principal"))
                and actions & {"s3:*", "*"}
                and any(r == "*" or r.endswith("/*") for r in resources)
                and _insecure_transport_condition(statement.get("Condition"))):
            return True
    return False


def _tls_problems(subject: Subject) -> Iterator[str]:
    if not denies_insecure_transport(subject.props.get("policy")):
        yield violation(subject, "policy", "does not deny requests without TLS", _TLS_FIX)


def _inline_tls(bucket: Subject) -> list[str] | None:
    if not is_set(bucket.props, "policy"):
        return None
    return list(_tls_problems(bucket))


@stack_rule("s3-bucket-tls-only", pack="security", severity="medium",
            resource_types=[*BUCKET_TYPES, BUCKET_POLICY],
            description="S3 bucket policies deny every request made without TLS "
                        "(aws:SecureTransport false).")
def s3_bucket_tls_only(subjects: Sequence[Subject], config: Mapping[str, Any]
                       ) -> Iterator[tuple[Subject, str]]:
    yield from _every_bucket(
        subjects, [BUCKET_POLICY], _tls_problems, _inline_tls,
        lambda bucket: violation(bucket, "policy", "is not set and no BucketPolicy applies to "
                                 "the bucket (plain HTTP requests are accepted)", _TLS_FIX))


# ------------------------------------------------------------------ versioning


def _versioning_problems(subject: Subject) -> Iterator[str]:
    status = as_mapping(subject.props.get("versioningConfiguration")).get("status")
    if status != "Enabled":
        yield violation(subject, "versioningConfiguration.status",
                        f'is "{status}"' if status else "is not set",
                        'set it to "Enabled" (overwritten and deleted objects stay recoverable)')


def _inline_versioning(bucket: Subject) -> list[str] | None:
    if not is_set(bucket.props, "versioning"):
        return None
    if is_true(as_mapping(bucket.props["versioning"]).get("enabled")):
        return []
    return [violation(bucket, "versioning.enabled", "is not true", _VERSIONING_FIX)]


@stack_rule("s3-bucket-versioning", pack="security", severity="medium",
            resource_types=[*BUCKET_TYPES, *VERSIONING_TYPES],
            description="S3 buckets (artifacts, models, features) keep object versions, so "
                        "that overwritten or deleted objects can be recovered.")
def s3_bucket_versioning(subjects: Sequence[Subject], config: Mapping[str, Any]
                         ) -> Iterator[tuple[Subject, str]]:
    yield from _every_bucket(
        subjects, VERSIONING_TYPES, _versioning_problems, _inline_versioning,
        lambda bucket: violation(bucket, "versioning", "is not enabled and no BucketVersioning "
                                 "applies to the bucket", _VERSIONING_FIX))


# ------------------------------------------------------------------ KMS keys


@rule("kms-key-rotation", pack="security", severity="medium", resource_types=[KMS_KEY],
      description="Symmetric KMS keys rotate their key material automatically.")
def kms_key_rotation(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    spec = subject.props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec != "SYMMETRIC_DEFAULT" or is_set(subject.props, "customKeyStoreId"):
        return  # AWS rotates only symmetric keys whose material it holds
    if not is_true(subject.props.get("enableKeyRotation")):
        yield violation(subject, "enableKeyRotation", "is not true",
                        "set enable_key_rotation=True (AWS rotates the key material yearly)")


# ------------------------------------------------------------------ ECR


@rule("ecr-scan-on-push", pack="security", severity="medium", resource_types=[ECR_REPOSITORY],
      description="ECR repositories scan every pushed image for vulnerabilities.")
def ecr_scan_on_push(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    scanning = as_mapping(subject.props.get("imageScanningConfiguration"))
    if not is_true(scanning.get("scanOnPush")):
        yield violation(subject, "imageScanningConfiguration.scanOnPush", "is not true",
                        "set image_scanning_configuration scan_on_push=True")


@rule("ecr-immutable-tags", pack="security", severity="medium",
      resource_types=[ECR_REPOSITORY],
      description="ECR repositories make image tags immutable, so a deployed tag cannot be "
                  "pointed at another image.")
def ecr_immutable_tags(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    mutability = subject.props.get("imageTagMutability") or "MUTABLE"  # AWS's default
    if mutability != "IMMUTABLE":
        yield violation(subject, "imageTagMutability", f'is "{mutability}"',
                        'set image_tag_mutability="IMMUTABLE" and push a new tag per build')


@rule("ecr-kms-encryption", pack="security", severity="medium",
      resource_types=[ECR_REPOSITORY], config=_CUSTOMER_KEY,
      description="ECR repositories encrypt images with a KMS key.")
def ecr_kms_encryption(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    fix = 'set encryption_configurations encryption_type="KMS" with kms_key=<a KMS key ARN>'
    encryption = as_mapping(subject.props.get("encryptionConfigurations"))
    kind = encryption.get("encryptionType") or "AES256"  # AWS's default
    if kind not in {"KMS", "KMS_DSSE"}:
        yield violation(subject, "encryptionConfigurations[0].encryptionType", f'is "{kind}"',
                        fix)
    elif config["require_customer_managed_key"] and not _customer_key(encryption, "kmsKey"):
        yield violation(subject, "encryptionConfigurations[0].kmsKey",
                        "does not name a customer managed key (ECR uses the AWS managed "
                        "aws/ecr key)", fix)
