"""GpuCluster under mocks: control plane, node groups, IAM, IRSA, the API relay and the
connection the in-cluster program reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pytest

from mlscaffold.graph import MOCK_DEPLOYER_ROLE, GraphResource, ResourceGraph
from mlscaffold.stacks.cluster import (
    EKS_ADDONS,
    NODE_POLICIES,
    GpuCluster,
    GpuClusterArgs,
)
from mlscaffold.stacks.config import SUPPORTED_KUBERNETES_VERSIONS
from mlscaffold.stacks.constants import EKS_LOG_TYPES

PLATFORM_TAGS = {"project", "env", "owner", "cost-center", "managed-by"}
UNTAGGABLE = {"aws:iam/rolePolicy:RolePolicy",
              "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
              "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
              "aws:ec2/tag:Tag", "aws:sqs/queuePolicy:QueuePolicy",
              "aws:cloudwatch/eventTarget:EventTarget"}
SUBNETS = ["subnet-a", "subnet-b"]
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
OUTPUTS = ("cluster_name", "cluster_arn", "cluster_endpoint", "oidc_provider_arn", "oidc_issuer",
           "node_role_arn", "node_security_group_id", "kms_key_arn", "relay_instance_id",
           "connection")
ISSUER = "oidc.eks.us-east-1.mock/id/demo-dev-eks"
TWO_GPU_POOLS = {"cluster": {"gpu_pools": [
    {"name": "train", "instance_families": ["p4d"], "capacity_types": ["spot"], "max_gpus": 16},
    {"name": "infer", "instance_families": ["g6"], "instance_sizes": ["xlarge"],
     "max_gpus": 4},
]}}


@pytest.fixture(scope="module")
def graphs() -> dict[str, ResourceGraph]:
    """Graphs already built in this module, by their arguments (the runs are deterministic)."""
    return {}


@pytest.fixture
def build(config_for: Callable[..., Any], run_mocked: Callable[..., ResourceGraph],
          graphs: dict[str, ResourceGraph]) -> Callable[..., ResourceGraph]:
    """Declare a GpuCluster for an environment and export its outputs; return the graph."""

    def run(environment: str = "dev", overrides: dict[str, Any] | None = None,
            preview: bool = False) -> ResourceGraph:
        key = json.dumps([environment, overrides, preview], sort_keys=True)
        if key in graphs:
            return graphs[key]
        config = config_for(environment, overrides)

        def program() -> None:
            cluster = GpuCluster("demo", GpuClusterArgs(
                config=config.cluster, tags=config.tags, region=config.region,
                vpc_id="vpc-123", vpc_cidr="10.0.0.0/16", private_subnet_ids=SUBNETS,
                cluster_name=f"demo-{environment}-eks", prefix=f"demo-{environment}",
                log_retention_days=90, protect=config.protect))
            for output in OUTPUTS:
                pulumi.export(output, getattr(cluster, output))

        graphs[key] = run_mocked(program, stack=environment, preview=preview)
        return graphs[key]

    return run


def node_groups(graph: ResourceGraph) -> dict[str, GraphResource]:
    return {r.name.removeprefix("demo-"): r for r in graph.of_type(NODE_GROUP)}


def attached_policies(graph: ResourceGraph, role: str) -> set[str]:
    role_name = graph.named(role).outputs["name"]
    return {a.inputs["policyArn"].rsplit("/", 1)[-1] for a in graph.of_type(ATTACHMENT)
            if a.inputs["role"] == role_name}


def policy_statements(graph: ResourceGraph) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every IAM document in the graph (trust, inline and key policies)."""
    for resource in graph.resources:
        for field in ("assumeRolePolicy", "policy"):
            document = resource.inputs.get(field)
            if isinstance(document, str):
                for statement in json.loads(document)["Statement"]:
                    yield resource.name, statement


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_component_token_and_every_child_parented(build) -> None:
    graph = build()
    (component,) = graph.of_type("mlscaffold:stacks:GpuCluster")
    (relay,) = graph.of_type("mlscaffold:stacks:ApiRelay")
    (karpenter,) = graph.of_type("mlscaffold:stacks:Karpenter")
    children = [r for r in graph.resources if r is not component]
    assert children and all(r.parent in {component.urn, relay.urn, karpenter.urn}
                            for r in children)
    assert relay.parent == karpenter.parent == component.urn
    assert all(r.name.startswith("demo-") for r in children)


