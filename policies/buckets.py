"""S3 buckets in a stack, as the storage and logging rules and the cost estimator see them.

In pulumi-aws 7 a bucket's settings are separate resources whose ``bucket`` input is the
bucket's id (its physical name). :func:`every_bucket` checks every configuration resource of a
kind and every bucket that no configuration applies to. :func:`access_log_targets` derives which
buckets receive S3 server access logs (the ``targetBucket`` of a ``BucketLogging``, or of a
bucket's deprecated inline ``logging``): those buckets are log stores, not data, and some rules
treat them differently.

A bucket's id is its ``bucket`` property; offline, under mlscaffold's mocks, ``<name>-id`` (and
its resource name when it has only a ``bucketPrefix``). Values only known after deployment are
pulumi_policy's unknowns: a rule that needs one reports what it can and then stops as undecided,
which Pulumi shows as an advisory note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from .props import as_mapping
from .rule import Subject

__all__ = ["BUCKET_TYPES", "LOGGING_TYPES", "UNKNOWN", "LogTargets", "access_log_targets",
           "bucket_ids", "every_bucket"]

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
LOGGING_TYPES = ("aws:s3/bucketLogging:BucketLogging",
                 "aws:s3/bucketLoggingV2:BucketLoggingV2")
#: a bucket id unknown during a preview (a configuration whose bucket is not known yet)
UNKNOWN = object()

Problems = Callable[[Subject], Iterable[str]]
Inline = Callable[[Subject], list[str] | None]
Missing = Callable[[Subject], str]


def bucket_ids(name: str, props: Mapping[str, Any]) -> set[Any]:
    """What a configuration's ``bucket`` input holds for the bucket `name`: its id, i.e. its
    physical name (``bucket``; without one, offline, its resource name), or the mocks'
    ``<name>-id``."""
    ids: set[Any] = {f"{name}-id"}
    # a new bucket's generated name is unknown: its configurations' bucket is unknown too
    with suppress(UnknownValueError):
        ids.add(props.get("bucket") or name)
    return ids


@dataclass(frozen=True)
class LogTargets:
    """The buckets of a stack that receive S3 server access logs."""

    ids: frozenset[Any]
    #: why a target is not known yet (during a preview), else None
    unknown: UnknownValueError | None = None

    def receives_logs(self, ids: set[Any]) -> bool:
        """Whether the bucket with these ids (:func:`bucket_ids`) is a log target; raises the
        unknown value's error when a target not known yet may be it."""
        if ids & self.ids:
            return True
        if self.unknown is not None:
            raise self.unknown
        return False


def access_log_targets(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> LogTargets:
    """The access-log targets among (type, props) pairs: every ``targetBucket`` of a
    ``BucketLogging`` or of a bucket's inline ``logging``. Plain props (the cost estimator's,
    unknowns already None) and pulumi_policy's proxies both work."""
    targets: set[Any] = set()
    unknown: UnknownValueError | None = None
    for kind, props in resources:
        try:
            if kind in LOGGING_TYPES:
                value = props.get("targetBucket")
            elif kind in BUCKET_TYPES:
                value = as_mapping(props.get("logging")).get("targetBucket")
            else:
                continue
        except UnknownValueError as error:
            unknown = unknown or error
            continue
        if value:
            targets.add(value)
    return LogTargets(frozenset(targets), unknown)


def every_bucket(subjects: Sequence[Subject], config_types: Sequence[str], problems: Problems,
                 inline: Inline, missing: Missing, covered: bool = False,
                 exempt: Callable[[Subject], bool] = lambda bucket: False,
                 ) -> Iterator[tuple[Subject, str]]:
    """The problems of every configuration resource of `config_types`; then, for every bucket
    no configuration applies to, the problems of its inline property (`inline` returns None
    when the bucket has none) or `missing`, unless the bucket is `covered` otherwise or
    `exempt`. An `exempt` check that needs an unknown value makes the bucket undecided."""
    good, reported, undecided = set(), set(), set()
    unknown: UnknownValueError | None = None
    for config in (s for s in subjects if s.type in config_types):
        try:
            found: list[str] | None = list(problems(config))
        except UnknownValueError as error:
            found, unknown = None, unknown or error
        yield from ((config, message) for message in found or ())
        try:
            target = config.props.get("bucket")
        except UnknownValueError as error:
            target, unknown = UNKNOWN, unknown or error
        if found is None or target is UNKNOWN:
            undecided.add(target)
        else:
            (reported if found else good).add(target)
    pending = False
    for bucket in (s for s in subjects if s.type in BUCKET_TYPES):
        ids = bucket_ids(bucket.name, bucket.props)
        if covered or ids & (good | reported):
            continue
        try:
            if exempt(bucket):
                continue
            inline_problems = inline(bucket)
        except UnknownValueError as error:
            unknown, pending = unknown or error, True
            continue
        if inline_problems == []:
            continue
        if ids & undecided or UNKNOWN in undecided:
            pending = True  # a configuration of unknown content or bucket may apply to it
        elif inline_problems is None:
            yield bucket, missing(bucket)
        else:
            yield from ((bucket, message) for message in inline_problems)
    if pending and unknown is not None:
        raise unknown
