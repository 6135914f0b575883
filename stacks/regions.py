"""The AWS regions mlscaffold knows: one table, read by every consumer of a per-region fact.

A region is known when every fact below is known for it; ``mlscaffold new`` (the spec's
validation), the stack config (its zone count), the cost estimator (price multipliers), the
monitoring stack (Model Monitor's image) and the network (zones EKS avoids) all read this
table, so a region is either usable everywhere or refused up front with the list of known
ones. No Pulumi or pydantic import here: the spec validates with it.

To add a region, add every field of :class:`Region` for it (with its source), nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_REGION", "REGIONS", "Region", "check_region", "model_monitor_image_uri",
           "unknown_region_message"]


@dataclass(frozen=True)
class Region:
    """What mlscaffold needs to know about one AWS region."""

    price_multiplier: float
    """Cost estimates: the region's prices are the price table's (policies/cost/prices.json,
    base region us-east-1) times this. The ratio of the m6i.large on-demand Linux price there to
    us-east-1, as of the price table's ``as_of`` date (an approximation for every service)."""
    model_monitor_account: str
    """The AWS account whose ECR registry in the region holds SageMaker Model Monitor's
    prebuilt analyzer image, ``sagemaker-model-monitor-analyzer`` (AWS docs, SageMaker "Docker
    Registry Paths and Example Code", per region: Model Monitor (algorithm); the same accounts
    as the SageMaker Python SDK's image_uri_config/model-monitor.json)."""
    availability_zones: int
    """The region's Availability Zones: the AZ IDs AWS lists for it (AWS docs, "AWS Availability
    Zones" in the Regions and Availability Zones guide). The most ``network.availability_zones``
    may ask for; an account may see fewer, which the network's zone lookup reports at deploy."""
    eks_unsupported_zone_ids: tuple[str, ...] = ()
    """Zone IDs where EKS cannot place its control plane's network interfaces, so the network
    leaves them out (AWS docs: "View Amazon EKS networking requirements for VPC and subnets";
    EKS answers UnsupportedAvailabilityZoneException)."""

    def usable_zones(self, *, cluster: bool) -> int:
        """The most zones a stack's network can spread over: all of the region's, less those
        EKS does not support when the stack has a cluster (the network skips them). The one
        count the stack config's check and the generated profiles read."""
        return self.availability_zones - (len(self.eks_unsupported_zone_ids) if cluster else 0)


REGIONS: dict[str, Region] = {
    "us-east-1": Region(1.0, "156813124566", 6, eks_unsupported_zone_ids=("use1-az3",)),
    "us-east-2": Region(1.0, "777275614652", 3),
    "us-west-1": Region(1.17, "890145073186", 3, eks_unsupported_zone_ids=("usw1-az2",)),
    "us-west-2": Region(1.0, "159807026194", 4),
    "ca-central-1": Region(1.11, "536280801234", 3, eks_unsupported_zone_ids=("cac1-az3",)),
    "eu-west-1": Region(1.11, "468650794304", 3),
    "eu-west-2": Region(1.16, "749857270468", 3),
    "eu-west-3": Region(1.17, "680080141114", 3),
    "eu-central-1": Region(1.2, "048819808253", 3),
    "eu-north-1": Region(1.06, "895015795356", 3),
    # AWS docs, "Docker Registry Paths and Example Code for Europe (Milan) (eu-south-1)"
    "eu-south-1": Region(1.17, "933208885752", 3),
    "ap-south-1": Region(1.05, "126357580389", 3),
    "ap-southeast-1": Region(1.25, "245545462676", 3),
    "ap-southeast-2": Region(1.25, "563025443158", 3),
    "ap-northeast-1": Region(1.29, "574779866223", 4),
    "ap-northeast-2": Region(1.23, "709848358524", 4),
    "sa-east-1": Region(1.6, "539772159869", 3),
}

# the spec's default region (ProjectSpec.region, the CLI's and copier.yml's default)
DEFAULT_REGION = "us-east-1"

_MODEL_MONITOR_REPOSITORY = "sagemaker-model-monitor-analyzer"


def unknown_region_message(region: str) -> str:
    """The one line that refuses `region`, naming the regions mlscaffold knows."""
    from ..suggest import did_you_mean

    return (f"{region!r} is not an AWS region mlscaffold knows{did_you_mean(region, REGIONS)}; "
            "use one of: "
            f"{', '.join(REGIONS)}")


def check_region(region: str) -> str:
    """`region`, or ValueError naming the known regions when the table does not hold it."""
    if region not in REGIONS:
        raise ValueError(unknown_region_message(region))
    return region


def model_monitor_image_uri(region: str) -> str:
    """The SageMaker Model Monitor analyzer image of `region` (ValueError if unknown)."""
    account = REGIONS[check_region(region)].model_monitor_account
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{_MODEL_MONITOR_REPOSITORY}"