def test_outputs(build) -> None:
    outputs = build().outputs
    assert outputs["cluster_name"] == "demo-dev-eks"
    assert outputs["cluster_arn"].endswith(":cluster/demo-dev-eks")
    assert outputs["cluster_endpoint"] == "https://demo-dev-eks.eks.mock"
    assert outputs["oidc_issuer"] == f"https://{ISSUER}"
    assert outputs["oidc_provider_arn"].endswith("/demo-oidc")
    assert outputs["node_role_arn"].endswith("role/demo-node-role")
    assert outputs["kms_key_arn"].endswith("key/demo-key")
    assert outputs["relay_instance_id"] == "demo-api-relay-instance-id"


def test_the_connection_waits_for_nodes_addons_and_karpenter(build) -> None:
    """The in-cluster program reads this output; it resolves only once the system nodes, the
    add-ons and Karpenter's AWS side exist, so nothing is installed on a cluster without nodes
    and no GPU node is launched before it can join."""
    graph = build(overrides=TWO_GPU_POOLS)
    connection = graph.outputs["connection"]
    assert connection == {
        "name": "demo-dev-eks", "endpoint": "https://demo-dev-eks.eks.mock",
        "certificate_authority": "bW9jay1jYQ==", "relay_instance_id": "demo-api-relay-instance-id",
        "node_groups": ["demo-system"],
        "addons": [addon.name for addon in EKS_ADDONS],
        "karpenter": {"interruption_queue": "demo-dev-eks",
                      "instance_profile": "demo-karpenter-node-profile"},
        "region": "us-east-1", "tunnel_port": 9443, "kubernetes_version": "1.34"}


def test_node_security_group_is_the_clusters(build) -> None:
    assert build().outputs["node_security_group_id"] == "sg-cluster"


def test_private_api_endpoint_by_default(build) -> None:
    vpc = build().named("demo-eks").inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc
    assert vpc["subnetIds"] == SUBNETS
    assert vpc["securityGroupIds"] == ["demo-cluster-sg-id"]


def test_public_api_endpoint_only_for_listed_cidrs(build) -> None:
    graph = build(overrides={"cluster": {"public_access_cidrs": ["203.0.113.0/24"]}})
    vpc = graph.named("demo-eks").inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_secrets_encrypted_with_a_rotating_key(build) -> None:
    graph = build()
    key = graph.named("demo-key")
    assert key.inputs["enableKeyRotation"] is True
    encryption = graph.named("demo-eks").inputs["encryptionConfig"]
    assert encryption == {"resources": ["secrets"], "provider": {"keyArn": key.outputs["arn"]}}
    (kms,) = json.loads(graph.named("demo-cluster-kms").inputs["policy"])["Statement"]
    assert kms["Resource"] == key.outputs["arn"]


def test_control_plane_logs_complete_bounded_and_created_first(build) -> None:
    graph = build()
    cluster = graph.named("demo-eks")
    assert cluster.inputs["enabledClusterLogTypes"] == list(EKS_LOG_TYPES)
    assert set(EKS_LOG_TYPES) == {"api", "audit", "authenticator", "controllerManager",
                                  "scheduler"}
    logs = graph.named("demo-control-plane-logs")
    assert logs.inputs["name"] == "/aws/eks/demo-dev-eks/cluster"
    assert logs.inputs["retentionInDays"] == 90
    assert logs.inputs["kmsKeyId"] == graph.named("demo-key").outputs["arn"]
    assert logs.urn in cluster.dependencies
    # the key lets CloudWatch Logs use it for this log group only
    logs_statement = next(s for _, s in policy_statements(graph)
                          if s.get("Sid") == "ControlPlaneLogs")
    assert logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/eks/demo-dev-eks/cluster")


