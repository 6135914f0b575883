"""Security rules of data and identities: S3, KMS, ECR, IAM, logs, SNS and SageMaker.

Each test builds the passing props of a resource (for the ``s3-bucket-*`` stack rules: a bucket
with its configuration resources), changes one field and asserts the exact messages, through
pulumi_policy's public API (see conftest). The example projects' stacks must pass every one of
these rules, and the stack rules must find a bucket's configuration in a real mocked graph.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from mlscaffold.policies.registry import RULES
from mlscaffold.policies.security.iam import broad_managed_policy
from mlscaffold.policies.security.storage import denies_insecure_transport
from mlscaffold.stacks.instances import has_instance_store

from .conftest import DELETE, EXAMPLES, changed, check, check_stack

MINE = frozenset({
    "s3-bucket-kms-encryption", "s3-bucket-public-access-block", "s3-bucket-tls-only",
    "s3-bucket-versioning", "kms-key-rotation", "ecr-scan-on-push", "ecr-immutable-tags",
    "ecr-kms-encryption",
    "iam-no-wildcard-admin", "iam-no-service-wildcard", "iam-no-admin-managed-policy",
    "cloudwatch-log-retention", "cloudwatch-log-group-kms", "sns-topic-kms",
    "sagemaker-endpoint-kms", "sagemaker-data-capture-kms", "sagemaker-data-capture",
    "sagemaker-model-network-isolation", "sagemaker-model-vpc", "sagemaker-feature-group-kms",
    "sagemaker-monitoring-job-kms", "sagemaker-monitoring-job-network",
    "sagemaker-endpoint-auto-rollback", "sagemaker-endpoint-rollback-window",
    # the MLflow tracking server (tests in test_mlflow.py)
    "sagemaker-mlflow-artifacts-in-stack-bucket", "sagemaker-mlflow-no-automatic-registration",
    # who reaches the data (tests in test_security_access.py)
    "iam-network-interface-scoped", "iam-service-trust-conditions", "kms-key-service-conditions",
    "s3-cross-account-read-scoped", "s3-bucket-access-logging", "s3-data-events-audited",
    # training runs (tests in test_security_training.py)
    "iam-pass-role-scoped", "iam-pod-identity-trust-scoped",
    # training data from the feature store (tests in test_security_training.py)
    "athena-workgroup-encrypted-results",
})
MODULES = {f"mlscaffold.policies.security.{m}" for m in ("storage", "iam", "logging", "ml")}
KEY = "arn:aws:kms:us-east-1:123456789012:key/data"


def test_rule_table_entries() -> None:
    mine = {r.name: r for r in RULES.values() if r.check.__module__ in MODULES}
    assert set(mine) == MINE
    for entry in mine.values():
        assert entry.pack == "security" and entry.level == "mandatory"
        assert entry.description.endswith(".") and entry.resource_types
    stack_rules = {name for name, entry in mine.items() if entry.stack}
    assert stack_rules == {"s3-bucket-kms-encryption", "s3-bucket-public-access-block",
                           "s3-bucket-tls-only", "s3-bucket-versioning",
                           "s3-bucket-access-logging", "s3-data-events-audited",
                           "sagemaker-mlflow-artifacts-in-stack-bucket"}


# ------------------------------------------------------------------ S3 buckets

BUCKET = "aws:s3/bucket:Bucket"
ENCRYPTION = ("aws:s3/bucketServerSideEncryptionConfiguration:"
              "BucketServerSideEncryptionConfiguration")
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"

TLS_STATEMENT = {
    "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
    "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
SSE = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                         "kmsMasterKeyId": KEY},
                  "bucketKeyEnabled": True}], "bucket": "data-id"}
BLOCK = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
         "restrictPublicBuckets": True, "bucket": "data-id"}
POLICY = {"policy": json.dumps({"Version": "2012-10-17", "Statement": [TLS_STATEMENT]}),
          "bucket": "data-id"}
VERSIONED = {"versioningConfiguration": {"status": "Enabled"}, "bucket": "data-id"}
CONFIGURATIONS = {"s3-bucket-kms-encryption": (ENCRYPTION, "data-encryption", SSE),
                  "s3-bucket-public-access-block": (PUBLIC_ACCESS, "data-public-access", BLOCK),
                  "s3-bucket-tls-only": (BUCKET_POLICY, "data-policy", POLICY),
                  "s3-bucket-versioning": (VERSIONING, "data-versioning", VERSIONED)}

ENCRYPTION_FIX = ('add an aws.s3.BucketServerSideEncryptionConfiguration with bucket=<the '
                  'bucket>.id, sse_algorithm="aws:kms" and kms_master_key_id=<a KMS key ARN>')
SSE_FIX = 'set sse_algorithm="aws:kms" and kms_master_key_id to a customer managed KMS key'
TLS_FIX = ('add an aws.s3.BucketPolicy with a statement that denies "s3:*" on the bucket and '
           'its objects to Principal "*" when aws:SecureTransport is "false"')
VERSIONING_FIX = ('add an aws.s3.BucketVersioning with bucket=<the bucket>.id and '
                  'versioning_configuration status "Enabled"')


def bucket_stack(rule: str, config: dict[str, Any] | None = None,
                 bucket: dict[str, Any] | None = None) -> list[tuple[str, str, dict]]:
    """A bucket named 'data' (its mocked id 'data-id') with the configuration resource of
    `rule`, changed to `config` when given (None keeps the passing one)."""
    kind, name, props = CONFIGURATIONS[rule]
    bucket_props = bucket if bucket is not None else {"bucketPrefix": "data-"}
    return [(BUCKET, "data", bucket_props), (kind, name, config if config is not None else props)]


@pytest.mark.parametrize("rule", sorted(CONFIGURATIONS))
def test_configured_bucket_passes(rule: str) -> None:
    assert check_stack(rule, bucket_stack(rule)) == []


def test_bucket_found_by_its_physical_name() -> None:
    # a deployed stack: the bucket's `bucket` output is its name, which configurations hold
    stack = bucket_stack("s3-bucket-versioning", changed(VERSIONED, "bucket", "acme-data-1"),
                         bucket={"bucket": "acme-data-1"})
    assert check_stack("s3-bucket-versioning", stack) == []


def test_sse_algorithm_must_be_kms() -> None:
    config = changed(SSE, "rules[0].applyServerSideEncryptionByDefault.sseAlgorithm", "AES256")
    assert check_stack("s3-bucket-kms-encryption", bucket_stack(
        "s3-bucket-kms-encryption", config)) == [("data-encryption", (
            "BucketServerSideEncryptionConfiguration 'data-encryption': rules[0]."
            'applyServerSideEncryptionByDefault.sseAlgorithm is "AES256", not KMS; ' + SSE_FIX))]


@pytest.mark.parametrize("key", [DELETE, "alias/aws/s3", "arn:aws:kms:eu-west-1:1:alias/aws/s3"])
def test_sse_key_must_be_customer_managed(key: Any) -> None:
    config = changed(SSE, "rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId", key)
    stack = bucket_stack("s3-bucket-kms-encryption", config)
    assert check_stack("s3-bucket-kms-encryption", stack) == [("data-encryption", (
        "BucketServerSideEncryptionConfiguration 'data-encryption': rules[0]."
        "applyServerSideEncryptionByDefault.kmsMasterKeyId does not name a customer managed "
        "key (S3 uses the AWS managed aws/s3 key); " + SSE_FIX))]
    assert check_stack("s3-bucket-kms-encryption", stack,
                       require_customer_managed_key=False) == []


def test_sse_key_unknown_before_deployment_counts_as_set() -> None:
    config = changed(SSE, "rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId",
                     UNKNOWN_STRING_VALUE)
    assert check_stack("s3-bucket-kms-encryption",
                       bucket_stack("s3-bucket-kms-encryption", config)) == []


def test_bucket_without_encryption_configuration() -> None:
    other = changed(SSE, "bucket", "logs-id")  # configures another bucket
    assert check_stack("s3-bucket-kms-encryption", bucket_stack(
        "s3-bucket-kms-encryption", other)) == [("data", (
            "Bucket 'data': serverSideEncryptionConfiguration is not set and no "
            "BucketServerSideEncryptionConfiguration applies to the bucket; " + ENCRYPTION_FIX))]


def test_inline_bucket_encryption() -> None:
    inline = {"bucketPrefix": "data-", "serverSideEncryptionConfiguration": {"rule": {
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                               "kmsMasterKeyId": KEY}}}}
    assert check_stack("s3-bucket-kms-encryption", [(BUCKET, "data", inline)]) == []
    aes = changed(inline, "serverSideEncryptionConfiguration.rule."
                          "applyServerSideEncryptionByDefault.sseAlgorithm", "AES256")
    assert check_stack("s3-bucket-kms-encryption", [(BUCKET, "data", aes)]) == [("data", (
        "Bucket 'data': serverSideEncryptionConfiguration.rule.applyServerSideEncryptionBy"
        'Default.sseAlgorithm is "AES256", not KMS; ' + SSE_FIX))]


def test_bucket_link_unknown_during_preview_is_undecided() -> None:
    unknown = changed(SSE, "bucket", UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):
        check_stack("s3-bucket-kms-encryption", bucket_stack("s3-bucket-kms-encryption",
                                                             unknown))


def test_undecided_stack_rule_reports_what_it_can() -> None:
    from mlscaffold.graph import GraphResource, ResourceGraph
    from mlscaffold.policies.engine import evaluate

    def resource(kind: str, name: str, inputs: dict[str, Any]) -> GraphResource:
        return GraphResource(f"urn:pulumi:dev::demo::{kind}::{name}", kind, name, True, None,
                             (), inputs)

    suspended = changed(VERSIONED, "versioningConfiguration.status", "Suspended")
    graph = ResourceGraph("demo", "dev", [
        resource(BUCKET, "data", {"bucketPrefix": "data-"}),
        resource(BUCKET, "logs", {"bucketPrefix": "logs-"}),
        resource(VERSIONING, "logs-versioning", changed(suspended, "bucket", "logs-id")),
        resource(VERSIONING, "data-versioning", changed(VERSIONED, "bucket",
                                                        UNKNOWN_STRING_VALUE)),
    ])
    result = evaluate(graph, {"security": {"s3-bucket-versioning": {
        "enforcementLevel": "mandatory"}}})
    assert [(f.level, f.resource, f.message) for f in result.findings] == [
        ("mandatory", "logs-versioning", "BucketVersioning 'logs-versioning': versioning"
         'Configuration.status is "Suspended"; set it to "Enabled" (overwritten and deleted '
         "objects stay recoverable)"),
        ("unknown", "", "string value at .bucket can't be known during preview")]


@pytest.mark.parametrize("flag", ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                  "restrictPublicBuckets"])
def test_public_access_block_flags(flag: str) -> None:
    snake = re.sub(r"([A-Z])", r"_\1", flag).lower()
    for value in (False, DELETE):
        stack = bucket_stack("s3-bucket-public-access-block", changed(BLOCK, flag, value))
        assert check_stack("s3-bucket-public-access-block", stack) == [(
            "data-public-access",
            f"BucketPublicAccessBlock 'data-public-access': {flag} is not true; "
            f"set {snake}=True")]


def test_bucket_without_public_access_block() -> None:
    bucket = [(BUCKET, "data", {"bucketPrefix": "data-"})]
    assert check_stack("s3-bucket-public-access-block", bucket) == [("data", (
        "Bucket 'data': public access block is missing (a bucket policy or ACL can make "
        "objects public); add an aws.s3.BucketPublicAccessBlock with bucket=<the bucket>.id "
        "and block_public_acls, block_public_policy, ignore_public_acls and "
        "restrict_public_buckets all True"))]
    account = {k: v for k, v in BLOCK.items() if k != "bucket"}
    assert check_stack("s3-bucket-public-access-block",
                       [*bucket, (ACCOUNT_PUBLIC_ACCESS, "account", account)]) == []
    weak = changed(account, "ignorePublicAcls", False)
    assert check_stack("s3-bucket-public-access-block",
                       [*bucket, (ACCOUNT_PUBLIC_ACCESS, "account", weak)]) == [
        ("account", "AccountPublicAccessBlock 'account': ignorePublicAcls is not true; "
                    "set ignore_public_acls=True"),
        ("data", check_stack("s3-bucket-public-access-block", bucket)[0][1])]


def test_bucket_policy_must_deny_plain_http() -> None:
    allow_only = changed(POLICY, "policy", json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"}]}))
    assert check_stack("s3-bucket-tls-only", bucket_stack("s3-bucket-tls-only", allow_only)) == [
        ("data-policy", "BucketPolicy 'data-policy': policy does not deny requests without "
                        "TLS; " + TLS_FIX)]


def test_bucket_without_policy() -> None:
    assert check_stack("s3-bucket-tls-only", [(BUCKET, "data", {"bucketPrefix": "data-"})]) == [
        ("data", "Bucket 'data': policy is not set and no BucketPolicy applies to the bucket "
                 "(plain HTTP requests are accepted); " + TLS_FIX)]
    inline = {"bucketPrefix": "data-", "policy": POLICY["policy"]}
    assert check_stack("s3-bucket-tls-only", [(BUCKET, "data", inline)]) == []


@pytest.mark.parametrize(("path", "value", "denies"), [
    ("Principal", {"AWS": ["*"]}, True),
    ("Condition", {"Bool": {"aws:SecureTransport": False}}, True),
    ("Condition", {"BoolIfExists": {"aws:securetransport": ["false"]}}, True),
    ("Action", ["s3:GetObject", "s3:*"], True),
    ("Action", "*", True),
    ("Resource", "*", True),
    ("Effect", "Allow", False),
    ("Principal", {"AWS": "arn:aws:iam::123456789012:root"}, False),
    ("Action", "s3:PutObject", False),
    ("Resource", "arn:aws:s3:::data", False),
    ("Condition", {"Bool": {"aws:SecureTransport": "true"}}, False),
    ("Condition", {"NumericLessThan": {"s3:TlsVersion": "1.2"}}, False),
])
def test_denies_insecure_transport(path: str, value: Any, denies: bool) -> None:
    statement = changed(TLS_STATEMENT, path, value)
    assert denies_insecure_transport(json.dumps({"Statement": statement})) is denies
    assert denies_insecure_transport({"Statement": [statement]}) is denies
    assert denies_insecure_transport("not json") is False


@pytest.mark.parametrize("status", ["Suspended", DELETE])
def test_versioning_must_be_enabled(status: Any) -> None:
    config = changed(VERSIONED, "versioningConfiguration.status", status)
    shown = 'is "Suspended"' if status == "Suspended" else "is not set"
    assert check_stack("s3-bucket-versioning", bucket_stack("s3-bucket-versioning", config)) == [
        ("data-versioning", f"BucketVersioning 'data-versioning': versioningConfiguration.status "
                            f'{shown}; set it to "Enabled" (overwritten and deleted objects '
                            "stay recoverable)")]


def test_bucket_without_versioning() -> None:
    assert check_stack("s3-bucket-versioning", [(BUCKET, "data", {"bucketPrefix": "d-"})]) == [
        ("data", "Bucket 'data': versioning is not enabled and no BucketVersioning applies to "
                 "the bucket; " + VERSIONING_FIX)]
    inline = {"bucketPrefix": "d-", "versioning": {"enabled": True}}
    assert check_stack("s3-bucket-versioning", [(BUCKET, "data", inline)]) == []
    assert check_stack("s3-bucket-versioning", [
        (BUCKET, "data", changed(inline, "versioning.enabled", False))]) == [
        ("data", "Bucket 'data': versioning.enabled is not true; " + VERSIONING_FIX)]


# ------------------------------------------------------------------ KMS and ECR

KMS_KEY = "aws:kms/key:Key"
ECR = "aws:ecr/repository:Repository"
REPOSITORY = {"name": "serving", "imageScanningConfiguration": {"scanOnPush": True},
              "imageTagMutability": "IMMUTABLE",
              "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY}]}
ECR_FIX = 'set encryption_configurations encryption_type="KMS" with kms_key=<a KMS key ARN>'


def test_kms_key_rotation() -> None:
    key = {"enableKeyRotation": True, "description": "data", "deletionWindowInDays": 30}
    assert check("kms-key-rotation", KMS_KEY, key) == []
    message = ("Key 'res': enableKeyRotation is not true; set enable_key_rotation=True (AWS "
               "rotates the key material yearly)")
    assert check("kms-key-rotation", KMS_KEY, changed(key, "enableKeyRotation", False)) == [
        message]
    assert check("kms-key-rotation", KMS_KEY, changed(key, "enableKeyRotation")) == [message]
    # AWS cannot rotate asymmetric keys, nor keys in a custom key store
    asymmetric = {"customerMasterKeySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"}
    assert check("kms-key-rotation", KMS_KEY, asymmetric) == []
    assert check("kms-key-rotation", KMS_KEY, {"customKeyStoreId": "cks-1"}) == []


def test_ecr_repository_passes() -> None:
    for name in ("ecr-scan-on-push", "ecr-immutable-tags", "ecr-kms-encryption"):
        assert check(name, ECR, REPOSITORY) == []


def test_ecr_scan_on_push() -> None:
    for props in (changed(REPOSITORY, "imageScanningConfiguration.scanOnPush", False),
                  changed(REPOSITORY, "imageScanningConfiguration")):
        assert check("ecr-scan-on-push", ECR, props) == [
            "Repository 'res': imageScanningConfiguration.scanOnPush is not true; set "
            "image_scanning_configuration scan_on_push=True"]


@pytest.mark.parametrize(("mutability", "shown"), [("MUTABLE", "MUTABLE"), (DELETE, "MUTABLE"),
                                                   ("IMMUTABLE_WITH_EXCLUSION",
                                                    "IMMUTABLE_WITH_EXCLUSION")])
def test_ecr_immutable_tags(mutability: Any, shown: str) -> None:
    assert check("ecr-immutable-tags", ECR, changed(REPOSITORY, "imageTagMutability",
                                                    mutability)) == [
        f"Repository 'res': imageTagMutability is \"{shown}\"; set "
        'image_tag_mutability="IMMUTABLE" and push a new tag per build']


def test_ecr_kms_encryption() -> None:
    assert check("ecr-kms-encryption", ECR, changed(REPOSITORY, "encryptionConfigurations")) == [
        f"Repository 'res': encryptionConfigurations[0].encryptionType is \"AES256\"; {ECR_FIX}"]
    aws_key = changed(REPOSITORY, "encryptionConfigurations[0].kmsKey")
    assert check("ecr-kms-encryption", ECR, aws_key) == [
        "Repository 'res': encryptionConfigurations[0].kmsKey does not name a customer managed "
        f"key (ECR uses the AWS managed aws/ecr key); {ECR_FIX}"]
    assert check("ecr-kms-encryption", ECR, aws_key, require_customer_managed_key=False) == []


# ------------------------------------------------------------------ IAM

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY_TYPE = "aws:iam/policy:Policy"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LEAST_PRIVILEGE = "list only the actions the principal needs, on the ARNs it needs them on"
READ_MODEL = {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"],
              "Resource": "arn:aws:s3:::models/*"}
TOKEN = {"Sid": "Token", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
         "Resource": "*"}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def role_policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"role": "serving-role-id", "policy": document(*statements)}


def test_least_privilege_policies_pass() -> None:
    props = role_policy(READ_MODEL, TOKEN)
    for name in ("iam-no-wildcard-admin", "iam-no-service-wildcard"):
        assert check(name, ROLE_POLICY, props) == []
        assert check(name, POLICY_TYPE, {"policy": document(READ_MODEL)}) == []
        # a Deny is no grant
        deny_all = {"Effect": "Deny", "Action": "*", "Resource": "*"}
        assert check(name, ROLE_POLICY, role_policy(READ_MODEL, deny_all)) == []


@pytest.mark.parametrize("action", ["*", ["s3:GetObject", "*"], "*:*"])
def test_wildcard_admin(action: Any) -> None:
    admin = {**TOKEN, "Action": action}
    assert check("iam-no-wildcard-admin", ROLE_POLICY, role_policy(READ_MODEL, admin)) == [
        'RolePolicy \'res\': policy.Statement[1] allows Action "*" on Resource "*" '
        f"(administrator access); {LEAST_PRIVILEGE}"]


def test_wildcard_admin_in_a_lone_statement() -> None:
    lone = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    assert check("iam-no-wildcard-admin", POLICY_TYPE,
                 {"policy": json.dumps({"Statement": lone})}) == [
        'Policy \'res\': policy.Statement[0] allows Action "*" on Resource "*" (administrator '
        f"access); {LEAST_PRIVILEGE}"]


def test_wildcard_admin_through_not_action_and_not_resource() -> None:
    not_action = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert check("iam-no-wildcard-admin", POLICY_TYPE, {"policy": document(not_action)}) == [
        "Policy 'res': policy.Statement[0] allows every action but its NotAction on Resource "
        f'"*" (near-administrator access); {LEAST_PRIVILEGE}']
    not_resource = {"Effect": "Allow", "Action": ["*"], "NotResource": "arn:aws:s3:::x"}
    assert len(check("iam-no-wildcard-admin", POLICY_TYPE,
                     {"policy": document(not_resource)})) == 1


def test_wildcard_admin_in_role_inline_policies() -> None:
    role = {"assumeRolePolicy": document(), "inlinePolicies": [
        {"name": "read", "policy": document(READ_MODEL)},
        {"name": "admin", "policy": document({"Effect": "Allow", "Action": "*",
                                              "Resource": ["*"]})}]}
    assert check("iam-no-wildcard-admin", ROLE, role) == [
        "Role 'res': inlinePolicies[1].policy.Statement[0] allows Action \"*\" on Resource "
        f'"*" (administrator access); {LEAST_PRIVILEGE}']
    assert check("iam-no-wildcard-admin", ROLE, changed(role, "inlinePolicies[1]")) == []


def test_service_wildcard() -> None:
    all_s3 = {"Effect": "Allow", "Action": ["S3:*", "ecr:GetAuthorizationToken"],
              "Resource": "*"}
    props = role_policy(READ_MODEL, all_s3)
    assert check("iam-no-service-wildcard", ROLE_POLICY, props) == [
        'RolePolicy \'res\': policy.Statement[1] allows "S3:*" on Resource "*" (every s3 '
        f"action on every resource); {LEAST_PRIVILEGE}"]
    assert check("iam-no-service-wildcard", ROLE_POLICY, props, allowed_services=["s3"]) == []
    scoped = {**all_s3, "Resource": "arn:aws:s3:::models/*"}
    assert check("iam-no-service-wildcard", ROLE_POLICY, role_policy(scoped)) == []
    assert check("iam-no-service-wildcard", ROLE_POLICY,
                 role_policy({**all_s3, "Action": "s3:Get*"})) == []


def test_unparsable_document_is_left_to_iam() -> None:
    assert check("iam-no-wildcard-admin", ROLE_POLICY, {"policy": "{not json"}) == []


@pytest.mark.parametrize(("arn", "name"), [
    ("arn:aws:iam::aws:policy/AdministratorAccess", "AdministratorAccess"),
    ("arn:aws-us-gov:iam::aws:policy/AdministratorAccess", "AdministratorAccess"),
    ("arn:aws:iam::aws:policy/AdministratorAccess-Amplify", "AdministratorAccess-Amplify"),
    ("arn:aws:iam::aws:policy/PowerUserAccess", "PowerUserAccess"),
    ("arn:aws:iam::aws:policy/AmazonS3FullAccess", "AmazonS3FullAccess"),
    ("arn:aws:iam::aws:policy/AWSLambda_FullAccess", "AWSLambda_FullAccess"),
    ("arn:aws:iam::aws:policy/service-role/AmazonSageMakerFullAccess",
     "AmazonSageMakerFullAccess"),
    ("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", None),
    ("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", None),
    ("arn:aws:iam::123456789012:policy/AdministratorAccess", None),  # customer managed
])
def test_broad_managed_policy(arn: str, name: str | None) -> None:
    assert broad_managed_policy(arn) == name


def test_admin_managed_policy_attachment() -> None:
    attachment = {"role": "serving-role",
                  "policyArn": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"}
    assert check("iam-no-admin-managed-policy", ATTACHMENT, attachment) == []
    admin = changed(attachment, "policyArn", "arn:aws:iam::aws:policy/AdministratorAccess")
    fix = ("attach a customer managed policy with only the actions needed, or list the policy "
           "in this rule's allowed_policies")
    assert check("iam-no-admin-managed-policy", ATTACHMENT, admin) == [
        "RolePolicyAttachment 'res': policyArn attaches the AWS managed policy "
        f'"AdministratorAccess" (broad access); {fix}']
    for kind in ("aws:iam/userPolicyAttachment:UserPolicyAttachment",
                 "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
                 "aws:iam/policyAttachment:PolicyAttachment"):
        assert len(check("iam-no-admin-managed-policy", kind, admin)) == 1
    full = changed(attachment, "policyArn", "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess")
    assert check("iam-no-admin-managed-policy", ATTACHMENT, full,
                 allowed_policies=["AmazonSageMakerFullAccess"]) == []
    # a policy of the program: its ARN is unknown before deployment, and never AWS managed
    unknown = changed(attachment, "policyArn", UNKNOWN_STRING_VALUE)
    assert check("iam-no-admin-managed-policy", ATTACHMENT, unknown) == []


def test_admin_managed_policy_on_role_and_exclusive_attachments() -> None:
    arns = ["arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy", UNKNOWN_STRING_VALUE,
            "arn:aws:iam::aws:policy/IAMFullAccess"]
    assert check("iam-no-admin-managed-policy", ROLE, {"managedPolicyArns": arns}) == [
        "Role 'res': managedPolicyArns[2] attaches the AWS managed policy \"IAMFullAccess\" "
        "(broad access); attach a customer managed policy with only the actions needed, or "
        "list the policy in this rule's allowed_policies"]
    exclusive = "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive"
    assert len(check("iam-no-admin-managed-policy", exclusive,
                     {"roleName": "r", "policyArns": arns})) == 1


# ------------------------------------------------------------------ logs and topics

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SNS_TOPIC = "aws:sns/topic:Topic"
LOGS = {"name": "/aws/sagemaker/Endpoints/demo", "retentionInDays": 30, "kmsKeyId": KEY}


def test_log_groups_pass() -> None:
    assert check("cloudwatch-log-retention", LOG_GROUP, LOGS) == []
    assert check("cloudwatch-log-retention", LOG_GROUP, changed(LOGS, "retentionInDays",
                                                                30.0)) == []
    assert check("cloudwatch-log-group-kms", LOG_GROUP, LOGS) == []


@pytest.mark.parametrize("days", [DELETE, 0])
def test_log_retention_must_be_set(days: Any) -> None:
    assert check("cloudwatch-log-retention", LOG_GROUP,
                 changed(LOGS, "retentionInDays", days), profile="staging") == [
        "LogGroup 'res': retentionInDays is not set (events never expire); set "
        "retention_in_days to 30 or more"]


def test_log_retention_minimum_by_profile() -> None:
    ninety = changed(LOGS, "retentionInDays", 90)
    assert check("cloudwatch-log-retention", LOG_GROUP, ninety, profile="staging") == []
    assert check("cloudwatch-log-retention", LOG_GROUP, ninety, profile="prod") == [
        "LogGroup 'res': retentionInDays is 90 days, below 365; set retention_in_days to 365 "
        "or more"]
    week = changed(LOGS, "retentionInDays", 7)
    assert check("cloudwatch-log-retention", LOG_GROUP, week, profile="dev") == []
    assert len(check("cloudwatch-log-retention", LOG_GROUP, week, min_retention_days=14)) == 1


def test_log_group_kms() -> None:
    assert check("cloudwatch-log-group-kms", LOG_GROUP, changed(LOGS, "kmsKeyId")) == [
        "LogGroup 'res': kmsKeyId is not set; set kms_key_id to the ARN of a KMS key whose "
        "policy lets logs.<region>.amazonaws.com use it"]
    unknown = changed(LOGS, "kmsKeyId", UNKNOWN_STRING_VALUE)
    assert check("cloudwatch-log-group-kms", LOG_GROUP, unknown) == []


def test_sns_topic_kms() -> None:
    topic = {"name": "alerts", "kmsMasterKeyId": KEY}
    assert check("sns-topic-kms", SNS_TOPIC, topic) == []
    for props in (changed(topic, "kmsMasterKeyId"), changed(topic, "kmsMasterKeyId", "")):
        assert check("sns-topic-kms", SNS_TOPIC, props) == [
            "Topic 'res': kmsMasterKeyId is not set; set kms_master_key_id to a customer "
            "managed KMS key whose policy lets the publishing services (e.g. "
            "cloudwatch.amazonaws.com) use it"]


# ------------------------------------------------------------------ SageMaker

ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
DATA_QUALITY = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
VPC = {"subnets": ["subnet-a", "subnet-b"], "securityGroupIds": ["sg-endpoint"]}
ENDPOINT = {
    "kmsKeyArn": KEY,
    "productionVariants": [{"variantName": "primary", "modelName": "demo", "instanceType":
                            "ml.m5.large", "initialInstanceCount": 1.0}],
    "dataCaptureConfig": {"enableCapture": True, "initialSamplingPercentage": 20.0,
                          "destinationS3Uri": "s3://artifacts/data-capture", "kmsKeyId": KEY,
                          "captureOptions": [{"captureMode": "Input"},
                                             {"captureMode": "Output"}]}}
SAGEMAKER_MODEL = {"executionRoleArn": "arn:aws:iam::123456789012:role/serving",
                   "enableNetworkIsolation": True, "vpcConfig": VPC,
                   "primaryContainer": {"image": "serving:0.1.0"}}
FEATURES = {"featureGroupName": "demo", "roleArn": "arn:aws:iam::123456789012:role/features",
            "offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://features/offline",
                                                       "kmsKeyId": KEY}},
            "onlineStoreConfig": {"enableOnlineStore": True, "securityConfig": {"kmsKeyId": KEY}}}
MONITOR = {
    "roleArn": "arn:aws:iam::123456789012:role/monitor",
    "dataQualityJobOutputConfig": {"kmsKeyId": KEY, "monitoringOutputs": {"s3Output": {
        "s3Uri": "s3://artifacts/monitoring", "localPath": "/opt/ml/processing/output"}}},
    "jobResources": {"clusterConfig": {"instanceType": "ml.m5.xlarge", "instanceCount": 1,
                                       "volumeSizeInGb": 20, "volumeKmsKeyId": KEY}},
    "networkConfig": {"enableNetworkIsolation": True,
                      "enableInterContainerTrafficEncryption": True, "vpcConfig": VPC}}


def test_sagemaker_resources_pass() -> None:
    for name in ("sagemaker-endpoint-kms", "sagemaker-data-capture-kms",
                 "sagemaker-data-capture"):
        assert check(name, ENDPOINT_CONFIG, ENDPOINT, profile="prod") == []
    for name in ("sagemaker-model-network-isolation", "sagemaker-model-vpc"):
        assert check(name, MODEL, SAGEMAKER_MODEL) == []
    assert check("sagemaker-feature-group-kms", FEATURE_GROUP, FEATURES) == []
    for name in ("sagemaker-monitoring-job-kms", "sagemaker-monitoring-job-network"):
        assert check(name, DATA_QUALITY, MONITOR) == []


def test_endpoint_kms() -> None:
    no_key = changed(ENDPOINT, "kmsKeyArn")
    assert check("sagemaker-endpoint-kms", ENDPOINT_CONFIG, no_key) == [
        "EndpointConfiguration 'res': kmsKeyArn is not set (storage volumes use the AWS managed "
        "key); set kms_key_arn to a KMS key ARN, or serve on an instance type with local NVMe "
        "storage (e.g. ml.g5), which is hardware-encrypted"]


@pytest.mark.parametrize("path", ["productionVariants[0]", "shadowProductionVariants[0]"])
def test_endpoint_on_instance_storage_needs_no_key(path: str) -> None:
    # AWS refuses a KMS key when any variant's instance type has local NVMe storage
    no_key = changed(ENDPOINT, "kmsKeyArn")
    no_key["shadowProductionVariants"] = copy.deepcopy(no_key["productionVariants"])
    gpu = changed(no_key, f"{path}.instanceType", "ml.g5.xlarge")
    assert check("sagemaker-endpoint-kms", ENDPOINT_CONFIG, gpu) == []
    assert has_instance_store("ml.g5.xlarge") and has_instance_store("p4d.24xlarge")
    assert not has_instance_store("ml.m5.large") and not has_instance_store("ml.p3.2xlarge")


def test_async_inference_output_kms() -> None:
    asynchronous = {**ENDPOINT, "asyncInferenceConfig": {"outputConfig": {
        "s3OutputPath": "s3://artifacts/async", "kmsKeyId": KEY}}}
    assert check("sagemaker-endpoint-kms", ENDPOINT_CONFIG, asynchronous) == []
    assert check("sagemaker-endpoint-kms", ENDPOINT_CONFIG, changed(
        asynchronous, "asyncInferenceConfig.outputConfig.kmsKeyId")) == [
        "EndpointConfiguration 'res': asyncInferenceConfig.outputConfig.kmsKeyId is not set; "
        "set it to a KMS key ARN for the inference results written to S3"]


def test_data_capture_kms() -> None:
    message = ("EndpointConfiguration 'res': dataCaptureConfig.kmsKeyId is not set (captured "
               "requests and responses use the bucket's default encryption); set it to the KMS "
               "key ARN of the capture bucket")
    no_key = changed(ENDPOINT, "dataCaptureConfig.kmsKeyId")
    assert check("sagemaker-data-capture-kms", ENDPOINT_CONFIG, no_key) == [message]
    # without enableCapture AWS captures
    unset = changed(no_key, "dataCaptureConfig.enableCapture")
    assert check("sagemaker-data-capture-kms", ENDPOINT_CONFIG, unset) == [message]
    off = changed(no_key, "dataCaptureConfig.enableCapture", False)
    assert check("sagemaker-data-capture-kms", ENDPOINT_CONFIG, off) == []
    assert check("sagemaker-data-capture-kms", ENDPOINT_CONFIG,
                 changed(ENDPOINT, "dataCaptureConfig")) == []


def test_data_capture_required_outside_dev() -> None:
    fix = ("capture Input and Output to S3 (serving.data_capture_percent above 0 in the stack "
           "config)")
    off = changed(ENDPOINT, "dataCaptureConfig.enableCapture", False)
    assert check("sagemaker-data-capture", ENDPOINT_CONFIG, off, profile="prod") == [
        f"EndpointConfiguration 'res': dataCaptureConfig.enableCapture is not true; {fix}"]
    missing = changed(ENDPOINT, "dataCaptureConfig")
    assert check("sagemaker-data-capture", ENDPOINT_CONFIG, missing, profile="staging") == [
        "EndpointConfiguration 'res': dataCaptureConfig.enableCapture is not set "
        f"(dataCaptureConfig is missing); {fix}"]
    assert check("sagemaker-data-capture", ENDPOINT_CONFIG, off, profile="dev") == []
    assert len(check("sagemaker-data-capture", ENDPOINT_CONFIG, off, profile="dev",
                     require_capture=True)) == 1


@pytest.mark.parametrize("value", [False, DELETE])
def test_model_network_isolation(value: Any) -> None:
    props = changed(SAGEMAKER_MODEL, "enableNetworkIsolation", value)
    assert check("sagemaker-model-network-isolation", MODEL, props) == [
        "Model 'res': enableNetworkIsolation is not true (the model container can reach the "
        "network); set enable_network_isolation=True and package everything the model needs "
        "into the image or model data"]


def test_model_vpc() -> None:
    fix = "set vpc_config with the private subnets and a security group of the endpoint"
    assert check("sagemaker-model-vpc", MODEL, changed(SAGEMAKER_MODEL, "vpcConfig")) == [
        f"Model 'res': vpcConfig is not set (the model runs outside the VPC); {fix}"]
    assert check("sagemaker-model-vpc", MODEL,
                 changed(SAGEMAKER_MODEL, "vpcConfig.subnets", [])) == [
        f"Model 'res': vpcConfig.subnets is empty; {fix}"]
    assert check("sagemaker-model-vpc", MODEL,
                 changed(SAGEMAKER_MODEL, "vpcConfig.securityGroupIds")) == [
        f"Model 'res': vpcConfig.securityGroupIds is empty; {fix}"]
    unknown = changed(SAGEMAKER_MODEL, "vpcConfig.subnets", UNKNOWN_STRING_VALUE)
    assert check("sagemaker-model-vpc", MODEL, unknown) == []


def test_feature_group_kms() -> None:
    assert check("sagemaker-feature-group-kms", FEATURE_GROUP,
                 changed(FEATURES, "offlineStoreConfig.s3StorageConfig.kmsKeyId")) == [
        "FeatureGroup 'res': offlineStoreConfig.s3StorageConfig.kmsKeyId is not set; set it to "
        "the KMS key ARN of the offline store bucket"]
    no_online_key = changed(FEATURES, "onlineStoreConfig.securityConfig")
    assert check("sagemaker-feature-group-kms", FEATURE_GROUP, no_online_key) == [
        "FeatureGroup 'res': onlineStoreConfig.securityConfig.kmsKeyId is not set (the online "
        "store uses an AWS owned key); set it to a KMS key ARN"]
    online_off = changed(no_online_key, "onlineStoreConfig.enableOnlineStore", False)
    assert check("sagemaker-feature-group-kms", FEATURE_GROUP, online_off) == []
    assert check("sagemaker-feature-group-kms", FEATURE_GROUP,
                 changed(FEATURES, "offlineStoreConfig")) == []


def test_monitoring_job_kms() -> None:
    assert check("sagemaker-monitoring-job-kms", DATA_QUALITY,
                 changed(MONITOR, "dataQualityJobOutputConfig.kmsKeyId")) == [
        "DataQualityJobDefinition 'res': dataQualityJobOutputConfig.kmsKeyId is not set; set "
        "it to the KMS key ARN for the reports written to S3"]
    no_volume_key = changed(MONITOR, "jobResources.clusterConfig.volumeKmsKeyId")
    assert check("sagemaker-monitoring-job-kms", DATA_QUALITY, no_volume_key) == [
        "DataQualityJobDefinition 'res': jobResources.clusterConfig.volumeKmsKeyId is not set; "
        "set it to a KMS key ARN for the processing volume"]
    local = changed(no_volume_key, "jobResources.clusterConfig.instanceType", "ml.m5d.xlarge")
    assert check("sagemaker-monitoring-job-kms", DATA_QUALITY, local) == []


@pytest.mark.parametrize(("key", "snake"), [
    ("enableNetworkIsolation", "enable_network_isolation"),
    ("enableInterContainerTrafficEncryption", "enable_inter_container_traffic_encryption")])
def test_monitoring_job_network_flags(key: str, snake: str) -> None:
    assert check("sagemaker-monitoring-job-network", DATA_QUALITY,
                 changed(MONITOR, f"networkConfig.{key}", False)) == [
        f"DataQualityJobDefinition 'res': networkConfig.{key} is not true; set network_config "
        f"{snake}=True"]


def test_monitoring_job_vpc() -> None:
    assert check("sagemaker-monitoring-job-network", DATA_QUALITY,
                 changed(MONITOR, "networkConfig.vpcConfig")) == [
        "DataQualityJobDefinition 'res': networkConfig.vpcConfig does not name subnets and "
        "security groups (the job runs outside the VPC); set network_config vpc_config with "
        "the private subnets and a security group"]
    assert len(check("sagemaker-monitoring-job-network", DATA_QUALITY,
                     changed(MONITOR, "networkConfig"))) == 3


# ------------------------------------------------------------------ the example stacks

STACKS = [("churn-model", "dev"), ("churn-model", "staging"), ("churn-model", "prod"),
          ("lifetime-value", "dev"), ("lifetime-value", "prod")]


@functools.cache
def preview(example: str, stack: str) -> Any:
    from mlscaffold.infra import preview_stack

    return preview_stack(EXAMPLES / example, stack)


def evaluate_mine(graph: Any, example: str, stack: str) -> Any:
    from mlscaffold.policies.config import pack_config
    from mlscaffold.policies.engine import evaluate
    from mlscaffold.spec import load_spec
    from mlscaffold.stacks.config import environment_profile

    spec = load_spec(EXAMPLES / example / "mlscaffold.yaml")
    config = pack_config("security", environment=stack,
                         profile=environment_profile(stack, spec.environments), region=spec.region)
    return evaluate(graph, {"security": {k: v for k, v in config.items() if k in MINE}})


@pytest.mark.parametrize(("example", "stack"), STACKS)
def test_example_stacks_pass(example: str, stack: str) -> None:
    graph = preview(example, stack)
    result = evaluate_mine(graph, example, stack)
    assert result.rules == len(MINE)
    assert [(f.rule, f.resource, f.message) for f in result.findings] == []
    assert graph.of_type(BUCKET) and graph.of_type(ECR) and graph.of_type(KMS_KEY)


@pytest.mark.parametrize("kind", [ENCRYPTION, PUBLIC_ACCESS, BUCKET_POLICY, VERSIONING])
def test_stack_rules_find_each_bucket_configuration(kind: str) -> None:
    # without its configuration resource, the artifacts bucket of a real graph is reported
    graph = preview("churn-model", "dev")
    bucket = "churn-model-dev-registry-artifacts"
    removed = [r for r in graph.resources if r.type == kind and r.inputs["bucket"] == (
        f"{bucket}-id")]
    assert len(removed) == 1
    result = evaluate_mine(dataclasses.replace(
        graph, resources=[r for r in graph.resources if r not in removed]), "churn-model", "dev")
    assert [(f.resource, f.level) for f in result.findings] == [(bucket, "mandatory")]


# ------------------------------------------------------------------ progressive delivery

SAGEMAKER_ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
DEPLOYED = {"name": "demo-prod", "endpointConfigName": "demo-prod-serving-config-1a2b3c4",
            "deploymentConfig": {
                "blueGreenUpdatePolicy": {
                    "trafficRoutingConfiguration": {
                        "type": "CANARY", "waitIntervalInSeconds": 600,
                        "canarySize": {"type": "INSTANCE_COUNT", "value": 1}},
                    "terminationWaitInSeconds": 300,
                    "maximumExecutionTimeoutInSeconds": 3600},
                "autoRollbackConfiguration": {"alarms": [
                    {"alarmName": "demo-prod-rollback-5xx"},
                    {"alarmName": "demo-prod-rollback-latency-p99"}]}}}


def test_endpoint_rolls_back_on_alarms_outside_dev() -> None:
    for profile in ("staging", "prod"):
        assert check("sagemaker-endpoint-auto-rollback", SAGEMAKER_ENDPOINT, DEPLOYED,
                     profile=profile) == []
        assert check("sagemaker-endpoint-rollback-window", SAGEMAKER_ENDPOINT, DEPLOYED,
                     profile=profile) == []
    no_alarms = changed(DEPLOYED, "deploymentConfig.autoRollbackConfiguration.alarms", [])
    assert check("sagemaker-endpoint-auto-rollback", SAGEMAKER_ENDPOINT, no_alarms,
                 profile="prod") == [
        "Endpoint 'res': deploymentConfig.autoRollbackConfiguration.alarms is empty (nothing "
        "rolls a failing update back); name CloudWatch alarms on the endpoint's errors and "
        "latency, as mlscaffold's serving stack does (<endpoint>-rollback-*)"]
    no_policy = changed(DEPLOYED, "deploymentConfig.blueGreenUpdatePolicy")
    assert check("sagemaker-endpoint-auto-rollback", SAGEMAKER_ENDPOINT, no_policy,
                 profile="prod") == [
        "Endpoint 'res': deploymentConfig.blueGreenUpdatePolicy is not set (an update moves "
        "every request to the new model with no time to roll back); set "
        "deployment_config.blue_green_update_policy (serving.rollout in the stack config)"]
    assert len(check("sagemaker-endpoint-auto-rollback", SAGEMAKER_ENDPOINT,
                     changed(DEPLOYED, "deploymentConfig"), profile="staging")) == 2
    # dev does not require it, unless the policy file says so
    assert check("sagemaker-endpoint-auto-rollback", SAGEMAKER_ENDPOINT, no_alarms) == []
    assert len(check("sagemaker-endpoint-auto-rollback", SAGEMAKER_ENDPOINT, no_alarms,
                     require_auto_rollback=True)) == 1


def test_endpoint_bakes_long_enough_for_its_rollback_alarms() -> None:
    short = changed(DEPLOYED, "deploymentConfig.blueGreenUpdatePolicy."
                              "trafficRoutingConfiguration.waitIntervalInSeconds", 60)
    assert check("sagemaker-endpoint-rollback-window", SAGEMAKER_ENDPOINT, short) == [
        "Endpoint 'res': deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration."
        "waitIntervalInSeconds is 60, shorter than the 120 seconds the rollback alarms need to "
        "fire before traffic moves on; set serving.rollout.wait_seconds to 120 or more, or "
        "lower sagemaker-endpoint-rollback-window.min_wait_seconds in the policy file"]
    assert check("sagemaker-endpoint-rollback-window", SAGEMAKER_ENDPOINT, short,
                 min_wait_seconds=60) == []
    # without alarms there is nothing to wait for (auto-rollback reports that)
    assert check("sagemaker-endpoint-rollback-window", SAGEMAKER_ENDPOINT, changed(
        short, "deploymentConfig.autoRollbackConfiguration")) == []
