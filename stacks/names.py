"""AWS name limits of the resources the stacks create: one table, read by the stacks (to fit a
name), the policy that checks a stack's names, and the tests.

Pulumi names a resource whose name is not given "<logical name>-<7 random hex digits>" (its
auto-name), and fails before anything is created when that is longer than the provider allows:
pulumi-aws declares the limit per resource type (``tfbridge.AutoName("name", 64, "-")`` for an
IAM role or an EventBridge rule in provider/resources.go; 255 for any other ``name``, its
``setAutonaming``). AWS's own limit can be lower still (a SageMaker monitoring schedule: 63,
though pulumi-aws allows 255): :data:`NAME_RULES` holds the lower of the two, and AWS's
characters, per type.

The stacks keep Pulumi's auto-name wherever it fits, so no deployed resource is renamed (a new
physical name replaces the resource). Only where it would not fit, and the stack could not be
deployed at all, :func:`fitted_name` gives an explicit name: the logical name cut to fit plus a
short hash of it, the same on every run.

No Pulumi import here: the policies read the table.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .constants import AUTONAME_SUFFIX

__all__ = ["NAME_RULES", "NameRule", "autoname_length", "fitted_name", "name_problem"]


@dataclass(frozen=True)
class NameRule:
    """How AWS (and pulumi-aws's auto-naming) limits one resource type's name."""

    prop: str
    """The input property that is the name (what Pulumi auto-names when it is not given)."""
    max_length: int
    """The longest name: AWS's limit, or pulumi-aws's auto-name maximum when lower."""
    pattern: str
    """The characters AWS accepts (a regular expression the whole name must match)."""
    source: str
    """Where the limit comes from."""


_SAGEMAKER = r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"
_IAM = r"[\w+=,.@-]+"

#: Pulumi type -> its name's rule. AWS limits from each API reference's request parameter;
#: "pulumi-aws N" is the provider's declared auto-name maximum (provider/resources.go)
NAME_RULES: dict[str, NameRule] = {
    "aws:iam/role:Role": NameRule(
        "name", 64, _IAM, "IAM CreateRole RoleName 1-64; pulumi-aws 64"),
    "aws:iam/policy:Policy": NameRule(
        "name", 128, _IAM, "IAM CreatePolicy PolicyName 1-128"),
    "aws:iam/rolePolicy:RolePolicy": NameRule(
        "name", 128, _IAM, "IAM PutRolePolicy PolicyName 1-128"),
    "aws:iam/instanceProfile:InstanceProfile": NameRule(
        "name", 128, _IAM, "IAM CreateInstanceProfile InstanceProfileName 1-128"),
    "aws:cloudwatch/eventRule:EventRule": NameRule(
        "name", 64, r"[.\-_A-Za-z0-9]+", "EventBridge PutRule Name 1-64; pulumi-aws 64"),
    "aws:cloudwatch/eventTarget:EventTarget": NameRule(
        "targetId", 64, r"[.\-_A-Za-z0-9]+", "EventBridge PutTargets Target Id 1-64"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": NameRule(
        "name", 255, r"[^\x00-\x1f]+", "CloudWatch PutMetricAlarm AlarmName 1-255"),
    "aws:cloudwatch/dashboard:Dashboard": NameRule(
        "dashboardName", 255, r"[A-Za-z0-9_-]+", "CloudWatch PutDashboard DashboardName 1-255"),
    "aws:cloudwatch/logGroup:LogGroup": NameRule(
        "name", 512, r"[.\-_/#A-Za-z0-9]+", "CloudWatch Logs CreateLogGroup logGroupName 1-512"),
    "aws:sqs/queue:Queue": NameRule(
        "name", 80, r"[A-Za-z0-9_-]+", "SQS CreateQueue QueueName 1-80; pulumi-aws 80"),
    "aws:sns/topic:Topic": NameRule(
        "name", 80, r"[A-Za-z0-9_-]+", "SNS CreateTopic Name 1-256; pulumi-aws 80"),
    "aws:eks/cluster:Cluster": NameRule(
        "name", 100, r"[0-9A-Za-z][A-Za-z0-9\-_]*", "EKS CreateCluster name 1-100"),
    "aws:eks/nodeGroup:NodeGroup": NameRule(
        "nodeGroupName", 63, r"[0-9A-Za-z][A-Za-z0-9\-_]*",
        "EKS CreateNodegroup nodegroupName 1-63"),
    "aws:ec2/launchTemplate:LaunchTemplate": NameRule(
        "name", 128, r"[a-zA-Z0-9().\-/_]{3,}", "EC2 CreateLaunchTemplate 3-128"),
    "aws:ec2/securityGroup:SecurityGroup": NameRule(
        "name", 255, r"[^\x00-\x1f]+", "EC2 CreateSecurityGroup GroupName 1-255"),
    "aws:ecr/repository:Repository": NameRule(
        "name", 256, r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*",
        "ECR CreateRepository repositoryName 2-256"),
    "aws:kms/alias:Alias": NameRule(
        "name", 256, r"alias/[a-zA-Z0-9/_-]+", "KMS CreateAlias AliasName 1-256"),
    "aws:athena/workgroup:Workgroup": NameRule(
        "name", 128, r"[a-zA-Z0-9._-]+", "Athena CreateWorkGroup Name 1-128"),
    "aws:cloudtrail/trail:Trail": NameRule(
        "name", 128, r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", "CloudTrail CreateTrail 3-128"),
    "aws:glue/catalogDatabase:CatalogDatabase": NameRule(
        "name", 255, r"[a-z0-9_]+", "Glue CreateDatabase Name 1-255 (Athena: lower case, _)"),
    "aws:appautoscaling/policy:Policy": NameRule(
        "name", 256, r"[^\x00-\x1f]+", "Application Auto Scaling PutScalingPolicy 1-256"),
    "aws:sagemaker/model:Model": NameRule(
        "name", 63, _SAGEMAKER, "SageMaker CreateModel ModelName 1-63"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": NameRule(
        "name", 63, _SAGEMAKER, "SageMaker CreateEndpointConfig EndpointConfigName 1-63"),
    "aws:sagemaker/endpoint:Endpoint": NameRule(
        "name", 63, _SAGEMAKER, "SageMaker CreateEndpoint EndpointName 1-63"),
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule": NameRule(
        "name", 63, _SAGEMAKER, "SageMaker CreateMonitoringSchedule 1-63"),
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition": NameRule(
        "name", 63, _SAGEMAKER, "SageMaker CreateDataQualityJobDefinition 1-63"),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": NameRule(
        "modelPackageGroupName", 63, _SAGEMAKER, "SageMaker CreateModelPackageGroup 1-63"),
    "aws:sagemaker/featureGroup:FeatureGroup": NameRule(
        "featureGroupName", 64, _SAGEMAKER, "SageMaker CreateFeatureGroup 1-64"),
}
# the random part of Pulumi's auto-name is 7 hex digits after a "-" (AUTONAME_SUFFIX: 8)
_HASH = AUTONAME_SUFFIX - 1


def autoname_length(logical: str) -> int:
    """The length of Pulumi's auto-name of a resource named `logical`."""
    return len(logical) + AUTONAME_SUFFIX


def fitted_name(resource_type: str, logical: str) -> str | None:
    """An explicit name for the resource `logical` of `resource_type` when Pulumi's auto-name
    would be too long for it, else None (keep the auto-name: the resource keeps its name).

    The name is `logical` cut to fit, then "-" and the first 7 hex digits of its SHA-256: the
    same on every run (no replacement), different for logical names that share the cut part.
    An explicit name cannot be created beside the old resource: pulumi-aws deletes first when
    such a resource must be replaced (pulumi-terraform-bridge: an explicitly set auto-name
    property makes the replacement delete-before-replace)."""
    rule = NAME_RULES[resource_type]
    if autoname_length(logical) <= rule.max_length:
        return None
    digest = hashlib.sha256(logical.encode()).hexdigest()[:_HASH]
    head = logical[:rule.max_length - _HASH - 1].rstrip("-_.")
    return f"{head}-{digest}"


def name_problem(resource_type: str, name: str | None, logical: str) -> str | None:
    """What is wrong with the name of resource `logical` (None: it is given by `name`, not
    auto-named), or None when AWS would accept it."""
    rule = NAME_RULES.get(resource_type)
    if rule is None:
        return None
    if name is None:
        if autoname_length(logical) > rule.max_length:
            return (f"is not set, and Pulumi's auto-name '{logical}-xxxxxxx' is "
                    f"{autoname_length(logical)} characters, over the {rule.max_length} AWS "
                    f"allows ({rule.source})")
        return None
    if len(name) > rule.max_length:
        return (f"'{name}' is {len(name)} characters, over the {rule.max_length} AWS allows "
                f"({rule.source})")
    if not re.fullmatch(rule.pattern, name):
        return f"'{name}' has characters AWS does not accept in it (allowed: {rule.pattern})"
    return None
