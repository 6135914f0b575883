"""The model compiled to ONNX (skl2onnx) and run by ONNX Runtime: the server's fast route.

A fitted scikit-learn pipeline costs milliseconds per call however few rows it gets (pandas
frames, per-step validation); ONNX Runtime scores the same graph in tens of microseconds. The
graph comes from skl2onnx, scikit-learn's maintained converter, so nothing here re-implements a
transformer. `CompiledModel.build` converts the pipeline, then checks on probe rows (missing
values, unknown categories, a spread of numbers) that the graph predicts what the pipeline
predicts; when the converter refuses a step or the check fails, it returns None and every
prediction goes through the pipeline itself (`model.predict_frame`).

Numbers go through the graph as 32-bit floats, as ONNX Runtime's scikit-learn operators compute:
probabilities and regression values agree with the pipeline's to about 1e-6 relative, and the
check refuses a graph that differs by more than `TOLERANCE` (or by any label) on the probes:
probabilities absolutely, regression values relative to the spread of the pipeline's predictions
(`_agree`), not to their size, which would pass 999999995904.0 for 1000000000447.84.
Rows the graph cannot take as they are (a category equal to the missing-value marker; a number
beyond float32's range, which the server's records refuse before) and results that overflow
float32 go through the pipeline.

One adaptation: ONNX string tensors have no NaN, so a SimpleImputer that fills missing text is
converted with the marker `MISSING` as its missing value, and missing text is fed as `MISSING`.

An ensemble from `train` (`ensemble.EnsembleClassifier` / `EnsembleRegressor`, which skl2onnx
does not know) is compiled member by member: each member behind the pipeline's preprocessing is
one graph, and their outputs are combined as the ensemble combines them (its normalized
`weights_`; each member's probability columns placed under the ensemble's classes), in float64.
The probe check then compares the combination with the pipeline.

Date columns: ONNX has no date parsing, so the pipeline's step that turns a date into numbers
(`schema.date_parts`) runs before the graph (`schema.dates_as_parts`), and the graph takes the parts
(``signed_up.days``, ``signed_up.month`` ...) as its inputs and runs the steps after it (impute,
scale). Days since 1970 would be ~3 minutes apart as float32, so the days are fed relative to the
training's median date, computed in float64 before the cast, and the graph's imputer and scaler
are shifted by the same median (`_day_offsets`): the graph computes what the pipeline does,
and dates spanning hours or minutes keep their resolution. A date step the shift cannot pass
through (a team's own steps after `date_parts`) is fed days since 1970, and where that shows
the probe check sends the model to the pipeline route.

Numeric columns likewise: millisecond timestamps (~1.7e12) are 131 seconds apart as float32, so
a column whose every step is build_preprocessor's numeric step (an imputer, then a scaler that
centres: `_centring`) is fed relative to the scaler's training mean, in float64 before the
cast, with the graph's imputer and scaler shifted by it (`_numeric_offsets`). Other numeric
steps are fed the values as they are; the probes include numbers around each column's training
centre, spread by its scale (`_numeric_centres`), so a graph that loses their precision fails
the check and the pipeline serves.

Regression values likewise: labels of 1e12 + a signal are 131,072 apart as float32, so where the
model (each member of an ensemble) has a scalar ``intercept_``, the graph's copy has it lowered
by the pipeline's typical prediction on the probes, which is added back in float64 after the
graph (an ensemble's weights sum to 1, so adding it to each member's values adds it to their
mix). A model without one (neighbours) keeps its values, and where those lose precision the
check refuses the graph.

Tree models (forests, boosting, single trees; also as ensemble members) are not compiled: see
`_tree_based`.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..ensemble import EnsembleClassifier, EnsembleRegressor, align_probabilities
from ..model import ModelBundle, fitted_parts, predict_frame
from ..schema import (
    CATEGORICAL,
    DATE,
    DATE_PARTS,
    NUMERIC,
    date_part_names,
    date_parts,
    dates_as_parts,
)
from .records import FLOAT32_MAX, Table

log = logging.getLogger(__name__)

MISSING = "\x00mlscaffold-missing"
TOLERANCE = 1e-4  # largest difference allowed on the probes: see the module docstring
_PROBE_NUMBERS = (0.0, 1.0, -2.5, 10.0, None, 123.456, -1000.0, 0.001, 50.0, 1e4, 7.3, -0.4)
_PROBE_ROWS = 24  # rows of fixed numbers; as many again of numbers and dates like the
# training's: its centre + k * scale (each numeric and date column's), and missing. Fixed numbers
# 1.7e12 from a column's centre are answered 0 or 1 by any graph, where the precision lost near
# the centre shows
_PROBE_SPREAD = (0.0, 0.3, -0.7, None, 1.5, -2.0, 0.01, 3.0, -0.05, 1.0, -1.3, 2.5)
# days from the training's median date (a float32 day is ~3 minutes near 2026: near the median
# the probes see it where the model's scale is finest), the missing date, and text no date
_PROBE_DAYS = (0.0, 0.004, -0.01, None, 0.3, -1.0, 7.5, -30.0, "not a date", 365.25, -3650.0, 0.5)


class CompiledModel:
    """ONNX Runtime session of a bundle's pipeline; `predict` answers like ``predict_frame``."""

    def __init__(self, bundle: ModelBundle):
        self.bundle = bundle
        self.numeric = [c for c, kind in bundle.features.items() if kind == NUMERIC]
        self.categorical = [c for c, kind in bundle.features.items() if kind == CATEGORICAL]
        self.dates = [c for c, kind in bundle.features.items() if kind == DATE]
        self.classes = bundle.classes
        self.day_offsets = _day_offsets(bundle.pipeline)  # column -> days fed relative to
        self.offsets = _numeric_offsets(bundle.pipeline)  # column -> value fed relative to
        self.probes = self._probes()
        self.expected = predict_frame(bundle, pd.DataFrame(self.probes.columns))
        # regression: the mean and spread of the pipeline's values on the probes near the
        # training's numbers; the graph's values are relative to the mean (the module docstring)
        self.typical, self.spread = 0.0, 0.0
        if self.classes is None:
            values = np.asarray(self.expected["predictions"][_PROBE_ROWS:], dtype=np.float64)
            with np.errstate(over="ignore"):  # values near float64's limit: judged by size
                typical, spread = float(np.mean(values)), float(np.std(values))
            if math.isfinite(typical) and math.isfinite(spread):
                self.typical, self.spread = typical, spread
        # (weight, session, the member's classes and the ensemble's or None when the same,
        # the value added to its outputs)
        self.parts = [(weight, _session(graph), classes, shift) for weight, graph, classes, shift
                      in _convert(bundle, self.day_offsets, self.offsets, self.typical)]
        # the graph's name of each input: skl2onnx makes names valid (``signed.days`` is
        # ``signed_days``), keeping their order
        ours = [name for name, _ in _inputs(bundle)]
        self.names = [(name, graph.name) for name, graph
                      in zip(ours, self.parts[0][1].get_inputs(), strict=True)]

    @classmethod
    def build(cls, bundle: ModelBundle) -> CompiledModel | None:
        """A checked compiled model, or None (the reason logged) to use the pipeline."""
        try:
            problem = _tree_based(bundle.pipeline)
            compiled = None if problem else cls(bundle)
            problem = problem or compiled.check()
        except ImportError as error:
            problem = f"{error.name or error} is not installed"
        except Exception as error:  # the converter refuses what it does not know
            problem = f"skl2onnx cannot convert the pipeline: {type(error).__name__}: " \
                      f"{str(error)[:300]}"
        if problem:
            log.info("fast path off: %s; predicting with the scikit-learn pipeline", problem)
            return None
        log.info("fast path on: the pipeline compiled to ONNX, checked against it on probe rows")
        return compiled

    def predict(self, rows: Table) -> dict | None:
        """``{"predictions", "probabilities"}`` for checked rows, or None when a value needs
        the pipeline (see the module docstring)."""
        feed = {}
        for column in self.numeric:
            array = rows.columns[column] - self.offsets.get(column, 0.0)  # float64: see above
            if (np.abs(array) > FLOAT32_MAX).any():  # NaN compares False
                return None
            feed[column] = array.astype(np.float32).reshape(-1, 1)
        for column in self.categorical:
            values = rows.columns[column]
            if MISSING in values:
                return None
            if None in values:
                values = [MISSING if v is None else v for v in values]
            feed[column] = np.array(values, dtype=object).reshape(-1, 1)
        for column in self.dates:
            parts = dates_as_parts(rows.columns[column])
            parts[0] = parts[0] - self.day_offsets.get(column, 0.0)  # in float64: see above
            for name, part in zip(date_part_names(None, [column]), parts, strict=True):
                feed[name] = part.astype(np.float32).reshape(-1, 1)
        scores = self._scores(feed)
        if scores is None:
            return None
        if self.classes is None:
            return {"predictions": scores.astype(np.float64).ravel().tolist(),
                    "probabilities": None}
        probabilities = scores.astype(np.float64)
        return {"predictions": [self.classes[i] for i in np.argmax(probabilities, axis=1)],
                "probabilities": probabilities.tolist()}

    def _scores(self, feed: dict) -> np.ndarray | None:
        """Regression values or class probabilities, None when float32 overflowed (the
        pipeline computes in float64)."""
        total = None
        feed = {graph: feed[name] for name, graph in self.names}
        for weight, session, classes, shift in self.parts:
            outputs = session.run(None, feed)
            scores = outputs[0] if self.classes is None else outputs[-1]
            if not np.isfinite(scores).all():
                return None
            if shift:
                scores = scores.astype(np.float64) + shift
            if len(self.parts) == 1:
                return scores
            scores = scores.astype(np.float64)
            if classes is not None:
                scores = align_probabilities(scores, *classes)
            total = weight * scores if total is None else total + weight * scores
        return total

    def check(self) -> str:
        """'' when the graph predicts what the pipeline does on the probe rows, else why not."""
        probes, expected = self.probes, self.expected
        first = Table({name: values[:1] for name, values in probes.columns.items()}, 1)
        for rows in (probes, first):
            got = self.predict(rows)
            if got is None:
                return "the probe rows were refused"
            want = {key: value[:rows.rows] if value is not None else None
                    for key, value in expected.items()}
            if self.classes is None:
                same = _agree(got["predictions"], want["predictions"], self.typical,
                              self.spread)
            else:
                same = got["predictions"] == want["predictions"] and np.allclose(
                    got["probabilities"], want["probabilities"], rtol=TOLERANCE, atol=TOLERANCE)
            if not same:
                return "the ONNX graph does not predict what the pipeline does on probe rows"
        return ""

    def _probes(self, rows: int = 2 * _PROBE_ROWS) -> Table:
        """Rows covering missing values, known and unknown categories, a spread of numbers:
        fixed ones, then ones near each numeric column's training centre."""
        categories = sorted({value for estimator in fitted_parts(self.bundle.pipeline)
                             for values in getattr(estimator, "categories_", None) or []
                             for value in values if isinstance(value, str)})
        categories += ["\x01unknown", None]
        columns: dict[str, Any] = {}
        centres = _numeric_centres(self.bundle.pipeline, self.numeric)
        for j, column in enumerate(self.numeric):
            centre, scale = centres.get(column, (0.0, 1.0))
            numbers = [_PROBE_NUMBERS[(i + 5 * j) % len(_PROBE_NUMBERS)] if i < _PROBE_ROWS
                       else _around(centre, scale, _PROBE_SPREAD[(i + 5 * j) % len(_PROBE_SPREAD)])
                       for i in range(rows)]
            columns[column] = np.array([math.nan if v is None else v for v in numbers])
        for j, column in enumerate(self.categorical):
            columns[column] = [categories[(i + 3 * j) % len(categories)] for i in range(rows)]
        medians, spreads = _median_days(self.bundle.pipeline), _day_scales(self.bundle.pipeline)
        for j, column in enumerate(self.dates):
            around = pd.Timestamp("1970-01-01") + pd.Timedelta(days=medians.get(column, 20_000.0))
            days = [_PROBE_DAYS[(i + 5 * j) % len(_PROBE_DAYS)] if i < _PROBE_ROWS
                    else _around(0.0, spreads.get(column, 1.0),
                                 _PROBE_SPREAD[(i + 5 * j) % len(_PROBE_SPREAD)])
                    for i in range(rows)]
            columns[column] = [d if d is None or isinstance(d, str)
                               else (around + pd.Timedelta(days=d)).isoformat() for d in days]
        return Table(columns, rows)


