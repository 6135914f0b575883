"""A feature group's schema: derived from the dataset and the spec's declarations, no Pulumi.

:func:`feature_definitions_from_csv` reads every row of the training CSV once (streaming) and
returns a :class:`FeatureSchema`: each column's feature name and type (declared in
``mlscaffold.yaml`` under ``features.types``, or inferred), the record identifier and the event
time. The same module renders values the way ``PutRecord`` takes them, so the stack (types),
``mlscaffold features schema`` (what was inferred) and ``mlscaffold features ingest`` (the
records) agree on every value.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .columns import csv_reader, is_id_like_name, not_utf8

__all__ = [
    "EVENT_TIME",
    "FEATURE_NAME_PATTERN",
    "FEATURE_TYPES",
    "RECORD_ID",
    "RESERVED_FEATURE_NAMES",
    "Feature",
    "FeatureDeclarations",
    "FeatureSchema",
    "FeatureSchemaError",
    "FeatureType",
    "check_definitions",
    "feature_definitions_from_csv",
    "format_event_time",
    "normalize_event_time",
    "record_id_for",
    "render_value",
]

FeatureType = Literal["String", "Integral", "Fractional"]
FEATURE_TYPES: tuple[str, ...] = ("String", "Integral", "Fractional")
# SageMaker's feature-name pattern (API FeatureDefinition); names are also at most 64 characters
FEATURE_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
FEATURE_NAME_MAX = 64
# columns SageMaker adds to the offline store; features may not use these names
RESERVED_FEATURE_NAMES = frozenset({"is_deleted", "write_time", "api_invocation_time"})
MAX_FEATURES = 2500
RECORD_ID = "record_id"
EVENT_TIME = "event_time"
# Integral features are 64-bit integers (bigint in the offline store's table)
_INT64 = (-(2**63), 2**63 - 1)

Source = Literal["declared", "inferred", "generated"]

_INTEGRAL = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# `02134` is a code (a zip code, an account number), not a number: as one it would lose its zero
_LEADING_ZERO = re.compile(r"^[+-]?0\d")
# ISO-8601 calendar date, or date and time: `T` or space between them, minutes or seconds,
# fractional seconds, and `Z` or a UTC offset (+HH, +HHMM, +HH:MM)
_ISO_TIME = re.compile(
    r"^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?$")


class FeatureSchemaError(ValueError):
    """The dataset does not fit the feature group (or its declarations); the message names the
    file, the column, the row where it matters, and the fix."""


class FeatureDeclarations(BaseModel):
    """The ``features`` section of ``mlscaffold.yaml``: what the dataset cannot say itself.

    Columns not listed in ``types`` get inferred types; without ``record_identifier`` or
    ``event_time`` a column is picked, or the feature generated at ingestion.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    types: dict[str, FeatureType] = Field(
        default_factory=dict,
        description="CSV column -> feature type (String, Integral or Fractional).")
    record_identifier: str | None = Field(
        None, min_length=1, description="Column identifying a record (String or Integral).")
    event_time: str | None = Field(
        None, min_length=1,
        description="Column holding the record's event time: ISO-8601 dates or date-times "
                    "(String), or epoch seconds (Fractional).")

    @model_validator(mode="after")
    def _roles_fit_types(self) -> FeatureDeclarations:
        empty = [column for column in self.types if not column.strip()]
        if empty:
            raise ValueError("types: a column name is empty; list the CSV header's names")
        if self.record_identifier and self.record_identifier == self.event_time:
            raise ValueError(f"record_identifier and event_time are both "
                             f"{self.event_time!r}; they must be two different columns")
        if self.types.get(self.record_identifier or "") == "Fractional":
            raise ValueError(f"record_identifier {self.record_identifier!r} is declared "
                             "Fractional; declare it String or Integral")
        if self.types.get(self.event_time or "") == "Integral":
            raise ValueError(f"event_time {self.event_time!r} is declared Integral; declare it "
                             "Fractional (epoch seconds) or String (ISO-8601)")
        return self


