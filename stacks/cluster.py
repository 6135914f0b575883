"""The EKS cluster for training and serving, as AWS resources: a private control plane with
encrypted secrets, access entries from config, EKS managed add-ons, a CPU system node group for
the cluster's controllers, the AWS side of Karpenter, which launches the GPU pools' nodes
(:mod:`.karpenter`), IRSA roles for the in-cluster controllers, and the API relay through which
Pulumi reaches the private endpoint. Nothing here calls the Kubernetes API: what runs inside the
cluster is the in-cluster program's (:mod:`.workloads`), applied through `mlscaffold tunnel`
once this program is up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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
from .api_relay import ApiRelay, ApiRelayArgs
from .config import GPU_POOL_LABEL, SYSTEM_POOL, ClusterConfig, SystemNodeGroupConfig
from .constants import EKS_LOG_TYPES
from .karpenter import Karpenter, KarpenterArgs

__all__ = [
    "ACCESS_POLICIES",
    "EKS_ADDONS",
    "NODE_POLICIES",
    "SYSTEM_POOL",
    "GpuCluster",
    "GpuClusterArgs",
    "ManagedAddon",
    "irsa_trust_policy",
]

# AWS managed policies of the node role, nothing broader (ECR pull-only, not read-only). The
# VPC CNI's policy is on its own IRSA role (EKS_ADDONS), not on every node: AWS docs,
# "Configure Amazon VPC CNI plug-in to use IRSA"
NODE_POLICIES: tuple[str, ...] = (
    "AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")


@dataclass(frozen=True)
class ManagedAddon:
    """An EKS managed add-on of every cluster."""

    name: str
    """The add-on's name in the EKS add-on catalogue (``aws eks describe-addon-versions``)."""
    before_nodes: bool
    """Created before the system node group: nodes cannot become Ready without it (the CNI,
    kube-proxy, the Pod Identity agent). The others run pods on nodes, so EKS reports them
    ACTIVE only once nodes exist; they are created after the system node group."""
    irsa: tuple[str, str, str] | None = None
    """(namespace, service account, AWS managed policy) of its IRSA role, if it calls AWS."""
    configuration: Mapping[str, str] = field(default_factory=dict)
    """Its configuration values (the add-on's JSON schema: describe-addon-configuration)."""


# Every cluster's add-ons, in creation order. Versions: EKS's default version of each add-on for
# the cluster's Kubernetes version (aws.eks.get_addon_version, most_recent false): the default
# is the one EKS validated for that version and moves with kubernetes_version on an upgrade.
EKS_ADDONS: tuple[ManagedAddon, ...] = (
    # NetworkPolicy enforcement by the CNI's network policy agent (AWS docs, "Limit Pod
    # traffic with Kubernetes network policies")
    ManagedAddon("vpc-cni", True, ("kube-system", "aws-node", "AmazonEKS_CNI_Policy"),
                 {"enableNetworkPolicy": "true"}),
    ManagedAddon("kube-proxy", True),
    ManagedAddon("eks-pod-identity-agent", True),
    ManagedAddon("coredns", False),
    ManagedAddon("aws-ebs-csi-driver", False,
                 ("kube-system", "ebs-csi-controller-sa",
                  "service-role/AmazonEBSCSIDriverPolicy")),
    # an EKS community add-on (AWS docs, "Community add-ons"): KServe's HPA reads pod metrics
    # from it
    ManagedAddon("metrics-server", False),
)
# EKS access policies of the configured principals (AWS docs, "Review access policy
# permissions"); the viewer one reads Secrets too, which Helm keeps its release state in
ACCESS_POLICIES = {"admin": "AmazonEKSClusterAdminPolicy", "viewer": "AmazonEKSAdminViewPolicy"}


@dataclass
class GpuClusterArgs:
    """Inputs of :class:`GpuCluster`."""

    config: ClusterConfig
    """Kubernetes version, API access, system node group, GPU pools."""
    tags: Mapping[str, str]
    """The platform's tags (project, env, owner, cost-center, managed-by)."""
    region: str
    """AWS region (kubeconfig, Karpenter's policy, KMS key policy)."""
    vpc_id: pulumi.Input[str]
    """VPC of the cluster security group."""
    vpc_cidr: pulumi.Input[str]
    """The VPC's block: the API relay forwards HTTPS into it."""
    private_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Subnets of the control plane's network interfaces, of every node and of the relay."""
    cluster_name: str
    """EKS cluster name, e.g. ``<project>-<env>-eks``."""
    prefix: str
    """Resource-name prefix, ``<project>-<env>``."""
    log_retention_days: int = 30
    """Retention of the control-plane log group."""
    protect: bool = False
    """Pulumi protect on the cluster and its KMS key, and EKS deletion protection."""


