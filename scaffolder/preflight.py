"""`preflight`: the AWS service quotas a stack's deploy needs, against the account's quotas.

New AWS accounts start with 0 vCPUs of GPU (G, P) instances and often with 0 SageMaker
instances of a type, so a first ``pulumi up`` can fail half-way, when it launches GPU nodes or
endpoints. Preflight knows what a stack launches (its program runs under Pulumi's mocks) and
sets it against the quotas of the stack's account and region:

- :func:`needs_of` derives, from a ``ResourceGraph``, the capacity each quota must cover: right
  away (minimum and desired sizes, and the GPU nodes a KServe predictor's ``minReplicas`` keep
  up: what a deploy launches) and at full scale (maximum sizes, autoscaling maxima, Karpenter
  limits);
- :func:`read_quotas` reads quotas through a boto3 ``service-quotas`` client, one listing pass
  per service and region (applied values first, AWS defaults for quotas never adjusted);
- :func:`compare` checks each need against its quota.

:func:`preflight_project` runs the three over a project's stacks. EC2 quotas count vCPUs per
instance class and purchase option (:data:`EC2_VCPU_QUOTAS`, the one table of their codes);
SageMaker quotas count instances of one type for one use (:data:`SAGEMAKER_QUOTA_NAMES`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .aws import aws_errors
from .stacks.constants import CAPACITY_TYPE, INSTANCE_FAMILY, INSTANCE_TYPE, NODE_POOL

if TYPE_CHECKING:
    from .infra import InfraProject

__all__ = [
    "EC2_VCPU_QUOTAS",
    "NOT_FOUND",
    "OK",
    "SAGEMAKER_QUOTA_NAMES",
    "SHORT",
    "SHORT_AT_FULL_SCALE",
    "Ec2VcpuQuota",
    "Need",
    "QuotaCheck",
    "QuotaValue",
    "StackNeeds",
    "StackPreflight",
    "compare",
    "ec2_quota",
    "needs_of",
    "preflight_project",
    "quota_client",
    "read_quotas",
    "request_command",
]

EC2_INSTANCE = "aws:ec2/instance:Instance"

# statuses of a quota check
OK = "ok"
SHORT = "short"  # below what a deploy launches right away: the deploy would fail
SHORT_AT_FULL_SCALE = "short-at-full-scale"  # enough to deploy, not to scale out fully
NOT_FOUND = "not-found"  # the account and region have no such quota


@dataclass(frozen=True)
class Ec2VcpuQuota:
    """An EC2 quota on the vCPUs of running instances of some families, by purchase option."""

    code: str
    #: the quota's name in Service Quotas
    name: str
    purchase: str  # "on-demand" | "spot"
    #: instance family prefixes it covers; a family belongs to its longest matching prefix
    families: tuple[str, ...]


_STANDARD = ("a", "c", "d", "h", "i", "m", "r", "t", "z")

# The EC2 vCPU quotas, one row per class and purchase option. Names: AWS EC2 User Guide,
# "On-Demand Instance quotas" and "Spot Instance quotas" (docs.aws.amazon.com/AWSEC2/latest/
# UserGuide/ec2-on-demand-instances.html, .../using-spot-limits.html); codes: as Service Quotas'
# ListServiceQuotas returns them for ec2 (the AWS CLI's get-aws-default-service-quota example
# shows L-1216C47A). Spot P quotas are split: "All P4, P3 and P2 Spot Instance Requests"
# (L-7212CCBC, formerly "All P Spot Instance Requests") and "All P5 Spot Instance Requests".
EC2_VCPU_QUOTAS: tuple[Ec2VcpuQuota, ...] = (
    Ec2VcpuQuota("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
                 "on-demand", _STANDARD),
    Ec2VcpuQuota("L-DB2E81BA", "Running On-Demand G and VT instances", "on-demand", ("g", "vt")),
    Ec2VcpuQuota("L-417A185B", "Running On-Demand P instances", "on-demand", ("p",)),
    Ec2VcpuQuota("L-1945791B", "Running On-Demand Inf instances", "on-demand", ("inf",)),
    Ec2VcpuQuota("L-2C3B7624", "Running On-Demand Trn instances", "on-demand", ("trn",)),
    Ec2VcpuQuota("L-6E869C2A", "Running On-Demand DL instances", "on-demand", ("dl",)),
    Ec2VcpuQuota("L-74FC7D96", "Running On-Demand F instances", "on-demand", ("f",)),
    Ec2VcpuQuota("L-7295265B", "Running On-Demand X instances", "on-demand", ("x",)),
    Ec2VcpuQuota("L-F7808C92", "Running On-Demand HPC instances", "on-demand", ("hpc",)),
    Ec2VcpuQuota("L-43DA4232", "Running On-Demand High Memory instances", "on-demand", ("u",)),
    Ec2VcpuQuota("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
                 "spot", _STANDARD),
    Ec2VcpuQuota("L-3819A6DF", "All G and VT Spot Instance Requests", "spot", ("g", "vt")),
    Ec2VcpuQuota("L-7212CCBC", "All P4, P3 and P2 Spot Instance Requests", "spot",
                 ("p2", "p3", "p4")),
    Ec2VcpuQuota("L-C4BD4855", "All P5 Spot Instance Requests", "spot", ("p5",)),
    Ec2VcpuQuota("L-B5D1601B", "All Inf Spot Instance Requests", "spot", ("inf",)),
    Ec2VcpuQuota("L-6B0D517C", "All Trn Spot Instance Requests", "spot", ("trn",)),
    Ec2VcpuQuota("L-85EED4F7", "All DL Spot Instance Requests", "spot", ("dl",)),
    Ec2VcpuQuota("L-88CF9481", "All F Spot Instance Requests", "spot", ("f",)),
    Ec2VcpuQuota("L-E3A00192", "All X Spot Instance Requests", "spot", ("x",)),
)
# families no vCPU quota covers: Mac instances run on Dedicated Hosts (quotas per host family)
_NO_VCPU_QUOTA = ("mac",)

# SageMaker counts instances per type and use; Service Quotas names each such quota
# "<instance type> for <use> usage", e.g. "ml.m5.large for endpoint usage"
SAGEMAKER_QUOTA_NAMES = {
    "endpoint": "{} for endpoint usage",
    "processing": "{} for processing job usage",
}

_UNITS = {"ec2": "vCPUs", "sagemaker": "instances"}


def ec2_quota(family: str, purchase: str) -> Ec2VcpuQuota | None:
    """The vCPU quota of an instance family (``g5``, ``p4d``, ``m6i``) bought on-demand or
    spot; None when no quota covers it (Mac; HPC on spot; a class the table lacks).

    The family's class is its longest all-letter prefix in the table (``hpc`` before ``h``,
    ``inf`` before ``i``); within the class, the longest prefix of the purchase option's rows
    wins (spot ``p5`` before ``p``)."""
    letters = [p for q in EC2_VCPU_QUOTAS for p in q.families if p.isalpha()]
    classes = [p for p in (*letters, *_NO_VCPU_QUOTA) if family.startswith(p)]
    if not classes:
        return None
    key = max(classes, key=len)
    if key in _NO_VCPU_QUOTA:
        return None
    candidates = [(len(p), q) for q in EC2_VCPU_QUOTAS if q.purchase == purchase
                  for p in q.families if p.startswith(key) and family.startswith(p)]
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def _category_quotas(category: str, purchase: str) -> list[Ec2VcpuQuota]:
    """The vCPU quotas of a Karpenter instance category (``g``, ``p``): the letters before
    the generation, so category ``p`` spans the P4/P3/P2 and the P5 spot quotas."""
    quotas = [q for q in EC2_VCPU_QUOTAS if q.purchase == purchase and any(
        p == category or (p.startswith(category) and p[len(category):].isdigit())
        for p in q.families)]
    if quotas:
        return quotas
    fallback = ec2_quota(category, purchase)
    return [fallback] if fallback else []


def request_command(region: str, service: str, code: str, value: float) -> str:
    """The AWS CLI command that asks for quota `code` to be raised to `value`."""
    return (f"aws service-quotas request-service-quota-increase --region {region} "
            f"--service-code {service} --quota-code {code} --desired-value {_number(value)}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# ----------------------------------------------------------------------------- needs

@dataclass(frozen=True)
class Need:
    """What one resource asks of one quota."""

    service: str  # Service Quotas service code: "ec2" | "sagemaker"
    #: how the quota is found: its code (ec2) or its exact name (sagemaker, per instance type)
    quota: str
    name: str
    resource: str
    #: units (vCPUs, instances) a deploy launches right away
    deploy: int
    #: units at full scale (maximum sizes, autoscaling maxima)
    full_scale: int
    basis: str

    @property
    def unit(self) -> str:
        return _UNITS[self.service]


@dataclass(frozen=True)
class StackNeeds:
    """Everything a stack asks of quotas, and what could not be counted (with why)."""

    needs: tuple[Need, ...]
    notes: tuple[str, ...] = ()


def _plain(value: Any, path: str, default: Any = None) -> Any:
    """``value["a"]["b"]`` for ``"a.b"``; `default` when a step is missing or unknown."""
    for step in path.split("."):
        if not isinstance(value, Mapping) or value.get(step) is None:
            return default
        value = value[step]
    return value


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _cpu_quantity(value: Any) -> float | None:
    """A Kubernetes CPU quantity (``64``, ``"64"``, ``"64000m"``, ``"1k"``) in cores."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(m|k)?\s*", str(value)) if value is not None \
        else None
    if not match:
        return None
    number = float(match[1])
    return number / 1000 if match[2] == "m" else number * 1000 if match[2] == "k" else number