@dataclass(frozen=True)
class Feature:
    """One feature of the group."""

    name: str
    type: FeatureType
    column: str | None
    """The CSV column it comes from; None for a feature generated at ingestion."""
    source: Source
    """``declared`` (in mlscaffold.yaml), ``inferred`` (from the data) or ``generated``."""


@dataclass(frozen=True)
class FeatureSchema:
    """A feature group's schema: features in column order, then any generated ones."""

    features: tuple[Feature, ...]
    record_identifier: str
    """Feature that identifies a record."""
    event_time_feature: str
    """Feature holding the record's event time (ISO-8601 string or epoch seconds)."""
    _by_name: dict[str, Feature] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.features})

    def feature(self, name: str) -> Feature:
        return self._by_name[name]

    @property
    def feature_definitions(self) -> tuple[tuple[str, FeatureType], ...]:
        """(feature name, type) of every feature, as the feature group declares them."""
        return tuple((f.name, f.type) for f in self.features)

    @property
    def columns(self) -> dict[str, str]:
        """CSV column -> feature name (generated features have no column)."""
        return {f.column: f.name for f in self.features if f.column is not None}

    def generated(self, name: str) -> bool:
        return self._by_name[name].column is None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON/YAML); :meth:`from_dict` reads it back."""
        return {"record_identifier": self.record_identifier,
                "event_time": self.event_time_feature,
                "features": [{"name": f.name, "type": f.type, "column": f.column,
                              "source": f.source} for f in self.features]}

    @classmethod
    def from_dict(cls, data: Any) -> FeatureSchema:
        """The schema from :meth:`as_dict`'s form; raises FeatureSchemaError on other data."""
        try:
            features = tuple(
                Feature(name=str(f["name"]), type=f["type"], column=f["column"],
                        source=f["source"]) for f in data["features"])
            if any(f.column is not None and not isinstance(f.column, str) for f in features):
                raise TypeError("a column that is not a name")
            schema = cls(features, str(data["record_identifier"]), str(data["event_time"]))
        except (KeyError, TypeError) as error:
            raise FeatureSchemaError(f"not a feature schema (missing {error})") from None
        check_definitions(schema.feature_definitions, schema.record_identifier,
                          schema.event_time_feature)
        return schema

    def declarations(self) -> dict[str, Any]:
        """The ``features`` section of mlscaffold.yaml declaring this schema as it is."""
        section: dict[str, Any] = {
            "types": {f.column: f.type for f in self.features if f.column is not None}}
        for key, name in (("record_identifier", self.record_identifier),
                          ("event_time", self.event_time_feature)):
            column = self._by_name[name].column
            if column is not None:
                section[key] = column
        return section

    def describe(self) -> str:
        """What was declared, inferred and generated, one feature a line."""
        lines = []
        for f in self.features:
            role = (" record identifier" if f.name == self.record_identifier else
                    " event time" if f.name == self.event_time_feature else "")
            origin = (f"column {f.column!r}" if f.column is not None
                      else "filled at ingestion")
            lines.append(f"  {f.name}: {f.type} ({f.source}; {origin}){role}")
        return "\n".join(lines)


# ------------------------------------------------------------------ values as PutRecord takes them


def _decimal(value: str) -> Decimal | None:
    if not _NUMBER.match(value):
        return None
    number = Decimal(value)
    # Fractional features are doubles: a value beyond a double's exponents is not one
    if number and not -330 <= number.adjusted() <= 308:
        return None
    return number if math.isfinite(float(number)) else None


def _integral(value: str) -> str | None:
    number = _decimal(value)
    if number is None or number != number.to_integral_value():
        return None
    integer = int(number)
    return str(integer) if _INT64[0] <= integer <= _INT64[1] else None


def _fractional(value: str) -> str | None:
    number = _decimal(value)
    return None if number is None else format(number, "f")


