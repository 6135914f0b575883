"""The platform config: one validated object per environment, from which MlPlatform is built.

Derived from the project spec (``mlscaffold.yaml``) and an environment profile (dev small and
SPOT, prod on-demand and larger), then overridden by the stack's own config
(``Pulumi.<env>.yaml``, key ``<project>:platform``). Validation happens before any resource
exists; errors name the key and the fix. No Pulumi import here: mlscaffold writes stack
configs without loading the Pulumi SDK.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..suggest import did_you_mean, nearest, unknown_key_message
from .constants import EKS_LOG_TYPES, GPU_NODE_SELECTOR, GPU_TAINT, PROFILES, TAINT_EFFECTS, Profile
from .feature_schema import FeatureDeclarations
from .instances import (
    EC2_INSTANCES,
    SAGEMAKER_INSTANCES,
    cpu_families,
    family_types,
    gpu_count,
    gpu_families,
    instance_family,
    instance_size,
)
from .model_keys import MODEL_KEY_PATTERN
from .regions import REGIONS, check_region
from .sagemaker_types import SAGEMAKER_ARM64_FAMILIES, SAGEMAKER_HOSTING_TYPES, hosting_sizes
from .schedules import SCHEDULE_FORMS, runs_per_day

# EKS add-on that watches the nodes of every platform but KServe (Container Insights); the cost
# estimator reads the name from here too
CLOUDWATCH_OBSERVABILITY_ADDON = "amazon-cloudwatch-observability"

__all__ = [
    "CLOUDWATCH_OBSERVABILITY_ADDON",
    "CONFIG_NAMESPACES",
    "DEFAULT_TUNNEL_PORT",
    "EKS_AMI_RELEASE",
    "EKS_EXTENDED_SUPPORT_ENDS",
    "EKS_LOG_TYPES",
    "EKS_STANDARD_SUPPORT_ENDS",
    "GPU_POOL_LABEL",
    "GPU_TOLERATION",
    "KARPENTER_MINIMUM_FOR_KUBERNETES",
    "KARPENTER_VERSION",
    "KUBERNETES_VERSIONS",
    "PLATFORM_KEY",
    "PROFILES",
    "SPEC_OWNED",
    "SUPPORTED_KUBERNETES_VERSIONS",
    "SYSTEM_POOL",
    "UNPINNED_KUBERNETES_VERSION",
    "AbTestConfig",
    "ClusterConfig",
    "CpuPoolConfig",
    "FeatureStoreConfig",
    "GpuPoolConfig",
    "KarpenterPoolConfig",
    "KubernetesVersion",
    "MonitoringConfig",
    "NetworkConfig",
    "PlatformConfig",
    "RegistryConfig",
    "RolloutConfig",
    "ServingConfig",
    "StackConfigError",
    "SystemNodeGroupConfig",
    "TrackingConfig",
    "TrainingConfig",
    "check_config_keys",
    "check_stack_region",
    "default_kubernetes_version",
    "environment_profile",
    "environment_profiles",
    "platform_config",
    "stack_settings",
]

# the Karpenter release mlscaffold installs (controller and CRD charts)
KARPENTER_VERSION = "1.14.1"


@dataclass(frozen=True)
class KubernetesVersion:
    """What mlscaffold knows about one EKS Kubernetes version it supports."""

    eks_release: date
    """The day EKS released it (AWS docs, "Amazon EKS Kubernetes release calendar")."""
    standard_support_ends: date
    """The day it leaves EKS standard support (same calendar; billing at the extended rate
    starts that day, UTC)."""
    extended_support_ends: date
    """The day its extended support ends (same calendar): no new clusters on it from then, and
    EKS upgrades the control planes still on it."""
    karpenter_minimum: str
    """The oldest Karpenter release that supports it (Karpenter docs, "Compatibility",
    compatibility matrix of the v1.14 docs); checked against KARPENTER_VERSION."""
    cloudwatch_observability: str
    """The ``amazon-cloudwatch-observability`` EKS add-on version pinned for it (see
    :mod:`.monitoring`): `aws eks describe-addon-versions --addon-name
    amazon-cloudwatch-observability --kubernetes-version <v>` lists it."""


# The EKS versions mlscaffold supports, one table: the config's validation, the default a new
# project pins, the security pack's supported versions and support-window rules, the cost
# estimator's extended-support rate, Karpenter's compatibility and the CloudWatch add-on's pin
# all read it. Dates: AWS docs, "Amazon EKS Kubernetes release calendar"
# (https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html), checked
# 2026-12-05 through its copy in endoflife.date (products/amazon-eks.md, scraped from that
# table, 2026-08-22); 1.32 to 1.34 also match AWS Health's end-of-standard-support notices.
# EKS had not released 1.37 in those sources (aws/containers-roadmap#2864 open). v6.4.0 of the
# CloudWatch add-on (chart amazon-cloudwatch-observability-6.4.0, 2026-07-21) is published for
# 1.32 to 1.36 and is the default build for 1.36.
KUBERNETES_VERSIONS: dict[str, KubernetesVersion] = {
    "1.32": KubernetesVersion(date(2025, 1, 23), date(2026, 3, 23), date(2027, 3, 23), "1.2",
                              "v6.4.0-eksbuild.1"),
    "1.33": KubernetesVersion(date(2025, 5, 29), date(2026, 7, 29), date(2027, 7, 29), "1.5",
                              "v6.4.0-eksbuild.1"),
    "1.34": KubernetesVersion(date(2025, 10, 6), date(2026, 12, 2), date(2027, 12, 2), "1.6",
                              "v6.4.0-eksbuild.1"),
    "1.35": KubernetesVersion(date(2026, 1, 28), date(2027, 3, 27), date(2028, 3, 27), "1.9",
                              "v6.4.0-eksbuild.1"),
    "1.36": KubernetesVersion(date(2026, 6, 2), date(2027, 8, 2), date(2028, 8, 2), "1.13",
                              "v6.4.0-eksbuild.1"),
}
# What a stack file without cluster.kubernetes_version gets: the default of the releases
# before stack files pinned it, kept fixed so that neither time nor an mlscaffold upgrade
# moves a cluster whose stack file does not pin its version (EKS upgrades one minor version at
# a time). New projects pin default_kubernetes_version() in their stack files instead; `check`
# reports a version past its standard support (eks-standard-support).
UNPINNED_KUBERNETES_VERSION = "1.34"


def default_kubernetes_version(on: date | None = None) -> str:
    """The version a project generated `on` (default: today) pins: the newest of
    KUBERNETES_VERSIONS that EKS has released and still keeps in standard support that day and
    that the pinned Karpenter supports; the newest supported one when none is (a stale table:
    `check` then reports it)."""
    day = on or date.today()
    usable = [v for v, k in KUBERNETES_VERSIONS.items()
              if _version(KARPENTER_VERSION) >= _version(k.karpenter_minimum)]
    current = [v for v in usable if KUBERNETES_VERSIONS[v].eks_release <= day
               < KUBERNETES_VERSIONS[v].standard_support_ends]
    return max(current or usable, key=_version)


# views of the table, for the consumers that need one column
SUPPORTED_KUBERNETES_VERSIONS: tuple[str, ...] = tuple(KUBERNETES_VERSIONS)
EKS_STANDARD_SUPPORT_ENDS: dict[str, date] = {
    v: k.standard_support_ends for v, k in KUBERNETES_VERSIONS.items()}
EKS_EXTENDED_SUPPORT_ENDS: dict[str, date] = {
    v: k.extended_support_ends for v, k in KUBERNETES_VERSIONS.items()}
KARPENTER_MINIMUM_FOR_KUBERNETES: dict[str, str] = {
    v: k.karpenter_minimum for v, k in KUBERNETES_VERSIONS.items()}
# the EKS-optimized AL2023 AMI release production GPU nodes are pinned to: Karpenter's
# `al2023@<release>` alias, which picks the NVIDIA variant of the cluster's Kubernetes version
# (awslabs/amazon-eks-ami release v20260714 has AL2023 x86_64 NVIDIA AMIs for 1.30 to 1.36)
EKS_AMI_RELEASE = "v20260714"
# where `mlscaffold tunnel` forwards the private API endpoint on the machine running Pulumi
DEFAULT_TUNNEL_PORT = 9443
# the Kubernetes toleration of GPU_TAINT, for every pod that must run on GPU nodes
GPU_TOLERATION = {"key": GPU_TAINT["key"], "operator": "Equal", "value": GPU_TAINT["value"],
                  "effect": TAINT_EFFECTS[GPU_TAINT["effect"]]}
GPU_POOL_LABEL = "mlscaffold.io/node-pool"
# the pool (GPU_POOL_LABEL value) of the system node group's nodes, where the controllers run
SYSTEM_POOL = "system"

# a Kubernetes namespace name (RFC 1123 label)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

_PRODUCTION_NAMES = {"prod", "production", "prd", "live"}
_STAGING_NAMES = {"staging", "stage", "stg", "preprod", "uat", "qa"}


# an IAM role ARN (any partition); a session's assumed-role ARN (arn:aws:sts::...) is not one
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


class StackConfigError(ValueError):
    """A stack config is invalid; the message names the key and the fix."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"stack config {key}: {message}")
        self.key = key


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Count = Annotated[int, Field(ge=0, le=1000)]


