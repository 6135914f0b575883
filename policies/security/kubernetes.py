"""Kubernetes workload security, and whether GPU workloads can be scheduled at all.

Workloads are Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and
KServe InferenceServices, whose ``predictor``, ``transformer`` and ``explainer`` are pod specs
(plus a ``model`` container run by a serving runtime). Every container, init containers
included, is checked. Helm releases are not: their ``values`` follow each chart's own layout.

``k8s-network-policy`` is a stack rule: a workload's pods are isolated both ways (selected by
NetworkPolicies of their namespace whose policyTypes include Ingress and Egress, none of which
admits everything), so that only the traffic a policy allows reaches or leaves them. Pod labels
are the pod template's; an InferenceService's pods carry its labels, their component's and the
two KServe adds (``serving.kserve.io/inferenceservice: <name>``, ``component: <component>``).

``gpu-workload-schedulable`` is a stack rule. A pod asking for ``nvidia.com/gpu`` only starts
on a GPU node: one of an EKS node group, or one Karpenter launches for a NodePool. Both carry
taints (EKS form ``NO_SCHEDULE``, Kubernetes ``NoSchedule`` in a NodePool) and labels, and a
pod that does not tolerate the taints, or selects labels no GPU node carries, stays Pending:
the autoscaler or Karpenter never adds a node for it. A GPU node group is one with GPU
instance types, an NVIDIA AMI, the GPU taint or the GPU label; its nodes carry its ``labels``
plus the well-known ones EKS sets (instance type, capacity type, arch, os, node group, zone).
A GPU NodePool is one with the GPU taint or label, or GPU instance families or types (see
:mod:`..nodepools`); its nodes carry its template's labels, the values its requirements allow
and Karpenter's well-known labels (NodePool, capacity type, instance type, zone). A pod's GPUs
come from the one node it runs on, so a pod asking for more than the largest instance type of
the groups it may run on has (or than a NodePool's ``nvidia.com/gpu`` limit) stays Pending too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from mlscaffold.stacks.constants import (
    CAPACITY_TYPE,
    GPU_NODE_SELECTOR,
    GPU_RESOURCE,
    GPU_TAINT,
    INFERENCE_SERVICE,
    INFERENCE_SERVICE_LABEL,
    KNATIVE_SERVING,
    NODE_POOL,
    TAINT_EFFECTS,
)
from mlscaffold.stacks.instances import EC2_INSTANCES, gpu_count, is_gpu

from ..nodepools import (
    instance_types,
    is_gpu_pool,
    pool_name,
    requirements,
    template_labels,
    template_taints,
)
from ..nodepools import limit as pool_limit
from ..props import as_mapping, is_true, items_of
from ..rule import Subject, rule, stack_rule, violation

__all__ = ["NETWORK_POLICY", "WORKLOAD_TYPES"]

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
_TEMPLATE = ("spec", "template", "spec")
#: workload type -> where its pod spec is
_POD_SPECS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": _TEMPLATE,
    "kubernetes:apps/v1:StatefulSet": _TEMPLATE,
    "kubernetes:apps/v1:DaemonSet": _TEMPLATE,
    "kubernetes:apps/v1:ReplicaSet": _TEMPLATE,
    "kubernetes:batch/v1:Job": _TEMPLATE,
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", *_TEMPLATE),
}
WORKLOAD_TYPES: tuple[str, ...] = (*_POD_SPECS, INFERENCE_SERVICE)
_KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")
# containers of a KServe component whose image the serving runtime may provide
_KSERVE_MODELS = ("model", "sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch",
                  "triton", "onnx", "huggingface", "pmml", "paddle")
# taint effects that keep pods without a toleration off a node
_BLOCKING = ("NoSchedule", "NoExecute")


@dataclass(frozen=True)
class _Pod:
    path: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class _Container:
    path: str
    props: Mapping[str, Any]
    pod: _Pod


def _pods(subject: Subject) -> list[_Pod]:
    """The pod specs of a workload, with their paths in its props."""
    if subject.type == INFERENCE_SERVICE:
        spec = as_mapping(subject.props.get("spec"))
        return [_Pod(f"spec.{name}", as_mapping(spec[name]))
                for name in _KSERVE_COMPONENTS if isinstance(spec.get(name), Mapping)]
    value: Any = subject.props
    for key in _POD_SPECS[subject.type]:
        value = as_mapping(value).get(key)
    return [_Pod(".".join(_POD_SPECS[subject.type]), value)] if isinstance(value, Mapping) else []


def _containers(pod: _Pod, kserve: bool) -> Iterator[_Container]:
    for key in ("initContainers", "containers"):
        for index, container in enumerate(items_of(pod.spec.get(key))):
            yield _Container(f"{pod.path}.{key}[{index}]", as_mapping(container), pod)
    for key in _KSERVE_MODELS if kserve else ():
        if isinstance(pod.spec.get(key), Mapping):
            yield _Container(f"{pod.path}.{key}", pod.spec[key], pod)


def _all_containers(subject: Subject) -> Iterator[_Container]:
    for pod in _pods(subject):
        yield from _containers(pod, subject.type == INFERENCE_SERVICE)


def _security(container: _Container) -> Mapping[str, Any]:
    return as_mapping(container.props.get("securityContext"))


# ------------------------------------------------------------------ workload rules


@rule("k8s-resource-limits", pack="security", severity="medium", resource_types=WORKLOAD_TYPES,
      description="Every container sets CPU and memory requests and limits, so that one "
                  "workload cannot starve its node.")
def k8s_resource_limits(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    for container in _all_containers(subject):
        resources = as_mapping(container.props.get("resources"))
        missing = [f"{kind}.{name}" for kind in ("requests", "limits")
                   for name in ("cpu", "memory")
                   if name not in list(as_mapping(resources.get(kind)))]
        if missing:
            yield violation(subject, f"{container.path}.resources", f"lacks {', '.join(missing)}",
                            "set requests and limits of both cpu and memory")


@rule("k8s-run-as-non-root", pack="security", severity="high", resource_types=WORKLOAD_TYPES,
      description="Every container runs as a non-root user (runAsNonRoot on the container or "
                  "its pod).")
def k8s_run_as_non_root(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    for container in _all_containers(subject):
        own = _security(container)
        pod = as_mapping(container.pod.spec.get("securityContext"))
        value = own["runAsNonRoot"] if "runAsNonRoot" in list(own) else pod.get("runAsNonRoot")
        if value is not True:
            yield violation(subject, f"{container.path}.securityContext.runAsNonRoot",
                            "is false" if value is False else
                            "is not set on the container or its pod",
                            f"set runAsNonRoot: true and a non-zero runAsUser in "
                            f"{container.path}.securityContext or {container.pod.path}"
                            ".securityContext")


@rule("k8s-no-privilege-escalation", pack="security", severity="high",
      resource_types=WORKLOAD_TYPES,
      description="Every container forbids privilege escalation (allowPrivilegeEscalation: "
                  "false).")
def k8s_no_privilege_escalation(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    for container in _all_containers(subject):
        if _security(container).get("allowPrivilegeEscalation") is not False:
            yield violation(subject,
                            f"{container.path}.securityContext.allowPrivilegeEscalation",
                            "is not false (setuid binaries can gain privileges)",
                            "set it to false")


@rule("k8s-read-only-root-filesystem", pack="security", severity="medium",
      resource_types=WORKLOAD_TYPES,
      description="Every container has a read-only root file system.")
def k8s_read_only_root_filesystem(subject: Subject, config: Mapping[str, Any]
                                  ) -> Iterator[str]:
    for container in _all_containers(subject):
        if _security(container).get("readOnlyRootFilesystem") is not True:
            yield violation(subject, f"{container.path}.securityContext.readOnlyRootFilesystem",
                            "is not true", "set it to true and mount an emptyDir volume where "
                            "the process writes (e.g. /tmp)")


def _image_problem(image: str, require_digest: bool) -> str | None:
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return f"'{image}' has no tag (it pulls :latest)"
    if name.rsplit(":", 1)[1] == "latest":
        return f"'{image}' uses the moving tag :latest"
    if require_digest:
        return f"'{image}' is not pinned by digest"
    return None


@rule("k8s-image-pinned", pack="security", severity="medium", resource_types=WORKLOAD_TYPES,
      description="Every container image is pinned to a release tag or a digest, never "
                  "untagged or :latest.",
      config={"require_digest": {
          "type": "boolean", "default": False,
          "description": "Require image@sha256:... digests, not tags."}})
def k8s_image_pinned(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    fix = ("pin a digest (image@sha256:...)" if config["require_digest"]
           else "pin a release tag (e.g. :1.4.2) or a digest (@sha256:...)")
    for container in _all_containers(subject):
        image = container.props.get("image")
        problem = _image_problem(str(image), config["require_digest"]) if image else None
        if problem:
            yield violation(subject, f"{container.path}.image", problem, fix)


@rule("k8s-no-default-namespace", pack="security", severity="low",
      resource_types=WORKLOAD_TYPES,
      description="Workloads live in their own namespace, not in default.")
def k8s_no_default_namespace(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    namespace = as_mapping(subject.props.get("metadata")).get("namespace")
    if not namespace or namespace == "default":
        yield violation(subject, "metadata.namespace",
                        "is default" if namespace else "is not set (the default namespace)",
                        "set it to the application's namespace (e.g. ml-serving)")


# ------------------------------------------------------------------ network isolation

_DIRECTIONS = (("Ingress", "ingress", "from"), ("Egress", "egress", "to"))
# labels KServe puts on the pods of an InferenceService's components (kserve pkg/constants)
_KSERVE_COMPONENT_LABEL = "component"
_EVERYWHERE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class _NetworkPolicy:
    name: str
    namespace: str
    selector: Mapping[str, Any]
    #: the directions it isolates the selected pods in (its policyTypes)
    isolates: frozenset[str]
    #: the directions in which one of its rules admits everything
    admits_all: frozenset[str]


def _admits_all(rule: Mapping[str, Any], peers_key: str) -> bool:
    """A rule without ports whose peers are missing (everything) or an ipBlock of every
    address without exceptions."""
    if items_of(rule.get("ports")):
        return False
    peers = [as_mapping(p) for p in items_of(rule.get(peers_key))]
    return not peers or any(
        str(as_mapping(p.get("ipBlock")).get("cidr")) in _EVERYWHERE
        and not items_of(as_mapping(p.get("ipBlock")).get("except")) for p in peers)


def _network_policies(subjects: Sequence[Subject]) -> list[_NetworkPolicy]:
    found = []
    for subject in subjects:
        if subject.type != NETWORK_POLICY:
            continue
        metadata, spec = as_mapping(subject.props.get("metadata")), \
            as_mapping(subject.props.get("spec"))
        types = {str(t) for t in items_of(spec.get("policyTypes"))}
        if not types:  # Kubernetes' default: Ingress, and Egress when there are egress rules
            types = {"Ingress"} | ({"Egress"} if "egress" in list(spec) else set())
        admits_all = {direction for direction, key, peers in _DIRECTIONS if direction in types
                      and any(_admits_all(as_mapping(r), peers) for r in items_of(spec.get(key)))}
        found.append(_NetworkPolicy(
            str(metadata.get("name") or subject.name), str(metadata.get("namespace") or "default"),
            as_mapping(spec.get("podSelector")), frozenset(types), frozenset(admits_all)))
    return found


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_mapping(value).items()}


def _pod_labels(subject: Subject) -> list[tuple[str, dict[str, str]]]:
    """(path of the pod spec, labels of its pods) for each pod template of a workload."""
    metadata = as_mapping(subject.props.get("metadata"))
    if subject.type == INFERENCE_SERVICE:
        spec = as_mapping(subject.props.get("spec"))
        return [(f"spec.{component}", {
            **_labels(metadata.get("labels")), **_labels(as_mapping(spec[component]).get("labels")),
            INFERENCE_SERVICE_LABEL: str(metadata.get("name") or subject.name),
            _KSERVE_COMPONENT_LABEL: component})
            for component in _KSERVE_COMPONENTS if isinstance(spec.get(component), Mapping)]
    path = _POD_SPECS[subject.type]
    if len(path) == 1:  # a Pod: its own labels
        return [("spec", _labels(metadata.get("labels")))]
    template: Any = subject.props
    for key in path[:-1]:  # down to the pod template
        template = as_mapping(template).get(key)
    return [(".".join(path), _labels(as_mapping(as_mapping(template).get("metadata")).get(
        "labels")))]


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions; empty: all) selects a pod."""
    if any(labels.get(str(k)) != str(v) for k, v in as_mapping(
            selector.get("matchLabels")).items()):
        return False
    for expression in map(as_mapping, items_of(selector.get("matchExpressions"))):
        key, operator = str(expression.get("key")), expression.get("operator")
        values = {str(v) for v in items_of(expression.get("values"))}
        held = {"In": key in labels and labels[key] in values,
                "NotIn": key not in labels or labels[key] not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}.get(str(operator))
        if not held:
            return False
    return True


