"""Infer what each column of a data set is and build the matching preprocessing."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from ..stacks.columns import is_id_like_name
from .errors import DataError
from .text import plain

NUMERIC, CATEGORICAL, DATE = "numeric", "categorical", "date"
ID_LIKE, CONSTANT = "id-like", "constant"
DROPPED = "dropped"  # how id-like and constant columns appear in a model's feature map
USED = (NUMERIC, CATEGORICAL, DATE)  # the kinds a model reads
# what a date column becomes, each part a number: its day (days since 1970-01-01, the time of
# day as a fraction: order and trend), month (season), weekday, day of the month, hour of day
DATE_PARTS = ("days", "month", "weekday", "day", "hour")

_MIN_ROWS_FOR_UNIQUENESS_RULE = 20
_ID_UNIQUE_SHARE = 0.95
# A text column is numeric when at least this share of its non-empty values are numbers; the rest
# ("?", "-", "unknown", "eight") are strays, read as missing wherever the model reads data.
NUMERIC_SHARE = 0.9
STRAY_VALUES_KEPT = 10  # the most frequent stray values recorded per column
TEXT_SAMPLE = 200  # values a text column is tested on for dates, numbers written with commas ...
# a number written with a decimal comma (64,26; 1.234,56) or with thousands separators
# (1,234,567; 1,234.5): text to pandas, as to most readers of CSV
_COMMA_NUMBER = (r"[+-]?(?:(?:\d{1,3}(?:\.\d{3})+|\d+),\d+"
                 r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?)")
# a date written day or month first (31/01/2026, 01.31.26, 31-01-2026 08:00: which comes first
# is the locale's, so it is not guessed) or year first with slashes or dots (2026/01/31)
_LOCAL_DATE = (r"(?:\d{1,2}([/.-])\d{1,2}\1(?:\d{4}|\d{2})|\d{4}([/.])\d{1,2}\2\d{1,2})"
               r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
# text the model reads as categories though it holds what it cannot read as such:
# what it holds, how to write it instead
UNREAD_NUMBERS = ("numbers written with commas", "write them as plain numbers (a decimal point, "
                  "no thousands separators) to have them read as numbers")
UNREAD_DATES = ("dates not written in ISO 8601", "write them as ISO 8601 (2026-01-31, "
                "2026-01-31T08:00Z) to have them read as dates")
# a number's trailing percent sign (64.3%, 64.3 %): a column of such numbers is read as the
# numbers written (64.3, not 0.643), wherever a model reads data
_PERCENT = r"\s*%\s*$"


@dataclass(frozen=True)
class ColumnProfile:
    """What analysis found about one input column."""

    name: str
    kind: str  # numeric | categorical | date | id-like | constant
    dtype: str
    missing: int
    unique: int
    note: str = ""  # why an id-like or constant column is dropped, or which strays were read
    strays: int = 0  # non-empty values that are not numbers, read as missing (numeric columns)
    stray_values: tuple[tuple[str, int], ...] = ()  # the most frequent strays and their counts
    dates: bool = False  # a text column of ISO 8601 dates or times (kind date, unless constant)
    # a text column of what the model cannot read as such (UNREAD_NUMBERS or UNREAD_DATES):
    # (what it holds, a value), or ()
    unread: tuple[str, str] = ()
    # a numeric column of numbers written with a trailing '%': one such value ('64.3%'), or ''
    percent: str = ""


@dataclass(frozen=True)
class Schema:
    """The feature columns of a data set (label excluded) in file order."""

    label: str
    columns: tuple[ColumnProfile, ...]

    def names(self, kind: str) -> list[str]:
        return [column.name for column in self.columns if column.kind == kind]

    @property
    def features(self) -> dict[str, str]:
        """Column -> numeric | categorical | date | dropped, the map a model bundle keeps."""
        return {c.name: c.kind if c.kind in USED else DROPPED for c in self.columns}

    @property
    def unread(self) -> dict[str, tuple[str, str, str]]:
        """Text columns of numbers or dates the model reads as text -> (their kind, what they
        hold, a value), which analyze and train say."""
        return {c.name: (c.kind, *c.unread) for c in self.columns if c.unread}

    @property
    def strays(self) -> dict[str, dict]:
        """Numeric columns whose stray text is read as missing, the decision a model bundle keeps:
        column -> {"count": strays in this data, "values": {the most frequent: count}}."""
        return {
            c.name: {"count": c.strays, "values": dict(c.stray_values)}
            for c in self.columns
            if c.kind == NUMERIC and c.strays
        }

    @property
    def percents(self) -> list[str]:
        """Numeric columns of numbers written with a trailing '%', read as the numbers written
        (64.3% is 64.3), the decision a model bundle keeps."""
        return [c.name for c in self.columns if c.kind == NUMERIC and c.percent]


# frame.attrs key: the columns of whole numbers data.read_csv read as text for their leading
# zeros (codes: 02139 is no amount)
CODES = "codes"


def infer_schema(frame: pd.DataFrame, label: str) -> Schema:
    """Classify every non-label column as numeric, categorical, date, id-like or constant.
    The columns `frame.attrs[CODES]` names are text whatever their digits."""
    codes = set(frame.attrs.get(CODES, ()))
    profiles = tuple(_profile(frame[name], name, codes=name in codes)
                     for name in frame.columns if name != label)
    if not any(p.kind in USED for p in profiles):
        raise DataError(
            "no usable feature columns: every column besides the label is id-like or constant"
        )
    return Schema(label=label, columns=profiles)


def _profile(series: pd.Series, name: str, codes: bool = False) -> ColumnProfile:
    dtype = str(series.dtype)
    strays: dict = {}
    percent = "" if codes else _percent_example(series)
    if not codes and (percent or _mostly_numbers(series)):
        numbers, found = parse_numbers(series, name, strays_are_missing=True,
                                       percent=bool(percent))
        if found.any():
            values = _most_frequent(series[found])
            strays = {"strays": int(found.sum()), "stray_values": values,
                      "note": stray_note(int(found.sum()), dict(values))}
        series = numbers
    present = series.dropna()
    unique = int(present.nunique())
    facts = {
        "name": name,
        "dtype": dtype,
        "missing": int(series.isna().sum()),
        "unique": unique,
        "dates": not strays and _dates(present),
    }
    facts["unread"] = () if strays or facts["dates"] else _unread(present)
    if unique <= 1:
        note = "all values missing" if present.empty else f"always {plain(present.iloc[0])!r}"
        if facts["missing"] and not present.empty:
            note += " or missing"
        return ColumnProfile(kind=CONSTANT, note=note, **facts)
    if facts["dates"]:  # a date of its own per row is no identifier: its day, month ... count
        return ColumnProfile(kind=DATE, **facts)
    id_note = _id_like(present, name, unique)
    if id_note:
        return ColumnProfile(kind=ID_LIKE, note=id_note, **facts)
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return ColumnProfile(kind=NUMERIC if numeric else CATEGORICAL, percent=percent, **facts,
                         **strays)


def _mostly_numbers(series: pd.Series) -> bool:
    """True for a text column whose non-empty values are at least NUMERIC_SHARE numbers."""
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        return False
    values = series[~_blank(series)]
    if values.empty or any(isinstance(value, bool) for value in values):
        return False  # True/False are categories, not the numbers 1 and 0
    numbers = pd.to_numeric(values, errors="coerce").notna().sum()
    return bool(numbers / len(values) >= NUMERIC_SHARE)


def _percent_example(series: pd.Series) -> str:
    """A value written with a trailing '%' ('64.3%') of a text column whose first TEXT_SAMPLE
    non-empty values hold one, and whose non-empty values are at least NUMERIC_SHARE numbers
    once the '%' is taken off; '' for other columns."""
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        return ""
    sample = series.dropna().head(TEXT_SAMPLE)
    marked = sample[sample.map(lambda value: isinstance(value, str) and "%" in value)]
    if marked.empty or not _mostly_numbers(without_percent(series)):
        return ""
    return str(marked.iloc[0]).strip()


def without_percent(series: pd.Series) -> pd.Series:
    """`series` with a trailing '%' taken off its text values ('64.3%' -> '64.3'); numbers and
    missing values as they are."""
    return series.replace(_PERCENT, "", regex=True)


def percent_free(value: object) -> object:
    """One value as without_percent reads it: the shared rule of a served row's cells."""
    return re.sub(_PERCENT, "", value) if isinstance(value, str) else value


