"""Facts about EC2 and SageMaker instance types: vCPUs, memory, NVIDIA GPUs, local storage.

One table for the stack config validators, the policies (GPU limits, schedulability) and the
cost estimator (which keeps its prices in its own dated table). Figures are AWS's published
instance specifications.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ACCELERATED_FAMILY", "EC2_INSTANCES", "GPU_FAMILY", "INSTANCE_STORE_FAMILIES",
           "SAGEMAKER_INSTANCES", "InstanceType", "cpu_families", "family_types", "gpu_count",
           "gpu_families", "has_instance_store", "instance_family", "instance_info",
           "instance_size", "is_accelerated", "is_gpu"]


@dataclass(frozen=True)
class InstanceType:
    vcpus: int
    memory_gib: float
    gpus: int = 0
    gpu_model: str | None = None
    #: CPU architecture: "x86_64", or "arm64" for Graviton types (which need arm64 AMIs)
    arch: str = "x86_64"


def _family(gpu_model: str | None, sizes: dict[str, tuple[int, float, int]]) -> dict:
    return {size: InstanceType(v, m, g, gpu_model if g else None)
            for size, (v, m, g) in sizes.items()}


EC2_INSTANCES: dict[str, InstanceType] = {
    **{f"m6i.{s}": i for s, i in _family(None, {
        "large": (2, 8, 0), "xlarge": (4, 16, 0), "2xlarge": (8, 32, 0),
        "4xlarge": (16, 64, 0)}).items()},
    **{f"m7i.{s}": i for s, i in _family(None, {
        "large": (2, 8, 0), "xlarge": (4, 16, 0), "2xlarge": (8, 32, 0)}).items()},
    **{f"c6i.{s}": i for s, i in _family(None, {
        "large": (2, 4, 0), "xlarge": (4, 8, 0), "2xlarge": (8, 16, 0)}).items()},
    **{f"t3.{s}": i for s, i in _family(None, {
        "medium": (2, 4, 0), "large": (2, 8, 0), "xlarge": (4, 16, 0)}).items()},
    # Graviton (arm64) burstable types, for small single instances such as the API relay
    "t4g.nano": InstanceType(2, 0.5, arch="arm64"),
    "t4g.micro": InstanceType(2, 1, arch="arm64"),
    **{f"g4dn.{s}": i for s, i in _family("T4", {
        "xlarge": (4, 16, 1), "2xlarge": (8, 32, 1), "4xlarge": (16, 64, 1),
        "8xlarge": (32, 128, 1), "12xlarge": (48, 192, 4), "16xlarge": (64, 256, 1)}).items()},
    **{f"g5.{s}": i for s, i in _family("A10G", {
        "xlarge": (4, 16, 1), "2xlarge": (8, 32, 1), "4xlarge": (16, 64, 1),
        "8xlarge": (32, 128, 1), "12xlarge": (48, 192, 4), "16xlarge": (64, 256, 1),
        "24xlarge": (96, 384, 4), "48xlarge": (192, 768, 8)}).items()},
    **{f"g6.{s}": i for s, i in _family("L4", {
        "xlarge": (4, 16, 1), "2xlarge": (8, 32, 1), "4xlarge": (16, 64, 1),
        "8xlarge": (32, 128, 1), "12xlarge": (48, 192, 4), "16xlarge": (64, 256, 1),
        "24xlarge": (96, 384, 4), "48xlarge": (192, 768, 8)}).items()},
    # 8xlarge, 16xlarge and 24xlarge: AWS's aws/sagemaker-hyperpod-cli INSTANCE_RESOURCES
    # (ml.g6e.*: 32/256/1, 64/512/1, 96/768/4), as torchx PR #969 (named_resources_aws.py);
    # no sourced on-demand price: prices.json lists them under unpriced
    **{f"g6e.{s}": i for s, i in _family("L40S", {
        "xlarge": (4, 32, 1), "2xlarge": (8, 64, 1), "4xlarge": (16, 128, 1),
        "8xlarge": (32, 256, 1), "12xlarge": (48, 384, 4), "16xlarge": (64, 512, 1),
        "24xlarge": (96, 768, 4), "48xlarge": (192, 1536, 8)}).items()},
    "p3.2xlarge": InstanceType(8, 61, 1, "V100"),
    "p3.8xlarge": InstanceType(32, 244, 4, "V100"),
    "p4d.24xlarge": InstanceType(96, 1152, 8, "A100"),
    "p5.48xlarge": InstanceType(192, 2048, 8, "H100"),
}

SAGEMAKER_INSTANCES: dict[str, InstanceType] = {
    "ml.t2.medium": InstanceType(2, 4),
    "ml.m5.large": InstanceType(2, 8),
    "ml.m5.xlarge": InstanceType(4, 16),
    "ml.m5.2xlarge": InstanceType(8, 32),
    "ml.c5.large": InstanceType(2, 4),
    "ml.c5.xlarge": InstanceType(4, 8),
    "ml.c5.2xlarge": InstanceType(8, 16),
    "ml.g4dn.xlarge": InstanceType(4, 16, 1, "T4"),
    "ml.g5.xlarge": InstanceType(4, 16, 1, "A10G"),
    "ml.g5.2xlarge": InstanceType(8, 32, 1, "A10G"),
    "ml.g6.xlarge": InstanceType(4, 16, 1, "L4"),
    # larger CPU sizes, specs only (no sourced hosting price: prices.json lists them under
    # unpriced): AWS's aws/sagemaker-hyperpod-cli, src/sagemaker/hyperpod/training/
    # quota_allocation_util.py INSTANCE_RESOURCES; the c5 figures also in the EC2 User Guide,
    # "Compute optimized instances", hardware specifications
    "ml.m5.4xlarge": InstanceType(16, 64),
    "ml.m5.12xlarge": InstanceType(48, 192),
    "ml.m5.24xlarge": InstanceType(96, 384),
    "ml.c5.4xlarge": InstanceType(16, 32),
    "ml.c5.9xlarge": InstanceType(36, 72),
    "ml.c5.18xlarge": InstanceType(72, 144),
}

# A SageMaker type the table does not list has, where EC2_INSTANCES lists the same type without
# "ml.", that EC2 type's specs (ml.g5.12xlarge: g5.12xlarge's); AWS's own SageMaker table
# (aws/sagemaker-hyperpod-cli INSTANCE_RESOURCES) gives the ml.* types the EC2 types' vCPUs,
# memory and GPUs (ml.g5.*, ml.g6.*, ml.g6e.*, ml.p4d.24xlarge, ml.p5.48xlarge, ml.c6i.*,
# ml.m6i.*, ml.m7i.*). Others (ml.inf2.xlarge) have no specs here: see instance_info.

# Families by name, for types the table does not know: NVIDIA GPU families start with g or p
# (g4dn, g6e, p5), accelerated ones also with inf (AWS Inferentia), trn (AWS Trainium) or dl
# (Habana Gaudi), then a generation digit
GPU_FAMILY = re.compile(r"^(g|p)\d")
ACCELERATED_FAMILY = re.compile(r"^(g|p|inf|trn|dl)\d")

# instance families with local NVMe instance storage: it is encrypted by the instance's hardware,
# and SageMaker refuses a KMS key for their storage volume (an endpoint configuration's
# KmsKeyId, a job's VolumeKmsKeyId) when any of its instances has one
INSTANCE_STORE_FAMILIES = frozenset({"c5d", "g4dn", "g5", "g6", "g6e", "m5d", "p3dn", "p4d",
                                     "p4de", "p5", "p5e", "p5en", "r5d", "trn1", "trn1n"})


def instance_family(instance_type: str) -> str:
    """The family of an EC2 (``g5.xlarge``) or SageMaker (``ml.g5.xlarge``) type: ``g5``."""
    return instance_type.removeprefix("ml.").split(".")[0]


def has_instance_store(instance_type: str) -> bool:
    """Whether an EC2 (``g5.xlarge``) or SageMaker (``ml.g5.xlarge``) type has instance storage."""
    parts = instance_type.removeprefix("ml.").split(".")
    return len(parts) == 2 and instance_family(instance_type) in INSTANCE_STORE_FAMILIES


def instance_info(instance_type: str) -> InstanceType | None:
    """Specs of an EC2 or SageMaker type; a SageMaker type the table does not list has its EC2
    counterpart's (``ml.g5.12xlarge``: ``g5.12xlarge``'s); None when mlscaffold does not know
    them (then judge the type conservatively: :func:`is_accelerated`)."""
    info = EC2_INSTANCES.get(instance_type) or SAGEMAKER_INSTANCES.get(instance_type)
    if info is None and instance_type.startswith("ml."):
        info = EC2_INSTANCES.get(instance_type.removeprefix("ml."))
    return info


def gpu_count(instance_type: str) -> int:
    """NVIDIA GPUs of an EC2 or SageMaker instance type (0 when unknown or CPU-only)."""
    info = instance_info(instance_type)
    return info.gpus if info else 0


def is_gpu(instance_type: str) -> bool:
    return gpu_count(instance_type) > 0


def is_accelerated(instance_type: str) -> bool:
    """GPU (or other accelerator) instance: the table's GPU types, and types the table does not
    know of the accelerated families (:data:`ACCELERATED_FAMILY`), so that a new GPU type is
    not judged as a CPU type."""
    return is_gpu(instance_type) or (
        instance_info(instance_type) is None
        and bool(ACCELERATED_FAMILY.match(instance_family(instance_type))))


def instance_size(instance_type: str) -> str:
    """The size of an EC2 (``g5.2xlarge``) or SageMaker type: ``2xlarge``."""
    return instance_type.removeprefix("ml.").split(".", 1)[-1]


def gpu_families() -> list[str]:
    """The EC2 families of the table with NVIDIA GPUs, e.g. ``g4dn, g5, g6, ...``."""
    return sorted({instance_family(t) for t in EC2_INSTANCES if is_gpu(t)})


def cpu_families(arch: str | None = "x86_64") -> list[str]:
    """The EC2 families of the table without GPUs, of CPU architecture `arch` only unless it
    is None, e.g. ``c6i, m6i, m7i, t3``."""
    return sorted({instance_family(t) for t, info in EC2_INSTANCES.items()
                   if not info.gpus and (arch is None or info.arch == arch)})


def family_types(families: Iterable[str], sizes: Iterable[str] = ()) -> list[str]:
    """The table's EC2 types of `families`, of `sizes` only when any are given, in table
    order: what a Karpenter NodePool restricted to those families and sizes may launch, as far
    as mlscaffold knows (the validators and cost rules judge these)."""
    wanted, allowed = set(families), set(sizes)
    return [t for t in EC2_INSTANCES if instance_family(t) in wanted
            and (not allowed or instance_size(t) in allowed)]
