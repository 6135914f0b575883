"""The pinned price table (``prices.json``): typed access for the estimator and the cost rules.

The table is dated (``as_of``), names its ``source`` and holds every price mlscaffold uses:
hourly on-demand prices of EC2 and SageMaker instance types, unit prices of the other services,
the spot discount, the multiplier of a region missing from the region table (each known
region's multiplier is in :mod:`mlscaffold.stacks.regions`) and the usage figures the
usage-driven charges are estimated from. It is validated once when first loaded; a missing
price raises :class:`PriceError` naming what is missing.
"""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from importlib.resources import files
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlscaffold.stacks.instances import EC2_INSTANCES, SAGEMAKER_INSTANCES
from mlscaffold.stacks.regions import REGIONS

__all__ = ["PriceError", "PriceTable", "Service", "Unpriced", "Usage", "not_priced", "prices"]


class PriceError(KeyError):
    """The price table has no price for something; the message names it and the fix."""

    def __str__(self) -> str:
        return str(self.args[0])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Usd = Annotated[float, Field(ge=0)]


class Service(_Strict):
    """A unit price of a service."""

    usd: Usd
    unit: str
    source: str


class Usage(_Strict):
    """A usage figure a usage-driven charge is estimated from (an assumption)."""

    value: Annotated[float, Field(ge=0)]
    unit: str
    note: str


class Regions(_Strict):
    """How regions are priced: each known region's multiplier is in the one region table
    (:data:`mlscaffold.stacks.regions.REGIONS`); others get ``default_multiplier``."""

    default_multiplier: Annotated[float, Field(gt=0)]
    note: str

    @property
    def multipliers(self) -> dict[str, float]:
        """Region code -> multiplier of every region mlscaffold knows."""
        return {code: region.price_multiplier for code, region in REGIONS.items()}


class Unpriced(_Strict):
    """Instance types of :mod:`mlscaffold.stacks.instances` the table carries without a price
    (no price could be sourced): the estimate says it cannot price what runs on them."""

    note: str
    ec2_hourly: list[str]
    sagemaker_hosting_hourly: list[str]


class PriceTable(_Strict):
    """The price table; figures are USD in ``base_region``."""

    as_of: date
    source: str
    currency: str
    base_region: str
    hours_per_month: Annotated[float, Field(gt=0)]
    notes: list[str]
    sources: dict[str, str]
    approximate: list[str]
    spot_discount: Annotated[float, Field(ge=0, lt=1)]
    regions: Regions
    assumptions: dict[str, Usage]
    ec2_hourly: dict[str, Usd]
    sagemaker_hosting_hourly: dict[str, Usd]
    sagemaker_processing_hourly: dict[str, Usd]
    services: dict[str, Service]
    unpriced: Unpriced

    @model_validator(mode="after")
    def _prices_the_instance_tables(self) -> PriceTable:
        """The instance types are listed once, in :mod:`mlscaffold.stacks.instances`: the table
        prices exactly those, no more, no fewer, but for the ones it lists under ``unpriced``
        (a type is priced or declared unpriced, never both, never neither)."""
        for section, known in (("ec2_hourly", EC2_INSTANCES),
                               ("sagemaker_hosting_hourly", SAGEMAKER_INSTANCES)):
            priced, declared = getattr(self, section), getattr(self.unpriced, section)
            missing = [t for t in known if t not in priced and t not in declared]
            unknown = [t for t in [*priced, *declared] if t not in known]
            both = [t for t in declared if t in priced]
            if missing or unknown or both:
                raise ValueError(
                    f"{section} must price exactly the types of mlscaffold.stacks.instances "
                    "but those under unpriced: " + "; ".join(part for part in (
                        f"no price for {', '.join(missing)} (price it or list it under "
                        f"unpriced.{section})" if missing else "",
                        f"{', '.join(unknown)} not in the instance table" if unknown else "",
                        f"{', '.join(both)} both priced and unpriced" if both else "")
                        if part))
        return self

    def has_ec2(self, instance_type: str) -> bool:
        """Whether the table prices the EC2 type (unpriced and unknown types: False)."""
        return instance_type in self.ec2_hourly

    def ec2(self, instance_type: str) -> float:
        """On-demand USD per hour of an EC2 instance type in the base region."""
        return self._lookup(self.ec2_hourly, instance_type, "EC2 instance type", "ec2_hourly")

    def sagemaker_hosting(self, instance_type: str) -> float:
        """USD per hour of a SageMaker real-time inference instance in the base region."""
        return self._lookup(self.sagemaker_hosting_hourly, instance_type,
                            "SageMaker hosting instance type", "sagemaker_hosting_hourly")

    def sagemaker_processing(self, instance_type: str) -> float:
        """USD per hour of a SageMaker processing instance (Model Monitor) in the base region."""
        return self._lookup(self.sagemaker_processing_hourly, instance_type,
                            "SageMaker processing instance type", "sagemaker_processing_hourly")

    def service(self, key: str) -> float:
        """A service's unit price in the base region (unit: ``services[key].unit``)."""
        if key not in self.services:
            raise PriceError(f"the price table has no service price {key!r}; add it to "
                             "policies/cost/prices.json under services")
        return self.services[key].usd

    def usage(self, key: str) -> float:
        """A usage figure under ``assumptions``."""
        if key not in self.assumptions:
            raise PriceError(f"the price table has no usage assumption {key!r}; add it to "
                             "policies/cost/prices.json under assumptions")
        return self.assumptions[key].value

    def spot(self, on_demand: float) -> float:
        """Spot price = on-demand x (1 - spot_discount)."""
        return on_demand * (1 - self.spot_discount)

    def region_multiplier(self, region: str) -> tuple[float, str | None]:
        """The multiplier of `region`, and an assumption to print when the region is not listed.

        A region missing from the table is priced with ``regions.default_multiplier`` rather than
        refused, so that estimates and the budget rule keep working in new regions; the returned
        text names the region, the multiplier used and the regions the table knows.
        """
        multipliers = self.regions.multipliers
        if region in multipliers:
            return multipliers[region], None
        known = ", ".join(sorted(multipliers))
        return self.regions.default_multiplier, (
            f"region {region!r} is not in the price table; priced at {self.base_region} x "
            f"{self.regions.default_multiplier:g} (default multiplier). Known regions: {known}")

    @staticmethod
    def _lookup(table: dict[str, float], key: str, what: str, section: str) -> float:
        if key not in table:
            raise PriceError(f"the price table has no price for {what} {key!r}; add it to "
                             f"policies/cost/prices.json under {section}")
        return table[key]


def not_priced(*instance_types: str) -> str:
    """The one wording of a cost line the estimate cannot price."""
    verb = "is" if len(instance_types) == 1 else "are"
    return f"not priced: {', '.join(instance_types)} {verb} not in mlscaffold's price table"


@lru_cache(maxsize=1)
def prices() -> PriceTable:
    """The shipped price table, loaded and validated once."""
    text = (files("mlscaffold.policies.cost") / "prices.json").read_text(encoding="utf-8")
    return PriceTable.model_validate(json.loads(text))