@stack_rule("k8s-network-policy", pack="security", severity="medium",
            resource_types=[*WORKLOAD_TYPES, NETWORK_POLICY],
            description="Every namespace that runs workloads has NetworkPolicies that select "
                        "their pods and deny by default (policyTypes Ingress and Egress, no rule "
                        "admitting everything), so only the traffic a policy allows reaches or "
                        "leaves them.",
            config={"exempt_namespaces": {
                "type": "array", "items": {"type": "string"}, "default": [],
                "description": "Namespaces whose workloads need no NetworkPolicy."}})
def k8s_network_policy(subjects: Sequence[Subject], config: Mapping[str, Any]
                       ) -> Iterator[tuple[Subject, str]]:
    policies = _network_policies(subjects)
    for subject in subjects:
        if subject.type not in WORKLOAD_TYPES:
            continue
        namespace = str(as_mapping(subject.props.get("metadata")).get("namespace") or "default")
        if namespace in config["exempt_namespaces"]:
            continue
        fix = (f"add a NetworkPolicy to namespace {namespace} with podSelector {{}} and "
               "policyTypes [Ingress, Egress] (deny by default), and policies allowing only the "
               "traffic these pods need")
        for path, labels in _pod_labels(subject):
            selecting = [p for p in policies
                         if p.namespace == namespace and _selects(p.selector, labels)]
            if not selecting:
                yield subject, violation(
                    subject, "metadata.namespace",
                    f"'{namespace}' has no NetworkPolicy selecting the pods of {path} (all "
                    "their ingress and egress is allowed)", fix)
                continue
            isolated = frozenset().union(*(p.isolates for p in selecting))
            missing = [d for d, _, _ in _DIRECTIONS if d not in isolated]
            if missing:
                yield subject, violation(
                    subject, "metadata.namespace",
                    f"'{namespace}' has no NetworkPolicy isolating {' or '.join(missing)} for "
                    f"the pods of {path} (all their {' and '.join(missing).lower()} is allowed)",
                    fix)
            for policy in selecting:
                for direction in sorted(policy.admits_all):
                    yield subject, violation(
                        subject, "metadata.namespace",
                        f"'{namespace}' has NetworkPolicy '{policy.name}', which admits all "
                        f"{direction.lower()} of the pods of {path}",
                        f"replace its {direction.lower()} rule that allows everything with "
                        "the peers and ports these pods need")


