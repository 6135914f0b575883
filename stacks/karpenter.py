"""Karpenter, which runs the GPU pools and the CPU pool: its AWS side as a component of the
cluster, and the manifests of its EC2NodeClasses and NodePools for the in-cluster program.

Karpenter (API ``karpenter.sh/v1``) watches for pods that no node can take and launches an EC2
instance that fits them, from the families, sizes and capacity types a NodePool allows, up to
the NodePool's ``limits``; it removes nodes that are empty or underused. A GPU pool therefore
costs nothing until a pod asks for ``nvidia.com/gpu``, and has no minimum size. The CPU pool is
the same without the GPU taint: it gets a node only when a CPU pod fits on no running node (the
system node group's included, which the scheduler fills first), so that the fixed system node
group is not where CPU workloads stay Pending for good.

AWS side (:class:`Karpenter`): the controller's role through EKS Pod Identity, least privilege
after Karpenter's reference IAM policy of the pinned release, scoped to instances and launch
templates tagged as this cluster's; the nodes' role, instance profile and EKS access entry
(``EC2_LINUX``); an encrypted SQS queue that EventBridge feeds with spot interruptions,
rebalance recommendations, instance state changes and AWS Health scheduled changes, so that
Karpenter drains a node before EC2 takes it away; and the ``karpenter.sh/discovery`` tag on the
cluster security group (the subnets get theirs from :mod:`.network`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import (
    assume_role_policy,
    child_options,
    fitted,
    policy_document,
    resource_tags,
    token,
)
from .config import GpuPoolConfig, KarpenterPoolConfig
from .constants import (
    CAPACITY_TYPE,
    GPU_RESOURCE,
    GPU_TAINT,
    INSTANCE_FAMILY,
    INSTANCE_SIZE,
    NODE_CLASS_KIND,
    NODE_POOL_KIND,
    TAINT_EFFECTS,
)

__all__ = [
    "DISCOVERY_TAG",
    "INTERRUPTION_EVENTS",
    "KARPENTER_NAMESPACE",
    "KARPENTER_SERVICE_ACCOUNT",
    "Karpenter",
    "KarpenterArgs",
    "ec2_node_class",
    "node_pool",
]

KARPENTER_NAMESPACE = "kube-system"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
# the tag Karpenter finds the nodes' subnets and security group by
DISCOVERY_TAG = "karpenter.sh/discovery"
# EventBridge events Karpenter handles, each rule's (source, detail-type) (Karpenter v1.14
# getting-started CloudFormation). Its fifth rule, capacity reservation interruptions, only
# matters to nodes in capacity reservations, which these node classes do not select
INTERRUPTION_EVENTS: dict[str, tuple[str, str]] = {
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "scheduled-change": ("aws.health", "AWS Health Event"),
}
# what an interruption message is worth after 5 minutes: the spot warning gives 2
_QUEUE_RETENTION_SECONDS = 300
# Karpenter describes these to pick instance types, subnets, groups and AMIs, in its region
_DESCRIBE = ("ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
             "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings",
             "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
             "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
             "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets")
# what Karpenter creates, and tags with the cluster and the NodePool as it does
_LAUNCHED = ("fleet", "instance", "volume", "network-interface", "launch-template",
             "spot-instances-request")


@dataclass
class KarpenterArgs:
    """Inputs of :class:`Karpenter`."""

    cluster_name: str
    """The EKS cluster's name (tags and conditions are built from it before it exists)."""
    cluster: pulumi.Input[str]
    """The cluster's name as an output of the cluster, so that everything here follows it."""
    cluster_arn: pulumi.Input[str]
    """The cluster's ARN (endpoint discovery)."""
    cluster_security_group_id: pulumi.Input[str]
    """The cluster security group, which the nodes use: tagged for discovery."""
    region: str
    """AWS region of the cluster."""
    tags: Mapping[str, str]
    """The platform's tags."""
    node_policies: Sequence[str]
    """AWS managed policies of the nodes' role."""