class NetworkConfig(_Strict):
    """The VPC: private subnets for nodes and endpoints, public ones for NAT and load balancers."""

    cidr: str = Field("10.0.0.0/16", description="VPC CIDR block (/16 to /20).")
    availability_zones: int = Field(3, ge=2, le=6, description="Zones to spread subnets over.")
    single_nat_gateway: bool = Field(False, description="One NAT for all zones (cheaper, "
                                                        "not zone-redundant).")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.ip_network(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a CIDR block, e.g. 10.0.0.0/16") from None
        if network.version != 4 or not 16 <= network.prefixlen <= 20:
            raise ValueError(f"{value!r} must be an IPv4 block from /16 to /20, e.g. 10.0.0.0/16")
        return value


class _NodeGroupConfig(_Strict):
    instance_types: list[str] = Field(min_length=1, description="EC2 instance types.")
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    min_size: Count = 0
    desired_size: Count = 0
    max_size: Annotated[int, Field(ge=1, le=1000)] = 1
    disk_size_gib: Annotated[int, Field(ge=20, le=16384)] = 100

    @field_validator("instance_types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        x86 = sorted(t for t, i in EC2_INSTANCES.items() if i.arch == "x86_64")
        unknown = [t for t in types if t not in EC2_INSTANCES]
        if unknown:
            raise ValueError(f"unknown instance type {unknown[0]!r}"
                             f"{did_you_mean(unknown[0], x86)}; use one of {', '.join(x86)}")
        arm = [t for t in types if EC2_INSTANCES[t].arch != "x86_64"]
        if arm:
            # the node groups run x86_64 EKS AMIs (AL2023_x86_64_*)
            raise ValueError(f"{arm[0]!r} is an arm64 (Graviton) type and node groups run x86_64 "
                             f"AMIs; use one of {', '.join(x86)}")
        return types

    @model_validator(mode="after")
    def _sizes(self) -> _NodeGroupConfig:
        if self.max_size < self.min_size:
            raise ValueError(f"max_size {self.max_size} is below min_size {self.min_size}; "
                             "raise max_size or lower min_size")
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"desired_size {self.desired_size} is outside "
                             f"[min_size {self.min_size}, max_size {self.max_size}]")
        return self


class SystemNodeGroupConfig(_NodeGroupConfig):
    """CPU nodes for the cluster's controllers (Karpenter, CoreDNS, KServe's controller...)."""

    @field_validator("instance_types")
    @classmethod
    def _cpu_only(cls, types: list[str]) -> list[str]:
        gpu = [t for t in types if gpu_count(t)]
        if gpu:
            raise ValueError(f"{gpu[0]!r} has GPUs; the system node group takes CPU types "
                             "such as m6i.large")
        return types


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _unique(values: list[str], what: str) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} {repeated[0]!r} is listed twice; list each once")
    return values


CapacityType = Literal["spot", "on-demand"]
_POOL_NAME = r"^[a-z][a-z0-9-]{0,20}$"
_DURATION_OR_NEVER = r"^(([0-9]+(s|m|h))+|Never)$"


class KarpenterPoolConfig(_Strict):
    """What every pool of nodes Karpenter launches has: a name (its NodePool's, its
    EC2NodeClass's and its nodes' ``mlscaffold.io/node-pool`` label), the families, sizes and
    capacity types Karpenter may choose from, a root volume and how soon idle nodes go. The
    GPU pools and the CPU pool add what bounds them, and each has ``max_vcpus``, its NodePool's
    ``limits.cpu``."""

    #: what the pool holds, in messages ("GPU", "CPU"), and example names
    _kind: ClassVar[str] = ""
    _examples: ClassVar[str] = ""

    name: str = Field(pattern=_POOL_NAME,
                      description="Pool name; nodes are labelled mlscaffold.io/node-pool=NAME.")
    instance_families: list[str] = Field(
        min_length=1, description="EC2 families Karpenter may choose from (several: more spot "
                                  "capacity to pick from).")
    instance_sizes: list[str] = Field(
        default_factory=list,
        description="Sizes allowed, e.g. [xlarge, 2xlarge]; empty: every size of the families.")
    capacity_types: list[CapacityType] = Field(
        default_factory=lambda: ["spot"], min_length=1,
        description="spot, on-demand or both (Karpenter prefers spot when both are allowed).")
    disk_size_gib: Annotated[int, Field(ge=20, le=16384)] = 100
    consolidate_after: str = Field(
        "5m", pattern=_DURATION_OR_NEVER,
        description="How long a node stays empty or underused before Karpenter removes or "
                    "replaces it.")

    @field_validator("name")
    @classmethod
    def _not_system(cls, name: str) -> str:
        if name == SYSTEM_POOL:
            raise ValueError(f"'{SYSTEM_POOL}' is the system node group's pool; name "
                             f"{cls._kind} pools otherwise, e.g. {cls._examples}")
        return name

    @field_validator("instance_sizes")
    @classmethod
    def _sizes(cls, sizes: list[str]) -> list[str]:
        return _unique(sizes, "instance size")

    @field_validator("capacity_types")
    @classmethod
    def _capacity(cls, capacity: list[str]) -> list[str]:
        return _unique(capacity, "capacity type")

    @property
    def instance_types(self) -> list[str]:
        """The EC2 types the pool may launch, as far as mlscaffold's instance table knows."""
        return family_types(self.instance_families, self.instance_sizes)

    @property
    def labels(self) -> dict[str, str]:
        """The labels of every node of the pool."""
        return {GPU_POOL_LABEL: self.name}


