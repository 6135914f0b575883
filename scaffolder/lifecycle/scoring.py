"""Scores for the search's inner loops: the metrics of metrics.py, computed fast.

The search scores every fold of every candidate and hundreds of mixes during ensemble selection,
always against the same labels. scikit-learn's metric functions validate their inputs on every
call, which costs more than the arithmetic on a few thousand rows; `Scorer` encodes the labels
once and computes the built-in metrics with numpy. The values are those of metrics.py (a test
compares them on many outcomes); the team's own metrics run their own code.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from .metrics import METRICS, Metric, Outcome, metrics_for

__all__ = ["Scorer"]

_EPS = np.finfo(np.float64).eps


class Scorer:
    """Metrics of outputs for fixed true labels.

    An output is a probability matrix whose columns follow `classes` (classification) or a
    vector of predictions (regression). `classes` must be sorted, as numpy.unique returns them.
    """

    def __init__(self, task: str, y_true: np.ndarray, classes: np.ndarray | None,
                 positive: object = None):
        self.task, self.y, self.classes = task, np.asarray(y_true), classes
        self.positive = positive  # binary: the spec's positive class; None: the last class
        if classes is not None:
            self.codes = np.searchsorted(classes, self.y)
            self.true_count = np.bincount(self.codes, minlength=len(classes))
            self.positive_code = (len(classes) - 1 if positive is None
                                  else int(np.searchsorted(classes, positive)))

    def outcome(self, output: np.ndarray) -> Outcome:
        if self.classes is None:
            return Outcome(self.task, self.y, output)
        return Outcome(self.task, self.y, self.classes[np.argmax(output, axis=1)], output,
                       self.classes.tolist(), self.positive)

    def value(self, metric: Metric, output: np.ndarray) -> float | None:
        """The metric's value; None where it is undefined (as compute_all reports it)."""
        fast = _FAST.get(metric.name) if METRICS.get(metric.name) is metric else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = (float(fast(self, output)) if fast is not None
                         else float(metric.compute(self.outcome(output))))
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    def values(self, output: np.ndarray) -> dict[str, float | None]:
        """Every metric of the task, like metrics.compute_all."""
        return {metric.name: self.value(metric, output) for metric in metrics_for(self.task)}

    # ---------------------------------------------------------------- classification counts

    def _counts(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(true positives, predicted count, true count) per class."""
        predicted = np.argmax(output, axis=1)
        k = len(self.classes)
        hits = np.bincount(predicted[predicted == self.codes], minlength=k)
        return hits, np.bincount(predicted, minlength=k), self.true_count


def _accuracy(scorer: Scorer, output: np.ndarray) -> float:
    return float(np.mean(np.argmax(output, axis=1) == scorer.codes))


def _balanced_accuracy(scorer: Scorer, output: np.ndarray) -> float:
    hits, _, true = scorer._counts(output)
    present = true > 0
    return float(np.mean(hits[present] / true[present]))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (zero_division=0)."""
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, 0.0)


def _per_class(kind: str) -> Callable[[Scorer, np.ndarray], float]:
    """Precision, recall or F1: of the positive class (binary), else the macro mean over the
    classes that are true or predicted."""

    def compute(scorer: Scorer, output: np.ndarray) -> float:
        hits, predicted, true = scorer._counts(output)
        if kind == "precision":
            values = _ratio(hits, predicted)
        elif kind == "recall":
            values = _ratio(hits, true)
        else:
            values = _ratio(2 * hits, predicted + true)
        if scorer.task == "binary-classification":
            return float(values[scorer.positive_code])
        return float(np.mean(values[(predicted + true) > 0]))

    return compute


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic, ties counted half."""
    positives = int(positive.sum())
    negatives = len(positive) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("only one class present")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def _roc_auc(scorer: Scorer, output: np.ndarray) -> float:
    if scorer.task == "binary-classification":
        return _binary_auc(scorer.codes == 1, output[:, 1])
    if np.any(scorer.true_count == 0):
        raise ValueError("a class is absent")
    if not np.allclose(1, output.sum(axis=1)):
        raise ValueError("not probabilities")
    return float(np.mean([_binary_auc(scorer.codes == column, output[:, column])
                          for column in range(output.shape[1])]))


def _log_loss(scorer: Scorer, output: np.ndarray) -> float:
    if output.min() < 0 or output.max() > 1:
        raise ValueError("not probabilities")
    chosen = np.clip(output[np.arange(len(output)), scorer.codes], _EPS, 1 - _EPS)
    return float(-np.mean(np.log(chosen)))


def _rmse(scorer: Scorer, output: np.ndarray) -> float:
    return float(np.sqrt(np.mean((scorer.y - output) ** 2)))


def _mae(scorer: Scorer, output: np.ndarray) -> float:
    return float(np.mean(np.abs(scorer.y - output)))


def _r2(scorer: Scorer, output: np.ndarray) -> float:
    if len(scorer.y) < 2:
        raise ValueError("needs two rows")
    residual = float(np.sum((scorer.y - output) ** 2))
    total = float(np.sum((scorer.y - np.mean(scorer.y)) ** 2))
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return 1 - residual / total


def _mape(scorer: Scorer, output: np.ndarray) -> float:
    return float(np.mean(np.abs(scorer.y - output) / np.maximum(np.abs(scorer.y), _EPS)))


_FAST: dict[str, Callable[[Scorer, np.ndarray], float]] = {
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "f1": _per_class("f1"),
    "precision": _per_class("precision"),
    "recall": _per_class("recall"),
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
    "mape": _mape,
}