def _timestamp(value: str) -> str | None:
    match = _ISO_TIME.match(value)
    if match is None:
        return None
    parts = match.groupdict()
    zone = parts["zone"]
    try:
        if zone is None or zone in "Zz":
            tz = UTC  # a value without an offset is taken as UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:] or 0)
            if minutes > 59:
                return None
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        moment = datetime(int(parts["year"]), int(parts["month"]), int(parts["day"]),
                          int(parts["hour"] or 0), int(parts["minute"] or 0),
                          int(parts["second"] or 0), tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    fraction = parts["fraction"]
    millis = f".{fraction[:3].ljust(3, '0')}" if fraction else ""
    return format_event_time(moment, millis)


def format_event_time(moment: datetime, millis: str = "") -> str:
    """A UTC time in the form PutRecord takes for String event times:
    ``yyyy-MM-ddTHH:mm:ssZ`` (or ``.SSS`` milliseconds before the ``Z``)."""
    moment = moment.astimezone(UTC)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}{millis}Z")


def normalize_event_time(value: str, type_: str) -> str | None:
    """`value` as the event time PutRecord accepts, or None if it cannot be one.

    SageMaker takes a String event time only as ``yyyy-MM-dd'T'HH:mm:ssZ`` or
    ``yyyy-MM-dd'T'HH:mm:ss.SSSZ`` (UTC), and a Fractional one as Unix epoch seconds
    (API CreateFeatureGroup, EventTimeFeatureName). A String value may be any ISO-8601 date or
    date-time (``T`` or space, fractional seconds, ``Z`` or an offset): it is converted to UTC,
    fractional seconds truncated to milliseconds; a value without an offset is taken as UTC.
    """
    value = value.strip()
    return _timestamp(value) if type_ == "String" else _fractional(value)


def render_value(value: str, type_: str) -> str | None:
    """A cell as the ``ValueAsString`` of a feature of type `type_`, or None if the value
    is not of that type. Integral: a 64-bit integer (``3.0`` is ``3``); Fractional: a finite
    decimal, without exponent; String: the cell as it is (trimmed)."""
    value = value.strip()
    if type_ == "Integral":
        return _integral(value)
    if type_ == "Fractional":
        return _fractional(value)
    return value


def record_id_for(cells: Iterable[str]) -> str:
    """The generated record identifier of a row: a digest of its (trimmed) cells, so the same
    row always gets the same identifier."""
    content = json.dumps([cell.strip() for cell in cells], ensure_ascii=False)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]


# ------------------------------------------------------------------ deriving the schema


def _feature_name(column: str, index: int) -> str:
    """A column name made to fit SageMaker's pattern: runs of other characters become one
    ``_``, leading and trailing ``_`` go, at most 64 characters; empty -> ``feature_<i>``."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", column).strip("_")[:FEATURE_NAME_MAX].rstrip("_")
    return name or f"feature_{index}"


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`... so that it differs (ignoring case) from `taken` and
    from the reserved names."""
    candidate, number = name, 1
    while candidate.lower() in taken or candidate.lower() in RESERVED_FEATURE_NAMES:
        number += 1
        suffix = f"_{number}"
        candidate = name[:FEATURE_NAME_MAX - len(suffix)].rstrip("_") + suffix
    taken.add(candidate.lower())
    return candidate


@dataclass
class _Where:
    row: int
    line: int
    value: str

    def __str__(self) -> str:
        where = f"row {self.row} (line {self.line})"
        return f"{where} holds {self.value!r}" if self.value else f"{where} is empty"


