"""The estimator families the model search tries, with their hyperparameter distributions."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Family:
    """An estimator family: how to build it, its baseline settings and how to sample others."""

    name: str
    build: Callable[[dict, int], object]  # (params, seed) -> unfitted estimator
    sample: Callable[[random.Random], dict]
    baseline: dict = field(default_factory=dict)
    relative_cost: float = 1.0  # rough cost of one size unit compared with fitting a linear model
    size_param: str | None = None  # parameter the fit cost grows with (trees, boosting rounds)

    def size(self, params: dict) -> float:
        """Fit cost units of `params` (e.g. hundreds of trees)."""
        return params.get(self.size_param, 100) / 100 if self.size_param else 1.0


@dataclass(frozen=True)
class Candidate:
    family: Family
    params: dict

    @property
    def key(self) -> tuple:
        return self.family.name, tuple(sorted(self.params.items()))


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return round(10 ** rng.uniform(low, high), 6)


def _forest_params(rng: random.Random, classification: bool) -> dict:
    params = {
        "n_estimators": rng.choice([100, 200, 300, 500]),
        "max_depth": rng.choice([None, 4, 8, 12, 20]),
        "min_samples_leaf": rng.choice([1, 2, 4, 8, 16]),
        "max_features": rng.choice(["sqrt", 0.3, 0.6, 1.0]),
    }
    if classification:
        params["class_weight"] = rng.choice([None, "balanced"])
    return params


def _boosting_params(rng: random.Random) -> dict:
    return {
        "learning_rate": _log_uniform(rng, -2, -0.5),
        "max_iter": rng.choice([100, 200, 400]),
        "max_leaf_nodes": rng.choice([7, 15, 31, 63]),
        "min_samples_leaf": rng.choice([5, 10, 20, 40]),
        "l2_regularization": rng.choice([0.0, 0.1, 1.0, 10.0]),
    }


def _knn_params(rng: random.Random) -> dict:
    return {
        "n_neighbors": rng.choice([3, 5, 9, 15, 25, 41]),
        "weights": rng.choice(["uniform", "distance"]),
    }


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
            baseline={"n_neighbors": 15},
            relative_cost=1.5,
        ),
        Family(
            "hist_gradient_boosting",
            lambda p, seed: HistGradientBoostingClassifier(random_state=seed, **p),
            _boosting_params,
            baseline={"max_iter": 100},
            relative_cost=15.0,
            size_param="max_iter",
        ),
        Family(
            "random_forest",
            lambda p, seed: RandomForestClassifier(random_state=seed, n_jobs=-1, **p),
            lambda rng: _forest_params(rng, classification=True),
            baseline={"n_estimators": 200},
            relative_cost=5.0,
            size_param="n_estimators",
        ),
        Family(
            "extra_trees",
            lambda p, seed: ExtraTreesClassifier(random_state=seed, n_jobs=-1, **p),
            lambda rng: _forest_params(rng, classification=True),
            baseline={"n_estimators": 200},
            relative_cost=4.0,
            size_param="n_estimators",
        ),
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
            baseline={"n_neighbors": 15},
            relative_cost=1.5,
        ),
        Family(
            "hist_gradient_boosting",
            lambda p, seed: HistGradientBoostingRegressor(random_state=seed, **p),
            _boosting_params,
            baseline={"max_iter": 100},
            relative_cost=15.0,
            size_param="max_iter",
        ),
        Family(
            "random_forest",
            lambda p, seed: RandomForestRegressor(random_state=seed, n_jobs=-1, **p),
            lambda rng: _forest_params(rng, classification=False),
            baseline={"n_estimators": 200},
            relative_cost=5.0,
            size_param="n_estimators",
        ),
        Family(
            "extra_trees",
            lambda p, seed: ExtraTreesRegressor(random_state=seed, n_jobs=-1, **p),
            lambda rng: _forest_params(rng, classification=False),
            baseline={"n_estimators": 200},
            relative_cost=4.0,
            size_param="n_estimators",
        ),
    ]


def families_for(task: str) -> list[Family]:
    """Families for a task, cheapest first."""
    return _regression_families() if task == "regression" else _classification_families()


def candidates(task: str, seed: int):
    """Endless seed-determined candidates: each family's baseline, then random samples."""
    families = families_for(task)
    rng = random.Random(seed)
    yield from (Candidate(family, dict(family.baseline)) for family in families)
    while True:
        family = rng.choice(families)
        yield Candidate(family, family.sample(rng))