def _vcpu_needs(name: str, kind: str, types: list[str], purchase: str, deploy: int,
                full_scale: int, sizes: str, notes: list[str]) -> list[Need]:
    """Needs of `deploy` / `full_scale` instances of any of `types`, per vCPU quota: the
    largest type of each quota counts, as any of them may be launched."""
    from .stacks.instances import EC2_INSTANCES, instance_family

    largest: dict[str, tuple[Ec2VcpuQuota, str, int]] = {}
    for instance_type in types:
        info = EC2_INSTANCES.get(instance_type)
        if info is None:
            notes.append(f"{kind} {name}: vCPUs of instance type {instance_type!r} are unknown "
                         "(add it to mlscaffold.stacks.instances); its quota is not checked")
            continue
        quota = ec2_quota(instance_family(instance_type), purchase)
        if quota is None:
            notes.append(f"{kind} {name}: no {purchase} vCPU quota covers {instance_type!r}; "
                         "not checked")
            continue
        if quota.code not in largest or info.vcpus > largest[quota.code][2]:
            largest[quota.code] = (quota, instance_type, info.vcpus)
    needs = []
    for quota, instance_type, vcpus in largest.values():
        others = [t for t in types if t != instance_type and t in EC2_INSTANCES]
        choice = f", the largest of {', '.join([instance_type, *others])}" if others else ""
        needs.append(Need("ec2", quota.code, quota.name, name, deploy * vcpus,
                          full_scale * vcpus,
                          f"{kind} {name}: {deploy} x {instance_type} ({vcpus} vCPUs{choice}) "
                          f"{purchase}{sizes}"))
    return needs