# ------------------------------------------------------------------ GPU schedulability


# labels EKS puts on every node whatever its group: a node selector may use them
_ANY_VALUE = ("kubernetes.io/hostname", "topology.kubernetes.io/zone",
              "topology.kubernetes.io/region", "eks.amazonaws.com/nodegroup-image",
              "eks.amazonaws.com/sourceLaunchTemplateId",
              "eks.amazonaws.com/sourceLaunchTemplateVersion")
#: label -> the values a group's nodes may carry (None: any value)
_NodeLabels = Mapping[str, frozenset[str] | None]


@dataclass(frozen=True)
class _NodeGroup:
    name: str
    #: the group's own labels (what a fix names)
    labels: dict[str, str]
    #: those plus the labels EKS and the kubelet add to its nodes
    node_labels: _NodeLabels
    #: (key, value, Kubernetes effect) of the taints that keep pods off
    taints: tuple[tuple[str, str, str], ...]
    #: what the messages call it: "node group" (EKS) or "NodePool" (Karpenter)
    kind: str = "node group"
    #: the instance type of its nodes with the most GPUs, when every type is known
    largest: str | None = None
    #: a NodePool's nvidia.com/gpu limit: Karpenter launches no node past it
    gpu_limit: float | None = None

    def gpus_short_of(self, gpus: float) -> tuple[str, str] | None:
        """(why, fix) when a pod asking for `gpus` GPUs finds no node here; None when one may
        fit (or the group's nodes are not known)."""
        if self.largest is not None and gpus > gpu_count(self.largest):
            most = gpu_count(self.largest)
            return (f"the largest node of GPU {self.kind} '{self.name}' ({self.largest}) has "
                    f"{most}", f"ask for {most} or fewer, or give {self.kind} '{self.name}' an "
                    f"instance type with {gpus:g} GPUs or more")
        if self.gpu_limit is not None and gpus > self.gpu_limit:
            return (f"GPU NodePool '{self.name}' limits {GPU_RESOURCE} to {self.gpu_limit:g}",
                    f"ask for {self.gpu_limit:g} or fewer, or raise the NodePool's "
                    f"limits.{GPU_RESOURCE}")
        return None


