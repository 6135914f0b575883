"""The estimator families the model search tries, with their hyperparameter distributions."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

# Gradient boosting always stops early on a slice of its training rows (scikit-learn turns early
# stopping on by itself only above 10,000 rows): max_iter is a ceiling, not a guess.
BOOSTING_EARLY_STOPPING = {
    "early_stopping": True,
    "max_iter": 1000,
    "n_iter_no_change": 20,
    "validation_fraction": 0.1,
}
# support vector machines grow quadratically or worse with rows: above this many rows to fit on,
# the family is left out (in every run alike, so the candidate sequence still depends on the
# seed and the data only)
SVM_MAX_ROWS = 5000
# fractional settings closer than a fifth of a decade (x1.58) are the same for the search
NEAR_STEPS_PER_DECADE = 5


@dataclass(frozen=True)
class Family:
    """An estimator family: how to build it, its baseline settings and how to sample others."""

    name: str
    build: Callable[[dict, int], object]  # (params, seed) -> unfitted estimator
    sample: Callable[[random.Random], dict]
    baseline: dict = field(default_factory=dict)
    relative_cost: float = 1.0  # rough cost of one size unit compared with fitting a linear model
    size_param: str | None = None  # parameter the fit cost grows with (trees, boosting rounds)
    max_rows: int | None = None  # fit on at most this many rows (None: no limit)

    def size(self, params: dict) -> float:
        """Fit cost units of `params` (e.g. hundreds of trees)."""
        return params.get(self.size_param, 100) / 100 if self.size_param else 1.0

    def explicit(self, params: dict) -> dict:
        """`params` without the settings the estimator has anyway: for nearest neighbours,
        {"n_neighbors": 5, "weights": "uniform"} is {}, the same model as its baseline."""
        defaults = self.defaults
        return {name: value for name, value in params.items()
                if not (name in defaults and _same(value, defaults[name]))}

    @cached_property
    def defaults(self) -> dict:
        """The settings of the estimator built with no params, by name; a wrapped estimator's
        (an SVC inside its calibration) by their own name where that is unambiguous."""
        try:
            settings = self.build({}, 0).get_params(deep=True)
        # a project's family may need params, or build something that is not scikit-learn's:
        # then no setting counts as a default, and only literal repeats are left out
        except Exception:
            return {}
        nested: dict[str, list] = {}
        for name, value in settings.items():
            if "__" in name:
                nested.setdefault(name.rsplit("__", 1)[1], []).append(value)
        found = {name: values[0] for name, values in nested.items()
                 if all(_same(value, values[0]) for value in values)}
        found.update({name: value for name, value in settings.items() if "__" not in name})
        return found


@dataclass(frozen=True)
class Candidate:
    family: Family
    params: dict

    @property
    def key(self) -> tuple:
        return self.family.name, tuple(sorted(self.params.items(), key=_by_name))

    @property
    def near_key(self) -> tuple:
        """The key of the settings that differ from the estimator's defaults, with fractional
        numbers rounded to a fifth of a decade: candidates that share it are the same model
        (a forest's n_estimators=100, max_depth=None and its baseline) or near-duplicates
        (C=0.12 and C=0.13), and only the first of them is fitted."""
        defaults = self.family.defaults
        return self.family.name, tuple(
            (name, _rounded(value)) for name, value in sorted(self.params.items(), key=_by_name)
            if not (name in defaults and _near(value, defaults[name]))
        )

    @property
    def is_baseline(self) -> bool:
        """Whether it is the family's default model (its baseline, however spelled)."""
        return self.family.explicit(self.params) == self.family.explicit(self.family.baseline)


def _by_name(item: tuple) -> str:
    return str(item[0])


def _same(value: object, default: object) -> bool:
    """Whether a setting equals a default: plain values only (numbers by value, True is not 1)."""
    plain = (bool, int, float, str, type(None))
    if not isinstance(value, plain) or not isinstance(default, plain):
        return False
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default) and value == default
    return value == default


def _near(value: object, default: object) -> bool:
    """Whether a setting is a default, or a fraction within a fifth of a decade of it."""
    if isinstance(value, float) and isinstance(default, float):
        return _rounded(value) == _rounded(default)
    return _same(value, default)


def _rounded(value: object) -> object:
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return value > 0, round(math.log10(abs(value)) * NEAR_STEPS_PER_DECADE)
    return value


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return round(10 ** rng.uniform(low, high), 6)


def _forest_params(rng: random.Random, classification: bool) -> dict:
    params = {
        "n_estimators": rng.choice([100, 200, 300]),
        "max_depth": rng.choice([None, 6, 12, 20]),
        "min_samples_leaf": rng.choice([1, 2, 4, 8]),
        "max_features": rng.choice(["sqrt", 0.3, 0.6, 1.0]),
    }
    if classification:
        params["class_weight"] = rng.choice([None, "balanced"])
    return params