def _node_group(resource: Any, notes: list[str]) -> list[Need]:
    props = resource.inputs
    types = [t for t in props.get("instanceTypes") or [] if isinstance(t, str)]
    if not types:
        notes.append(f"node group {resource.name}: instanceTypes unknown before deployment; "
                     "its quota is not checked")
        return []
    purchase = "spot" if props.get("capacityType") == "SPOT" else "on-demand"
    scaling = props.get("scalingConfig") or {}
    deploy = max(_count(scaling.get("minSize")), _count(scaling.get("desiredSize")))
    full_scale = max(_count(scaling.get("maxSize")), deploy)
    return _vcpu_needs(resource.name, "node group", types, purchase, deploy, full_scale,
                       f" (minimum/desired size), {full_scale} at full scale (maximum size)",
                       notes)


def _requirement(requirements: Any, key: str) -> list[str] | None:
    """The values of an ``In`` requirement on `key`; None when the NodePool has none."""
    values = [v for r in requirements if isinstance(r, Mapping) and r.get("key") == key
              and r.get("operator") == "In" for v in r.get("values") or []]
    return [str(v) for v in values] if values else None


def _node_pool(resource: Any, notes: list[str]) -> list[Need]:
    """A Karpenter NodePool scales from zero up to its ``limits.cpu``, on any instance of the
    families (types, categories) its requirements allow."""
    from .stacks.instances import instance_family

    name = resource.name
    spec = resource.inputs.get("spec") or {}
    requirements = _plain(spec, "template.spec.requirements", [])
    families = _requirement(requirements, INSTANCE_FAMILY) or []
    families += [instance_family(t) for t in
                 _requirement(requirements, INSTANCE_TYPE) or []]
    categories = _requirement(requirements, "karpenter.k8s.aws/instance-category") or []
    if not families and not categories:
        notes.append(f"Karpenter NodePool {name}: its requirements do not restrict instance "
                     "families (instance-family, instance-type or instance-category), so any "
                     "quota may be used; not checked")
        return []
    cpu = _cpu_quantity(_plain(spec, "limits.cpu"))
    if cpu is None:
        notes.append(f"Karpenter NodePool {name}: no limits.cpu, so its full scale has no "
                     "bound; not checked (set spec.limits.cpu)")
        return []
    capacity = _requirement(requirements, CAPACITY_TYPE)
    purchases = [p for p in ("on-demand", "spot") if capacity is None or p in capacity]
    if capacity is None:
        notes.append(f"Karpenter NodePool {name}: karpenter.sh/capacity-type is not restricted; "
                     "counted against both the on-demand and the spot quotas")
    vcpus = math.ceil(cpu)  # whole vCPUs
    needs: list[Need] = []
    for purchase in purchases:
        quotas: dict[str, tuple[Ec2VcpuQuota, list[str]]] = {}
        for family in families:
            quota = ec2_quota(family, purchase)
            if quota is None:
                notes.append(f"Karpenter NodePool {name}: no {purchase} vCPU quota covers "
                             f"family {family!r}; not checked")
                continue
            quotas.setdefault(quota.code, (quota, []))[1].append(family)
        for category in categories:
            found = _category_quotas(category, purchase)
            if not found:
                notes.append(f"Karpenter NodePool {name}: no {purchase} vCPU quota covers "
                             f"category {category!r}; not checked")
            for quota in found:
                quotas.setdefault(quota.code, (quota, []))[1].append(f"{category}*")
        for quota, covered in quotas.values():
            needs.append(Need("ec2", quota.code, quota.name, name, 0, vcpus,
                              f"Karpenter NodePool {name}: starts at zero; full scale "
                              f"limits.cpu {_number(cpu)} vCPUs of {', '.join(covered)} "
                              f"{purchase}"))
    return needs