@pytest.mark.parametrize("version", ["1.32", "1.36"])
def test_kubernetes_version_is_the_configured_supported_one(build, version: str) -> None:
    graph = build(overrides={"cluster": {"kubernetes_version": version}})
    assert graph.named("demo-eks").inputs["version"] == version
    assert version in SUPPORTED_KUBERNETES_VERSIONS
    assert graph.outputs["connection"]["kubernetes_version"] == version


def test_api_authentication_by_access_entries_from_config(build) -> None:
    cluster = build().named("demo-eks")
    assert cluster.inputs["accessConfig"] == {"authenticationMode": "API",
                                              "bootstrapClusterCreatorAdminPermissions": False}
    # both bootstrap settings force a new cluster when changed: existing clusters keep theirs
    assert cluster.options["ignore_changes"] == [
        "bootstrapSelfManagedAddons", "accessConfig.bootstrapClusterCreatorAdminPermissions"]


ADMIN = "arn:aws:iam::123456789012:role/ml-admins"
CI = "arn:aws:iam::123456789012:role/ci/deploy"
VIEWER = "arn:aws:iam::123456789012:role/ci-preview"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
POLICY = "arn:aws:eks::aws:cluster-access-policy/"


def access(graph: ResourceGraph) -> dict[str, tuple[str, dict[str, Any]]]:
    """principal ARN -> (access policy name, association inputs)."""
    # the people's entries (Karpenter's nodes have an EC2_LINUX one, with no policy)
    entries = {e.inputs["principalArn"]: e for e in graph.of_type(ACCESS_ENTRY)
               if e.inputs["type"] == "STANDARD"}
    found = {}
    for association in graph.of_type(ASSOCIATION):
        principal = association.inputs["principalArn"]
        entry = entries[principal]
        assert entry.inputs["clusterName"] == "demo-dev-eks"
        assert entry.urn in association.dependencies
        found[principal] = (association.inputs["policyArn"].removeprefix(POLICY),
                            association.inputs)
    assert set(found) == set(entries)
    return found


def test_without_admin_roles_the_first_deployer_is_the_admin(build) -> None:
    """A first `make deploy` must be able to apply the in-cluster program right after."""
    graph = build()
    found = access(graph)
    assert set(found) == {MOCK_DEPLOYER_ROLE}  # the role of the session, not the session
    policy, inputs = found[MOCK_DEPLOYER_ROLE]
    assert policy == "AmazonEKSClusterAdminPolicy"
    assert inputs["accessScope"] == {"type": "cluster"}
    # pinned to the identity that created it: a later deploy by someone else does not move it
    entry = graph.named("demo-deployer-admin")
    assert entry.inputs["principalArn"] == MOCK_DEPLOYER_ROLE
    assert entry.options["ignore_changes"] == ["principalArn"]


def test_listed_roles_replace_the_deployer(build) -> None:
    graph = build(overrides={"cluster": {"admin_role_arns": [ADMIN, CI],
                                         "viewer_role_arns": [VIEWER]}})
    found = access(graph)
    assert {arn: policy for arn, (policy, _) in found.items()} == {
        ADMIN: "AmazonEKSClusterAdminPolicy", CI: "AmazonEKSClusterAdminPolicy",
        VIEWER: "AmazonEKSAdminViewPolicy"}
    assert all(inputs["accessScope"] == {"type": "cluster"} for _, inputs in found.values())
    for entry in graph.of_type(ACCESS_ENTRY):
        assert "ignore_changes" not in entry.options
        assert set(entry.inputs["tags"]) >= PLATFORM_TAGS
    # named from the ARN: the same on every run, whatever the list's order
    key = hashlib.sha256(ADMIN.encode()).hexdigest()[:8]
    assert graph.named(f"demo-admin-{key}").inputs["principalArn"] == ADMIN
    assert "demo-deployer-admin" not in {e.name for e in graph.of_type(ACCESS_ENTRY)}


