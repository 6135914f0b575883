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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .feature_schema import FeatureDeclarations
from .instances import EC2_INSTANCES, SAGEMAKER_INSTANCES, gpu_count
from .model_keys import MODEL_KEY_PATTERN

# EKS add-on that watches the nodes of every platform but KServe (Container Insights); the cost
# estimator reads the name from here too
CLOUDWATCH_OBSERVABILITY_ADDON = "amazon-cloudwatch-observability"

__all__ = [
    "CLOUDWATCH_OBSERVABILITY_ADDON",
    "DEFAULT_KUBERNETES_VERSION",
    "DEFAULT_TUNNEL_PORT",
    "GPU_NODE_SELECTOR",
    "GPU_POOL_LABEL",
    "GPU_TAINT",
    "GPU_TOLERATION",
    "SUPPORTED_KUBERNETES_VERSIONS",
    "TAINT_EFFECTS",
    "ClusterConfig",
    "FeatureStoreConfig",
    "GpuNodeGroupConfig",
    "MonitoringConfig",
    "NetworkConfig",
    "PlatformConfig",
    "RegistryConfig",
    "ServingConfig",
    "StackConfigError",
    "SystemNodeGroupConfig",
    "environment_profile",
    "platform_config",
    "stack_settings",
]

# EKS versions in standard or extended support in 2026-11; the default is in standard support
SUPPORTED_KUBERNETES_VERSIONS: tuple[str, ...] = ("1.32", "1.33", "1.34", "1.35", "1.36")
DEFAULT_KUBERNETES_VERSION = "1.34"
# where `mlscaffold tunnel` forwards the private API endpoint on the machine running Pulumi
DEFAULT_TUNNEL_PORT = 9443
# the taint every GPU node carries (EKS API form), so only pods that tolerate it land there
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
# EKS API taint effects -> Kubernetes effects
TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute",
                 "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
# the Kubernetes toleration of GPU_TAINT, for every pod that must run on GPU nodes
GPU_TOLERATION = {"key": GPU_TAINT["key"], "operator": "Equal", "value": GPU_TAINT["value"],
                  "effect": TAINT_EFFECTS[GPU_TAINT["effect"]]}
GPU_POOL_LABEL = "mlscaffold.io/node-pool"
# the label every GPU node carries, whatever its pool
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}

Profile = Literal["dev", "staging", "prod"]
_PRODUCTION_NAMES = {"prod", "production", "prd", "live"}
_STAGING_NAMES = {"staging", "stage", "stg", "preprod", "uat", "qa"}


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
            raise ValueError(f"unknown instance type {unknown[0]!r}; use one of {', '.join(x86)}")
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
    """CPU nodes for cluster add-ons (autoscaler, device plugin, KServe controller)."""

    @field_validator("instance_types")
    @classmethod
    def _cpu_only(cls, types: list[str]) -> list[str]:
        gpu = [t for t in types if gpu_count(t)]
        if gpu:
            raise ValueError(f"{gpu[0]!r} has GPUs; the system node group takes CPU types "
                             "such as m6i.large")
        return types


class GpuNodeGroupConfig(_NodeGroupConfig):
    """A node group of NVIDIA GPU instances, tainted so that only GPU workloads land there."""

    name: str = Field("gpu", pattern=r"^[a-z][a-z0-9-]{0,20}$",
                      description="Pool name; nodes are labelled mlscaffold.io/node-pool=NAME.")

    @field_validator("name")
    @classmethod
    def _not_system(cls, name: str) -> str:
        if name == "system":
            raise ValueError("'system' is the CPU node group's pool; name GPU pools otherwise, "
                             "e.g. gpu or gpu-large")
        return name

    @field_validator("instance_types")
    @classmethod
    def _gpu_only(cls, types: list[str]) -> list[str]:
        cpu = [t for t in types if not gpu_count(t)]
        if cpu:
            # the smallest size of each GPU family, as examples
            examples = {t.split(".")[0]: t for t in reversed(EC2_INSTANCES) if gpu_count(t)}
            raise ValueError(f"{cpu[0]!r} has no GPU; a GPU node group takes GPU types such as "
                             f"{', '.join(reversed(examples.values()))}")
        return types

    @property
    def labels(self) -> dict[str, str]:
        return {GPU_POOL_LABEL: self.name, **GPU_NODE_SELECTOR}


