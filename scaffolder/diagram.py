"""Architecture diagrams of a resource graph: components as boxes, main resources inside.

Only the resources a reader cares about are drawn (clusters, node groups, buckets,
endpoints...); plumbing such as route table associations is left out. Edges are the
dependencies between drawn resources, lifted through hidden ones.
"""

from __future__ import annotations

import hashlib
import re

from .graph import GraphResource, ResourceGraph

__all__ = ["MAIN_RESOURCE_TYPES", "key_inputs", "short_type", "to_dot", "to_mermaid"]

# resource type -> label shown in the diagram
MAIN_RESOURCE_TYPES: dict[str, str] = {
    "aws:ec2/vpc:Vpc": "VPC",
    "aws:ec2/natGateway:NatGateway": "NAT gateway",
    "aws:eks/cluster:Cluster": "EKS cluster",
    "aws:ec2/instance:Instance": "API relay (Session Manager)",
    "aws:eks/nodeGroup:NodeGroup": "node group",
    "kubernetes:karpenter.sh/v1:NodePool": "Karpenter NodePool",
    "aws:sqs/queue:Queue": "SQS queue",
    "kubernetes:helm.sh/v3:Release": "Helm release",
    "aws:kms/key:Key": "KMS key",
    "aws:s3/bucket:Bucket": "S3 bucket",
    "aws:ecr/repository:Repository": "ECR repository",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": "model package group",
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": "MLflow tracking server",
    "aws:sagemaker/featureGroup:FeatureGroup": "feature group",
    "aws:sagemaker/model:Model": "SageMaker model",
    "aws:sagemaker/endpoint:Endpoint": "SageMaker endpoint",
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule": "Model Monitor schedule",
    "kubernetes:serving.kserve.io/v1beta1:InferenceService": "InferenceService",
    "aws:sns/topic:Topic": "SNS alerts",
    "aws:cloudwatch/dashboard:Dashboard": "dashboard",
    "aws:cloudtrail/trail:Trail": "CloudTrail trail",
}


# resource type -> the inputs `preview` shows (dotted wire names)
KEY_INPUTS: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    "aws:eks/cluster:Cluster": ("version", "vpcConfig.endpointPublicAccess"),
    "aws:eks/nodeGroup:NodeGroup": ("instanceTypes", "capacityType", "scalingConfig"),
    "kubernetes:karpenter.sh/v1:NodePool": ("spec.limits",),
    "aws:ec2/launchTemplate:LaunchTemplate": ("metadataOptions.httpTokens",),
    "kubernetes:helm.sh/v3:Release": ("chart", "version", "namespace"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": ("productionVariants",),
    "aws:s3/bucket:Bucket": ("bucket",),
    "aws:ecr/repository:Repository": ("imageTagMutability",),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("metricName", "threshold"),
    "aws:cloudwatch/logGroup:LogGroup": ("retentionInDays",),
}


def short_type(resource_type: str) -> str:
    """``aws:eks/nodeGroup:NodeGroup`` -> ``aws:eks:NodeGroup``."""
    package, _, rest = resource_type.partition(":")
    module, _, kind = rest.rpartition(":")
    return f"{package}:{module.split('/')[0]}:{kind}" if module else resource_type


def _lookup(inputs: dict, dotted: str) -> object:
    value: object = inputs
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def key_inputs(resource: GraphResource) -> dict[str, object]:
    """The inputs worth showing for a resource (empty when none are known)."""
    keys = KEY_INPUTS.get(resource.type, ())
    return {k: v for k in keys if (v := _lookup(resource.inputs, k)) is not None}


def _shown(graph: ResourceGraph) -> list[GraphResource]:
    # sorted: registration order under mocks varies from run to run
    return sorted((r for r in graph.resources if r.type in MAIN_RESOURCE_TYPES),
                  key=lambda r: (r.name, r.type))