def test_viewers_alone_keep_the_deployer_as_admin(build) -> None:
    found = access(build(overrides={"cluster": {"viewer_role_arns": [VIEWER]}}))
    assert {arn: policy for arn, (policy, _) in found.items()} == {
        MOCK_DEPLOYER_ROLE: "AmazonEKSClusterAdminPolicy", VIEWER: "AmazonEKSAdminViewPolicy"}


ADDON = "aws:eks/addon:Addon"


def addons(graph: ResourceGraph) -> dict[str, GraphResource]:
    return {a.inputs["addonName"]: a for a in graph.of_type(ADDON)}


def test_managed_addons_replace_the_self_managed_ones(build) -> None:
    graph = build()
    assert graph.named("demo-eks").inputs["bootstrapSelfManagedAddons"] is False
    found = addons(graph)
    assert set(found) == {"vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns",
                          "aws-ebs-csi-driver", "metrics-server"}
    for addon in found.values():
        inputs = addon.inputs
        assert inputs["clusterName"] == "demo-dev-eks"
        assert inputs["resolveConflictsOnCreate"] == inputs["resolveConflictsOnUpdate"] == (
            "OVERWRITE")
        assert set(inputs["tags"]) >= PLATFORM_TAGS


@pytest.mark.parametrize("version", ["1.32", "1.36"])
def test_addon_versions_follow_the_kubernetes_version(build, version: str) -> None:
    """EKS's default version of each add-on for the cluster's version (the mocks answer the
    invoke with a version per Kubernetes version)."""
    found = addons(build(overrides={"cluster": {"kubernetes_version": version}}))
    assert {a.inputs["addonVersion"] for a in found.values()} == {f"v{version}.0-eksbuild.1"}


def test_vpc_cni_enforces_network_policies_with_its_own_role(build) -> None:
    graph = build()
    cni = addons(graph)["vpc-cni"]
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    role = graph.named("demo-vpc-cni-role")
    assert cni.inputs["serviceAccountRoleArn"] == role.outputs["arn"]
    assert attached_policies(graph, "demo-vpc-cni-role") == {"AmazonEKS_CNI_Policy"}
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"]["StringEquals"][f"{ISSUER}:sub"] == (
        "system:serviceaccount:kube-system:aws-node")
    assert graph.named("demo-vpc-cni-policy").urn in cni.dependencies


def test_ebs_csi_driver_has_its_own_role(build) -> None:
    graph = build()
    ebs = addons(graph)["aws-ebs-csi-driver"]
    role = graph.named("demo-aws-ebs-csi-driver-role")
    assert ebs.inputs["serviceAccountRoleArn"] == role.outputs["arn"]
    attachment = graph.named("demo-aws-ebs-csi-driver-policy")
    assert attachment.inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"]["StringEquals"][f"{ISSUER}:sub"] == (
        "system:serviceaccount:kube-system:ebs-csi-controller-sa")
    for name in ("kube-proxy", "eks-pod-identity-agent", "coredns", "metrics-server"):
        assert "serviceAccountRoleArn" not in addons(graph)[name].inputs
        assert "configurationValues" not in addons(graph)[name].inputs


def test_addons_nodes_need_come_first_the_rest_after_the_system_nodes(build) -> None:
    """Nodes join only with the CNI, kube-proxy and the Pod Identity agent in place; CoreDNS,
    the EBS CSI driver and metrics-server run pods, so EKS marks them ACTIVE only once nodes
    exist (a first deploy would otherwise wait for them until it times out)."""
    graph = build(overrides=TWO_GPU_POOLS)
    found = addons(graph)
    groups = node_groups(graph)
    before = {"vpc-cni", "kube-proxy", "eks-pod-identity-agent"}
    assert {a.name for a in EKS_ADDONS if a.before_nodes} == before
    for group in groups.values():
        assert {found[name].urn for name in before} <= set(group.dependencies), group.name
    for name in set(found) - before:
        assert groups["system"].urn in found[name].dependencies, name
    for name in before:
        assert not {g.urn for g in groups.values()} & set(found[name].dependencies), name