def _is_gpu_group(props: Mapping[str, Any]) -> bool:
    ami = str(props.get("amiType") or "")
    labels = as_mapping(props.get("labels"))
    return (any(is_gpu(str(t)) for t in items_of(props.get("instanceTypes")))
            or "NVIDIA" in ami or ami.endswith("_GPU")
            or any(as_mapping(t).get("key") == GPU_TAINT["key"]
                   for t in items_of(props.get("taints")))
            or any(labels.get(k) == v for k, v in GPU_NODE_SELECTOR.items()))


def _node_labels(props: Mapping[str, Any], own: Mapping[str, str]) -> _NodeLabels:
    """The group's labels and the well-known ones of its nodes (EKS managed node groups)."""
    ami = str(props.get("amiType") or "")
    types = frozenset(str(t) for t in items_of(props.get("instanceTypes"))) or None
    try:
        name = props.get("nodeGroupName")
    except UnknownValueError:  # named by the provider
        name = None
    labels: dict[str, frozenset[str] | None] = {key: None for key in _ANY_VALUE}
    labels.update({
        "eks.amazonaws.com/nodegroup": frozenset({str(name)}) if name else None,
        "eks.amazonaws.com/capacityType": frozenset({str(props.get("capacityType")
                                                         or "ON_DEMAND")}),
        "node.kubernetes.io/instance-type": types,
        "beta.kubernetes.io/instance-type": types,
        "kubernetes.io/os": frozenset({"windows" if ami.startswith("WINDOWS") else "linux"}),
        "kubernetes.io/arch": frozenset({"arm64" if "ARM" in ami else "amd64"}) if ami else None,
    })
    labels.update({key: frozenset({value}) for key, value in own.items()})
    return labels


