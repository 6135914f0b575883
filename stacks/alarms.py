"""What no data means for each CloudWatch alarm of the platform, and so how the alarm treats it.

One table, read by the alarms of :mod:`.monitoring` and the rollback alarms of :mod:`.serving`,
and explained to users in docs/deploy.md (section Monitoring; a test keeps the two equal). Keys
are the alarms' names without the ``<project>-<env>-`` prefix.

A metric that is published only when something happens (SageMaker's invocation metrics: one
datapoint per request) has no data when nothing happens: that is idle, not broken, so it does
not breach. A metric that is published on a fixed interval while its resource exists (an
endpoint instance's CPU, a node's CPU from the CloudWatch agent) has no data only when the
resource or its agent is gone: that breaches. ``invocations-low`` is about missing traffic, so
no data is exactly what it alarms on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MISSING_DATA", "MissingData"]


@dataclass(frozen=True)
class MissingData:
    """How an alarm treats periods without data, and why."""

    treat: Literal["breaching", "notBreaching"]
    """CloudWatch's ``TreatMissingData``."""
    meaning: str
    """What a period without data means for this metric."""


MISSING_DATA: dict[str, MissingData] = {
    "endpoint-5xx-rate": MissingData(
        "notBreaching", "no invocations, so nothing failed"),
    "endpoint-latency-p99": MissingData(
        "notBreaching", "no invocations, so no latency to measure"),
    "endpoint-cpu": MissingData(
        "breaching", "every running endpoint instance reports its CPU each minute: no data "
                     "means the instances are gone or not reporting"),
    "endpoint-invocations-low": MissingData(
        "breaching", "no invocations at all, the traffic drop the alarm is for"),
    "rollback-5xx": MissingData(
        "notBreaching", "no invocations during a deployment: nothing to roll back for"),
    "rollback-latency-p99": MissingData(
        "notBreaching", "no invocations during a deployment: nothing to roll back for"),
    "cluster-gpu-utilization": MissingData(
        "notBreaching", "no GPU node is running: the GPU pools scale to zero when idle"),
    "cluster-node-cpu": MissingData(
        "breaching", "the system node group keeps at least one node, whose CloudWatch agent "
                     "reports every minute: no data means the agent or the nodes are broken "
                     "(notBreaching when cluster.system_node_group.min_size is 0)"),
}