def _tree_based(pipeline: Any) -> str:
    """Why a pipeline whose model is (or, in an ensemble, holds) trees stays on the pipeline
    route, or ''. A tree compares float32 values with its thresholds; scikit-learn casts its
    float64 preprocessing to float32 there, while the graph preprocesses in float32, so a value
    next to a threshold can take the other branch. Measured on a 100-tree forest behind
    scaling and one-hot encoding: 4% of 1,000 rows differed, by up to 0.14 in probability,
    with the synthetic probe rows agreeing."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.tree import BaseDecisionTree

    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    models = list(final.estimators_) \
        if isinstance(final, EnsembleClassifier | EnsembleRegressor) else [final]
    for model in models:
        inner = getattr(model, "estimators_", None)  # forests: a list; gradient boosting: an array
        trees = [] if inner is None else np.ravel(np.asarray(inner, dtype=object))
        if isinstance(model, BaseDecisionTree | HistGradientBoostingClassifier
                      | HistGradientBoostingRegressor) or any(
                isinstance(tree, BaseDecisionTree) for tree in trees):
            return (f"{type(model).__name__} is a tree model, which a float32 graph may "
                    "branch differently from scikit-learn")
    return ""


def _agree(got: list, want: list, typical: float, spread: float) -> bool:
    """Whether the graph's regression values are the pipeline's: each within TOLERANCE of the
    spread of the values (`spread` near `typical`, more for a value far from it), as float32
    computes values relative to the typical one. When the values have no spread, relative to
    their size, as for probabilities."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if not spread:
        return bool(np.allclose(got, want, rtol=TOLERANCE, atol=TOLERANCE))
    return bool((np.abs(got - want) <= TOLERANCE * (spread + np.abs(want - typical))).all())


