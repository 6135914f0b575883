"""Monthly cost estimate of a stack from its resources' inputs and the pinned price table.

``estimate(resources, region)`` takes ``(type, name, props)`` triples, props being the resource's
inputs under Pulumi's wire names (as the policy engine passes them; plain dicts or
pulumi_policy's unknown-checking proxies). :func:`graph_resources` and
:func:`policy_resources` turn a mocked ``ResourceGraph`` or pulumi_policy ``PolicyResource``
items into triples.

Each priced resource gets a line: monthly USD at its baseline size, the same at full scale, and
the basis of the figure. Baseline means node groups at ``scalingConfig.desiredSize``, Karpenter
NodePools empty (they launch nodes for pending pods only) and SageMaker variants at
``initialInstanceCount``; full scale means ``maxSize``, a NodePool's ``limits`` filled with the
costliest of its allowed instance types, and the variant's autoscaling ``maxCapacity``. The
``monthly-budget`` rule compares the baseline total with its budget unless its ``scale``
setting says ``max``. Resource types that cost nothing by themselves (IAM, VPC plumbing, S3
bucket settings, Kubernetes objects but NodePools) get no line; AWS types the estimator has no
model for are listed in ``unpriced``. Every figure comes from ``prices.json``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from mlscaffold.stacks.config import CLOUDWATCH_OBSERVABILITY_ADDON, EKS_STANDARD_SUPPORT_ENDS
from mlscaffold.stacks.constants import (
    GPU_RESOURCE,
    INFERENCE_SERVICE,
    NODE_CLASS,
    NODE_POOL,
    S3_OBJECT,
)
from mlscaffold.stacks.instances import EC2_INSTANCES, gpu_count
from mlscaffold.stacks.schedules import ONE_TIME, runs_per_day

from ..buckets import BUCKET_TYPES, access_log_targets, bucket_ids
from ..nodepools import (
    capacity_types,
    instance_types,
    limit,
    pool_name,
    template_labels,
)
from ..props import number
from .prices import PriceError, PriceTable, not_priced, prices

__all__ = ["CostEstimate", "CostLine", "PredictorNodes", "estimate", "graph_resources",
           "plain_resources", "policy_resources", "predictor_nodes", "sagemaker_variants"]

Triple = tuple[str, str, Mapping[str, Any]]

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SCALING_TARGET = "aws:appautoscaling/target:Target"
MONITORING_SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
JOB_DEFINITIONS = (
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
    "aws:sagemaker/modelQualityJobDefinition:ModelQualityJobDefinition",
    "aws:sagemaker/modelBiasJobDefinition:ModelBiasJobDefinition",
    "aws:sagemaker/modelExplainabilityJobDefinition:ModelExplainabilityJobDefinition",
)
ADDON = "aws:eks/addon:Addon"
TRAIL = "aws:cloudtrail/trail:Trail"
# AWS types that cost nothing by themselves, or whose cost is on another line
_FREE = frozenset({
    "aws:appautoscaling/policy:Policy", SCALING_TARGET,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "aws:ec2/flowLog:FlowLog",
    "aws:ec2/internetGateway:InternetGateway", LAUNCH_TEMPLATE, "aws:ec2/route:Route",
    "aws:ec2/routeTable:RouteTable", "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/securityGroupRule:SecurityGroupRule",
    "aws:ec2/tag:Tag", "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    # Karpenter's interruption queue and its rules: EventBridge delivers AWS service events
    # for free, and a few thousand SQS requests a month are within SQS's free tier
    "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget",
    "aws:sqs/queue:Queue", "aws:sqs/queuePolicy:QueuePolicy",
    "aws:ec2/subnet:Subnet", "aws:ec2/vpc:Vpc", "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy", "aws:eks/accessEntry:AccessEntry",
    ADDON,  # add-ons are free; what they run is on node and usage lines
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:glue/catalogDatabase:CatalogDatabase", "aws:kms/alias:Alias",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning", ENDPOINT, "aws:sagemaker/model:Model",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy", *JOB_DEFINITIONS,
    "aws:sns/topicPolicy:TopicPolicy", "aws:sns/topicSubscription:TopicSubscription",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    # Athena bills each query by the data it scans, nothing per workgroup (Athena docs,
    # "Configure per-query and per-workgroup data usage controls": costs are controlled by
    # data scanned); `train --data feature-store` runs one query per run
    "aws:athena/workgroup:Workgroup",
})
_FREE_PREFIXES = ("aws:iam/",)


@dataclass(frozen=True)
class CostLine:
    """One priced resource."""

    resource: str
    type: str
    #: USD per month at the baseline size (desired nodes, initial instances)
    monthly_usd: float
    #: how the figure was computed, e.g. "2 x m6i.large on-demand x 730 h + 2 x 100 GiB gp3"
    basis: str
    #: USD per month at full scale (maxSize, autoscaling maxCapacity); = monthly_usd if fixed
    at_full_scale_usd: float
    #: the input the cost comes from, for rule messages
    prop: str = ""
    #: why the line is not priced ("not priced: X is not in mlscaffold's price table"): its
    #: figures leave out what the reason names, and so do the estimate's totals
    unpriced: str = ""
    #: why its full-scale figure is not priced (the baseline is)
    full_scale_unpriced: str = ""

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class CostEstimate:
    """A stack's estimated monthly cost, line by line, with the assumptions behind it."""

    region: str
    multiplier: float
    currency: str
    as_of: str
    lines: tuple[CostLine, ...]
    assumptions: tuple[str, ...]
    #: AWS resource types present that the estimator has no price model for
    unpriced: tuple[str, ...] = field(default=())

    @property
    def total(self) -> float:
        """USD per month at the baseline size."""
        return sum(line.monthly_usd for line in self.lines)

    @property
    def at_full_scale(self) -> float:
        """USD per month with every node group and endpoint at its maximum size."""
        return sum(line.at_full_scale_usd for line in self.lines)

    @property
    def excluded(self) -> tuple[str, ...]:
        """What the baseline total leaves out, one ``resource (reason)`` each."""
        return tuple(f"{line.resource} ({line.unpriced})" for line in self.lines
                     if line.unpriced)

    @property
    def excluded_at_full_scale(self) -> tuple[str, ...]:
        """What the full-scale total leaves out."""
        return tuple(f"{line.resource} ({line.unpriced or line.full_scale_unpriced})"
                     for line in self.lines if line.unpriced or line.full_scale_unpriced)

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region, "multiplier": self.multiplier, "currency": self.currency,
            "prices_as_of": self.as_of, "total_monthly_usd": round(self.total, 2),
            "at_full_scale_monthly_usd": round(self.at_full_scale, 2),
            "lines": [{"resource": line.resource, "type": line.type,
                       "monthly_usd": round(line.monthly_usd, 2),
                       "at_full_scale_usd": round(line.at_full_scale_usd, 2),
                       "basis": line.basis,
                       **({"not_priced": line.unpriced} if line.unpriced else {}),
                       **({"full_scale_not_priced": line.full_scale_unpriced}
                          if line.full_scale_unpriced else {})} for line in self.lines],
            "total_excludes": list(self.excluded),
            "at_full_scale_excludes": list(self.excluded_at_full_scale),
            "assumptions": list(self.assumptions), "unpriced": list(self.unpriced),
        }


