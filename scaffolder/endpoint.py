"""`mlscaffold endpoint prepare|verify|cleanup`: a SageMaker endpoint's update, around the
deploy's `pulumi up`.

- :func:`prepare_update` (before): an endpoint whose instance type changes must leave
  Application Auto Scaling first, since SageMaker refuses to update the instance type of a
  scalable variant; a new endpoint configuration starts at the fleet's current size, not at
  ``initial_instance_count``; and the stack's record of the endpoint is refreshed when it
  differs from what runs (after an alarm rollback).
- :func:`verify_endpoint` (after): the endpoint is InService on the endpoint configuration the
  stack deployed; the AWS provider reports success even when SageMaker rolled the update back
  (hashicorp/terraform-provider-aws#48997, #46663).
- :func:`cleanup_endpoint` (after a verified deploy): models and endpoint configurations the
  stack retained when it replaced them, and no endpoint uses, are deleted; the previous pair
  stays for a rollback.

Everything comes from the stack's outputs (``endpoint``, from ``pulumi stack output --json``)
and its config (``infra/Pulumi.<stack>.yaml``); the clients use the standard AWS credentials.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aws import aws_client, aws_errors, error_code
from .errors import MlscaffoldError, UsageError
from .outputs import require_output

__all__ = ["Cleanup", "EndpointTarget", "Preparation", "Verification", "cleanup_endpoint",
           "endpoint_target", "prepare_update", "stack_endpoint", "verify_endpoint"]

IN_SERVICE = "InService"
# statuses an update passes through: wait for them to end (API reference, DescribeEndpoint)
TRANSITIONAL = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
POLL_SECONDS = 30
# a blue/green update runs at most maximum_execution_timeout_in_seconds (stacks/serving.py)
WAIT_SECONDS = 3600
_PERMISSIONS = {
    "prepare": "sagemaker:DescribeEndpoint, DescribeEndpointConfig and DescribeModel, "
               "application-autoscaling:DescribeScalableTargets, DescribeScalingPolicies, "
               "DeleteScalingPolicy and DeregisterScalableTarget",
    "verify": "sagemaker:DescribeEndpoint and cloudwatch:DescribeAlarms",
    "cleanup": "sagemaker:DescribeEndpoint, DescribeEndpointConfig, ListEndpointConfigs, "
               "ListModels, DeleteEndpointConfig and DeleteModel",
}


@dataclass(frozen=True)
class EndpointTarget:
    """A stack's SageMaker endpoint as its last `pulumi up` left it (stack output
    ``endpoint``)."""

    stack: str
    region: str
    name: str
    config_name: str
    model_name: str
    model_key: str
    variant: str
    rollback_alarms: tuple[str, ...]
    config_name_base: str
    model_name_base: str
    challenger_model_name_base: str | None = None
    """An A/B test's challenger models (``endpoint.challenger`` of the outputs), if any."""

    @property
    def resource_id(self) -> str:
        """The variant's Application Auto Scaling resource ID."""
        return f"endpoint/{self.name}/variant/{self.variant}"


def endpoint_target(outputs: Mapping[str, Any], stack: str, region: str) -> EndpointTarget:
    """The endpoint of `stack` from its outputs; a stack without one is a usage error."""
    endpoint = require_output(dict(outputs), "endpoint", stack,
                              "describes its SageMaker endpoint (serving: sagemaker)")
    try:
        return EndpointTarget(
            stack=stack, region=region, name=str(endpoint["name"]),
            config_name=str(endpoint["config_name"]), model_name=str(endpoint["model_name"]),
            model_key=str(endpoint["model_key"]), variant=str(endpoint["variant"]),
            rollback_alarms=tuple(str(a) for a in endpoint["rollback_alarms"]),
            config_name_base=str(endpoint["config_name_base"]),
            model_name_base=str(endpoint["model_name_base"]),
            challenger_model_name_base=str(endpoint["challenger"]["model_name_base"])
            if endpoint.get("challenger") else None)
    except (KeyError, TypeError) as error:
        raise UsageError(f"stack {stack}'s output 'endpoint' lacks {error}",
                         hint="deploy the stack with this mlscaffold version first "
                              "(make deploy STACK=...)") from None


