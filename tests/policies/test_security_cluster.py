"""Security rules of the network, the EKS cluster and Kubernetes workloads.

Each test builds the passing props of a resource, changes one field and asserts the exact
messages, through pulumi_policy's public API (see conftest). The example projects' stacks must
pass every one of these rules.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from mlscaffold.policies.registry import RULES
from mlscaffold.stacks.config import (
    GPU_POOL_LABEL,
    GPU_TOLERATION,
    SUPPORTED_KUBERNETES_VERSIONS,
    CpuPoolConfig,
)
from mlscaffold.stacks.constants import GPU_NODE_SELECTOR, GPU_TAINT
from mlscaffold.stacks.karpenter import node_pool

from .conftest import EXAMPLES, changed, check, check_stack

MINE = frozenset({
    "sg-no-public-ingress",
    "eks-private-endpoint", "eks-public-endpoint-restricted", "eks-secrets-encryption",
    "eks-control-plane-logging", "eks-supported-version", "eks-standard-support",
    "eks-node-group-no-ssh",
    "eks-node-group-launch-template", "launch-template-imdsv2", "launch-template-imds-hop-limit",
    "launch-template-no-ssh-key", "launch-template-encrypted-volumes", "ec2-instance-imdsv2",
    "ec2-instance-encrypted-volumes",
    "k8s-resource-limits", "k8s-run-as-non-root", "k8s-no-privilege-escalation",
    "k8s-read-only-root-filesystem", "k8s-image-pinned", "k8s-no-default-namespace",
    "k8s-namespace-pod-security",
    "gpu-workload-schedulable", "k8s-network-policy", "knative-kourier-cluster-ip",
})
MODULES = {f"mlscaffold.policies.security.{m}" for m in ("network", "compute", "kubernetes")}
def test_rule_table_entries() -> None:
    mine = {r.name: r for r in RULES.values() if r.check.__module__ in MODULES}
    assert set(mine) == MINE
    for entry in mine.values():
        assert entry.pack == "security"
        assert entry.level == ("advisory" if entry.name == "eks-standard-support" else "mandatory")
        assert entry.description.endswith(".") and entry.resource_types


# ------------------------------------------------------------------ security groups

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
HTTPS_FROM_VPC = {"protocol": "tcp", "fromPort": 443, "toPort": 443,
                  "cidrBlocks": ["10.0.0.0/16"], "description": "HTTPS from the VPC"}
SECURITY_GROUP = {"vpcId": "vpc-1", "description": "endpoints", "tags": {"env": "dev"},
                  "ingress": [HTTPS_FROM_VPC]}
LB_FIX = ("restrict cidrBlocks to known ranges or a source security group; only a load "
          "balancer's group (tag mlscaffold.io/purpose=load-balancer) may open tcp 443 to the "
          "internet")


def test_security_group_from_the_vpc_passes() -> None:
    assert check("sg-no-public-ingress", SG, SECURITY_GROUP) == []
    assert check("sg-no-public-ingress", DEFAULT_SG, {"vpcId": "vpc-1"}) == []


def test_security_group_open_to_the_internet() -> None:
    ssh = changed(changed(SECURITY_GROUP, "ingress[0].cidrBlocks", ["0.0.0.0/0"]),
                  "ingress[0].fromPort", 22.0)
    ssh["ingress"][0]["toPort"] = 22.0  # the engine may pass numbers as floats
    assert check("sg-no-public-ingress", SG, ssh, name="app-sg") == [
        f"SecurityGroup 'app-sg': ingress[0].cidrBlocks admits 0.0.0.0/0 on tcp 22; {LB_FIX}"]


def test_security_group_open_over_ipv6() -> None:
    props = changed(SECURITY_GROUP, "ingress[0].ipv6CidrBlocks", ["::/0"])
    assert check("sg-no-public-ingress", SG, props) == [
        "SecurityGroup 'res': ingress[0].ipv6CidrBlocks admits ::/0 on tcp 443; "
        + LB_FIX.replace("cidrBlocks", "ipv6CidrBlocks", 1)]


def test_https_from_the_internet_only_on_load_balancers() -> None:
    https = changed(SECURITY_GROUP, "ingress[0].cidrBlocks", ["0.0.0.0/0"])
    tagged = changed(https, "tags", {"mlscaffold.io/purpose": "load-balancer"})
    assert check("sg-no-public-ingress", SG, tagged) == []
    assert check("sg-no-public-ingress", SG, https, name="web-alb-sg") == []
    assert check("sg-no-public-ingress", SG, changed(https, "name", "public_nlb")) == []
    assert check("sg-no-public-ingress", SG, https, name="totalbalance") == [
        f"SecurityGroup 'totalbalance': ingress[0].cidrBlocks admits 0.0.0.0/0 on tcp 443; "
        f"{LB_FIX}"]


def test_load_balancer_groups_open_only_https() -> None:
    world = changed(SECURITY_GROUP, "ingress[0].cidrBlocks", ["0.0.0.0/0"])
    http = changed(changed(world, "ingress[0].fromPort", 80), "ingress[0].toPort", 80)
    everything = changed(world, "ingress[0].protocol", "-1")
    assert check("sg-no-public-ingress", SG, http, name="web-lb") == [
        f"SecurityGroup 'web-lb': ingress[0].cidrBlocks admits 0.0.0.0/0 on tcp 80; {LB_FIX}"]
    assert check("sg-no-public-ingress", SG, everything, name="web-lb") == [
        f"SecurityGroup 'web-lb': ingress[0].cidrBlocks admits 0.0.0.0/0 on all traffic; "
        f"{LB_FIX}"]
    assert check("sg-no-public-ingress", SG, http, name="web-lb",
                 load_balancer_ports=[443, 80]) == []


def test_standalone_ingress_rules() -> None:
    rule_props = {"securityGroupId": "sg-1", "ipProtocol": "tcp", "fromPort": 443,
                  "toPort": 443, "cidrIpv4": "10.0.0.0/16"}
    assert check("sg-no-public-ingress", INGRESS_RULE, rule_props) == []
    world = changed(rule_props, "cidrIpv4", "0.0.0.0/0")
    assert check("sg-no-public-ingress", INGRESS_RULE, world) == [
        "SecurityGroupIngressRule 'res': cidrIpv4 admits 0.0.0.0/0 on tcp 443; "
        + LB_FIX.replace("cidrBlocks", "cidrIpv4", 1)]
    assert check("sg-no-public-ingress", INGRESS_RULE,
                 changed(world, "tags", {"mlscaffold.io/purpose": "load-balancer"})) == []

    legacy = {"type": "ingress", "securityGroupId": "sg-1", "protocol": "tcp", "fromPort": 22,
              "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}
    assert check("sg-no-public-ingress", SG_RULE, legacy) == [
        f"SecurityGroupRule 'res': cidrBlocks admits 0.0.0.0/0 on tcp 22; {LB_FIX}"]
    assert check("sg-no-public-ingress", SG_RULE, changed(legacy, "type", "egress")) == []


# ------------------------------------------------------------------ EKS control plane

CLUSTER = "aws:eks/cluster:Cluster"
EKS = {
    "name": "demo-eks", "version": "1.34", "roleArn": "arn:aws:iam::123456789012:role/eks",
    "vpcConfig": {"subnetIds": ["subnet-1", "subnet-2"], "endpointPrivateAccess": True,
                  "endpointPublicAccess": False},
    "encryptionConfig": {"resources": ["secrets"],
                         "provider": {"keyArn": "arn:aws:kms:eu-west-1:123456789012:key/k"}},
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager",
                               "scheduler"],
}
CLUSTER_RULES = ("eks-private-endpoint", "eks-public-endpoint-restricted",
                 "eks-secrets-encryption", "eks-control-plane-logging", "eks-supported-version")
PUBLIC_FIX = ("set vpcConfig.endpointPublicAccess to false, or list your office or VPN ranges "
              "in vpcConfig.publicAccessCidrs")
ENCRYPTION_FIX = ('set encryptionConfig with resources ["secrets"] and provider.keyArn of a '
                  "KMS key")


@pytest.mark.parametrize("name", CLUSTER_RULES)
def test_hardened_cluster_passes(name: str) -> None:
    assert check(name, CLUSTER, EKS) == []


def test_cluster_api_private_endpoint() -> None:
    message = ("Cluster 'res': vpcConfig.endpointPrivateAccess is not true; set it to true so "
               "that nodes and operators reach the API inside the VPC")
    assert check("eks-private-endpoint", CLUSTER,
                 changed(EKS, "vpcConfig.endpointPrivateAccess", False)) == [message]
    assert check("eks-private-endpoint", CLUSTER,
                 changed(EKS, "vpcConfig.endpointPrivateAccess")) == [message]


def test_cluster_api_public_endpoint() -> None:
    public = changed(EKS, "vpcConfig.endpointPublicAccess", True)
    restricted = changed(public, "vpcConfig.publicAccessCidrs", ["203.0.113.0/24"])
    assert check("eks-public-endpoint-restricted", CLUSTER, restricted) == []
    open_message = ("Cluster 'res': vpcConfig.endpointPublicAccess is on without "
                    f"publicAccessCidrs (the API is open to 0.0.0.0/0); {PUBLIC_FIX}")
    assert check("eks-public-endpoint-restricted", CLUSTER, public) == [open_message]
    # AWS turns the public endpoint on when the key is missing
    assert check("eks-public-endpoint-restricted", CLUSTER,
                 changed(EKS, "vpcConfig.endpointPublicAccess")) == [open_message]
    assert check("eks-public-endpoint-restricted", CLUSTER,
                 changed(restricted, "vpcConfig.publicAccessCidrs[0]", "0.0.0.0/0")) == [
        "Cluster 'res': vpcConfig.publicAccessCidrs includes 0.0.0.0/0 (the API is open to "
        f"the internet); {PUBLIC_FIX}"]


def test_cluster_secrets_encryption() -> None:
    assert check("eks-secrets-encryption", CLUSTER, changed(EKS, "encryptionConfig")) == [
        "Cluster 'res': encryptionConfig is not set (secrets are stored without envelope "
        f"encryption); {ENCRYPTION_FIX}"]
    assert check("eks-secrets-encryption", CLUSTER,
                 changed(EKS, "encryptionConfig.resources", [])) == [
        f"Cluster 'res': encryptionConfig.resources does not include \"secrets\"; "
        f"{ENCRYPTION_FIX}"]
    assert check("eks-secrets-encryption", CLUSTER,
                 changed(EKS, "encryptionConfig.provider.keyArn")) == [
        f"Cluster 'res': encryptionConfig.provider.keyArn is not set; {ENCRYPTION_FIX}"]
    # the key's ARN is unknown before deployment: its presence is enough
    assert check("eks-secrets-encryption", CLUSTER, changed(
        EKS, "encryptionConfig.provider.keyArn", UNKNOWN_STRING_VALUE)) == []


def test_cluster_control_plane_logs() -> None:
    without_audit = changed(EKS, "enabledClusterLogTypes",
                            ["api", "authenticator", "controllerManager", "scheduler"])
    assert check("eks-control-plane-logging", CLUSTER, without_audit) == [
        "Cluster 'res': enabledClusterLogTypes lacks audit; enable api, audit, authenticator, "
        "controllerManager, scheduler"]
    assert len(check("eks-control-plane-logging", CLUSTER,
                     changed(EKS, "enabledClusterLogTypes"))) == 1
    assert check("eks-control-plane-logging", CLUSTER, without_audit,
                 log_types=["api", "authenticator"]) == []


def test_cluster_kubernetes_version() -> None:
    supported = ", ".join(SUPPORTED_KUBERNETES_VERSIONS)
    assert check("eks-supported-version", CLUSTER, changed(EKS, "version", "1.29")) == [
        f"Cluster 'res': version 1.29 is not a supported Kubernetes version; set version to "
        f"one of {supported}"]
    assert check("eks-supported-version", CLUSTER, changed(EKS, "version")) == [
        "Cluster 'res': version is not set (EKS picks a version and upgrades go unreviewed); "
        f"set version to one of {supported}"]
    assert check("eks-supported-version", CLUSTER, changed(EKS, "version", "1.29"),
                 supported_versions=["1.29"]) == []


def test_log_types_are_the_ones_the_cluster_component_enables() -> None:
    from mlscaffold.stacks.constants import EKS_LOG_TYPES

    rule = RULES["eks-control-plane-logging"]
    assert rule.defaults()["log_types"] == list(EKS_LOG_TYPES)


# ------------------------------------------------------------------ node groups, templates

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
NODES = {"clusterName": "demo-eks", "nodeRoleArn": "arn:aws:iam::123456789012:role/node",
         "subnetIds": ["subnet-1"], "instanceTypes": ["m6i.large"],
         "scalingConfig": {"minSize": 1, "desiredSize": 1, "maxSize": 2},
         "launchTemplate": {"id": "lt-1", "version": "1"},
         "labels": {GPU_POOL_LABEL: "system"}}
LAUNCH_TEMPLATE = {
    "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required",
                        "httpPutResponseHopLimit": 1},
    "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {
        "volumeSize": 100, "volumeType": "gp3", "encrypted": "true"}}],
}
EC2 = {"ami": "ami-1", "instanceType": "m6i.large",
       "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
       "rootBlockDevice": {"encrypted": True, "volumeSize": 50},
       "ebsBlockDevices": [{"deviceName": "/dev/sdf", "encrypted": True}]}
SSM = "use SSM Session Manager (the AmazonSSMManagedInstanceCore policy) for shell access"
IMDS_FIX = 'set it to "required" (IMDSv2 only)'


def test_node_group_without_ssh() -> None:
    assert check("eks-node-group-no-ssh", NODE_GROUP, NODES) == []
    assert check("eks-node-group-no-ssh", NODE_GROUP,
                 changed(NODES, "remoteAccess", {"ec2SshKey": "ops"}), name="gpu") == [
        f"NodeGroup 'gpu': remoteAccess is set (SSH to the nodes); remove it and {SSM}"]


def test_node_group_launch_template() -> None:
    assert check("eks-node-group-launch-template", NODE_GROUP, NODES) == []
    # the template's id is unknown before deployment: its presence is enough
    assert check("eks-node-group-launch-template", NODE_GROUP,
                 changed(NODES, "launchTemplate.id", UNKNOWN_STRING_VALUE)) == []
    assert check("eks-node-group-launch-template", NODE_GROUP,
                 changed(NODES, "launchTemplate")) == [
        "NodeGroup 'res': launchTemplate is not set (IMDS and disks take EKS's defaults); set "
        "launchTemplate.id and version of a launch template that requires IMDSv2 and encrypts "
        "its volumes"]


@pytest.mark.parametrize("name", ["launch-template-imdsv2", "launch-template-imds-hop-limit",
                                  "launch-template-no-ssh-key",
                                  "launch-template-encrypted-volumes"])
def test_hardened_launch_template_passes(name: str) -> None:
    assert check(name, TEMPLATE, LAUNCH_TEMPLATE) == []


def test_launch_template_imdsv2() -> None:
    assert check("launch-template-imdsv2", TEMPLATE,
                 changed(LAUNCH_TEMPLATE, "metadataOptions.httpTokens", "optional")) == [
        f'LaunchTemplate \'res\': metadataOptions.httpTokens is "optional" (IMDSv1 is '
        f"allowed); {IMDS_FIX}"]
    assert check("launch-template-imdsv2", TEMPLATE, changed(LAUNCH_TEMPLATE, "metadataOptions")
                 ) == [f"LaunchTemplate 'res': metadataOptions.httpTokens is not set (IMDSv1 is "
                       f"allowed); {IMDS_FIX}"]
    no_imds = changed(LAUNCH_TEMPLATE, "metadataOptions", {"httpEndpoint": "disabled"})
    assert check("launch-template-imdsv2", TEMPLATE, no_imds) == []


def test_launch_template_hop_limit() -> None:
    two_hops = changed(LAUNCH_TEMPLATE, "metadataOptions.httpPutResponseHopLimit", 2.0)
    fix = "set metadataOptions.httpPutResponseHopLimit to 1"
    assert check("launch-template-imds-hop-limit", TEMPLATE, two_hops) == [
        f"LaunchTemplate 'res': metadataOptions.httpPutResponseHopLimit is 2, above 1; {fix}"]
    assert check("launch-template-imds-hop-limit", TEMPLATE, changed(
        LAUNCH_TEMPLATE, "metadataOptions.httpPutResponseHopLimit")) == [
        f"LaunchTemplate 'res': metadataOptions.httpPutResponseHopLimit is not set (EKS AMIs "
        f"default to 2); {fix}"]
    assert check("launch-template-imds-hop-limit", TEMPLATE, two_hops, max_hop_limit=2) == []


def test_launch_template_key_pair() -> None:
    assert check("launch-template-no-ssh-key", TEMPLATE,
                 changed(LAUNCH_TEMPLATE, "keyName", "ops")) == [
        f"LaunchTemplate 'res': keyName is set (an SSH key pair on every instance); remove it "
        f"and {SSM}"]


def test_launch_template_volume_encryption() -> None:
    message = ("LaunchTemplate 'res': blockDeviceMappings[0].ebs.encrypted is not true "
               '(/dev/xvda is unencrypted); set ebs.encrypted to "true"')
    assert check("launch-template-encrypted-volumes", TEMPLATE, changed(
        LAUNCH_TEMPLATE, "blockDeviceMappings[0].ebs.encrypted", "false")) == [message]
    assert check("launch-template-encrypted-volumes", TEMPLATE, changed(
        LAUNCH_TEMPLATE, "blockDeviceMappings[0].ebs.encrypted")) == [message]
    assert check("launch-template-encrypted-volumes", TEMPLATE, changed(
        LAUNCH_TEMPLATE, "blockDeviceMappings[0].ebs.encrypted", True)) == []
    assert check("launch-template-encrypted-volumes", TEMPLATE,
                 changed(LAUNCH_TEMPLATE, "blockDeviceMappings")) == [
        "LaunchTemplate 'res': blockDeviceMappings is not set (the root volume takes the AMI's "
        'settings, unencrypted); map the root device (e.g. /dev/xvda) with ebs.encrypted "true"']


def test_instance_imdsv2_and_volumes() -> None:
    assert check("ec2-instance-imdsv2", INSTANCE, EC2) == []
    assert check("ec2-instance-encrypted-volumes", INSTANCE, EC2) == []
    assert check("ec2-instance-imdsv2", INSTANCE,
                 changed(EC2, "metadataOptions.httpTokens", "optional"), name="bastion") == [
        f'Instance \'bastion\': metadataOptions.httpTokens is "optional" (IMDSv1 is allowed); '
        f"{IMDS_FIX}"]
    assert check("ec2-instance-encrypted-volumes", INSTANCE, changed(EC2, "rootBlockDevice")
                 ) == ["Instance 'res': rootBlockDevice.encrypted is not true (the root volume "
                       "takes the AMI's settings, unencrypted); set rootBlockDevice.encrypted "
                       "to true"]
    assert check("ec2-instance-encrypted-volumes", INSTANCE,
                 changed(EC2, "ebsBlockDevices[0].encrypted", False)) == [
        "Instance 'res': ebsBlockDevices[0].encrypted is not true; set encrypted to true"]


# ------------------------------------------------------------------ Kubernetes workloads

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
CONTAINER = {
    "name": "app", "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1.4.2",
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                  "limits": {"cpu": "1", "memory": "1Gi"}},
    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}},
}
POD_SPEC = {"securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
            "containers": [CONTAINER]}
# where each workload kind keeps its pod spec
POD_PATHS = {
    "kubernetes:core/v1:Pod": "spec",
    DEPLOYMENT: "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
    ISVC: "spec.predictor",
}
K8S_RULES = ("k8s-resource-limits", "k8s-run-as-non-root", "k8s-no-privilege-escalation",
             "k8s-read-only-root-filesystem", "k8s-image-pinned", "k8s-no-default-namespace")


def workload(resource_type: str = DEPLOYMENT, pod: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """Props of a workload of `resource_type` whose pod spec is `pod` (default POD_SPEC)."""
    props: dict[str, Any] = {"metadata": {"name": "app", "namespace": "ml"}}
    target = props
    keys = POD_PATHS[resource_type].split(".")
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = copy.deepcopy(pod or POD_SPEC)
    return props


DEPLOY = workload()
DEPLOY_CONTAINER = "spec.template.spec.containers[0]"


@pytest.mark.parametrize("resource_type", POD_PATHS)
@pytest.mark.parametrize("name", K8S_RULES)
def test_hardened_workloads_pass(name: str, resource_type: str) -> None:
    assert check(name, resource_type, workload(resource_type)) == []


@pytest.mark.parametrize("resource_type", POD_PATHS)
def test_every_workload_kind_checks_its_pod(resource_type: str) -> None:
    pod_path = POD_PATHS[resource_type]
    props = changed(workload(resource_type), f"{pod_path}.securityContext")
    kind = resource_type.rsplit(":", 1)[-1]
    assert check("k8s-run-as-non-root", resource_type, props) == [
        f"{kind} 'res': {pod_path}.containers[0].securityContext.runAsNonRoot is not set on "
        f"the container or its pod; set runAsNonRoot: true and a non-zero runAsUser in "
        f"{pod_path}.containers[0].securityContext or {pod_path}.securityContext"]


def test_resource_requests_and_limits() -> None:
    fix = "set requests and limits of both cpu and memory"
    assert check("k8s-resource-limits", DEPLOYMENT,
                 changed(DEPLOY, f"{DEPLOY_CONTAINER}.resources.limits.memory")) == [
        f"Deployment 'res': {DEPLOY_CONTAINER}.resources lacks limits.memory; {fix}"]
    assert check("k8s-resource-limits", DEPLOYMENT,
                 changed(DEPLOY, f"{DEPLOY_CONTAINER}.resources")) == [
        f"Deployment 'res': {DEPLOY_CONTAINER}.resources lacks requests.cpu, requests.memory, "
        f"limits.cpu, limits.memory; {fix}"]


def test_run_as_non_root_container_overrides_pod() -> None:
    own = changed(DEPLOY, f"{DEPLOY_CONTAINER}.securityContext.runAsNonRoot", True)
    assert check("k8s-run-as-non-root", DEPLOYMENT,
                 changed(own, "spec.template.spec.securityContext")) == []
    assert check("k8s-run-as-non-root", DEPLOYMENT,
                 changed(DEPLOY, f"{DEPLOY_CONTAINER}.securityContext.runAsNonRoot", False)) == [
        f"Deployment 'res': {DEPLOY_CONTAINER}.securityContext.runAsNonRoot is false; set "
        f"runAsNonRoot: true and a non-zero runAsUser in {DEPLOY_CONTAINER}.securityContext "
        "or spec.template.spec.securityContext"]


def test_privilege_escalation_and_root_filesystem() -> None:
    context = f"{DEPLOY_CONTAINER}.securityContext"
    assert check("k8s-no-privilege-escalation", DEPLOYMENT,
                 changed(DEPLOY, f"{context}.allowPrivilegeEscalation")) == [
        f"Deployment 'res': {context}.allowPrivilegeEscalation is not false (setuid binaries "
        "can gain privileges); set it to false"]
    assert check("k8s-read-only-root-filesystem", DEPLOYMENT,
                 changed(DEPLOY, f"{context}.readOnlyRootFilesystem", False)) == [
        f"Deployment 'res': {context}.readOnlyRootFilesystem is not true; set it to true and "
        "mount an emptyDir volume where the process writes (e.g. /tmp)"]


def test_init_containers_are_checked() -> None:
    init = {"name": "init", "image": "busybox:1.37", "resources": CONTAINER["resources"]}
    props = changed(DEPLOY, "spec.template.spec.initContainers", [init])
    assert check("k8s-no-privilege-escalation", DEPLOYMENT, props) == [
        "Deployment 'res': spec.template.spec.initContainers[0].securityContext"
        ".allowPrivilegeEscalation is not false (setuid binaries can gain privileges); set it "
        "to false"]


@pytest.mark.parametrize(("image", "problem"), [
    ("repo/app", "'repo/app' has no tag (it pulls :latest)"),
    ("registry.local:5000/app", "'registry.local:5000/app' has no tag (it pulls :latest)"),
    ("repo/app:latest", "'repo/app:latest' uses the moving tag :latest"),
])
def test_images_are_pinned(image: str, problem: str) -> None:
    props = changed(DEPLOY, f"{DEPLOY_CONTAINER}.image", image)
    assert check("k8s-image-pinned", DEPLOYMENT, props) == [
        f"Deployment 'res': {DEPLOY_CONTAINER}.image {problem}; pin a release tag (e.g. :1.4.2) "
        "or a digest (@sha256:...)"]


def test_image_digests() -> None:
    digest = "repo/app@sha256:" + "a" * 64
    assert check("k8s-image-pinned", DEPLOYMENT,
                 changed(DEPLOY, f"{DEPLOY_CONTAINER}.image", digest), require_digest=True) == []
    image = CONTAINER["image"]
    assert check("k8s-image-pinned", DEPLOYMENT, DEPLOY, require_digest=True) == [
        f"Deployment 'res': {DEPLOY_CONTAINER}.image '{image}' is not pinned by digest; pin a "
        "digest (image@sha256:...)"]


def test_workloads_avoid_the_default_namespace() -> None:
    fix = "set it to the application's namespace (e.g. ml-serving)"
    assert check("k8s-no-default-namespace", DEPLOYMENT,
                 changed(DEPLOY, "metadata.namespace", "default")) == [
        f"Deployment 'res': metadata.namespace is default; {fix}"]
    assert check("k8s-no-default-namespace", DEPLOYMENT, changed(DEPLOY, "metadata.namespace")
                 ) == [f"Deployment 'res': metadata.namespace is not set (the default "
                       f"namespace); {fix}"]


def test_kserve_model_container_takes_the_runtime_image() -> None:
    model = {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://bucket/model",
             "resources": CONTAINER["resources"], "securityContext": CONTAINER["securityContext"]}
    props = workload(ISVC, {"securityContext": {"runAsNonRoot": True}, "model": model})
    for name in K8S_RULES:
        assert check(name, ISVC, props) == []
    assert check("k8s-read-only-root-filesystem", ISVC,
                 changed(props, "spec.predictor.model.securityContext")) == [
        "InferenceService 'res': spec.predictor.model.securityContext.readOnlyRootFilesystem "
        "is not true; set it to true and mount an emptyDir volume where the process writes "
        "(e.g. /tmp)"]


# ------------------------------------------------------------------ network isolation

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DENY_ALL = {"metadata": {"name": "default-deny", "namespace": "ml"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
ISOLATION_FIX = ("add a NetworkPolicy to namespace ml with podSelector {} and policyTypes "
                 "[Ingress, Egress] (deny by default), and policies allowing only the traffic "
                 "these pods need")


def isolation(props: dict[str, Any], *policies: dict[str, Any],
              resource_type: str = DEPLOYMENT, **settings: Any) -> list[tuple[str, str]]:
    return check_stack("k8s-network-policy", [
        (resource_type, "app", props),
        *[(NETWORK_POLICY, f"np-{i}", policy) for i, policy in enumerate(policies)]],
        **settings)


@pytest.mark.parametrize("resource_type", POD_PATHS)
def test_workloads_in_a_deny_by_default_namespace_pass(resource_type: str) -> None:
    assert isolation(workload(resource_type), DENY_ALL, resource_type=resource_type) == []


def test_workload_without_network_policies() -> None:
    message = ("Deployment 'app': metadata.namespace 'ml' has no NetworkPolicy selecting the "
               "pods of spec.template.spec (all their ingress and egress is allowed); "
               f"{ISOLATION_FIX}")
    assert isolation(DEPLOY) == [("app", message)]
    # a policy of another namespace protects nothing here
    assert isolation(DEPLOY, changed(DENY_ALL, "metadata.namespace", "other")) == [
        ("app", message)]
    # a workload without a namespace runs in default
    assert isolation(changed(DEPLOY, "metadata.namespace"), DENY_ALL) == [(
        "app", "Deployment 'app': metadata.namespace 'default' has no NetworkPolicy selecting "
        "the pods of spec.template.spec (all their ingress and egress is allowed); "
        + ISOLATION_FIX.replace("namespace ml", "namespace default"))]


def test_isolation_in_one_direction_only() -> None:
    ingress_only = changed(DENY_ALL, "spec.policyTypes", ["Ingress"])
    message = ("Deployment 'app': metadata.namespace 'ml' has no NetworkPolicy isolating Egress "
               "for the pods of spec.template.spec (all their egress is allowed); "
               f"{ISOLATION_FIX}")
    assert isolation(DEPLOY, ingress_only) == [("app", message)]
    # without policyTypes Kubernetes isolates Ingress, and Egress only with egress rules
    assert isolation(DEPLOY, changed(DENY_ALL, "spec.policyTypes")) == [("app", message)]
    assert isolation(DEPLOY, changed(changed(DENY_ALL, "spec.policyTypes"), "spec.egress",
                                     [{"ports": [{"protocol": "UDP", "port": 53}]}])) == []
    # two policies, one per direction, isolate both ways
    egress_only = changed(DENY_ALL, "spec.policyTypes", ["Egress"])
    assert isolation(DEPLOY, ingress_only, egress_only) == []
    assert isolation(DEPLOY, changed(DENY_ALL, "spec.policyTypes", [])) == [(
        "app", message)]


def test_policies_select_pods_by_label() -> None:
    labelled = changed(DEPLOY, "spec.template.metadata", {"labels": {"app": "api",
                                                                      "tier": "web"}})
    own = {"matchLabels": {"app": "api"}}
    assert isolation(labelled, changed(DENY_ALL, "spec.podSelector", own)) == []
    assert isolation(labelled, changed(DENY_ALL, "spec.podSelector", {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["web", "batch"]},
        {"key": "app", "operator": "Exists"},
        {"key": "debug", "operator": "DoesNotExist"},
        {"key": "app", "operator": "NotIn", "values": ["db"]}]})) == []
    other = changed(DENY_ALL, "spec.podSelector", {"matchLabels": {"app": "db"}})
    assert len(isolation(labelled, other)) == 1
    not_web = changed(DENY_ALL, "spec.podSelector", {"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["web"]}]})
    assert len(isolation(labelled, not_web)) == 1


def test_a_rule_admitting_everything_is_no_default_deny() -> None:
    allow_all = changed(changed(DENY_ALL, "metadata.name", "allow-all"), "spec.egress", [{}])
    assert isolation(DEPLOY, allow_all) == [(
        "app", "Deployment 'app': metadata.namespace 'ml' has NetworkPolicy 'allow-all', which "
        "admits all egress of the pods of spec.template.spec; replace its egress rule that "
        "allows everything with the peers and ports these pods need")]
    world = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
    assert len(isolation(DEPLOY, changed(DENY_ALL, "spec.egress", [world]))) == 1
    https = {**world, "ports": [{"protocol": "TCP", "port": 443}]}
    assert isolation(DEPLOY, changed(DENY_ALL, "spec.egress", [https])) == []
    public = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}
    assert isolation(DEPLOY, changed(DENY_ALL, "spec.egress", [public])) == []
    assert len(isolation(DEPLOY, changed(DENY_ALL, "spec.ingress", [{"from": []}]))) == 1


def test_inference_service_pods_carry_kserve_labels() -> None:
    service = changed(workload(ISVC), "metadata.labels", {"team": "ml"})
    for selector in ({"matchLabels": {"serving.kserve.io/inferenceservice": "app"}},
                     {"matchLabels": {"component": "predictor"}},
                     {"matchLabels": {"team": "ml"}}):
        assert isolation(service, changed(DENY_ALL, "spec.podSelector", selector),
                         resource_type=ISVC) == [], selector
    with_transformer = changed(service, "spec.transformer", copy.deepcopy(POD_SPEC))
    predictor_only = changed(DENY_ALL, "spec.podSelector", {"matchLabels": {
        "component": "predictor"}})
    assert isolation(with_transformer, predictor_only, resource_type=ISVC) == [(
        "app", "InferenceService 'app': metadata.namespace 'ml' has no NetworkPolicy selecting "
        "the pods of spec.transformer (all their ingress and egress is allowed); "
        f"{ISOLATION_FIX}")]


def test_exempt_namespaces() -> None:
    assert isolation(DEPLOY, exempt_namespaces=["ml"]) == []
    assert len(isolation(DEPLOY, exempt_namespaces=["other"])) == 1


# ------------------------------------------------------------------ GPU schedulability

GPU_LABELS = {GPU_POOL_LABEL: "gpu", **GPU_NODE_SELECTOR}
GPU_GROUP = (NODE_GROUP, "demo-gpu", {
    **NODES, "instanceTypes": ["g5.xlarge"], "amiType": "AL2023_x86_64_NVIDIA",
    "labels": GPU_LABELS, "taints": [GPU_TAINT]})
SYSTEM_GROUP = (NODE_GROUP, "demo-system", NODES)
GPU_CONTAINER = changed(CONTAINER, 'resources.limits["nvidia.com/gpu"]', "1")
GPU_POD = {**POD_SPEC, "containers": [GPU_CONTAINER], "tolerations": [GPU_TOLERATION],
           "nodeSelector": GPU_LABELS}
PREDICTOR = workload(ISVC, GPU_POD)
LABELS_FIX = ("set nodeSelector to labels of node group 'demo-gpu': "
              '{"mlscaffold.io/node-pool": "gpu", "nvidia.com/gpu.present": "true"}')


def gpu_findings(props: dict[str, Any], *groups: tuple[str, str, dict[str, Any]],
                 resource_type: str = ISVC) -> list[tuple[str, str]]:
    return check_stack("gpu-workload-schedulable",
                        [*groups, (resource_type, "model", props)])


def test_gpu_workload_on_a_gpu_node_group_passes() -> None:
    assert gpu_findings(PREDICTOR, SYSTEM_GROUP, GPU_GROUP) == []
    deployment = workload(DEPLOYMENT, GPU_POD)
    assert gpu_findings(deployment, SYSTEM_GROUP, GPU_GROUP, resource_type=DEPLOYMENT) == []


def test_gpu_workload_without_the_toleration() -> None:
    props = changed(PREDICTOR, "spec.predictor.tolerations")
    assert gpu_findings(props, SYSTEM_GROUP, GPU_GROUP) == [(
        "model", "InferenceService 'model': spec.predictor.tolerations do not tolerate the "
        "taint nvidia.com/gpu=true:NoSchedule of GPU node group 'demo-gpu' (the pod stays "
        "Pending); add toleration nvidia.com/gpu=true:NoSchedule")]
    wrong_effect = changed(PREDICTOR, "spec.predictor.tolerations[0].effect", "NoExecute")
    assert len(gpu_findings(wrong_effect, GPU_GROUP)) == 1


@pytest.mark.parametrize("toleration", [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "nvidia.com/gpu", "operator": "Exists"},
    {"operator": "Exists"},
])
def test_exists_tolerations_pass(toleration: dict[str, str]) -> None:
    props = changed(PREDICTOR, "spec.predictor.tolerations", [toleration])
    assert gpu_findings(props, GPU_GROUP) == []


def test_gpu_workload_selecting_a_missing_label() -> None:
    props = changed(PREDICTOR, f'spec.predictor.nodeSelector["{GPU_POOL_LABEL}"]', "gpu-large")
    assert gpu_findings(props, SYSTEM_GROUP, GPU_GROUP) == [(
        "model", "InferenceService 'model': spec.predictor.nodeSelector selects no GPU node "
        "group (node group 'demo-gpu' lacks mlscaffold.io/node-pool=gpu-large); "
        f"{LABELS_FIX}")]


def test_gpu_workload_selecting_well_known_node_labels() -> None:
    spot = {**GPU_GROUP[2], "capacityType": "SPOT", "instanceTypes": ["g5.xlarge", "g6.xlarge"]}
    selector = {"node.kubernetes.io/instance-type": "g6.xlarge", "kubernetes.io/arch": "amd64",
                "eks.amazonaws.com/capacityType": "SPOT"}
    props = changed(PREDICTOR, "spec.predictor.nodeSelector", selector)
    assert gpu_findings(props, (NODE_GROUP, "demo-gpu", spot)) == []
    props = changed(props, 'spec.predictor.nodeSelector["node.kubernetes.io/instance-type"]',
                    "p5.48xlarge")
    assert gpu_findings(props, (NODE_GROUP, "demo-gpu", spot)) == [(
        "model", "InferenceService 'model': spec.predictor.nodeSelector selects no GPU node "
        "group (node group 'demo-gpu' lacks node.kubernetes.io/instance-type=p5.48xlarge); "
        f"{LABELS_FIX}")]


def test_gpu_workload_without_a_node_selector() -> None:
    props = changed(PREDICTOR, "spec.predictor.nodeSelector")
    assert gpu_findings(props, GPU_GROUP) == [(
        "model", "InferenceService 'model': spec.predictor.nodeSelector is not set (the pod is "
        f"not pinned to a GPU node group); {LABELS_FIX}")]


def test_gpu_workload_with_required_node_affinity() -> None:
    term = {"matchExpressions": [{"key": GPU_POOL_LABEL, "operator": "In",
                                  "values": ["gpu"]}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}}
    props = changed(changed(PREDICTOR, "spec.predictor.nodeSelector"),
                    "spec.predictor.affinity", affinity)
    assert gpu_findings(props, GPU_GROUP) == []
    elsewhere = changed(props, "spec.predictor.affinity.nodeAffinity."
                        "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]."
                        "matchExpressions[0].operator", "NotIn")
    assert gpu_findings(elsewhere, GPU_GROUP) == [(
        "model", "InferenceService 'model': spec.predictor.affinity.nodeAffinity requires "
        f"labels no GPU node group carries; {LABELS_FIX}")]


def test_gpu_workload_without_gpu_node_groups() -> None:
    assert gpu_findings(PREDICTOR, SYSTEM_GROUP) == [(
        "model", "InferenceService 'model': spec.predictor.containers[0].resources requests "
        "nvidia.com/gpu but the stack has no GPU node group or Karpenter NodePool; add a "
        "Karpenter NodePool (a GPU pool) or an EKS node group of GPU instances tainted "
        "nvidia.com/gpu=true:NoSchedule, or drop the GPU request")]


# a GPU pool as the in-cluster program declares it (stacks/karpenter.py node_pool)
GPU_POOL = ("kubernetes:karpenter.sh/v1:NodePool", "demo-dev-gpu-node-pool", {
    "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"},
    "spec": {"template": {
        "metadata": {"labels": GPU_LABELS},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                  "name": "gpu"},
                 "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                 "requirements": [
                     {"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                      "values": ["g6", "g5"]},
                     {"key": "karpenter.sh/capacity-type", "operator": "In",
                      "values": ["spot"]}]}},
        "limits": {"cpu": "16", "nvidia.com/gpu": "2"}}})
POOL_FIX = ("set nodeSelector to labels of NodePool 'gpu': "
            '{"mlscaffold.io/node-pool": "gpu", "nvidia.com/gpu.present": "true"}')


def test_gpu_workload_on_a_gpu_node_pool_passes() -> None:
    assert gpu_findings(PREDICTOR, SYSTEM_GROUP, GPU_POOL) == []
    # Karpenter's well-known labels and the values the requirements allow may be selected
    selector = {"karpenter.sh/nodepool": "gpu", "karpenter.sh/capacity-type": "spot",
                "karpenter.k8s.aws/instance-family": "g6", "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "g6.xlarge"}
    assert gpu_findings(changed(PREDICTOR, "spec.predictor.nodeSelector", selector),
                        GPU_POOL) == []


def test_gpu_workload_without_the_node_pools_toleration() -> None:
    props = changed(PREDICTOR, "spec.predictor.tolerations")
    assert gpu_findings(props, SYSTEM_GROUP, GPU_POOL) == [(
        "model", "InferenceService 'model': spec.predictor.tolerations do not tolerate the "
        "taint nvidia.com/gpu=true:NoSchedule of GPU NodePool 'gpu' (the pod stays Pending); "
        "add toleration nvidia.com/gpu=true:NoSchedule")]


@pytest.mark.parametrize(("selector", "lacks"), [
    ({GPU_POOL_LABEL: "gpu-large"}, "mlscaffold.io/node-pool=gpu-large"),
    # the pool allows spot only, and g6 and g5 families only
    ({"karpenter.sh/capacity-type": "on-demand"}, "karpenter.sh/capacity-type=on-demand"),
    ({"karpenter.k8s.aws/instance-family": "p5"}, "karpenter.k8s.aws/instance-family=p5"),
])
def test_gpu_workload_selecting_what_no_node_of_the_pool_has(selector: dict[str, str],
                                                              lacks: str) -> None:
    props = changed(PREDICTOR, "spec.predictor.nodeSelector", {**GPU_LABELS, **selector})
    assert gpu_findings(props, GPU_POOL) == [(
        "model", "InferenceService 'model': spec.predictor.nodeSelector selects no GPU "
        f"NodePool (NodePool 'gpu' lacks {lacks}); {POOL_FIX}")]


def test_gpu_workload_without_a_node_selector_on_a_pool() -> None:
    props = changed(PREDICTOR, "spec.predictor.nodeSelector")
    assert gpu_findings(props, GPU_POOL) == [(
        "model", "InferenceService 'model': spec.predictor.nodeSelector is not set (the pod is "
        f"not pinned to a GPU NodePool); {POOL_FIX}")]


def test_a_pool_without_gpus_is_no_gpu_capacity() -> None:
    cpu_pool = changed(changed(GPU_POOL[2], "spec.template.spec.taints", []),
                       "spec.template.metadata.labels", {GPU_POOL_LABEL: "cpu"})
    cpu_pool = changed(cpu_pool, "spec.template.spec.requirements[0].values", ["m6i"])
    findings = gpu_findings(PREDICTOR, (GPU_POOL[0], "cpu", cpu_pool))
    assert [m.split(";")[0] for _, m in findings] == [
        "InferenceService 'model': spec.predictor.containers[0].resources requests "
        "nvidia.com/gpu but the stack has no GPU node group or Karpenter NodePool"]


# the CPU pool as the in-cluster program declares it: untainted, so any pod's taints and
# selector "fit" its nodes, yet they have no GPU
CPU_POOL = ("kubernetes:karpenter.sh/v1:NodePool", "demo-dev-cpu-node-pool", node_pool(
    CpuPoolConfig(instance_families=["m7i", "m6i", "c6i"], instance_sizes=["large", "xlarge"])))


def test_an_untainted_cpu_pool_never_counts_as_gpu_capacity() -> None:
    assert gpu_findings(PREDICTOR, SYSTEM_GROUP, GPU_POOL, CPU_POOL) == []
    # alone, it is no GPU capacity
    assert [m.split(";")[0] for _, m in gpu_findings(PREDICTOR, SYSTEM_GROUP, CPU_POOL)] == [
        "InferenceService 'model': spec.predictor.containers[0].resources requests "
        "nvidia.com/gpu but the stack has no GPU node group or Karpenter NodePool"]
    # a GPU pod pinned to the CPU pool would stay Pending there: judged against the GPU pool
    pinned = changed(PREDICTOR, "spec.predictor.nodeSelector", {GPU_POOL_LABEL: "cpu"})
    assert gpu_findings(pinned, GPU_POOL, CPU_POOL) == [(
        "model", "InferenceService 'model': spec.predictor.nodeSelector selects no GPU "
        f"NodePool (NodePool 'gpu' lacks mlscaffold.io/node-pool=cpu); {POOL_FIX}")]
    # neither toleration nor selector: it fits the CPU pool's nodes only, which have no GPU
    loose = changed(changed(PREDICTOR, "spec.predictor.tolerations"),
                    "spec.predictor.nodeSelector")
    assert gpu_findings(loose, GPU_POOL, CPU_POOL) == [
        ("model", "InferenceService 'model': spec.predictor.tolerations do not tolerate the "
                  "taint nvidia.com/gpu=true:NoSchedule of GPU NodePool 'gpu' (the pod stays "
                  "Pending); add toleration nvidia.com/gpu=true:NoSchedule"),
        ("model", "InferenceService 'model': spec.predictor.nodeSelector is not set (the pod is "
                  f"not pinned to a GPU NodePool); {POOL_FIX}")]
    # and a CPU predictor needs no GPU pool at all
    assert gpu_findings(workload(ISVC), SYSTEM_GROUP, CPU_POOL) == []


def test_gpu_workload_picks_among_gpu_node_groups() -> None:
    large_labels = {**GPU_LABELS, GPU_POOL_LABEL: "gpu-large"}
    large = (NODE_GROUP, "demo-gpu-large", {**GPU_GROUP[2], "labels": large_labels})
    props = changed(PREDICTOR, "spec.predictor.nodeSelector", large_labels)
    assert gpu_findings(props, GPU_GROUP, large) == []
    # an untainted GPU group needs no toleration; a PreferNoSchedule taint blocks nothing
    untainted = (NODE_GROUP, "demo-gpu", {**GPU_GROUP[2], "taints": [
        {"key": "spot", "value": "true", "effect": "PREFER_NO_SCHEDULE"}]})
    assert gpu_findings(changed(PREDICTOR, "spec.predictor.tolerations"), untainted) == []


def test_cpu_workloads_need_no_gpu_node_group() -> None:
    assert gpu_findings(workload(ISVC), SYSTEM_GROUP) == []
    zero = changed(PREDICTOR, 'spec.predictor.containers[0].resources.limits["nvidia.com/gpu"]',
                   0)
    assert gpu_findings(zero, SYSTEM_GROUP) == []


# ------------------------------------------------------------------ the example stacks


@pytest.mark.parametrize(("example", "stack"), [
    ("lifetime-value", "dev"), ("lifetime-value", "prod"),
    ("churn-model", "dev"), ("churn-model", "staging"), ("churn-model", "prod"),
])
def test_example_stacks_pass(example: str, stack: str) -> None:
    from mlscaffold.infra import preview_stack
    from mlscaffold.policies.config import pack_config
    from mlscaffold.policies.engine import evaluate
    from mlscaffold.spec import load_spec
    from mlscaffold.stacks.config import environment_profile

    project = EXAMPLES / example
    graph = preview_stack(project, stack)
    spec = load_spec(project / "mlscaffold.yaml")
    config = pack_config("security", environment=stack,
                         profile=environment_profile(stack, spec.environments), region=spec.region)
    result = evaluate(graph, {"security": {k: v for k, v in config.items() if k in MINE}})
    assert result.rules == len(MINE)
    assert [(f.rule, f.message) for f in result.findings if f.level == "mandatory"] == []
    if example == "lifetime-value":  # KServe: the GPU rule had a workload to check
        assert graph.of_type(ISVC) and graph.of_type(NODE_GROUP)


# ------------------------------------------------------------------ Knative

KNATIVE_SERVING = "kubernetes:operator.knative.dev/v1beta1:KnativeServing"
SERVING_WITH_KOURIER = {"version": "1.18.2", "ingress": {"kourier": {
    "enabled": True, "service-type": "ClusterIP"}}}


def test_kourier_stays_inside_the_cluster() -> None:
    props = {"metadata": {"name": "knative-serving"}, "spec": SERVING_WITH_KOURIER}
    assert check("knative-kourier-cluster-ip", KNATIVE_SERVING, props) == []
    # no Kourier: nothing to check
    assert check("knative-kourier-cluster-ip", KNATIVE_SERVING,
                 changed(props, "spec.ingress.kourier.enabled", False)) == []
    fix = ("set it to ClusterIP; expose a model deliberately, through an internal load "
           "balancer or an Ingress of its own")
    assert check("knative-kourier-cluster-ip", KNATIVE_SERVING,
                 changed(props, 'spec.ingress.kourier["service-type"]', "LoadBalancer")) == [
        f"KnativeServing 'res': spec.ingress.kourier.service-type is LoadBalancer (Kourier's "
        f"gateway is reachable from outside the cluster); {fix}"]
    assert check("knative-kourier-cluster-ip", KNATIVE_SERVING,
                 changed(props, 'spec.ingress.kourier["service-type"]')) == [
        f"KnativeServing 'res': spec.ingress.kourier.service-type is not set (Kourier's "
        f"gateway Service is then a LoadBalancer); {fix}"]


def test_gpu_workload_asking_for_more_gpus_than_a_node_has() -> None:
    four = changed(PREDICTOR, 'spec.predictor.containers[0].resources.limits["nvidia.com/gpu"]',
                   "4")
    assert gpu_findings(four, SYSTEM_GROUP, GPU_GROUP) == [(
        "model", "InferenceService 'model': spec.predictor asks for 4 nvidia.com/gpu on one "
        "node, and the largest node of GPU node group 'demo-gpu' (g5.xlarge) has 1 (the pod "
        "stays Pending); ask for 1 or fewer, or give node group 'demo-gpu' an instance type "
        "with 4 GPUs or more")]
    larger = (NODE_GROUP, "demo-gpu", {**GPU_GROUP[2],
                                       "instanceTypes": ["g5.xlarge", "g5.12xlarge"]})
    assert gpu_findings(four, larger) == []
    unknown = (NODE_GROUP, "demo-gpu", {**GPU_GROUP[2], "instanceTypes": ["g9.xlarge"]})
    assert gpu_findings(four, unknown) == []  # a type the table does not know may have 4
    # two containers of one each need a node of two; an init container runs before them
    two = changed(PREDICTOR, "spec.predictor.containers", [GPU_CONTAINER, GPU_CONTAINER])
    assert [m.split(" (")[0] for _, m in gpu_findings(two, GPU_GROUP)] == [
        "InferenceService 'model': spec.predictor asks for 2 nvidia.com/gpu on one node, and "
        "the largest node of GPU node group 'demo-gpu'"]
    init = changed(PREDICTOR, "spec.predictor.initContainers", [GPU_CONTAINER])
    assert gpu_findings(init, GPU_GROUP) == []


def test_gpu_workload_asking_for_more_gpus_than_a_node_pool_allows() -> None:
    four = changed(PREDICTOR, 'spec.predictor.containers[0].resources.limits["nvidia.com/gpu"]',
                   "4")  # a g5.12xlarge has 4, and the pool's limit is 2
    assert gpu_findings(four, GPU_POOL) == [(
        "model", "InferenceService 'model': spec.predictor asks for 4 nvidia.com/gpu on one "
        "node, and GPU NodePool 'gpu' limits nvidia.com/gpu to 2 (the pod stays Pending); ask "
        "for 2 or fewer, or raise the NodePool's limits.nvidia.com/gpu")]
    nine = changed(changed(GPU_POOL[2], 'spec.limits["nvidia.com/gpu"]', "16"),
                   "spec.template.spec.requirements[0].values", ["g5"])
    assert [m.split(";")[0] for _, m in gpu_findings(
        changed(four, 'spec.predictor.containers[0].resources.limits["nvidia.com/gpu"]', "9"),
        (GPU_POOL[0], "gpu", nine))] == [
        "InferenceService 'model': spec.predictor asks for 9 nvidia.com/gpu on one node, and "
        "the largest node of GPU NodePool 'gpu' (g5.48xlarge) has 8 (the pod stays Pending)"]


def test_a_version_past_its_standard_support_is_advisory_past_extended_mandatory(
        monkeypatch) -> None:
    from datetime import date

    from mlscaffold.policies.security import compute

    monkeypatch.setattr(compute, "_today", lambda: date(2026, 12, 5))
    assert RULES["eks-standard-support"].level == "advisory"
    assert RULES["eks-supported-version"].level == "mandatory"
    standard = changed(EKS, "upgradePolicy", {"supportType": "STANDARD"})
    # 1.34 left standard support on 2026-12-02 (EKS release calendar)
    assert check("eks-standard-support", CLUSTER, changed(standard, "version", "1.34")) == [
        "Cluster 'res': version 1.34 left EKS standard support on 2026-12-02 (EKS upgrades the "
        "cluster to the next version, which the stack then tries to downgrade); raise it to "
        "1.35 (cluster.kubernetes_version in the stack config; one minor version at a time)"]
    assert check("eks-standard-support", CLUSTER, changed(EKS, "version", "1.32")) == [
        "Cluster 'res': version 1.32 left EKS standard support on 2026-03-23 (the cluster is "
        "billed at the extended-support rate); raise it to 1.33 (cluster.kubernetes_version in "
        "the stack config; one minor version at a time)"]
    assert check("eks-standard-support", CLUSTER, changed(EKS, "version", "1.35")) == []
    assert check("eks-supported-version", CLUSTER, changed(EKS, "version", "1.32")) == []
    monkeypatch.setattr(compute, "_today", lambda: date(2027, 3, 23))
    assert check("eks-supported-version", CLUSTER, changed(EKS, "version", "1.32")) == [
        "Cluster 'res': version 1.32 left EKS extended support on 2027-03-23 (no new clusters; "
        "EKS upgrades the ones still on it); set it to 1.33 (cluster.kubernetes_version in the "
        "stack config)"]


def test_names_aws_would_refuse_are_found_given_or_auto_named():
    role = "aws:iam/role:Role"
    long = "n" * 34 + "-p-cluster-karpenter-controller-role"
    # auto-named (no name input, as offline): Pulumi's "<logical>-xxxxxxx" is over IAM's 64
    assert check("aws-name-limits", role, {}, name=long) == [
        f"Role '{long}': name is not set, and Pulumi's auto-name '{long}-xxxxxxx' is 78 "
        "characters, over the 64 AWS allows (IAM CreateRole RoleName 1-64; pulumi-aws 64); "
        "give name a name of at most 64 characters (mlscaffold.stacks.names.fitted_name makes "
        "one) or a shorter logical name"]
    assert check("aws-name-limits", role, {}, name="demo-dev-cluster-node-role") == []
    assert check("aws-name-limits", role, {"name": "r" * 64}, name=long) == []
    assert check("aws-name-limits", role, {"name": "r" * 65}, name="r") == [
        f"Role 'r': name '{'r' * 65}' is 65 characters, over the 64 AWS allows (IAM CreateRole "
        "RoleName 1-64; pulumi-aws 64); shorten name"]
    assert check("aws-name-limits", "aws:sagemaker/monitoringSchedule:MonitoringSchedule",
                 {"name": "demo_dev"}, name="s") == [
        "MonitoringSchedule 's': name 'demo_dev' has characters AWS does not accept in it "
        "(allowed: [a-zA-Z0-9](-*[a-zA-Z0-9])*); shorten name"]