# ----------------------------------------------------------------------------- adapters

def graph_resources(graph: Any) -> list[Triple]:
    """Triples of a mocked ``ResourceGraph``'s custom resources (components cost nothing)."""
    return [(r.type, r.name, r.inputs) for r in graph.resources if r.custom]


def policy_resources(resources: Iterable[Any]) -> list[Triple]:
    """Triples of pulumi_policy ``PolicyResource`` items (``StackValidationArgs.resources``)."""
    return [(r.resource_type, r.name, r.props) for r in resources]


# ----------------------------------------------------------------------------- prop access

def _plain(value: Any, path: str, unknown: list[str]) -> Any:
    """`value` as plain dicts and lists; values unknown before deployment become None and their
    paths are appended to `unknown` (pulumi_policy's proxies raise on reading them)."""
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key in value:
            try:
                item = value[key]
            except UnknownValueError:
                unknown.append(f"{path}.{key}" if path else str(key))
                item = None
            plain[key] = _plain(item, f"{path}.{key}" if path else str(key), unknown)
        return plain
    if _is_list(value):
        items = []
        for index in range(len(value)):
            try:
                item = value[index]
            except UnknownValueError:
                unknown.append(f"{path}[{index}]")
                item = None
            items.append(_plain(item, f"{path}[{index}]", unknown))
        return items
    return value


def plain_resources(resources: Iterable[Triple]) -> tuple[list[Triple], dict[str, list[str]]]:
    """Triples with plain props, and per resource name the inputs unknown before deployment."""
    plain, unknown = [], {}
    for kind, name, props in resources:
        paths: list[str] = []
        plain.append((kind, name, _plain(props, "", paths)))
        if paths:
            unknown[name] = paths
    return plain, unknown


def _get(props: Any, path: str, default: Any = None) -> Any:
    """``props["a"]["b"][0]`` for ``"a.b[0]"``; `default` when a step is missing."""
    value = props
    for step in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if step.startswith("["):
            index = int(step[1:-1])
            if not _is_list(value) or index >= len(value):
                return default
            value = value[index]
        elif isinstance(value, Mapping) and step in value:
            value = value[step]
        else:
            return default
    return default if value is None else value


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _number(value: Any, default: float = 0.0) -> float:
    parsed = number(value)
    return default if parsed is None else parsed


def _count(value: Any, default: int = 0) -> int:
    return int(_number(value, default))


def _rate(value: float) -> str:
    return f"${value:g}"


# ----------------------------------------------------------------------------- context

class _Context:
    """Prices, region multiplier, the stack's resources by type, and assumptions used."""

    def __init__(self, resources: list[Triple], region: str, table: PriceTable,
                 on: date | None = None) -> None:
        self.table = table
        #: the day Kubernetes support windows are judged on (EKS's calendar, not the prices')
        self.on = on or date.today()
        self.region = region
        self.multiplier, region_note = table.region_multiplier(region)
        self.hours = table.hours_per_month
        self.by_type: dict[str, list[Triple]] = {}
        for resource in resources:
            self.by_type.setdefault(resource[0], []).append(resource)
        self.notes: list[str] = [region_note] if region_note else []
        #: buckets receiving S3 server access logs: priced as log stores, not data
        self.log_targets = access_log_targets((kind, props) for kind, _, props in resources)
        self.used: set[str] = set()
        self.spot_used = False

    def of(self, resource_type: str) -> list[Triple]:
        return self.by_type.get(resource_type, [])

    @cached_property
    def launch_templates(self) -> dict[str, Triple]:
        """Launch templates by every name a node group may refer to them with."""
        index: dict[str, Triple] = {}
        for template in self.of(LAUNCH_TEMPLATE):
            for name in _names(template):
                index.setdefault(name, template)
        return index

    def usage(self, key: str) -> float:
        self.used.add(key)
        return self.table.usage(key)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def assumptions(self) -> tuple[str, ...]:
        t = self.table
        listed = [
            f"prices as of {t.as_of.isoformat()}: {t.currency}, {t.base_region} on-demand list "
            "prices (sources in mlscaffold/policies/cost/prices.json)",
            f"{t.hours_per_month:g} hours per month; resources run all month",
        ]
        if self.multiplier != 1.0 and self.region in t.regions.multipliers:
            listed.append(f"region {self.region}: {t.base_region} prices x {self.multiplier:g} "
                          "(approximation)")
        if self.spot_used:
            listed.append(f"spot price = on-demand x (1 - {t.spot_discount:g}); real spot "
                          "prices vary by zone and over time")
        listed += [f"{key}: {t.assumptions[key].value:g} {t.assumptions[key].unit} "
                   f"({t.assumptions[key].note})" for key in sorted(self.used)]
        return tuple(listed + self.notes)


