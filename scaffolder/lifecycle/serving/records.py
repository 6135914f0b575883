"""Rows of a request as the model reads them: its columns, checked values, JSON and CSV text.

Every protocol turns its payload into a `Table` through `Columns`, which keeps the model's input
columns and gives each value the type the model reads: a finite float or missing in a numeric
column, a string or None in a categorical one. Anything else is refused with a 400 naming the
row and the column, so no value reaches the model that it would choke on (NaN, infinities,
integers beyond float range, numbers beyond float32's range, nested lists). A table is by
column, the way the model reads it: a column of plain numbers or plain text is checked in one
pass, without a call per value.

Why float32's range: tree and forest models convert their input to float32 (scikit-learn's
`predict` docstrings: "Internally, its dtype will be converted to dtype=np.float32") and refuse
a larger number with scikit-learn's own message, and the ONNX route computes in float32; such a
number is refused here on every route, naming its column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pandas._libs.parsers import STR_NA_VALUES

from ...stacks.columns import csv_reader
from ..model import BOOLEAN_TEXT, ModelBundle, boolean_columns
from ..schema import percent_free
from .errors import RequestError, type_name

FLOAT32_MAX = float(np.finfo(np.float32).max)  # about 3.4e38
# the text pandas' read_csv reads as missing (its default na_values: "", NA, null, None ...), as
# `predict` and training read a file; a CSV body is read by the same rule
MISSING_TEXT = frozenset(STR_NA_VALUES)
_RANGE = f"between -{FLOAT32_MAX:.2g} and {FLOAT32_MAX:.2g}"


@dataclass
class Table:
    """Checked input columns of `rows` rows: numeric ones as float64 arrays (NaN where a value
    is missing), categorical ones as lists of strings and None."""

    columns: dict[str, Any]
    rows: int


def concat(tables: list[Table]) -> Table:
    """One table of the rows of `tables`, in order."""
    if len(tables) == 1:
        return tables[0]
    columns = {}
    for name, first in tables[0].columns.items():
        if isinstance(first, np.ndarray):
            columns[name] = np.concatenate([t.columns[name] for t in tables])
        else:
            columns[name] = [value for t in tables for value in t.columns[name]]
    return Table(columns, sum(t.rows for t in tables))


class Columns:
    """The columns a model accepts, derived once from its bundle."""

    def __init__(self, bundle: ModelBundle):
        self.all = list(bundle.features)  # training order, dropped columns included
        self.inputs = [c for c, kind in bundle.features.items() if kind != "dropped"]
        self.numeric = frozenset(c for c, kind in bundle.features.items() if kind == "numeric")
        # numeric columns whose stray text training read as missing (schema.parse_numbers)
        self.strays = frozenset(bundle.strays)
        self.percents = frozenset(bundle.percents)  # '64.3%' reads as 64.3, as in training
        self.booleans = boolean_columns(bundle)  # "true" reads as training's "True"
        self.known = frozenset(self.all) | {bundle.label}

    def for_width(self, width: int) -> list[str]:
        """Column names for rows given as plain lists of `width` values in feature order."""
        if width == len(self.all):
            return self.all
        if width == len(self.inputs):
            return self.inputs
        expected = f"{len(self.inputs)} ({', '.join(self.inputs)})"
        if len(self.all) != len(self.inputs):
            expected += f" or {len(self.all)} ({', '.join(self.all)})"
        raise RequestError(400, f"rows without column names must hold {expected} values "
                                f"in that order, got {width}")

    def from_records(self, records: list, where: str = "row") -> Table:
        """The table of `records` (one dict per row; other keys are ignored)."""
        if not records:
            raise RequestError(400, "the request holds no rows")
        missing: set[str] = set()
        for record in records:
            if not isinstance(record, dict):
                raise RequestError(400, "each row must be an object or a list of values, "
                                        f"got {type_name(record)}")
            missing.update(c for c in self.inputs if c not in record)
        self.refuse_missing(missing, records[0] if isinstance(records[0], dict) else {})
        return Table({c: self._column(c, [r[c] for r in records], where) for c in self.inputs},
                     len(records))

    def from_columns(self, data: dict[str, list], rows: int, where: str = "row") -> Table:
        """The table of `data` (column: `rows` values; other columns are ignored)."""
        if not rows:
            raise RequestError(400, "the request holds no rows")
        self.refuse_missing({c for c in self.inputs if c not in data}, data)
        return Table({c: self._column(c, data[c], where) for c in self.inputs}, rows)

    def refuse_missing(self, missing: set[str], sent: dict) -> None:
        """Refuse the request naming the missing columns, and a name it sent instead that is
        close to one of them (``tenure_month`` for ``tenure_months``)."""
        if missing:
            from ...suggest import nearest

            named = [c for c in self.inputs if c in missing]
            extra = [str(key) for key in list(sent)[:200] if key not in self.inputs]
            typos = [(key, match) for key in extra if (match := nearest(key, named))]
            raise RequestError(400, "missing columns: " + ", ".join(named) + "".join(
                f" ({key!r} sent: did you mean {match!r}?)" for key, match in typos[:3]))

    def _column(self, name: str, values: list, where: str) -> Any:
        """One checked column; the fast pass takes plain numbers or plain text at once."""
        kinds = set(map(type, values))
        if name in self.numeric:
            if kinds <= {float, int}:
                try:
                    array = np.array(values, dtype=np.float64)
                except OverflowError:  # an integer beyond float range: named below
                    array = None
                if array is not None and (np.abs(array) <= FLOAT32_MAX).all():  # NaN: False
                    return array
            if name in self.percents:
                values = [percent_free(value) for value in values]
            check = _number_or_missing if name in self.strays else _number
            checked = self._each(name, values, where, check)
            return np.array([math.nan if v is None else v for v in checked], dtype=np.float64)
        if name in self.booleans:
            values = [BOOLEAN_TEXT.get(v, v) if type(v) is str else v for v in values]
        if kinds == {str} and all(map(str.isascii, values)):
            return values
        return self._each(name, values, where, _text)

    @staticmethod
    def _each(name: str, values: list, where: str, check: Any) -> list:
        checked = []
        for number, value in enumerate(values, start=1):
            try:
                checked.append(check(value))
            except ValueError as problem:
                raise RequestError(400, f"{where} {number}: column {name} {problem}") from None
        return checked


def _number(value: Any) -> float | None:
    """A numeric cell: None, or a float within float32's range (ValueError says what is
    wrong)."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {_shown(value)}")
        return _in_range(value)
    if value is None:
        return None
    if kind is int:
        try:
            return _in_range(float(value))
        except OverflowError:
            raise ValueError("holds a number beyond the floating-point range") from None
    if kind is str:
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"must be a number, got {_shown(value)}") from None
        if not math.isfinite(number):
            raise ValueError(f"must be a finite number, got {_shown(value)}")
        return _in_range(number)
    raise ValueError(f"must be a number, got {type_name(value)}")


