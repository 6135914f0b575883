"""The platform's architecture read from its config alone, without running its Pulumi programs.

``new`` draws the README's diagram from here: running ``infra/`` under Pulumi's mocks gives
the same picture but imports pulumi and pulumi_aws, most of the time `new` took. The outline
holds what the diagram shows (:data:`~mlscaffold.diagram.MAIN_RESOURCE_TYPES`): the components
that ``MlPlatform`` (``infra/``) and ``ClusterWorkloads`` (``infra/cluster/``) build for a
:class:`~mlscaffold.stacks.config.PlatformConfig`, their main resources, and for each of these
the main resources it depends on, directly or through hidden ones, as
:func:`~mlscaffold.diagram.to_mermaid` lifts them. URNs are those of the mocked graph, so node
ids match it.

It is a second description of what the components build: tests/test_outline.py draws both for
every option that changes the platform and requires the same text. A component that gains,
loses or rewires a main resource changes both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .graph import GraphResource, ResourceGraph

if TYPE_CHECKING:
    from .spec import ProjectSpec
    from .stacks.config import PlatformConfig

__all__ = ["platform_outline", "spec_diagram", "stack_outline"]

_STACK_TYPE = "pulumi:pulumi:Stack"

# the main resource types drawn (keys of diagram.MAIN_RESOURCE_TYPES)
_VPC = "aws:ec2/vpc:Vpc"
_NAT = "aws:ec2/natGateway:NatGateway"
_EKS = "aws:eks/cluster:Cluster"
_INSTANCE = "aws:ec2/instance:Instance"
_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
_NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
_QUEUE = "aws:sqs/queue:Queue"
_RELEASE = "kubernetes:helm.sh/v3:Release"
_KEY = "aws:kms/key:Key"
_BUCKET = "aws:s3/bucket:Bucket"
_REPOSITORY = "aws:ecr/repository:Repository"
_MODEL_GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
_MLFLOW = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
_FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
_MODEL = "aws:sagemaker/model:Model"
_ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
_SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
_INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
_TOPIC = "aws:sns/topic:Topic"
_DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
_TRAIL = "aws:cloudtrail/trail:Trail"


@dataclass
class _Program:
    """The outline of one Pulumi program (project) of a stack."""

    project: str
    stack: str
    resources: list[GraphResource] = field(default_factory=list)

    def _urn(self, resource_type: str, name: str, parent: GraphResource | None) -> str:
        # as Pulumi's mock monitor makes them (pulumi.runtime.mocks.MockMonitor.make_urn): the
        # parent's own type before `$`, the stack's for top-level resources
        parent_type = parent.type if parent else _STACK_TYPE
        return f"urn:pulumi:{self.stack}::{self.project}::{parent_type}${resource_type}::{name}"

    def component(self, kind: str, name: str,
                  parent: GraphResource | None = None) -> GraphResource:
        resource_type = f"mlscaffold:stacks:{kind}"
        component = GraphResource(
            urn=self._urn(resource_type, name, parent), type=resource_type, name=name,
            custom=False, parent=parent.urn if parent else None, dependencies=(), inputs={})
        self.resources.append(component)
        return component

    def add(self, resource_type: str, name: str, parent: GraphResource,
            *depends_on: GraphResource | None) -> GraphResource:
        """A main resource of `parent` and the main resources it depends on (None: absent)."""
        resource = GraphResource(
            urn=self._urn(resource_type, name, parent), type=resource_type, name=name,
            custom=True, parent=parent.urn,
            dependencies=tuple(sorted(d.urn for d in depends_on if d is not None)), inputs={})
        self.resources.append(resource)
        return resource


def platform_outline(config: PlatformConfig) -> ResourceGraph:
    """The components and main resources of a stack, from its validated ``PlatformConfig``:
    the base program's and, with a cluster, the in-cluster program's (as ``preview`` merges
    them), each main resource depending on the main resources it reaches."""
    prefix = config.prefix
    base = _Program(config.project, config.environment)
    serving = config.serving.platform
    sagemaker = serving == "sagemaker"
    kserve = serving == "kserve"
    with_cluster = config.cluster.enabled

    platform = base.component("MlPlatform", prefix)
    key = base.add(_KEY, f"{prefix}-data-key", platform)

    network = base.component("Network", f"{prefix}-network", platform)
    vpc = base.add(_VPC, f"{prefix}-network-vpc", network)
    if with_cluster:  # NAT gateways only for the cluster's nodes
        nat_count = 1 if config.network.single_nat_gateway else config.network.availability_zones
        for index in range(nat_count):
            base.add(_NAT, f"{prefix}-network-nat-{index}", network, vpc)

    eks = None
    if with_cluster:
        cluster = base.component("GpuCluster", f"{prefix}-cluster", platform)
        relay = base.component("ApiRelay", f"{prefix}-cluster-api-relay", cluster)
        base.add(_INSTANCE, f"{prefix}-cluster-api-relay-instance", relay, vpc)
        cluster_key = base.add(_KEY, f"{prefix}-cluster-key", cluster)
        eks = base.add(_EKS, f"{prefix}-cluster-eks", cluster, cluster_key, vpc)
        base.add(_NODE_GROUP, f"{prefix}-cluster-system", cluster, eks, vpc)
        karpenter = base.component("Karpenter", f"{prefix}-cluster-karpenter", cluster)
        base.add(_QUEUE, f"{prefix}-cluster-karpenter-interruptions", karpenter)

    registry = base.component("ModelRegistry", f"{prefix}-registry", platform)
    base.add(_MODEL_GROUP, f"{prefix}-registry-model-group", registry)
    artifacts = base.add(_BUCKET, f"{prefix}-registry-artifacts", registry)
    image = base.add(_REPOSITORY, f"{prefix}-registry-serving-image", registry, key)

    if config.tracking.mlflow_server:  # its artifacts in the bucket, through its role's policy
        tracking = base.component("TrackingServer", f"{prefix}-tracking", platform)
        base.add(_MLFLOW, f"{prefix}-tracking-server", tracking, artifacts, key)

    offline_store = None
    if config.feature_store.enabled:
        features = base.component("FeatureStore", f"{prefix}-features", platform)
        offline_store = base.add(_BUCKET, f"{prefix}-features-offline-store", features)
        base.add(_FEATURE_GROUP, f"{prefix}-features-group", features, offline_store, key)

    capture = base.add(_BUCKET, f"{prefix}-capture", platform) if sagemaker else None
    endpoint = None
    if serving != "none":
        component = base.component("Serving", f"{prefix}-serving", platform)
        if sagemaker:
            model = base.add(_MODEL, f"{prefix}-serving-model", component,
                             key, capture, image, artifacts, vpc)
            endpoint = base.add(_ENDPOINT, f"{prefix}-serving-endpoint", component,
                                key, capture, model)

    monitoring = base.component("Monitoring", f"{prefix}-monitoring", platform)
    alerts = base.add(_TOPIC, f"{prefix}-monitoring-alerts", monitoring, key)
    # KServe's GPUs are watched in the cluster; any other cluster's by CloudWatch, on the
    # dashboard
    base.add(_DASHBOARD, f"{prefix}-monitoring-dashboard", monitoring,
             alerts, endpoint, eks if not kserve else None)
    if sagemaker and config.serving.data_capture_percent > 0:  # drift on the captured data
        base.add(_SCHEDULE, f"{prefix}-monitoring-drift-schedule", monitoring,
                 key, capture, artifacts, vpc, endpoint)

    audit = base.component("AuditTrail", f"{prefix}-audit", platform)
    trail_key = base.add(_KEY, f"{prefix}-audit-trail-key", audit)
    logs = base.add(_BUCKET, f"{prefix}-audit-logs", audit)
    base.add(_TRAIL, f"{prefix}-audit-trail", audit,
             trail_key, logs, artifacts, capture, offline_store)

    resources = base.resources
    if eks is not None:
        resources = [*resources, *_workloads_outline(config, eks)]
    return ResourceGraph(project=config.project, stack=config.environment,
                         resources=sorted(resources, key=lambda r: r.urn))


def _workloads_outline(config: PlatformConfig, eks: GraphResource) -> list[GraphResource]:
    """What ``ClusterWorkloads`` (``infra/cluster/``, project ``<name>-cluster``) installs."""
    prefix = config.prefix
    inner = _Program(f"{config.project}-cluster", config.environment)
    workloads = inner.component("ClusterWorkloads", prefix)
    inner.add(_RELEASE, f"{prefix}-nvidia-device-plugin", workloads, eks)
    crds = inner.add(_RELEASE, f"{prefix}-karpenter-crd", workloads, eks)
    karpenter = inner.add(_RELEASE, f"{prefix}-karpenter", workloads, crds)
    for pool in config.cluster.pools:
        inner.add(_NODE_POOL, f"{prefix}-{pool.name}-node-pool", workloads, karpenter)
    if config.serving.platform == "kserve":
        cert_manager = inner.add(_RELEASE, f"{prefix}-cert-manager", workloads, eks)
        kserve_crds = inner.add(_RELEASE, f"{prefix}-kserve-crd", workloads, eks)
        before = [cert_manager, kserve_crds]
        if config.serving.kserve_mode == "serverless":  # Knative Serving, through its operator
            # (KServe waits for its KnativeServing resource, whose namespace is the cluster's)
            before += [inner.add(_RELEASE, f"{prefix}-knative-operator", workloads, eks), eks]
        kserve = inner.add(_RELEASE, f"{prefix}-kserve", workloads, *before)
        inner.add(_INFERENCE_SERVICE, f"{prefix}-inference-service", workloads, kserve, eks)
        prometheus = inner.add(_RELEASE, f"{prefix}-kube-prometheus-stack", workloads, eks)
        inner.add(_RELEASE, f"{prefix}-dcgm-exporter", workloads, prometheus)
    return inner.resources


def stack_outline(project: Path, spec: ProjectSpec, stack: str) -> ResourceGraph:
    """The outline of a project's `stack`, from its spec and ``infra/Pulumi.<stack>.yaml``."""
    from .infra import stack_platform_config

    return platform_outline(stack_platform_config(project, spec, stack))


def spec_diagram(spec: ProjectSpec) -> str:
    """The Mermaid diagram of the first stack of `spec`, as the README embeds it: the platform
    of the stack's settings as mlscaffold derives them (no Pulumi, no project files needed)."""
    from .diagram import to_mermaid
    from .stacks.config import platform_config

    return to_mermaid(platform_outline(platform_config(spec, spec.environments[0])))