def _boosting_params(rng: random.Random) -> dict:
    return {
        "learning_rate": _log_uniform(rng, -1.5, -0.5),
        "max_leaf_nodes": rng.choice([7, 15, 31, 63]),
        "min_samples_leaf": rng.choice([5, 10, 20, 40]),
        "l2_regularization": rng.choice([0.0, 0.1, 1.0, 10.0]),
        "max_features": rng.choice([0.3, 0.6, 1.0]),
    }


def _boosting(model: type) -> Callable[[dict, int], object]:
    def build(params: dict, seed: int) -> object:
        return model(**{**BOOSTING_EARLY_STOPPING, "random_state": seed, **params})

    return build


def _knn_params(rng: random.Random) -> dict:
    return {
        "n_neighbors": rng.choice([3, 5, 9, 15, 25, 41]),
        "weights": rng.choice(["uniform", "distance"]),
    }


def _svm_params(rng: random.Random) -> dict:
    return {"C": _log_uniform(rng, -1, 2.5), "gamma": rng.choice(["scale", 0.003, 0.01, 0.03,
                                                                   0.1])}


def _svc(params: dict, seed: int) -> object:
    # Platt scaling on internal folds gives the probabilities; one SVC refitted on all the rows
    # predicts (scikit-learn 1.9 deprecates SVC(probability=True) for this form)
    return CalibratedClassifierCV(SVC(random_state=seed, **params), method="sigmoid", cv=3,
                                  ensemble=False)


def _svr(params: dict, seed: int) -> object:
    # the target is standardized: C and epsilon then mean the same on every scale of label
    return TransformedTargetRegressor(regressor=SVR(**params), transformer=StandardScaler())


def _classification_families() -> list[Family]:
    return [
        Family(
            "logistic_regression",
            lambda p, seed: LogisticRegression(max_iter=2000, random_state=seed, **p),
            lambda rng: {
                "C": _log_uniform(rng, -3, 2),
                "class_weight": rng.choice([None, "balanced"]),
            },
            baseline={"C": 1.0},
        ),
        Family(
            "k_nearest_neighbors",
            lambda p, seed: KNeighborsClassifier(**p),
            _knn_params,
            baseline={"n_neighbors": 5},
            relative_cost=1.5,
        ),
        Family(
            "support_vector_machine",
            _svc,
            _svm_params,
            baseline={"C": 1.0},
            relative_cost=4.0,
            max_rows=SVM_MAX_ROWS,
        ),
        *_forests(classification=True),
        Family(
            "hist_gradient_boosting",
            _boosting(HistGradientBoostingClassifier),
            _boosting_params,
            baseline={},
            relative_cost=15.0,
        ),
    ]


def _forests(*, classification: bool) -> list[Family]:
    """Extra trees and random forests, for classification or regression."""
    extra, forest = ((ExtraTreesClassifier, RandomForestClassifier) if classification
                     else (ExtraTreesRegressor, RandomForestRegressor))
    return [
        Family(name, lambda p, seed, estimator=estimator: estimator(
                   random_state=seed, n_jobs=-1, **p),
               lambda rng: _forest_params(rng, classification=classification),
               baseline={"n_estimators": 100}, relative_cost=cost, size_param="n_estimators")
        for name, estimator, cost in (("extra_trees", extra, 4.0), ("random_forest", forest, 5.0))
    ]


def _regression_families() -> list[Family]:
    return [
        Family(
            "ridge",
            lambda p, seed: Ridge(**p),
            lambda rng: {"alpha": _log_uniform(rng, -3, 3)},
            baseline={"alpha": 1.0},
        ),
        Family(
            "k_nearest_neighbors",
            lambda p, seed: KNeighborsRegressor(**p),
            _knn_params,
            baseline={"n_neighbors": 5},
            relative_cost=1.5,
        ),
        Family(
            "support_vector_machine",
            _svr,
            lambda rng: {**_svm_params(rng), "epsilon": rng.choice([0.01, 0.1, 0.3])},
            baseline={"C": 1.0},
            relative_cost=3.0,
            max_rows=SVM_MAX_ROWS,
        ),
        *_forests(classification=False),
        Family(
            "hist_gradient_boosting",
            _boosting(HistGradientBoostingRegressor),
            _boosting_params,
            baseline={},
            relative_cost=15.0,
        ),
    ]


def families_for(task: str) -> list[Family]:
    """Families for a task, cheapest first: the search fits their baselines in this order. The
    order decides which baselines a short budget reaches and, after cross-validation, which of
    the defaults scoring within one standard error of the best default is chosen: the first
    (search._first_default_within_error), so linear models come first.

    Gradient boosting comes last, after the forests. On a few hundred rows its default scores
    below the other families' (iris, wine, breast cancer in tests/bench/bench_quality.py), and it
    grows one tree per class per round: a fit on 1,150 rows of the 10-class digits takes 17 s
    where a forest takes 1 s. Fitted before the forests, it spent short budgets that then never
    reached them, though a forest's default was the best on the test rows in most of the pairs
    where the search fell more than 1% below the best default.
    """
    return _regression_families() if task == "regression" else _classification_families()