def _instance(resource: Any, notes: list[str]) -> list[Need]:
    instance_type = resource.inputs.get("instanceType")
    if not isinstance(instance_type, str):
        notes.append(f"instance {resource.name}: instanceType unknown before deployment; its "
                     "quota is not checked")
        return []
    market = _plain(resource.inputs, "instanceMarketOptions.marketType")
    purchase = "spot" if market == "spot" else "on-demand"
    return _vcpu_needs(resource.name, "instance", [instance_type], purchase, 1, 1, "", notes)


def _sagemaker_need(use: str, instance_type: str, resource: str, deploy: int, full_scale: int,
                    basis: str) -> Need:
    name = SAGEMAKER_QUOTA_NAMES[use].format(instance_type)
    return Need("sagemaker", name, name, resource, deploy, full_scale, basis)


def _processing_jobs(resources: list[Any]) -> Iterator[Need]:
    """Model Monitor job definitions (and schedules with an inline job): the instances one
    scheduled run takes."""
    from .policies.cost.estimate import JOB_DEFINITIONS, MONITORING_SCHEDULE

    for resource in resources:
        if resource.type in JOB_DEFINITIONS:
            cluster = _plain(resource.inputs, "jobResources.clusterConfig")
        elif resource.type == MONITORING_SCHEDULE:
            cluster = _plain(resource.inputs, "monitoringScheduleConfig.monitoringJobDefinition."
                                              "monitoringResources.clusterConfig")
        else:
            continue
        instance_type = _plain(cluster, "instanceType")
        if not isinstance(instance_type, str):
            continue
        count = max(_count(_plain(cluster, "instanceCount")), 1)
        yield _sagemaker_need(
            "processing", instance_type, resource.name, count, count,
            f"Model Monitor job {resource.name}: {count} x {instance_type} per scheduled run")