class GpuPoolConfig(KarpenterPoolConfig):
    """A pool of NVIDIA GPU nodes that Karpenter launches when pods ask for them and removes
    when they are idle (a NodePool): tainted so that only GPU workloads land there."""

    _kind = "GPU"
    _examples = "gpu or gpu-large"

    name: str = Field("gpu", pattern=_POOL_NAME,
                      description="Pool name; nodes are labelled mlscaffold.io/node-pool=NAME.")
    instance_families: list[str] = Field(
        min_length=1, description="EC2 GPU families Karpenter may choose from, e.g. [g6, g5] "
                                  "(several: more spot capacity to pick from).")
    max_gpus: Annotated[int, Field(ge=1, le=1024)] = Field(
        2, description="The most GPUs the pool's nodes may have together (limits.nvidia.com/gpu;"
                       " the pool starts, and scales back, to none).")

    @field_validator("instance_families")
    @classmethod
    def _gpu_families(cls, families: list[str]) -> list[str]:
        known = gpu_families()
        for family in families:
            if family not in known:
                cpu = family in {instance_family(t) for t in EC2_INSTANCES}
                problem = "has no GPU" if cpu else "is not a GPU family mlscaffold knows"
                raise ValueError(f"{family!r} {problem}; a GPU pool takes GPU families such as "
                                 f"{', '.join(known)}")
        return _unique(families, "instance family")

    @model_validator(mode="after")
    def _fits(self) -> GpuPoolConfig:
        for family in self.instance_families:
            if not family_types([family], self.instance_sizes):
                sizes = [instance_size(t) for t in family_types([family])]
                raise ValueError(f"{family} has no {' or '.join(self.instance_sizes)} size; its "
                                 f"sizes are {', '.join(sizes)}: add one to instance_sizes or "
                                 f"drop {family}")
        smallest = min(self.instance_types, key=gpu_count)
        if gpu_count(smallest) > self.max_gpus:
            raise ValueError(f"max_gpus {self.max_gpus} is below the {gpu_count(smallest)} GPUs "
                             f"of {smallest}, the smallest type the pool allows: raise max_gpus "
                             "or allow smaller types")
        return self

    @property
    def max_vcpus(self) -> int:
        """The pool's CPU limit: the most vCPUs ``max_gpus`` GPUs come with on any allowed type,
        so that the GPU limit is the one that binds."""
        return max((self.max_gpus // gpu_count(t)) * EC2_INSTANCES[t].vcpus
                   for t in self.instance_types if gpu_count(t) <= self.max_gpus)

    @property
    def labels(self) -> dict[str, str]:
        return {**super().labels, **GPU_NODE_SELECTOR}


class CpuPoolConfig(KarpenterPoolConfig):
    """A pool of x86_64 CPU nodes that Karpenter launches for pods no node can hold (a KServe
    CPU predictor's extra replicas, CPU jobs) and removes when they are idle (a NodePool): not
    tainted, so a CPU pod the fixed system node group cannot hold gets a node there instead of
    staying Pending. It has no minimum: the scheduler fills the nodes that run first."""

    _kind = "CPU"
    _examples = "cpu or cpu-large"

    name: str = Field("cpu", pattern=_POOL_NAME,
                      description="Pool name; nodes are labelled mlscaffold.io/node-pool=NAME.")
    instance_families: list[str] = Field(
        min_length=1, description="x86_64 CPU families Karpenter may choose from, e.g. "
                                  "[m7i, m6i, c6i] (several: more spot capacity to pick from).")
    instance_sizes: list[str] = Field(
        default_factory=list,
        description="Sizes allowed, e.g. [large, xlarge]: every family must have each of them "
                    "in mlscaffold's instance table, so the cost rules and quotas see exactly "
                    "what Karpenter may launch.")
    max_vcpus: Annotated[int, Field(ge=1, le=4096)] = Field(
        8, description="The most vCPUs the pool's nodes may have together (limits.cpu; the "
                       "pool starts, and scales back, to none).")
    # CPU images are smaller than GPU ones (CUDA libraries weigh gigabytes)
    disk_size_gib: Annotated[int, Field(ge=20, le=16384)] = 50

    @field_validator("instance_families")
    @classmethod
    def _cpu_families(cls, families: list[str]) -> list[str]:
        known = cpu_families()
        for family in families:
            if family in known:
                continue
            if family in gpu_families():
                problem = "has GPUs (GPU pools take it)"
            elif family in cpu_families(arch=None):
                # the node class's AMI alias and the pool's kubernetes.io/arch are x86_64's
                problem = "is an arm64 (Graviton) family and the pool's nodes run x86_64 AMIs"
            else:
                problem = "is not a CPU family mlscaffold knows"
            raise ValueError(f"{family!r} {problem}; a CPU pool takes x86_64 CPU families such "
                             f"as {', '.join(known)}")
        return _unique(families, "instance family")

    @field_validator("instance_sizes")
    @classmethod
    def _sizes_listed(cls, sizes: list[str]) -> list[str]:
        if not sizes:
            raise ValueError("list the sizes the pool may launch, e.g. [large, xlarge]: without "
                             "them Karpenter may launch any size of the families, up to ones "
                             "mlscaffold's cost rules and quota checks do not know")
        return sizes

    @model_validator(mode="after")
    def _fits(self) -> CpuPoolConfig:
        for family in self.instance_families:
            sizes = [instance_size(t) for t in family_types([family])]
            missing = [size for size in self.instance_sizes if size not in sizes]
            if missing:
                raise ValueError(
                    f"{family}.{missing[0]} is not in mlscaffold's instance table ({family}: "
                    f"{', '.join(sizes)}), yet the pool would let Karpenter launch it (every "
                    f"listed size of every family): drop {missing[0]} or {family}")
        smallest = min(self.instance_types, key=lambda t: EC2_INSTANCES[t].vcpus)
        if EC2_INSTANCES[smallest].vcpus > self.max_vcpus:
            raise ValueError(f"max_vcpus {self.max_vcpus} is below the "
                             f"{EC2_INSTANCES[smallest].vcpus} vCPUs of {smallest}, the smallest "
                             "type the pool allows: raise max_vcpus or allow smaller types")
        return self


class ClusterConfig(_Strict):
    """The EKS cluster for training and (with KServe) serving: built only when something runs
    on it (``enabled``; on by default with KServe serving)."""

    enabled: bool = Field(False, description="Build the EKS cluster (KServe serving needs it; "
                                             "turn it on to train on its GPU pools).")
    kubernetes_version: str = Field(
        UNPINNED_KUBERNETES_VERSION,
        description="EKS Kubernetes version of the control plane; new projects pin the newest "
                    "in standard support on the day they are made. Raise it one minor version "
                    "at a time.")
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach the public API endpoint; empty: private only.")
    system_node_group: SystemNodeGroupConfig
    gpu_pools: list[GpuPoolConfig] = Field(min_length=1)
    cpu_pool: CpuPoolConfig | None = Field(
        None, description="Karpenter NodePool of untainted CPU nodes for the pods the system "
                          "nodes cannot hold (a KServe CPU predictor's extra replicas, CPU "
                          "jobs); null: none, and such pods stay Pending.")
    node_image_version: str = Field(
        "latest", pattern=r"^(latest|v\d{8})$",
        description="EKS AL2023 AMI release of the nodes Karpenter launches (GPU and CPU pools): "
                    "latest, or a release tag such as v20260714 (pinned: new AMIs only when you "
                    "change it).")
    admin_role_arns: list[str] = Field(
        default_factory=list,
        description="IAM roles given cluster-admin (EKS access policy "
                    "AmazonEKSClusterAdminPolicy); empty: the identity of the first deploy.")
    viewer_role_arns: list[str] = Field(
        default_factory=list,
        description="IAM roles that may read everything, Secrets included "
                    "(AmazonEKSAdminViewPolicy), e.g. a CI role previewing infra/cluster.")
    support_type: Literal["STANDARD", "EXTENDED"] = Field(
        "STANDARD",
        description="EKS upgrade policy: STANDARD upgrades the control plane when its version "
                    "leaves standard support; EXTENDED keeps it, billed at 6x.")
    tunnel_port: Annotated[int, Field(ge=1024, le=65535)] = Field(
        DEFAULT_TUNNEL_PORT,
        description="Local port of the SSM tunnel to the private API endpoint: the in-cluster "
                    "program's kubeconfig points there, so keep it fixed once deployed.")

    @model_validator(mode="before")
    @classmethod
    def _replaced_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "gpu_node_groups" in data:
            raise ValueError("gpu_node_groups was replaced by gpu_pools (Karpenter NodePools): "
                             "rename the key and give each pool instance_families, "
                             "capacity_types and max_gpus instead of instance_types, "
                             "capacity_type and min/desired/max_size (docs/deploy.md, GPU pools)")
        if isinstance(data, dict) and "autoscaler" in data:
            raise ValueError("autoscaler was removed: Karpenter scales the GPU pools; delete "
                             "the key")
        return data

    @field_validator("kubernetes_version")
    @classmethod
    def _supported(cls, version: str) -> str:
        if version not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(f"Kubernetes {version!r} is not supported by EKS here; use one of "
                             f"{', '.join(SUPPORTED_KUBERNETES_VERSIONS)}")
        minimum = KARPENTER_MINIMUM_FOR_KUBERNETES.get(version)
        if minimum is None or _version(KARPENTER_VERSION) < _version(minimum):
            raise ValueError(f"Kubernetes {version} needs Karpenter {minimum or '(unknown)'} or "
                             f"later and mlscaffold installs {KARPENTER_VERSION}; use one of "
                             f"{', '.join(SUPPORTED_KUBERNETES_VERSIONS)}")
        return version

    @field_validator("public_access_cidrs")
    @classmethod
    def _restricted(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                network = ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR block, e.g. 203.0.113.0/24") from None
            if network.prefixlen == 0:
                raise ValueError(f"{cidr!r} opens the API to the internet; list your office or "
                                 "VPN ranges, or leave it empty for a private endpoint")
        return cidrs

    @field_validator("admin_role_arns", "viewer_role_arns")
    @classmethod
    def _role_arns(cls, arns: list[str]) -> list[str]:
        for arn in arns:
            if not _ROLE_ARN.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role ARN; give the role's ARN, e.g. "
                                 "arn:aws:iam::123456789012:role/ml-admins (not a session's "
                                 "arn:aws:sts::...:assumed-role/... ARN)")
        duplicates = sorted({arn for arn in arns if arns.count(arn) > 1})
        if duplicates:
            raise ValueError(f"{duplicates[0]!r} is listed twice; list each role once")
        return arns

    @model_validator(mode="after")
    def _one_entry_per_role(self) -> ClusterConfig:
        both = sorted(set(self.admin_role_arns) & set(self.viewer_role_arns))
        if both:
            raise ValueError(f"{both[0]!r} is in both admin_role_arns and viewer_role_arns; an "
                             "IAM principal has one access entry: keep it in one of them")
        return self

    @field_validator("gpu_pools")
    @classmethod
    def _unique_names(cls, pools: list[GpuPoolConfig]) -> list[GpuPoolConfig]:
        names = [pool.name for pool in pools]
        if len(set(names)) != len(names):
            raise ValueError(f"GPU pool names must be unique, got {names}")
        return pools

    @model_validator(mode="after")
    def _cpu_pool_name(self) -> ClusterConfig:
        # a pool's NodePool and EC2NodeClass are cluster-wide objects named after it
        if self.cpu_pool and self.cpu_pool.name in {pool.name for pool in self.gpu_pools}:
            raise ValueError(f"cpu_pool.name {self.cpu_pool.name!r} is also a GPU pool's name, "
                             "and each pool's NodePool and EC2NodeClass take its name: rename "
                             "one of them")
        return self

    @property
    def pools(self) -> list[KarpenterPoolConfig]:
        """Every pool Karpenter runs: the GPU pools, then the CPU pool if there is one."""
        return [*self.gpu_pools, *([self.cpu_pool] if self.cpu_pool else [])]

    @model_validator(mode="after")
    def _system_nodes(self) -> ClusterConfig:
        if self.system_node_group.desired_size < 1:
            raise ValueError("system_node_group.desired_size is 0, but Karpenter's controller, "
                             "CoreDNS and the other add-ons run on the system nodes: keep at "
                             "least 1 (2 for two Karpenter replicas)")
        return self


class RegistryConfig(_Strict):
    """Model registry: package group, artifact bucket, serving image repository."""

    artifact_retention_days: Annotated[int, Field(ge=30, le=3650)] = 365
    # ASCII digits: a Unicode `\d{12}` costs pydantic's regex engine ~5 ms on every import
    prod_account_id: str | None = Field(
        None, pattern=r"^[0-9]{12}$",
        description="Another AWS account allowed to read models and images (cross-account).")


class FeatureStoreConfig(_Strict):
    """SageMaker Feature Store: one feature group from the dataset schema."""

    enabled: bool = False
    online_store: bool = True


def _model_key(value: str, where_listed: str) -> str:
    """`value` if it is a model key; else the one-line error, ending with where keys are
    listed for the setting at hand (`where_listed` follows the key's shape as written)."""
    if not MODEL_KEY_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a model key; keys are models/<sha256 of the "
                         f"model's files>/model.tar.gz{where_listed}")
    return value