# ----------------------------------------------------------------------------- node groups

def _names(resource: Triple) -> set[str]:
    """Names another resource may use to refer to `resource`: its name, its physical name
    input, and the ID the mocks give it (``<name>-id``)."""
    _, name, props = resource
    names = {name, f"{name}-id"}
    for key in ("name", "id"):
        value = props.get(key) if isinstance(props, Mapping) else None
        if isinstance(value, str):
            names.add(value)
    return names


def _launch_template_disk(ctx: _Context, group: str, reference: Any) -> int | None:
    """GiB of EBS volumes in the node group's launch template, matched by the reference's id
    or name, or (when those are unknown before deployment or are real ids) by mlscaffold's
    naming: the template of node group ``x`` is ``x-lt``."""
    if not isinstance(reference, Mapping):
        return None
    wanted = [v for v in (reference.get("id"), reference.get("name")) if isinstance(v, str)]
    index = ctx.launch_templates
    template = next((index[v] for v in wanted if v in index), None) or index.get(f"{group}-lt")
    if template is None:
        return None
    sizes = [_count(_get(m, "ebs.volumeSize")) for m in
             _get(template[2], "blockDeviceMappings", [])]
    return sum(sizes) or None


@dataclass(frozen=True)
class _NodeRate:
    instance_type: str
    capacity: str
    disk_gib: int
    #: USD per node-month in the region: instance hours and its disk
    monthly: float
    label: str


def _node_type(ctx: _Context, name: str, props: Mapping[str, Any]) -> str:
    types = [t for t in _get(props, "instanceTypes", []) if isinstance(t, str)]
    if not types:
        ctx.note(f"node group '{name}': instanceTypes not set or unknown before deployment; "
                 "priced as EKS's default t3.medium")
    return types[0] if types else "t3.medium"


def _node_rate(ctx: _Context, name: str, props: Mapping[str, Any]) -> _NodeRate | None:
    """A node's monthly rate; None when the price table has no price for its type (the caller
    says the line is not priced: :func:`not_priced`)."""
    instance_type = _node_type(ctx, name, props)
    if not ctx.table.has_ec2(instance_type):
        return None
    hourly = ctx.table.ec2(instance_type)
    capacity = str(_get(props, "capacityType", "ON_DEMAND"))
    label = "on-demand"
    if capacity == "SPOT":
        ctx.spot_used = True
        hourly = ctx.table.spot(hourly)
        label = f"spot (on-demand - {ctx.table.spot_discount:.0%})"
    disk = _count(_get(props, "diskSize")) or _launch_template_disk(
        ctx, name, _get(props, "launchTemplate"))
    if not disk:
        disk = int(ctx.usage("node_disk_gib_default"))
    monthly = (hourly * ctx.hours + disk * ctx.table.service("ebs_gp3_gb_month")) * ctx.multiplier
    return _NodeRate(instance_type, capacity, disk, monthly, label)


def _node_group(ctx: _Context, resource: Triple) -> CostLine | None:
    _, name, props = resource
    rate = _node_rate(ctx, name, props)
    desired = _count(_get(props, "scalingConfig.desiredSize"),
                     _count(_get(props, "scalingConfig.minSize")))
    maximum = max(_count(_get(props, "scalingConfig.maxSize"), desired), desired)
    if rate is None:
        reason = not_priced(_node_type(ctx, name, props))
        return CostLine(name, NODE_GROUP, 0.0, f"{reason} ({desired} node(s), full scale "
                        f"{maximum})", 0.0, "instanceTypes", unpriced=reason)
    basis = (f"{desired} x {rate.instance_type} {rate.label} x {ctx.hours:g} h + {desired} x "
             f"{rate.disk_gib} GiB gp3; full scale {maximum} nodes")
    return CostLine(name, NODE_GROUP, desired * rate.monthly, basis, maximum * rate.monthly,
                    "scalingConfig.desiredSize")


def _node_class_disk(ctx: _Context, props: Mapping[str, Any]) -> int | None:
    """GiB of the root volume of the EC2NodeClass a NodePool refers to (``100Gi``)."""
    wanted = _get(props, "spec.template.spec.nodeClassRef.name")
    for _, name, class_props in ctx.of(NODE_CLASS):
        if wanted in (_get(class_props, "metadata.name"), name):
            sizes = [str(_get(m, "ebs.volumeSize", "")) for m in
                     _get(class_props, "spec.blockDeviceMappings", [])]
            gib = sum(int(size[:-2]) for size in sizes if re.fullmatch(r"\d+Gi", size))
            return gib or None
    return None


def _pool_spot(props: Mapping[str, Any]) -> bool:
    """A NodePool's nodes are priced (and counted) as spot when it allows spot only."""
    return capacity_types(props) == ["spot"]


def _pool_rate(ctx: _Context, name: str, props: Mapping[str, Any], instance_type: str
               ) -> _NodeRate | None:
    """A node of a NodePool: spot when the pool allows spot only, else on-demand."""
    spot = _pool_spot(props)
    return _node_rate(ctx, name, {
        "instanceTypes": [instance_type], "capacityType": "SPOT" if spot else "ON_DEMAND",
        "diskSize": _node_class_disk(ctx, props) or 0})