def _blocking(taints: Sequence[Any]) -> tuple[tuple[str, str, str], ...]:
    found = []
    for taint in map(as_mapping, taints):
        effect = TAINT_EFFECTS.get(str(taint.get("effect")), str(taint.get("effect")))
        if effect in _BLOCKING:
            found.append((str(taint.get("key")), str(taint.get("value") or ""), effect))
    return tuple(found)


# labels of every node Karpenter launches, whatever its NodePool
_KARPENTER_ANY = ("kubernetes.io/hostname", "topology.kubernetes.io/zone",
                  "topology.kubernetes.io/region", "node.kubernetes.io/instance-type",
                  "beta.kubernetes.io/instance-type")
# Karpenter's default requirements when a NodePool sets none (Karpenter docs, "NodePools")
_KARPENTER_DEFAULTS = {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       CAPACITY_TYPE: "on-demand"}


def _pool_node_labels(name: str, props: Mapping[str, Any], own: Mapping[str, str]
                      ) -> _NodeLabels:
    """The labels a node of the NodePool may carry: Karpenter's well-known ones, the values
    its requirements allow (any value unless ``In``), its template's labels."""
    labels: dict[str, frozenset[str] | None] = {key: None for key in _KARPENTER_ANY}
    labels.update({key: frozenset({value}) for key, value in _KARPENTER_DEFAULTS.items()})
    labels["karpenter.sh/nodepool"] = frozenset({name})
    for requirement in requirements(props):
        key, operator = str(requirement.get("key")), requirement.get("operator")
        if operator == "DoesNotExist":
            labels.pop(key, None)
        elif operator == "In":
            labels[key] = frozenset(str(v) for v in items_of(requirement.get("values")))
        else:
            labels[key] = None
    labels.update({key: frozenset({value}) for key, value in own.items()})
    return labels


