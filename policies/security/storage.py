"""Storage security: S3 buckets, KMS keys, ECR repositories and Athena query results.

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

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from ..buckets import (
    BUCKET_TYPES,
    LOGGING_TYPES,
    Inline,
    LogTargets,
    Problems,
    access_log_targets,
    bucket_ids,
    every_bucket,
)
from ..props import (
    as_mapping,
    condition_keys,
    document,
    is_false,
    is_set,
    is_true,
    one_or_many,
    statements,
)
from ..rule import Subject, rule, stack_rule, violation

__all__ = ["BUCKET_TYPES", "denies_insecure_transport", "service_principals"]

ENCRYPTION_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING_TYPES = ("aws:s3/bucketVersioning:BucketVersioning",
                    "aws:s3/bucketVersioningV2:BucketVersioningV2")
KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
ECR_REPOSITORY = "aws:ecr/repository:Repository"

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
# AWS S3 User Guide, "Enabling Amazon S3 server access logging": a destination bucket may use
# default encryption only with SSE-S3 (AES256); SSE-KMS default encryption is not supported
SSE_S3 = "AES256"
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


# ------------------------------------------------------------------ encryption


def _sse_rule_problems(subject: Subject, prop: str, entry: Any, config: Mapping[str, Any],
                       receives_logs: Callable[[], bool]) -> Iterator[str]:
    default = as_mapping(as_mapping(entry).get("applyServerSideEncryptionByDefault"))
    prop = f"{prop}.applyServerSideEncryptionByDefault"
    algorithm = default.get("sseAlgorithm")
    fix = 'set sse_algorithm="aws:kms" and kms_master_key_id to a customer managed KMS key'
    if algorithm == SSE_S3 and receives_logs():
        return  # S3 server access log delivery supports no SSE-KMS default encryption
    if algorithm not in KMS_ALGORITHMS:
        yield violation(subject, f"{prop}.sseAlgorithm",
                        f'is "{algorithm}", not KMS' if algorithm else "is not set", fix)
    elif config["require_customer_managed_key"] and not _customer_key(default, "kmsMasterKeyId"):
        yield violation(subject, f"{prop}.kmsMasterKeyId",
                        "does not name a customer managed key (S3 uses the AWS managed aws/s3 "
                        "key)", fix)


def _encryption_problems(config: Mapping[str, Any], targets: LogTargets) -> Problems:
    def problems(subject: Subject) -> Iterator[str]:
        entries = one_or_many(subject.props.get("rules"))
        if not entries:
            yield violation(subject, "rules", "is empty", _ENCRYPTION_FIX)
        for index, entry in enumerate(entries):
            yield from _sse_rule_problems(
                subject, f"rules[{index}]", entry, config,
                lambda: targets.receives_logs({subject.props.get("bucket")}))

    return problems


def _inline_encryption(config: Mapping[str, Any], targets: LogTargets) -> Inline:
    def inline(bucket: Subject) -> list[str] | None:
        if not is_set(bucket.props, "serverSideEncryptionConfiguration"):
            return None
        setting = as_mapping(bucket.props["serverSideEncryptionConfiguration"])
        prop = "serverSideEncryptionConfiguration"

        def receives_logs() -> bool:
            return targets.receives_logs(bucket_ids(bucket.name, bucket.props))

        if "rules" in list(setting):  # older schemas: a list of rules
            return [message for index, entry in enumerate(one_or_many(setting["rules"]))
                    for message in _sse_rule_problems(bucket, f"{prop}.rules[{index}]", entry,
                                                      config, receives_logs)]
        return list(_sse_rule_problems(bucket, f"{prop}.rule", setting.get("rule"), config,
                                       receives_logs))

    return inline


@stack_rule("s3-bucket-kms-encryption", pack="security", severity="high",
            resource_types=[*BUCKET_TYPES, *ENCRYPTION_TYPES, *LOGGING_TYPES],
            config=_CUSTOMER_KEY,
            description="S3 buckets encrypt objects by default with a KMS key (SSE-KMS), set "
                        "by a BucketServerSideEncryptionConfiguration of the bucket; a bucket "
                        "that receives S3 server access logs may use SSE-S3 instead, as log "
                        "delivery supports no SSE-KMS default encryption.")
def s3_bucket_kms_encryption(subjects: Sequence[Subject], config: Mapping[str, Any]
                             ) -> Iterator[tuple[Subject, str]]:
    targets = access_log_targets((s.type, s.props) for s in subjects)
    yield from every_bucket(
        subjects, ENCRYPTION_TYPES, _encryption_problems(config, targets),
        _inline_encryption(config, targets),
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
    yield from every_bucket(
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
    yield from every_bucket(
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
    yield from every_bucket(
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


def service_principals(statement: Mapping[str, Any]) -> list[str]:
    """The AWS service principals (``logs.amazonaws.com`` ...) a policy statement names."""
    principal = statement.get("Principal")
    return [str(s) for s in one_or_many(as_mapping(principal).get("Service"))]


# keys that tie a service's use of a key to this account's resources (AWS IAM User Guide, "The
# confused deputy problem": aws:SourceArn, aws:SourceAccount, aws:SourceOrgID, aws:SourceOrgPaths;
# AWS KMS Developer Guide, condition keys: kms:EncryptionContext:*, kms:ViaService,
# kms:CallerAccount)
_SERVICE_CONDITION_KEYS = ("aws:sourcearn", "aws:sourceaccount", "aws:sourceorgid",
                           "aws:sourceorgpaths", "kms:viaservice", "kms:calleraccount")


def _limits_service(condition: Any) -> bool:
    keys = condition_keys(condition)
    return any(key in _SERVICE_CONDITION_KEYS or key.startswith("kms:encryptioncontext")
               for key in keys)


@rule("kms-key-service-conditions", pack="security", severity="high",
      resource_types=[KMS_KEY, KMS_KEY_POLICY],
      description="KMS key policy statements that let an AWS service principal use the key "
                  "carry a condition tying that use to this account's resources "
                  "(aws:SourceAccount, aws:SourceArn, kms:EncryptionContext:*, kms:ViaService "
                  "or kms:CallerAccount): no confused deputy.",
      config={"exempt_services": {
          "type": "array", "items": {"type": "string"}, "uniqueItems": True, "default": [],
          "description": "Service principals whose key-policy grants need no condition (a "
                         "service that sets none of these keys in its requests)."}})
def kms_key_service_conditions(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    exempt = {s.lower() for s in config["exempt_services"]}
    for index, statement in enumerate(statements(subject.props.get("policy"))):
        services = [s for s in service_principals(statement) if s.lower() not in exempt]
        if statement.get("Effect") != "Allow" or not services:
            continue
        if not _limits_service(statement.get("Condition")):
            yield violation(subject, f"policy.Statement[{index}]",
                            f"lets {', '.join(services)} use the key with no condition (the "
                            "service could use it for any account's resources: confused "
                            "deputy)", "add a condition on aws:SourceAccount, aws:SourceArn, "
                            "kms:EncryptionContext:<key>, kms:ViaService or kms:CallerAccount "
                            "that names this account or its resources")


# ------------------------------------------------------------------ cross-account reads

_OBJECT_READS = ("s3:getobject", "s3:getobjectversion")
_LISTS = ("s3:listbucket", "s3:listbucketversions")
_READ_FIX = ('grant s3:GetObject on object ARNs under a prefix (e.g. "<bucket ARN>/models/*") '
             'and s3:ListBucket with a StringLike s3:prefix condition (e.g. "models/*")')


def _account_of(principal: str) -> str:
    """The account of an AWS principal: an account ID, or the one inside an ARN; '*' for any."""
    if principal == "*":
        return "*"
    match = re.match(r"^arn:[^:]+:(?:iam|sts)::(\d{12}):", principal)
    return match[1] if match else principal


def _grants(actions: Sequence[str], wanted: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in actions
               for name in wanted)


def _outside_principals(statement: Mapping[str, Any], own: set[str]) -> list[str]:
    principal = statement.get("Principal")
    aws = ["*"] if principal == "*" else [str(p) for p in one_or_many(
        as_mapping(principal).get("AWS"))]
    return [p for p in aws if _account_of(p) not in own]


def _whole_bucket(resource: str) -> bool:
    """Whether an ARN pattern covers every object of a bucket: ``*``, ``<bucket>/`` followed by
    a wildcard, or a wildcard bucket part with no key part (``arn:aws:s3:::*``)."""
    if resource == "*":
        return True
    rest = resource.split(":::", 1)[1] if ":::" in resource else ""
    if "/" not in rest:
        return "*" in rest
    key = rest.split("/", 1)[1]
    return key == "" or key.startswith("*")


def _scoped_prefix(condition: Any) -> bool:
    """Whether a condition limits s3:prefix to values that do not start with a wildcard."""
    for operator, tests in as_mapping(condition).items():
        if str(operator).lower().endswith("ifexists"):
            continue
        for key, value in as_mapping(tests).items():
            values = [str(v) for v in one_or_many(value)] if not isinstance(value, str) \
                else [value]
            if str(key).lower() == "s3:prefix" and values and all(
                    v and not v.startswith("*") for v in values):
                return True
    return False


def _cross_account_problems(subject: Subject, prop: str, policy: Any, own: set[str]
                            ) -> Iterator[str]:
    for index, statement in enumerate(statements(policy)):
        if statement.get("Effect") != "Allow":
            continue
        outside = _outside_principals(statement, own)
        if not outside:
            continue
        who = ", ".join(outside)
        actions = [str(a).lower() for a in one_or_many(statement.get("Action"))]
        where = f"{prop}.Statement[{index}]"
        resources = [str(r) for r in one_or_many(statement.get("Resource"))]
        if _grants(actions, _OBJECT_READS):
            wide = ["NotResource"] if "NotResource" in list(statement) else [
                r for r in resources if _whole_bucket(r)]
            if wide:
                yield violation(subject, f"{where}.Resource", f"lets {who} read every object "
                                f'("{wide[0]}"), not only those under a prefix', _READ_FIX)
        if _grants(actions, _LISTS) and not _scoped_prefix(statement.get("Condition")):
            yield violation(subject, f"{where}.Condition", f"lets {who} list every key of "
                            "the bucket (s3:ListBucket without an s3:prefix condition)",
                            _READ_FIX)


@rule("s3-cross-account-read-scoped", pack="security", severity="high",
      resource_types=[BUCKET_POLICY, *BUCKET_TYPES],
      description="Bucket policies let other accounts read only under a prefix: s3:GetObject "
                  "on object ARNs below <bucket>/<prefix>/, never <bucket>/*, and s3:ListBucket "
                  "only with an s3:prefix condition.",
      config={"own_account_ids": {
          "type": "array", "items": {"type": "string", "pattern": "^[0-9]{12}$"},
          "uniqueItems": True, "default": [],
          "description": "Account IDs whose principals are the stack's own; every other AWS "
                         "principal (and Principal \"*\") is another account's. Same-account "
                         "access belongs in IAM policies, so by default every AWS principal "
                         "counts."}})
def s3_cross_account_read_scoped(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    if subject.type in BUCKET_TYPES and not is_set(subject.props, "policy"):
        return
    yield from _cross_account_problems(subject, "policy", subject.props.get("policy"),
                                       set(config["own_account_ids"]))


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


# ------------------------------------------------------------------ Athena query results

ATHENA_WORKGROUP = "aws:athena/workgroup:Workgroup"
_KMS_RESULT_OPTIONS = ("SSE_KMS", "CSE_KMS")


@rule("athena-workgroup-encrypted-results", pack="security", severity="high",
      resource_types=[ATHENA_WORKGROUP],
      description="Athena workgroups encrypt query results with a KMS key and enforce their "
                  "configuration, so that no client writes results elsewhere or unencrypted.")
def athena_workgroup_encrypted_results(subject: Subject, config: Mapping[str, Any]
                                       ) -> Iterator[str]:
    configuration = as_mapping(subject.props.get("configuration"))
    # the provider's default is true (pulumi-aws athena Workgroup: "Defaults to `true`")
    if is_false(configuration.get("enforceWorkgroupConfiguration")):
        yield violation(subject, "configuration.enforceWorkgroupConfiguration",
                        "is false (a query may choose its own result location and encryption)",
                        "set enforce_workgroup_configuration=True")
    results = as_mapping(configuration.get("resultConfiguration"))
    encryption = as_mapping(results.get("encryptionConfiguration"))
    option = encryption.get("encryptionOption")
    fix = 'set encryption_option="SSE_KMS" with kms_key_arn=<a KMS key ARN>'
    prop = "configuration.resultConfiguration.encryptionConfiguration"
    if option not in _KMS_RESULT_OPTIONS:
        problem = f'is "{option}"' if option else "is not set (results are not KMS-encrypted)"
        yield violation(subject, f"{prop}.encryptionOption", problem, fix)
    elif not is_set(encryption, "kmsKeyArn"):
        yield violation(subject, f"{prop}.kmsKeyArn", "is not set", fix)
