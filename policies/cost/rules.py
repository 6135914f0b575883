"""Cost rules: instance types, sizes, GPUs, SPOT, tags, log retention, Athena scans and the
monthly budget.

Props are a resource's inputs under Pulumi's wire names; numbers may arrive as floats. Node
capacity is EKS node groups or Karpenter NodePools (:mod:`..nodepools`), GPU or CPU: a
NodePool's instance types come from its requirements, its size from its ``limits``, its
purchase option from its ``karpenter.sh/capacity-type`` requirement, and it has no minimum.
A NodePool is judged by the GPU rules when it is a GPU pool, by the CPU rule otherwise. Limits
differ by environment profile: the schema default of each setting is the dev value, and
``profiles=`` gives staging and prod theirs. Every stack ``mlscaffold new`` generates meets them
(tests/policies/test_cost.py runs the examples); a mistake such as p5.48xlarge in dev, 50 GPUs
in dev, on-demand GPUs outside prod or a blown budget does not.

Instance facts (GPUs per type) come from :mod:`mlscaffold.stacks.instances`; prices from the
one price table through :mod:`.estimate`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from mlscaffold.stacks.config import EKS_STANDARD_SUPPORT_ENDS
from mlscaffold.stacks.constants import (
    ATHENA_BYTES_PER_GB,
    CAPACITY_TYPE,
    GPU_RESOURCE,
    INSTANCE_FAMILY,
    INSTANCE_SIZE,
    INSTANCE_TYPE,
    NODE_POOL,
)
from mlscaffold.stacks.instances import (
    EC2_INSTANCES,
    GPU_FAMILY,
    SAGEMAKER_INSTANCES,
    family_types,
    gpu_count,
    instance_family,
    instance_info,
    is_accelerated,
)
from mlscaffold.stacks.regions import DEFAULT_REGION

from ..nodepools import (
    REQUIREMENTS,
    in_values,
    instance_types,
    is_gpu_pool,
)
from ..nodepools import limit as pool_limit
from ..props import as_mapping, items_of, number
from ..rule import Subject, rule, stack_rule, violation
from ..security.storage import ATHENA_WORKGROUP
from .estimate import (
    ENDPOINT_CONFIG,
    NODE_GROUP,
    SCALING_TARGET,
    CostEstimate,
    estimate,
    sagemaker_variants,
)
from .prices import prices

__all__ = ["TAGGABLE_TYPES", "is_accelerated"]

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

#: AWS resource types whose inputs take ``tags`` (checked against the pulumi_aws SDK by the
#: tests): every type mlscaffold's stacks create, and the common ones of ML platforms
TAGGABLE_TYPES: tuple[str, ...] = (
    "aws:acm/certificate:Certificate", "aws:apigateway/restApi:RestApi",
    "aws:apigatewayv2/api:Api", "aws:appautoscaling/target:Target",
    ATHENA_WORKGROUP, "aws:autoscaling/group:Group",
    "aws:batch/computeEnvironment:ComputeEnvironment", "aws:batch/jobQueue:JobQueue",
    "aws:cloudtrail/trail:Trail", "aws:cloudwatch/compositeAlarm:CompositeAlarm",
    "aws:cloudwatch/eventRule:EventRule", LOG_GROUP, "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:codebuild/project:Project", "aws:dynamodb/table:Table", "aws:ebs/volume:Volume",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "aws:ec2/eip:Eip",
    "aws:ec2/flowLog:FlowLog", "aws:ec2/instance:Instance",
    "aws:ec2/internetGateway:InternetGateway", "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/natGateway:NatGateway", "aws:ec2/networkAcl:NetworkAcl",
    "aws:ec2/networkInterface:NetworkInterface", "aws:ec2/routeTable:RouteTable",
    "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/subnet:Subnet", "aws:ec2/vpc:Vpc",
    "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:ec2/vpcPeeringConnection:VpcPeeringConnection",
    "aws:ecr/repository:Repository", "aws:ecs/cluster:Cluster", "aws:ecs/service:Service",
    "aws:efs/fileSystem:FileSystem", "aws:eks/accessEntry:AccessEntry", "aws:eks/addon:Addon",
    "aws:eks/cluster:Cluster", "aws:eks/fargateProfile:FargateProfile", NODE_GROUP,
    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    "aws:elasticache/replicationGroup:ReplicationGroup", "aws:emr/cluster:Cluster",
    "aws:fsx/lustreFileSystem:LustreFileSystem", "aws:glue/catalogDatabase:CatalogDatabase",
    "aws:glue/crawler:Crawler", "aws:glue/job:Job", "aws:iam/instanceProfile:InstanceProfile",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "aws:iam/policy:Policy",
    "aws:iam/role:Role", "aws:iam/user:User", "aws:kinesis/stream:Stream", "aws:kms/key:Key",
    "aws:lambda/function:Function", "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/targetGroup:TargetGroup", "aws:opensearch/domain:Domain", "aws:rds/cluster:Cluster",
    "aws:rds/instance:Instance", "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2",
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
    "aws:sagemaker/domain:Domain", "aws:sagemaker/endpoint:Endpoint", ENDPOINT_CONFIG,
    "aws:sagemaker/featureGroup:FeatureGroup",
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer", "aws:sagemaker/model:Model",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule",
    "aws:sagemaker/notebookInstance:NotebookInstance", "aws:sagemaker/pipeline:Pipeline",
    "aws:secretsmanager/secret:Secret", "aws:sfn/stateMachine:StateMachine",
    "aws:sns/topic:Topic", "aws:sqs/queue:Queue", "aws:ssm/parameter:Parameter",
)

def _n(value: float) -> str:
    return f"{value:g}"


def _types(subject: Subject) -> list[tuple[int, str]]:
    return [(i, t) for i, t in enumerate(items_of(subject.props.get("instanceTypes")))
            if isinstance(t, str)]


def _gpu_group(subject: Subject) -> bool:
    return any(is_accelerated(t) for _, t in _types(subject))


def _gpus(instance_type: str) -> str:
    gpus = gpu_count(instance_type)
    return f"{instance_type} ({gpus} GPU{'s' if gpus != 1 else ''})" if gpus else instance_type


def _pool_nodes(subject: Subject) -> tuple[int, str] | None:
    """The most nodes a NodePool's limits let it have (its smallest allowed type filling the
    tighter limit), and why; None when its types are unknown or no limit bounds them."""
    types = instance_types(subject.props)
    if not types or not types[0]:
        return None
    gpus, cpu = pool_limit(subject.props, GPU_RESOURCE), pool_limit(subject.props, "cpu")
    best: tuple[int, str] | None = None
    for instance_type in types[0]:
        per_node, vcpus = gpu_count(instance_type), EC2_INSTANCES[instance_type].vcpus
        bounds = []
        if gpus is not None and per_node:
            bounds.append((int(gpus // per_node), f"limits.nvidia.com/gpu {_n(gpus)} / "
                                                  f"{per_node} GPU of {instance_type}"))
        if cpu is not None:
            bounds.append((int(cpu // vcpus), f"limits.cpu {_n(cpu)} / {vcpus} vCPUs of "
                                              f"{instance_type}"))
        if not bounds:
            return None
        found = min(bounds)
        if best is None or found[0] > best[0]:
            best = found
    return best


def _list(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "(none)"


def _schema_list(description: str, default: list[str]) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
            "description": description, "default": default}


# ------------------------------------------------------------------ instance types

_CPU_DEV = ["t3.medium", "t3.large", "m6i.large", "m6i.xlarge", "m7i.large", "m7i.xlarge",
            "c6i.large", "c6i.xlarge"]
_CPU_STAGING = [*_CPU_DEV, "t3.xlarge", "m6i.2xlarge", "m7i.2xlarge", "c6i.2xlarge"]
# every CPU type the stacks' node groups take (x86_64: they run x86_64 AMIs)
_CPU_PROD = [t for t, i in EC2_INSTANCES.items() if not is_accelerated(t) and i.arch == "x86_64"]

_GPU_DEV = ["g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge", "g5.2xlarge", "g6.xlarge", "g6.2xlarge"]
_GPU_STAGING = [*_GPU_DEV, "g4dn.4xlarge", "g5.4xlarge", "g6.4xlarge", "g6e.xlarge",
                "g6e.2xlarge", "g5.12xlarge", "g6.12xlarge"]
# every GPU type but the previous-generation V100 family (p3), slower per dollar than g5/g6
_GPU_PROD = [t for t in EC2_INSTANCES if is_accelerated(t) and not t.startswith("p3.")]

_SM_DEV = ["ml.t2.medium", "ml.m5.large", "ml.m5.xlarge", "ml.c5.large", "ml.c5.xlarge"]
_SM_STAGING = [*_SM_DEV, "ml.m5.2xlarge", "ml.c5.2xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge",
               "ml.g6.xlarge"]
_SM_PROD = list(SAGEMAKER_INSTANCES)


@rule("cpu-instance-types", pack="cost", severity="medium",
      resource_types=[NODE_GROUP, NODE_POOL],
      description="EKS node groups and Karpenter CPU NodePools use CPU instance types from the "
                  "environment's allow-list.",
      config={"allowed": _schema_list("CPU instance types node groups and CPU NodePools may "
                                      "use.", _CPU_DEV)},
      profiles={"staging": {"allowed": _CPU_STAGING}, "prod": {"allowed": _CPU_PROD}})
def cpu_instance_types(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = list(config["allowed"])
    if subject.type == NODE_POOL:
        yield from _pool_cpu_types(subject, allowed)
        return
    for index, instance_type in _types(subject):
        if not is_accelerated(instance_type) and instance_type not in allowed:
            yield violation(subject, f"instanceTypes[{index}]",
                            f"is {instance_type}, not an allowed CPU instance type in this "
                            "environment",
                            f"use one of {_list(allowed)}, or add it to "
                            "cpu-instance-types.allowed in the policy file")


def _known(instance_type: str) -> str:
    return instance_type if instance_type in EC2_INSTANCES else \
        f"{instance_type} (a type mlscaffold does not know)"


def _pool_cpu_types(subject: Subject, allowed: list[str]) -> Iterator[str]:
    """A CPU NodePool (any NodePool but a GPU pool) allows only allow-listed types: its
    instance-type values, or every family x size its requirements allow; a family without a
    size requirement allows every size, including ones the instance table does not know."""
    if is_gpu_pool(subject.props):
        return
    fix = (f"restrict {INSTANCE_FAMILY} and {INSTANCE_SIZE} (the CPU pool's instance_families "
           f"and instance_sizes) to types in {_list(allowed)}, or add them to "
           "cpu-instance-types.allowed in the policy file")
    by_type, families = in_values(subject.props, INSTANCE_TYPE), in_values(
        subject.props, INSTANCE_FAMILY)
    sizes = in_values(subject.props, INSTANCE_SIZE)
    if by_type:
        index, candidates, open_families = by_type[0], by_type[1], []
    elif families and sizes:
        index, open_families = families[0], []
        candidates = [f"{family}.{size}" for family in families[1] for size in sizes[1]]
    elif families:
        index, open_families = families[0], families[1]
        candidates = family_types(families[1])
    else:
        yield violation(subject, REQUIREMENTS, f"do not restrict {INSTANCE_FAMILY} or "
                        f"{INSTANCE_TYPE} (Karpenter may launch any CPU type)", fix)
        return
    refused = [_known(t) for t in candidates if t not in allowed and not is_accelerated(t)]
    refused += [f"{family}.* (every size: no {INSTANCE_SIZE} requirement)"
                for family in open_families]
    if refused:
        yield violation(subject, f"{REQUIREMENTS}[{index}]", f"allows {', '.join(refused)}, "
                        "not allowed CPU instance types in this environment", fix)


@rule("gpu-instance-types", pack="cost", severity="high",
      resource_types=[NODE_GROUP, NODE_POOL],
      description="EKS node groups and Karpenter NodePools use GPU instance types from the "
                  "environment's allow-list (small single-GPU types outside production).",
      config={"allowed": _schema_list("GPU instance types node groups and NodePools may use.",
                                      _GPU_DEV)},
      profiles={"staging": {"allowed": _GPU_STAGING}, "prod": {"allowed": _GPU_PROD}})
def gpu_instance_types(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = list(config["allowed"])
    if subject.type == NODE_POOL:
        yield from _pool_gpu_types(subject, allowed)
        return
    for index, instance_type in _types(subject):
        if is_accelerated(instance_type) and instance_type not in allowed:
            gpus = gpu_count(instance_type)
            what = f"{instance_type} ({gpus} GPU{'s' if gpus != 1 else ''})" if gpus else \
                instance_type
            yield violation(subject, f"instanceTypes[{index}]",
                            f"is {what}, not an allowed GPU instance type in this environment",
                            f"use one of {_list(allowed)}, or add it to "
                            "gpu-instance-types.allowed in the policy file")


def _pool_gpu_types(subject: Subject, allowed: list[str]) -> Iterator[str]:
    """A GPU NodePool allows only allow-listed types: every type its families (and sizes) or
    types have, as mlscaffold's instance table knows them."""
    if not is_gpu_pool(subject.props):
        return
    fix = (f"restrict {INSTANCE_FAMILY} and {INSTANCE_SIZE} (the GPU pool's "
           f"instance_families and instance_sizes) to types in {_list(allowed)}, or add them "
           "to gpu-instance-types.allowed in the policy file")
    types = instance_types(subject.props)
    if types is None:
        yield violation(subject, REQUIREMENTS, f"do not restrict {INSTANCE_FAMILY} or "
                        f"{INSTANCE_TYPE} (Karpenter may launch any GPU type)", fix)
        return
    found = in_values(subject.props, INSTANCE_TYPE) or in_values(subject.props, INSTANCE_FAMILY)
    prop = f"{REQUIREMENTS}[{found[0] if found else 0}]"
    known, unknown = types
    refused = [_gpus(t) for t in known if is_accelerated(t) and t not in allowed]
    refused += [f"{family}.* (a family mlscaffold does not know)" for family in unknown]
    if refused:
        yield violation(subject, prop, f"allows {', '.join(refused)}, not allowed GPU instance "
                        "types in this environment", fix)


