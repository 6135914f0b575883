"""Logging security: CloudWatch log groups and SNS topics are encrypted, logs expire.

A key ARN unknown before deployment (a key of the program) counts as set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..props import is_set
from ..rule import Subject, rule, violation

__all__: list[str] = []

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SNS_TOPIC = "aws:sns/topic:Topic"

@rule("cloudwatch-log-retention", pack="security", severity="medium",
      resource_types=[LOG_GROUP],
      description="CloudWatch log groups expire their events after a set retention, at least "
                  "the organisation's minimum (never-expiring logs are kept and paid forever).",
      config={"min_retention_days": {
          "type": "integer", "minimum": 1, "default": 30,
          "description": "Shortest retention allowed, in days (audit and incident needs)."}},
      profiles={"dev": {"min_retention_days": 7}, "prod": {"min_retention_days": 365}})
def cloudwatch_log_retention(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    minimum = int(config["min_retention_days"])
    fix = f"set retention_in_days to {minimum} or more"
    days = subject.props.get("retentionInDays")
    if not days:  # absent or 0: never expire
        yield violation(subject, "retentionInDays", "is not set (events never expire)", fix)
    elif float(days) < minimum:
        yield violation(subject, "retentionInDays", f"is {int(days)} days, below {minimum}",
                        fix)


@rule("cloudwatch-log-group-kms", pack="security", severity="medium",
      resource_types=[LOG_GROUP],
      description="CloudWatch log groups encrypt their events with a KMS key.")
def cloudwatch_log_group_kms(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    if not is_set(subject.props, "kmsKeyId"):
        yield violation(subject, "kmsKeyId", "is not set",
                        "set kms_key_id to the ARN of a KMS key whose policy lets "
                        "logs.<region>.amazonaws.com use it")


@rule("sns-topic-kms", pack="security", severity="medium", resource_types=[SNS_TOPIC],
      description="SNS topics encrypt their messages with a KMS key.")
def sns_topic_kms(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    if not is_set(subject.props, "kmsMasterKeyId"):
        yield violation(subject, "kmsMasterKeyId", "is not set",
                        "set kms_master_key_id to a customer managed KMS key whose policy lets "
                        "the publishing services (e.g. cloudwatch.amazonaws.com) use it")