@dataclass
class _Column:
    """What one pass over the rows learns about a column."""

    name: str
    declared: FeatureType | None
    track_unique: bool
    filled: int = 0
    first_empty: _Where | None = None
    integral: bool = True
    fractional: bool = True
    first_not_timestamp: _Where | None = None
    first_not_number: _Where | None = None
    values: set[str] | None = field(default=None, repr=False)
    unique: bool = True

    def __post_init__(self) -> None:
        if self.track_unique:
            self.values = set()

    def add(self, value: str, where: _Where) -> None:
        if not value:
            if self.first_empty is None:
                self.first_empty = where
            self.unique, self.values = False, None
            return
        self.filled += 1
        number = _fractional(value) if not _LEADING_ZERO.match(value) else None
        if self.integral and not (number is not None and _INTEGRAL.match(value)
                                  and _integral(value) is not None):
            self.integral = False
        if self.first_not_number is None and number is None:
            self.first_not_number = where
            self.fractional = False
        if self.first_not_timestamp is None and _timestamp(value) is None:
            self.first_not_timestamp = where
        if self.values is not None:
            if value in self.values:
                self.unique, self.values = False, None
            else:
                self.values.add(value)

    @property
    def inferred(self) -> FeatureType:
        if self.filled and self.integral:
            return "Integral"
        if self.filled and self.fractional:
            return "Fractional"
        return "String"

    @property
    def type(self) -> FeatureType:
        return self.declared or self.inferred

    @property
    def complete(self) -> bool:
        return self.filled > 0 and self.first_empty is None

    def event_time_type(self) -> FeatureType | None:
        """String if every value is an ISO-8601 date(-time), Fractional if every value is a
        number (epoch seconds); None if the column cannot hold the event time."""
        if not self.complete or self.declared == "Integral":
            return None
        if self.first_not_timestamp is None and self.type == "String":
            return "String"
        if self.first_not_number is None and self.type != "String":
            return "Fractional"
        return None


def _check_value(column: _Column, value: str, where: _Where, path: Path) -> None:
    """A declared type that the data contradicts is an error at the first such row."""
    if column.declared and value and render_value(value, column.declared) is None:
        fits = "Fractional" if _fractional(value) is not None else "String"
        raise FeatureSchemaError(
            f"{path}: column {column.name!r} is declared {column.declared} in mlscaffold.yaml "
            f"but {where}; fix the value, or declare the column {fits} in features.types")


def feature_definitions_from_csv(path: Path, label: str,
                                 declared: FeatureDeclarations | Mapping[str, Any] | None = None,
                                 ) -> FeatureSchema:
    """Derive a feature group schema from every row of a CSV file and the declarations.

    Types: a declared type is checked against every value; an undeclared column whose values
    are all 64-bit integers is ``Integral``, all finite numbers ``Fractional``, anything else
    (or empty) ``String``; a number written with a leading zero (``02134``) counts as text.
    Names are made to fit SageMaker's pattern (:data:`FEATURE_NAME_PATTERN`) and unique
    ignoring case.

    The record identifier is the declared column, else the first ID-like column (``id``,
    ``*_id``, ``*Id``: :func:`.columns.is_id_like_name`, the lifecycle's rule too) of type String
    or Integral with unique, complete values, else the first
    String column with unique, complete values, else a generated ``record_id`` feature. The
    event time is the declared column, else a column named ``event_time``, else the first
    String column of ISO-8601 dates or date-times, else a generated ``event_time`` feature;
    a column is picked only when every value normalises (:func:`normalize_event_time`).
    `label` is kept as a feature (training sets are read from the offline store) but is never
    the identifier or the event time. Raises FeatureSchemaError naming the fix.
    """
    if not isinstance(declared, FeatureDeclarations):
        declared = FeatureDeclarations.model_validate(declared or {})
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise FeatureSchemaError(f"{path} does not exist; the feature group's schema comes "
                                 "from the training data (datasets/train.csv)") from None
    with handle:
        try:
            columns = _read_columns(path, csv_reader(handle), label, declared)
        except UnicodeDecodeError:
            raise FeatureSchemaError(f"{path}: {not_utf8(path)}") from None
    return _schema(path, columns, label, declared)


