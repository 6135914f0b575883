"""Time-bounded random search over the estimator families, scored on the validation set."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .errors import DataError
from .hooks import ProjectHooks
from .metrics import Metric, compute_all, outcome_of
from .search_space import Candidate, Family, candidates
from .text import number

# a candidate is fitted only if its estimated seconds, times this, fit in the remaining budget
SAFETY_FACTOR = 1.25
# stop after this many fits, or this many drawn candidates in a row too costly for the time left
MAX_TRIALS = 500
MAX_SKIPS_IN_A_ROW = 200


@dataclass(frozen=True)
class Split:
    """Model-ready features (see schema.coerce_features) and their labels."""

    x: pd.DataFrame
    y: np.ndarray


@dataclass
class Trial:
    """One fitted and scored candidate."""

    family: str
    params: dict
    score: float | None
    seconds: float
    metrics: dict = field(default_factory=dict)
    error: str | None = None


@dataclass
class SearchResult:
    trials: list[Trial]  # in the order they ran
    best: Trial
    pipeline: Pipeline  # the best trial's fitted pipeline
    skipped: int  # candidates not fitted for lack of time


@dataclass
class CostModel:
    """Predicts the fit+score seconds of a candidate from the fits seen so far."""

    per_unit: dict[str, list[float]] = field(default_factory=dict)  # family -> s per size unit
    speeds: list[float] = field(default_factory=list)  # s per relative cost unit, one per fit

    def observe(self, candidate: Candidate, seconds: float) -> None:
        family = candidate.family
        size = family.size(candidate.params)
        self.per_unit.setdefault(family.name, []).append(seconds / size)
        self.speeds.append(seconds / (family.relative_cost * size))

    def estimate(self, family: Family, params: dict) -> float:
        """The family's own mean cost once fitted, else its relative cost at the median speed."""
        size = family.size(params)
        seen = self.per_unit.get(family.name)
        if seen:
            return float(np.mean(seen)) * size
        return float(np.median(self.speeds)) * family.relative_cost * size

    def cheapest(self, families: list[Family]) -> float:
        """Estimated seconds of the cheapest family's baseline."""
        return min(self.estimate(family, family.baseline) for family in families)


def search(
    train: Split,
    validation: Split,
    features: dict[str, str],
    task: str,
    metric: Metric,
    budget: float,
    seed: int,
    echo: Callable[[str], None],
    hooks: ProjectHooks | None = None,
) -> SearchResult:
    """Fit candidates until `budget` seconds are spent; the best on validation by `metric` wins.

    The first candidate always runs; later ones only when their estimated cost fits the time
    left, so the budget is exceeded by at most one misestimated fit. A candidate failing with a
    ValueError or ArithmeticError is a failed trial; any other error raised in the project's code
    (src/<package>/) is a HookError naming the file and line.
    """
    hooks = hooks or ProjectHooks()
    with hooks.blaming_project_code():
        return _search(train, validation, features, task, metric, budget, seed, echo, hooks)


def _search(train: Split, validation: Split, features: dict[str, str], task: str, metric: Metric,
            budget: float, seed: int, echo: Callable[[str], None],
            hooks: ProjectHooks) -> SearchResult:
    families = hooks.families(task)
    start = time.perf_counter()
    cost, trials, seen = CostModel(), [], set()
    best, best_pipeline, skipped, skips_in_a_row = None, None, 0, 0
    for candidate in candidates(families, seed):
        remaining = budget - (time.perf_counter() - start)
        if trials and (remaining <= 0 or len(trials) >= MAX_TRIALS):
            break
        if candidate.key in seen or candidate.params.get("n_neighbors", 0) > len(train.y):
            continue
        if trials and cost.estimate(candidate.family, candidate.params) * SAFETY_FACTOR > remaining:
            skipped += 1
            skips_in_a_row += 1
            if (
                skips_in_a_row >= MAX_SKIPS_IN_A_ROW
                or cost.cheapest(families) * SAFETY_FACTOR > remaining
            ):
                break
            continue
        skips_in_a_row = 0
        seen.add(candidate.key)
        preprocessor = hooks.preprocessor(features)
        trial, pipeline = _run(candidate, preprocessor, seed, train, validation, task, metric)
        cost.observe(candidate, trial.seconds)
        trials.append(trial)
        improved = trial.error is None and (
            best is None or metric.is_better(trial.score, best.score)
        )
        if improved:
            best, best_pipeline = trial, pipeline
        outcome = (
            f"failed: {trial.error}" if trial.error else f"{metric.name}={number(trial.score)}"
        )
        elapsed = time.perf_counter() - start
        echo(
            f"  [{len(trials):>3}] {trial.family:<24} {outcome:<22} {elapsed:6.1f}s/{budget:g}s"
            + ("  * best" if improved else "")
        )
    if best is None:
        raise DataError(f"every candidate failed; first error: {trials[0].error}")
    return SearchResult(trials, best, best_pipeline, skipped)


def _run(
    candidate: Candidate,
    preprocessor: object,
    seed: int,
    train: Split,
    validation: Split,
    task: str,
    metric: Metric,
) -> tuple[Trial, Pipeline | None]:
    """Fit and score one candidate; an error makes a failed trial rather than ending the search."""
    family, params = candidate.family, candidate.params
    pipeline = Pipeline(
        [("preprocess", preprocessor), ("model", family.build(params, seed))]
    )
    started = time.perf_counter()
    try:
        # one native thread per fit: OpenMP/BLAS pools on a busy machine make fit times erratic
        # (tenfold for gradient boosting), which would defeat the time budget; forests still use
        # their own n_jobs threads
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(train.x, train.y)
            scores = compute_all(outcome_of(pipeline, validation.x, validation.y, task))
    except (ValueError, ArithmeticError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Trial(family.name, params, None, time.perf_counter() - started, error=message), None
    seconds = time.perf_counter() - started
    return Trial(family.name, params, scores.get(metric.name), seconds, scores), pipeline
