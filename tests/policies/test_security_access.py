"""Security rules of who reaches the data: network interfaces, service trust and key policies,
cross-account reads, S3 access logs and CloudTrail data events.

Each test builds the passing case, changes one field and asserts the exact rule and message
through pulumi_policy's public API (see conftest). test_security_data.py runs these rules on the
example projects' stacks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from mlscaffold.policies.registry import RULES

from .conftest import DELETE, changed, check, check_stack

ACCOUNT = "123456789012"
PROD = "210987654321"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
KMS_KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
ENCRYPTION = ("aws:s3/bucketServerSideEncryptionConfiguration:"
              "BucketServerSideEncryptionConfiguration")
TRAIL = "aws:cloudtrail/trail:Trail"
VPC_ARN = f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/vpc-1"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_rule_table_entries() -> None:
    for name, stack in [("iam-network-interface-scoped", False),
                        ("iam-service-trust-conditions", False),
                        ("kms-key-service-conditions", False),
                        ("s3-cross-account-read-scoped", False),
                        ("s3-bucket-access-logging", True), ("s3-data-events-audited", True)]:
        entry = RULES[name]
        assert (entry.pack, entry.level, entry.stack) == ("security", "mandatory", stack)
        assert entry.description.endswith(".") and entry.resource_types


# ------------------------------------------------------------------ network interfaces

DESCRIBE = {"Sid": "Describe", "Effect": "Allow", "Resource": "*",
            "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]}
MANAGE = {"Sid": "Manage", "Effect": "Allow",
          "Action": ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                     "ec2:DeleteNetworkInterfacePermission"],
          "Resource": f"arn:aws:ec2:us-east-1:{ACCOUNT}:network-interface/*",
          "Condition": {"ArnEquals": {"ec2:Vpc": VPC_ARN}}}
ENI_FIX = ("grant them on network-interface ARNs with an ArnEquals ec2:Vpc condition on the "
           "VPC's ARN, and CreateNetworkInterface on that VPC's subnets and security groups; "
           'keep only the ec2:Describe* actions on "*"')


def test_scoped_network_interface_actions_pass() -> None:
    props = {"role": "r", "policy": document(DESCRIBE, MANAGE)}
    assert check("iam-network-interface-scoped", ROLE_POLICY, props) == []
    # on every resource, but only in one VPC or subnet
    for key in ("ec2:Vpc", "ec2:Subnet"):
        anywhere = {**MANAGE, "Resource": "*", "Condition": {"ArnEquals": {key: VPC_ARN}}}
        assert check("iam-network-interface-scoped", ROLE_POLICY,
                     {"policy": document(anywhere)}) == []


ALL_MANAGED = ("ec2:CreateNetworkInterfacePermission, ec2:DeleteNetworkInterface, "
               "ec2:DeleteNetworkInterfacePermission")


@pytest.mark.parametrize(("action", "condition", "granted"), [
    (MANAGE["Action"], DELETE, ALL_MANAGED),
    (MANAGE["Action"], {"ArnEqualsIfExists": {"ec2:Vpc": VPC_ARN}}, ALL_MANAGED),
    (MANAGE["Action"], {"StringEquals": {"aws:ResourceAccount": ACCOUNT}}, ALL_MANAGED),
    ("ec2:*NetworkInterface", DELETE, "ec2:CreateNetworkInterface, ec2:DeleteNetworkInterface"),
    (["EC2:CreateNetworkInterface"], DELETE, "ec2:CreateNetworkInterface"),
])
def test_network_interface_actions_on_every_resource(action: Any, condition: Any,
                                                     granted: str) -> None:
    wide = changed({**MANAGE, "Resource": "*", "Action": action}, "Condition", condition)
    assert check("iam-network-interface-scoped", ROLE_POLICY,
                 {"policy": document(DESCRIBE, wide)}) == [
        f'RolePolicy \'res\': policy.Statement[1] allows {granted} on Resource "*" with no '
        f"ec2:Vpc or ec2:Subnet condition (network interfaces in any VPC of the account); "
        f"{ENI_FIX}"]


def test_network_interface_actions_in_role_inline_policies() -> None:
    wide = {**MANAGE, "Resource": "*", "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}
    role = {"assumeRolePolicy": document(), "inlinePolicies": [
        {"name": "eni", "policy": document(wide)}]}
    assert check("iam-network-interface-scoped", ROLE, role) == [
        "Role 'res': inlinePolicies[0].policy.Statement[0] allows "
        "ec2:CreateNetworkInterfacePermission, ec2:DeleteNetworkInterface, "
        'ec2:DeleteNetworkInterfacePermission on Resource "*" with no ec2:Vpc or ec2:Subnet '
        f"condition (network interfaces in any VPC of the account); {ENI_FIX}"]


# ------------------------------------------------------------------ trust policies

TRUST = {"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"Service": "sagemaker.amazonaws.com"},
         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
TRUST_FIX = ("add a StringEquals aws:SourceAccount condition with this account's ID, or an "
             "ArnLike aws:SourceArn condition on this account's resources")


def trust_message(service: str = "sagemaker.amazonaws.com") -> str:
    return (f"Role 'res': assumeRolePolicy.Statement[0] lets {service} assume the role with "
            "no aws:SourceAccount or aws:SourceArn condition (another account's resources "
            f"could have the service act with this role: confused deputy); {TRUST_FIX}")


def test_trust_with_source_conditions_passes() -> None:
    assert check("iam-service-trust-conditions", ROLE, {"assumeRolePolicy": document(TRUST)}) == []
    by_arn = changed(TRUST, "Condition", {"ArnLike": {
        "aws:SourceArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:*"}})
    assert check("iam-service-trust-conditions", ROLE,
                 {"assumeRolePolicy": document(by_arn)}) == []
    # services outside the list, and other principals, are not this rule's
    eks = changed(changed(TRUST, "Condition"), "Principal", {"Service": "eks.amazonaws.com"})
    assert check("iam-service-trust-conditions", ROLE, {"assumeRolePolicy": document(eks)}) == []


@pytest.mark.parametrize("condition", [
    DELETE,
    {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}},
    {"StringLike": {"aws:SourceAccount": "*"}},
    {"StringEquals": {"sts:ExternalId": "x"}},
])
def test_trust_without_source_conditions(condition: Any) -> None:
    bare = changed(TRUST, "Condition", condition)
    assert check("iam-service-trust-conditions", ROLE,
                 {"assumeRolePolicy": document(bare)}) == [trust_message()]


def test_trust_services_are_a_setting() -> None:
    flow_logs = changed(changed(TRUST, "Condition"), "Principal",
                        {"Service": ["ec2.amazonaws.com", "vpc-flow-logs.amazonaws.com"]})
    assert check("iam-service-trust-conditions", ROLE,
                 {"assumeRolePolicy": document(flow_logs)}) == [
        trust_message("vpc-flow-logs.amazonaws.com")]
    eks = changed(changed(TRUST, "Condition"), "Principal", {"Service": "eks.amazonaws.com"})
    assert check("iam-service-trust-conditions", ROLE, {"assumeRolePolicy": document(eks)},
                 services=["eks.amazonaws.com"]) == [trust_message("eks.amazonaws.com")]


# ------------------------------------------------------------------ key policies

ROOT = {"Sid": "AccountIam", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
ALARMS = {"Sid": "Alarms", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
          "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
          "Condition": {"StringEquals": {
              "kms:EncryptionContext:aws:sns:topicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:t"}}}
KEY_FIX = ("add a condition on aws:SourceAccount, aws:SourceArn, kms:EncryptionContext:<key>, "
           "kms:ViaService or kms:CallerAccount that names this account or its resources")


@pytest.mark.parametrize("condition", [
    {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    {"ArnLike": {"aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/t"}},
    {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}},
    {"StringEquals": {"kms:CallerAccount": ACCOUNT}},
    {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["aws:logs:arn"]}},
])
def test_key_policy_with_service_conditions_passes(condition: dict[str, Any]) -> None:
    assert check("kms-key-service-conditions", KMS_KEY, {"policy": document(ROOT, ALARMS)}) == []
    assert check("kms-key-service-conditions", KEY_POLICY, {
        "keyId": "k", "policy": document(ROOT, changed(ALARMS, "Condition", condition))}) == []


def test_key_policy_grant_to_a_service_without_condition() -> None:
    for condition in (DELETE, {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}):
        props = {"policy": document(ROOT, changed(ALARMS, "Condition", condition))}
        assert check("kms-key-service-conditions", KMS_KEY, props) == [
            "Key 'res': policy.Statement[1] lets cloudwatch.amazonaws.com use the key with no "
            "condition (the service could use it for any account's resources: confused "
            f"deputy); {KEY_FIX}"]
        assert check("kms-key-service-conditions", KMS_KEY, props,
                     exempt_services=["cloudwatch.amazonaws.com"]) == []
    # a Deny is no grant
    deny = changed(changed(ALARMS, "Condition"), "Effect", "Deny")
    assert check("kms-key-service-conditions", KMS_KEY, {"policy": document(ROOT, deny)}) == []


# ------------------------------------------------------------------ cross-account reads

READERS = {"AWS": [f"arn:aws:iam::{PROD}:root"]}
LIST = {"Sid": "CrossAccountList", "Effect": "Allow", "Principal": READERS,
        "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::data",
        "Condition": {"StringLike": {"s3:prefix": ["models/*"]}}}
READ = {"Sid": "CrossAccountRead", "Effect": "Allow", "Principal": READERS,
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/models/*"}
TLS = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
       "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"],
       "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
READ_FIX = ('grant s3:GetObject on object ARNs under a prefix (e.g. "<bucket ARN>/models/*") '
            'and s3:ListBucket with a StringLike s3:prefix condition (e.g. "models/*")')


def read_message(resource: str, who: str = f"arn:aws:iam::{PROD}:root",
                 index: int = 2) -> str:
    return (f"BucketPolicy 'res': policy.Statement[{index}].Resource lets {who} read every "
            f'object ("{resource}"), not only those under a prefix; {READ_FIX}')


def list_message(who: str = f"arn:aws:iam::{PROD}:root", index: int = 1) -> str:
    return (f"BucketPolicy 'res': policy.Statement[{index}].Condition lets {who} list every key "
            f"of the bucket (s3:ListBucket without an s3:prefix condition); {READ_FIX}")


def test_prefix_scoped_cross_account_read_passes() -> None:
    props = {"bucket": "data-id", "policy": document(TLS, LIST, READ)}
    assert check("s3-cross-account-read-scoped", BUCKET_POLICY, props) == []
    assert check("s3-cross-account-read-scoped", BUCKET, {"bucketPrefix": "d-"}) == []


@pytest.mark.parametrize("resource", ["arn:aws:s3:::data/*", "arn:aws:s3:::data/", "*",
                                      "arn:aws:s3:::*"])
def test_cross_account_read_of_every_object(resource: str) -> None:
    props = {"policy": document(TLS, LIST, changed(READ, "Resource", [resource]))}
    assert check("s3-cross-account-read-scoped", BUCKET_POLICY, props) == [read_message(resource)]


@pytest.mark.parametrize("condition", [DELETE, {"StringLike": {"s3:prefix": "*"}},
                                       {"StringLikeIfExists": {"s3:prefix": "models/*"}}])
def test_cross_account_list_without_prefix(condition: Any) -> None:
    props = {"policy": document(TLS, changed(LIST, "Condition", condition), READ)}
    assert check("s3-cross-account-read-scoped", BUCKET_POLICY, props) == [list_message()]


def test_wildcard_actions_and_principals_count() -> None:
    everything = {**READ, "Principal": "*", "Action": "s3:Get*", "Resource": "arn:aws:s3:::data/*"}
    props = {"policy": document(TLS, LIST, everything)}
    assert check("s3-cross-account-read-scoped", BUCKET_POLICY, props) == [
        read_message("arn:aws:s3:::data/*", who="*")]
    both = {**READ, "Action": "s3:*", "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]}
    assert check("s3-cross-account-read-scoped", BUCKET, {"policy": document(both)}) == [
        m.replace("BucketPolicy", "Bucket") for m in (
            read_message("arn:aws:s3:::data/*", index=0), list_message(index=0))]


def test_own_accounts_are_a_setting() -> None:
    own = changed(READ, "Principal", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader"})
    props = {"policy": document(changed(own, "Resource", "arn:aws:s3:::data/*"))}
    assert len(check("s3-cross-account-read-scoped", BUCKET_POLICY, props)) == 1
    assert check("s3-cross-account-read-scoped", BUCKET_POLICY, props,
                 own_account_ids=[ACCOUNT]) == []


# ------------------------------------------------------------------ access logs

KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/data"
KMS_SSE = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                             "kmsMasterKeyId": KEY}}]}
SSE_S3 = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
ACCESS_LOGS = {"bucket": "data-id", "targetBucket": "logs-id", "targetPrefix": "data/"}
ACCESS_LOG_FIX = ("add an aws.s3.BucketLogging with bucket=<the bucket>.id and target_bucket=<a "
                  "log bucket of the stack> (SSE-S3, a bucket policy letting "
                  "logging.s3.amazonaws.com put objects for this bucket)")


def logged_stack(logging: dict[str, Any] | None = None) -> list[tuple[str, str, dict]]:
    """A data bucket logging into a log bucket (mocked ids '<name>-id')."""
    return [(BUCKET, "data", {"bucketPrefix": "data-"}), (BUCKET, "logs", {"bucketPrefix": "l-"}),
            (LOGGING, "data-access-logs", ACCESS_LOGS if logging is None else logging)]


def test_logged_bucket_and_its_log_bucket_pass() -> None:
    assert check_stack("s3-bucket-access-logging", logged_stack()) == []


def test_bucket_without_access_logging() -> None:
    other = changed(ACCESS_LOGS, "bucket", "other-id")
    assert check_stack("s3-bucket-access-logging", logged_stack(other)) == [
        ("data", "Bucket 'data': access logging is not enabled (no BucketLogging applies to the "
                 f"bucket): requests to it leave no record; {ACCESS_LOG_FIX}")]
    # the deprecated inline setting counts
    stack = [(BUCKET, "data", {"bucketPrefix": "d-", "logging": {"targetBucket": "logs-id"}}),
             (BUCKET, "logs", {"bucketPrefix": "l-"})]
    assert check_stack("s3-bucket-access-logging", stack) == []


def test_bucket_logging_into_itself() -> None:
    to_itself = changed(ACCESS_LOGS, "targetBucket", "data-id")
    assert check_stack("s3-bucket-access-logging", logged_stack(to_itself)) == [
        ("data-access-logs", "BucketLogging 'data-access-logs': targetBucket is the logged "
                             "bucket itself (each log delivery would be logged again, without "
                             "end); deliver the logs to a separate log bucket"),
        ("logs", "Bucket 'logs': access logging is not enabled (no BucketLogging applies to "
                 f"the bucket): requests to it leave no record; {ACCESS_LOG_FIX}")]


def test_log_target_unknown_during_preview_is_undecided() -> None:
    with pytest.raises(UnknownValueError):
        check_stack("s3-bucket-access-logging",
                    logged_stack(changed(ACCESS_LOGS, "targetBucket", UNKNOWN_STRING_VALUE)))


def test_only_access_log_targets_may_use_sse_s3() -> None:
    stack = [*logged_stack(), (ENCRYPTION, "data-encryption", {**KMS_SSE, "bucket": "data-id"}),
             (ENCRYPTION, "logs-encryption", {**SSE_S3, "bucket": "logs-id"})]
    assert check_stack("s3-bucket-kms-encryption", stack) == []
    not_a_target = [r for r in stack if r[0] != LOGGING]
    assert check_stack("s3-bucket-kms-encryption", not_a_target) == [(
        "logs-encryption",
        "BucketServerSideEncryptionConfiguration 'logs-encryption': rules[0].applyServerSide"
        'EncryptionByDefault.sseAlgorithm is "AES256", not KMS; set sse_algorithm="aws:kms" '
        "and kms_master_key_id to a customer managed KMS key")]


# ------------------------------------------------------------------ data events

SELECTOR = {"name": "data buckets", "fieldSelectors": [
    {"field": "eventCategory", "equals": ["Data"]},
    {"field": "resources.type", "equals": ["AWS::S3::Object"]},
    {"field": "resources.ARN", "startsWiths": ["arn:aws:s3:::data/"]}]}
AUDIT = {"name": "audit", "s3BucketName": "logs-id", "enableLogFileValidation": True,
         "advancedEventSelectors": [SELECTOR]}
DATA_EVENTS_MESSAGE = (
    "Bucket 'data': data events are recorded by no CloudTrail trail (reads and writes of its "
    'objects leave no audit record); add an aws.cloudtrail.Trail with an advanced event '
    'selector: eventCategory "Data", resources.type "AWS::S3::Object", resources.ARN starts '
    'with "arn:aws:s3:::<bucket>/" (read and write events)')


def audited_stack(trail: dict[str, Any] | None = None) -> list[tuple[str, str, dict]]:
    return [*logged_stack(), (TRAIL, "audit", AUDIT if trail is None else trail)]


def test_bucket_whose_data_events_are_recorded_passes() -> None:
    assert check_stack("s3-data-events-audited", audited_stack()) == []
    every_bucket = changed(AUDIT, "advancedEventSelectors[0].fieldSelectors[2]")
    assert check_stack("s3-data-events-audited", audited_stack(every_bucket)) == []
    basic = {"eventSelectors": [{"readWriteType": "All", "dataResources": [
        {"type": "AWS::S3::Object", "values": ["arn:aws:s3:::data/"]}]}]}
    assert check_stack("s3-data-events-audited", audited_stack(basic)) == []


@pytest.mark.parametrize(("path", "value"), [
    ("advancedEventSelectors[0].fieldSelectors[2].startsWiths", ["arn:aws:s3:::other/"]),
    ("advancedEventSelectors[0].fieldSelectors[2].notStartsWiths", ["arn:aws:s3:::data/"]),
    ("advancedEventSelectors[0].fieldSelectors[1].equals", ["AWS::Lambda::Function"]),
    ("advancedEventSelectors[0].fieldSelectors[0].equals", ["Management"]),
    ("advancedEventSelectors[0].fieldSelectors[3]", {"field": "readOnly", "equals": ["true"]}),
    ("enableLogging", False),
    ("advancedEventSelectors", DELETE),
])
def test_bucket_whose_data_events_are_not_all_recorded(path: str, value: Any) -> None:
    trail = changed(AUDIT, "advancedEventSelectors[0].fieldSelectors", [
        *SELECTOR["fieldSelectors"], None]) if path.endswith("[3]") else AUDIT
    assert check_stack("s3-data-events-audited", audited_stack(changed(trail, path, value))) == [
        ("data", DATA_EVENTS_MESSAGE)]


def test_without_a_trail_every_data_bucket_is_reported() -> None:
    # the log bucket is left out: recording the trail's own deliveries would never end
    assert check_stack("s3-data-events-audited", logged_stack()) == [("data", DATA_EVENTS_MESSAGE)]


def test_selector_unknown_during_preview_is_undecided() -> None:
    unknown = changed(AUDIT, "advancedEventSelectors[0].fieldSelectors[2].startsWiths",
                      [UNKNOWN_STRING_VALUE])
    with pytest.raises(UnknownValueError):
        check_stack("s3-data-events-audited", audited_stack(unknown))


# ------------------------------------------------------------------ a real stack

def test_rules_find_the_audit_resources_of_a_real_stack() -> None:
    """Without one BucketLogging, or without the trail, the example's buckets are reported."""
    import dataclasses

    from .test_security_data import evaluate_mine, preview

    graph = preview("churn-model", "dev")
    artifacts = "churn-model-dev-registry-artifacts"
    without_logging = [r for r in graph.resources
                       if not (r.type == LOGGING and r.inputs["bucket"] == artifacts)]
    assert len(without_logging) == len(graph.resources) - 1
    result = evaluate_mine(dataclasses.replace(graph, resources=without_logging),
                           "churn-model", "dev")
    assert [(f.rule, f.resource) for f in result.findings] == [
        ("s3-bucket-access-logging", artifacts)]

    without_trail = [r for r in graph.resources if r.type != TRAIL]
    result = evaluate_mine(dataclasses.replace(graph, resources=without_trail),
                           "churn-model", "dev")
    assert sorted((f.rule, f.resource) for f in result.findings) == [
        ("s3-data-events-audited", bucket) for bucket in (
            "churn-model-dev-capture", "churn-model-dev-features-offline-store", artifacts)]