def test_standard_support_by_default_and_extended_on_request(build) -> None:
    assert build().named("demo-eks").inputs["upgradePolicy"] == {"supportType": "STANDARD"}
    graph = build(overrides={"cluster": {"support_type": "EXTENDED"}})
    assert graph.named("demo-eks").inputs["upgradePolicy"] == {"supportType": "EXTENDED"}


@pytest.mark.parametrize(("environment", "protected"),
                         [("dev", False), ("staging", True), ("prod", True)])
def test_cluster_and_key_are_protected_outside_dev(build, environment: str,
                                                   protected: bool) -> None:
    graph = build(environment)
    cluster, key = graph.named("demo-eks"), graph.named("demo-key")
    assert cluster.inputs["deletionProtection"] is protected
    for resource in (cluster, key):
        assert resource.options.get("protect", False) is protected, resource.name
    # nothing else is: a protected policy or node group would only block updates
    others = [r.name for r in graph.resources if r.options.get("protect")]
    assert sorted(others) == (["demo-eks", "demo-key"] if protected else [])


def test_protection_follows_the_platform_switch(build) -> None:
    graph = build(overrides={"protect": True})
    assert graph.named("demo-eks").options["protect"] is True
    assert graph.named("demo-eks").inputs["deletionProtection"] is True


def test_no_security_group_open_to_the_internet(build) -> None:
    graph = build()
    groups = graph.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert groups
    for group in groups:
        for rule in group.inputs.get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), group.name
    # the private endpoint admits the API relay only
    (rule,) = graph.named("demo-cluster-sg").inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["securityGroups"]) == (
        443, 443, ["demo-api-relay-sg-id"])
    assert "cidrBlocks" not in rule


def test_the_api_relay_is_a_locked_down_session_manager_instance(build) -> None:
    graph = build()
    instance = graph.named("demo-api-relay-instance")
    inputs = instance.inputs
    assert inputs["instanceType"] == "t4g.nano"
    assert inputs["ami"] == "ami-0mock"  # the SSM parameter of the latest AL2023 arm64
    assert inputs["subnetId"] == SUBNETS[0]
    assert inputs["associatePublicIpAddress"] is False
    assert inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                         "httpPutResponseHopLimit": 1}
    assert inputs["rootBlockDevice"]["encrypted"] is True
    assert "keyName" not in inputs and "userData" not in inputs
    assert inputs["vpcSecurityGroupIds"] == ["demo-api-relay-sg-id"]
    group = graph.named("demo-api-relay-sg")
    assert "ingress" not in group.inputs
    assert [(r["protocol"], r["fromPort"], r["toPort"], r["cidrBlocks"])
            for r in group.inputs["egress"]] == [("tcp", 443, 443, ["10.0.0.0/16"]),
                                                 ("tcp", 443, 443, ["0.0.0.0/0"])]
    assert attached_policies(graph, "demo-api-relay-role") == {"AmazonSSMManagedInstanceCore"}
    assert graph.named("demo-api-relay-ssm").urn in instance.dependencies