def _read_columns(path: Path, reader: Any, label: str,
                  declared: FeatureDeclarations) -> list[_Column]:
    """Every column of the file, each value checked and counted."""
    columns = _check_header(path, next(reader, None), label, declared)
    for row, cells in enumerate((c for c in reader if c), start=1):
        if len(cells) != len(columns):
            raise FeatureSchemaError(
                f"{path}: row {row} (line {reader.line_num}) has {len(cells)} fields, the "
                f"header {len(columns)}; quote values that hold commas")
        for column, cell in zip(columns, cells, strict=True):
            where = _Where(row, reader.line_num, cell.strip())
            _check_value(column, where.value, where, path)
            column.add(where.value, where)
    return columns


def _check_header(path: Path, header: list[str] | None, label: str,
                  declared: FeatureDeclarations) -> list[_Column]:
    if not header:
        raise FeatureSchemaError(f"{path}: no header row; the first line must name the columns")
    # spaces around a name are not part of it, as the lifecycle reads a header (data.read_csv)
    header = [name.strip() for name in header]
    if label not in header:
        raise FeatureSchemaError(f"{path}: label column {label!r} is not in the header "
                                 f"({', '.join(header)}); set `label` to one of them")
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise FeatureSchemaError(f"{path}: column {twice[0]!r} appears more than once in the "
                                 "header; give every column its own name")
    if len(header) + 2 > MAX_FEATURES:
        raise FeatureSchemaError(f"{path}: {len(header)} columns; a feature group holds at "
                                 f"most {MAX_FEATURES - 2} columns plus identifier and event "
                                 "time")
    named = [*declared.types, declared.record_identifier, declared.event_time]
    missing = [c for c in dict.fromkeys(named) if c is not None and c not in header]
    if missing:
        raise FeatureSchemaError(
            f"{path}: column {missing[0]!r} is declared in mlscaffold.yaml (features) but not "
            f"in the header ({', '.join(header)}); fix the name or remove the declaration")
    for role in (declared.record_identifier, declared.event_time):
        if role == label:
            raise FeatureSchemaError(f"{path}: the label {label!r} cannot be the record "
                                     "identifier or the event time; declare another column")
    # uniqueness is tracked only while the identifier is still to be picked
    pick = declared.record_identifier is None
    return [_Column(c, declared.types.get(c),
                    track_unique=pick and c != label and declared.types.get(c) != "Fractional")
            for c in header]


def _schema(path: Path, columns: list[_Column], label: str,
            declared: FeatureDeclarations) -> FeatureSchema:
    header = [c.name for c in columns]
    taken: set[str] = set()
    names = [_unique(_feature_name(column, i), taken) for i, column in enumerate(header)]
    types: list[FeatureType] = [c.type for c in columns]
    candidates = [i for i, column in enumerate(header) if column != label]

    identifier = _record_identifier(path, columns, candidates, declared)
    event_time, event_type = _event_time(path, columns, names, candidates, identifier, declared)
    if event_time is not None and event_type is not None:
        types[event_time] = event_type  # epoch seconds are Fractional, never Integral

    features = [Feature(name, type_, column.name,
                        "declared" if column.declared else "inferred")
                for name, type_, column in zip(names, types, columns, strict=True)]
    record_identifier = names[identifier] if identifier is not None else _unique(RECORD_ID,
                                                                                 taken)
    event_time_feature = names[event_time] if event_time is not None else _unique(EVENT_TIME,
                                                                                  taken)
    if identifier is None:
        features.append(Feature(record_identifier, "String", None, "generated"))
    if event_time is None:
        features.append(Feature(event_time_feature, "String", None, "generated"))
    schema = FeatureSchema(tuple(features), record_identifier, event_time_feature)
    check_definitions(schema.feature_definitions, record_identifier, event_time_feature)
    return schema


