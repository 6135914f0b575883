"""`mlscaffold endpoint canary`: the version a KServe Serverless canary decides on.

With ``serving.kserve_mode: serverless`` and ``rollout.strategy: canary``, every deploy of a new
version (model and image) gives it ``rollout.canary_percent`` of the traffic, through KServe's
``canaryTrafficPercent``; the version before it keeps the rest. ``make canary-promote`` and
``make canary-rollback`` record the outcome for that very version in the stack config,
``rollout.canary_decision``, and apply the in-cluster program: 100% or 0% for the new version
(``ServingConfig.canary_traffic_percent``). This module names the version: the one the stack's
``cluster`` output hands to the in-cluster program, which is what runs.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .outputs import require_output

__all__ = ["CanaryVersion", "canary_status", "canary_version", "deployed_urls"]


@dataclass(frozen=True)
class CanaryVersion:
    """The version a stack deploys: its model key and serving image tag."""

    model_key: str
    image_tag: str

    def shell(self) -> str:
        """``model_key=...`` and ``image_tag=...`` lines for a POSIX shell's eval."""
        return (f"model_key={shlex.quote(self.model_key)}\n"
                f"image_tag={shlex.quote(self.image_tag)}\n")


def deployed_urls(outputs: Mapping[str, Any]) -> tuple[str, str] | None:
    """(model URL, image URI) the stack's ``cluster`` output hands to the in-cluster program;
    None before a KServe deploy."""
    cluster = outputs.get("cluster")
    urls = cluster.get("serving") if isinstance(cluster, dict) else None
    if not isinstance(urls, dict) or not urls.get("model_url") or not urls.get("image_uri"):
        return None
    return str(urls["model_url"]), str(urls["image_uri"])


def canary_status(percent: int | None) -> str:
    """What `mlscaffold status` says of a KServe canary's canaryTrafficPercent."""
    if percent is None:
        return ""
    if percent == 100:
        return "; canaryTrafficPercent 100: promoted, it takes all the requests"
    if percent == 0:
        return ("; canaryTrafficPercent 0: rolled back, the version before it takes all the "
                "requests")
    return (f"; canaryTrafficPercent {percent}: a canary taking {percent}% of the requests, the "
            "version before it the rest (make canary-promote or canary-rollback)")


def canary_version(project: Path, stack: str, outputs_source: str | None = None
                   ) -> CanaryVersion:
    """The version `stack` deploys, for a decision on its canary. A stack without a KServe
    Serverless canary, or one not deployed with KServe yet, is a UsageError naming the fix."""
    from .infra import find_project, stack_platform_config
    from .outputs import read_stack_outputs
    from .spec import SPEC_FILENAME, load_spec
    from .stacks.model_keys import MODEL_KEY_PATTERN, deployed_version

    root = find_project(project)
    spec = load_spec(root / SPEC_FILENAME)
    serving = stack_platform_config(root, spec, stack).serving
    if not serving.kserve_canary:
        raise UsageError(
            f"stack {stack} runs no KServe canary (serving.platform {serving.platform}, "
            f"kserve_mode {serving.kserve_mode}, rollout.strategy {serving.rollout.strategy})",
            hint=f"a canary needs serving.platform kserve, serving.kserve_mode serverless and "
                 f"serving.rollout.strategy canary in infra/Pulumi.{stack}.yaml")
    outputs = read_stack_outputs(root, stack, outputs_source)
    require_output(outputs, "cluster", stack, "names the version the cluster serves")
    urls = deployed_urls(outputs)
    if urls is None:
        raise UsageError(f"stack {stack}'s output 'cluster' names no model it serves",
                         hint=f"deploy the stack with KServe serving first (make deploy "
                              f"STACK={stack})")
    key, tag = deployed_version(*urls)
    if not MODEL_KEY_PATTERN.match(key):
        raise UsageError(f"stack {stack} serves {key}, not a content-addressed model version",
                         hint=f"deploy a registered version first (make deploy STACK={stack})")
    return CanaryVersion(key, tag)