def _replicas(placed: Any) -> str:
    """How a predictor's replicas are counted: a KServe Serverless canary's new revision
    starts its minimum beside the previous revision's, which keeps serving."""
    if placed.canary:
        return (f"minReplicas {placed.replicas // 2} x 2 revisions (a canary and the one "
                "before it)")
    return f"minReplicas {placed.replicas}"


def _predictors(resources: list[Any], notes: list[str]) -> list[Need]:
    """The GPU nodes KServe predictors keep up from the first deploy: the in-cluster program's
    ``pulumi up`` waits until the InferenceService is Ready (``pulumi.com/waitFor``), which
    takes ``minReplicas`` running replicas, so their nodes are a deploy need. Where they land
    (type, count, purchase option) is the cost estimator's reckoning, the one source; the
    pool's own need already counts them at full scale (its limits or maximum size)."""
    from .policies.cost.estimate import predictor_nodes
    from .stacks.instances import EC2_INSTANCES, instance_family

    needs = []
    for placed in predictor_nodes(resources, canary_peak=True):
        where = f"{placed.pool_kind} {placed.pool}"
        info = EC2_INSTANCES.get(placed.instance_type)
        quota = ec2_quota(instance_family(placed.instance_type), placed.purchase)
        if info is None or quota is None:
            notes.append(f"InferenceService {placed.service}: no {placed.purchase} vCPU quota "
                         f"known for {placed.instance_type!r} of {where}; not checked")
            continue
        # Karpenter docs, "Scheduling", Capacity Type: with spot and on-demand allowed it
        # prefers spot and launches on-demand when spot is unavailable; on-demand is counted,
        # as the estimator prices it, being what a deploy falls back on
        mixed = " (the pool allows spot too; on-demand is the fallback)" if placed.mixed else ""
        beyond = f" beyond its desired size {placed.baseline}" \
            if placed.pool_kind == "node group" else ""
        needs.append(Need("ec2", quota.code, quota.name, placed.service,
                          placed.nodes * info.vcpus, 0,
                          f"InferenceService {placed.service}: {_replicas(placed)} x "
                          f"{placed.gpus} GPU keep {placed.nodes} x {placed.instance_type} "
                          f"({info.vcpus} vCPUs) {placed.purchase}{mixed} of {where} "
                          f"up{beyond}; pulumi up waits until it is Ready"))
    return needs