def _record_identifier(path: Path, columns: list[_Column], candidates: list[int],
                       declared: FeatureDeclarations) -> int | None:
    if declared.record_identifier is not None:
        index = [c.name for c in columns].index(declared.record_identifier)
        column = columns[index]
        if column.first_empty is not None or not column.filled:
            where = column.first_empty or "it has no values"
            raise FeatureSchemaError(
                f"{path}: record identifier {column.name!r} must have a value in every row, "
                f"but {where}; fill it, or declare another record_identifier")
        if column.type == "Fractional":
            raise FeatureSchemaError(
                f"{path}: record identifier {column.name!r} holds fractional numbers; declare "
                "its type String (or Integral) in features.types")
        return index

    def complete_and_unique(i: int) -> bool:
        return columns[i].complete and columns[i].unique

    return next(
        (i for i in candidates if is_id_like_name(columns[i].name)
         and columns[i].type in ("String", "Integral") and complete_and_unique(i)),
        next((i for i in candidates if columns[i].type == "String" and complete_and_unique(i)),
             None))


def _event_time(path: Path, columns: list[_Column], names: list[str], candidates: list[int],
                identifier: int | None, declared: FeatureDeclarations,
                ) -> tuple[int | None, FeatureType | None]:
    if declared.event_time is not None:
        index = [c.name for c in columns].index(declared.event_time)
        column = columns[index]
        kind = column.event_time_type()
        if kind is None:
            if column.first_empty is not None or not column.filled:
                problem = str(column.first_empty or "it has no values")
            elif column.type == "String":
                problem = str(column.first_not_timestamp)
            else:
                problem = str(column.first_not_number)
            if column.declared is None and column.first_not_number and column.first_not_timestamp:
                # neither all timestamps nor all numbers: the row that broke the pattern
                later = max(column.first_not_number, column.first_not_timestamp,
                            key=lambda w: w.row)
                problem = str(later)
            raise FeatureSchemaError(
                f"{path}: event time {column.name!r} must hold, in every row, an ISO-8601 date "
                f"or date-time (String) or epoch seconds (Fractional), but {problem}; fix the "
                "value, or declare another event_time")
        return index, kind
    usable = [i for i in candidates if i != identifier]
    named = next((i for i in usable if names[i].lower() == EVENT_TIME
                  and columns[i].event_time_type()), None)
    if named is not None:
        return named, columns[named].event_time_type()
    dated = next((i for i in usable if columns[i].event_time_type() == "String"), None)
    return (dated, "String") if dated is not None else (None, None)


def check_definitions(definitions: Iterable[tuple[str, str]], record_identifier: str,
                      event_time_feature: str) -> None:
    """Refuse definitions SageMaker would refuse; raises FeatureSchemaError naming the fix."""
    definitions = list(definitions)
    types = dict(definitions)
    if len(types) != len(definitions) or len({n.lower() for n in types}) != len(types):
        raise FeatureSchemaError("feature names must be unique (ignoring case)")
    if len(definitions) > MAX_FEATURES:
        raise FeatureSchemaError(f"{len(definitions)} features; a feature group holds at most "
                                 f"{MAX_FEATURES}")
    for name, type_ in definitions:
        if not FEATURE_NAME_PATTERN.match(name) or name.lower() in RESERVED_FEATURE_NAMES:
            raise FeatureSchemaError(
                f"feature name {name!r} is not allowed: use letters, digits and single - or _ "
                f"inside, at most 64 characters, and none of "
                f"{', '.join(sorted(RESERVED_FEATURE_NAMES))}")
        if type_ not in FEATURE_TYPES:
            raise FeatureSchemaError(f"feature {name!r} has type {type_!r}; use one of "
                                     f"{', '.join(FEATURE_TYPES)}")
    if types.get(record_identifier) not in ("String", "Integral"):
        raise FeatureSchemaError(f"record identifier {record_identifier!r} must be a String or "
                                 "Integral feature of the definitions")
    if types.get(event_time_feature) not in ("String", "Fractional"):
        raise FeatureSchemaError(f"event time {event_time_feature!r} must be a String "
                                 "(ISO-8601) or Fractional (epoch seconds) feature of the "
                                 "definitions")