def _dates(present: pd.Series) -> bool:
    """True for text whose values (the first TEXT_SAMPLE) are at least NUMERIC_SHARE ISO 8601
    dates or times of 8 characters or more ('2026-01-31', '2026-01-31T08:00Z'; '20260131' and
    a bare year are numbers, read as such before this is asked)."""
    if not (pd.api.types.is_object_dtype(present) or pd.api.types.is_string_dtype(present)):
        return False
    sample = present.head(TEXT_SAMPLE).astype(str).str.strip()
    if sample.empty or (sample.str.len() < 8).any():
        return False
    return bool(parse_dates(sample).notna().mean() >= NUMERIC_SHARE)


def _unread(present: pd.Series) -> tuple[str, str]:
    """(what, a value) for text whose values (the first TEXT_SAMPLE) are at least
    NUMERIC_SHARE numbers, some written with commas ('64,26', '1,234,567'), or dates written
    day or month first ('31/01/2026'); () for other columns."""
    if not (pd.api.types.is_object_dtype(present) or pd.api.types.is_string_dtype(present)):
        return ()
    sample = present.head(TEXT_SAMPLE).astype(str).str.strip()
    if sample.empty:
        return ()
    commas = sample.str.fullmatch(_COMMA_NUMBER)
    if commas.any() and (commas | pd.to_numeric(sample, errors="coerce").notna()).mean() >= \
            NUMERIC_SHARE:
        return UNREAD_NUMBERS[0], str(sample[commas].iloc[0])
    dates = sample.str.fullmatch(_LOCAL_DATE)
    if dates.mean() >= NUMERIC_SHARE:
        return UNREAD_DATES[0], str(sample[dates].iloc[0])
    return ()


