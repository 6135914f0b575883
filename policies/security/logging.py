"""Logging security: CloudWatch log groups and SNS topics are encrypted, logs expire; S3 data
buckets log their requests and CloudTrail records reads and writes of their objects.

A key ARN unknown before deployment (a key of the program) counts as set. The S3 rules are
stack rules over :mod:`mlscaffold.policies.buckets`: a bucket that receives access logs is a log
store and needs neither (its own access logs would log themselves without end, and recording
data events of the bucket a trail writes to would record the trail's own deliveries).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from mlscaffold.stacks.constants import S3_OBJECT

from ..buckets import BUCKET_TYPES, LOGGING_TYPES, access_log_targets, bucket_ids, every_bucket
from ..props import as_mapping, is_false, is_set, items_of, one_or_many
from ..rule import Subject, rule, stack_rule, violation

__all__: list[str] = []

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SNS_TOPIC = "aws:sns/topic:Topic"
TRAIL = "aws:cloudtrail/trail:Trail"

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


# ------------------------------------------------------------------ S3 access logs

_ACCESS_LOG_FIX = ("add an aws.s3.BucketLogging with bucket=<the bucket>.id and target_bucket="
                   "<a log bucket of the stack> (SSE-S3, a bucket policy letting "
                   "logging.s3.amazonaws.com put objects for this bucket)")


def _logging_problems(subject: Subject) -> Iterator[str]:
    target = subject.props.get("targetBucket")
    if not target:
        yield violation(subject, "targetBucket", "is not set", _ACCESS_LOG_FIX)
    elif target == subject.props.get("bucket"):
        yield violation(subject, "targetBucket", "is the logged bucket itself (each log "
                        "delivery would be logged again, without end)",
                        "deliver the logs to a separate log bucket")


def _inline_logging(bucket: Subject) -> list[str] | None:
    if not is_set(bucket.props, "logging"):
        return None
    target = as_mapping(bucket.props["logging"]).get("targetBucket")
    if target and target in bucket_ids(bucket.name, bucket.props):
        return [violation(bucket, "logging.targetBucket", "is the bucket itself (each log "
                          "delivery would be logged again, without end)",
                          "deliver the logs to a separate log bucket")]
    return [] if target else [violation(bucket, "logging.targetBucket", "is not set",
                                        _ACCESS_LOG_FIX)]


@stack_rule("s3-bucket-access-logging", pack="security", severity="medium",
            resource_types=[*BUCKET_TYPES, *LOGGING_TYPES],
            description="S3 buckets log every request to them (server access logging into a "
                        "log bucket of the stack), except the log buckets themselves.")
def s3_bucket_access_logging(subjects: Sequence[Subject], config: Mapping[str, Any]
                             ) -> Iterator[tuple[Subject, str]]:
    targets = access_log_targets((s.type, s.props) for s in subjects)
    yield from every_bucket(
        subjects, LOGGING_TYPES, _logging_problems, _inline_logging,
        lambda bucket: violation(bucket, "access logging", "is not enabled (no BucketLogging "
                                 "applies to the bucket): requests to it leave no record",
                                 _ACCESS_LOG_FIX),
        exempt=lambda bucket: targets.receives_logs(bucket_ids(bucket.name, bucket.props)))


# ------------------------------------------------------------------ CloudTrail data events

_DATA_EVENTS_FIX = ('add an aws.cloudtrail.Trail with an advanced event selector: eventCategory '
                    f'"Data", resources.type "{S3_OBJECT}", resources.ARN starts with '
                    '"arn:aws:s3:::<bucket>/" (read and write events)')


def _arn_rest(value: Any) -> str | None:
    """What an S3 ARN (pattern) names after ``arn:<partition>:s3:::``; '' for every bucket
    (``arn:aws:s3`` or ``arn:aws:s3:::``); None for anything else."""
    match = re.fullmatch(r"arn:[^:]+:s3(?::::(.*))?", str(value), re.DOTALL)
    return None if match is None else match[1] or ""


def _covers(values: list[Any], name: str) -> bool:
    rests = [_arn_rest(v) for v in values]
    return any(rest is not None and f"{name}/".startswith(rest) for rest in rests)


# AWS CloudTrail User Guide, "Filtering data events by using advanced event selectors": without
# a readOnly field a selector logs reads and writes; resources.ARN narrows it to object prefixes
def _advanced_covers(selector: Any, name: str) -> bool:
    """Whether an advanced event selector records every read and write of the bucket's
    objects: data events of S3 objects, no readOnly, eventName or other narrowing field, and a
    resources.ARN filter (if any) whose StartsWith includes the bucket and no exclusion that
    hits it."""
    fields = {str(as_mapping(f).get("field")): as_mapping(f)
              for f in items_of(as_mapping(selector).get("fieldSelectors"))}
    if set(fields) - {"eventCategory", "resources.type", "resources.ARN"}:
        return False  # readOnly, eventName...: only part of the bucket's events
    if "Data" not in one_or_many(fields.get("eventCategory", {}).get("equals")) or \
            S3_OBJECT not in one_or_many(fields.get("resources.type", {}).get("equals")):
        return False
    arn = fields.get("resources.ARN")
    if arn is None:
        return True  # every bucket of the account
    if _covers(one_or_many(arn.get("notStartsWiths")), name):
        return False
    return _covers(one_or_many(arn.get("startsWiths")), name)


def _basic_covers(selector: Any, name: str) -> bool:
    """Whether a (basic) event selector records every read and write of the bucket's objects."""
    selector = as_mapping(selector)
    if selector.get("readWriteType") not in (None, "All"):
        return False
    return any(as_mapping(r).get("type") == S3_OBJECT
               and _covers(one_or_many(as_mapping(r).get("values")), name)
               for r in items_of(selector.get("dataResources")))


def _trail_covers(trail: Subject, name: str) -> bool:
    if is_false(trail.props.get("enableLogging")):
        return False
    return any(_advanced_covers(s, name) for s in items_of(
        trail.props.get("advancedEventSelectors"))) or any(
        _basic_covers(s, name) for s in items_of(trail.props.get("eventSelectors")))


@stack_rule("s3-data-events-audited", pack="security", severity="medium",
            resource_types=[*BUCKET_TYPES, *LOGGING_TYPES, TRAIL],
            description="A CloudTrail trail of the stack records the S3 data events (object "
                        "reads and writes) of every bucket that is not a log bucket.")
def s3_data_events_audited(subjects: Sequence[Subject], config: Mapping[str, Any]
                           ) -> Iterator[tuple[Subject, str]]:
    targets = access_log_targets((s.type, s.props) for s in subjects)
    trails = [s for s in subjects if s.type == TRAIL]
    unknown: UnknownValueError | None = None
    for bucket in (s for s in subjects if s.type in BUCKET_TYPES):
        try:
            ids = bucket_ids(bucket.name, bucket.props)
            if targets.receives_logs(ids):
                continue
            name = bucket.props.get("bucket") or bucket.name
            if any(_trail_covers(trail, name) for trail in trails):
                continue
        except UnknownValueError as error:
            unknown = unknown or error
            continue
        yield bucket, violation(bucket, "data events", "are recorded by no CloudTrail trail "
                                "(reads and writes of its objects leave no audit record)",
                                _DATA_EVENTS_FIX)
    if unknown is not None:
        raise unknown
