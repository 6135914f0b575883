"""Reading Karpenter NodePools (``kubernetes:karpenter.sh/v1:NodePool``) in rules and the
estimator: everything sits under ``spec`` (Karpenter's v1 API). A NodePool's nodes carry its
``template.metadata.labels`` and ``template.spec.taints``; its ``template.spec.requirements``
decide which instances it launches; ``limits`` bounds the capacity of all its nodes together;
it has no minimum (only a static pool, ``replicas``, keeps nodes running).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlscaffold.stacks.constants import (
    CAPACITY_TYPE,
    GPU_NODE_SELECTOR,
    GPU_TAINT,
    INSTANCE_FAMILY,
    INSTANCE_SIZE,
    INSTANCE_TYPE,
)
from mlscaffold.stacks.instances import (
    EC2_INSTANCES,
    GPU_FAMILY,
    family_types,
    gpu_count,
    instance_family,
)

from .props import as_mapping, items_of, number

__all__ = ["REQUIREMENTS", "capacity_types", "cpu_quantity", "in_values",
           "instance_types", "is_gpu_pool", "limit", "pool_name", "requirements",
           "template_labels", "template_taints"]

REQUIREMENTS = "spec.template.spec.requirements"
# what Karpenter launches when a NodePool does not restrict the capacity type (Karpenter docs,
# "NodePools": the default requirements)
_DEFAULT_CAPACITY = ("on-demand",)
_GPU_KEYS = ("karpenter.k8s.aws/instance-gpu-count", "karpenter.k8s.aws/instance-gpu-name",
             "karpenter.k8s.aws/instance-gpu-manufacturer")


def _spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_mapping(props.get("spec"))


def _template(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_mapping(_spec(props).get("template"))


def pool_name(name: str, props: Mapping[str, Any]) -> str:
    """The NodePool's Kubernetes name (``metadata.name``), else its resource name."""
    value = as_mapping(props.get("metadata")).get("name")
    return value if isinstance(value, str) and value else name


def requirements(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [as_mapping(r) for r in items_of(as_mapping(_template(props).get("spec")).get(
        "requirements"))]


def in_values(props: Mapping[str, Any], key: str) -> tuple[int, list[str]] | None:
    """(index, values) of the first ``In`` requirement on `key`; None when there is none."""
    for index, requirement in enumerate(requirements(props)):
        if requirement.get("key") == key and requirement.get("operator") == "In":
            return index, [str(v) for v in items_of(requirement.get("values"))]
    return None


def template_labels(props: Mapping[str, Any]) -> dict[str, str]:
    labels = as_mapping(as_mapping(_template(props).get("metadata")).get("labels"))
    return {str(k): str(v) for k, v in labels.items()}


def template_taints(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [as_mapping(t) for t in items_of(as_mapping(_template(props).get("spec")).get(
        "taints"))]


def capacity_types(props: Mapping[str, Any]) -> list[str]:
    found = in_values(props, CAPACITY_TYPE)
    return found[1] if found else list(_DEFAULT_CAPACITY)


def instance_types(props: Mapping[str, Any]) -> tuple[list[str], list[str]] | None:
    """(known types, unknown families) the NodePool may launch: its ``instance-type``
    requirement, else its ``instance-family`` one (narrowed by ``instance-size``), judged
    with mlscaffold's instance table. None when neither restricts them."""
    found = in_values(props, INSTANCE_TYPE)
    if found:
        known = [t for t in found[1] if t in EC2_INSTANCES]
        return known, sorted({instance_family(t) for t in found[1] if t not in EC2_INSTANCES})
    families = in_values(props, INSTANCE_FAMILY)
    if not families:
        return None
    sizes = in_values(props, INSTANCE_SIZE)
    known_families = {instance_family(t) for t in EC2_INSTANCES}
    return (family_types(families[1], sizes[1] if sizes else ()),
            [f for f in families[1] if f not in known_families])


def is_gpu_pool(props: Mapping[str, Any]) -> bool:
    """A NodePool of GPU nodes: the GPU taint or label, GPU instance types or families, or a
    requirement on GPUs."""
    labels = template_labels(props)
    types = instance_types(props)
    return (any(t.get("key") == GPU_TAINT["key"] for t in template_taints(props))
            or any(labels.get(k) == v for k, v in GPU_NODE_SELECTOR.items())
            or any(r.get("key") in _GPU_KEYS for r in requirements(props))
            or (types is not None and (any(gpu_count(t) for t in types[0])
                                       or any(GPU_FAMILY.match(f) for f in types[1]))))


def cpu_quantity(value: Any) -> float | None:
    """A CPU quantity (``16``, ``"16"``, ``"16000m"``) in cores; None when it is not one."""
    if isinstance(value, str) and value.endswith("m"):
        millis = number(value[:-1])
        return millis / 1000 if millis is not None else None
    return number(value)


def limit(props: Mapping[str, Any], resource: str) -> float | None:
    """The NodePool's ``limits`` of `resource` (``cpu``, ``nvidia.com/gpu``); None if unset."""
    value = as_mapping(_spec(props).get("limits")).get(resource)
    return cpu_quantity(value) if resource == "cpu" else number(value)
