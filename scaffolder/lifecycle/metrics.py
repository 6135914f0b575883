"""The one table of metrics: which tasks each applies to, its direction, how it is computed."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import catalog
from .errors import ConfigError, DataError
from .text import plain

# which tasks a metric fits and its direction come from the catalog (the spec validates with it)
TASKS = tuple(catalog.TASKS)


@dataclass(frozen=True)
class Outcome:
    """What a model produced for a labelled data set."""

    task: str
    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray | None = None  # columns follow `classes`
    classes: Sequence | None = None
    positive: Any = None  # binary tasks: the spec's positive_class, else the last class

    @property
    def binary(self) -> bool:
        return self.task == "binary-classification"

    @property
    def positive_class(self):
        """Binary tasks: the spec's positive_class, else the second of the sorted classes (as
        in scikit-learn, e.g. 1 or 'yes')."""
        return self.classes[-1] if self.positive is None else self.positive

    @property
    def positive_column(self) -> int:
        """The column of the positive class in `probabilities` (binary tasks)."""
        return list(self.classes).index(self.positive_class)


POSITIVE_CLASS_METRICS = ("f1", "precision", "recall")  # of the positive class (binary)


def chance_warning(metric: str, score: float | None, labels: Sequence) -> str:
    """A warning when the chosen model scores no better than a model without features would:
    roc_auc 0.5, r2 0, balanced_accuracy one over the classes, accuracy the largest class's
    share of `labels` (the rows it was scored on). '' otherwise, and for other metrics."""
    if score is None or not np.isfinite(score):
        return ""
    labels = np.asarray(labels)
    if metric == "r2":
        chance = 0.0
    elif metric in ("roc_auc", "balanced_accuracy", "accuracy"):
        _, counts = np.unique(labels, return_counts=True)
        chance = {"roc_auc": 0.5, "balanced_accuracy": 1 / len(counts),
                  "accuracy": counts.max() / counts.sum()}[metric]
    else:
        return ""
    if score > chance:
        return ""
    smallest = ""
    if metric != "r2":
        values, counts = np.unique(labels, return_counts=True)
        smallest = (f"; its rarest class, {plain(values[np.argmin(counts)])!r}, has "
                    f"{counts.min()} of {counts.sum()} rows")
    return (f"the best model's {metric} {score:.4g} is no better than chance ({chance:.4g}): "
            f"the columns may not predict the label, or the data is too small{smallest}; look "
            "at the data before promoting it")


def positive_class_warning(labels: Sequence, metric: str) -> str:
    """For a binary label: a warning when `metric` scores the positive class (the label value
    that sorts last: 1 of 0 and 1, 'yes' of 'no' and 'yes') and that class is the larger one,
    as 'legit' of 'fraud' and 'legit': the metric then measures the common case, and a gate on
    it passes easily. '' otherwise."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    if metric not in POSITIVE_CLASS_METRICS or len(values) != 2 or counts[1] <= counts[0]:
        return ""
    negative, positive = map(plain, values)
    share = counts[1] / counts.sum()
    return (f"{metric} scores the positive class, {positive!r} (the label value that sorts last), "
            f"which is {share:.0%} of the rows; to score {negative!r} instead, set "
            f"positive_class: {negative} in mlscaffold.yaml, or choose roc_auc or "
            f"balanced_accuracy")


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    tasks: tuple[str, ...]
    compute: Callable[[Outcome], float]
    description: str

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def is_better(self, candidate: float | None, reference: float | None) -> bool:
        """True when `candidate` beats `reference` (a missing reference is always beaten)."""
        if not _is_number(candidate):
            return False
        if not _is_number(reference):
            return True
        return candidate > reference if self.higher_is_better else candidate < reference

    def passes(self, value: float | None, threshold: float) -> bool:
        """True when `value` meets `threshold` in this metric's direction."""
        if not _is_number(value):
            return False
        return value >= threshold if self.higher_is_better else value <= threshold

    def sort_key(self, value: float | None) -> float:
        """Key that sorts best values first and missing values last."""
        if not _is_number(value):
            return math.inf
        return -value if self.higher_is_better else value


def _sklearn(name: str) -> Callable:
    """sklearn.metrics.<name>, imported at the first call: `list` and `promote` only need the
    table's names and directions, and scikit-learn takes over a second to import."""

    def score(*args, **kwargs):
        from sklearn import metrics

        return getattr(metrics, name)(*args, **kwargs)

    return score


def _averaged(score: Callable) -> Callable[[Outcome], float]:
    def compute(outcome: Outcome) -> float:
        if outcome.binary:
            return score(
                outcome.y_true, outcome.y_pred, pos_label=outcome.positive_class, zero_division=0
            )
        return score(outcome.y_true, outcome.y_pred, average="macro", zero_division=0)

    return compute


def _roc_auc(outcome: Outcome) -> float:
    if outcome.binary:
        return _sklearn("roc_auc_score")(
            outcome.y_true == outcome.positive_class,
            outcome.probabilities[:, outcome.positive_column]
        )
    return _sklearn("roc_auc_score")(
        outcome.y_true,
        outcome.probabilities,
        multi_class="ovr",
        average="macro",
        labels=list(outcome.classes),
    )


def _log_loss(outcome: Outcome) -> float:
    return _sklearn("log_loss")(outcome.y_true, outcome.probabilities, labels=list(outcome.classes))


def _rmse(outcome: Outcome) -> float:
    return float(np.sqrt(_sklearn("mean_squared_error")(outcome.y_true, outcome.y_pred)))


def _builtin(name: str, compute: Callable[[Outcome], float], description: str) -> Metric:
    tasks = tuple(task for task, info in catalog.TASKS.items() if name in info.metrics)
    return Metric(name, name not in catalog.LOWER_IS_BETTER, tasks, compute, description)