class ClusterConfig(_Strict):
    """The EKS cluster for training and (with KServe) serving: built only when something runs
    on it (``enabled``; on by default with KServe serving)."""

    enabled: bool = Field(False, description="Build the EKS cluster (KServe serving needs it; "
                                             "turn it on to train on its GPU pools).")
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach the public API endpoint; empty: private only.")
    system_node_group: SystemNodeGroupConfig
    gpu_node_groups: list[GpuNodeGroupConfig] = Field(min_length=1)
    autoscaler: Literal["cluster-autoscaler"] = "cluster-autoscaler"
    tunnel_port: Annotated[int, Field(ge=1024, le=65535)] = Field(
        DEFAULT_TUNNEL_PORT,
        description="Local port of the SSM tunnel to the private API endpoint: the in-cluster "
                    "program's kubeconfig points there, so keep it fixed once deployed.")

    @field_validator("kubernetes_version")
    @classmethod
    def _supported(cls, version: str) -> str:
        if version not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(f"Kubernetes {version!r} is not supported by EKS here; use one of "
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

    @field_validator("gpu_node_groups")
    @classmethod
    def _unique_names(cls, groups: list[GpuNodeGroupConfig]) -> list[GpuNodeGroupConfig]:
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise ValueError(f"GPU node group names must be unique, got {names}")
        return groups


class RegistryConfig(_Strict):
    """Model registry: package group, artifact bucket, serving image repository."""

    artifact_retention_days: Annotated[int, Field(ge=30, le=3650)] = 365
    prod_account_id: str | None = Field(
        None, pattern=r"^\d{12}$",
        description="Another AWS account allowed to read models and images (cross-account).")


class FeatureStoreConfig(_Strict):
    """SageMaker Feature Store: one feature group from the dataset schema."""

    enabled: bool = False
    online_store: bool = True


class ServingConfig(_Strict):
    """Model serving: a SageMaker endpoint or a KServe InferenceService."""

    platform: Literal["sagemaker", "kserve", "none"] = "sagemaker"
    image_tag: str = Field("0.1.0", pattern=r"^[\w][\w.-]{0,127}$",
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

    @field_validator("model_key")
    @classmethod
    def _content_addressed(cls, value: str | None) -> str | None:
        if value is not None and not MODEL_KEY_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a model key; keys are models/<sha256 of the "
                             "model's files>/model.tar.gz, as `mlscaffold model upload` prints "
                             "them")
        return value

    @field_validator("instance_type")
    @classmethod
    def _sagemaker_type(cls, value: str) -> str:
        if value not in SAGEMAKER_INSTANCES:
            raise ValueError(f"unknown SageMaker instance type {value!r}; use one of "
                             f"{', '.join(sorted(SAGEMAKER_INSTANCES))}")
        return value

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


class MonitoringConfig(_Strict):
    """Alarms, dashboard, alert topic and drift monitoring."""

    latency_p99_ms: Annotated[int, Field(ge=1)] = 500
    error_rate_5xx: Annotated[int, Field(ge=1)] = 5
    min_invocations_per_hour: Annotated[int, Field(ge=0)] = 1
    gpu_utilization_percent: Annotated[int, Field(ge=1, le=100)] = 90
    log_retention_days: Literal[7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731] = 30
    drift_schedule: str = Field("cron(0 * ? * * *)",
                                description="Model Monitor schedule (SageMaker cron).")
    alert_emails: list[str] = Field(default_factory=list)


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
    features: FeatureDeclarations | None = None
    """The spec's ``features`` section (declared types, identifier, event time); set in
    mlscaffold.yaml only, never per stack."""

    @model_validator(mode="after")
    def _cluster_for_kserve(self) -> PlatformConfig:
        if self.serving.platform == "kserve" and not self.cluster.enabled:
            raise ValueError("serving.platform kserve runs on the EKS cluster: set "
                             "cluster.enabled to true, or serve with sagemaker")
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


def environment_profile(environment: str) -> Profile:
    """Which sizing profile an environment name gets."""
    if environment in _PRODUCTION_NAMES:
        return "prod"
    if environment in _STAGING_NAMES:
        return "staging"
    return "dev"


_PROFILES: dict[str, dict[str, Any]] = {
    "dev": {
        "network": {"availability_zones": 2, "single_nat_gateway": True},
        "cluster": {
            "system_node_group": {"instance_types": ["m6i.large"], "min_size": 1,
                                  "desired_size": 2, "max_size": 3},
            "gpu_node_groups": [{"name": "gpu", "instance_types": ["g5.xlarge", "g6.xlarge"],
                                 "capacity_type": "SPOT", "min_size": 0, "desired_size": 0,
                                 "max_size": 2}],
        },
        # KServe in dev serves on CPU nodes: a GPU predictor would keep a GPU node running;
        # SageMaker in dev on the smallest hosting type (real-time, unlike serverless inference,
        # keeps the VPC, network isolation, data capture and drift of the other environments)
        "serving": {"instance_type": "ml.t2.medium", "initial_instance_count": 1,
                    "min_instances": 1, "max_instances": 2, "min_replicas": 1,
                    "max_replicas": 2, "gpus": 0},
        "monitoring": {"log_retention_days": 30, "drift_schedule": "cron(0 6 ? * * *)"},
        "registry": {"artifact_retention_days": 90},
    },
    "staging": {
        "network": {"availability_zones": 2, "single_nat_gateway": True},
        "cluster": {
            "system_node_group": {"instance_types": ["m6i.large"], "min_size": 2,
                                  "desired_size": 2, "max_size": 4},
            "gpu_node_groups": [{"name": "gpu", "instance_types": ["g5.2xlarge", "g6.2xlarge"],
                                 "capacity_type": "SPOT", "min_size": 0, "desired_size": 0,
                                 "max_size": 4}],
        },
        "serving": {"instance_type": "ml.m5.xlarge", "initial_instance_count": 1,
                    "min_instances": 1, "max_instances": 3, "min_replicas": 1,
                    "max_replicas": 3},
        "monitoring": {"log_retention_days": 90},
        "registry": {"artifact_retention_days": 180},
    },
    "prod": {
        "network": {"availability_zones": 3, "single_nat_gateway": False},
        "cluster": {
            "system_node_group": {"instance_types": ["m6i.xlarge"], "min_size": 2,
                                  "desired_size": 3, "max_size": 6},
            # a new account has no G quota: a minimum above 0 would fail the first deploy
            "gpu_node_groups": [{"name": "gpu", "instance_types": ["g5.2xlarge"],
                                 "capacity_type": "ON_DEMAND", "min_size": 0, "desired_size": 0,
                                 "max_size": 8}],
        },
        "serving": {"instance_type": "ml.m5.xlarge", "initial_instance_count": 2,
                    "min_instances": 2, "max_instances": 6, "min_replicas": 2,
                    "max_replicas": 6},
        "monitoring": {"log_retention_days": 365},
        "registry": {"artifact_retention_days": 730},
    },
}


def stack_settings(spec: Any, environment: str) -> dict[str, Any]:
    """The settings of an environment derived from the spec: what ``Pulumi.<env>.yaml`` holds.

    `spec` is the project's spec (``mlscaffold.ProjectSpec`` or its dict form).
    """
    data = spec if isinstance(spec, dict) else spec.model_dump(mode="json")
    settings = copy.deepcopy(_PROFILES[environment_profile(environment)])
    settings["serving"]["platform"] = data["serving"]
    settings["cluster"]["enabled"] = data["serving"] == "kserve"
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


def platform_config(spec: Any, environment: str,
                    overrides: dict[str, Any] | None = None) -> PlatformConfig:
    """Validate the config of `environment`: spec-derived settings, then the stack's overrides.

    Raises :class:`StackConfigError` naming the key and the fix.
    """
    data = spec if isinstance(spec, dict) else spec.model_dump(mode="json")
    if environment not in data["environments"]:
        raise StackConfigError(
            "environment", f"{environment!r} is not an environment of mlscaffold.yaml "
            f"({', '.join(data['environments'])}); select one of them with `pulumi stack select`"
            " or add it to `environments`")
    if overrides is not None and not isinstance(overrides, dict):
        raise StackConfigError("platform", "must be a mapping of settings")
    if "features" in (overrides or {}):
        raise StackConfigError("platform.features", "the feature schema is the same in every "
                               "stack; move it to the features section of mlscaffold.yaml")
    settings = _deep_merge(stack_settings(data, environment), overrides or {})
    try:
        return PlatformConfig.model_validate({
            "project": data["name"], "environment": environment,
            "profile": environment_profile(environment), "region": data["region"],
            "owner": data["owner"], "cost_center": data["cost_center"], "task": data["task"],
            "label": data["label"], **settings, "features": data.get("features"),
        })
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        key = _error_key(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling against the docs"
        return_key = key if key.startswith("platform") else f"platform.{key}"
        raise StackConfigError(return_key, message) from None
