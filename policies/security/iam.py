"""IAM security: no administrator or service-wide grants, no broad AWS managed policies.

Policy documents are JSON text (the ``policy`` input of policies, role/user/group policies and a
role's ``inlinePolicies``); ``Action``, ``NotAction``, ``Resource`` and ``Statement`` may each be
a string or a list. A document unknown before deployment stops the rule as undecided during a
preview; Pulumi checks it again when it is known. A policy ARN unknown before deployment is a
policy of the program, not an AWS managed one.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from mlscaffold.stacks.constants import NETWORK_INTERFACE_ACTIONS

from ..props import as_mapping, condition_keys, document, one_or_many, statements
from ..rule import Subject, rule, violation

__all__ = ["broad_managed_policy"]

DOCUMENT_TYPES = ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy",
                  "aws:iam/userPolicy:UserPolicy", "aws:iam/groupPolicy:GroupPolicy")
ROLE = "aws:iam/role:Role"
ATTACHMENT_TYPES = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
                    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
                    "aws:iam/policyAttachment:PolicyAttachment")
EXCLUSIVE_ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive",
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive")

_AWS_MANAGED_ARN = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:.+/)?(?P<name>[^/]+)$")
_SERVICE_WILDCARD = re.compile(r"^[a-z0-9-]+:\*$")
_LEAST_PRIVILEGE = "list only the actions the principal needs, on the ARNs it needs them on"


def _documents(subject: Subject) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(property, document) of every policy document of a resource."""
    if subject.type == ROLE:
        for index, inline in enumerate(one_or_many(subject.props.get("inlinePolicies"))):
            yield f"inlinePolicies[{index}].policy", document(as_mapping(inline).get("policy"))
    else:
        yield "policy", document(subject.props.get("policy"))


def _allow_statements(subject: Subject
                      ) -> Iterator[tuple[str, list[str], Mapping[str, Any]]]:
    """(property, actions, statement) of every Allow statement on every resource ("*", or
    NotResource: everything but some)."""
    for prop, policy in _documents(subject):
        statements = policy.get("Statement")
        if isinstance(statements, Mapping):  # a lone statement
            statements = [statements]
        for index, statement in enumerate(one_or_many(statements)):
            statement = as_mapping(statement)
            every_resource = ("NotResource" in list(statement)
                              or "*" in one_or_many(statement.get("Resource")))
            if statement.get("Effect") == "Allow" and every_resource:
                actions = [str(a) for a in one_or_many(statement.get("Action"))]
                yield f"{prop}.Statement[{index}]", actions, statement


@rule("iam-no-wildcard-admin", pack="security", severity="critical",
      resource_types=[*DOCUMENT_TYPES, ROLE],
      description='IAM policies allow no action "*" (nor every action but a few, NotAction) '
                  'on every resource: no administrator access.')