def _gpu_node_groups(subjects: Sequence[Subject]) -> list[_NodeGroup]:
    """The stack's GPU capacity: GPU node groups and GPU NodePools."""
    groups = []
    for subject in subjects:
        if subject.type == NODE_GROUP and _is_gpu_group(subject.props):
            labels = {str(k): str(v)
                      for k, v in as_mapping(subject.props.get("labels")).items()}
            types = [str(t) for t in items_of(subject.props.get("instanceTypes"))]
            groups.append(_NodeGroup(subject.name, labels, _node_labels(subject.props, labels),
                                     _blocking(items_of(subject.props.get("taints"))),
                                     largest=_largest(types, unknown=False)))
        elif subject.type == NODE_POOL and is_gpu_pool(subject.props):
            name = pool_name(subject.name, subject.props)
            labels = template_labels(subject.props)
            types = instance_types(subject.props)  # None: any type; [1]: unknown families
            groups.append(_NodeGroup(name, labels, _pool_node_labels(name, subject.props, labels),
                                     _blocking(template_taints(subject.props)), "NodePool",
                                     _largest(types[0], bool(types[1])) if types else None,
                                     pool_limit(subject.props, GPU_RESOURCE)))
    return sorted(groups, key=lambda g: (g.name, g.kind))


def _largest(types: Sequence[str], unknown: bool) -> str | None:
    """The type with the most GPUs, when every type is in mlscaffold's table (else None: a
    type it does not know may have more)."""
    if unknown or not types or any(t not in EC2_INSTANCES for t in types):
        return None
    return max(types, key=gpu_count)


def _gpu_quantity(container: _Container) -> float | None:
    """The nvidia.com/gpu a container asks for (its limit, else its request): None when it asks
    for none, NaN when the quantity does not read as a number."""
    resources = as_mapping(container.props.get("resources"))
    for kind in ("limits", "requests"):
        value = as_mapping(resources.get(kind)).get(GPU_RESOURCE)
        if value is not None:
            try:
                return float(str(value))
            except ValueError:
                return math.nan
    return None


def _gpus(container: _Container) -> float:
    """The GPUs a container asks for, as a count (0 when none or unreadable)."""
    quantity = _gpu_quantity(container)
    return 0.0 if quantity is None or math.isnan(quantity) else max(quantity, 0.0)


def _pod_gpus(pod: _Pod, kserve: bool) -> float:
    """The GPUs a pod needs on one node: its containers' together, or its largest init
    container's, which run one at a time before them (Kubernetes docs, "Init Containers":
    resource sharing within containers)."""
    initial, running = 0.0, 0.0
    for container in _containers(pod, kserve):
        if ".initContainers[" in container.path:
            initial = max(initial, _gpus(container))
        else:
            running += _gpus(container)
    return max(initial, running)


def _requests_gpu(container: _Container) -> bool:
    """Whether a container asks for GPUs (an unreadable quantity counts as asking)."""
    quantity = _gpu_quantity(container)
    return quantity is not None and (math.isnan(quantity) or quantity > 0)


def _tolerates(toleration: Mapping[str, Any], taint: tuple[str, str, str]) -> bool:
    key, value, effect = taint
    if toleration.get("effect") and toleration["effect"] != effect:
        return False
    if (toleration.get("operator") or "Equal") == "Exists":
        return (toleration.get("key") or "") in ("", key)
    return toleration.get("key") == key and str(toleration.get("value") or "") == value


def _untolerated(pod: _Pod, group: _NodeGroup) -> list[tuple[str, str, str]]:
    tolerations = [as_mapping(t) for t in items_of(pod.spec.get("tolerations"))]
    return [taint for taint in group.taints
            if not any(_tolerates(t, taint) for t in tolerations)]


def _carries(labels: _NodeLabels, key: str, value: str) -> bool:
    if key not in labels:
        return False
    values = labels[key]
    return values is None or value in values