def test_cluster_role_has_only_the_cluster_policy(build) -> None:
    graph = build()
    assert attached_policies(graph, "demo-cluster-role") == {"AmazonEKSClusterPolicy"}
    trust = json.loads(graph.named("demo-cluster-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "eks.amazonaws.com"}


def test_node_role_has_exactly_the_node_policies(build) -> None:
    graph = build()
    # the CNI's policy is on its own IRSA role, not on every node
    assert attached_policies(graph, "demo-node-role") == set(NODE_POLICIES) == {
        "AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"}
    for attachment in graph.of_type(ATTACHMENT):
        policy = attachment.inputs["policyArn"]
        assert policy.startswith("arn:aws:iam::aws:policy/")
        assert "FullAccess" not in policy and "AdministratorAccess" not in policy


def test_no_iam_statement_grants_everything(build) -> None:
    statements = list(policy_statements(build()))
    assert len(statements) >= 7
    for name, statement in statements:
        actions = as_list(statement.get("Action", []))
        assert "*" not in actions, name
        assert "NotAction" not in statement and "NotResource" not in statement, name


def test_oidc_provider_for_irsa(build) -> None:
    provider = build().named("demo-oidc")
    assert provider.inputs["url"] == f"https://{ISSUER}"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_launch_templates_are_hardened(build, config_for, environment: str) -> None:
    graph = build(environment)
    templates = graph.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(templates) == 1  # the system group's: Karpenter's nodes use EC2NodeClasses
    disk = config_for(environment).cluster.system_node_group.disk_size_gib
    for template in templates:
        inputs = template.inputs
        assert inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                             "httpPutResponseHopLimit": 1}
        (device,) = inputs["blockDeviceMappings"]
        assert device["deviceName"] == "/dev/xvda"
        assert device["ebs"] == {"volumeSize": disk, "volumeType": "gp3", "encrypted": "true",
                                 "deleteOnTermination": "true"}
        for absent in ("keyName", "instanceType", "imageId", "userData", "networkInterfaces"):
            assert absent not in inputs, (template.name, absent)
        specs = {s["resourceType"]: s["tags"] for s in inputs["tagSpecifications"]}
        assert set(specs) == {"instance", "volume"}
        assert all(set(tags) >= PLATFORM_TAGS for tags in specs.values())


def test_node_groups_wired_to_cluster_role_and_template(build) -> None:
    graph = build()
    cluster = graph.named("demo-eks")
    for pool, group in node_groups(graph).items():
        inputs = group.inputs
        assert inputs["clusterName"] == "demo-dev-eks"
        assert cluster.urn in group.dependencies
        assert inputs["version"] == "1.34"
        assert inputs["nodeRoleArn"] == graph.named("demo-node-role").outputs["arn"]
        assert inputs["subnetIds"] == SUBNETS
        assert inputs["launchTemplate"] == {"id": f"demo-{pool}-lt-id", "version": "1"}
        assert inputs["updateConfig"] == {"maxUnavailable": 1}
        assert "remoteAccess" not in inputs and "diskSize" not in inputs
        policies = {a.urn for a in graph.of_type(ATTACHMENT) if a.name.startswith("demo-node-")}
        assert policies <= set(group.dependencies)


def test_system_node_group(build, config_for) -> None:
    system = config_for("dev").cluster.system_node_group
    inputs = node_groups(build())["system"].inputs
    assert inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert inputs["labels"] == {"mlscaffold.io/node-pool": "system"}
    assert "taints" not in inputs
    assert inputs["instanceTypes"] == system.instance_types
    assert inputs["capacityType"] == "ON_DEMAND"
    assert inputs["scalingConfig"] == {"minSize": system.min_size, "maxSize": system.max_size,
                                       "desiredSize": system.desired_size}
    # nothing scales it but its config (Karpenter adds GPU nodes, not system ones)
    assert "ignore_changes" not in node_groups(build()).get("system").options


# ------------------------------------------------------------------ Karpenter's AWS side

CLUSTER_ARN = "arn:aws:eks:us-east-1:123456789012:cluster/demo-dev-eks"
EC2 = "arn:aws:ec2:us-east-1:123456789012:"


def test_karpenter_nodes_have_their_own_role_profile_and_access_entry(build) -> None:
    graph = build()
    role = graph.named("demo-karpenter-node-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert attached_policies(graph, "demo-karpenter-node-role") == set(NODE_POLICIES)
    profile = graph.named("demo-karpenter-node-profile")
    assert profile.inputs["role"] == role.outputs["name"]
    # EKS makes entries for managed node groups only: Karpenter's nodes need their own
    entry = graph.named("demo-karpenter-node-access")
    assert entry.inputs == {"clusterName": "demo-dev-eks", "principalArn": role.outputs["arn"],
                            "type": "EC2_LINUX", "tags": entry.inputs["tags"]}


def test_karpenter_controller_assumes_its_role_through_pod_identity_only(build) -> None:
    graph = build()
    role = graph.named("demo-karpenter-controller-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == {
        "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {
            "aws:RequestTag/eks-cluster-name": "demo-dev-eks",
            "aws:RequestTag/kubernetes-namespace": "kube-system",
            "aws:RequestTag/kubernetes-service-account": "karpenter"}}}
    association = graph.named("demo-karpenter-pod-identity")
    assert {k: association.inputs[k] for k in ("clusterName", "namespace", "serviceAccount",
                                               "roleArn")} == {
        "clusterName": "demo-dev-eks", "namespace": "kube-system",
        "serviceAccount": "karpenter", "roleArn": role.outputs["arn"]}
    assert graph.named("demo-karpenter-controller-policy").urn in association.dependencies


