"""Karpenter's manifests and version facts: the EC2NodeClasses and NodePools of GPU pools and
of the CPU pool checked against Karpenter's v1 API (the fields of the pinned release's CRDs),
their standard parts (the nodes they make, the pods they take) against the Kubernetes schema of
every supported version, and the compatibility table against the supported Kubernetes
versions."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest

from mlscaffold.stacks import config as config_module
from mlscaffold.stacks.config import (
    GPU_POOL_LABEL,
    GPU_TOLERATION,
    KARPENTER_MINIMUM_FOR_KUBERNETES,
    KARPENTER_VERSION,
    SUPPORTED_KUBERNETES_VERSIONS,
    CpuPoolConfig,
    GpuPoolConfig,
    KarpenterPoolConfig,
    StackConfigError,
)
from mlscaffold.stacks.constants import GPU_NODE_SELECTOR
from mlscaffold.stacks.instances import EC2_INSTANCES, gpu_count
from mlscaffold.stacks.karpenter import ec2_node_class, node_pool

from .conftest import make_config

PROFILE = "demo-dev-cluster-karpenter-node-profile"
TAGS = {"project": "demo", "env": "dev"}
POOLS = [
    GpuPoolConfig(name="gpu", instance_families=["g6", "g5", "g4dn"],
                  instance_sizes=["xlarge", "2xlarge"], capacity_types=["spot"], max_gpus=2),
    GpuPoolConfig(name="train", instance_families=["p5", "p4d"],
                  capacity_types=["spot", "on-demand"], max_gpus=32, disk_size_gib=500,
                  consolidate_after="30m"),
]
CPU_POOLS = [
    CpuPoolConfig(name="cpu", instance_families=["m7i", "m6i", "c6i"],
                  instance_sizes=["large", "xlarge"], max_vcpus=8),
    CpuPoolConfig(name="cpu-large", instance_families=["m6i"], instance_sizes=["4xlarge"],
                  capacity_types=["spot", "on-demand"], max_vcpus=64, consolidate_after="15m"),
]
ALL_POOLS = [*POOLS, *CPU_POOLS]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# ------------------------------------------------------------------ versions


def test_the_pinned_karpenter_supports_every_supported_kubernetes_version() -> None:
    """Karpenter's compatibility matrix (v1.14 docs): the oldest Karpenter for each Kubernetes
    version; the pinned release must be at least that for every version a stack may run."""
    assert set(KARPENTER_MINIMUM_FOR_KUBERNETES) >= set(SUPPORTED_KUBERNETES_VERSIONS)
    for version in SUPPORTED_KUBERNETES_VERSIONS:
        assert _version(KARPENTER_VERSION) >= _version(
            KARPENTER_MINIMUM_FOR_KUBERNETES[version]), version


def test_a_kubernetes_version_the_pinned_karpenter_does_not_support_is_refused(monkeypatch):
    monkeypatch.setattr(config_module, "KARPENTER_VERSION", "1.12.4")
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"cluster": {"kubernetes_version": "1.36"}})
    assert caught.value.key == "platform.cluster.kubernetes_version"
    assert "Kubernetes 1.36 needs Karpenter 1.13 or later and mlscaffold installs 1.12.4" in str(
        caught.value)
    assert make_config("dev", {"cluster": {"kubernetes_version": "1.35"}})  # 1.9 is enough


# ------------------------------------------------------------------ Karpenter's v1 API

# The fields mlscaffold writes, from the v1 CRDs of Karpenter 1.14 (karpenter.sh_nodepools,
# karpenter.k8s.aws_ec2nodeclasses): path -> check ("object" and "list" nest; the others are
# the value's type, enum or pattern). A field missing here is a field Karpenter would reject
# or mlscaffold does not mean to set.
_KEY = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DURATION_OR_NEVER = r"^(([0-9]+(s|m|h))+|Never)$"
NODE_POOL_API: dict[str, Any] = {
    "apiVersion": {"karpenter.sh/v1"}, "kind": {"NodePool"},
    "metadata": "object", "metadata.name": str,
    "spec": "object",
    "spec.template": "object",
    "spec.template.metadata": "object", "spec.template.metadata.labels": "labels",
    "spec.template.spec": "object",
    "spec.template.spec.nodeClassRef": "object",
    "spec.template.spec.nodeClassRef.group": {"karpenter.k8s.aws"},
    "spec.template.spec.nodeClassRef.kind": {"EC2NodeClass"},
    "spec.template.spec.nodeClassRef.name": str,
    "spec.template.spec.taints": "list", "spec.template.spec.taints[]": "object",
    "spec.template.spec.taints[].key": _KEY, "spec.template.spec.taints[].value": _KEY,
    "spec.template.spec.taints[].effect": {"NoSchedule", "PreferNoSchedule", "NoExecute"},
    "spec.template.spec.requirements": "list", "spec.template.spec.requirements[]": "object",
    "spec.template.spec.requirements[].key": _KEY,
    "spec.template.spec.requirements[].operator": {"In", "NotIn", "Exists", "DoesNotExist",
                                                   "Gt", "Lt", "Gte", "Lte"},
    "spec.template.spec.requirements[].values": "list",
    "spec.template.spec.requirements[].values[]": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
    "spec.template.spec.expireAfter": _DURATION_OR_NEVER,
    "spec.limits": "object", "spec.limits.cpu": r"^\d+$", "spec.limits.nvidia.com/gpu": r"^\d+$",
    "spec.disruption": "object",
    "spec.disruption.consolidationPolicy": {"WhenEmpty", "WhenEmptyOrUnderutilized",
                                            "Balanced"},
    "spec.disruption.consolidateAfter": _DURATION_OR_NEVER,
    "spec.disruption.budgets": "list", "spec.disruption.budgets[]": "object",
    "spec.disruption.budgets[].nodes": r"^((100|[0-9]{1,2})%|[0-9]+)$",
}
EC2_NODE_CLASS_API: dict[str, Any] = {
    "apiVersion": {"karpenter.k8s.aws/v1"}, "kind": {"EC2NodeClass"},
    "metadata": "object", "metadata.name": str,
    "spec": "object",
    "spec.amiSelectorTerms": "list", "spec.amiSelectorTerms[]": "object",
    "spec.amiSelectorTerms[].alias": r"^al2023@(latest|v\d{8})$",
    "spec.instanceProfile": str,
    "spec.subnetSelectorTerms": "list", "spec.subnetSelectorTerms[]": "object",
    "spec.subnetSelectorTerms[].tags": "labels",
    "spec.securityGroupSelectorTerms": "list", "spec.securityGroupSelectorTerms[]": "object",
    "spec.securityGroupSelectorTerms[].tags": "labels",
    "spec.metadataOptions": "object",
    "spec.metadataOptions.httpEndpoint": {"enabled", "disabled"},
    "spec.metadataOptions.httpProtocolIPv6": {"enabled", "disabled"},
    "spec.metadataOptions.httpPutResponseHopLimit": range(1, 65),
    "spec.metadataOptions.httpTokens": {"required", "optional"},
    "spec.blockDeviceMappings": "list", "spec.blockDeviceMappings[]": "object",
    "spec.blockDeviceMappings[].deviceName": str,
    "spec.blockDeviceMappings[].rootVolume": bool,
    "spec.blockDeviceMappings[].ebs": "object",
    "spec.blockDeviceMappings[].ebs.volumeSize":
        r"^(?:[1-9][0-9]{0,3}|[1-4][0-9]{4}|5[0-8][0-9]{3}|59000)Gi$",
    "spec.blockDeviceMappings[].ebs.volumeType": {"standard", "io1", "io2", "gp2", "sc1", "st1",
                                                  "gp3"},
    "spec.blockDeviceMappings[].ebs.encrypted": bool,
    "spec.blockDeviceMappings[].ebs.deleteOnTermination": bool,
    "spec.tags": "labels",
}
# EC2NodeClass spec.tags keys Karpenter reserves for itself (the CRD's validation rules)
_RESERVED_TAGS = re.compile(r"^(kubernetes\.io/cluster/|karpenter\.sh/nodepool$|"
                            r"eks:eks-cluster-name$|karpenter\.sh/nodeclaim$|"
                            r"karpenter\.k8s\.aws/ec2nodeclass$)")


def _problems(value: Any, api: dict[str, Any], path: str = "") -> list[str]:
    rule = api.get(path) if path else "object"
    if rule is None:
        return [f"{path}: not a field of the API"]
    if rule == "labels":
        return [f"{path}.{k}: bad key" for k in value if not re.match(_KEY, k)] + [
            f"{path}.{k}: not a string" for k, v in value.items() if not isinstance(v, str)]
    if rule == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        found = []
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if path == "spec.limits":
                child = f"spec.limits.{key}"
            found += _problems(item, api, child)
        return found
    if rule == "list":
        if not isinstance(value, list) or not value:
            return [f"{path}: not a non-empty list"]
        return [p for item in value for p in _problems(item, api, f"{path}[]")]
    if isinstance(rule, set):
        return [] if value in rule else [f"{path}: {value!r} not one of {sorted(rule)}"]
    if isinstance(rule, range):
        return [] if isinstance(value, int) and value in rule else [f"{path}: {value!r}"]
    if isinstance(rule, type):
        return [] if isinstance(value, rule) else [f"{path}: not a {rule.__name__}"]
    return [] if isinstance(value, str) and re.match(rule, value) else [
        f"{path}: {value!r} does not match {rule}"]


@pytest.mark.parametrize("pool", ALL_POOLS, ids=lambda p: p.name)
def test_node_pool_fields_are_karpenter_v1(pool: KarpenterPoolConfig) -> None:
    assert _problems(node_pool(pool), NODE_POOL_API) == []


@pytest.mark.parametrize("release", ["latest", "v20260714"])
@pytest.mark.parametrize("pool", ALL_POOLS, ids=lambda p: p.name)
def test_ec2_node_class_fields_are_karpenter_v1(pool: KarpenterPoolConfig, release: str) -> None:
    manifest = ec2_node_class(pool, cluster_name="demo-dev-eks", instance_profile=PROFILE,
                              ami_release=release, tags=TAGS)
    assert _problems(manifest, EC2_NODE_CLASS_API) == []
    assert not [key for key in manifest["spec"]["tags"] if _RESERVED_TAGS.match(key)]


def test_the_checker_rejects_what_karpenter_would() -> None:
    """The reference above fails when a field or value is wrong (it is not a rubber stamp)."""
    manifest = node_pool(POOLS[0])
    manifest["spec"]["disruption"]["consolidateAfter"] = "5 minutes"
    manifest["spec"]["template"]["spec"]["minSize"] = 1
    manifest["spec"]["template"]["spec"]["taints"][0]["effect"] = "NO_SCHEDULE"
    assert _problems(manifest, NODE_POOL_API) == [
        "spec.template.spec.taints[].effect: 'NO_SCHEDULE' not one of "
        "['NoExecute', 'NoSchedule', 'PreferNoSchedule']",
        "spec.template.spec.minSize: not a field of the API",
        "spec.disruption.consolidateAfter: '5 minutes' does not match "
        f"{_DURATION_OR_NEVER}"]


# ------------------------------------------------------------------ what the manifests say


def test_ec2_node_class_is_hardened_and_discovers_by_tag() -> None:
    spec = ec2_node_class(POOLS[1], cluster_name="demo-dev-eks", instance_profile=PROFILE,
                          ami_release="v20260714", tags=TAGS)["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260714"}]
    assert spec["instanceProfile"] == PROFILE and "role" not in spec
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (root,) = spec["blockDeviceMappings"]
    assert root["rootVolume"] is True
    assert root["ebs"] == {"volumeSize": "500Gi", "volumeType": "gp3", "encrypted": True,
                           "deleteOnTermination": True}
    discovery = [{"tags": {"karpenter.sh/discovery": "demo-dev-eks"}}]
    assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == discovery
    assert spec["tags"] == TAGS
    for absent in ("userData", "associatePublicIPAddress", "kubelet"):
        assert absent not in spec


def test_node_pool_is_tainted_labelled_limited_and_scales_to_zero() -> None:
    pool = POOLS[0]
    spec = node_pool(pool)["spec"]
    template = spec["template"]
    assert template["metadata"]["labels"] == {GPU_POOL_LABEL: "gpu", **GPU_NODE_SELECTOR}
    assert template["spec"]["taints"] == [{"key": GPU_TOLERATION["key"], "value": "true",
                                           "effect": "NoSchedule"}]
    assert template["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws",
                                                "kind": "EC2NodeClass", "name": "gpu"}
    assert {r["key"]: r["values"] for r in template["spec"]["requirements"]} == {
        "karpenter.k8s.aws/instance-family": ["g6", "g5", "g4dn"],
        "karpenter.k8s.aws/instance-size": ["xlarge", "2xlarge"],
        "karpenter.sh/capacity-type": ["spot"],
        "kubernetes.io/arch": ["amd64"], "kubernetes.io/os": ["linux"]}
    assert {r["operator"] for r in template["spec"]["requirements"]} == {"In"}
    # 2 GPUs, and as many vCPUs as 2 GPUs come with on the allowed type with the most per GPU
    assert spec["limits"] == {"cpu": "16", "nvidia.com/gpu": "2"}
    assert spec["disruption"] == {"consolidationPolicy": "WhenEmptyOrUnderutilized",
                                  "consolidateAfter": "5m", "budgets": [{"nodes": "10%"}]}
    assert "replicas" not in spec  # no static (minimum) capacity
    # no size restriction: the requirement is left out (every size of the families)
    assert "karpenter.k8s.aws/instance-size" not in {
        r["key"] for r in node_pool(POOLS[1])["spec"]["template"]["spec"]["requirements"]}


def test_the_cpu_pool_is_untainted_labelled_limited_and_scales_to_zero() -> None:
    """Its nodes take any pod that fits (no taint), carry the pool label only (no GPU label a
    GPU workload could select), come from x86_64 CPU types and add up to max_vcpus vCPUs."""
    pool = CPU_POOLS[0]
    spec = node_pool(pool)["spec"]
    template = spec["template"]
    assert template["metadata"]["labels"] == {GPU_POOL_LABEL: "cpu"}
    assert "taints" not in template["spec"]
    assert template["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws",
                                                "kind": "EC2NodeClass", "name": "cpu"}
    assert {r["key"]: r["values"] for r in template["spec"]["requirements"]} == {
        "karpenter.k8s.aws/instance-family": ["m7i", "m6i", "c6i"],
        "karpenter.k8s.aws/instance-size": ["large", "xlarge"],
        "karpenter.sh/capacity-type": ["spot"],
        "kubernetes.io/arch": ["amd64"], "kubernetes.io/os": ["linux"]}
    assert {EC2_INSTANCES[t].arch for t in pool.instance_types} == {"x86_64"}
    assert not [t for t in pool.instance_types if gpu_count(t)]
    # the vCPU limit only: no GPUs, and these families are priced by the vCPU
    assert spec["limits"] == {"cpu": "8"}
    assert spec["disruption"] == {"consolidationPolicy": "WhenEmptyOrUnderutilized",
                                  "consolidateAfter": "5m", "budgets": [{"nodes": "10%"}]}
    assert "replicas" not in spec
    assert node_pool(CPU_POOLS[1])["spec"]["disruption"]["consolidateAfter"] == "15m"
    # its node class is the GPU pools' builder with the pool's own name and disk
    node_class = ec2_node_class(pool, cluster_name="demo-dev-eks", instance_profile=PROFILE,
                                ami_release="latest", tags=TAGS)
    gpu_class = ec2_node_class(POOLS[0], cluster_name="demo-dev-eks", instance_profile=PROFILE,
                               ami_release="latest", tags=TAGS)
    assert node_class["metadata"] == {"name": "cpu"}
    assert node_class["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "50Gi"
    gpu_class["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] = "50Gi"
    assert node_class["spec"] == gpu_class["spec"]


@pytest.mark.parametrize("pool", POOLS, ids=lambda p: p.name)
def test_the_cpu_limit_never_binds_before_the_gpu_limit(pool: GpuPoolConfig) -> None:
    """Any mix of allowed instances with at most max_gpus GPUs fits in limits.cpu."""
    for instance_type in pool.instance_types:
        nodes = pool.max_gpus // gpu_count(instance_type)
        assert nodes * EC2_INSTANCES[instance_type].vcpus <= pool.max_vcpus, instance_type
    assert pool.max_vcpus in {
        (pool.max_gpus // gpu_count(t)) * EC2_INSTANCES[t].vcpus for t in pool.instance_types}


def _node(pool: KarpenterPoolConfig) -> dict[str, Any]:
    """A Node as Karpenter makes it for the pool: its taints (none in a CPU pool), its labels,
    the labels of single-valued requirements and the well-known ones."""
    spec = node_pool(pool)["spec"]["template"]
    labels = dict(spec["metadata"]["labels"])
    labels.update({r["key"]: r["values"][0] for r in spec["spec"]["requirements"]})
    labels.update({"karpenter.sh/nodepool": pool.name,
                   "node.kubernetes.io/instance-type": pool.instance_types[0]})
    node: dict[str, Any] = {"apiVersion": "v1", "kind": "Node",
                            "metadata": {"name": "node", "labels": labels}, "spec": {}}
    if "taints" in spec["spec"]:
        node["spec"]["taints"] = spec["spec"]["taints"]
    return node


def _pod(pool: KarpenterPoolConfig) -> dict[str, Any]:
    """A pod that asks for the pool: its labels as a selector, its requirements as node
    affinity; in a GPU pool a GPU and the GPU toleration, in the CPU pool CPU and memory."""
    requirements = node_pool(pool)["spec"]["template"]["spec"]["requirements"]
    spec: dict[str, Any] = {
        "nodeSelector": dict(pool.labels),
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": requirements}]}}},
        "containers": [{"name": "train", "image": "public.ecr.aws/demo/train:1.0",
                        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}}}]}
    if isinstance(pool, GpuPoolConfig):
        spec["tolerations"] = [dict(GPU_TOLERATION)]
        spec["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": "1"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "train"}, "spec": spec}


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
@pytest.mark.parametrize("pool", ALL_POOLS, ids=lambda p: p.name)
def test_nodes_and_pods_of_a_pool_are_valid_kubernetes(pool: KarpenterPoolConfig,
                                                       version: str) -> None:
    kubernetes_validate.validate(_node(pool), f"{version}.0", strict=True)
    kubernetes_validate.validate(_pod(pool), f"{version}.0", strict=True)


def test_the_validator_catches_a_broken_node() -> None:
    node = _node(POOLS[0])
    node["spec"]["taints"][0]["operator"] = "Equal"  # a toleration's field, not a taint's
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(node, f"{SUPPORTED_KUBERNETES_VERSIONS[0]}.0", strict=True)