class Karpenter(pulumi.ComponentResource):
    """The AWS resources Karpenter needs: see the module's documentation.

    :attr:`settings` holds what the in-cluster program passes to Karpenter's chart and node
    classes; it resolves once the roles, the access entry and the queue exist.
    """

    controller_role_arn: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    instance_profile: pulumi.Output[str]
    interruption_queue: pulumi.Output[str]
    settings: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: KarpenterArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(token("Karpenter"), name, None, opts)
        self._name, self._args = name, args
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        self._partition = aws.get_partition_output(opts=invoke).partition

        node_role = aws.iam.Role(
            f"{name}-node-role", name=fitted(aws.iam.Role, f"{name}-node-role"),
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"Nodes Karpenter launches for {args.cluster_name}",
            tags=self._tags("node-role"), opts=child_options(self))
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}", role=node_role.name,
                policy_arn=pulumi.Output.format("arn:{0}:iam::aws:policy/{1}", self._partition,
                                                policy),
                opts=child_options(self))
            for policy in args.node_policies
        ]
        # created here, not by Karpenter (EC2NodeClass spec.instanceProfile): the controller
        # needs no IAM write permission, and the profile goes with the stack
        profile = aws.iam.InstanceProfile(
            f"{name}-node-profile", role=node_role.name, tags=self._tags("node-profile"),
            opts=child_options(self, depends_on=attachments))
        # lets the nodes join: an EC2_LINUX entry maps them to system:nodes (AWS docs, "Create
        # access entries"); managed node groups get theirs from EKS, Karpenter's nodes do not
        node_access = aws.eks.AccessEntry(
            f"{name}-node-access", cluster_name=args.cluster, principal_arn=node_role.arn,
            type="EC2_LINUX", tags=self._tags("node-access"), opts=child_options(self))

        queue, queue_policy = self._interruption_queue()
        controller_role = aws.iam.Role(
            f"{name}-controller-role", name=fitted(aws.iam.Role, f"{name}-controller-role"),
            assume_role_policy=self._pod_identity_trust(),
            description=f"Karpenter controller of {args.cluster_name} (EKS Pod Identity)",
            tags=self._tags("controller-role"), opts=child_options(self))
        controller_policy = aws.iam.RolePolicy(
            f"{name}-controller-policy", role=controller_role.id,
            policy=self._controller_policy(queue.arn, node_role.arn, profile.arn),
            opts=child_options(self))
        association = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity", cluster_name=args.cluster, namespace=KARPENTER_NAMESPACE,
            service_account=KARPENTER_SERVICE_ACCOUNT, role_arn=controller_role.arn,
            tags=self._tags("pod-identity"),
            opts=child_options(self, depends_on=[controller_policy]))
        discovery = aws.ec2.Tag(
            f"{name}-security-group-discovery", resource_id=args.cluster_security_group_id,
            key=DISCOVERY_TAG, value=args.cluster_name, opts=child_options(self))

        self.controller_role_arn = controller_role.arn
        self.node_role_arn = node_role.arn
        self.instance_profile = profile.name
        self.interruption_queue = queue.name
        # waits for everything Karpenter relies on: nothing is launched before nodes can join
        self.settings = pulumi.Output.all(
            queue.name, profile.name, node_access.principal_arn, association.association_id,
            queue_policy.id, discovery.id,
        ).apply(lambda values: {"interruption_queue": values[0], "instance_profile": values[1]})
        self.register_outputs({
            "controller_role_arn": self.controller_role_arn,
            "node_role_arn": self.node_role_arn,
            "instance_profile": self.instance_profile,
            "interruption_queue": self.interruption_queue,
            "settings": self.settings,
        })

    def _tags(self, resource: str) -> dict[str, str]:
        return resource_tags(self._args.tags, name=f"{self._name}-{resource}")

    def _arn(self, service: str, resource: str, account: bool = True) -> pulumi.Output[str]:
        return pulumi.Output.format("arn:{0}:{1}:{2}:{3}:{4}", self._partition, service,
                                    self._args.region, self._account if account else "",
                                    resource)

    def _interruption_queue(self) -> tuple[aws.sqs.Queue, aws.sqs.QueuePolicy]:
        """The queue Karpenter reads interruption events from, and the EventBridge rules that
        fill it; only those rules may send to it, and only over TLS."""
        name, args = self._name, self._args
        queue = aws.sqs.Queue(
            f"{name}-interruptions", name=args.cluster_name,
            message_retention_seconds=_QUEUE_RETENTION_SECONDS, sqs_managed_sse_enabled=True,
            tags=self._tags("interruptions"), opts=child_options(self))
        rules = {
            event: aws.cloudwatch.EventRule(
                f"{name}-{event}", name=fitted(aws.cloudwatch.EventRule, f"{name}-{event}"),
                description=f"{detail} for Karpenter of {args.cluster_name}",
                event_pattern=json.dumps({"source": [source], "detail-type": [detail]}),
                tags=self._tags(event), opts=child_options(self))
            for event, (source, detail) in INTERRUPTION_EVENTS.items()
        }
        policy = aws.sqs.QueuePolicy(
            f"{name}-interruptions-policy", queue_url=queue.id, policy=policy_document([
                {"Sid": "EventBridgeRules", "Effect": "Allow",
                 "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                 "Resource": queue.arn,
                 # the queue's own rules only (AWS EventBridge docs, "Permissions for Amazon
                 # SQS": aws:SourceArn of the rule)
                 "Condition": {"ArnEquals": {"aws:SourceArn": [r.arn for r in rules.values()]}}},
                {"Sid": "DenyHTTP", "Effect": "Deny", "Principal": "*", "Action": "sqs:*",
                 "Resource": queue.arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ]),
            opts=child_options(self))
        for event, rule in rules.items():
            aws.cloudwatch.EventTarget(
                f"{name}-{event}-target", rule=rule.name, arn=queue.arn,
                target_id="KarpenterInterruptionQueue",
                opts=child_options(self, depends_on=[policy]))
        return queue, policy

    def _pod_identity_trust(self) -> pulumi.Output[str]:
        """EKS Pod Identity may assume the role for Karpenter's service account of this cluster
        only (AWS docs, "Create IAM role with trust policy required by EKS Pod Identity": the
        session tags it sets)."""
        return policy_document([{
            "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringEquals": {
                "aws:RequestTag/eks-cluster-name": self._args.cluster_name,
                "aws:RequestTag/kubernetes-namespace": KARPENTER_NAMESPACE,
                "aws:RequestTag/kubernetes-service-account": KARPENTER_SERVICE_ACCOUNT}},
        }])

    def _controller_policy(self, queue_arn: pulumi.Input[str], node_role_arn: pulumi.Input[str],
                           profile_arn: pulumi.Input[str]) -> pulumi.Output[str]:
        """Karpenter's reference controller policy (v1.14 getting-started CloudFormation),
        narrowed: this account's ARNs instead of any account's, no instance-profile writes (the
        profile is made here) and no zonal-shift reads (off in Karpenter's settings); plus the
        spot service-linked role a fresh account lacks."""
        cluster = self._args.cluster_name
        owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}
        of_pool = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
        requested = {f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned",
                     "aws:RequestTag/eks:eks-cluster-name": cluster}
        for_pool = {"aws:RequestTag/karpenter.sh/nodepool": "*"}
        launched = [self._arn("ec2", f"{kind}/*") for kind in _LAUNCHED]
        return policy_document([
            {"Sid": "RunFromImagesSubnetsAndGroups", "Effect": "Allow",
             "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
             "Resource": [self._arn("ec2", "image/*", account=False),
                          self._arn("ec2", "snapshot/*", account=False),
                          *[self._arn("ec2", f"{kind}/*") for kind in (
                              "security-group", "subnet", "capacity-reservation",
                              "placement-group")]]},
            {"Sid": "RunFromOwnLaunchTemplates", "Effect": "Allow",
             "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
             "Resource": self._arn("ec2", "launch-template/*"),
             "Condition": {"StringEquals": owned, "StringLike": of_pool}},
            {"Sid": "LaunchTaggedForThisCluster", "Effect": "Allow",
             "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
             "Resource": launched,
             "Condition": {"StringEquals": requested, "StringLike": for_pool}},
            {"Sid": "TagWhatItLaunches", "Effect": "Allow", "Action": "ec2:CreateTags",
             "Resource": launched,
             "Condition": {"StringEquals": {**requested, "ec2:CreateAction": [
                 "RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                 "StringLike": for_pool}},
            {"Sid": "TagOwnInstances", "Effect": "Allow", "Action": "ec2:CreateTags",
             "Resource": self._arn("ec2", "instance/*"),
             "Condition": {"StringEquals": owned, "StringLike": of_pool,
                           "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name":
                                                    cluster},
                           "ForAllValues:StringEquals": {"aws:TagKeys": [
                               "eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}},
            {"Sid": "DeleteOwnInstancesAndTemplates", "Effect": "Allow",
             "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
             "Resource": [self._arn("ec2", "instance/*"), self._arn("ec2", "launch-template/*")],
             "Condition": {"StringEquals": owned, "StringLike": of_pool}},
            {"Sid": "DescribeInTheRegion", "Effect": "Allow", "Action": list(_DESCRIBE),
             "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestedRegion": self._args.region}}},
            {"Sid": "ReadPublicAmiParameters", "Effect": "Allow", "Action": "ssm:GetParameter",
             "Resource": self._arn("ssm", "parameter/aws/service/*", account=False)},
            {"Sid": "ReadPrices", "Effect": "Allow", "Action": "pricing:GetProducts",
             "Resource": "*"},
            {"Sid": "ReadInterruptions", "Effect": "Allow",
             "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
             "Resource": queue_arn},
            {"Sid": "PassNodeRole", "Effect": "Allow", "Action": "iam:PassRole",
             "Resource": node_role_arn,
             "Condition": {"StringEquals": {"iam:PassedToService": [
                 "ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}},
            {"Sid": "ReadNodeProfile", "Effect": "Allow", "Action": "iam:GetInstanceProfile",
             "Resource": profile_arn},
            # its garbage collection of the profiles it may have made lists them
            {"Sid": "ListInstanceProfiles", "Effect": "Allow", "Action": "iam:ListInstanceProfiles",
             "Resource": "*"},
            {"Sid": "DiscoverApiEndpoint", "Effect": "Allow", "Action": "eks:DescribeCluster",
             "Resource": self._args.cluster_arn},
            # the first spot launch of an account creates EC2's spot service-linked role; without
            # this it fails (AuthFailure.ServiceLinkedRoleCreationNotPermitted:
            # terraform-aws-modules/terraform-aws-eks#2565, eksctl-io/eksctl#6102)
            {"Sid": "CreateSpotServiceLinkedRole", "Effect": "Allow",
             "Action": "iam:CreateServiceLinkedRole",
             "Resource": pulumi.Output.format(
                 "arn:{0}:iam::{1}:role/aws-service-role/spot.amazonaws.com/"
                 "AWSServiceRoleForEC2Spot", self._partition, self._account),
             "Condition": {"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}}},
        ])


# ------------------------------------------------------------------ in-cluster manifests


def ec2_node_class(pool: KarpenterPoolConfig, *, cluster_name: str, instance_profile: Any,
                   ami_release: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The EC2NodeClass of a pool's nodes (``karpenter.k8s.aws/v1``), GPU or CPU.

    EKS-optimized AL2023 (the alias picks, per instance type, the NVIDIA variant for GPU types
    and the standard one for CPU types, of the cluster's Kubernetes version), IMDSv2 with a hop
    limit of 1 so pods cannot borrow the node role, an encrypted gp3 root volume of the pool's
    size (the default EBS key, which needs no grant to the controller), the subnets and
    security group tagged for discovery, the node profile made by :class:`Karpenter`.
    """
    discovered = [{"tags": {DISCOVERY_TAG: cluster_name}}]
    return {
        "apiVersion": NODE_CLASS_KIND[0], "kind": NODE_CLASS_KIND[1],
        "metadata": {"name": pool.name},
        "spec": {
            "amiSelectorTerms": [{"alias": f"al2023@{ami_release}"}],
            "instanceProfile": instance_profile,
            "subnetSelectorTerms": discovered,
            "securityGroupSelectorTerms": discovered,
            "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                "httpPutResponseHopLimit": 1, "httpTokens": "required"},
            "blockDeviceMappings": [{
                "deviceName": "/dev/xvda", "rootVolume": True,
                "ebs": {"volumeSize": f"{pool.disk_size_gib}Gi", "volumeType": "gp3",
                        "encrypted": True, "deleteOnTermination": True}}],
            "tags": dict(tags),
        },
    }


def node_pool(pool: KarpenterPoolConfig) -> dict[str, Any]:
    """The NodePool of a pool (``karpenter.sh/v1``), GPU or CPU.

    Its nodes carry the pool's labels (so the selectors of the GPU node groups it replaces
    keep working) and, in a GPU pool, the GPU taint; they come from the pool's families, sizes
    and capacity types (x86_64: the node class's AMI), and add up to at most the pool's vCPUs
    (``max_vcpus``) and, in a GPU pool, ``max_gpus`` GPUs. There is no minimum: empty or
    underused nodes are consolidated after ``consolidate_after``.

    A CPU pool has no memory limit: its families have 2 to 4 GiB per vCPU and are priced by
    the vCPU, so ``limits.cpu`` bounds both the nodes and the bill.
    """
    gpu = isinstance(pool, GpuPoolConfig)
    requirements = [{"key": INSTANCE_FAMILY, "operator": "In",
                     "values": list(pool.instance_families)}]
    if pool.instance_sizes:
        requirements.append({"key": INSTANCE_SIZE, "operator": "In",
                             "values": list(pool.instance_sizes)})
    requirements += [
        {"key": CAPACITY_TYPE, "operator": "In",
         "values": list(pool.capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    template: dict[str, Any] = {
        "nodeClassRef": {"group": NODE_CLASS_KIND[0].split("/")[0],
                         "kind": NODE_CLASS_KIND[1], "name": pool.name}}
    if gpu:
        template["taints"] = [{"key": GPU_TAINT["key"], "value": GPU_TAINT["value"],
                               "effect": TAINT_EFFECTS[GPU_TAINT["effect"]]}]
    template.update({
        "requirements": requirements,
        # nodes are replaced monthly (Karpenter's default), with current AMIs
        "expireAfter": "720h",
    })
    limits = {"cpu": str(pool.max_vcpus)}
    if gpu:
        limits[GPU_RESOURCE] = str(pool.max_gpus)
    return {
        "apiVersion": NODE_POOL_KIND[0], "kind": NODE_POOL_KIND[1],
        "metadata": {"name": pool.name},
        "spec": {
            "template": {"metadata": {"labels": dict(pool.labels)}, "spec": template},
            "limits": limits,
            # at most 10% of the pool's nodes at a time, rounded up (Karpenter docs,
            # "Disruption", NodePool disruption budgets): a pool of 1 to 10 nodes moves one
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized",
                           "consolidateAfter": pool.consolidate_after,
                           "budgets": [{"nodes": "10%"}]},
        },
    }