def _expression_holds(expression: Mapping[str, Any], labels: _NodeLabels) -> bool:
    """Whether some node of a group with `labels` satisfies a node selector requirement."""
    key, operator = str(expression.get("key")), expression.get("operator")
    values = [str(v) for v in items_of(expression.get("values"))]
    if operator in ("Exists", "DoesNotExist"):
        return (key in labels) == (operator == "Exists")
    if operator == "NotIn":
        return key not in labels or labels[key] is None or bool(labels[key] - set(values))
    if operator == "In":
        return any(_carries(labels, key, value) for value in values)
    try:  # Gt, Lt: compared as integers
        bound = int(values[0])
        numbers = [int(v) for v in labels[key] or ()]
    except (KeyError, IndexError, ValueError):
        return False
    if labels[key] is None:
        return True
    return any(n > bound if operator == "Gt" else n < bound for n in numbers)


def _required_terms(pod: _Pod) -> list[Mapping[str, Any]]:
    affinity = as_mapping(as_mapping(pod.spec.get("affinity")).get("nodeAffinity"))
    required = as_mapping(affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))
    return [as_mapping(t) for t in items_of(required.get("nodeSelectorTerms"))]


def _selection_problem(pod: _Pod, group: _NodeGroup) -> str | None:
    """Why the pod's node selection misses `group` (None when it selects it)."""
    selector = as_mapping(pod.spec.get("nodeSelector"))
    terms = _required_terms(pod)
    if not selector and not terms:
        return "unset"
    lacking = [f"{k}={v}" for k, v in selector.items()
               if not _carries(group.node_labels, str(k), str(v))]
    if lacking:
        return f"lacks {', '.join(lacking)}"
    if terms and not any(all(_expression_holds(as_mapping(e), group.node_labels)
                             for e in items_of(t.get("matchExpressions"))) for t in terms):
        return "affinity"
    return None


def _taint(taint: tuple[str, str, str]) -> str:
    key, value, effect = taint
    return f"{key}={value}:{effect}" if value else f"{key}:{effect}"


def _gpu_pods(subject: Subject) -> Iterator[tuple[_Pod, _Container]]:
    for pod in _pods(subject):
        gpu = [c for c in _containers(pod, subject.type == INFERENCE_SERVICE) if _requests_gpu(c)]
        if gpu:
            yield pod, gpu[0]


def _placement(subject: Subject, pod: _Pod, groups: list[_NodeGroup]) -> Iterator[str]:
    """Messages for a GPU pod that fits no GPU node group, against the nearest one."""
    problems = [(_untolerated(pod, g), _selection_problem(pod, g), g) for g in groups]
    placed = [g for taints, selection, g in problems if not taints and selection is None]
    if placed:  # on nodes it may run on: do they have the GPUs it asks for?
        gpus = _pod_gpus(pod, subject.type == INFERENCE_SERVICE)
        short = [g.gpus_short_of(gpus) for g in placed]
        if all(short):
            why, fix = short[0]
            yield violation(subject, pod.path, f"asks for {gpus:g} {GPU_RESOURCE} on one node, "
                            f"and {why} (the pod stays Pending)", fix)
        return
    taints, selection, group = min(problems, key=lambda p: len(p[0]) + (p[1] is not None))
    labels = json.dumps(dict(sorted(group.labels.items())))
    kind = group.kind
    if taints:
        yield violation(subject, f"{pod.path}.tolerations",
                        f"do not tolerate the taint {', '.join(map(_taint, taints))} of GPU "
                        f"{kind} '{group.name}' (the pod stays Pending)",
                        f"add toleration {', '.join(map(_taint, taints))}")
    fix = f"set nodeSelector to labels of {kind} '{group.name}': {labels}"
    if selection == "unset":
        yield violation(subject, f"{pod.path}.nodeSelector",
                        f"is not set (the pod is not pinned to a GPU {kind})", fix)
    elif selection == "affinity":
        yield violation(subject, f"{pod.path}.affinity.nodeAffinity",
                        f"requires labels no GPU {kind} carries", fix)
    elif selection:
        yield violation(subject, f"{pod.path}.nodeSelector",
                        f"selects no GPU {kind} ({kind} '{group.name}' {selection})", fix)