def _around(centre: float, scale: float, k: float | None) -> float | None:
    return None if k is None else centre + k * scale


def _convert(bundle: ModelBundle, day_offsets: dict[str, float], offsets: dict[str, float],
             typical: float) -> list[tuple[float, bytes, Any, float]]:
    """(weight, ONNX graph, (member classes, ensemble classes) or None, the value to add to its
    outputs) per part: the pipeline, or one per member of an ensemble (see the module
    docstring)."""
    from sklearn.pipeline import Pipeline

    pipeline = bundle.pipeline
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else None
    if not isinstance(final, EnsembleClassifier | EnsembleRegressor):
        graph, shift = _graph(bundle, pipeline, day_offsets, offsets, typical)
        return [(1.0, graph, None, shift)]
    parts = []
    for weight, member in zip(final.weights_, final.estimators_, strict=True):
        member_pipeline = Pipeline([*pipeline.steps[:-1], (pipeline.steps[-1][0], member)])
        classes = None
        if bundle.classes is not None and list(member.classes_) != list(final.classes_):
            classes = (member.classes_, final.classes_)
        graph, shift = _graph(bundle, member_pipeline, day_offsets, offsets, typical)
        parts.append((float(weight), graph, classes, shift))
    return parts


def _graph(bundle: ModelBundle, pipeline: Any, day_offsets: dict[str, float],
           offsets: dict[str, float], typical: float) -> tuple[bytes, float]:
    """The ONNX graph of (a copy of) `pipeline`, and the value to add to its regression values:
    `typical`, which the copy's intercept is lowered by, or 0 for a model without one."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.impute import SimpleImputer

    pipeline = copy.deepcopy(pipeline)
    for estimator in list(fitted_parts(pipeline)):
        statistics = getattr(estimator, "statistics_", None)
        if (isinstance(estimator, SimpleImputer) and isinstance(estimator.missing_values, float)
                and math.isnan(estimator.missing_values) and statistics is not None
                and statistics.dtype == object):
            estimator.missing_values = MISSING  # text imputer: see the module docstring
        _dates_as_inputs(estimator, day_offsets)
    readers = _numeric_readers(pipeline) or {}
    for column, offset in offsets.items():  # the copy's steps take the column less the offset
        for parts, position, _ in readers[column]:
            _shift(parts, position, offset)
    types = [(name, (StringTensorType if text else FloatTensorType)([None, 1]))
             for name, text in _inputs(bundle)]
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    options = {id(final): {"zipmap": False}} if bundle.classes is not None else None
    intercept = getattr(final, "intercept_", None)
    shift = 0.0
    if bundle.classes is None and intercept is not None and np.size(intercept) == 1 \
            and np.asarray(intercept).dtype.kind == "f":
        final.intercept_ = intercept - typical
        shift = typical
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_onnx(pipeline, initial_types=types, options=options).SerializeToString(), shift


def _inputs(bundle: ModelBundle) -> list[tuple[str, bool]]:
    """The graph's inputs in training order, each with whether it is text: the numeric and
    categorical columns, and each date column's parts."""
    inputs = []
    for column, kind in bundle.features.items():
        if kind in (NUMERIC, CATEGORICAL):
            inputs.append((column, kind == CATEGORICAL))
        elif kind == DATE:
            inputs += [(part, False) for part in date_part_names(None, [column])]
    return inputs