def text_warnings(source: object, schema: Schema) -> list[str]:
    """What analyze and train say about text columns of numbers or dates the model cannot read
    as such (Schema.unread): what they hold, what the model makes of them, how to write them;
    and about numeric columns written with '%' (Schema.percents): how the model reads them."""
    fixes = dict([UNREAD_NUMBERS, UNREAD_DATES])
    unread = [
        f"{source}: column {name!r} holds {what} ({example!r}), read as "
        + ("text: one-hot encoded as categories" if kind == CATEGORICAL
           else f"text and dropped as {kind}")
        + f"; {fixes[what]}"
        for name, (kind, what, example) in schema.unread.items()
    ]
    return unread + [
        f"{source}: column {column.name!r} holds numbers written with '%' ({column.percent!r}), "
        f"read as the numbers written ({percent_note(column.percent)}); predict, evaluate, "
        "drift and serve read them so too"
        for column in schema.columns if column.kind == NUMERIC and column.percent
    ]


def percent_note(example: str) -> str:
    """"'64.3%' is 64.3, not 0.643": how a number written with '%' reads."""
    value = float(percent_free(example))
    return f"{example!r} is {value:g}, not {value / 100:g}"


def _most_frequent(strays: pd.Series) -> tuple[tuple[str, int], ...]:
    counts = strays.astype(str).value_counts().head(STRAY_VALUES_KEPT)
    return tuple((str(value), int(count)) for value, count in counts.items())


def stray_note(count: int, values: dict[str, int]) -> str:
    """"31 non-number(s) read as missing: '?' (29), '-' (2)", for a table, a card or a warning."""
    shown = ", ".join(f"{value!r} ({times})" for value, times in values.items())
    more = ", ..." if sum(values.values()) < count else ""
    return f"{count} non-number(s) read as missing: {shown}{more}"


def stray_warnings(source: object, strays: dict[str, dict]) -> list[str]:
    """One line per numeric column of `source` whose strays were read as missing."""
    return [
        f"{source}: numeric column {name!r} has {stray_note(found['count'], found['values'])}"
        for name, found in strays.items()
    ]


def _id_like(present: pd.Series, name: str, unique: int) -> str:
    """Why the column looks like an identifier, or '' when it does not."""
    if pd.api.types.is_float_dtype(present):
        return ""
    all_unique = unique == len(present)
    if is_id_like_name(name) and unique / len(present) > 0.5:
        return "name and values look like an identifier"
    if pd.api.types.is_integer_dtype(present):
        if (
            all_unique
            and len(present) >= _MIN_ROWS_FOR_UNIQUENESS_RULE
            and present.max() - present.min() == unique - 1
        ):
            return "consecutive unique integers (a row number)"
        return ""
    if len(present) >= _MIN_ROWS_FOR_UNIQUENESS_RULE and unique / len(present) >= _ID_UNIQUE_SHARE:
        return f"{unique} distinct values in {len(present)} rows"
    return ""