class CanaryDecision(_Strict):
    """KServe Serverless: what became of the canary of one deployed version (`make
    canary-promote` / `make canary-rollback` set it). It applies while the stack deploys that
    version (model and image); a deploy of any other version opens a new canary."""

    outcome: Literal["promote", "rollback"] = Field(
        description="promote: the version takes all the traffic; rollback: none of it, the "
                    "previous version serves all.")
    model_key: str = Field(description="The model of the version decided on, "
                                       "models/<sha256>/model.tar.gz.")
    image_tag: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
                           description="The serving image tag of the version decided on.")

    @field_validator("model_key")
    @classmethod
    def _content_addressed(cls, value: str) -> str:
        return _model_key(value, " (the stack output model_key)")


class RolloutConfig(_Strict):
    """How a new model version takes over the traffic of a SageMaker endpoint: a blue/green
    update (the new fleet starts beside the old one) whose traffic shifts all at once, in a
    canary step, or in linear steps, baking between steps while the rollback alarms watch
    (AWS docs, "Deployment guardrails"). KServe in Standard (RawDeployment) mode rolls its pods
    instead: only ``auto`` and ``all-at-once`` apply there (``_delivery`` says why); in
    Serverless mode ``canary`` gives a new version ``canary_percent`` of the requests until
    ``canary_decision`` promotes it or rolls it back (the waits do not apply)."""

    strategy: Literal["auto", "all-at-once", "canary", "linear"] = Field(
        "auto", description="auto: canary of one instance with two or more instances, else all "
                            "at once; all-at-once; canary (canary_percent first); linear "
                            "(linear_step_percent per step).")
    canary_percent: Annotated[int, Field(ge=1, le=50)] = Field(
        10, description="canary: the share of the new fleet's capacity that takes traffic "
                        "first (at most 50%); KServe Serverless: the share of the requests a "
                        "new version gets until promoted or rolled back.")
    linear_step_percent: Annotated[int, Field(ge=10, le=50)] = Field(
        25, description="linear: the share of the new fleet's capacity each step turns on "
                        "(10-50%).")
    wait_seconds: Annotated[int, Field(ge=0, le=3600)] = Field(
        600, description="Baking time after each traffic step, while the rollback alarms "
                         "watch (0-3600).")
    termination_wait_seconds: Annotated[int, Field(ge=0, le=3600)] = Field(
        300, description="How long the old fleet stays after all traffic moved (0-3600).")
    max_seconds: Annotated[int, Field(ge=600, le=28800)] = Field(
        3600, description="The most an update may take (600-28800); more than all its waits.")
    # KServe Serverless (kserve_mode: serverless) with strategy canary
    canary_decision: CanaryDecision | None = Field(
        None, description="KServe Serverless: the canary's outcome for one deployed version "
                          "(`make canary-promote|canary-rollback` set it); other versions "
                          "open a canary of canary_percent.")

    @property
    def steps(self) -> int:
        """Traffic steps of an update (each followed by a wait)."""
        if self.strategy == "linear":
            return -(-100 // self.linear_step_percent)
        return 2 if self.strategy == "canary" else 1

    @model_validator(mode="after")
    def _fits_in_time(self) -> RolloutConfig:
        # API reference, BlueGreenUpdatePolicy: the timeout must be larger than the waits
        waits = self.steps * self.wait_seconds + self.termination_wait_seconds
        if self.strategy != "auto" and self.max_seconds <= waits:
            raise ValueError(f"max_seconds {self.max_seconds} does not exceed the update's "
                             f"waits ({self.steps} x wait_seconds {self.wait_seconds} + "
                             f"termination_wait_seconds {self.termination_wait_seconds} = "
                             f"{waits}); raise max_seconds or shorten the waits")
        return self


class AbTestConfig(_Strict):
    """An A/B test on a SageMaker endpoint: a second production variant, ``challenger``,
    serving another model version beside the primary one, with a share of the traffic; each
    variant's metrics are on the dashboard and its rollback alarms watch it."""

    challenger_model_key: str = Field(
        description="The challenger's model version, models/<sha256>/model.tar.gz (`mlscaffold "
                    "status` lists the keys of the registered versions).")
    challenger_weight: Annotated[int, Field(ge=1, le=99)] = Field(
        10, description="Percent of the requests the challenger gets; the primary gets the "
                        "rest.")
    challenger_instance_count: Annotated[int, Field(ge=1, le=100)] = Field(
        1, description="Instances of the challenger variant (it does not autoscale).")

    @field_validator("challenger_model_key")
    @classmethod
    def _content_addressed(cls, value: str) -> str:
        return _model_key(value, ", as `mlscaffold status` lists them")


class ServingConfig(_Strict):
    """Model serving: a SageMaker endpoint or a KServe InferenceService."""

    platform: Literal["sagemaker", "kserve", "none"] = "sagemaker"
    # Docker's tag grammar (docs, `docker image tag`): ASCII letters, digits, `_`, `.` and `-`,
    # not starting with `.` or `-`, at most 128 characters. ASCII classes, not `\w`: pydantic's
    # regex engine compiles a Unicode `\w{0,127}` for ~0.1 s on every import
    image_tag: str = Field("0.1.0", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
                           description="Tag of the serving image in the ECR repository.")
    model_key: str | None = Field(
        None, description="Key of the model version to serve in the artifact bucket, "
                          "models/<sha256 of its files>/model.tar.gz; `make deploy` uploads "
                          "the current model and sets it. A deployment without it is refused.")
    # SageMaker
    instance_type: str = "ml.m5.large"
    initial_instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    min_instances: Annotated[int, Field(ge=1, le=100)] = 1
    max_instances: Annotated[int, Field(ge=1, le=100)] = 2
    target_invocations_per_instance: Annotated[int, Field(ge=1)] = 200
    data_capture_percent: Annotated[int, Field(ge=0, le=100)] = 20
    # KServe
    gpus: Annotated[int, Field(ge=0, le=8)] = 1
    cpu: str = Field("1", pattern=r"^\d+(\.\d+)?m?$")
    memory: str = Field("2Gi", pattern=r"^\d+(Mi|Gi)$")
    min_replicas: Annotated[int, Field(ge=0, le=100)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 3
    kserve_mode: Literal["standard", "serverless"] = Field(
        "standard", description="KServe's deployment mode: standard (Deployments and an HPA, "
                                "no Knative) or serverless (Knative Serving with Kourier: "
                                "revisions, a canary share of the traffic, scale to zero).")
    client_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose pods may call the model (the predictor's NetworkPolicy "
                    "admits nothing else); add monitoring to let Prometheus scrape it.")
    # progressive delivery
    rollout: RolloutConfig = Field(
        RolloutConfig(), description="How a new model version takes the traffic (SageMaker "
                                     "blue/green traffic shifting).")
    ab_test: AbTestConfig | None = Field(
        None, description="SageMaker: a challenger variant beside the primary; null: none.")

    @field_validator("client_namespaces")
    @classmethod
    def _namespace_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _DNS_LABEL.match(name) or len(name) > 63:
                raise ValueError(f"{name!r} is not a namespace name (lower-case letters, digits "
                                 "and '-', at most 63 characters), e.g. ml-clients")
        if len(set(names)) != len(names):
            raise ValueError(f"namespace names must be unique, got {names}")
        return names

    @field_validator("model_key")
    @classmethod
    def _content_addressed(cls, value: str | None) -> str | None:
        return None if value is None else _model_key(
            value, ", as `mlscaffold model upload` prints them")

    @field_validator("instance_type")
    @classmethod
    def _sagemaker_type(cls, value: str) -> str:
        """A type SageMaker hosts real-time endpoints on (sagemaker_types.py); the instance
        table may not know its specs or price: `cost` says so."""
        if value in SAGEMAKER_INSTANCES or value in SAGEMAKER_HOSTING_TYPES:
            return value
        family = value.split(".")[1] if value.count(".") == 2 else ""
        if family in SAGEMAKER_ARM64_FAMILIES:
            raise ValueError(f"{value!r} is an arm64 (Graviton) type and the serving image is "
                             "built for x86_64 (the CI runners'); use an x86_64 type, such as "
                             "ml.m5.xlarge or ml.c6i.xlarge")
        sizes = hosting_sizes(family)
        known = (f"; SageMaker hosts {family} in {', '.join(sizes)}" if sizes else
                 "; SageMaker hosts real-time endpoints on ml.<family>.<size> of " + ", ".join(
                     sorted({name.split(".")[1] for name in SAGEMAKER_HOSTING_TYPES})))
        raise ValueError(f"{value!r} is not a SageMaker hosting instance type"
                         f"{did_you_mean(value, SAGEMAKER_HOSTING_TYPES)}{known}")

    @model_validator(mode="after")
    def _ranges(self) -> ServingConfig:
        if self.max_instances < self.min_instances:
            raise ValueError(f"max_instances {self.max_instances} is below min_instances "
                             f"{self.min_instances}")
        if not self.min_instances <= self.initial_instance_count <= self.max_instances:
            raise ValueError(f"initial_instance_count {self.initial_instance_count} is outside "
                             f"[{self.min_instances}, {self.max_instances}]")
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas {self.max_replicas} is below min_replicas "
                             f"{self.min_replicas}")
        return self

    @property
    def kserve_canary(self) -> bool:
        """A KServe Serverless canary: a new version takes rollout.canary_percent of the
        traffic until promoted or rolled back (rollout.canary_decision)."""
        return (self.platform, self.kserve_mode, self.rollout.strategy) == (
            "kserve", "serverless", "canary")

    def canary_traffic_percent(self, model_key: str, image_tag: str) -> int | None:
        """The InferenceService's ``canaryTrafficPercent`` for the version (`model_key`,
        `image_tag`) the stack deploys; None without a KServe canary (:attr:`kserve_canary`).

        KServe routes that share to the newest revision and the rest to the last revision that
        took all the traffic (KServe docs, "Canary Rollout Strategy"; kserve v0.15.2
        ksvc_reconciler.go). A new version opens a canary of ``rollout.canary_percent``; the
        ``rollout.canary_decision`` for this very version promotes it (100: it becomes the
        version later canaries fall back to) or rolls it back (0: the previous version takes
        all the traffic again). A decision about another version does not apply.
        """
        if not self.kserve_canary:
            return None
        decision = self.rollout.canary_decision
        if decision is not None and (decision.model_key, decision.image_tag) == (
                model_key, image_tag):
            return 100 if decision.outcome == "promote" else 0
        return self.rollout.canary_percent

    @model_validator(mode="after")
    def _delivery(self) -> ServingConfig:
        """What each platform can do with rollout and ab_test; one line when it cannot."""
        strategy = self.rollout.strategy
        gradual = strategy in ("canary", "linear")
        serverless = self.platform == "kserve" and self.kserve_mode == "serverless"
        if self.kserve_mode == "serverless" and self.platform != "kserve":
            raise ValueError(f"kserve_mode serverless applies to KServe serving, and "
                             f"serving.platform is {self.platform}: remove kserve_mode, or change "
                             "serving to kserve in mlscaffold.yaml")
        if serverless and self.client_namespaces:
            # Knative's activator and Kourier's gateway forward every caller's request, so the
            # predictor's NetworkPolicy sees them, never the caller's namespace
            raise ValueError("client_namespaces: in KServe's Serverless mode every request "
                             "reaches the predictor through Knative's gateway, so a "
                             "NetworkPolicy cannot limit callers by namespace: remove "
                             "client_namespaces, or set serving.kserve_mode: standard")
        if serverless and strategy == "linear":
            # KServe's one traffic field is canaryTrafficPercent: the newest revision against
            # the last one rolled out (kserve v0.15.2 ksvc_reconciler.go); no steps
            raise ValueError("rollout.strategy linear: KServe's Serverless mode sends one share "
                             "of the traffic to a new version (canaryTrafficPercent), which you "
                             "then promote or roll back, never linear steps: use canary, auto "
                             "or all-at-once, or serve with sagemaker")
        if serverless and self.ab_test is not None:
            raise ValueError("ab_test: KServe's Serverless mode splits traffic only between the "
                             "newest version and the last one promoted (canaryTrafficPercent), "
                             "never between two versions named by key: use rollout.strategy "
                             "canary, or serve with sagemaker")
        if self.platform == "kserve" and gradual and not serverless:
            # No released KServe sends a share of the traffic to a new version in Standard
            # (RawDeployment) mode: v0.20.0's spec.canary (kserve/kserve#5672) starts it as a
            # Deployment and Service of its own, `<isvc>-<name>-predictor`, sized by
            # trafficPercent, and the model's Service still selects the old pods only; the
            # weighted split came after v0.20.0, on Gateway API routes (kserve/kserve#5912).
            # canaryTrafficPercent works in Knative mode only (KServe docs, "Canary Rollout
            # Strategy")
            fix = ("use auto or all-at-once, set serving.kserve_mode: serverless, or serve with "
                   "sagemaker" if strategy == "canary" else
                   "use auto or all-at-once, or serve with sagemaker")
            raise ValueError(f"rollout.strategy {strategy}: no released KServe sends part of "
                             "the traffic to a new version in the Standard (RawDeployment) "
                             "mode mlscaffold runs (v0.20.0's spec.canary runs it at its own "
                             "address with no share of the traffic; canaryTrafficPercent needs "
                             f"Knative): {fix}")
        if self.platform == "kserve" and self.ab_test is not None:
            raise ValueError("ab_test: no released KServe weights requests between two model "
                             "versions in the Standard (RawDeployment) mode mlscaffold runs "
                             "(v0.20.0's spec.canary gives the second version its own address "
                             "and no share of the traffic): remove ab_test, or serve with "
                             "sagemaker")
        if self.platform == "sagemaker" and gradual and self.min_instances < 2:
            raise ValueError(f"rollout.strategy {strategy} shifts traffic to part of the new "
                             f"fleet first, which needs at least 2 instances, and min_instances "
                             f"is {self.min_instances}: raise min_instances (and "
                             "initial_instance_count) to 2, or use all-at-once")
        if self.ab_test is not None:
            if self.model_key is not None and self.ab_test.challenger_model_key == \
                    self.model_key:
                raise ValueError("ab_test.challenger_model_key is the model the primary "
                                 "variant serves (model_key); give the other version's key")
            if gradual and self.ab_test.challenger_instance_count < 2:
                raise ValueError(f"rollout.strategy {strategy} shifts each variant's traffic "
                                 "to part of its new fleet first, and the challenger has "
                                 f"{self.ab_test.challenger_instance_count} instance: raise "
                                 "ab_test.challenger_instance_count to 2, or use all-at-once")
        return self


class TrainingConfig(_Strict):
    """Training away from the laptop (`mlscaffold train --on sagemaker|eks`): the SageMaker
    training job's instance and spot settings, and the Kubernetes Job's resources on the first
    GPU pool."""

    instance_type: str = Field(
        "ml.m5.large", description="SageMaker training instance type (ml.t2 types cannot "
                                   "train).")
    spot: bool = Field(True, description="Managed spot training, with checkpoints in S3.")
    spot_wait_minutes: Annotated[int, Field(ge=1, le=2880)] = Field(
        60, description="How long a spot job may wait for capacity beyond its maximum runtime "
                        "(MaxWaitTimeInSeconds is the runtime plus this).")
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 30
    gpus: Annotated[int, Field(ge=0, le=8)] = Field(
        1, description="GPUs of the Kubernetes Job's pod (0: it runs on CPU nodes).")
    cpu: str = Field("2", pattern=r"^\d+(\.\d+)?m?$")
    memory: str = Field("8Gi", pattern=r"^\d+(Mi|Gi)$")
    data: Literal["upload", "feature-store"] = Field(
        "upload", description="Where a remote run's data comes from unless `train --data` "
                              "says: upload (the project's datasets/train.csv and "
                              "validation.csv) or feature-store (the feature group's offline "
                              "store, through Athena; needs feature_store.enabled).")
    query_scan_limit_gb: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        100, description="Most data one feature-store training query may scan, in GB: the "
                         "Athena workgroup cancels a query that scans more (Athena bills per "
                         "TB scanned).")

    @field_validator("instance_type")
    @classmethod
    def _training_type(cls, value: str) -> str:
        if value not in SAGEMAKER_INSTANCES or value.startswith("ml.t2."):
            known = sorted(t for t in SAGEMAKER_INSTANCES if not t.startswith("ml.t2."))
            raise ValueError(f"{value!r} is not a SageMaker training instance type mlscaffold "
                             f"knows; use one of {', '.join(known)}")
        return value