def irsa_trust_policy(provider_arn: pulumi.Input[str], issuer: pulumi.Input[str],
                      namespace: str, service_account: str) -> pulumi.Output[str]:
    """Trust policy letting one Kubernetes service account assume a role (IRSA)."""

    def document(values: list[str]) -> str:
        arn, url = values
        host = url.removeprefix("https://")
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Principal": {"Federated": arn},
            "Condition": {"StringEquals": {
                f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{host}:aud": "sts.amazonaws.com",
            }},
        }]})

    return pulumi.Output.all(provider_arn, issuer).apply(document)


class GpuCluster(pulumi.ComponentResource):
    """An EKS cluster whose GPU nodes, launched by Karpenter, only run pods that tolerate the
    GPU taint.

    The API endpoint is private (public only for ``public_access_cidrs``) and admits HTTPS from
    the API relay only; secrets are envelope-encrypted with a rotating KMS key; all
    control-plane logs go to a log group with bounded retention. Who may use the Kubernetes API
    is decided by access entries from config (``admin_role_arns``, ``viewer_role_arns``; with no
    admin listed, the identity of the first deploy), not by who created the cluster. The
    networking add-ons and the Pod Identity agent are EKS managed add-ons created before the
    nodes, CoreDNS, the EBS CSI driver and metrics-server once the system nodes exist. The
    system node group runs the cluster's controllers; the GPU pools have no node until a pod
    asks for a GPU (:mod:`.karpenter`). Nodes require IMDSv2 with a hop limit of 1, so pods
    cannot borrow the node role: in-cluster controllers get AWS access through IRSA
    (:meth:`irsa_trust_policy`) or EKS Pod Identity (Karpenter).

    :attr:`connection` is what the in-cluster program needs to reach the cluster; it resolves
    only once the system nodes, every add-on and Karpenter's AWS side exist, so nothing is
    installed before there are nodes to run it.
    """

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    relay_instance_id: pulumi.Output[str]
    system_node_group: aws.eks.NodeGroup
    karpenter: Karpenter
    addons: dict[str, aws.eks.Addon]
    access_entries: dict[str, aws.eks.AccessEntry]
    connection: pulumi.Output[dict]

    def __init__(self, name: str, args: GpuClusterArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(token("GpuCluster"), name, None, opts)
        self._name = name
        self._args = args
        invoke = pulumi.InvokeOutputOptions(parent=self)
        caller = aws.get_caller_identity_output(opts=invoke)
        self._account = caller.account_id
        self._caller_arn = caller.arn
        self._partition = aws.get_partition_output(opts=invoke).partition

        relay = ApiRelay(f"{name}-api-relay", ApiRelayArgs(
            prefix=args.prefix, tags=args.tags, vpc_id=args.vpc_id, vpc_cidr=args.vpc_cidr,
            subnet_id=pulumi.Output.from_input(args.private_subnet_ids).apply(lambda ids: ids[0])),
            child_options(self))
        self.relay_instance_id = relay.instance_id
        cluster, key = self._control_plane(relay.security_group_id)
        self.kms_key_arn = key.arn
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.cluster_endpoint = cluster.endpoint
        self.node_security_group_id = cluster.vpc_config.cluster_security_group_id
        self.oidc_issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        self.oidc_provider_arn = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=self.oidc_issuer, client_id_lists=["sts.amazonaws.com"],
            tags=self._tags("oidc"), opts=child_options(self)).arn

        self._cluster = cluster
        self.access_entries = self._access_entries()
        self._node_role, self._node_policies = self._node_role_and_policies()
        self.node_role_arn = self._node_role.arn
        config = args.config
        self.addons = {}
        before_nodes = self._addons(before_nodes=True, depends_on=[])
        self.system_node_group = self._node_group(
            SYSTEM_POOL, config.system_node_group, ami_type="AL2023_x86_64_STANDARD",
            labels={GPU_POOL_LABEL: SYSTEM_POOL}, depends_on=before_nodes)
        self._addons(before_nodes=False, depends_on=[self.system_node_group])
        self.karpenter = Karpenter(f"{name}-karpenter", KarpenterArgs(
            cluster_name=args.cluster_name, cluster=cluster.name, cluster_arn=cluster.arn,
            cluster_security_group_id=self.node_security_group_id, region=args.region,
            tags=args.tags, node_policies=NODE_POLICIES), child_options(self))

        self.connection = pulumi.Output.all(
            cluster.name, cluster.endpoint,
            cluster.certificate_authority.apply(lambda ca: ca.data),
            relay.instance_id, [self.system_node_group.node_group_name],
            [addon.addon_name for addon in self.addons.values()],
            [entry.principal_arn for entry in self.access_entries.values()],
            self.karpenter.settings,
        ).apply(lambda values: {
            "name": values[0], "endpoint": values[1], "certificate_authority": values[2],
            "relay_instance_id": values[3], "node_groups": list(values[4]),
            "addons": list(values[5]), "karpenter": values[7],
            "region": args.region, "tunnel_port": config.tunnel_port,
            "kubernetes_version": config.kubernetes_version,
        })
        self.register_outputs({
            "cluster_name": self.cluster_name,
            "cluster_arn": self.cluster_arn,
            "cluster_endpoint": self.cluster_endpoint,
            "oidc_provider_arn": self.oidc_provider_arn,
            "oidc_issuer": self.oidc_issuer,
            "node_role_arn": self.node_role_arn,
            "node_security_group_id": self.node_security_group_id,
            "kms_key_arn": self.kms_key_arn,
            "relay_instance_id": self.relay_instance_id,
            "connection": self.connection,
        })

    def irsa_trust_policy(self, namespace: str, service_account: str) -> pulumi.Output[str]:
        """Trust policy letting one of this cluster's service accounts assume a role (IRSA)."""
        return irsa_trust_policy(self.oidc_provider_arn, self.oidc_issuer, namespace,
                                 service_account)

    def _tags(self, resource: str, **extra: str) -> dict[str, str]:
        return resource_tags(self._args.tags, name=f"{self._name}-{resource}", **extra)

    def _arn(self, service: str, resource: str, region: str = "") -> pulumi.Output[str]:
        return pulumi.Output.format("arn:{0}:{1}:{2}:{3}:{4}", self._partition, service,
                                    region, self._account, resource)

    def _managed_policy(self, policy: str) -> pulumi.Output[str]:
        return pulumi.Output.format("arn:{0}:iam::aws:policy/{1}", self._partition, policy)

    def _control_plane(self, relay_security_group: pulumi.Input[str]
                       ) -> tuple[aws.eks.Cluster, aws.kms.Key]:
        """KMS key, log group, role and security group, then the cluster."""
        name, args = self._name, self._args
        log_group_name = f"/aws/eks/{args.cluster_name}/cluster"
        key = aws.kms.Key(
            f"{name}-key", description=f"EKS secrets and control-plane logs of "
            f"{args.cluster_name}", enable_key_rotation=True, deletion_window_in_days=30,
            policy=policy_document([
                {"Sid": "AccountAdministers", "Effect": "Allow",
                 "Principal": {"AWS": self._arn("iam", "root")},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "ControlPlaneLogs", "Effect": "Allow",
                 "Principal": {"Service": f"logs.{args.region}.amazonaws.com"},
                 "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*",
                            "kms:GenerateDataKey*", "kms:Describe*"],
                 "Resource": "*",
                 "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": self._arn(
                     "logs", f"log-group:{log_group_name}", args.region)}}},
            ]),
            tags=self._tags("key"), opts=child_options(self, protect=args.protect))
        # created before the cluster, else EKS creates it without retention or encryption
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs", name=log_group_name,
            retention_in_days=args.log_retention_days, kms_key_id=key.arn,
            tags=self._tags("control-plane-logs"), opts=child_options(self))

        role = aws.iam.Role(
            f"{name}-cluster-role", name=fitted(aws.iam.Role, f"{name}-cluster-role"),
            assume_role_policy=assume_role_policy("eks.amazonaws.com"),
            description=f"EKS control plane of {args.cluster_name}",
            tags=self._tags("cluster-role"), opts=child_options(self))
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy", role=role.name,
            policy_arn=self._managed_policy("AmazonEKSClusterPolicy"), opts=child_options(self))
        key_policy = aws.iam.RolePolicy(
            f"{name}-cluster-kms", role=role.id, policy=policy_document([{
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                "Resource": key.arn,
            }]),
            opts=child_options(self))
        security_group = aws.ec2.SecurityGroup(
            f"{name}-cluster-sg", vpc_id=args.vpc_id,
            description=f"Extra access to the API endpoint of {args.cluster_name}",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=443, to_port=443,
                security_groups=[relay_security_group],
                description="Kubernetes API from the API relay (mlscaffold tunnel)")],
            tags=self._tags("cluster-sg"), opts=child_options(self))

        public_cidrs = list(args.config.public_access_cidrs)
        cluster = aws.eks.Cluster(
            f"{name}-eks", name=args.cluster_name, role_arn=role.arn,
            version=args.config.kubernetes_version,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.private_subnet_ids, security_group_ids=[security_group.id],
                endpoint_private_access=True, endpoint_public_access=bool(public_cidrs),
                public_access_cidrs=public_cidrs or None),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
                resources=["secrets"]),
            enabled_cluster_log_types=list(EKS_LOG_TYPES),
            # access entries from config (_access_entries), not a hidden one for whoever ran
            # the first deploy
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False),
            # the managed add-ons (EKS_ADDONS) are the only copies of the CNI, kube-proxy and
            # CoreDNS
            bootstrap_self_managed_addons=False,
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(
                support_type=args.config.support_type),
            deletion_protection=args.protect,
            tags=self._tags("eks"),
            # both bootstrap settings act at creation only and force a new cluster when they
            # change (hashicorp/terraform-provider-aws#35824, #39137; pulumi/pulumi-aws#3997):
            # clusters created with other values keep them instead of being replaced
            opts=child_options(self, depends_on=[log_group, cluster_policy, key_policy],
                               delete_before_replace=True, protect=args.protect,
                               ignore_changes=[
                                   "bootstrapSelfManagedAddons",
                                   "accessConfig.bootstrapClusterCreatorAdminPermissions"]))
        return cluster, key

    def _access_entries(self) -> dict[str, aws.eks.AccessEntry]:
        """An access entry and cluster-wide access policy for each configured role.

        With no ``admin_role_arns``, the IAM identity running the first deploy is the admin, so
        that it can apply the in-cluster program right after: its entry keeps the principal it
        was created with (later deploys by others do not move it), and it goes away once admin
        roles are listed."""
        config = self._args.config
        principals: list[tuple[str, pulumi.Input[str], str, list[str]]] = [
            (f"admin-{_principal_key(arn)}", arn, "admin", []) for arn in config.admin_role_arns]
        if not config.admin_role_arns:
            # the role behind an assumed-role session (aws.iam.getSessionContext; it reads the
            # role's path with iam:GetRole)
            deployer = aws.iam.get_session_context_output(
                arn=self._caller_arn, opts=pulumi.InvokeOutputOptions(parent=self)).issuer_arn
            principals.append(("deployer-admin", deployer, "admin", ["principalArn"]))
        principals += [(f"viewer-{_principal_key(arn)}", arn, "viewer", [])
                       for arn in config.viewer_role_arns]
        entries = {}
        for key, principal, access, ignore in principals:
            entry = aws.eks.AccessEntry(
                f"{self._name}-{key}", cluster_name=self._cluster.name, principal_arn=principal,
                type="STANDARD", tags=self._tags(key),
                opts=child_options(self, ignore_changes=ignore or None))
            aws.eks.AccessPolicyAssociation(
                f"{self._name}-{key}-policy", cluster_name=self._cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=pulumi.Output.format(
                    "arn:{0}:eks::aws:cluster-access-policy/{1}", self._partition,
                    ACCESS_POLICIES[access]),
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=child_options(self, ignore_changes=ignore or None))
            entries[key] = entry
        return entries

    def _addons(self, *, before_nodes: bool,
                depends_on: Sequence[pulumi.Resource]) -> list[aws.eks.Addon]:
        """The managed add-ons of EKS_ADDONS created before (or after) the nodes."""
        created = []
        config = self._args.config
        for addon in (a for a in EKS_ADDONS if a.before_nodes == before_nodes):
            needs: list[pulumi.Resource] = list(depends_on)
            role_arn = None
            if addon.irsa:
                namespace, service_account, policy = addon.irsa
                role = aws.iam.Role(
                    f"{self._name}-{addon.name}-role",
                    name=fitted(aws.iam.Role, f"{self._name}-{addon.name}-role"),
                    assume_role_policy=self.irsa_trust_policy(namespace, service_account),
                    description=f"EKS add-on {addon.name} of {self._args.cluster_name} (IRSA)",
                    tags=self._tags(f"{addon.name}-role"), opts=child_options(self))
                needs.append(aws.iam.RolePolicyAttachment(
                    f"{self._name}-{addon.name}-policy", role=role.name,
                    policy_arn=self._managed_policy(policy), opts=child_options(self)))
                role_arn = role.arn
            version = aws.eks.get_addon_version_output(
                addon_name=addon.name, kubernetes_version=config.kubernetes_version,
                most_recent=False, opts=pulumi.InvokeOutputOptions(parent=self)).version
            resource = aws.eks.Addon(
                f"{self._name}-{addon.name}", cluster_name=self._cluster.name,
                addon_name=addon.name, addon_version=version,
                service_account_role_arn=role_arn,
                configuration_values=json.dumps(dict(addon.configuration))
                if addon.configuration else None,
                # Pulumi's configuration is the truth: fields edited in the cluster, or left by
                # a self-managed copy, are overwritten
                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                tags=self._tags(addon.name),
                opts=child_options(self, depends_on=needs or None))
            self.addons[addon.name] = resource
            created.append(resource)
        return created

    def _node_role_and_policies(
            self) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        role = aws.iam.Role(
            f"{self._name}-node-role", name=fitted(aws.iam.Role, f"{self._name}-node-role"),
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"Nodes of {self._args.cluster_name}", tags=self._tags("node-role"),
            opts=child_options(self))
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{self._name}-node-{policy}", role=role.name,
                policy_arn=self._managed_policy(policy), opts=child_options(self))
            for policy in NODE_POLICIES
        ]
        return role, attachments

    def _node_group(self, pool: str, group: SystemNodeGroupConfig, *, ami_type: str,
                    labels: Mapping[str, str],
                    depends_on: Sequence[pulumi.Resource] = ()) -> aws.eks.NodeGroup:
        """A managed node group of `pool` with its own hardened launch template."""
        name = self._name
        node_tags = self._tags(f"{pool}-node", **{GPU_POOL_LABEL: pool})
        template = aws.ec2.LaunchTemplate(
            f"{name}-{pool}-lt",
            description=f"{pool} nodes of {self._args.cluster_name}",
            update_default_version=True,
            # IMDSv2 only; hop limit 1 keeps pods (one hop further) away from node credentials
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            # the default EBS key: a customer key would need a grant for the Auto Scaling role
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=group.disk_size_gib, volume_type="gp3", encrypted="true",
                    delete_on_termination="true"))],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=node_tags)
                for kind in ("instance", "volume")
            ],
            tags=self._tags(f"{pool}-lt"), opts=child_options(self))
        return aws.eks.NodeGroup(
            f"{name}-{pool}",
            cluster_name=self._cluster.name, version=self._cluster.version,
            node_role_arn=self._node_role.arn,
            subnet_ids=self._args.private_subnet_ids, ami_type=ami_type,
            instance_types=list(group.instance_types), capacity_type=group.capacity_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=group.min_size, desired_size=group.desired_size,
                max_size=group.max_size),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)),
            labels=dict(labels), tags=self._tags(pool),
            # a fixed size: nothing scales the system nodes, Karpenter adds the GPU ones
            opts=child_options(self, depends_on=[*self._node_policies, *depends_on]))


def _principal_key(arn: str) -> str:
    """A stable short name for an access entry of `arn` (resource names cannot hold ARNs)."""
    return hashlib.sha256(arn.encode()).hexdigest()[:8]