def build_preprocessor(features: dict[str, str]) -> ColumnTransformer:
    """Impute and scale numeric columns, impute and one-hot encode categorical ones, turn date
    columns into numbers (DATE_PARTS), then impute and scale those; drop others."""
    numeric = [name for name, kind in features.items() if kind == NUMERIC]
    categorical = [name for name, kind in features.items() if kind == CATEGORICAL]
    dates = [name for name, kind in features.items() if kind == DATE]
    numeric_steps = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    )
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("one_hot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    steps = [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)]
    if dates:  # only then: a model without dates keeps the two steps (and its ONNX fast path)
        steps.append(("date", Pipeline([
            ("parts", FunctionTransformer(date_parts, feature_names_out=date_part_names)),
            # a part of no value at all in training (every date missing) stays, as zeros
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]), dates))
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)


def parse_dates(values: pd.Series) -> pd.Series:
    """ISO 8601 dates or times as UTC timestamps (naive ones read as UTC); anything else,
    missing. The one reading of a date column: preprocessing, drift and the plots."""
    return pd.Series(_utc_stamps(values), index=values.index, name=values.name)


def _utc_stamps(values: object) -> np.ndarray:
    """parse_dates' values: datetime64[ns], NaT where missing or not a date."""
    text = np.asarray(values, dtype=object)
    if text.ndim != 1:
        text = text.ravel()
    text = np.where(pd.isna(text), None, text)
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    return parsed.tz_convert(None).to_numpy(dtype="datetime64[ns]")


def days_of(stamps: pd.Series) -> pd.Series:
    """Timestamps (parse_dates) as days since 1970-01-01, the time of day as a fraction."""
    return (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)


def date_parts(frame: pd.DataFrame) -> np.ndarray:
    """Every date column of `frame` as its DATE_PARTS, floats (NaN where the date is missing or
    not a date). A module function: pipelines pickle it by reference, so saved models name it
    (and date_part_names): neither may be renamed or moved."""
    frame = pd.DataFrame(frame)
    return np.column_stack([part for name in frame.columns for part in dates_as_parts(frame[name])])


def dates_as_parts(values: object) -> list[np.ndarray]:
    """One column of dates (a Series or a list of text and None) as its DATE_PARTS: days since
    1970 with the time of day as a fraction, month, weekday (Monday 0), day of the month, and
    hour with the minutes as a fraction; NaN where there is no date. In numpy on the parsed
    values: the pandas accessors cost ~0.1 ms each per call, which a served row would pay."""
    stamps = _utc_stamps(values)
    missing = np.isnat(stamps)
    nanoseconds = stamps.astype("int64")
    days = stamps.astype("datetime64[D]")  # numpy floors: 1969-12-31T23:00 is 1969-12-31
    months = stamps.astype("datetime64[M]").astype("int64")
    minutes = (stamps - days).astype("timedelta64[m]").astype("int64")
    whole_days = days.astype("int64")
    parts = [
        nanoseconds / 86_400_000_000_000,
        months % 12 + 1,
        (whole_days + 3) % 7,  # 1970-01-01 was a Thursday
        whole_days - months.astype("datetime64[M]").astype("datetime64[D]").astype("int64") + 1,
        minutes // 60 + (minutes % 60) / 60,
    ]
    return [np.where(missing, np.nan, part.astype("float64")) for part in parts]


def date_part_names(transformer: object, names: list[str]) -> list[str]:
    """The output names of date_parts: ``signed_up.days``, ``signed_up.month`` ..."""
    return [f"{name}.{part}" for name in names for part in DATE_PARTS]


def used_columns(features: dict[str, str]) -> list[str]:
    """The columns a model reads (numeric, categorical and date), in training order."""
    return [name for name, kind in features.items() if kind in USED]


@dataclass(frozen=True)
class ParsedFeatures:
    """The model's input columns with training dtypes, and the strays read as missing."""

    frame: pd.DataFrame
    strays: dict[str, dict]  # column -> {"count": n, "values": {text: count}}, columns with strays


