"""A trained model with the metadata needed to use it: saving, loading, locating and predicting.

This is the API the serving module builds on; keep it stable.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from .config import STAGE_ALIASES, STAGES, Layout, find_project_root
from .errors import DataError, NotFoundError
from .experiments import experiment_dir, read_index, unknown_experiment
from .files import atomic_write, atomic_write_json, read_json, utc_now
from .registry import current_version_dir
from .schema import ParsedFeatures, parse_features, used_columns
from .text import column_name

__all__ = [
    "METADATA_FILE",
    "MODEL_FILE",
    "ModelBundle",
    "SchemaMismatch",
    "check_columns",
    "find_project_root",
    "frame_from_records",
    "load_bundle",
    "parse_input",
    "predict_frame",
    "predict_parsed",
    "resolve_model_dir",
    "save_bundle",
]

MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"
FORMAT_VERSION = 1
_EXPERIMENT_ID = re.compile(r"^exp-\d{3,}$")


@dataclass
class ModelBundle:
    """A fitted sklearn Pipeline (preprocessing + estimator) and what it was trained for."""

    pipeline: Any
    task: str
    label: str
    features: dict[str, str]  # input column -> numeric | categorical | date | dropped (in order)
    classes: list | None  # class labels for classifiers, JSON-serializable
    metric: str
    metrics: dict[str, float]
    name: str
    # numeric columns whose non-numbers are read as missing (the training data's decision):
    # column -> {"count": strays in the training data, "values": {text: count}}
    strays: dict[str, dict] = field(default_factory=dict)
    # numeric columns of numbers written with a trailing '%', read as the numbers written
    percents: list[str] = field(default_factory=list)

    @property
    def input_columns(self) -> list[str]:
        """The columns the pipeline reads."""
        return used_columns(self.features)

    @property
    def is_classifier(self) -> bool:
        return self.classes is not None


class SchemaMismatch(DataError):
    """Input columns do not match the model's; `missing` are required, `extra` are unknown."""

    def __init__(self, missing: list[str], extra: list[str]):
        self.missing = list(missing)
        self.extra = list(extra)
        parts = []
        if self.missing:
            parts.append(f"missing column(s): {', '.join(map(column_name, self.missing))}")
        if self.extra:
            from ..suggest import did_you_mean  # an unexpected column may be a missing one's typo

            parts.append("unexpected column(s): " + ", ".join(
                f"{column_name(column)}{did_you_mean(column, self.missing)}"
                for column in self.extra))
        super().__init__("input does not match the model's schema: " + "; ".join(parts))


def save_bundle(bundle: ModelBundle, directory: Path) -> Path:
    """Write model.joblib (the pipeline) and model.json (metadata); returns the joblib path."""
    directory = Path(directory)
    artifact = atomic_write(
        directory / MODEL_FILE, lambda stream: joblib.dump(bundle.pipeline, stream)
    )
    atomic_write_json(
        directory / METADATA_FILE,
        {
            "format_version": FORMAT_VERSION,
            "name": bundle.name,
            "task": bundle.task,
            "label": bundle.label,
            "features": bundle.features,
            "classes": bundle.classes,
            "metric": bundle.metric,
            "metrics": bundle.metrics,
            "strays": bundle.strays,
            "percents": bundle.percents,
            "sklearn_version": sklearn.__version__,
            "saved_at": utc_now(),
        },
    )
    return artifact


def load_bundle(directory: Path) -> ModelBundle:
    """Load a bundle written by save_bundle."""
    directory = Path(directory)
    metadata = read_json(directory / METADATA_FILE)
    if metadata is None or not (directory / MODEL_FILE).is_file():
        raise NotFoundError(f"no model in {directory} (expected {MODEL_FILE} and {METADATA_FILE})")
    trained_with = metadata.get("sklearn_version")
    if trained_with and trained_with != sklearn.__version__:
        warnings.warn(
            f"model was saved with scikit-learn {trained_with}, running {sklearn.__version__}",
            stacklevel=2,
        )
    return ModelBundle(
        pipeline=joblib.load(directory / MODEL_FILE),
        task=metadata["task"],
        label=metadata["label"],
        features=dict(metadata["features"]),
        classes=metadata.get("classes"),
        metric=metadata["metric"],
        metrics=dict(metadata.get("metrics") or {}),
        name=metadata.get("name", ""),
        strays=dict(metadata.get("strays") or {}),
        percents=list(metadata.get("percents") or []),
    )


def check_columns(bundle: ModelBundle, columns) -> tuple[list[str], list[str]]:
    """(missing, extra): required columns absent from `columns`, columns the model does not know.

    The label column and dropped columns (e.g. IDs) are neither missing nor extra.
    """
    present = set(columns)
    missing = [name for name in bundle.input_columns if name not in present]
    known = set(bundle.features) | {bundle.label}
    extra = [name for name in columns if name not in known]
    return missing, extra


