"""Infer what each column of a data set is and build the matching preprocessing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..stacks.columns import is_id_like_name
from .errors import DataError

NUMERIC, CATEGORICAL, ID_LIKE, CONSTANT = "numeric", "categorical", "id-like", "constant"
DROPPED = "dropped"  # how id-like and constant columns appear in a model's feature map

_MIN_ROWS_FOR_UNIQUENESS_RULE = 20
_ID_UNIQUE_SHARE = 0.95


@dataclass(frozen=True)
class ColumnProfile:
    """What analysis found about one input column."""

    name: str
    kind: str  # numeric | categorical | id-like | constant
    dtype: str
    missing: int
    unique: int
    note: str = ""  # why an id-like or constant column is dropped


@dataclass(frozen=True)
class Schema:
    """The feature columns of a data set (label excluded) in file order."""

    label: str
    columns: tuple[ColumnProfile, ...]

    def names(self, kind: str) -> list[str]:
        return [column.name for column in self.columns if column.kind == kind]

    @property
    def features(self) -> dict[str, str]:
        """Column -> numeric | categorical | dropped, the map a model bundle keeps."""
        return {
            c.name: c.kind if c.kind in (NUMERIC, CATEGORICAL) else DROPPED for c in self.columns
        }


def infer_schema(frame: pd.DataFrame, label: str) -> Schema:
    """Classify every non-label column as numeric, categorical, id-like or constant."""
    profiles = tuple(_profile(frame[name], name) for name in frame.columns if name != label)
    if not any(p.kind in (NUMERIC, CATEGORICAL) for p in profiles):
        raise DataError(
            "no usable feature columns: every column besides the label is id-like or constant"
        )
    return Schema(label=label, columns=profiles)


def _profile(series: pd.Series, name: str) -> ColumnProfile:
    present = series.dropna()
    unique = int(present.nunique())
    facts = {
        "name": name,
        "dtype": str(series.dtype),
        "missing": int(series.isna().sum()),
        "unique": unique,
    }
    if unique <= 1:
        note = "all values missing" if present.empty else f"always {present.iloc[0]!r}"
        if facts["missing"] and not present.empty:
            note += " or missing"
        return ColumnProfile(kind=CONSTANT, note=note, **facts)
    id_note = _id_like(present, name, unique)
    if id_note:
        return ColumnProfile(kind=ID_LIKE, note=id_note, **facts)
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return ColumnProfile(kind=NUMERIC if numeric else CATEGORICAL, **facts)


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
    """Impute and scale numeric columns, impute and one-hot encode categorical ones, drop others."""
    numeric = [name for name, kind in features.items() if kind == NUMERIC]
    categorical = [name for name, kind in features.items() if kind == CATEGORICAL]
    numeric_steps = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    )
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("one_hot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    return ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        remainder="drop",
        sparse_threshold=0.0,
    )


def used_columns(features: dict[str, str]) -> list[str]:
    """The columns a model reads (numeric and categorical), in training order."""
    return [name for name, kind in features.items() if kind in (NUMERIC, CATEGORICAL)]


def coerce_features(frame: pd.DataFrame, features: dict[str, str]) -> pd.DataFrame:
    """The model's input columns of `frame` with training dtypes: floats, and strings or NaN."""
    columns = {}
    for name, kind in features.items():
        if kind == NUMERIC:
            columns[name] = _as_float(frame[name], name)
        elif kind == CATEGORICAL:
            columns[name] = _as_text(frame[name])
    return pd.DataFrame(columns, index=frame.index)


def _as_float(series: pd.Series, name: str) -> pd.Series:
    if series.dtype == "float64":
        return series
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    blank = series.isna() | series.astype(str).str.strip().eq("")
    numbers = pd.to_numeric(series.where(~blank, np.nan), errors="coerce").astype("float64")
    bad = numbers.isna() & ~blank
    if bad.any():
        examples = ", ".join(repr(value) for value in series[bad].unique()[:3])
        raise DataError(f"column {name!r} must be numeric; got {examples}")
    return numbers


def _as_text(series: pd.Series) -> pd.Series:
    """Strings, every kind of missing value (None, NaN, pd.NA) as NaN, which the imputer fills."""
    text = [
        value if type(value) is str else np.nan if pd.isna(value) else str(value)
        for value in series
    ]
    return pd.Series(text, index=series.index, dtype=object)