_METRICS = (
    _builtin(
        "accuracy",
        lambda o: _sklearn("accuracy_score")(o.y_true, o.y_pred),
        "share of correct predictions",
    ),
    _builtin(
        "balanced_accuracy",
        lambda o: _sklearn("balanced_accuracy_score")(o.y_true, o.y_pred),
        "mean recall over classes",
    ),
    _builtin(
        "f1",
        _averaged(_sklearn("f1_score")),
        "F1 (positive class; macro for multiclass)",
    ),
    _builtin(
        "precision",
        _averaged(_sklearn("precision_score")),
        "precision (positive class; macro for multiclass)",
    ),
    _builtin(
        "recall",
        _averaged(_sklearn("recall_score")),
        "recall (positive class; macro for multiclass)",
    ),
    _builtin(
        "roc_auc",
        _roc_auc,
        "area under the ROC curve (one-vs-rest macro for multiclass)",
    ),
    _builtin("log_loss", _log_loss, "cross-entropy of the class probabilities"),
    _builtin("rmse", _rmse, "root mean squared error"),
    _builtin(
        "mae",
        lambda o: _sklearn("mean_absolute_error")(o.y_true, o.y_pred),
        "mean absolute error",
    ),
    _builtin(
        "r2",
        lambda o: _sklearn("r2_score")(o.y_true, o.y_pred),
        "coefficient of determination",
    ),
    _builtin(
        "mape",
        lambda o: _sklearn("mean_absolute_percentage_error")(o.y_true, o.y_pred),
        "mean absolute percentage error (as a fraction)",
    ),
)
METRICS: dict[str, Metric] = {metric.name: metric for metric in _METRICS}
# the team's own metrics (hook `custom_metrics` of src/<package>/metrics.py), set per project
_custom: tuple[Metric, ...] = ()


def use_custom_metrics(metrics: tuple[Metric, ...]) -> None:
    """Make the project's custom metrics computed and selectable next to the built-in ones."""
    global _custom
    _custom = tuple(metrics)


def metrics_for(task: str) -> list[Metric]:
    """The metrics that apply to `task`: the built-in table's order, then the team's."""
    return [metric for metric in (*_METRICS, *_custom) if task in metric.tasks]


def get_metric(name: str, task: str) -> Metric:
    """Look up a metric by name and check it applies to `task`."""
    metric = next((m for m in _custom if m.name == name), None) or METRICS.get(name)
    valid = ", ".join(m.name for m in metrics_for(task))
    if metric is None:
        from ..suggest import did_you_mean

        known = [m.name for m in metrics_for(task)]
        raise ConfigError(f"unknown metric {name!r}{did_you_mean(name, known)}; metrics for "
                          f"{task}: {valid}")
    if task not in metric.tasks:
        raise ConfigError(f"metric {name!r} does not apply to {task}; choose one of: {valid}")
    return metric


def compute_all(outcome: Outcome) -> dict[str, float | None]:
    """Every metric of the outcome's task; None where it is undefined (e.g. one class in y_true)."""
    results: dict[str, float | None] = {}
    for metric in metrics_for(outcome.task):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = float(metric.compute(outcome))
        except ValueError:
            value = None
        results[metric.name] = value if _is_number(value) else None
    return results


CLASSES_SHOWN = 5  # absent classes a reason names


def why_undefined(name: str, outcome: Outcome, source: str) -> str:
    """Why metric `name` is undefined (compute_all's None) on the rows of `source`, in words:
    roc_auc needs every class of the model among the labels (both of a binary model)."""
    if name == "roc_auc" and outcome.classes is not None:
        present = set(np.asarray(outcome.y_true).tolist())
        absent = [plain(value) for value in outcome.classes if value not in present]
        if absent:
            shown = ", ".join(map(repr, absent[:CLASSES_SHOWN]))
            shown += ", ..." if len(absent) > CLASSES_SHOWN else ""
            which = "both classes" if outcome.binary else "every class of the model"
            return (f"roc_auc needs {which} in {source}; {shown} "
                    f"{'has' if len(absent) == 1 else 'have'} no rows there: add rows of "
                    f"{'it' if len(absent) == 1 else 'them'}, or gate on another metric")
    return f"{name} could not be computed on the rows of {source}"


def _is_number(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def outcome_of(pipeline, features, labels: np.ndarray, task: str, positive: Any = None
               ) -> Outcome:
    """Run a fitted pipeline on labelled data; classifiers predict the most probable class.
    `positive`: the binary positive class (None: the last)."""
    if task == "regression":
        return Outcome(task, labels, np.asarray(pipeline.predict(features), dtype=float))
    probabilities = pipeline.predict_proba(features)
    classes = pipeline.classes_
    return Outcome(
        task, labels, classes[np.argmax(probabilities, axis=1)], probabilities, classes.tolist(),
        positive,
    )


def positive_text(value: Any) -> str:
    """A class as the spec's positive_class writes it."""
    return str(plain(value))


def positive_of(classes: Sequence, configured: str | None, source: str) -> Any:
    """The class `configured` (the spec's positive_class, as text) names among `classes`, None
    without one; a DataError naming the classes when none is it."""
    if configured is None:
        return None
    names = [positive_text(value) for value in classes]
    if configured not in names:
        from ..suggest import did_you_mean

        raise DataError(f"positive_class {configured!r} of mlscaffold.yaml is not a class of "
                        f"{source} ({', '.join(map(repr, names))})"
                        f"{did_you_mean(configured, names)}", hint="set it to one of them")
    return classes[names.index(configured)]
