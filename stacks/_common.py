"""What every component shares: naming, tags, child options and IAM policy documents."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from .names import fitted_name

__all__ = ["assume_role_policy", "child_options", "fitted", "policy_document", "resource_tags",
           "token"]


def token(component: str) -> str:
    """The type token of a component: ``mlscaffold:stacks:Name``."""
    return f"mlscaffold:stacks:{component}"


def child_options(parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
    """Options of a component's child: parented to the component (providers are inherited)."""
    return pulumi.ResourceOptions(parent=parent, **extra)


def fitted(resource: type[pulumi.CustomResource], logical: str) -> str | None:
    """The physical name of the `resource` type named `logical`: None (Pulumi's auto-name, as
    every resource had before) unless that would be longer than AWS allows for the type; then
    a shortened, stable one (:func:`mlscaffold.stacks.names.fitted_name`)."""
    return fitted_name(resource.pulumi_type, logical)


def resource_tags(tags: Mapping[str, str], name: str | None = None,
                  **extra: str) -> dict[str, str]:
    """The platform's tags plus a Name tag and any extras."""
    merged = dict(tags)
    if name:
        merged["Name"] = name
    merged.update(extra)
    return merged


def policy_document(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    """An IAM policy document as JSON; statements may hold Outputs (ARNs)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(service: str) -> str:
    """Trust policy letting an AWS service (``eks.amazonaws.com`` ...) assume a role."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                       "Principal": {"Service": service}}],
    })