def frame_from_records(bundle: ModelBundle, records: list[dict]) -> pd.DataFrame:
    """Turn JSON records into a frame of the model's input columns with training dtypes.

    Raises SchemaMismatch when a required column is missing from any record (unknown keys are
    ignored) and DataError when a numeric field holds text.
    """
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise DataError("records must be a list of JSON objects")
    required = bundle.input_columns
    missing = sorted(
        {name for record in records for name in required if name not in record}, key=required.index
    )
    if missing:
        seen = {key for record in records for key in record}
        raise SchemaMismatch(
            missing, [name for name in sorted(seen) if name not in bundle.features]
        )
    frame = pd.DataFrame.from_records(records, columns=required)
    return parse_input(bundle, frame).frame


def parse_input(bundle: ModelBundle, frame: pd.DataFrame) -> ParsedFeatures:
    """The model's input columns of `frame` read as in training, and the strays found.

    Numbers become floats and categories strings; in the numeric columns of `bundle.strays`, text
    that is not a number reads as missing (as it did in training), elsewhere it is a DataError.
    In the numeric columns of `bundle.percents`, '64.3%' reads as 64.3, as in training.
    In `boolean_columns`, true and false as pandas spells them read as in training.
    Everything that scores a bundle reads its input through here (predict_frame,
    frame_from_records, evaluate, predict, serve).
    """
    parsed = parse_features(frame, bundle.features, bundle.strays, bundle.percents)
    for name in boolean_columns(bundle):
        parsed.frame[name] = parsed.frame[name].replace(BOOLEAN_TEXT)
    return parsed


# what pandas reads as a boolean in a CSV column (its C parser's true and false values), which
# training then knows as the text "True" and "False"
BOOLEAN_TEXT = {"true": "True", "TRUE": "True", "false": "False", "FALSE": "False"}


def boolean_columns(bundle: ModelBundle) -> frozenset[str]:
    """The categorical columns whose every category in training is "True" or "False": pandas read
    the training file's true/false (any spelling) as booleans. Text sent to the server, or a file
    whose column also holds other text, keeps the spelling written, which the model would take
    for an unknown category. Found in the fitted one-hot encoders of the pipeline."""
    found = set()
    for estimator in fitted_parts(bundle.pipeline):
        for _, step, columns in getattr(estimator, "transformers_", None) or []:
            encoder = step.steps[-1][1] if hasattr(step, "steps") else step
            categories = getattr(encoder, "categories_", None)
            if categories is None or not isinstance(columns, list | tuple) \
                    or len(columns) != len(categories):
                continue
            found.update(name for name, values in zip(columns, categories, strict=True)
                         if len(values) and {str(v) for v in values} <= {"True", "False"})
    return frozenset(found)


def fitted_parts(estimator: Any) -> Iterator[Any]:
    """`estimator` and every fitted estimator inside it (pipelines, column transformers, unions)."""
    yield estimator
    for attribute in ("steps", "transformers_", "transformer_list"):
        for item in getattr(estimator, attribute, None) or []:
            if len(item) > 1 and not isinstance(item[1], str):
                yield from fitted_parts(item[1])


def predict_frame(bundle: ModelBundle, frame: pd.DataFrame) -> dict:
    """Predict for every row: {"predictions": [...], "probabilities": [[...], ...] or None}.

    Probability columns follow `bundle.classes`. Values are plain Python types.
    """
    columns = frame.columns
    missing = [name for name in bundle.input_columns if name not in columns]
    if missing:
        raise SchemaMismatch(missing, [])
    return predict_parsed(bundle, parse_input(bundle, frame).frame)


def predict_parsed(bundle: ModelBundle, features: pd.DataFrame) -> dict:
    """predict_frame of input that parse_input has read already: `predict` parses a file once,
    for its stray warnings and the prediction (a second parse took 11 ms of 127 on 50,000
    rows)."""
    if not bundle.is_classifier:
        return {
            "predictions": bundle.pipeline.predict(features).astype(float).tolist(),
            "probabilities": None,
        }
    probabilities = bundle.pipeline.predict_proba(features)
    winners = np.argmax(probabilities, axis=1)
    return {
        "predictions": [bundle.classes[index] for index in winners],
        "probabilities": probabilities.astype(float).tolist(),
    }


def resolve_model_dir(project_root: Path, ref: str) -> Path:
    """The directory of the model "production", "staging" (current versions) or "exp-NNN"."""
    layout = Layout(Path(project_root))
    ref = STAGE_ALIASES.get(ref, ref)
    if ref in STAGES:
        return current_version_dir(layout, ref)
    if _EXPERIMENT_ID.match(ref):
        return experiment_dir(layout, ref)
    if re.fullmatch(r"(exp-?)?\d+", ref):  # exp-1, 7: an experiment by its number
        raise unknown_experiment(ref, read_index(layout))
    from ..suggest import did_you_mean

    raise NotFoundError(
        f"unknown model {ref!r}{did_you_mean(ref, [*STAGES, *STAGE_ALIASES])}: use production "
        "(or prod), staging or an experiment id like exp-001"
    )


def describe(bundle: ModelBundle) -> str:
    """One line naming the model, for logs."""
    score = bundle.metrics.get(bundle.metric)
    shown = "n/a" if score is None else f"{score:.4f}"
    return f"{bundle.name} {bundle.task} model ({bundle.metric}={shown})"