def needs_of(graph: Any) -> StackNeeds:
    """What the stack of `graph` (a mocked ``ResourceGraph``) asks of each quota."""
    from .policies.cost.estimate import NODE_GROUP, graph_resources, sagemaker_variants

    custom = [r for r in graph.resources if r.custom]
    notes: list[str] = []
    needs: list[Need] = []
    for resource in custom:
        if resource.type == NODE_GROUP:
            needs += _node_group(resource, notes)
        elif resource.type == NODE_POOL:
            needs += _node_pool(resource, notes)
        elif resource.type == EC2_INSTANCE:
            needs += _instance(resource, notes)
    # blue/green updates (SageMaker's default for endpoint updates) provision the new fleet
    # while the old one keeps serving: AWS docs, BlueGreenUpdatePolicy, "SageMaker creates a
    # new fleet during the deployment while maintaining the old fleet"
    for config, variant, instance_type, initial, maximum in sagemaker_variants(
            graph_resources(graph)):
        needs.append(_sagemaker_need(
            "endpoint", instance_type, config[1], 2 * initial, 2 * maximum,
            f"endpoint configuration {config[1]} variant {variant}: {initial} x {instance_type},"
            f" x 2 while a blue/green update runs the new fleet beside the old; full scale "
            f"2 x {maximum} (autoscaling maximum)"))
    needs += _processing_jobs(custom)
    needs += _predictors(graph_resources(graph), notes)
    return StackNeeds(tuple(needs), tuple(dict.fromkeys(notes)))


# ----------------------------------------------------------------------------- quotas

@dataclass(frozen=True)
class QuotaValue:
    """A quota as the account has it in one region."""

    service: str
    code: str
    name: str
    value: float
    adjustable: bool = True
    #: True when the value is AWS's default (the quota was never adjusted in this account)
    default: bool = False


def read_quotas(client: Any, service: str, wanted: Collection[str]) -> dict[str, QuotaValue]:
    """The quotas of `service` named in `wanted` (codes or exact names), read through a boto3
    ``service-quotas`` client: ``{wanted key: QuotaValue}``; keys with no such quota are left
    out.

    ListServiceQuotas returns applied values only ("If the applied quota value is not
    available for a quota, the quota is not retrieved", API reference; aws/aws-cli#4569), so
    what it lacks is read from ListAWSDefaultServiceQuotas. Each listing is paginated and
    stops once everything wanted is found: one pass per service and region.
    """
    missing = set(wanted)
    found: dict[str, QuotaValue] = {}
    for operation, default in (("list_service_quotas", False),
                               ("list_aws_default_service_quotas", True)):
        if not missing:
            break
        pages = client.get_paginator(operation).paginate(
            ServiceCode=service, PaginationConfig={"PageSize": 100})
        for page in pages:
            for quota in page.get("Quotas", []):
                for key in (quota.get("QuotaCode"), quota.get("QuotaName")):
                    if key in missing and isinstance(quota.get("Value"), int | float):
                        found[key] = QuotaValue(service, str(quota.get("QuotaCode")),
                                                str(quota.get("QuotaName")),
                                                float(quota["Value"]),
                                                bool(quota.get("Adjustable", True)), default)
                        missing.discard(key)
            if not missing:
                break
    return found


# ----------------------------------------------------------------------------- compare

@dataclass(frozen=True)
class QuotaCheck:
    """One quota of a stack: what the stack needs of it, what the account has, the verdict."""

    service: str
    code: str | None
    name: str
    unit: str
    deploy: int
    full_scale: int
    quota: float | None
    status: str
    region: str
    basis: tuple[str, ...]
    adjustable: bool = True
    #: the value is AWS's default (never adjusted in this account)
    default: bool = False

    @property
    def request(self) -> str | None:
        """The command that raises the quota to what the stack needs at full scale."""
        if self.status not in (SHORT, SHORT_AT_FULL_SCALE) or not self.code or \
                not self.adjustable:
            return None
        return request_command(self.region, self.service, self.code, self.full_scale)

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "code": self.code, "name": self.name,
                "unit": self.unit, "needed_to_deploy": self.deploy,
                "needed_at_full_scale": self.full_scale, "quota": self.quota,
                "quota_is_aws_default": self.default, "adjustable": self.adjustable,
                "status": self.status, "basis": list(self.basis), "request": self.request}