def _node_id(urn: str) -> str:
    # names may repeat across types: a short hash of the whole urn keeps ids unique and stable
    name = re.sub(r"[^0-9A-Za-z]", "_", urn.rsplit("::", 1)[-1])
    return f"{name}_{hashlib.sha1(urn.encode()).hexdigest()[:6]}"


def _edges(graph: ResourceGraph, shown: list[GraphResource]) -> list[tuple[str, str]]:
    """(from, to) urns of drawn resources, where `from` depends on `to` (maybe indirectly)."""
    by_urn = graph.by_urn()
    shown_urns = {r.urn for r in shown}
    edges: set[tuple[str, str]] = set()
    for resource in shown:
        seen: set[str] = set()
        stack = list(resource.dependencies)
        while stack:
            urn = stack.pop()
            if urn in seen or urn == resource.urn:
                continue
            seen.add(urn)
            if urn in shown_urns:
                edges.add((resource.urn, urn))
            elif urn in by_urn:  # hidden: follow its dependencies
                stack.extend(by_urn[urn].dependencies)
    return sorted(edges)


def _label(resource: GraphResource) -> str:
    return f"{MAIN_RESOURCE_TYPES[resource.type]}<br/>{resource.name}"


def _components(graph: ResourceGraph) -> list[GraphResource]:
    return sorted((r for r in graph.resources if r.component), key=lambda r: r.name)


def _owner(graph: ResourceGraph, resource: GraphResource) -> str | None:
    """The innermost component a resource belongs to."""
    by_urn = graph.by_urn()
    parent = resource.parent
    while parent and parent in by_urn and not by_urn[parent].component:
        parent = by_urn[parent].parent
    return parent if parent in by_urn else None


def _layout(graph: ResourceGraph) -> tuple[list[tuple[GraphResource, list[GraphResource]]],
                                            list[GraphResource], list[tuple[str, str]]]:
    """(component, its drawn resources) groups, drawn resources outside components, edges."""
    shown = _shown(graph)
    by_owner: dict[str | None, list[GraphResource]] = {}
    for resource in shown:
        by_owner.setdefault(_owner(graph, resource), []).append(resource)
    groups = [(c, by_owner[c.urn]) for c in _components(graph) if by_owner.get(c.urn)]
    return groups, by_owner.get(None, []), _edges(graph, shown)


def _title(component: GraphResource) -> str:
    return f"{component.type.rsplit(':', 1)[-1]}: {component.name}"


def to_mermaid(graph: ResourceGraph) -> str:
    """A Mermaid flowchart: one subgraph per component, main resources, dependency edges."""
    groups, loose, edges = _layout(graph)
    lines = ["flowchart LR"]
    for component, members in groups:
        lines.append(f'  subgraph {_node_id(component.urn)}["{_title(component)}"]')
        lines.extend(f'    {_node_id(r.urn)}["{_label(r)}"]' for r in members)
        lines.append("  end")
    lines.extend(f'  {_node_id(r.urn)}["{_label(r)}"]' for r in loose)
    lines.extend(f"  {_node_id(a)} --> {_node_id(b)}" for a, b in edges)
    return "\n".join(lines) + "\n"


def to_dot(graph: ResourceGraph) -> str:
    """The same diagram in Graphviz dot."""
    groups, loose, edges = _layout(graph)

    def node(resource: GraphResource) -> str:
        label = _label(resource).replace("<br/>", "\\n")
        return f'{_node_id(resource.urn)} [label="{label}"];'

    lines = ["digraph platform {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for component, members in groups:
        lines.append(f"  subgraph cluster_{_node_id(component.urn)} {{")
        lines.append(f'    label="{_title(component)}";')
        lines.extend(f"    {node(r)}" for r in members)
        lines.append("  }")
    lines.extend(f"  {node(r)}" for r in loose)
    lines.extend(f"  {_node_id(a)} -> {_node_id(b)};" for a, b in edges)
    lines.append("}")
    return "\n".join(lines) + "\n"