class MonitoringConfig(_Strict):
    """Alarms, dashboard, alert topic and drift monitoring."""

    latency_p99_ms: Annotated[int, Field(ge=1)] = 500
    error_rate_5xx: Annotated[int, Field(ge=1)] = 5
    min_invocations_per_hour: Annotated[int, Field(ge=0)] = Field(
        1, description="Alarm when the SageMaker endpoint gets fewer invocations in an hour; 0: "
                       "no such alarm (the dev and staging profiles: their endpoints are idle "
                       "most hours).")
    gpu_utilization_percent: Annotated[int, Field(ge=1, le=100)] = 90
    log_retention_days: Literal[7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731] = 30
    drift_schedule: str = Field("cron(0 * ? * * *)",
                                description=f"Model Monitor schedule: {SCHEDULE_FORMS}.")
    alert_emails: list[str] = Field(default_factory=list)

    @field_validator("drift_schedule")
    @classmethod
    def _sagemaker_schedule(cls, value: str) -> str:
        runs_per_day(value)  # SageMaker refuses any other form when the schedule is created
        return value


class TrackingConfig(_Strict):
    """Experiment tracking: a SageMaker managed MLflow tracking server for the team (off: each
    project logs to its own store, mlruns/)."""

    mlflow_server: bool = Field(
        False, description="Build a SageMaker MLflow tracking server, its artifacts under "
                           "mlflow/ in the artifact bucket; the stack output "
                           "mlflow_tracking_server_arn goes into mlscaffold.yaml as "
                           "tracking_uri.")
    server_size: Literal["Small", "Medium", "Large"] = Field(
        "Small", description="Tracking server size (AWS advises Small for teams of up to 25 "
                             "users, Medium up to 50, Large up to 100); it runs and bills "
                             "around the clock.")
    # the client is MLflow 3 (mlflow-skinny): the server runs a 3.x release too (AWS docs,
    # "Integrate MLflow with your environment": match the client to the server's version)
    mlflow_version: str = Field(
        "3.0", pattern=r"^3\.[0-9]+(\.[0-9]+)?$",
        description="MLflow version of the tracking server, a 3.x release SageMaker offers.")
    maintenance_window: str = Field(
        "Sun:03:00", pattern=r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Start of the weekly maintenance window (UTC), e.g. Sun:03:00.")


class PlatformConfig(_Strict):
    """Everything MlPlatform builds for one environment."""

    project: str
    environment: str
    profile: Profile
    region: str
    owner: str
    cost_center: str
    task: str
    label: str
    network: NetworkConfig = NetworkConfig()
    cluster: ClusterConfig
    registry: RegistryConfig = RegistryConfig()
    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    training: TrainingConfig = TrainingConfig()
    tracking: TrackingConfig = TrackingConfig()
    protect: bool = Field(
        False, description="Pulumi protect (and EKS deletion protection) on the cluster, the "
                           "KMS keys and the data buckets: `pulumi destroy` refuses to delete "
                           "them until this is turned off and applied.")
    features: FeatureDeclarations | None = None
    """The spec's ``features`` section (declared types, identifier, event time); set in
    mlscaffold.yaml only, never per stack."""

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        return check_region(region)  # the spec's own rule: one region table

    @model_validator(mode="after")
    def _cluster_for_kserve(self) -> PlatformConfig:
        if self.serving.platform == "kserve" and not self.cluster.enabled:
            raise ValueError("serving.platform kserve runs on the EKS cluster: set "
                             "cluster.enabled to true, or serve with sagemaker")
        return self

    @model_validator(mode="after")
    def _feature_store_for_training_data(self) -> PlatformConfig:
        if self.training.data == "feature-store" and not self.feature_store.enabled:
            raise ValueError("training.data feature-store reads the feature group, which this "
                             "stack does not have: set feature_store: sagemaker in "
                             "mlscaffold.yaml, or training.data to upload")
        return self

    @property
    def tags(self) -> dict[str, str]:
        """The tags every taggable resource carries."""
        return {"project": self.project, "env": self.environment, "owner": self.owner,
                "cost-center": self.cost_center, "managed-by": "mlscaffold"}

    @property
    def production(self) -> bool:
        return self.profile == "prod"

    @property
    def prefix(self) -> str:
        """Prefix of resource names: project and environment."""
        return f"{self.project}-{self.environment}"


def environment_profiles(environments: Sequence[str]) -> dict[str, Profile]:
    """The sizing profile of each of a spec's environments: the one rule of which is production.

    Production (the ``prod`` profile) is every environment named like it (``prod``,
    ``production``, ``prd``, ``live``); when none is and there are several, the last one, the
    end of the deployment chain. Of the others, those named like staging (``staging``, ``qa``,
    ``uat`` ...) get the ``staging`` profile, the rest ``dev``; a single environment not named
    like production is ``dev``. The stacks size by it, and CI deploys the production
    environments after approval (:func:`mlscaffold.ci.deploy_stages`), so the two agree.
    """
    names = list(environments)
    production = {name for name in names if name in _PRODUCTION_NAMES}
    if not production and len(names) > 1:
        production = {names[-1]}
    return {name: "prod" if name in production else
            "staging" if name in _STAGING_NAMES else "dev" for name in names}


def environment_profile(environment: str, environments: Sequence[str]) -> Profile:
    """The sizing profile of `environment`, one of the spec's `environments`
    (:func:`environment_profiles`)."""
    profiles = environment_profiles(environments)
    if environment not in profiles:
        raise StackConfigError(
            "environment", f"{environment!r} is not an environment of mlscaffold.yaml "
            f"({', '.join(environments)}){did_you_mean(environment, environments)}; select one "
            "of them with `pulumi stack select` or add it to `environments`")
    return profiles[environment]


_PROFILES: dict[str, dict[str, Any]] = {
    "dev": {
        "network": {"availability_zones": 2, "single_nat_gateway": True},
        "cluster": {
            "system_node_group": {"instance_types": ["m6i.large"], "min_size": 1,
                                  "desired_size": 2, "max_size": 3},
            # small single-GPU types on spot, from three families: more spot pools to pick
            "gpu_pools": [{"name": "gpu", "instance_families": ["g6", "g5", "g4dn"],
                           "instance_sizes": ["xlarge", "2xlarge"], "capacity_types": ["spot"],
                           "max_gpus": 2}],
            # CPU pods the system nodes cannot hold: small types of three families on spot, up
            # to 4 nodes. No burstable t3: a predictor the HPA scales on CPU would run down its
            # CPU credits, or be billed for surplus ones (T3 launches in unlimited mode unless
            # told otherwise: AWS EC2 API reference, RunInstances CreditSpecification)
            "cpu_pool": {"name": "cpu", "instance_families": ["m7i", "m6i", "c6i"],
                         "instance_sizes": ["large", "xlarge"], "capacity_types": ["spot"],
                         "max_vcpus": 8},
            "node_image_version": "latest",
        },
        # KServe in dev serves on CPU nodes: a GPU predictor would keep a GPU node running;
        # SageMaker in dev on the smallest hosting type (real-time, unlike serverless inference,
        # keeps the VPC, network isolation, data capture and drift of the other environments)
        "serving": {"instance_type": "ml.t2.medium", "initial_instance_count": 1,
                    "min_instances": 1, "max_instances": 2, "min_replicas": 1,
                    "max_replicas": 2, "gpus": 0},
        # an idle endpoint is normal outside prod: no invocations-low alarm
        "monitoring": {"log_retention_days": 30, "drift_schedule": "cron(0 6 ? * * *)",
                       "min_invocations_per_hour": 0},
        "registry": {"artifact_retention_days": 90},
        # dev stacks come and go: `pulumi destroy` works without a preparing update
        "protect": False,
    },
    "staging": {
        "network": {"availability_zones": 2, "single_nat_gateway": True},
        "cluster": {
            "system_node_group": {"instance_types": ["m6i.large"], "min_size": 2,
                                  "desired_size": 2, "max_size": 4},
            "gpu_pools": [{"name": "gpu", "instance_families": ["g6", "g5", "g4dn"],
                           "instance_sizes": ["xlarge", "2xlarge", "4xlarge"],
                           "capacity_types": ["spot"], "max_gpus": 4}],
            "cpu_pool": {"name": "cpu", "instance_families": ["m7i", "m6i", "c6i"],
                         "instance_sizes": ["large", "xlarge", "2xlarge"],
                         "capacity_types": ["spot"], "max_vcpus": 16},
            "node_image_version": "latest",
        },
        "serving": {"instance_type": "ml.m5.xlarge", "initial_instance_count": 1,
                    "min_instances": 1, "max_instances": 3, "min_replicas": 1,
                    "max_replicas": 3},
        "monitoring": {"log_retention_days": 90, "min_invocations_per_hour": 0},
        "registry": {"artifact_retention_days": 180},
        "protect": True,
    },
    "prod": {
        "network": {"availability_zones": 3, "single_nat_gateway": False},
        "cluster": {
            "system_node_group": {"instance_types": ["m6i.xlarge"], "min_size": 2,
                                  "desired_size": 3, "max_size": 6},
            # on-demand: a spot reclaim would take serving replicas away. Pools start empty, so
            # a new account's G quota of 0 does not fail the first deploy
            "gpu_pools": [{"name": "gpu", "instance_families": ["g6", "g5"],
                           "instance_sizes": ["xlarge", "2xlarge", "4xlarge", "12xlarge"],
                           "capacity_types": ["on-demand"], "max_gpus": 8}],
            # on-demand for the same reason; larger nodes, up to 16 of them. Serving replicas
            # come and go with the HPA: a node stays 15 minutes idle before it is removed, so a
            # scale-down followed by a scale-up does not move serving pods twice
            "cpu_pool": {"name": "cpu", "instance_families": ["m7i", "m6i", "c6i"],
                         "instance_sizes": ["xlarge", "2xlarge"],
                         "capacity_types": ["on-demand"], "max_vcpus": 64,
                         "consolidate_after": "15m"},
            # Karpenter's advice: pin the AMI in production, try new releases elsewhere first
            "node_image_version": EKS_AMI_RELEASE,
        },
        "serving": {"instance_type": "ml.m5.xlarge", "initial_instance_count": 2,
                    "min_instances": 2, "max_instances": 6, "min_replicas": 2,
                    "max_replicas": 6},
        "monitoring": {"log_retention_days": 365},
        "registry": {"artifact_retention_days": 730},
        "protect": True,
    },
}


def stack_settings(spec: Any, environment: str, *,
                   kubernetes_version: str | None = None) -> dict[str, Any]:
    """The settings of an environment derived from the spec: what ``Pulumi.<env>.yaml`` holds.

    `spec` is the project's spec (``mlscaffold.ProjectSpec`` or its dict form). The stack file
    pins the cluster's Kubernetes version: `kubernetes_version`, else
    :func:`default_kubernetes_version` of today, so that a rendered project keeps the version
    it was made with.
    """
    settings = _derived_settings(spec, environment)
    settings["cluster"]["kubernetes_version"] = (kubernetes_version
                                                 or default_kubernetes_version())
    return settings


def _derived_settings(spec: Any, environment: str) -> dict[str, Any]:
    """The settings of an environment that follow from the spec alone (no date): the base a
    stack file's own settings override."""
    data = spec if isinstance(spec, dict) else spec.model_dump(mode="json")
    settings = copy.deepcopy(_PROFILES[environment_profile(environment, data["environments"])])
    settings["serving"]["platform"] = data["serving"]
    settings["cluster"]["enabled"] = data["serving"] == "kserve"
    # no more zones than the network can use in the region (prod asks 3; us-west-1 has 2 where
    # EKS runs): the same count the stack config's check reads
    region = data.get("region")
    usable = REGIONS[region].usable_zones(cluster=settings["cluster"]["enabled"]) \
        if region in REGIONS else None
    if usable is not None and settings["network"]["availability_zones"] > usable:
        settings["network"]["availability_zones"] = usable
    settings["feature_store"] = {"enabled": data["feature_store"] == "sagemaker"}
    return settings


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _error_key(location: tuple[Any, ...]) -> str:
    key = ""
    for part in location:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key or "platform"


# the namespaces a stack config may use besides the project's own: the providers the programs
# configure and Pulumi's own
CONFIG_NAMESPACES = ("aws", "kubernetes", "pulumi")
# the key of the project's namespace that the generated programs read
PLATFORM_KEY = "platform"


def check_config_keys(project: str, keys: Iterable[str]) -> None:
    """Refuse a stack config key in an unknown namespace, or a misspelt ``<project>:platform``
    (``platfrom``): Pulumi would keep it, and the settings under it would be silently ignored.
    A bare key (no namespace) is the project's, as Pulumi reads it."""
    for key in keys:
        namespace, _, name = key.rpartition(":")
        if namespace and namespace != project and namespace not in CONFIG_NAMESPACES:
            raise StackConfigError(
                key, f"namespace {namespace!r} is neither the project's ({project!r}) nor one "
                     f"of {', '.join(CONFIG_NAMESPACES)}, so nothing reads it; "
                     f"did you mean {project}:{name}?")
        # a key as close to PLATFORM_KEY as a typo (suggest.CLOSE_ENOUGH) is refused; others
        # may be read by the team's own additions to the program
        if namespace in ("", project) and name != PLATFORM_KEY and nearest(
                name, [PLATFORM_KEY]) is not None:
            raise StackConfigError(
                key, f"nothing reads {name!r}: the stack's settings are under "
                     f"{project}:{PLATFORM_KEY}; did you mean {project}:{PLATFORM_KEY}?")


# PlatformConfig's fields that mlscaffold.yaml (or the stack's own name) sets, never a stack's
# settings: a stack that said otherwise would name, tag or size its resources as another's.
# Each with the spec key it comes from (None: not a key of the spec).
SPEC_OWNED: dict[str, str | None] = {
    "project": "name", "environment": None, "profile": None, "region": "region",
    "owner": "owner", "cost_center": "cost_center", "task": "task", "label": "label",
    "features": "features",
}


def _spec_owned_message(key: str, environment: str) -> str:
    """Why `key` of SPEC_OWNED cannot be a stack setting, and the fix."""
    if key == "features":
        return ("the feature schema is the same in every stack; move it to the features section "
                "of mlscaffold.yaml")
    if key == "environment":
        return (f"not a stack setting: the environment is the stack's name ({environment}), and "
                "another would give this stack that environment's resource names; remove the "
                "key")
    if key == "profile":
        return ("not a stack setting: the sizing profile follows the environment's name in "
                "mlscaffold.yaml's environments; remove the key and set the sizes themselves "
                "(e.g. serving.min_instances)")
    source = SPEC_OWNED[key]
    then = " and run mlscaffold update" if key == "region" else ""
    return (f"not a stack setting: it comes from {source!r} of mlscaffold.yaml, the same in "
            f"every stack; remove the key, or change {source} there{then}")


def check_stack_region(spec_region: str, config: Mapping[str, Any]) -> None:
    """Refuse a stack config whose ``aws:region`` is not the spec's `spec_region`: the spec has
    one region for every environment, and prices, Model Monitor's image and the zones are
    that region's."""
    region = config.get("aws:region")
    if region is None or region == spec_region:
        return
    unknown = ("" if region in REGIONS else
               f", nor an AWS region mlscaffold knows{did_you_mean(region, REGIONS)}")
    raise StackConfigError(
        "aws:region", f"{region!r} is not the region of mlscaffold.yaml ({spec_region!r})"
                      f"{unknown}: set aws:region back to {spec_region}, or change region in "
                      "mlscaffold.yaml and run mlscaffold update")


def _serving_as_the_spec_says(serving: Any, spec_serving: str) -> None:
    """Refuse a stack serving on another platform than the spec's ``serving``, for which the
    Makefile, CI and image are made; ``none`` (no serving: a first deploy) is always allowed."""
    platform = serving.get("platform") if isinstance(serving, dict) else None
    if platform in (spec_serving, "none") or not isinstance(platform, str):
        return  # not a string: the model's validation names the key
    raise StackConfigError(
        "platform.serving.platform",
        f"{platform!r} contradicts serving {spec_serving!r} of mlscaffold.yaml, for which the "
        f"Makefile, CI and image are made: set it to {spec_serving} (or none), or change "
        "serving in mlscaffold.yaml and run mlscaffold update")


def platform_config(spec: Any, environment: str, overrides: dict[str, Any] | None = None, *,
                    config_keys: Iterable[str] | None = None) -> PlatformConfig:
    """Validate the config of `environment`: spec-derived settings, then the stack's overrides.
    `config_keys` are all keys of the stack's config, checked for unknown namespaces; when it is
    the config itself (a mapping, as the programs pass it), its ``aws:region`` is checked too.

    Raises :class:`StackConfigError` naming the key and the fix.
    """
    data = spec if isinstance(spec, dict) else spec.model_dump(mode="json")
    if config_keys is not None:
        check_config_keys(data["name"], config_keys)
    if isinstance(config_keys, Mapping):
        check_stack_region(data["region"], config_keys)
    profile = environment_profile(environment, data["environments"])
    try:
        check_region(data["region"])
    except ValueError as error:
        raise StackConfigError("region", f"{error} (the region of mlscaffold.yaml)") from None
    if overrides is not None and not isinstance(overrides, dict):
        raise StackConfigError("platform", "must be a mapping of settings")
    for key in SPEC_OWNED:
        if key in (overrides or {}):
            raise StackConfigError(f"platform.{key}", _spec_owned_message(key, environment))
    settings = _deep_merge(_derived_settings(data, environment), overrides or {})
    _serving_as_the_spec_says(settings.get("serving"), data["serving"])
    try:
        config = PlatformConfig.model_validate({
            "project": data["name"], "environment": environment,
            "profile": profile, "region": data["region"],
            "owner": data["owner"], "cost_center": data["cost_center"], "task": data["task"],
            "label": data["label"], **settings, "features": data.get("features"),
        })
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        key = _error_key(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            location = tuple(first["loc"])
            message = unknown_key_message(PlatformConfig, location,
                                          hidden=SPEC_OWNED if len(location) == 1 else ())
        return_key = key if key.startswith("platform") else f"platform.{key}"
        raise StackConfigError(return_key, message) from None
    _gpus_fit_a_node(config)
    _zones_in_region(config)
    return config


def _zones_in_region(config: PlatformConfig) -> None:
    """Refuse more zones than the network can use: with a cluster, the zones EKS does not
    support are skipped (stacks/network.py), and the network would fail at deploy."""
    region = REGIONS[config.region]
    zones = region.usable_zones(cluster=config.cluster.enabled)
    if config.network.availability_zones > zones:
        where = (f" where EKS can run the cluster ({', '.join(region.eks_unsupported_zone_ids)} "
                 f"{'is' if len(region.eks_unsupported_zone_ids) == 1 else 'are'} not one)"
                 if zones < region.availability_zones else "")
        raise StackConfigError(
            "platform.network.availability_zones",
            f"{config.network.availability_zones} zones, and {config.region} (the region of "
            f"mlscaffold.yaml) has {zones}{where}: set it to {zones} or fewer")


def _gpus_fit_a_node(config: PlatformConfig) -> None:
    """Refuse a KServe predictor or EKS training pod asking for more GPUs than a node of the
    first GPU pool (where both run) has, or than the pool's ``max_gpus``: it would stay Pending.
    A pod's GPUs come from the one node it runs on (Kubernetes docs, "Schedule GPUs")."""
    pool = config.cluster.gpu_pools[0]
    requests = [("serving.gpus", config.serving.gpus)] if config.serving.platform == "kserve" \
        else []
    if config.cluster.enabled:
        requests.append(("training.gpus", config.training.gpus))
    largest = max(pool.instance_types, key=gpu_count)
    most = gpu_count(largest)
    for key, gpus in requests:
        if gpus > most:
            larger = [t for t in family_types(pool.instance_families) if gpu_count(t) >= gpus]
            fix = f"lower {key} to {most}"
            if larger:
                enough = min(larger, key=lambda t: (gpu_count(t), EC2_INSTANCES[t].vcpus))
                fix += (f", or add {instance_size(enough)} ({enough}: {gpu_count(enough)} GPUs) "
                        "to the pool's instance_sizes")
            raise StackConfigError(
                f"platform.{key}", f"{gpus} GPUs per pod, and the largest node of GPU pool "
                                   f"'{pool.name}' ({largest}) has {most}: the pod would never "
                                   f"be scheduled; {fix}")
        if gpus > pool.max_gpus:
            raise StackConfigError(
                f"platform.{key}", f"{gpus} GPUs per pod exceed max_gpus {pool.max_gpus} of GPU "
                                   f"pool '{pool.name}' (its NodePool's limit), so no node would "
                                   f"be launched for it; raise that pool's max_gpus or lower "
                                   f"{key}")