def _dates_as_inputs(estimator: Any, day_offsets: dict[str, float]) -> None:
    """Make a fitted column transformer's date steps (`_date_steps`) read the parts as graph
    inputs: their later steps on the part columns, which `CompiledModel.predict` computes before
    the graph. A step that is date_parts alone passes the parts through. The imputer and scaler
    of a column in `day_offsets` take its days relative to the offset (a copy is changed)."""
    transformers = getattr(estimator, "transformers_", None) or []
    for index, step, columns in _date_steps(estimator):
        rest = step[1:] if len(getattr(step, "steps", ())) > 1 else "passthrough"
        for position, column in enumerate(columns):
            if column in day_offsets:
                _shift([part for _, part in step.steps[1:]], position * len(DATE_PARTS),
                       day_offsets[column])
        transformers[index] = (transformers[index][0], rest, date_part_names(None, columns))


def _date_steps(estimator: Any) -> list[tuple[int, Any, list[str]]]:
    """(index, step, date columns) of each step of a fitted column transformer that starts with
    `schema.date_parts` (alone or first in a pipeline), as build_preprocessor makes it."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    found = []
    for index, (_, step, columns) in enumerate(getattr(estimator, "transformers_", None) or []):
        first = step.steps[0][1] if isinstance(step, Pipeline) else step
        if isinstance(first, FunctionTransformer) and first.func is date_parts:
            found.append((index, step, list(columns)))
    return found


def _day_offsets(pipeline: Any) -> dict[str, float]:
    """Each date column's training median in days since 1970, where its date step is
    build_preprocessor's (date_parts, an imputer, a scaler that centres), which a shift of the
    days passes through: the graph is fed days relative to it. {} when none is."""
    shiftable = set()
    for estimator in fitted_parts(pipeline):
        for _, step, columns in _date_steps(estimator):
            rest = [part for _, part in getattr(step, "steps", ())[1:]]
            if _centring(rest, len(columns) * len(DATE_PARTS)):
                shiftable.update(columns)
    return {column: median for column, median in _median_days(pipeline).items()
            if column in shiftable and math.isfinite(median)}


def _median_days(pipeline: Any) -> dict[str, float]:
    """Each date column's training median in days since 1970, where the date step imputes with
    it (build_preprocessor's SimpleImputer after date_parts): {} when not found."""
    return _days_of(pipeline, lambda rest: getattr(rest[0], "statistics_", None))


def _day_scales(pipeline: Any) -> dict[str, float]:
    """Each date column's training spread in days (its date step's scaler's scale), where the
    step is build_preprocessor's: {} when none is."""
    return _days_of(pipeline, lambda rest: getattr(rest[-1], "scale_", None))


def _days_of(pipeline: Any, values_of: Any) -> dict[str, float]:
    """Each date column's entry at its days part in `values_of(rest)`, an array over the parts
    of the date step's columns that the step's estimators after date_parts (`rest`) hold, or
    None; {} when no step holds one."""
    found = {}
    for estimator in fitted_parts(pipeline):
        for _, step, columns in _date_steps(estimator):
            rest = [part for _, part in getattr(step, "steps", ())[1:]]
            values = values_of(rest) if rest else None
            if values is not None and len(values) == len(columns) * len(DATE_PARTS):
                found.update({c: float(values[i * len(DATE_PARTS)])
                              for i, c in enumerate(columns)})
    return found


def _centring(parts: list, width: int) -> bool:
    """Whether `parts` (a step's estimators, on `width` columns) are an imputer of NaN, then a
    StandardScaler that centres, which a shift of their input passes through (`_shift`)."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    if len(parts) != 2 or not isinstance(parts[0], SimpleImputer) \
            or not isinstance(parts[1], StandardScaler):
        return False
    imputer, scaler = parts
    missing = imputer.missing_values
    mean = getattr(scaler, "mean_", None)
    return (isinstance(missing, float) and math.isnan(missing) and scaler.with_mean
            and mean is not None and len(mean) == len(imputer.statistics_) == width)


def _shift(parts: list, position: int, offset: float) -> None:
    """Make a `_centring` step (of a copy) take its column at `position` less `offset`:
    x - m == (x - o) - (m - o), and the imputer's fill moves with it."""
    imputer, scaler = parts
    imputer.statistics_[position] -= offset
    scaler.mean_[position] -= offset


def _numeric_readers(pipeline: Any) -> dict[str, list[tuple[list, int, int]]] | None:
    """Each column the pipeline's first step, a fitted column transformer, hands on ->
    [(the estimators of a step reading it, its position among that step's columns, their
    number), ...]. None when the first step is no column transformer or hands a step columns
    other than by a list of names."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = pipeline.steps[0][1] if hasattr(pipeline, "steps") else pipeline
    if not isinstance(first, ColumnTransformer):
        return None
    readers: dict[str, list] = {}
    for _, step, columns in first.transformers_:
        if isinstance(step, str) and step == "drop":
            continue
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            return None
        parts = [part for _, part in step.steps] if isinstance(step, Pipeline) else [step]
        for position, column in enumerate(columns):
            readers.setdefault(column, []).append((parts, position, len(columns)))
    return readers


def _numeric_offsets(pipeline: Any) -> dict[str, float]:
    """Each column whose every step is `_centring` (build_preprocessor's numeric step) -> its
    training mean, which the graph is fed the column relative to. {} when none is."""
    offsets = {}
    for column, steps in (_numeric_readers(pipeline) or {}).items():
        if all(_centring(parts, width) for parts, _, width in steps):
            parts, position, _ = steps[0]
            mean = float(parts[1].mean_[position])
            if math.isfinite(mean):
                offsets[column] = mean
    return offsets


def _numeric_centres(pipeline: Any, columns: list[str]) -> dict[str, tuple[float, float]]:
    """Each of the numeric `columns`' training (centre, scale) where its first step shows them:
    a StandardScaler's mean and scale, or its imputer's median (then a scale of 1)."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    readers = _numeric_readers(pipeline) or {}
    centres = {}
    for column in columns:
        parts, position, width = (readers.get(column) or [([], 0, 0)])[0]
        centre, scale = math.nan, 1.0
        for part in parts:  # while the columns keep their positions
            statistics = getattr(part, "statistics_", None)
            if isinstance(part, SimpleImputer) and statistics is not None \
                    and len(statistics) == width and statistics.dtype.kind == "f":
                centre = float(statistics[position])
                continue
            if isinstance(part, StandardScaler) and getattr(part, "n_features_in_", 0) == width:
                if part.mean_ is not None:
                    centre = float(part.mean_[position])
                if part.scale_ is not None:
                    scale = float(part.scale_[position])
            break
        if math.isfinite(centre) and math.isfinite(scale):
            centres[column] = (centre, scale)
    return centres


def _session(graph: bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # requests are small: threads cost more than they give
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
