"""Reading data sets and separating the label."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..stacks.columns import not_utf8, separator_of
from .errors import DataError
from .schema import CATEGORICAL, CODES, DATE, infinite


@dataclass(frozen=True)
class LabelledData:
    """Feature columns and label values of a data set, rows with a missing label removed."""

    features: pd.DataFrame
    labels: np.ndarray
    dropped_rows: int  # rows removed because their label was missing


# what to do about a missing file: one named on the command line, or one of the project's own
GIVEN_FILE_HINT = "check the path (a relative one is read from the current directory)"
PROJECT_FILE_HINT = ("a project reads its data from datasets/train.csv, validation.csv and "
                     "test.csv: put the file there")


CODE_SAMPLE_ROWS = 10_000  # rows whose text shows whether a column of whole numbers is codes


def read_csv(path: Path, *, given: bool = True, text: Iterable[str] = ()) -> pd.DataFrame:
    """Read a CSV file, turning every failure into a one-line DataError. `given`: the path came
    from the command line, not from the project's layout (datasets/<split>.csv). Columns in
    `text` (a model's categorical and date columns) are read as written.

    A column of whole numbers some of which are written with leading zeros (ZIP codes 02139,
    account numbers 007) holds codes: it is read as text, not as the numbers 2139 and 7, and
    named in ``frame.attrs[CODES]``. Found in the first CODE_SAMPLE_ROWS rows.

    Spaces around a header's names are not part of them (`label ` is `label`), as serve and
    the feature store read a header; a name that then appears twice is refused."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file",
                        hint=GIVEN_FILE_HINT if given else PROJECT_FILE_HINT)
    try:
        # the header alone first, as data (compressed files too, by their suffix): a file
        # separated by ";" often has decimal commas, whose rows a comma-separated read refuses;
        # and pandas renames a repeated name (x1, x1 -> x1, x1.1), the data is as written
        names = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0]
        separator = separator_of(str(names.iloc[0])) if len(names) == 1 else ","
        if separator != ",":
            names = pd.read_csv(path, sep=separator, header=None, nrows=1, dtype=str).iloc[0]
        wanted = [name for name in names if _stripped(name) in set(text)]
        # object, not str: pandas 3 reads str as its string dtype; text here is object
        frame = pd.read_csv(path, sep=separator, dtype=dict.fromkeys(wanted, object) or None)
        codes = _codes(path, separator, frame)
        if codes:
            frame[codes] = pd.read_csv(path, sep=separator, usecols=codes, dtype=object)[codes]
    except UnicodeDecodeError:
        # decoding it as Latin-1 or cp1252 would guess, and a category read one way in training
        # and another in predict is silently another category
        raise DataError(f"cannot read {path}: {not_utf8(path)}") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {str(exc).strip().splitlines()[0]}") from None
    written, names = names, names.map(_stripped)
    repeated = names[names.duplicated() & names.notna()].unique()
    if len(repeated):
        # 'x1' and 'x1 ': the same name to every reader, which would take one for the other
        spaced = not written.duplicated().any()
        raise DataError(f"{path}: column name(s) {', '.join(map(repr, repeated))} appear more than "
                        "once in the header" + (" (spaces around a name do not count)"
                                                if spaced else "")
                        + "; give each column its own name")
    # the columns pandas named as written: renamed after the check above, so no two are alike
    frame = frame.rename(columns=_stripped)
    frame.attrs[CODES] = [_stripped(name) for name in codes]
    if frame.empty:
        raise DataError(f"{path} has a header but no rows")
    refuse_infinities(frame, path)
    return frame


def _stripped(name: object) -> object:
    """A header name without the spaces around it; an empty cell's NaN as it is."""
    return name.strip() if isinstance(name, str) else name


def code_warnings(source: object, frame: pd.DataFrame) -> list[str]:
    """One line per column read_csv read as codes for its leading zeros."""
    lines = []
    for name in frame.attrs.get(CODES, []):
        example = next(value for value in frame[name].dropna() if str(value).startswith("0"))
        lines.append(f"{source}: column {name!r} holds whole numbers written with leading zeros "
                     f"({example!r}): read as text, as codes, not as the numbers")
    return lines


def text_columns(features: dict[str, str]) -> list[str]:
    """The columns a model reads as text (categorical and date), which read_csv reads as
    written: codes with leading zeros, or whole numbers around missing values (1, not 1.0)."""
    return [name for name, kind in features.items() if kind in (CATEGORICAL, DATE)]