def _in_range(number: float) -> float:
    if abs(number) > FLOAT32_MAX:
        raise ValueError(f"must be a number {_RANGE} (the float32 range models compute in), "
                         f"got {number:g}")
    return number


def _number_or_missing(value: Any) -> float | None:
    """A cell of a numeric column with stray text: text that is no number is missing, as the
    bundle's parsing reads it in training and predict; a non-finite number is still refused."""
    if type(value) is str:
        try:
            float(value)
        except ValueError:
            return None
    return _number(value)


def _text(value: Any) -> str | None:
    """A categorical cell: None or a string (numbers become their text, as in training)."""
    kind = type(value)
    if kind is str:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("holds text that is not valid Unicode") from None
        return value
    if value is None:
        return None
    if kind is float and not math.isfinite(value):
        raise ValueError(f"must be text or a finite number, got {_shown(value)}")
    if kind in (int, float, bool):
        return str(value)
    raise ValueError(f"must be text, got {type_name(value)}")


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------------------ JSON


def loads(body: bytes) -> Any:
    """A JSON document, or a 400 saying why not (never a RecursionError or a 500).

    orjson parses (ten times faster than the json module on a 100-row request); what it refuses
    (NaN and Infinity literals, integers beyond 64 bits, nesting deeper than 1024, lone
    surrogates, invalid JSON) is parsed again by the json module, which takes the first three, so
    that the column holding such a value is named, and explains the rest.
    """
    if not body:
        raise RequestError(400, "the request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(400, f"malformed JSON: {error}") from None


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars
        return value.tolist()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(doc: Any) -> bytes:
    """Compact JSON. Callers refuse NaN and infinities first: orjson would write them as null."""
    try:
        return orjson.dumps(doc, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:  # text orjson will not encode (a lone surrogate): escaped
        return json.dumps(doc, separators=(",", ":"), default=_json_default,
                          allow_nan=False).encode("ascii")


# ------------------------------------------------------------------------------ CSV


def decode_csv(body: bytes, columns: Columns) -> Table:
    """Records from CSV: rows in feature order, or under a header row naming the columns.
    Read as `predict` reads a file: separated by commas, or by the ';' or tab a header without
    commas holds (`csv_reader`); values as written (spaces around a category are part of it; a
    number's are not, `_number`), MISSING_TEXT missing."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestError(400, "the CSV body is not valid UTF-8") from None
    try:
        rows = [row for row in csv_reader(io.StringIO(text)) if row]
    except csv.Error as error:
        raise RequestError(400, f"malformed CSV: {error}") from None
    if not rows:
        raise RequestError(400, "the CSV body holds no rows")
    first = [cell.strip() for cell in rows[0]]
    named = sum(cell in columns.known for cell in first)
    # a header row: columns by name, any order; one that names most of its cells as the model's
    # columns, but not every input, lacks some (the width error would not say which)
    if set(columns.inputs) <= set(first) or 2 * named > len(first):
        columns.refuse_missing({c for c in columns.inputs if c not in first}, dict.fromkeys(first))
        names, rows = first, rows[1:]
        if not rows:
            raise RequestError(400, "the CSV body holds a header row but no data rows")
    else:
        names = columns.for_width(len(rows[0]))
    records = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(names):
            raise RequestError(400, f"CSV row {number} has {len(row)} values, "
                                    f"expected {len(names)}")
        records.append({name: None if cell in MISSING_TEXT else cell
                        for name, cell in zip(names, row, strict=True)})
    return columns.from_records(records, "CSV row")


def encode_csv(predictions: list) -> bytes:
    """One prediction per line."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([p] for p in predictions)
    return buffer.getvalue().encode("utf-8")
