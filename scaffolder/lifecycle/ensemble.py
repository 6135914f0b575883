"""Greedy ensemble selection (Caruana et al., 2004) and the ensemble estimators it makes.

Selection runs on predictions the models made for rows they were not fitted on (out-of-fold or
hold-out): starting from the best single model, it adds, with replacement, the model whose
addition scores best, and keeps the best-scoring mix seen. The result is kept only if it beats
the best single model on those rows. The estimators are plain scikit-learn estimators: a
weighted average of their members' probabilities (classification) or predictions (regression);
they pickle with joblib and serve like any model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone

__all__ = ["EnsembleClassifier", "EnsembleRegressor", "Selection", "align_probabilities",
           "select"]

# at most this many additions; selection also ends after PATIENCE additions without a gain
MAX_ROUNDS = 25
PATIENCE = 5


class _Ensemble(BaseEstimator):
    """A weighted average of estimators; `fit` fits a clone of each on the same rows."""

    def __init__(self, estimators: Sequence = (), weights: Sequence[float] = ()):
        self.estimators = estimators
        self.weights = weights

    def fit(self, X, y):
        if len(self.estimators) != len(self.weights) or not self.estimators:
            raise ValueError("an ensemble needs one weight per estimator")
        self.estimators_ = [clone(estimator).fit(X, y) for estimator in self.estimators]
        self._fitted(y)
        return self

    @classmethod
    def from_fitted(cls, estimators: Sequence, weights: Sequence[float], y) -> _Ensemble:
        """An ensemble of estimators already fitted on the same rows, labelled `y`."""
        ensemble = cls(list(estimators), list(weights))
        ensemble.estimators_ = list(estimators)
        ensemble._fitted(y)
        return ensemble

    def _fitted(self, y) -> None:
        total = float(np.sum(self.weights))
        self.weights_ = np.asarray(self.weights, dtype=float) / total
        first = self.estimators_[0]
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = first.n_features_in_


class EnsembleClassifier(ClassifierMixin, _Ensemble):
    """The weighted mean of the members' class probabilities; the most probable class wins."""

    def _fitted(self, y) -> None:
        super()._fitted(y)
        self.classes_ = np.unique(np.asarray(y))

    def predict_proba(self, X):
        total = np.zeros((len(X), len(self.classes_)))
        for weight, estimator in zip(self.weights_, self.estimators_, strict=True):
            total += weight * align_probabilities(estimator.predict_proba(X), estimator.classes_,
                                                  self.classes_)
        return total

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class EnsembleRegressor(RegressorMixin, _Ensemble):
    """The weighted mean of the members' predictions."""

    def predict(self, X):
        return sum(weight * np.asarray(estimator.predict(X), dtype=float)
                   for weight, estimator in zip(self.weights_, self.estimators_, strict=True))


def align_probabilities(probabilities: np.ndarray, own: Sequence, classes: Sequence) -> np.ndarray:
    """Probability columns of `own` classes placed under `classes` (0 for a class not seen)."""
    own = list(own)
    if own == list(classes):
        return np.asarray(probabilities, dtype=float)
    aligned = np.zeros((len(probabilities), len(classes)))
    position = {value: index for index, value in enumerate(classes)}
    for column, value in enumerate(own):
        aligned[:, position[value]] = probabilities[:, column]
    return aligned


@dataclass(frozen=True)
class Selection:
    """Members (positions in the pool) with their counts, and the mix's key (lower is better)."""

    counts: dict[int, int]
    key: tuple

    @property
    def weights(self) -> dict[int, float]:
        total = sum(self.counts.values())
        return {member: count / total for member, count in self.counts.items()}


def select(outputs: Sequence[np.ndarray], key: Callable[[np.ndarray], tuple]) -> Selection | None:
    """Greedy selection with replacement over `outputs` (the pool, best single model first).

    `key` scores a mean of outputs, lower is better. Returns the best mix of two or more distinct
    members if it beats the first output alone, else None. Ties go to the earlier member.
    """
    if len(outputs) < 2:
        return None
    counts: Counter[int] = Counter({0: 1})
    total = np.array(outputs[0], dtype=float)
    single = best_key = key(total)
    best_counts, stale = dict(counts), 0
    for size in range(2, MAX_ROUNDS + 2):
        keys = [key((total + output) / size) for output in outputs]
        chosen = min(range(len(outputs)), key=lambda index: (keys[index], index))
        counts[chosen] += 1
        total += outputs[chosen]
        if keys[chosen] < best_key:
            best_key, best_counts, stale = keys[chosen], dict(counts), 0
        else:
            stale += 1
            if stale >= PATIENCE:
                break
    if len(best_counts) < 2 or not best_key < single:
        return None
    return Selection(best_counts, best_key)
