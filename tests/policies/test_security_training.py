"""The rules of issue 14's training resources: who may pass which role (the launcher
policy), whom EKS Pod Identity serves (the Kubernetes Job's role), the training
namespace's Pod Security level, and the Athena workgroup's results (training data from the
feature store). Each test builds the passing case, changes one field and asserts
the exact rule and message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlscaffold.policies.registry import RULES

from .conftest import DELETE, changed, check

ACCOUNT = "123456789012"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
NAMESPACE = "kubernetes:core/v1:Namespace"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/demo-dev-training-role"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/data"
PASS = {"Sid": "PassTrainingRole", "Effect": "Allow", "Action": "iam:PassRole",
        "Resource": ROLE_ARN,
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}
PASS_FIX = ("name the role ARNs the principal passes and add a StringEquals "
            "iam:PassedToService condition naming the service that uses them (e.g. "
            "sagemaker.amazonaws.com)")


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_rule_table_entries() -> None:
    for name, severity in [("iam-pass-role-scoped", "high"),
                           ("iam-pod-identity-trust-scoped", "medium"),
                           ("k8s-namespace-pod-security", "medium")]:
        entry = RULES[name]
        assert (entry.pack, entry.level, entry.severity) == ("security", "mandatory", severity)
        assert entry.description.endswith(".") and entry.resource_types


# ------------------------------------------------------------------ iam:PassRole


def test_a_named_role_passed_to_one_service_passes() -> None:
    assert check("iam-pass-role-scoped", POLICY, {"policy": document(PASS)}) == []
    # other actions, and "*" / "iam:*" (the wildcard rules' findings), are not this rule's
    other = changed(PASS, "Action", "iam:GetRole")
    assert check("iam-pass-role-scoped", POLICY, {"policy": document(other)}) == []
    wildcard = changed(changed(PASS, "Action", "iam:*"), "Condition")
    assert check("iam-pass-role-scoped", POLICY, {"policy": document(wildcard)}) == []


@pytest.mark.parametrize("resource", ["*", f"arn:aws:iam::{ACCOUNT}:role/*"])
def test_pass_role_on_every_role(resource: str) -> None:
    broad = changed(PASS, "Resource", [ROLE_ARN, resource])
    assert check("iam-pass-role-scoped", POLICY, {"policy": document(broad)}) == [
        "Policy 'res': policy.Statement[0] allows iam:PassRole on every role of the account; "
        + PASS_FIX]


@pytest.mark.parametrize("condition", [
    DELETE, {"StringEqualsIfExists": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}])
def test_pass_role_without_the_service(condition: Any) -> None:
    bare = changed(PASS, "Condition", condition)
    assert check("iam-pass-role-scoped", POLICY, {"policy": document(bare)}) == [
        "Policy 'res': policy.Statement[0] allows iam:PassRole with no iam:PassedToService "
        "condition (the role may be passed to any service); " + PASS_FIX]


def test_pass_role_patterns_and_inline_policies_count() -> None:
    pattern = changed(changed(PASS, "Action", ["s3:GetObject", "iam:Pass*"]), "Condition")
    found = check("iam-pass-role-scoped", ROLE, {"inlinePolicies": [
        {"name": "p", "policy": document(pattern)}]})
    assert found == ["Role 'res': inlinePolicies[0].policy.Statement[0] allows iam:PassRole "
                     "with no iam:PassedToService condition (the role may be passed to any "
                     "service); " + PASS_FIX]


# ------------------------------------------------------------------ EKS Pod Identity

TAGS = {"aws:RequestTag/eks-cluster-name": "demo-dev-eks",
        "aws:RequestTag/kubernetes-namespace": "ml-training",
        "aws:RequestTag/kubernetes-service-account": "trainer"}
TRUST = {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
         "Action": ["sts:AssumeRole", "sts:TagSession"],
         "Condition": {"StringEquals": TAGS}}
TRUST_FIX = ("add a StringEquals condition on each of aws:RequestTag/eks-cluster-name, "
             "aws:RequestTag/kubernetes-namespace, aws:RequestTag/kubernetes-service-account")


def test_a_trust_for_one_service_account_passes() -> None:
    assert check("iam-pod-identity-trust-scoped", ROLE,
                 {"assumeRolePolicy": document(TRUST)}) == []
    ec2 = changed(changed(TRUST, "Condition"), "Principal", {"Service": "ec2.amazonaws.com"})
    assert check("iam-pod-identity-trust-scoped", ROLE,
                 {"assumeRolePolicy": document(ec2)}) == []


def test_a_trust_without_conditions() -> None:
    bare = changed(TRUST, "Condition")
    assert check("iam-pod-identity-trust-scoped", ROLE,
                 {"assumeRolePolicy": document(bare)}) == [
        "Role 'res': assumeRolePolicy.Statement[0] lets EKS Pod Identity assume the role with "
        "no aws:RequestTag/eks-cluster-name, aws:RequestTag/kubernetes-namespace, "
        "aws:RequestTag/kubernetes-service-account condition (pods of other clusters, "
        "namespaces or service accounts an association names could use it); " + TRUST_FIX]


def test_a_trust_for_any_service_account_of_the_namespace() -> None:
    loose = changed(TRUST, "Condition", {"StringEquals": {
        key: value for key, value in TAGS.items() if "service-account" not in key},
        "StringLike": {"aws:RequestTag/kubernetes-service-account": "*"}})
    assert check("iam-pod-identity-trust-scoped", ROLE,
                 {"assumeRolePolicy": document(loose)}) == [
        "Role 'res': assumeRolePolicy.Statement[0] lets EKS Pod Identity assume the role with "
        "no aws:RequestTag/kubernetes-service-account condition (pods of other clusters, "
        "namespaces or service accounts an association names could use it); " + TRUST_FIX]


# ------------------------------------------------------------------ namespaces

LABEL = "pod-security.kubernetes.io/enforce"
NAMESPACE_FIX = f"label the namespace {LABEL}: baseline (or stricter)"


def namespace(level: str | None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/part-of": "demo-dev"}
    if level is not None:
        labels[LABEL] = level
    return {"metadata": {"name": "ml-training", "labels": labels}}


def test_a_namespace_enforcing_a_level_passes() -> None:
    for level in ("baseline", "restricted"):
        assert check("k8s-namespace-pod-security", NAMESPACE, namespace(level)) == []


@pytest.mark.parametrize(("level", "problem"), [
    (None, "is not set (Pod Security admission admits privileged pods)"),
    ("privileged", "is privileged (below baseline)"),
    ("strict", "is 'strict', not a Pod Security level"),
])
def test_a_namespace_without_a_level(level: str | None, problem: str) -> None:
    assert check("k8s-namespace-pod-security", NAMESPACE, namespace(level)) == [
        f"Namespace 'res': metadata.labels.{LABEL} {problem}; {NAMESPACE_FIX}"]


def test_the_minimum_is_a_setting() -> None:
    assert check("k8s-namespace-pod-security", NAMESPACE, namespace("baseline"),
                 minimum="restricted") == [
        f"Namespace 'res': metadata.labels.{LABEL} is baseline (below restricted); label the "
        f"namespace {LABEL}: restricted (or stricter)"]


# ------------------------------------------------------------------ Athena query results

WORKGROUP = "aws:athena/workgroup:Workgroup"
RESULTS = {"encryptionConfiguration": {"encryptionOption": "SSE_KMS", "kmsKeyArn": KEY_ARN},
           "outputLocation": "s3://demo-dev-artifacts/training/queries/",
           "expectedBucketOwner": ACCOUNT}
ATHENA = {"name": "demo-dev-training-data", "configuration": {
    "enforceWorkgroupConfiguration": True, "resultConfiguration": RESULTS}}
ATHENA_FIX = 'set encryption_option="SSE_KMS" with kms_key_arn=<a KMS key ARN>'
PROP = "configuration.resultConfiguration.encryptionConfiguration"


def test_the_athena_rule_entry() -> None:
    entry = RULES["athena-workgroup-encrypted-results"]
    assert (entry.pack, entry.level, entry.severity) == ("security", "mandatory", "high")
    assert tuple(entry.resource_types) == (WORKGROUP,) and entry.description.endswith(".")


def test_an_enforced_workgroup_with_kms_results_passes() -> None:
    assert check("athena-workgroup-encrypted-results", WORKGROUP, ATHENA) == []
    client_side = changed(ATHENA, f"{PROP}.encryptionOption", "CSE_KMS")
    assert check("athena-workgroup-encrypted-results", WORKGROUP, client_side) == []
    # enforcement is the provider's default when not given
    default = changed(ATHENA, "configuration.enforceWorkgroupConfiguration")
    assert check("athena-workgroup-encrypted-results", WORKGROUP, default) == []


def test_a_workgroup_clients_may_override() -> None:
    loose = changed(ATHENA, "configuration.enforceWorkgroupConfiguration", False)
    assert check("athena-workgroup-encrypted-results", WORKGROUP, loose) == [
        "Workgroup 'res': configuration.enforceWorkgroupConfiguration is false (a query may "
        "choose its own result location and encryption); set "
        "enforce_workgroup_configuration=True"]


@pytest.mark.parametrize(("value", "problem"), [
    ("SSE_S3", 'is "SSE_S3"'), (DELETE, "is not set (results are not KMS-encrypted)")])
def test_results_not_kms_encrypted(value: Any, problem: str) -> None:
    weak = changed(ATHENA, f"{PROP}.encryptionOption", value)
    assert check("athena-workgroup-encrypted-results", WORKGROUP, weak) == [
        f"Workgroup 'res': {PROP}.encryptionOption {problem}; {ATHENA_FIX}"]
    nothing = changed(ATHENA, "configuration.resultConfiguration")
    assert check("athena-workgroup-encrypted-results", WORKGROUP, nothing) == [
        f"Workgroup 'res': {PROP}.encryptionOption is not set (results are not KMS-encrypted)"
        f"; {ATHENA_FIX}"]


def test_kms_results_without_a_key() -> None:
    keyless = changed(ATHENA, f"{PROP}.kmsKeyArn")
    assert check("athena-workgroup-encrypted-results", WORKGROUP, keyless) == [
        f"Workgroup 'res': {PROP}.kmsKeyArn is not set; {ATHENA_FIX}"]
