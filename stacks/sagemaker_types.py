"""The instance types SageMaker hosts real-time endpoints on: one table, the serving config's
check of `serving.instance_type` and the tests read it.

The ProductionVariantInstanceType enum of the SageMaker API (the types CreateEndpointConfig
takes), as botocore 1.44.8 ships it (botocore/data/sagemaker/2017-07-24/service-2.json), less
the arm64 (AWS Graviton) families, whose types the x86_64 serving image cannot run on. A test
compares it with the installed botocore's enum. Specs and prices are in instances.py and the
price table, for the types they know.
"""

from __future__ import annotations

__all__ = ["SAGEMAKER_ARM64_FAMILIES", "SAGEMAKER_HOSTING_TYPES", "hosting_sizes"]

# family -> its sizes, smallest first
_SIZES: dict[str, str] = {
    "c4": "large xlarge 2xlarge 4xlarge 8xlarge",
    "c5": "large xlarge 2xlarge 4xlarge 9xlarge 18xlarge",
    "c5d": "large xlarge 2xlarge 4xlarge 9xlarge 18xlarge",
    "c6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "c6in": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "c7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "dl1": "24xlarge",
    "g4dn": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "g5": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6e": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g7": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "g7e": "2xlarge 4xlarge 8xlarge 12xlarge 24xlarge 48xlarge",
    "inf1": "xlarge 2xlarge 6xlarge 24xlarge",
    "inf2": "xlarge 8xlarge 24xlarge 48xlarge",
    "m4": "xlarge 2xlarge 4xlarge 10xlarge 16xlarge",
    "m5": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "m5d": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "m6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "m7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "p2": "xlarge 8xlarge 16xlarge",
    "p3": "2xlarge 8xlarge 16xlarge",
    "p4d": "24xlarge",
    "p4de": "24xlarge",
    "p5": "4xlarge 48xlarge",
    "p5e": "48xlarge",
    "p5en": "48xlarge",
    "p6-b200": "48xlarge",
    "p6-b300": "48xlarge",
    "p6e-gb200": "36xlarge",
    "r5": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "r5d": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "r6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "r7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "t2": "medium large xlarge 2xlarge",
    "trn1": "2xlarge 32xlarge",
    "trn1n": "32xlarge",
    "trn2": "48xlarge",
}
SAGEMAKER_HOSTING_TYPES: frozenset[str] = frozenset(
    f"ml.{family}.{size}" for family, sizes in _SIZES.items() for size in sizes.split())
# the enum's arm64 (Graviton: a "g" after the generation) families
SAGEMAKER_ARM64_FAMILIES = frozenset({
    "c6g", "c6gd", "c6gn", "c7g", "c8g", "m6g", "m6gd", "m8g", "r6g", "r6gd", "r7gd", "r8g"})


def hosting_sizes(family: str) -> list[str]:
    """The sizes SageMaker hosts of `family` (``g5``: xlarge ... 48xlarge), smallest first;
    [] for a family it does not host."""
    return _SIZES.get(family, "").split()