def iam_no_wildcard_admin(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    for prop, actions, statement in _allow_statements(subject):
        if any(action in {"*", "*:*"} for action in actions):
            yield violation(subject, prop, 'allows Action "*" on Resource "*" (administrator '
                            "access)", _LEAST_PRIVILEGE)
        elif "NotAction" in list(statement):
            yield violation(subject, prop, 'allows every action but its NotAction on Resource '
                            '"*" (near-administrator access)', _LEAST_PRIVILEGE)


@rule("iam-no-service-wildcard", pack="security", severity="high",
      resource_types=[*DOCUMENT_TYPES, ROLE],
      description='IAM policies allow no whole service ("s3:*") on every resource.',
      config={"allowed_services": {
          "type": "array", "items": {"type": "string", "pattern": "^[a-z0-9-]+$"},
          "uniqueItems": True, "default": [],
          "description": 'Services whose "<service>:*" may be allowed on every resource.'}})
def iam_no_service_wildcard(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = set(config["allowed_services"])
    for prop, actions, _ in _allow_statements(subject):
        for action in actions:
            service = action.lower().split(":")[0]
            if _SERVICE_WILDCARD.match(action.lower()) and service not in allowed:
                yield violation(subject, prop, f'allows "{action}" on Resource "*" (every '
                                f"{service} action on every resource)", _LEAST_PRIVILEGE)


def broad_managed_policy(arn: str) -> str | None:
    """The name of an AWS managed policy granting administrator, power-user or a service's
    full access (``AdministratorAccess``, ``PowerUserAccess``, ``*FullAccess*``), else None."""
    match = _AWS_MANAGED_ARN.match(arn)
    if not match:
        return None
    name = match["name"]
    broad = (name == "PowerUserAccess" or name.startswith("AdministratorAccess")
             or "FullAccess" in name)
    return name if broad else None


def _policy_arns(subject: Subject) -> Iterator[tuple[str, Any]]:
    """(property, ARN) of every policy a resource attaches. An ARN unknown before deployment
    is skipped: it is a policy of the program, not an AWS managed one."""
    if subject.type in ATTACHMENT_TYPES:
        with suppress(UnknownValueError):
            yield "policyArn", subject.props.get("policyArn")
        return
    key = "managedPolicyArns" if subject.type == ROLE else "policyArns"
    try:
        arns = subject.props.get(key)
    except UnknownValueError:
        return
    if isinstance(arns, str):
        arns = [arns]
    for index in range(len(arns) if isinstance(arns, Sequence) else 0):
        with suppress(UnknownValueError):
            yield f"{key}[{index}]", arns[index]


@rule("iam-no-admin-managed-policy", pack="security", severity="critical",
      resource_types=[*ATTACHMENT_TYPES, *EXCLUSIVE_ATTACHMENT_TYPES, ROLE],
      description="No role, user or group gets AdministratorAccess, PowerUserAccess or a "
                  "*FullAccess AWS managed policy.",
      config={"allowed_policies": {
          "type": "array", "items": {"type": "string"}, "uniqueItems": True, "default": [],
          "description": "AWS managed policy names allowed anyway (e.g. a reviewed "
                         "AmazonSageMakerFullAccess)."}})
def iam_no_admin_managed_policy(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    for prop, arn in _policy_arns(subject):
        name = broad_managed_policy(arn) if isinstance(arn, str) else None
        if name and name not in config["allowed_policies"]:
            yield violation(subject, prop, f'attaches the AWS managed policy "{name}" (broad '
                            "access)", "attach a customer managed policy with only the actions "
                            "needed, or list the policy in this rule's allowed_policies")


# ------------------------------------------------------------------ network interfaces

_VPC_KEYS = {"ec2:vpc", "ec2:subnet"}


@rule("iam-network-interface-scoped", pack="security", severity="medium",
      resource_types=[*DOCUMENT_TYPES, ROLE],
      description="IAM policies allow creating and deleting network interfaces (and their "
                  "permissions) only in known VPCs: not on every resource without an ec2:Vpc "
                  "or ec2:Subnet condition.")
def iam_network_interface_scoped(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    for prop, actions, statement in _allow_statements(subject):
        patterns = [a.lower() for a in actions]
        granted = [name for name in NETWORK_INTERFACE_ACTIONS
                   if any(fnmatch.fnmatchcase(name.lower(), p) for p in patterns)]
        if granted and not condition_keys(statement.get("Condition")) & _VPC_KEYS:
            yield violation(
                subject, prop, f"allows {', '.join(granted)} on Resource \"*\" with no ec2:Vpc "
                "or ec2:Subnet condition (network interfaces in any VPC of the account)",
                "grant them on network-interface ARNs with an ArnEquals ec2:Vpc condition on "
                "the VPC's ARN, and CreateNetworkInterface on that VPC's subnets and security "
                "groups; keep only the ec2:Describe* actions on \"*\"")


# ------------------------------------------------------------------ trust policies

# AWS IAM User Guide, "The confused deputy problem": a service principal's use of a role is
# tied to this account by aws:SourceAccount or aws:SourceArn (or the organization keys). Not every
# service sets them when it assumes a role (EKS does not: prowler-cloud/prowler#4745), so the
# services checked are a setting
_SOURCE_KEYS = {"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid", "aws:sourceorgpaths"}


@rule("iam-service-trust-conditions", pack="security", severity="high",
      resource_types=[ROLE],
      description="Roles that listed AWS services assume (SageMaker by default) trust them "
                  "only with an aws:SourceAccount or aws:SourceArn condition: another "
                  "account's resources cannot make the service act with the role (confused "
                  "deputy).",
      config={"services": {
          "type": "array", "items": {"type": "string"}, "uniqueItems": True,
          "default": ["sagemaker.amazonaws.com", "vpc-flow-logs.amazonaws.com"],
          "description": "Service principals whose trust statements need the condition: "
                         "services that set aws:SourceAccount and aws:SourceArn when they "
                         "assume a role (EKS, for one, does not)."}})
def iam_service_trust_conditions(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    wanted = {s.lower() for s in config["services"]}
    for index, statement in enumerate(statements(subject.props.get("assumeRolePolicy"))):
        services = [str(s) for s in one_or_many(as_mapping(statement.get("Principal"))
                                                .get("Service")) if str(s).lower() in wanted]
        if statement.get("Effect") != "Allow" or not services:
            continue
        if not condition_keys(statement.get("Condition")) & _SOURCE_KEYS:
            yield violation(
                subject, f"assumeRolePolicy.Statement[{index}]",
                f"lets {', '.join(services)} assume the role with no aws:SourceAccount or "
                "aws:SourceArn condition (another account's resources could have the service "
                "act with this role: confused deputy)",
                "add a StringEquals aws:SourceAccount condition with this account's ID, or an "
                "ArnLike aws:SourceArn condition on this account's resources")


# ------------------------------------------------------------------ passing roles

_PASS_ROLE_FIX = ("name the role ARNs the principal passes and add a StringEquals "
                  "iam:PassedToService condition naming the service that uses them (e.g. "
                  "sagemaker.amazonaws.com)")


def _all_allow_statements(subject: Subject) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(property, statement) of every Allow statement, whatever its resources."""
    for prop, policy in _documents(subject):
        found = policy.get("Statement")
        if isinstance(found, Mapping):  # a lone statement
            found = [found]
        for index, statement in enumerate(one_or_many(found)):
            statement = as_mapping(statement)
            if statement.get("Effect") == "Allow":
                yield f"{prop}.Statement[{index}]", statement


def _every_role(resource: str) -> bool:
    return resource == "*" or resource.endswith(":role/*")


@rule("iam-pass-role-scoped", pack="security", severity="high",
      resource_types=[*DOCUMENT_TYPES, ROLE],
      description="IAM policies allow iam:PassRole only on named roles and only to the service "
                  "that uses them (an iam:PassedToService condition): whoever holds the policy "
                  "cannot hand any role to any service (AWS IAM User Guide, \"Grant a user "
                  "permissions to pass a role to an AWS service\").")
def iam_pass_role_scoped(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    for prop, statement in _all_allow_statements(subject):
        # "*" and "iam:*" are the wildcard rules' findings already
        patterns = [str(a).lower() for a in one_or_many(statement.get("Action"))
                    if str(a).lower() not in {"*", "*:*", "iam:*"}]
        if not any(fnmatch.fnmatchcase("iam:passrole", p) for p in patterns):
            continue
        resources = [str(r) for r in one_or_many(statement.get("Resource"))]
        if "NotResource" in list(statement) or any(map(_every_role, resources)):
            yield violation(subject, prop, "allows iam:PassRole on every role of the account",
                            _PASS_ROLE_FIX)
        if "iam:passedtoservice" not in condition_keys(statement.get("Condition")):
            yield violation(subject, prop, "allows iam:PassRole with no iam:PassedToService "
                            "condition (the role may be passed to any service)", _PASS_ROLE_FIX)


# ------------------------------------------------------------------ EKS Pod Identity

POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
# the session tags EKS Pod Identity sets (AWS docs, "Create IAM role with trust policy required
# by EKS Pod Identity")
_POD_IDENTITY_TAGS = ("aws:RequestTag/eks-cluster-name", "aws:RequestTag/kubernetes-namespace",
                      "aws:RequestTag/kubernetes-service-account")


@rule("iam-pod-identity-trust-scoped", pack="security", severity="medium",
      resource_types=[ROLE],
      description="Roles EKS Pod Identity assumes trust it for one cluster, namespace and "
                  "service account only (StringEquals on the session tags it sets), not for "
                  "any pod an association of any cluster of the account names.")
def iam_pod_identity_trust_scoped(subject: Subject, config: Mapping[str, Any]
                                  ) -> Iterator[str]:
    for index, statement in enumerate(statements(subject.props.get("assumeRolePolicy"))):
        services = [str(s).lower() for s in one_or_many(
            as_mapping(statement.get("Principal")).get("Service"))]
        if statement.get("Effect") != "Allow" or POD_IDENTITY_SERVICE not in services:
            continue
        keys = condition_keys(statement.get("Condition"))
        missing = [tag for tag in _POD_IDENTITY_TAGS if tag.lower() not in keys]
        if missing:
            yield violation(
                subject, f"assumeRolePolicy.Statement[{index}]",
                f"lets EKS Pod Identity assume the role with no {', '.join(missing)} "
                "condition (pods of other clusters, namespaces or service accounts an "
                "association names could use it)",
                "add a StringEquals condition on each of " + ", ".join(_POD_IDENTITY_TAGS))