def _node_pool(ctx: _Context, resource: Triple) -> CostLine | None:
    """A Karpenter NodePool costs nothing until pods need its nodes; at full scale its limits
    are filled with whichever allowed type costs most for them."""
    _, name, props = resource
    ctx.note("Karpenter NodePools start with no node (their controller runs on the system "
             "node group, priced with it)")
    types = instance_types(props)
    gpus, cpu = limit(props, GPU_RESOURCE), limit(props, "cpu")
    if not types or not types[0] or (gpus is None and cpu is None):
        ctx.note(f"NodePool '{name}': instance types or limits not restricted; full scale not "
                 "priced")
        return CostLine(name, NODE_POOL, 0.0, "0 at baseline (no node until pods need one); "
                        "full scale unbounded, not priced", 0.0, "spec.limits")
    best: tuple[float, int, _NodeRate] | None = None
    missing = [t for t in types[0] if not ctx.table.has_ec2(t)]
    if missing:
        reason = (f"{not_priced(*missing)}, and the pool may launch "
                  f"{'it' if len(missing) == 1 else 'them'}")
        return CostLine(name, NODE_POOL, 0.0, f"0 at baseline (no node until pods need one); "
                        f"full scale {reason}", 0.0, "spec.limits",
                        full_scale_unpriced=reason)
    for instance_type in types[0]:
        bounds = [int(cpu // EC2_INSTANCES[instance_type].vcpus)] if cpu is not None else []
        if gpus is not None and gpu_count(instance_type):
            bounds.append(int(gpus // gpu_count(instance_type)))
        nodes = min(bounds) if bounds else 0
        rate = _pool_rate(ctx, name, props, instance_type) if nodes else None
        if rate is not None and (best is None or nodes * rate.monthly > best[0]):
            best = (nodes * rate.monthly, nodes, rate)
    limits = ", ".join(f"{key} {value:g}" for key, value in ((GPU_RESOURCE, gpus),
                                                            ("cpu", cpu)) if value is not None)
    if best is None:
        return CostLine(name, NODE_POOL, 0.0, f"0 at baseline; full scale ({limits}) not "
                        "priced: no allowed type has a price", 0.0, "spec.limits")
    full, nodes, rate = best
    basis = (f"0 at baseline (no node until pods need one); full scale {limits}: {nodes} x "
             f"{rate.instance_type} {rate.label} x {ctx.hours:g} h + {nodes} x {rate.disk_gib} "
             "GiB gp3 (the costliest way to fill the limits)")
    return CostLine(name, NODE_POOL, 0.0, basis, full, "spec.limits")


# ----------------------------------------------------------------------------- SageMaker

def sagemaker_variants(resources: Iterable[Triple]) -> list[tuple[Triple, str, str, int, int]]:
    """(endpoint configuration, variant name, instance type, initial count, max count) of every
    instance-backed production variant; max count from the variant's autoscaling target."""
    resources, _ = plain_resources(resources)
    configs = [r for r in resources if r[0] == ENDPOINT_CONFIG]
    endpoints = [r for r in resources if r[0] == ENDPOINT]
    maxima: dict[tuple[str, str], int] = {}
    for _, _, props in (r for r in resources if r[0] == SCALING_TARGET):
        if _get(props, "serviceNamespace") != "sagemaker":
            continue
        # resourceId is endpoint/<endpoint name>/variant/<variant>; unknown before deployment
        # when the endpoint's name is computed: then a lone configuration is the one
        match = re.fullmatch(r"endpoint/([^/]+)/variant/([^/]+)",
                             str(_get(props, "resourceId", "")))
        endpoint_name, variant = match.groups() if match else (None, None)
        config_name = next((_get(e[2], "endpointConfigName") for e in endpoints
                            if endpoint_name in _names(e)), None)
        config = next((c for c in configs if config_name in _names(c)), None)
        if config is None and len(configs) == 1:
            config = configs[0]
        if config is None:
            continue
        if variant is None:
            names = [_get(v, "variantName") for v in _get(config[2], "productionVariants", [])]
            variant = names[0] if len(names) == 1 else None
        maxima[(config[1], str(variant))] = _count(_get(props, "maxCapacity"))
    variants = []
    for config in configs:
        for index, variant in enumerate(_get(config[2], "productionVariants", [])):
            instance_type = _get(variant, "instanceType")
            if not isinstance(instance_type, str):
                continue  # serverless variants have no instances
            name = str(_get(variant, "variantName", f"variant-{index}"))
            initial = _count(_get(variant, "initialInstanceCount"), 1)
            variants.append((config, name, instance_type, initial,
                             max(maxima.get((config[1], name), initial), initial)))
    return variants


def _endpoint_configs(ctx: _Context, resources: list[Triple]) -> list[CostLine]:
    lines: dict[str, list[tuple[str, float, float]]] = {}
    unpriced: dict[str, list[str]] = {}
    for config, variant, instance_type, initial, maximum in sagemaker_variants(resources):
        if instance_type not in ctx.table.sagemaker_hosting_hourly:
            reason = not_priced(instance_type)
            unpriced.setdefault(config[1], []).append(reason)
            lines.setdefault(config[1], []).append(
                (f"{variant}: {initial} x {instance_type}, {reason}; full scale {maximum}",
                 0.0, 0.0))
            continue
        hourly = ctx.table.sagemaker_hosting(instance_type)
        per_instance = hourly * ctx.hours * ctx.multiplier
        basis = (f"{variant}: {initial} x {instance_type} x {ctx.hours:g} h "
                 f"({_rate(hourly)}/h); full scale {maximum}")
        lines.setdefault(config[1], []).append((basis, initial * per_instance,
                                                maximum * per_instance))
    for _, name, props in ctx.of(ENDPOINT_CONFIG):
        if any(_get(v, "serverlessConfig") for v in _get(props, "productionVariants", [])):
            ctx.note(f"endpoint configuration '{name}': serverless variants are billed per "
                     "request and not priced")
    return [CostLine(name, ENDPOINT_CONFIG, sum(p[1] for p in parts), " + ".join(p[0] for p in
                     parts), sum(p[2] for p in parts),
                     "productionVariants[].instanceType x initialInstanceCount",
                     unpriced="; ".join(unpriced.get(name, ())))
            for name, parts in lines.items()]


def _runs_per_month(ctx: _Context, name: str, expression: str) -> float:
    """Runs a month of a Model Monitor schedule, read as the stack config validates it."""
    expression = expression.strip()
    if expression == ONE_TIME:
        return 1
    try:
        return runs_per_day(expression) * ctx.hours / 24
    except ValueError as error:
        ctx.note(f"monitoring schedule '{name}': {error}; priced as hourly")
        return ctx.hours


def _monitoring_schedule(ctx: _Context, resource: Triple) -> CostLine | None:
    _, name, props = resource
    config = _get(props, "monitoringScheduleConfig", {})
    cluster = _get(config, "monitoringJobDefinition.monitoringResources.clusterConfig")
    if cluster is None:
        wanted = _get(config, "monitoringJobDefinitionName")
        jobs = [j for t in JOB_DEFINITIONS for j in ctx.of(t)]
        job = next((j for j in jobs if wanted in _names(j)), jobs[0] if len(jobs) == 1 else None)
        cluster = _get(job[2], "jobResources.clusterConfig") if job else None
    instance_type = str(_get(cluster or {}, "instanceType", "ml.m5.xlarge"))
    count = _count(_get(cluster or {}, "instanceCount"), 1)
    if cluster is None:
        ctx.note(f"monitoring schedule '{name}': job definition not found; priced as 1 x "
                 "ml.m5.xlarge")
    try:
        hourly = ctx.table.sagemaker_processing(instance_type)
    except PriceError as error:
        ctx.note(f"monitoring schedule '{name}' not priced: {error}")
        return None
    expression = str(_get(config, "scheduleConfig.scheduleExpression", "cron(0 * ? * * *)"))
    runs = _runs_per_month(ctx, name, expression)
    hours = ctx.usage("model_monitor_hours_per_run")
    monthly = runs * hours * count * hourly * ctx.multiplier
    basis = (f"{runs:g} runs ({expression}) x {hours:g} h x {count} x {instance_type} "
             f"({_rate(hourly)}/h processing)")
    return CostLine(name, MONITORING_SCHEDULE, monthly, basis, monthly,
                    "monitoringScheduleConfig.scheduleConfig.scheduleExpression")


# ----------------------------------------------------------------------------- KServe

def _gpu_limit(predictor: Any) -> int:
    """GPUs one replica of a KServe predictor asks for (every container, model spec too)."""
    containers = list(_get(predictor, "containers", []))
    for key in ("model", "pytorch", "sklearn", "xgboost", "tensorflow", "triton", "onnx"):
        if isinstance(_get(predictor, key), Mapping):
            containers.append(_get(predictor, key))
    return sum(_count(_get(c, "resources.limits", {}).get(GPU_RESOURCE))
               for c in containers if isinstance(_get(c, "resources.limits"), Mapping))


@dataclass(frozen=True)
class PredictorNodes:
    """The GPU nodes a KServe predictor's ``minReplicas`` keep up beyond what its node group
    or NodePool runs anyway: what ``mlscaffold cost`` prices and ``preflight`` counts against
    the EC2 quotas (the one place that works them out)."""

    #: the InferenceService's resource name
    service: str
    replicas: int
    #: GPUs one replica asks for
    gpus: int
    #: "node group" or "NodePool"
    pool_kind: str
    #: the node group's resource name, or the NodePool's Kubernetes name
    pool: str
    instance_type: str
    #: nodes kept up beyond the pool's baseline (a node group's desired size; a NodePool's 0)
    nodes: int
    #: purchase option of those nodes: "spot" or "on-demand"
    purchase: str
    #: the pool's baseline nodes (a node group's desiredSize; 0 for a NodePool)
    baseline: int = 0
    #: the NodePool allows spot and on-demand: Karpenter tries spot first, then on-demand
    mixed: bool = False
    #: `replicas` counts a KServe Serverless canary's revision beside the previous one
    canary: bool = False
    #: types the nodes may be of that the price table has no price for (then not priced)
    unpriced: tuple[str, ...] = ()


def _predictor_nodes(ctx: _Context, resource: Triple, canary_peak: bool = False
                     ) -> tuple[PredictorNodes, _NodeRate | None] | str | None:
    """Where the predictor's minimum lands and the rate of one such node; a reason (str) when
    the nodes cost nothing extra, or no node of a matching pool holds a replica's GPUs; None
    when no GPU node group or NodePool matches. With `canary_peak`, a canary
    (``canaryTrafficPercent``, KServe Serverless) counts twice: the new revision starts its
    minimum beside the previous one's, which keeps serving."""
    _, name, props = resource
    predictor = _get(props, "spec.predictor", {})
    gpus = _gpu_limit(predictor)
    replicas = _count(_get(predictor, "minReplicas"), 1)
    canary = canary_peak and _get(predictor, "canaryTrafficPercent") is not None
    replicas *= 2 if canary else 1
    if gpus == 0 or replicas == 0:
        return ""
    selector = _get(predictor, "nodeSelector", {})
    selector = dict(selector) if isinstance(selector, Mapping) else {}
    # a replica's GPUs come from one node (Kubernetes docs, "Schedule GPUs": GPUs are requested
    # per container, and a pod runs on a single node)
    too_small: list[str] = []
    for _, group, group_props in ctx.of(NODE_GROUP):
        labels = _get(group_props, "labels", {})
        types = _get(group_props, "instanceTypes", [])
        per_node = gpu_count(types[0]) if _is_list(types) and types else 0
        if not per_node or not all(
                isinstance(labels, Mapping) and labels.get(k) == v for k, v in selector.items()):
            continue
        if per_node < gpus:
            too_small.append(f"node group '{group}' ({types[0]}: {per_node})")
            continue
        desired = _count(_get(group_props, "scalingConfig.desiredSize"))
        maximum = _count(_get(group_props, "scalingConfig.maxSize"), desired)
        extra = min(max(math.ceil((replicas * gpus - desired * per_node) / per_node), 0),
                    max(maximum - desired, 0))
        if not extra:
            return f" (node group '{group}')"
        rate = _node_rate(ctx, group, group_props)
        spot = _get(group_props, "capacityType") == "SPOT"
        return PredictorNodes(name, replicas, gpus, "node group", group, types[0],
                              extra, "spot" if spot else "on-demand", desired, canary=canary,
                              unpriced=() if rate else (types[0],)), rate
    for _, pool, pool_props in ctx.of(NODE_POOL):
        labels = template_labels(pool_props)
        types = instance_types(pool_props)
        if not types or not all(labels.get(k) == v for k, v in selector.items()):
            continue
        # Karpenter keeps the replicas up on the cheapest allowed nodes that hold them; when
        # one that holds them has no price, which is cheapest is not known: not priced
        holding = [t for t in types[0] if gpu_count(t) >= gpus]
        unpriced = tuple(t for t in holding if not ctx.table.has_ec2(t))
        fitting = [(rate.monthly / (gpu_count(t) // gpus), t, rate) for t in holding
                   if (rate := _pool_rate(ctx, pool, pool_props, t)) is not None]
        if not holding:
            if types[0] and not types[1]:
                largest = max(types[0], key=gpu_count)
                too_small.append(f"NodePool '{pool_name(pool, pool_props)}' ({largest}: "
                                 f"{gpu_count(largest)})")
            continue
        rate: _NodeRate | None
        if fitting:
            _, instance_type, rate = min(fitting, key=lambda item: item[0])
        else:  # only unpriced types hold them: the fewest nodes, for the quota checks
            instance_type, rate = max(holding, key=lambda t: gpu_count(t) // gpus), None
        rate = None if unpriced else rate
        nodes = math.ceil(replicas / (gpu_count(instance_type) // gpus))
        cap = limit(pool_props, GPU_RESOURCE)
        if cap is not None:  # replicas beyond the pool's limits stay Pending
            nodes = min(nodes, int(cap // gpu_count(instance_type)))
        allowed = capacity_types(pool_props)
        return PredictorNodes(name, replicas, gpus, "NodePool", pool_name(pool, pool_props),
                              instance_type, nodes,
                              "spot" if _pool_spot(pool_props) else "on-demand",
                              mixed="spot" in allowed and "on-demand" in allowed,
                              canary=canary, unpriced=unpriced), rate
    if too_small:
        return (f" (a replica requests {gpus} GPUs and the largest node of {too_small[0]} has "
                "fewer: its replicas cannot be scheduled)")
    return None


def predictor_nodes(resources: Iterable[Triple], *, table: PriceTable | None = None,
                    canary_peak: bool = False) -> list[PredictorNodes]:
    """The GPU nodes every KServe InferenceService's ``minReplicas`` keep up (see
    :class:`PredictorNodes`); services whose minimum costs no extra node are left out. With
    `canary_peak` (preflight: what a deploy needs at once), a Serverless canary's minimum
    counts twice; the monthly estimate prices the one revision that stays.

    On a NodePool the replicas land on the cheapest allowed type that holds them, by the price
    table (a region's multiplier scales every type alike, so the choice is the base
    region's)."""
    resources, _ = plain_resources(resources)
    table = table or prices()
    ctx = _Context(resources, table.base_region, table)
    found = []
    for resource in ctx.of(INFERENCE_SERVICE):
        placed = _predictor_nodes(ctx, resource, canary_peak)
        if isinstance(placed, tuple) and placed[0].nodes:
            found.append(placed[0])
    return found


def _inference_service(ctx: _Context, resource: Triple) -> CostLine:
    name = resource[1]
    on_nodes = "runs on the cluster's nodes, priced with the node groups and NodePools"
    prop = "spec.predictor.minReplicas"
    placed = _predictor_nodes(ctx, resource)
    if placed is None:
        return CostLine(name, INFERENCE_SERVICE, 0.0, f"no extra cost: {on_nodes} (no GPU node "
                        "group or NodePool matches its nodeSelector)", 0.0, prop)
    if isinstance(placed, str):
        return CostLine(name, INFERENCE_SERVICE, 0.0, f"no extra cost: {on_nodes}{placed}", 0.0,
                        prop)
    nodes, rate = placed
    if rate is None:
        reason = (f"{not_priced(*nodes.unpriced)}, and {nodes.pool_kind} "
                  f"'{nodes.pool}' may run its replicas on it")
        return CostLine(name, INFERENCE_SERVICE, 0.0, f"minReplicas {nodes.replicas} x "
                        f"{nodes.gpus} GPU keep {nodes.nodes} node(s) up: {reason}", 0.0, prop,
                        unpriced=reason)
    if nodes.pool_kind == "node group":
        basis = (f"minReplicas {nodes.replicas} x {nodes.gpus} GPU keep {nodes.nodes} x "
                 f"{rate.instance_type} {rate.label} of node group '{nodes.pool}' up beyond its "
                 f"desired size {nodes.baseline}")
    else:
        basis = (f"minReplicas {nodes.replicas} x {nodes.gpus} GPU keep {nodes.nodes} x "
                 f"{nodes.instance_type} {rate.label} of NodePool '{nodes.pool}' up")
    # at full scale the node group's maxSize (the NodePool's limits) already counts these nodes
    return CostLine(name, INFERENCE_SERVICE, nodes.nodes * rate.monthly, basis, 0.0, prop)


# ----------------------------------------------------------------------------- the rest

def _simple(ctx: _Context, resource: Triple) -> CostLine | None:
    """Resources priced from their own inputs: fixed monthly or usage-driven charges."""
    kind, name, props = resource
    t, m, hours = ctx.table, ctx.multiplier, ctx.hours

    def line(usd: float, basis: str, prop: str = "") -> CostLine:
        return CostLine(name, kind, usd * m, basis, usd * m, prop)

    if kind == "aws:eks/cluster:Cluster":
        return _eks_cluster(ctx, resource)
    if kind == "aws:ec2/natGateway:NatGateway":
        rate, per_gb, gb = (t.service("nat_gateway_hour"), t.service("nat_gateway_gb"),
                            ctx.usage("nat_gb_processed_per_gateway_month"))
        return line(rate * hours + gb * per_gb, f"{hours:g} h x {_rate(rate)} + {gb:g} GB x "
                    f"{_rate(per_gb)} processed", "subnetId")
    if kind == "aws:ec2/eip:Eip":
        rate = t.service("public_ipv4_hour")
        return line(rate * hours, f"1 public IPv4 x {hours:g} h x {_rate(rate)}", "domain")
    if kind == "aws:ec2/vpcEndpoint:VpcEndpoint":
        if _get(props, "vpcEndpointType", "Gateway") != "Interface":
            return None  # gateway endpoints (S3, DynamoDB) are free
        zones = len(_get(props, "subnetIds", [])) or 1
        rate = t.service("vpc_interface_endpoint_az_hour")
        return line(zones * rate * hours, f"{zones} AZ x {hours:g} h x {_rate(rate)}",
                    "subnetIds")
    if kind == "aws:kms/key:Key":
        rate = t.service("kms_key_month")
        return line(rate, f"1 key x {_rate(rate)}/month")
    if kind == "aws:cloudwatch/dashboard:Dashboard":
        rate = t.service("cloudwatch_dashboard_month")
        return line(rate, f"1 dashboard x {_rate(rate)}/month")
    if kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
        queries = _get(props, "metricQueries", [])
        metrics = sum(1 for q in queries if _get(q, "metric")) if _is_list(queries) else 0
        metrics = max(metrics, 1)
        rate = t.service("cloudwatch_alarm_metric_month")
        return line(metrics * rate, f"{metrics} alarm metric(s) x {_rate(rate)}/month")
    if kind == "aws:cloudwatch/logGroup:LogGroup":
        gb = ctx.usage("logs_gb_ingested_per_group_month")
        days = _number(_get(props, "retentionInDays"))
        months = days / (hours / 24) if days > 0 else 12.0
        ingest, store = t.service("cloudwatch_logs_ingested_gb"), t.service(
            "cloudwatch_logs_stored_gb_month")
        kept = f"{days:g} days" if days > 0 else "unset, 12 months assumed"
        return line(gb * ingest + gb * months * store,
                    f"{gb:g} GB x {_rate(ingest)} ingested + {gb * months:.1f} GB stored "
                    f"(retention {kept}) x {_rate(store)}", "retentionInDays")
    if kind in BUCKET_TYPES:
        rate = t.service("s3_standard_gb_month")
        if _receives_logs(ctx, name, props):
            gb = ctx.usage("s3_log_gb_per_log_bucket")
            return line(gb * rate, f"{gb:g} GB of logs x {_rate(rate)} S3 Standard")
        gb = ctx.usage("s3_gb_per_bucket")
        return line(gb * rate, f"{gb:g} GB x {_rate(rate)} S3 Standard")
    if kind == "aws:ecr/repository:Repository":
        gb, rate = ctx.usage("ecr_gb_per_repository"), t.service("ecr_storage_gb_month")
        return line(gb * rate, f"{gb:g} GB x {_rate(rate)}")
    if kind == "aws:sagemaker/featureGroup:FeatureGroup":
        if not _get(props, "onlineStoreConfig.enableOnlineStore", False):
            return None  # the offline store is the S3 bucket's line
        writes, reads, gb = (ctx.usage("feature_store_online_write_million_units_month"),
                             ctx.usage("feature_store_online_read_million_units_month"),
                             ctx.usage("feature_store_online_gb"))
        w, r, s = (t.service("feature_store_write_million_units"),
                   t.service("feature_store_read_million_units"),
                   t.service("feature_store_storage_gb_month"))
        return line(writes * w + reads * r + gb * s,
                    f"online store: {writes:g}M writes x {_rate(w)} + {reads:g}M reads x "
                    f"{_rate(r)} + {gb:g} GB x {_rate(s)}", "onlineStoreConfig.enableOnlineStore")
    if kind == "aws:sns/topic:Topic":
        return line(t.service("sns_topic_month"), "negligible: alert e-mails within the free "
                    "tier")
    if kind == "aws:ec2/instance:Instance":
        instance_type = str(_get(props, "instanceType", ""))
        try:
            rate = t.ec2(instance_type)
        except PriceError as error:
            ctx.note(f"instance '{name}' not priced: {error}")
            return None
        disk = _count(_get(props, "rootBlockDevice.volumeSize"), 8)
        gp3 = t.service("ebs_gp3_gb_month")
        return line(rate * hours + disk * gp3, f"1 x {instance_type} on-demand x {hours:g} h + "
                    f"{disk} GiB gp3", "instanceType")
    if kind == "aws:ebs/volume:Volume":
        size, gp3 = _count(_get(props, "size")), t.service("ebs_gp3_gb_month")
        return line(size * gp3, f"{size} GiB x {_rate(gp3)} (gp3 price)", "size")
    return None


def _eks_cluster(ctx: _Context, resource: Triple) -> CostLine:
    """The control plane: the standard rate, or the extended-support rate once the cluster's
    Kubernetes version has left standard support (as of `ctx.on`, today by default). A version
    past its standard support is priced at the extended rate whatever the upgrade policy: a
    cluster on it is in extended support, and EKS cannot switch such a cluster to STANDARD
    (AWS docs, "Prevent increased cluster costs by disabling EKS extended support": "You
    cannot disable extended support once your cluster has entered it"). Otherwise an EXTENDED
    cluster (AWS's default when unset) is assumed to stay on its version into extended support
    at full scale."""
    kind, name, props = resource
    t, hours = ctx.table, ctx.hours
    standard, extended = t.service("eks_cluster_hour"), t.service(
        "eks_cluster_extended_support_hour")
    support = _get(props, "upgradePolicy.supportType")
    policy = f"upgrade policy {support}" if support else \
        "upgrade policy not set (AWS's default: EXTENDED)"
    prop = "upgradePolicy.supportType"
    version = str(_get(props, "version", ""))
    ends = EKS_STANDARD_SUPPORT_ENDS.get(version)
    if ends is not None and ends <= ctx.on:
        usd = extended * hours * ctx.multiplier
        consequence = (f"{policy} cannot be set on a cluster in extended support: raise "
                       "cluster.kubernetes_version" if support == "STANDARD" else policy)
        return CostLine(name, kind, usd, f"1 cluster x {hours:g} h x {_rate(extended)} "
                        f"(Kubernetes {version} in extended support since {ends.isoformat()}; "
                        f"{consequence})", usd, "version" if support == "STANDARD" else prop)
    if support == "STANDARD":
        usd = standard * hours * ctx.multiplier
        return CostLine(name, kind, usd, f"1 cluster x {hours:g} h x {_rate(standard)} (standard "
                        f"support; {policy}: EKS upgrades it instead of extending)", usd, prop)
    when = f"from {ends.isoformat()}" if ends else "once its version leaves standard support"
    return CostLine(name, kind, standard * hours * ctx.multiplier,
                    f"1 cluster x {hours:g} h x {_rate(standard)} (standard support); full scale "
                    f"{_rate(extended)}/h extended support {when} ({policy})",
                    extended * hours * ctx.multiplier, prop)


def _receives_logs(ctx: _Context, name: str, props: Mapping[str, Any]) -> bool:
    return bool(bucket_ids(name, props) & ctx.log_targets.ids)


def _audited_buckets(ctx: _Context, name: str, props: Mapping[str, Any]) -> int:
    """How many buckets' S3 data events a trail records: one per resources.ARN prefix of its
    S3 object selectors (every data bucket of the stack when a selector names none)."""
    every = sum(1 for _, bucket, bucket_props in [r for t in BUCKET_TYPES for r in ctx.of(t)]
                if not _receives_logs(ctx, bucket, bucket_props))
    count = 0
    for selector in _get(props, "advancedEventSelectors", []):
        fields = {_get(f, "field"): f for f in _get(selector, "fieldSelectors", [])}
        if "Data" not in _get(fields.get("eventCategory"), "equals", []):
            continue
        if S3_OBJECT not in _get(fields.get("resources.type"), "equals", []):
            ctx.note(f"trail '{name}': data events other than S3 objects are not priced")
            continue
        arn = fields.get("resources.ARN")
        count += len(_get(arn, "startsWiths", []) or _get(arn, "equals", [])) if arn else every
    for selector in _get(props, "eventSelectors", []):
        count += sum(len(_get(r, "values", [])) for r in _get(selector, "dataResources", [])
                     if _get(r, "type") == S3_OBJECT)
    return count


def _trail(ctx: _Context, resource: Triple) -> CostLine:
    _, name, props = resource
    buckets = _audited_buckets(ctx, name, props)
    prop = "advancedEventSelectors"
    if not buckets:
        return CostLine(name, TRAIL, 0.0, "no S3 data events (the first copy of management "
                        "events is free)", 0.0, prop)
    millions = ctx.usage("cloudtrail_data_events_million_per_bucket_month")
    rate = ctx.table.service("cloudtrail_data_events_100k")
    monthly = buckets * millions * 10 * rate * ctx.multiplier  # 10 x 100,000 per million
    return CostLine(name, TRAIL, monthly, f"{buckets} bucket(s) x {millions:g}M S3 data events "
                    f"x {_rate(rate)} per 100k", monthly, prop)


_MODELLED = frozenset({
    "aws:eks/cluster:Cluster", "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip",
    "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:kms/key:Key", "aws:cloudwatch/dashboard:Dashboard",
    "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/logGroup:LogGroup",
    "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:ecr/repository:Repository",
    "aws:sagemaker/featureGroup:FeatureGroup", "aws:sns/topic:Topic",
    "aws:ec2/instance:Instance", "aws:ebs/volume:Volume", NODE_GROUP, ENDPOINT_CONFIG,
    MONITORING_SCHEDULE, TRAIL,
})


def estimate(resources: Iterable[Triple], region: str, *,
             table: PriceTable | None = None, on: date | None = None) -> CostEstimate:
    """Estimate the monthly cost of `resources` ((type, name, props) triples) in `region`.

    A region missing from the price table is priced with the table's default multiplier and
    the estimate's assumptions say so (see :meth:`PriceTable.region_multiplier`).
    """
    resources, unknown = plain_resources(resources)
    table = table or prices()
    ctx = _Context(resources, region, table, on)
    lines: list[CostLine] = []
    unpriced: set[str] = set()
    for resource in resources:
        kind = resource[0]
        if kind == NODE_GROUP:
            priced = _node_group(ctx, resource)
        elif kind == NODE_POOL:
            priced = _node_pool(ctx, resource)
        elif kind == MONITORING_SCHEDULE:
            priced = _monitoring_schedule(ctx, resource)
        elif kind == INFERENCE_SERVICE:
            priced = _inference_service(ctx, resource)
        elif kind == TRAIL:
            priced = _trail(ctx, resource)
        elif kind in _MODELLED:
            priced = _simple(ctx, resource) if kind != ENDPOINT_CONFIG else None
        else:
            if kind.startswith("aws:") and kind not in _FREE and not kind.startswith(
                    _FREE_PREFIXES):
                unpriced.add(kind)
            elif kind == ADDON and _get(resource[2], "addonName") == CLOUDWATCH_OBSERVABILITY_ADDON:
                ctx.note(f"add-on '{resource[1]}': Container Insights bills by usage; its "
                         "performance log group is priced, its metrics are not")
            priced = None
        if priced is not None:
            lines.append(priced)
    lines += _endpoint_configs(ctx, resources)
    for line in lines:
        roots = set(re.findall(r"[A-Za-z]\w*", line.prop.split(" ", 1)[0]))
        missing = [p for p in unknown.get(line.resource, ()) if re.match(r"[A-Za-z]\w*", p)
                   and re.match(r"[A-Za-z]\w*", p)[0] in roots]
        if missing:
            ctx.note(f"{line.kind} '{line.resource}': {', '.join(missing)} unknown before "
                     "deployment; priced with defaults")
    if unpriced:
        ctx.note(f"not priced (no price model): {', '.join(sorted(unpriced))}")
    return CostEstimate(region, ctx.multiplier, table.currency, table.as_of.isoformat(),
                        tuple(sorted(lines, key=lambda line: (-line.monthly_usd, line.resource))),
                        ctx.assumptions(), tuple(sorted(unpriced)))