def compare(needs: Iterable[Need], quotas: Mapping[tuple[str, str], QuotaValue],
            region: str) -> list[QuotaCheck]:
    """Sum the needs per quota and check each against `quotas` ({(service, key): value})."""
    totals: dict[tuple[str, str], list[Need]] = {}
    for need in needs:
        totals.setdefault((need.service, need.quota), []).append(need)
    checks = []
    for (service, key), group in totals.items():
        deploy = sum(n.deploy for n in group)
        full_scale = max(sum(n.full_scale for n in group), deploy)
        value = quotas.get((service, key))
        basis = tuple(n.basis for n in group)
        if value is None:
            checks.append(QuotaCheck(service, key if service == "ec2" else None, group[0].name,
                                     group[0].unit, deploy, full_scale, None, NOT_FOUND,
                                     region, basis))
            continue
        status = SHORT if value.value < deploy else \
            SHORT_AT_FULL_SCALE if value.value < full_scale else OK
        checks.append(QuotaCheck(service, value.code, value.name, group[0].unit, deploy,
                                 full_scale, value.value, status, region, basis,
                                 value.adjustable, value.default))
    return sorted(checks, key=lambda c: (c.service, c.name))


# ----------------------------------------------------------------------------- a project

@dataclass(frozen=True)
class StackPreflight:
    """A stack's quota checks in its region, and what could not be checked."""

    stack: str
    region: str
    checks: tuple[QuotaCheck, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def short(self) -> list[QuotaCheck]:
        """Quotas below what a deploy launches right away: the deploy would fail."""
        return [c for c in self.checks if c.status == SHORT]

    @property
    def warnings(self) -> list[QuotaCheck]:
        """Quotas that cover a deploy but not full scale, or that the region lacks."""
        return [c for c in self.checks if c.status in (SHORT_AT_FULL_SCALE, NOT_FOUND)]

    def passed(self, strict: bool = False) -> bool:
        return not self.short and not (strict and self.warnings)

    def as_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "region": self.region,
                "quotas": [c.as_dict() for c in self.checks], "notes": list(self.notes)}


def quota_client(region: str) -> Any:
    """A boto3 ``service-quotas`` client for `region`, with the default credential chain."""
    from .aws import aws_client

    return aws_client("service-quotas", region)


_PERMISSIONS = ("servicequotas:ListServiceQuotas and servicequotas:ListAWSDefaultServiceQuotas "
                "(docs/deploy.md, Quotas)")


def preflight_project(project: InfraProject | Path, stack: str | None = None, *,
                      client_for: Callable[[str], Any] | None = None) -> list[StackPreflight]:
    """Check the quotas every requested stack of `project` needs, in the stack's region.

    Each stack runs offline first (under mocks) to learn what it launches; then the quotas are
    read with `client_for(region)` (default :func:`quota_client`), once per service and region
    for all the stacks together.
    """
    from .checks import resolve_stacks
    from .infra import infra_project, preview_stack, stack_config

    opened = infra_project(project)
    spec = opened.spec
    planned: list[tuple[str, str, StackNeeds]] = []
    for environment in resolve_stacks(spec, stack):
        region = stack_config(opened.root, spec, environment).get("aws:region", spec.region)
        planned.append((environment, region, needs_of(preview_stack(opened, environment))))
    wanted: dict[tuple[str, str], set[str]] = {}
    for _, region, stack_needs in planned:
        for need in stack_needs.needs:
            wanted.setdefault((region, need.service), set()).add(need.quota)
    factory = client_for or quota_client
    clients: dict[str, Any] = {}
    values: dict[str, dict[tuple[str, str], QuotaValue]] = {}
    for (region, service), keys in sorted(wanted.items()):
        with aws_errors(f"read the service quotas of {region}", _PERMISSIONS):
            if region not in clients:
                clients[region] = factory(region)
            read = read_quotas(clients[region], service, keys)
        values.setdefault(region, {}).update({(service, k): v for k, v in read.items()})
    return [StackPreflight(environment, region,
                           tuple(compare(stack_needs.needs, values.get(region, {}), region)),
                           stack_needs.notes)
            for environment, region, stack_needs in planned]