@rule("sagemaker-instance-types", pack="cost", severity="medium",
      resource_types=[ENDPOINT_CONFIG],
      description="SageMaker endpoint variants use instance types from the environment's "
                  "allow-list (no GPU endpoints in dev).",
      config={"allowed": _schema_list("SageMaker hosting instance types endpoints may use.",
                                      _SM_DEV)},
      profiles={"staging": {"allowed": _SM_STAGING}, "prod": {"allowed": _SM_PROD}})
def sagemaker_instance_types(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = list(config["allowed"])
    for index, variant in enumerate(items_of(subject.props.get("productionVariants"))):
        instance_type = as_mapping(variant).get("instanceType")
        if isinstance(instance_type, str) and instance_type not in allowed:
            yield violation(subject, f"productionVariants[{index}].instanceType",
                            f"is {instance_type}, not an allowed SageMaker instance type in "
                            "this environment",
                            f"use one of {_list(allowed)}, or add it to "
                            "sagemaker-instance-types.allowed in the policy file")


# ------------------------------------------------------------------ sizes and GPUs


@rule("max-nodes", pack="cost", severity="medium", resource_types=[NODE_GROUP, NODE_POOL],
      description="EKS node groups and Karpenter NodePools scale to at most the environment's "
                  "node limit.",
      config={"max_nodes": {"type": "integer", "minimum": 1, "default": 5,
                            "description": "Most nodes of a node group (scalingConfig.maxSize) "
                                           "or a NodePool (as many as its limits allow)."}},
      profiles={"staging": {"max_nodes": 10}, "prod": {"max_nodes": 20}})
def max_nodes(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    limit = int(config["max_nodes"])
    if subject.type == NODE_POOL:
        setting = "max_gpus of the GPU pool" if is_gpu_pool(subject.props) else \
            "max_vcpus of the CPU pool"
        if pool_limit(subject.props, "cpu") is None and pool_limit(
                subject.props, GPU_RESOURCE) is None:
            yield violation(subject, "spec.limits", "set no cpu or nvidia.com/gpu limit (the "
                            "NodePool may launch nodes without bound)",
                            f"set spec.limits ({setting})")
            return
        nodes = _pool_nodes(subject)
        if nodes and nodes[0] > limit:
            yield violation(subject, "spec.limits",
                            f"let the NodePool grow to {nodes[0]} nodes ({nodes[1]}), above the "
                            f"limit of {limit} nodes per node group in this environment",
                            f"lower the limits ({setting}) or allow larger instance sizes, or "
                            "raise max-nodes.max_nodes in the policy file")
        return
    size = number(as_mapping(subject.props.get("scalingConfig")).get("maxSize"))
    if size is not None and size > limit:
        yield violation(subject, "scalingConfig.maxSize",
                        f"is {_n(size)}, above the limit of {limit} nodes per node group in "
                        "this environment",
                        f"lower it to {limit} or less, or raise max-nodes.max_nodes in the "
                        "policy file")


def _pool_gpus(subject: Subject) -> tuple[float, str] | None:
    """GPUs a GPU NodePool's nodes may have together: its nvidia.com/gpu limit, else what its
    cpu limit allows on its GPU types; None when nothing bounds them."""
    gpus = pool_limit(subject.props, GPU_RESOURCE)
    if gpus is not None:
        return gpus, f"limits.nvidia.com/gpu {_n(gpus)}"
    cpu, types = pool_limit(subject.props, "cpu"), instance_types(subject.props)
    if cpu is None or not types or not types[0]:
        return None
    widest = max(types[0], key=lambda t: (cpu // EC2_INSTANCES[t].vcpus) * gpu_count(t))
    total = (cpu // EC2_INSTANCES[widest].vcpus) * gpu_count(widest)
    return total, f"limits.cpu {_n(cpu)} on {_gpus(widest)}"


def _gpu_capacity(subjects: Sequence[Subject]) -> list[tuple[Subject, str, float, str]]:
    """(subject, property, GPUs at full scale, description) of every GPU node group, GPU
    NodePool and GPU-backed SageMaker variant; a NodePool nothing bounds counts infinitely."""
    found: list[tuple[Subject, str, float, str]] = []
    for subject in subjects:
        if subject.type == NODE_POOL and is_gpu_pool(subject.props):
            gpus = _pool_gpus(subject)
            found.append((subject, "spec.limits", gpus[0] if gpus else math.inf,
                          f"NodePool {subject.name}: {gpus[1] if gpus else 'no limits'}"))
            continue
        if subject.type != NODE_GROUP or not _gpu_group(subject):
            continue
        size = number(as_mapping(subject.props.get("scalingConfig")).get("maxSize")) or 0
        widest = max((t for _, t in _types(subject)), key=gpu_count)
        per_node = gpu_count(widest)
        if size and per_node:
            found.append((subject, "scalingConfig.maxSize", int(size) * per_node,
                          f"{subject.name}: {_n(size)} x {widest} ({per_node} GPU)"))
    by_name = {s.name: s for s in subjects if s.type == ENDPOINT_CONFIG}
    variants = sagemaker_variants((s.type, s.name, s.props) for s in subjects
                                  if s.type in (ENDPOINT_CONFIG, SCALING_TARGET,
                                                "aws:sagemaker/endpoint:Endpoint"))
    for config, variant, instance_type, _, maximum in variants:
        if instance_info(instance_type) is None and GPU_FAMILY.match(
                instance_family(instance_type)):
            # a GPU type whose GPUs mlscaffold does not know counts without bound
            found.append((by_name[config[1]], "productionVariants", math.inf,
                          f"{config[1]}/{variant}: {maximum} x {instance_type} (GPUs per "
                          "instance not in mlscaffold's instance table)"))
        elif gpu_count(instance_type):
            gpus = maximum * gpu_count(instance_type)
            found.append((by_name[config[1]], "productionVariants", gpus,
                          f"{config[1]}/{variant}: {maximum} x {instance_type} "
                          f"({gpu_count(instance_type)} GPU)"))
    return found


@stack_rule("max-gpus", pack="cost", severity="high",
            resource_types=[NODE_GROUP, NODE_POOL, ENDPOINT_CONFIG, SCALING_TARGET],
            description="The GPUs a stack can scale to (GPU NodePools' nvidia.com/gpu limits, "
                        "GPU node groups' maxSize x GPUs per instance, plus GPU endpoints at "
                        "their maximum instance count) stay within the environment's limit.",
            config={"max_gpus": {"type": "integer", "minimum": 0, "default": 4,
                                 "description": "Most GPUs the stack may scale to."}},
            profiles={"staging": {"max_gpus": 8}, "prod": {"max_gpus": 32}})
def max_gpus(subjects: Sequence[Subject], config: Mapping[str, Any]
             ) -> Iterator[tuple[Subject, str]]:
    limit = int(config["max_gpus"])
    found = _gpu_capacity(subjects)
    total = sum(gpus for _, _, gpus, _ in found)
    if total <= limit:
        return
    found.sort(key=lambda item: -item[2])
    subject, prop, _, _ = found[0]
    scale = "without bound" if math.isinf(total) else f"to {_n(total)} GPUs"
    yield subject, violation(
        subject, prop,
        f"lets the stack scale {scale} ({'; '.join(d for *_, d in found)}), above the "
        f"limit of {limit} GPUs in this environment",
        "lower the GPU pools' max_gpus (NodePool limits), the GPU node groups' "
        "scalingConfig.maxSize or the GPU endpoints' maximum instances, or raise "
        "max-gpus.max_gpus in the policy file")


# ------------------------------------------------------------------ SPOT and scale to zero


@rule("gpu-spot-outside-prod", pack="cost", severity="medium",
      resource_types=[NODE_GROUP, NODE_POOL],
      description="GPU node groups and GPU NodePools run on spot capacity outside production.",
      config={"required": {"type": "boolean", "default": True,
                           "description": "Require spot for GPU node groups and NodePools (off "
                                          "in prod)."}},
      profiles={"prod": {"required": False}})
def gpu_spot_outside_prod(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    if not config["required"]:
        return
    if subject.type == NODE_POOL:
        if not is_gpu_pool(subject.props):
            return
        fix = ("allow spot only (capacity_types [spot] of the GPU pool; about 65% cheaper, and "
               "training and test workloads tolerate interruptions), or turn "
               "gpu-spot-outside-prod.required off in the policy file")
        found = in_values(subject.props, CAPACITY_TYPE)
        if found is None:
            yield violation(subject, REQUIREMENTS, f"do not restrict {CAPACITY_TYPE} on a GPU "
                            "NodePool outside production (Karpenter launches on-demand)", fix)
        elif [v for v in found[1] if v != "spot"]:
            others = ", ".join(v for v in found[1] if v != "spot")
            yield violation(subject, f"{REQUIREMENTS}[{found[0]}]",
                            f"allows {others} capacity on a GPU NodePool outside production",
                            fix)
        return
    if not _gpu_group(subject):
        return
    capacity = subject.props.get("capacityType") or "ON_DEMAND"
    if capacity != "SPOT":
        yield violation(subject, "capacityType",
                        f"is {capacity} on a GPU node group outside production",
                        "set it to SPOT (about 65% cheaper; training and test workloads "
                        "tolerate interruptions), or turn gpu-spot-outside-prod.required off "
                        "in the policy file")


@rule("gpu-scale-to-zero-outside-prod", pack="cost", severity="medium",
      resource_types=[NODE_GROUP, NODE_POOL],
      description="GPU node groups (minSize 0) and GPU NodePools (no static replicas, "
                  "consolidation on) can scale to zero outside production, so idle GPU nodes "
                  "are removed.",
      config={"required": {"type": "boolean", "default": True,
                           "description": "Require GPU capacity to scale to zero (off in "
                                          "prod)."}},
      profiles={"prod": {"required": False}})
def gpu_scale_to_zero_outside_prod(subject: Subject, config: Mapping[str, Any]
                                   ) -> Iterator[str]:
    if not config["required"]:
        return
    if subject.type == NODE_POOL:
        if not is_gpu_pool(subject.props):
            return
        spec = as_mapping(subject.props.get("spec"))
        replicas = number(spec.get("replicas"))
        if replicas:
            yield violation(subject, "spec.replicas",
                            f"is {_n(replicas)} on a GPU NodePool outside production (a static "
                            f"NodePool keeps {_n(replicas)} GPU nodes running)",
                            "remove it so that Karpenter launches GPU nodes only for pending "
                            "pods, or turn gpu-scale-to-zero-outside-prod.required off in the "
                            "policy file")
        if as_mapping(spec.get("disruption")).get("consolidateAfter") == "Never":
            yield violation(subject, "spec.disruption.consolidateAfter",
                            "is Never on a GPU NodePool outside production (idle GPU nodes "
                            "keep running)",
                            "set a duration such as 5m (consolidate_after of the GPU pool) so "
                            "that Karpenter removes idle GPU nodes, or turn "
                            "gpu-scale-to-zero-outside-prod.required off in the policy file")
        return
    if not _gpu_group(subject):
        return
    minimum = number(as_mapping(subject.props.get("scalingConfig")).get("minSize"))
    if minimum:
        yield violation(subject, "scalingConfig.minSize",
                        f"is {_n(minimum)} on a GPU node group outside production (idle GPU "
                        "nodes keep running)",
                        "set it to 0 so that idle GPU nodes are removed, "
                        "or turn gpu-scale-to-zero-outside-prod.required off in the policy "
                        "file")


# ------------------------------------------------------------------ tags


@rule("required-tags", pack="cost", severity="medium", resource_types=TAGGABLE_TYPES,
      description="Every taggable AWS resource carries the cost-allocation tags (project, env, "
                  "owner, cost-center) with non-empty values.",
      config={"tags": {"type": "array", "items": {"type": "string", "minLength": 1},
                       "uniqueItems": True, "default": ["project", "env", "owner", "cost-center"],
                       "description": "Tag keys every taggable resource must carry."}})
def required_tags(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    required = list(config["tags"])
    fix = (f"tag it with {', '.join(required)} (mlscaffold's components pass the platform's "
           "tags; provider default tags are not seen by policies)")
    try:
        tags = subject.props["tags"] if "tags" in list(subject.props) else None
    except UnknownValueError:
        return  # computed before deployment: set
    if tags is None:
        yield violation(subject, "tags", "are not set", fix)
        return
    tags = as_mapping(tags)
    missing = [key for key in required if key not in list(tags)]
    if missing:
        yield violation(subject, "tags", f"lack {', '.join(missing)}", fix)
    for key in required:
        if key in missing:
            continue
        try:
            value = tags[key]
        except UnknownValueError:
            continue  # known after deployment: set
        if not isinstance(value, str) or not value.strip():
            yield violation(subject, f"tags.{key}", "is empty", f"give {key} a value")


# ------------------------------------------------------------------ endpoints and logs


@rule("endpoint-instance-count", pack="cost", severity="medium",
      resource_types=[ENDPOINT_CONFIG, SCALING_TARGET],
      description="SageMaker endpoint variants start with, and autoscale to, at most the "
                  "environment's instance limit.",
      config={"max_instances": {"type": "integer", "minimum": 1, "default": 2,
                                "description": "Most instances per endpoint variant "
                                               "(initialInstanceCount and autoscaling "
                                               "maxCapacity)."}},
      profiles={"staging": {"max_instances": 4}, "prod": {"max_instances": 10}})
def endpoint_instance_count(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    limit = int(config["max_instances"])
    fix = (f"lower it to {limit} or less, or raise endpoint-instance-count.max_instances in the "
           "policy file")
    if subject.type == SCALING_TARGET:
        if subject.props.get("serviceNamespace") != "sagemaker":
            return
        maximum = number(subject.props.get("maxCapacity"))
        if maximum is not None and maximum > limit:
            yield violation(subject, "maxCapacity",
                            f"is {_n(maximum)}, above the limit of {limit} instances per "
                            "endpoint variant in this environment", fix)
        return
    for index, variant in enumerate(items_of(subject.props.get("productionVariants"))):
        count = number(as_mapping(variant).get("initialInstanceCount"))
        if count is not None and count > limit:
            yield violation(subject, f"productionVariants[{index}].initialInstanceCount",
                            f"is {_n(count)}, above the limit of {limit} instances per "
                            "endpoint variant in this environment", fix)


@rule("log-retention-bounded", pack="cost", severity="low", resource_types=[LOG_GROUP],
      description="CloudWatch log groups expire their events (retentionInDays set, at most the "
                  "environment's maximum).",
      config={"max_days": {"type": "integer", "minimum": 1, "default": 90,
                           "description": "Longest retentionInDays of a log group."}},
      profiles={"staging": {"max_days": 180}, "prod": {"max_days": 731}})
def log_retention_bounded(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    limit = int(config["max_days"])
    days = number(subject.props.get("retentionInDays"))
    if not days or days <= 0:
        yield violation(subject, "retentionInDays",
                        "is not set (events are kept forever and storage grows every month)",
                        f"set it to at most {limit} days, e.g. 30")
    elif days > limit:
        yield violation(subject, "retentionInDays",
                        f"is {_n(days)}, above the limit of {limit} days in this environment",
                        f"lower it to {limit} days or less (export older logs to S3 if they "
                        "must be kept), or raise log-retention-bounded.max_days in the policy "
                        "file")


# ------------------------------------------------------------------ Athena scans


@rule("athena-scan-cutoff", pack="cost", severity="medium", resource_types=[ATHENA_WORKGROUP],
      description="Athena workgroups cancel a query that scans more than a cutoff "
                  "(bytesScannedCutoffPerQuery, at most the environment's maximum): Athena "
                  "bills per terabyte scanned, and a query over a whole table bills all of it.",
      config={"max_gb": {"type": "integer", "minimum": 1, "default": 100,
                         "description": "Largest per-query cutoff, in GB (10^9 bytes)."}},
      profiles={"staging": {"max_gb": 1000}, "prod": {"max_gb": 10000}})
def athena_scan_cutoff(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    limit = int(config["max_gb"])
    most = limit * ATHENA_BYTES_PER_GB
    prop = "configuration.bytesScannedCutoffPerQuery"
    cutoff = number(as_mapping(subject.props.get("configuration")).get(
        "bytesScannedCutoffPerQuery"))
    if not cutoff or cutoff <= 0:
        yield violation(subject, prop, "is not set (one query may scan, and bill, whole tables)",
                        f"set bytes_scanned_cutoff_per_query to at most {most} ({limit} GB; "
                        "mlscaffold's stacks: training.query_scan_limit_gb)")
    elif cutoff > most:
        yield violation(subject, prop,
                        f"is {_n(cutoff / ATHENA_BYTES_PER_GB)} GB, above the limit of "
                        f"{limit} GB in this environment",
                        f"lower it to {limit} GB or less, or raise athena-scan-cutoff.max_gb in "
                        "the policy file")


# ------------------------------------------------------------------ EKS control plane

EKS_CLUSTER = "aws:eks/cluster:Cluster"


@rule("eks-upgrade-policy", pack="cost", severity="medium", resource_types=[EKS_CLUSTER],
      description="EKS clusters set upgradePolicy.supportType to STANDARD, so that a Kubernetes "
                  "version leaving standard support is upgraded rather than billed at the "
                  "extended-support rate; EXTENDED (AWS's default when unset) only where the "
                  "policy file allows it.",
      config={"allow_extended": {"type": "boolean", "default": False,
                                 "description": "Accept supportType EXTENDED set explicitly "
                                                "(extended support paid for deliberately); an "
                                                "unset policy is still reported."}})
def eks_upgrade_policy(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    # EKS API reference, UpgradePolicyRequest: the default supportType is EXTENDED, and an
    # EXTENDED cluster enters extended support (billed per cluster-hour at a higher rate) when
    # its version leaves standard support; STANDARD has EKS upgrade it instead. pulumi-eks's
    # Cluster cannot set it (pulumi/pulumi-eks#1776): mlscaffold's stacks use aws.eks.Cluster
    support = as_mapping(subject.props.get("upgradePolicy")).get("supportType")
    if support == "STANDARD" or (support == "EXTENDED" and config["allow_extended"]):
        return
    table = prices()
    standard, extended = (table.service("eks_cluster_hour"),
                          table.service("eks_cluster_extended_support_hour"))
    try:
        version = subject.props.get("version")
    except UnknownValueError:  # computed: the message does without it
        version = None
    ends = EKS_STANDARD_SUPPORT_ENDS.get(str(version)) if version else None
    when = (f"from {ends.isoformat()}, the end of Kubernetes {version}'s standard support," if ends
            else "from the end of its Kubernetes version's standard support,")
    bill = (f"{when} the control plane is billed ${extended:.2f} instead of ${standard:.2f} per "
            "cluster-hour (extended support)")
    stay = "set it to STANDARD (cluster.support_type in the stack config)"
    if support is None:
        yield violation(subject, "upgradePolicy.supportType",
                        f"is not set, so AWS applies EXTENDED: {bill}",
                        f"{stay}, or set EXTENDED explicitly and turn "
                        "eks-upgrade-policy.allow_extended on in the policy file")
    elif support == "EXTENDED":
        yield violation(subject, "upgradePolicy.supportType", f"is EXTENDED: {bill}",
                        f"{stay} and raise the version before that date, or turn "
                        "eks-upgrade-policy.allow_extended on in the policy file to pay for "
                        "extended support deliberately")
    else:
        yield violation(subject, "upgradePolicy.supportType",
                        f"is {support!r}, not a support type EKS knows (STANDARD or EXTENDED)",
                        stay)


# ------------------------------------------------------------------ budget


def _budget_estimate(subjects: Sequence[Subject], region: str) -> CostEstimate:
    return estimate([(s.type, s.name, s.props) for s in subjects], region)


@stack_rule("monthly-budget", pack="cost", severity="high",
            resource_types=[NODE_GROUP, NODE_POOL, ENDPOINT_CONFIG, EKS_CLUSTER,
                            "aws:ec2/natGateway:NatGateway"],
            description="The stack's estimated monthly cost (mlscaffold's price table, baseline "
                        "size: node groups at desiredSize, endpoints at initialInstanceCount) "
                        "stays under the environment's budget.",
            config={
                "budget_usd": {"type": "number", "exclusiveMinimum": 0, "default": 1500,
                               "description": "Monthly budget of the stack in USD."},
                "scale": {"enum": ["desired", "max"], "default": "desired",
                          "description": "Compare the budget with the estimate at the baseline "
                                         "size (desired) or at full scale (max)."},
                "region": {"type": "string", "default": DEFAULT_REGION,
                           "description": "AWS region of the stack (set by mlscaffold)."},
                "environment": {"type": "string", "default": "dev",
                                "description": "Environment of the stack (set by mlscaffold)."},
            },
            profiles={"staging": {"budget_usd": 2500}, "prod": {"budget_usd": 6000}})
def monthly_budget(subjects: Sequence[Subject], config: Mapping[str, Any]
                   ) -> Iterator[tuple[Subject, str]]:
    budget = float(config["budget_usd"])
    full = config["scale"] == "max"
    result = _budget_estimate(subjects, str(config["region"]))
    total = result.at_full_scale if full else result.total
    if total <= budget or not result.lines:
        return

    def cost(line: Any) -> float:
        return float(line.at_full_scale_usd if full else line.monthly_usd)

    lines = sorted(result.lines, key=lambda line: -cost(line))
    top = lines[0]
    subject = next(s for s in subjects if s.name == top.resource and s.type == top.type)
    largest = ", ".join(f"{line.resource} ${cost(line):,.2f}" for line in lines[:3])
    scale = "at full scale" if full else "at baseline size"
    excluded = result.excluded_at_full_scale if full else result.excluded
    left_out = f"; it excludes what mlscaffold cannot price: {'; '.join(excluded)}" \
        if excluded else ""
    yield subject, violation(
        subject, top.prop or "inputs",
        f"costs ${cost(top):,.2f}/month, the largest item of the stack's estimate of "
        f"${total:,.2f}/month {scale} in {result.region}, above the {config['environment']} "
        f"budget of ${budget:,.2f} (largest items: {largest}){left_out}",
        "use smaller or fewer instances or SPOT capacity (`mlscaffold cost` shows every item), "
        "or raise monthly-budget.budget_usd in the policy file")


# ------------------------------------------------------------------ MLflow tracking servers

MLFLOW_TRACKING_SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
_MLFLOW_SIZES = ["Small", "Medium", "Large"]


@rule("mlflow-server-size", pack="cost", severity="low", resource_types=[MLFLOW_TRACKING_SERVER],
      description="SageMaker MLflow tracking servers, which run and bill around the clock, use "
                  "a size from the environment's allow-list (Small outside production).",
      config={"allowed": _schema_list("Tracking server sizes (Small, Medium, Large) allowed.",
                                      ["Small"])},
      profiles={"prod": {"allowed": _MLFLOW_SIZES}})
def mlflow_server_size(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = list(config["allowed"])
    # AWS's default size is Small (API CreateMlflowTrackingServer, TrackingServerSize)
    size = subject.props.get("trackingServerSize") or "Small"
    if isinstance(size, str) and size not in allowed:
        yield violation(subject, "trackingServerSize",
                        f"is {size}, not an allowed tracking server size in this environment",
                        f"use {_list(allowed)} (tracking.server_size in the stack config), or "
                        "add it to mlflow-server-size.allowed in the policy file")