def controller_statements(graph: ResourceGraph) -> dict[str, dict[str, Any]]:
    policy = json.loads(graph.named("demo-karpenter-controller-policy").inputs["policy"])
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def test_karpenter_controller_acts_only_on_what_this_cluster_owns(build) -> None:
    graph = build()
    statements = controller_statements(graph)
    owned = {"aws:ResourceTag/kubernetes.io/cluster/demo-dev-eks": "owned"}
    requested = {"aws:RequestTag/kubernetes.io/cluster/demo-dev-eks": "owned",
                 "aws:RequestTag/eks:eks-cluster-name": "demo-dev-eks"}
    for sid in ("RunFromOwnLaunchTemplates", "DeleteOwnInstancesAndTemplates",
                "TagOwnInstances"):
        assert statements[sid]["Condition"]["StringEquals"] == owned, sid
        assert statements[sid]["Condition"]["StringLike"] == {
            "aws:ResourceTag/karpenter.sh/nodepool": "*"}, sid
    for sid in ("LaunchTaggedForThisCluster", "TagWhatItLaunches"):
        condition = statements[sid]["Condition"]
        assert requested.items() <= condition["StringEquals"].items(), sid
        assert condition["StringLike"] == {"aws:RequestTag/karpenter.sh/nodepool": "*"}, sid
    assert statements["TagOwnInstances"]["Condition"]["ForAllValues:StringEquals"] == {
        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}
    assert statements["TagWhatItLaunches"]["Condition"]["StringEquals"]["ec2:CreateAction"] == [
        "RunInstances", "CreateFleet", "CreateLaunchTemplate"]
    # termination: instances and launch templates only
    assert statements["DeleteOwnInstancesAndTemplates"]["Resource"] == [
        f"{EC2}instance/*", f"{EC2}launch-template/*"]
    # every EC2 ARN is this account's and region's, but public images and snapshots
    for statement in statements.values():
        for resource in as_list(statement["Resource"]):
            if resource.startswith("arn:aws:ec2:"):
                assert resource.startswith((EC2, "arn:aws:ec2:us-east-1::image/",
                                            "arn:aws:ec2:us-east-1::snapshot/")), resource