def _codes(path: Path, separator: str, frame: pd.DataFrame) -> list[str]:
    """The columns of whole numbers (integers, or floats that are whole numbers around missing
    values) whose text in the first CODE_SAMPLE_ROWS rows has a leading zero."""
    whole = [name for name in frame.columns if _whole_numbers(frame[name])]
    if not whole:
        return []
    sample = pd.read_csv(path, sep=separator, usecols=whole, dtype=object,
                         nrows=CODE_SAMPLE_ROWS)
    return [name for name in whole
            if sample[name].astype(str).str.fullmatch(r"0\d+").any()]


def _whole_numbers(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_integer_dtype(series):
        return True
    if not pd.api.types.is_float_dtype(series):
        return False
    values = series.dropna().to_numpy()
    return bool(np.isfinite(values).all() and np.all(np.mod(values, 1) == 0))


INFINITE_ROWS_SHOWN = 3


def refuse_infinities(frame: pd.DataFrame, source: Path | str) -> None:
    """A DataError naming the first column of `frame` with infinite values: no model, metric or
    plot can use them, and read as missing they would be imputed without a word."""
    for name in frame.columns:
        found = infinite(frame[name])
        if found.any():
            # positions, not the index: counted from 1 after the header, as a reader of the file
            rows = np.flatnonzero(found.to_numpy()) + 1
            shown = ", ".join(map(str, rows[:INFINITE_ROWS_SHOWN]))
            more = ", ..." if len(rows) > INFINITE_ROWS_SHOWN else ""
            raise DataError(
                f"{source}: column {name!r} holds {len(rows)} infinite value(s) (row(s) "
                f"{shown}{more}, counted from 1 after the header); remove those rows, or leave "
                "the cells empty to have them read as missing"
            )


def require_label(frame: pd.DataFrame, label: str, source: Path | str) -> None:
    """Fail with the columns found when the label column is absent."""
    if label not in frame.columns:
        raise DataError(
            f"label column {label!r} not found in {source}; "
            f"columns found: {', '.join(map(repr, map(str, frame.columns)))}"
        )


def split_label(frame: pd.DataFrame, label: str, task: str, source: Path | str) -> LabelledData:
    """Separate features and labels; regression labels must be numeric."""
    require_label(frame, label, source)
    present = frame[frame[label].notna()]
    if present.empty:
        raise DataError(f"label column {label!r} in {source} has no values")
    if task == "regression":
        labels = pd.to_numeric(present[label], errors="coerce")
        if labels.isna().any():
            examples = ", ".join(repr(v) for v in present[label][labels.isna()].unique()[:3])
            raise DataError(
                f"regression needs a numeric label; column {label!r} in {source} holds {examples}"
            )
        values = labels.to_numpy(dtype="float64")
    else:
        values = present[label].to_numpy()
        if values.dtype.kind == "f" and np.all(values == np.round(values)):
            values = values.astype("int64")
    return LabelledData(present.drop(columns=[label]), values, len(frame) - len(present))


def shared_rows(rows: pd.DataFrame, labels: np.ndarray,
                among: list[tuple[pd.DataFrame, np.ndarray]]) -> int:
    """How many rows of `rows` (features as a model reads them, with `labels`) are also rows
    of one of `among` (same columns, same order): the same features and label (1 and '1'
    alike). By 64-bit hashes of the rows, not row against row: milliseconds on 100,000 rows."""
    if not among:
        return 0
    seen = np.concatenate([_row_hashes(frame, values) for frame, values in among])
    return int(np.isin(_row_hashes(rows, labels), seen).sum())


def _row_hashes(features: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    label = pd.Series(np.asarray(labels), dtype=object).map(str)
    # the label beside the features, under a name no column of a CSV file has
    frame = pd.concat([features.reset_index(drop=True), label.rename("\0label")], axis=1)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def check_classes(classes: list, task: str, source: Path | str) -> None:
    """A binary task needs two classes, a multiclass task at least three."""
    shown = ", ".join(map(str, classes[:10]))
    if task == "binary-classification" and len(classes) != 2:
        raise DataError(
            f"binary-classification needs exactly 2 classes; {source} has {len(classes)}: {shown}"
        )
    if task == "multiclass-classification" and len(classes) < 3:
        raise DataError(
            f"multiclass-classification needs at least 3 classes; "
            f"{source} has {len(classes)}: {shown} "
            "(use task: binary-classification)"
        )