def stack_endpoint(project: Path, stack: str, outputs_source: str | None = None
                   ) -> EndpointTarget:
    """The endpoint of `project`'s `stack`: its outputs (`outputs_source`: a JSON file, ``-``,
    or the Pulumi CLI) in the stack's region (``aws:region`` of its config)."""
    from .infra import find_project, stack_config
    from .outputs import read_stack_outputs
    from .spec import SPEC_FILENAME, load_spec

    root = find_project(project)
    spec = load_spec(root / SPEC_FILENAME)
    region = stack_config(root, spec, stack).get("aws:region", spec.region)
    return endpoint_target(read_stack_outputs(root, stack, outputs_source), stack, region)


def _describe(sagemaker: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when there is no such endpoint."""
    from botocore.exceptions import ClientError

    try:
        return dict(sagemaker.describe_endpoint(EndpointName=name))
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if error_code(error) == "ValidationException" and "Could not find" in message:
            return None
        raise


def _settled(sagemaker: Any, name: str, sleep: Callable[[float], None], poll_seconds: float,
             wait_seconds: float) -> tuple[dict[str, Any] | None, int]:
    """DescribeEndpoint once the endpoint leaves the transitional statuses (or the wait is
    over), and how many times it waited."""
    polls = 0
    while True:
        described = _describe(sagemaker, name)
        if described is None or described.get("EndpointStatus") not in TRANSITIONAL \
                or polls * poll_seconds >= wait_seconds:
            return described, polls
        polls += 1
        sleep(poll_seconds)


def _variant(described: Mapping[str, Any], variant: str) -> dict[str, Any]:
    for item in described.get("ProductionVariants") or []:
        if item.get("VariantName") == variant:
            return dict(item)
    return {}


# ---------------------------------------------------------------------------- prepare


@dataclass(frozen=True)
class Preparation:
    """What the deploy's `pulumi up` needs: ``--refresh`` or not, and the instance count the
    new endpoint configuration starts with (None: the stack config's, a new endpoint)."""

    refresh: bool
    instance_count: int | None
    notes: tuple[str, ...] = ()

    def shell(self) -> str:
        """``refresh=...`` and ``instance_count=...`` lines for a POSIX shell's eval."""
        return (f"refresh={'--refresh' if self.refresh else ''}\n"
                f"instance_count={'' if self.instance_count is None else self.instance_count}\n")


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def prepare_update(project: Path, stack: str, *, model_key: str, image_tag: str,
                   outputs_source: str | None = None, sagemaker: Any = None,
                   autoscaling: Any = None,
                   sleep: Callable[[float], None] = time.sleep,
                   poll_seconds: float = POLL_SECONDS,
                   wait_seconds: float = WAIT_SECONDS) -> Preparation:
    """Ready a stack's endpoint for the `pulumi up` that deploys `model_key` with the serving
    image `image_tag` (the deploy's config), before it runs. The stack's outputs come from
    `outputs_source` (a JSON file, ``-``, or the Pulumi CLI).

    - The instance type changes: the variant's scalable target is deregistered (with its
      scaling policy), as SageMaker refuses to change the instance type of a variant that
      autoscales (AWS docs, "Update endpoints that use auto scaling"); ``pulumi up
      --refresh`` then sees it gone and registers it again once the endpoint is updated.
    - A new endpoint configuration (new model, image or instance type) starts at the fleet's
      current DesiredInstanceCount, clamped to [min_instances, max_instances]; otherwise the
      running configuration's count is kept, so that autoscaling alone makes no change.
    - The endpoint runs another configuration than the stack recorded (an alarm rollback), is
      gone, or has no scalable target: ``--refresh``, so that Pulumi plans from what runs.

    An endpoint that is updating (autoscaling, an earlier deploy) is waited for; one that
    failed is a MlscaffoldError naming its reason.
    """
    from .infra import find_project, stack_platform_config
    from .outputs import read_stack_outputs
    from .spec import SPEC_FILENAME, load_spec
    from .stacks.model_keys import MODEL_KEY_PATTERN

    if not MODEL_KEY_PATTERN.match(model_key):
        raise UsageError(f"--model-key {model_key!r} is not a model key",
                         hint="pass what `mlscaffold model upload` prints: "
                              "models/<sha256>/model.tar.gz")
    root = find_project(project)
    spec = load_spec(root / SPEC_FILENAME)
    config = stack_platform_config(root, spec, stack)
    outputs = read_stack_outputs(root, stack, outputs_source)
    serving = config.serving
    if serving.platform != "sagemaker" or not outputs.get("endpoint"):
        return Preparation(False, None, (f"stack {stack} has no SageMaker endpoint (yet): "
                                         "nothing to prepare",))
    target = endpoint_target(outputs, stack, config.region)
    wanted_url = "s3://{}/{}".format(
        require_output(dict(outputs), "artifact_bucket", stack, "holds the model versions"),
        model_key)
    wanted_image = "{}:{}".format(
        require_output(dict(outputs), "repository_url", stack, "holds the serving image"),
        image_tag)
    sagemaker = sagemaker or aws_client("sagemaker", config.region)
    autoscaling = autoscaling or aws_client("application-autoscaling", config.region)
    notes: list[str] = []
    refresh = False
    with aws_errors(f"prepare endpoint {target.name} for its update", _PERMISSIONS["prepare"]):
        described, _ = _settled(sagemaker, target.name, sleep, poll_seconds, wait_seconds)
        if described is None:
            return Preparation(True, None, (f"endpoint {target.name} is in the stack but not "
                                            "in AWS: refreshing the stack's record first",))
        status = str(described.get("EndpointStatus"))
        if status != IN_SERVICE:
            reason = described.get("FailureReason")
            settle = (f"wait until it is InService (`aws sagemaker wait endpoint-in-service "
                      f"--endpoint-name {target.name} --region {config.region}`), then deploy "
                      "again")
            recreate = (f"see its reason and the logs in /aws/sagemaker/Endpoints/{target.name}"
                        f"; delete it (`aws sagemaker delete-endpoint --endpoint-name "
                        f"{target.name}`) and deploy again")
            raise MlscaffoldError(
                f"endpoint {target.name} is {status}" + (f" ({reason})" if reason else "")
                + ", so it cannot be updated now",
                hint=settle if status in TRANSITIONAL else recreate)
        running = str(described["EndpointConfigName"])
        if running != target.config_name:
            refresh = True
            notes.append(f"endpoint {target.name} runs endpoint config {running}, the stack "
                         f"recorded {target.config_name} (a rolled-back update): refreshing the "
                         "stack's record first")
        running_config = sagemaker.describe_endpoint_config(EndpointConfigName=running)
        variant = next((v for v in running_config.get("ProductionVariants", [])
                        if v.get("VariantName") == target.variant), {})
        container = sagemaker.describe_model(
            ModelName=variant["ModelName"]).get("PrimaryContainer", {}) if variant else {}
        running_type = variant.get("InstanceType")
        type_changes = running_type != serving.instance_type
        new_config = (type_changes or container.get("ModelDataUrl") != wanted_url
                      or container.get("Image") != wanted_image)

        targets = autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[target.resource_id],
            ScalableDimension=SCALABLE_DIMENSION).get("ScalableTargets", [])
        if type_changes and targets:
            # the documented order: the variant's scaling policies, then its target
            scalable = {"ServiceNamespace": "sagemaker", "ResourceId": target.resource_id,
                        "ScalableDimension": SCALABLE_DIMENSION}
            for policy in autoscaling.describe_scaling_policies(**scalable).get(
                    "ScalingPolicies", []):
                autoscaling.delete_scaling_policy(PolicyName=policy["PolicyName"], **scalable)
            autoscaling.deregister_scalable_target(**scalable)
            refresh = True
            notes.append(f"the instance type changes from {running_type} to "
                         f"{serving.instance_type}: deregistered {target.resource_id} from "
                         "autoscaling (SageMaker refuses the update otherwise); pulumi up "
                         "registers it again after the update")
        elif not targets:
            refresh = True
            notes.append(f"{target.resource_id} is not registered for autoscaling: refreshing "
                         "so that pulumi up registers it again")

    low, high = serving.min_instances, serving.max_instances
    desired = _variant(described, target.variant)
    current = int(desired.get("DesiredInstanceCount") or desired.get("CurrentInstanceCount")
                  or low)
    initial = int(variant.get("InitialInstanceCount") or current)
    if new_config or _clamp(initial, low, high) != initial:
        count = _clamp(current, low, high)
        notes.append(f"the new endpoint configuration starts with {count} instance"
                     f"{'s' if count != 1 else ''} (now {current}, bounds [{low}, {high}])")
    else:
        count = initial  # unchanged: the running configuration's count, so no new one
    return Preparation(refresh, count, tuple(notes))


# ---------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Verification:
    """The endpoint runs what the stack deployed."""

    endpoint: str
    config_name: str
    model_key: str
    polls: int


def _alarm_states(cloudwatch: Any, names: tuple[str, ...]) -> str:
    """"name STATE, ..." of the rollback alarms, or why they could not be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not names:
        return "none configured"
    try:
        alarms = cloudwatch.describe_alarms(AlarmNames=list(names)).get("MetricAlarms", [])
    except (BotoCoreError, ClientError) as error:
        return f"{', '.join(names)}; their states could not be read: {error_code(error) or error}"
    states = {a["AlarmName"]: a.get("StateValue", "?") for a in alarms}
    return ", ".join(f"{name} {states.get(name, 'missing')}" for name in names)


def verify_endpoint(target: EndpointTarget, *, sagemaker: Any = None, cloudwatch: Any = None,
                    sleep: Callable[[float], None] = time.sleep,
                    poll_seconds: float = POLL_SECONDS,
                    wait_seconds: float = WAIT_SECONDS) -> Verification:
    """Wait while the endpoint updates, then check that it is InService on the endpoint
    configuration the stack deployed; MlscaffoldError naming the rollback (and its alarms)
    or the failure otherwise."""
    sagemaker = sagemaker or aws_client("sagemaker", target.region)
    with aws_errors(f"verify endpoint {target.name}", _PERMISSIONS["verify"]):
        described, polls = _settled(sagemaker, target.name, sleep, poll_seconds, wait_seconds)
        if described is None:
            raise MlscaffoldError(f"endpoint {target.name} does not exist, though stack "
                                  f"{target.stack} deployed it",
                                  hint="deploy again: the deploy refreshes the stack's record "
                                       "and creates it")
        status = str(described.get("EndpointStatus"))
        running = str(described.get("EndpointConfigName"))
        reason = described.get("FailureReason")
        logs = f"/aws/sagemaker/Endpoints/{target.name}"
        if status != IN_SERVICE:
            raise MlscaffoldError(
                f"endpoint {target.name} is {status} on endpoint config {running}"
                + (f" ({reason})" if reason else "")
                + (f" after {polls * poll_seconds / 60:.0f} minutes" if status in TRANSITIONAL
                   else ""),
                hint=f"see its events and the logs in {logs}; run `mlscaffold endpoint verify "
                     f"--stack {target.stack}` again once it settles")
        if running != target.config_name:
            cloudwatch = cloudwatch or aws_client("cloudwatch", target.region)
            raise MlscaffoldError(
                f"endpoint {target.name} rolled back to endpoint config {running} (rollback "
                f"alarms: {_alarm_states(cloudwatch, target.rollback_alarms)}"
                + (f"; {reason}" if reason else "") + f"); the new model {target.model_key} "
                f"(endpoint config {target.config_name}) did not deploy",
                hint=f"see the alarms in CloudWatch and the endpoint's logs in {logs}; fix the "
                     "model or restore the previous one (make rollback STAGE=...), then deploy "
                     "again (docs/deploy.md, A new model in production)")
    return Verification(target.name, running, target.model_key, polls)


# ---------------------------------------------------------------------------- cleanup


@dataclass(frozen=True)
class Cleanup:
    """What cleanup kept and deleted, by name."""

    kept_configs: tuple[str, ...]
    deleted_configs: tuple[str, ...]
    kept_models: tuple[str, ...]
    deleted_models: tuple[str, ...]


def _versions(base: str) -> re.Pattern[str]:
    """Names Pulumi auto-generates from `base`: ``<base>-<random hex>``."""
    return re.compile(rf"^{re.escape(base)}-[0-9a-f]+$")


def _listed(client: Any, operation: str, field: str, name_field: str, base: str
            ) -> list[dict[str, Any]]:
    pattern = _versions(base)
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(NameContains=base):
        items += [dict(i) for i in page.get(field, []) if pattern.match(str(i[name_field]))]
    return sorted(items, key=lambda i: i.get("CreationTime") or 0, reverse=True)


def cleanup_endpoint(target: EndpointTarget, *, sagemaker: Any = None, keep_previous: int = 1
                     ) -> Cleanup:
    """Delete the stack's retained endpoint configurations and models that no endpoint uses:
    everything but the running configuration, the one the stack deployed, and the
    `keep_previous` newest others (for a rollback), and the models of those. Refused while the
    endpoint is not InService (an update may still need the old pair)."""
    sagemaker = sagemaker or aws_client("sagemaker", target.region)
    with aws_errors(f"clean up the old versions of endpoint {target.name}",
                    _PERMISSIONS["cleanup"]):
        described = _describe(sagemaker, target.name)
        status = None if described is None else described.get("EndpointStatus")
        if status != IN_SERVICE:
            raise MlscaffoldError(
                f"endpoint {target.name} is {status or 'missing'}: cleanup deletes nothing "
                "while an endpoint may still need an old version",
                hint="run it again once the endpoint is InService (`mlscaffold endpoint verify` "
                     "waits for that)")
        running = str(described["EndpointConfigName"])
        configs = _listed(sagemaker, "list_endpoint_configs", "EndpointConfigs",
                          "EndpointConfigName", target.config_name_base)
        keep = {running, target.config_name}
        previous = [c["EndpointConfigName"] for c in configs
                    if c["EndpointConfigName"] not in keep][:keep_previous]
        keep.update(previous)
        kept_models: set[str] = set()
        for name in sorted(keep):
            described_config = sagemaker.describe_endpoint_config(EndpointConfigName=name)
            kept_models.update(str(v["ModelName"])
                               for v in described_config.get("ProductionVariants", []))
        deleted_configs = [c["EndpointConfigName"] for c in configs
                           if c["EndpointConfigName"] not in keep]
        for name in deleted_configs:
            sagemaker.delete_endpoint_config(EndpointConfigName=name)
        models = [model for base in (target.model_name_base, target.challenger_model_name_base)
                  if base for model in _listed(sagemaker, "list_models", "Models", "ModelName",
                                               base)]
        deleted_models = [m["ModelName"] for m in models if m["ModelName"] not in kept_models]
        for name in deleted_models:
            sagemaker.delete_model(ModelName=name)
    return Cleanup(tuple(sorted(keep)), tuple(deleted_configs), tuple(sorted(kept_models)),
                   tuple(deleted_models))