@stack_rule("gpu-workload-schedulable", pack="security", severity="high",
            resource_types=[*WORKLOAD_TYPES, NODE_GROUP, NODE_POOL],
            description="Workloads requesting nvidia.com/gpu tolerate the taints of a GPU node "
                        "group or Karpenter NodePool of the stack, select its labels and ask "
                        "for no more GPUs than its largest node has, so they do not stay "
                        "Pending.")
def gpu_workload_schedulable(subjects: Sequence[Subject], config: Mapping[str, Any]
                             ) -> Iterator[tuple[Subject, str]]:
    groups = _gpu_node_groups(subjects)
    taint = _taint((GPU_TAINT["key"], GPU_TAINT["value"], TAINT_EFFECTS[GPU_TAINT["effect"]]))
    for subject in subjects:
        if subject.type not in WORKLOAD_TYPES:
            continue
        for pod, container in _gpu_pods(subject):
            if not groups:
                yield subject, violation(
                    subject, f"{container.path}.resources",
                    f"requests {GPU_RESOURCE} but the stack has no GPU node group or Karpenter "
                    "NodePool",
                    f"add a Karpenter NodePool (a GPU pool) or an EKS node group of GPU "
                    f"instances tainted {taint}, or drop the GPU request")
                continue
            for message in _placement(subject, pod, groups):
                yield subject, message


# ------------------------------------------------------------------ namespaces

NAMESPACE = "kubernetes:core/v1:Namespace"
POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
# Kubernetes' Pod Security Standards, least to most restrictive
_POD_SECURITY_LEVELS = ("privileged", "baseline", "restricted")


@rule("k8s-namespace-pod-security", pack="security", severity="medium",
      resource_types=[NAMESPACE],
      description="Namespaces enforce a Pod Security Standard (the pod-security.kubernetes.io/"
                  "enforce label, baseline or stricter), so that Pod Security admission "
                  "refuses privileged pods however they are created.",
      config={"minimum": {
          "type": "string", "enum": ["baseline", "restricted"], "default": "baseline",
          "description": "The least restrictive level a namespace may enforce."}})
def k8s_namespace_pod_security(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    labels = as_mapping(as_mapping(subject.props.get("metadata")).get("labels"))
    level = labels.get(POD_SECURITY_ENFORCE)
    minimum = config["minimum"]
    fix = f"label the namespace {POD_SECURITY_ENFORCE}: {minimum} (or stricter)"
    prop = f"metadata.labels.{POD_SECURITY_ENFORCE}"
    if level is None:
        yield violation(subject, prop, "is not set (Pod Security admission admits privileged "
                        "pods)", fix)
    elif level not in _POD_SECURITY_LEVELS:
        yield violation(subject, prop, f"is {level!r}, not a Pod Security level", fix)
    elif _POD_SECURITY_LEVELS.index(level) < _POD_SECURITY_LEVELS.index(minimum):
        yield violation(subject, prop, f"is {level} (below {minimum})", fix)


# ------------------------------------------------------------------ Knative


@rule("knative-kourier-cluster-ip", pack="security", severity="high",
      resource_types=[KNATIVE_SERVING],
      description="A KnativeServing resource that runs Kourier keeps Kourier's gateway Service "
                  "inside the cluster (service-type ClusterIP), so that no load balancer puts "
                  "every Knative Service, models included, in reach from outside the cluster.")
def knative_kourier_cluster_ip(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    kourier = as_mapping(as_mapping(as_mapping(subject.props.get("spec")).get("ingress")).get(
        "kourier"))
    if not is_true(kourier.get("enabled")):
        return
    service_type = kourier.get("service-type")
    if service_type == "ClusterIP":
        return
    # Kourier's manifest makes its gateway Service `kourier` a LoadBalancer (net-kourier
    # kourier.yaml); the Knative Operator keeps that unless service-type says otherwise
    problem = ("is not set (Kourier's gateway Service is then a LoadBalancer)"
               if service_type is None else
               f"is {service_type} (Kourier's gateway is reachable from outside the cluster)")
    yield violation(subject, "spec.ingress.kourier.service-type", problem,
                    "set it to ClusterIP; expose a model deliberately, through an internal "
                    "load balancer or an Ingress of its own")