def test_karpenter_controller_reads_and_passes_no_more_than_it_needs(build) -> None:
    graph = build()
    statements = controller_statements(graph)
    everywhere = {sid for sid, s in statements.items() if s["Resource"] == "*"}
    assert everywhere == {"DescribeInTheRegion", "ReadPrices", "ListInstanceProfiles"}
    describe = statements["DescribeInTheRegion"]
    assert all(a.startswith("ec2:Describe") for a in describe["Action"])
    assert describe["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    assert statements["PassNodeRole"]["Resource"] == graph.named(
        "demo-karpenter-node-role").outputs["arn"]
    assert statements["PassNodeRole"]["Condition"]["StringEquals"]["iam:PassedToService"][0] == (
        "ec2.amazonaws.com")
    assert statements["ReadNodeProfile"] == {
        "Sid": "ReadNodeProfile", "Effect": "Allow", "Action": "iam:GetInstanceProfile",
        "Resource": "arn:aws:iam::123456789012:instance-profile/demo-karpenter-node-profile"}
    # no IAM writes but EC2's spot service-linked role, which a fresh account lacks: the
    # instance profile is made by Pulumi, not by Karpenter
    actions = {a for s in statements.values() for a in as_list(s["Action"])}
    assert {a for a in actions if a.startswith("iam:") and not a.startswith(
        ("iam:Get", "iam:List", "iam:PassRole"))} == {"iam:CreateServiceLinkedRole"}
    assert statements["CreateSpotServiceLinkedRole"]["Resource"] == (
        "arn:aws:iam::123456789012:role/aws-service-role/spot.amazonaws.com/"
        "AWSServiceRoleForEC2Spot")
    assert statements["CreateSpotServiceLinkedRole"]["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}}
    assert statements["ReadInterruptions"]["Resource"] == (
        "arn:aws:sqs:us-east-1:123456789012:demo-dev-eks")
    assert statements["DiscoverApiEndpoint"]["Resource"] == CLUSTER_ARN
    assert statements["ReadPublicAmiParameters"]["Resource"] == (
        "arn:aws:ssm:us-east-1::parameter/aws/service/*")


def test_interruption_queue_is_encrypted_and_fed_by_its_rules_only(build) -> None:
    graph = build()
    queue = graph.named("demo-karpenter-interruptions")
    assert queue.inputs["name"] == "demo-dev-eks"
    assert queue.inputs["messageRetentionSeconds"] == 300
    assert queue.inputs["sqsManagedSseEnabled"] is True
    rules = {r.name.removeprefix("demo-karpenter-"): r
             for r in graph.of_type("aws:cloudwatch/eventRule:EventRule")}
    assert {name: json.loads(r.inputs["eventPattern"]) for name, r in rules.items()} == {
        "spot-interruption": {"source": ["aws.ec2"],
                              "detail-type": ["EC2 Spot Instance Interruption Warning"]},
        "rebalance": {"source": ["aws.ec2"],
                      "detail-type": ["EC2 Instance Rebalance Recommendation"]},
        "instance-state-change": {"source": ["aws.ec2"],
                                  "detail-type": ["EC2 Instance State-change Notification"]},
        "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]}}
    policy = graph.named("demo-karpenter-interruptions-policy")
    assert policy.inputs["queueUrl"] == "demo-karpenter-interruptions-id"  # the queue's URL
    allow, deny = json.loads(policy.inputs["policy"])["Statement"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage" and allow["Resource"] == queue.outputs["arn"]
    assert sorted(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(
        r.outputs["arn"] for r in rules.values())
    assert deny == {"Sid": "DenyHTTP", "Effect": "Deny", "Principal": "*", "Action": "sqs:*",
                    "Resource": queue.outputs["arn"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    targets = graph.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert sorted(t.inputs["rule"] for t in targets) == sorted(
        r.outputs["name"] for r in rules.values())
    for target in targets:
        assert target.inputs["arn"] == queue.outputs["arn"]
        assert policy.urn in target.dependencies  # the queue admits the rules first


def test_nodes_security_group_is_tagged_for_discovery(build) -> None:
    (tag,) = build().of_type("aws:ec2/tag:Tag")
    assert tag.inputs == {"resourceId": "sg-cluster", "key": "karpenter.sh/discovery",
                          "value": "demo-dev-eks"}


def test_nothing_here_needs_the_kubernetes_api(build) -> None:
    """The base program calls AWS APIs only: the in-cluster program installs the add-ons."""
    graph = build()
    assert not [r.type for r in graph.resources if r.type.startswith(("kubernetes:",
                                                                        "pulumi:providers:"))]


def test_every_taggable_resource_carries_the_platform_tags(build) -> None:
    for resource in build("prod").resources:
        if resource.type.startswith("aws:") and resource.type not in UNTAGGABLE:
            tags = resource.inputs.get("tags") or {}
            assert set(tags) >= PLATFORM_TAGS, resource.name
            assert tags["Name"] == resource.name, resource.name


def test_preview_with_unknown_outputs(build) -> None:
    graph = build("prod", preview=True)
    assert set(node_groups(graph)) == {"system"}
    assert graph.named("demo-api-relay-instance").inputs["subnetId"] == SUBNETS[0]