def parse_features(
    frame: pd.DataFrame, features: dict[str, str], strays: Collection[str] = (),
    percents: Collection[str] = (),
) -> ParsedFeatures:
    """The model's input columns of `frame` with training dtypes: floats, and strings or NaN.

    Numeric columns named in `strays` (a model's decision: Schema.strays) read text that is not a
    number as missing; in other numeric columns such text is a DataError naming the column.
    Numeric columns named in `percents` (Schema.percents) read '64.3%' as 64.3.
    """
    columns, found = {}, {}
    for name, kind in features.items():
        if kind == NUMERIC:
            columns[name], stray = parse_numbers(
                frame[name], name, strays_are_missing=name in strays, percent=name in percents
            )
            if stray.any():
                values = _most_frequent(frame[name][stray])
                found[name] = {"count": int(stray.sum()), "values": dict(values)}
        elif kind in (CATEGORICAL, DATE):  # dates as text: the pipeline reads them
            columns[name] = _as_text(frame[name])
    return ParsedFeatures(pd.DataFrame(columns, index=frame.index), found)


def coerce_features(
    frame: pd.DataFrame, features: dict[str, str], strays: Collection[str] = (),
    percents: Collection[str] = (),
) -> pd.DataFrame:
    """parse_features(...).frame: the model's input columns of `frame` with training dtypes."""
    return parse_features(frame, features, strays, percents).frame


def parse_numbers(
    series: pd.Series, name: str, *, strays_are_missing: bool = False, percent: bool = False
) -> tuple[pd.Series, pd.Series]:
    """(floats, strays) of a numeric column: the one reading of numbers everywhere a model reads
    data (train, evaluate, predict, drift, serve) and where analysis decides a column's kind.

    Empty values are missing. Text that is not a number is a stray: missing when
    `strays_are_missing`, else a DataError naming the column and examples. `strays` is a boolean
    mask of those values. With `percent`, '64.3%' is the number 64.3 (Schema.percents).
    """
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        floats = series if series.dtype == "float64" else series.astype("float64")
        return floats, pd.Series(False, index=series.index)
    blank = _blank(series)
    written = without_percent(series) if percent else series
    numbers = pd.to_numeric(written.where(~blank, np.nan), errors="coerce").astype("float64")
    bad = numbers.isna() & ~blank
    if bad.any() and not strays_are_missing:
        shown = series[bad].unique()[:3]
        examples = ", ".join(repr(value) for value in shown)
        commas = all(re.fullmatch(_COMMA_NUMBER, str(value).strip()) for value in shown)
        raise DataError(f"column {name!r} must be numeric; got {examples}"
                        + ("; write numbers with a decimal point and no thousands separators"
                           if commas else ""))
    return numbers, bad


_INFINITE_TEXT = r"[iI][nN][fF]|[eE]\+?\d{3}|\d{309}"


def infinite(series: pd.Series) -> pd.Series:
    """A boolean mask of the infinite values (inf, -inf, numbers beyond float64's range) of a
    numeric column, or of a text column read as numbers (_mostly_numbers); all False for others."""
    if pd.api.types.is_bool_dtype(series):
        return pd.Series(False, index=series.index)
    if pd.api.types.is_numeric_dtype(series):
        return pd.Series(np.isinf(series.to_numpy(dtype="float64")), index=series.index)
    # each distinct text once, and only the forms that read as infinite: inf, Infinity, 1e999,
    # 309 digits (parsing every value of every text column made reading a file 14 times slower)
    distinct = pd.Series(pd.unique(series.dropna().to_numpy()), dtype=object).astype(str)
    if not distinct.str.contains(_INFINITE_TEXT, regex=True).any():
        return pd.Series(False, index=series.index)
    if not _mostly_numbers(series):  # text: a value 'inf' there is a category
        return pd.Series(False, index=series.index)
    numbers = pd.to_numeric(series.where(~_blank(series), np.nan), errors="coerce")
    return pd.Series(np.isinf(numbers.to_numpy(dtype="float64")), index=series.index)


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | series.astype(str).str.strip().eq("")


def _as_text(series: pd.Series) -> pd.Series:
    """Strings, every kind of missing value (None, NaN, pd.NA) as NaN, which the imputer fills."""
    text = [
        value if type(value) is str else np.nan if pd.isna(value) else str(value)
        for value in series
    ]
    return pd.Series(text, index=series.index, dtype=object)
