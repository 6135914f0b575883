"""What a data column's name says about it, and how a data file separates its columns: one
rule for the lifecycle and the feature store.

The lifecycle's analysis drops an identifier column from the model's features
(:mod:`mlscaffold.lifecycle.schema`), and the feature store picks one as a feature group's
record identifier (:mod:`.feature_schema`): both read :func:`is_id_like_name`, so a column is
an identifier to both or to neither. Both read a data file's columns with
:func:`separator_of` its header. No import beyond the standard library.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, TextIO

__all__ = ["OTHER_SEPARATORS", "csv_reader", "is_id_like_name", "not_utf8", "separator_of"]

# the separators a data file may use besides the comma: spreadsheets where the comma is the
# decimal mark write ";", and tab-separated exports
OTHER_SEPARATORS = (";", "\t")

# `id`, `uuid` or `guid` as the whole name or as its last word after `_`, `-`, a space or a
# dot, in any case: id, ID, customer_id, CUSTOMER_ID, order-uuid, user.guid
_SEPARATED_ID = re.compile(r"(^|[_\-\s.])(id|uuid|guid)$", re.IGNORECASE)
# camelCase: a lower-case letter or digit, then Id, ID, Uuid, UUID, Guid or GUID. Case matters,
# so that words ending in "id" (paid, valid, android, fluid) are not identifiers
_CAMEL_ID = re.compile(r"[a-z0-9](Id|ID|Uuid|UUID|Guid|GUID)$")


def is_id_like_name(name: str) -> bool:
    """Whether a column's name marks it as an identifier (``customer_id``, ``orderId``, ``id``),
    not a word that merely ends in "id" (``paid``, ``valid``)."""
    return bool(_SEPARATED_ID.search(name) or _CAMEL_ID.search(name))


def separator_of(header: str) -> str:
    """The comma, or the separator a header without commas holds (the most frequent of
    OTHER_SEPARATORS): ``a;b;c`` is three columns, not one named "a;b;c"."""
    if "," in header:
        return ","
    found = [separator for separator in OTHER_SEPARATORS if separator in header]
    return max(found, key=header.count) if found else ","


def csv_reader(handle: TextIO) -> Any:  # a csv.reader (its type is private to _csv)
    """A csv.reader of `handle` (at its start) with the file's :func:`separator_of`."""
    header = handle.readline()
    handle.seek(0)
    return csv.reader(handle, delimiter=separator_of(header))


# what a data file that is not text may be, by its first bytes
_BINARY_FORMATS = ((b"PK\x03\x04", "a ZIP archive (an Excel workbook?)"),
                   (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
                   (b"PAR1", "a Parquet file"))


def not_utf8(path: Path) -> str:
    """Why a data file that fails to decode is refused, with its first bad line and byte (a
    reader's error gives the position in its chunk). Decoding by a guess (Latin-1, cp1252)
    could read a category one way in training and another in predict or the feature store."""
    data = Path(path).read_bytes()
    kind = next((kind for signature, kind in _BINARY_FORMATS if data.startswith(signature)), None)
    if kind:
        return f"it is {kind}, not CSV text; save it as CSV UTF-8"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        where = f"line {line}: byte {data[error.start]:#04x}"
    else:
        where = "a byte that is not UTF-8"
    return f'it is not UTF-8 text ({where}); save it as UTF-8 (a spreadsheet\'s "CSV UTF-8")'
