"""The model search: which candidates, how they are scored, and the model it ends with.

* Candidates come from proposals.py: every family's baseline, then draws that favour the best
  families and grow their best configurations. The sequence depends on the seed and the scores
  only; time never reorders or skips a candidate, it only ends the search (so does `trials`).
* Each candidate is scored by evaluation.py's protocol: k-fold cross-validation on small data,
  hold-out on large. A candidate scoring poorly on the first views is stopped there (pruned),
  which leaves the budget to promising ones.
* The best single candidate (ties broken by a second metric: log loss, or mean absolute error)
  is then compared with a greedy ensemble of the best candidates (ensemble.py) on the same
  out-of-fold or hold-out predictions; the ensemble is kept only if it beats it there (after
  cross-validation, by more than one standard error). After cross-validation the ensemble is
  judged on predictions its weights did not see: each fold's rows get the mix selected on the
  other folds' rows (the weights picked on all the rows score too well on them, which on a few
  hundred rows kept mixes that lost on new data).
* After cross-validation, the chosen model is refitted on train + validation.

Ctrl-C during the search stops it; the best candidate so far becomes the model and the result
says it was interrupted.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from threadpoolctl import ThreadpoolController

from .ensemble import EnsembleClassifier, EnsembleRegressor, align_probabilities, select
from .errors import DataError
from .evaluation import Protocol, plan
from .hooks import ProjectHooks
from .metrics import METRICS, Metric
from .proposals import Proposer
from .scoring import Scorer
from .search_space import Candidate
from .text import number

# the search stops before a fit whose estimated seconds, times this, do not fit in the time left
SAFETY_FACTOR = 1.25
# an upper bound on the candidates of one run, with or without a time budget
MAX_TRIALS = 500
# a candidate is stopped after a view when its mean score so far is worse than that of the
# PRUNE_RANK-th best fully scored candidate on the same views (or of the best quarter, if more)
PRUNE_RANK = 8
# the ensemble is chosen among the best POOL_SIZE candidates and each family's best few
POOL_SIZE, POOL_PER_FAMILY = 12, 3
# the second metric that breaks ties of the first (many candidates reach accuracy 1.0 on
# a hundred rows); the first of these that is not the metric itself
TIE_BREAKERS = {"classification": ("log_loss", "roc_auc"), "regression": ("mae", "rmse")}
# refitting on all rows costs about this many times a fold's fit (n rows instead of (k-1)/k n)
REFIT_FACTOR = 1.3
# time kept for the ensemble selection: this many rounds over the pool
SELECTION_ROUNDS_RESERVED = 8
# below this many rows a forest fits faster on one thread than on a pool of them: joblib's
# threads cost more than the trees do (100 trees on 90 rows: 0.14 s on one, 0.25 s on two)
PARALLEL_FIT_ROWS = 2000

STOPPED_BY = ("trials", "time", "exhausted", "interrupted")


@dataclass(frozen=True)
class Split:
    """Model-ready features (see schema.coerce_features) and their labels."""

    x: pd.DataFrame
    y: np.ndarray


@dataclass
class Trial:
    """One candidate: fitted and scored, failed, or stopped early (pruned)."""

    family: str
    params: dict
    score: float | None  # on all the selection rows; None if failed or pruned
    seconds: float
    metrics: dict = field(default_factory=dict)
    error: str | None = None
    views: int = 0  # folds (or hold-out fits) it was scored on
    pruned: bool = False  # stopped early for scoring poorly
    partial_score: float | None = None  # its mean score over those views, when pruned


@dataclass
class SearchResult:
    trials: list[Trial]  # in the order they ran
    best: Trial  # the best single candidate
    pipeline: Pipeline  # the chosen model (best candidate or ensemble), fitted
    family: str  # the best candidate's family, or "ensemble"
    params: dict  # its parameters, or the ensemble's members
    score: float | None  # the chosen model's score on the selection rows
    metrics: dict  # every metric of the chosen model on the selection rows
    ensemble: dict | None  # members and weights, when an ensemble was kept
    protocol: dict  # how candidates were scored (Protocol.describe())
    stopped_by: str  # one of STOPPED_BY
    classes: list | None  # the model's classes (JSON values), for classification

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupted"


@dataclass(eq=False)  # compared by identity: it holds arrays
class _Scored:
    """A fully scored candidate, kept while it may join the ensemble."""

    number: int  # 1-based trial number
    candidate: Candidate
    trial: Trial
    key: tuple  # (metric loss, tie-breaker loss): lower is better
    view_scores: list[float | None]
    view_seconds: float  # mean seconds of one view's fit
    outputs: np.ndarray | None  # predictions for the scored rows (freed outside the pool)
    fitted: object | None = None  # hold-out: the estimator fitted on the training rows


@dataclass
class CostModel:
    """Predicts the seconds of one view's fit of a candidate from the fits seen so far.

    Used only to end the search before a fit that would overrun the budget, never to choose.
    """

    per_unit: dict[str, list[float]] = field(default_factory=dict)  # family -> s per size unit
    speeds: list[float] = field(default_factory=list)  # s per relative cost unit, one per fit

    def observe(self, candidate: Candidate, seconds: float) -> None:
        family = candidate.family
        size = family.size(candidate.params)
        self.per_unit.setdefault(family.name, []).append(seconds / size)
        self.speeds.append(seconds / (family.relative_cost * size))

    def estimate(self, candidate: Candidate) -> float:
        """The family's own mean cost once fitted, else its relative cost at the median speed."""
        family = candidate.family
        size = family.size(candidate.params)
        seen = self.per_unit.get(family.name)
        if seen:
            return float(np.mean(seen)) * size
        if not self.speeds:
            return 0.0
        return float(np.median(self.speeds)) * family.relative_cost * size


class _Clock:
    def __init__(self, budget: float | None):
        self.budget = budget
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def allows(self, seconds: float) -> bool:
        return self.budget is None or self.elapsed() + seconds <= self.budget

    def shown(self) -> str:
        limit = "" if self.budget is None else f"/{self.budget:g}s"
        return f"{self.elapsed():6.1f}s{limit}"


class _Views:
    """The preprocessed rows of each view, fitted once on first use and shared by candidates."""

    def __init__(self, protocol: Protocol, x: pd.DataFrame, features: dict[str, str],
                 hooks: ProjectHooks):
        self.protocol, self.x, self.features, self.hooks = protocol, x, features, hooks
        self.prepared: dict[int, tuple[object, object, object]] = {}

    def get(self, index: int) -> tuple[object, object, object]:
        """(fitted preprocessor, fit rows, scored rows) of view `index`."""
        if index not in self.prepared:
            view = self.protocol.views[index]
            preprocessor = self.hooks.preprocessor(self.features)
            try:
                fit_rows = preprocessor.fit_transform(self.x.iloc[view.fit])
                score_rows = preprocessor.transform(self.x.iloc[view.score])
            except (ValueError, ArithmeticError) as error:
                raise DataError(f"the preprocessing failed: {_first_line(error)}") from None
            self.prepared[index] = (preprocessor, fit_rows, score_rows)
        return self.prepared[index]


@dataclass
class _Run:
    """What the search needs at hand while it runs."""

    protocol: Protocol
    views: _Views
    y: np.ndarray
    task: str
    classes: np.ndarray | None
    metric: Metric
    tie_breaker: Metric
    seed: int
    clock: _Clock
    cost: CostModel
    positive: object = None  # binary: the spec's positive class (None: the last class)
    scored: list[_Scored] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)
    key_seconds: list[float] = field(default_factory=list)  # to score one mix of predictions
    scorers: dict[int | None, Scorer] = field(default_factory=dict)

    @property
    def classification(self) -> bool:
        return self.classes is not None

    def scorer(self, view: int | None = None) -> Scorer:
        """Scores for the rows of one view, or (None) for all the selection rows."""
        if view not in self.scorers:
            rows = self.protocol.scored if view is None else self.protocol.views[view].score
            self.scorers[view] = Scorer(self.task, self.y[rows], self.classes, self.positive)
        return self.scorers[view]

    def key(self, output: np.ndarray) -> tuple:
        """How good predictions for the selection rows are; lower is better."""
        scorer = self.scorer()
        return (self.metric.sort_key(scorer.value(self.metric, output)),
                self.tie_breaker.sort_key(scorer.value(self.tie_breaker, output)))

    def reserve(self) -> float:
        """Seconds to keep for what follows the search: the ensemble selection, and refitting
        the chosen model(s) on all rows after cross-validation."""
        pool = min(len(self.scored), POOL_SIZE)
        selections = 1 + (self.protocol.folds if self.protocol.refit else 0)
        selecting = (SELECTION_ROUNDS_RESERVED * pool * selections
                     * float(np.mean(self.key_seconds or [0])))
        if not self.protocol.refit:
            return selecting
        top = sorted(self.scored, key=_rank)[:3]
        return selecting + REFIT_FACTOR * sum(item.view_seconds for item in top)


def search(
    train: Split,
    validation: Split,
    features: dict[str, str],
    task: str,
    metric: Metric,
    budget: float | None,
    seed: int,
    echo: Callable[[str], None],
    hooks: ProjectHooks | None = None,
    trials: int | None = None,
    progress: Callable[[list[Trial]], None] | None = None,
    positive: object = None,
) -> SearchResult:
    """Search candidates until `budget` seconds are spent or `trials` candidates are tried.

    `budget` None means no time limit (then `trials`, or MAX_TRIALS, ends the search). With the
    same seed and data, the candidates tried are the same on any machine: the budget only
    decides how many of them run. The search stops before a fit whose estimated cost would not
    fit in the time left, so it overruns by at most one misestimated fit. `progress` is called
    with the trials so far after each one. `positive` is the binary positive class that f1,
    precision and recall score (None: the last class, as scikit-learn orders them).

    A candidate failing with a ValueError or ArithmeticError is a failed trial; any other error
    raised in the project's code (src/<package>/) is a HookError naming the file and line.
    """
    hooks = hooks or ProjectHooks()
    with hooks.blaming_project_code():
        return _search(train, validation, features, task, metric, budget, seed, echo, hooks,
                       trials, progress or (lambda _: None), positive)


def _search(train: Split, validation: Split, features: dict[str, str], task: str,
            metric: Metric, budget: float | None, seed: int, echo: Callable[[str], None],
            hooks: ProjectHooks, limit: int | None,
            progress: Callable[[list[Trial]], None], positive: object = None) -> SearchResult:
    clock = _Clock(budget)
    x = pd.concat([train.x, validation.x], ignore_index=True)
    y = np.concatenate([np.asarray(train.y), np.asarray(validation.y)])
    classification = task != "regression"
    protocol = plan(len(train.y), y, classification, seed)
    if protocol.reason:
        echo(f"note: scoring on validation, not by cross-validation: {protocol.reason}")
    run = _Run(protocol, _Views(protocol, x, features, hooks), y, task,
               np.unique(y) if classification else None, metric, _tie_breaker(task, metric),
               seed, clock, CostModel(), positive)
    # the fewest rows a candidate is fitted on (a screening fit, a fold) and the most (the
    # training rows, or all rows when refitted)
    fewest = min(len(view.fit) for view in protocol.views)
    most = protocol.rows if protocol.refit else max(len(view.fit) for view in protocol.views)
    families = hooks.families(task)
    proposer = Proposer(families, seed,
                        allowed=lambda candidate: _suits(candidate, fewest, most))
    limit = min(limit or MAX_TRIALS, MAX_TRIALS)
    stopped_by = "exhausted"
    try:
        while True:
            if len(run.trials) >= limit:
                stopped_by = "trials"
                break
            candidate = proposer.propose()
            if candidate is None:
                break
            done = _evaluate(run, candidate)
            if done is None:
                stopped_by = "time"
                break
            trial, scored = done
            run.trials.append(trial)
            improved = scored is not None and (
                not run.scored or scored.key < min(item.key for item in run.scored))
            if scored is not None:
                run.scored.append(scored)
                _keep_pool(run.scored)
            proposer.observe(candidate, None if scored is None else scored.key[0])
            echo(_line(run, trial, improved))
            progress(run.trials)
    except KeyboardInterrupt:
        if not run.scored:
            raise
        stopped_by = "interrupted"
    if not run.scored:
        first = next((trial.error for trial in run.trials if trial.error), "none was fitted")
        raise DataError(f"every candidate failed; first error: {first}")
    return _finish(run, features, hooks, stopped_by, echo)


def _suits(candidate: Candidate, fewest: int, most: int) -> bool:
    """Whether the candidate can fit `fewest` to `most` rows (the same answer in every run)."""
    family = candidate.family
    if family.max_rows is not None and most > family.max_rows:
        return False
    return candidate.params.get("n_neighbors", 0) <= fewest


def _evaluate(run: _Run, candidate: Candidate) -> tuple[Trial, _Scored | None] | None:
    """Fit and score one candidate view by view; None when the time left does not allow it."""
    family, params = candidate.family, candidate.params
    protocol = run.protocol
    full = None
    view_scores: list[float | None] = []
    seconds, fitted = 0.0, None
    for index, view in enumerate(protocol.views):
        if run.trials and not run.clock.allows(
                run.cost.estimate(candidate) * SAFETY_FACTOR + run.reserve()):
            return None
        _, fit_rows, score_rows = run.views.get(index)
        started = time.perf_counter()
        try:
            estimator, output = _fit_predict(run, candidate, fit_rows, run.y[view.fit],
                                             score_rows)
        except (ValueError, ArithmeticError) as error:
            seconds += time.perf_counter() - started
            return Trial(family.name, params, None, seconds, error=_first_line(error),
                         views=index), None
        took = time.perf_counter() - started
        seconds += took
        run.cost.observe(candidate, took)
        view_scores.append(run.scorer(index).value(run.metric, output))
        if index in protocol.output_views:
            if full is None:
                full = np.zeros((len(run.y), *output.shape[1:]))
            full[view.score] += output / protocol.repeats  # the mean over the shuffles
            fitted = estimator
        if index < len(protocol.views) - 1 and _pruned(run, view_scores):
            partial = _mean(view_scores)
            return Trial(family.name, params, None, seconds, views=index + 1, pruned=True,
                         partial_score=partial), None
    outputs = full[protocol.scored]
    metrics = run.scorer().values(outputs)
    trial = Trial(family.name, params, metrics.get(run.metric.name), seconds, metrics,
                  views=len(protocol.views))
    started = time.perf_counter()
    key = run.key(outputs)
    run.key_seconds.append(time.perf_counter() - started)
    scored = _Scored(len(run.trials) + 1, candidate, trial, key, view_scores,
                     seconds / len(protocol.views), outputs,
                     None if protocol.refit else fitted)
    return trial, scored


class _NativeThreads:
    """Limits native thread pools (OpenMP, BLAS) to one thread. One controller serves every
    fit: a new one scans all loaded libraries, which takes longer than a small fit (25 ms in a
    train process). It is made again only when modules were imported since, which is how a new
    library with its own pool would arrive (a project's family built on xgboost, say)."""

    def __init__(self) -> None:
        self.controller: ThreadpoolController | None = None
        self.modules = 0

    def one(self):
        if self.controller is None or len(sys.modules) != self.modules:
            self.controller, self.modules = ThreadpoolController(), len(sys.modules)
        return self.controller.limit(limits=1)


_native_threads = _NativeThreads()


def _fit_threads(estimator: object, rows: int) -> object:
    """The estimator (or an ensemble's members) on one thread when fitting `rows` rows is
    quicker that way (below PARALLEL_FIT_ROWS). A forest's trees are the same either way."""
    if rows < PARALLEL_FIT_ROWS:
        for part in _threaded_parts(estimator, getattr(estimator, "estimators", [])):
            if part.get_params(deep=False)["n_jobs"]:
                part.set_params(n_jobs=1)
    return estimator


def _threaded_parts(estimator: object, members: list) -> list:
    """The estimator and its `members` (an ensemble's) that take an n_jobs setting."""
    return [part for part in [estimator, *members]
            if hasattr(part, "get_params") and "n_jobs" in part.get_params(deep=False)]


def _fit_predict(run: _Run, candidate: Candidate, x_fit, y_fit, x_score) -> tuple[object,
                                                                                   np.ndarray]:
    estimator = _fit_threads(candidate.family.build(candidate.params, run.seed), len(y_fit))
    # one native thread per fit: OpenMP pools on a busy machine make gradient boosting ten
    # times slower; forests on enough rows still use their own n_jobs threads to fit
    with warnings.catch_warnings(), _native_threads.one():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x_fit, y_fit)
        _single_threaded(estimator)  # summing tree votes in threads is not reproducible
        if not run.classification:
            return estimator, np.asarray(estimator.predict(x_score), dtype=float)
        if not hasattr(estimator, "predict_proba"):
            raise ValueError(f"{type(estimator).__name__} has no predict_proba")
        probabilities = estimator.predict_proba(x_score)
    return estimator, align_probabilities(probabilities, estimator.classes_, run.classes)


def _pruned(run: _Run, view_scores: list[float | None]) -> bool:
    """Whether the candidate's mean score so far is worse than the bar on the same views."""
    mine = _mean(view_scores)
    if mine is None:
        return False
    views = len(view_scores)
    theirs = sorted(run.metric.sort_key(_mean(item.view_scores[:views])) for item in run.scored)
    rank = max(PRUNE_RANK, len(theirs) // 4)
    return len(theirs) >= rank and run.metric.sort_key(mine) > theirs[rank - 1]


def _rank(item: _Scored) -> tuple:
    return item.key, item.number


def _keep_pool(scored: list[_Scored]) -> None:
    """Free the predictions (and fitted estimators) of candidates that can no longer be picked
    for the ensemble: neither among the best POOL_SIZE nor among their family's best few."""
    kept = {id(item) for item in _pool(scored)}
    for item in scored:
        if id(item) not in kept:
            item.outputs, item.fitted = None, None


def _pool(scored: list[_Scored]) -> list[_Scored]:
    ranked = sorted(scored, key=_rank)
    chosen = ranked[:POOL_SIZE]
    per_family: dict[str, int] = {}
    for item in ranked:
        name = item.candidate.family.name
        per_family[name] = per_family.get(name, 0) + 1
        if per_family[name] <= POOL_PER_FAMILY and item not in chosen:
            chosen.append(item)
    return [item for item in ranked if item in chosen]


def _finish(run: _Run, features: dict[str, str], hooks: ProjectHooks, stopped_by: str,
            echo: Callable[[str], None]) -> SearchResult:
    pool = _pool(run.scored)
    best = pool[0]
    selection = None
    if stopped_by != "interrupted":
        selection = select([item.outputs for item in pool], run.key)
    members = [] if selection is None else [(pool[i], w) for i, w in selection.weights.items()]
    mixed = None if not members else sum(weight * item.outputs for item, weight in members)
    if members and run.protocol.refit:
        mixed = _cross_selected(run, pool)
    proposed = bool(members)
    members, rule = _clear_ensemble(run, best, members, mixed)
    if not members:
        top, best = best, _first_default_within_error(run, best, rule)
        if best is not top:
            rule["reason"] = _set_aside_line(run, best, top)
        elif "lead_in_errors" in rule:
            rule["reason"] = _kept_tuned_line(run, best, rule)
        if rule.get("fold_ranks"):
            line = (f"{best.trial.family} ranks best fold by fold of the "
                    f"{len(rule['fold_ranks'])} defaults with the same {run.metric.name}")
            rule["reason"] = (f"{rule['reason']}; {line}" if "reason" in rule else
                              f"chose {best.trial.family} with its default settings: {line}")
        if "reason" in rule:
            echo(rule["reason"])
    try:
        pipeline = _final_model(run, features, hooks, best, members)
    except KeyboardInterrupt:
        if not members or not run.protocol.refit:
            raise
        stopped_by, members = "interrupted", []
        pipeline = _final_model(run, features, hooks, best, members)
    classes = None if run.classes is None else _plain(pipeline.classes_)
    protocol = {**run.protocol.describe(), "choice": rule}
    if not members:
        if proposed and stopped_by != "interrupted":
            echo(f"no ensemble beat {best.trial.family} by more than one standard error")
        elif stopped_by != "interrupted" and len(pool) > 1:
            echo(f"no ensemble beat {best.trial.family} on the selection rows")
        return SearchResult(run.trials, best.trial, pipeline, best.trial.family,
                            best.trial.params, best.trial.score, best.trial.metrics, None,
                            protocol, stopped_by, classes)
    metrics = run.scorer().values(mixed)
    ensemble = {
        "members": [{"trial": item.number, "family": item.trial.family,
                     "params": item.trial.params, "weight": round(weight, 4)}
                    for item, weight in members],
        "score": metrics.get(run.metric.name),
        "best_single": {"trial": best.number, "score": best.trial.score},
    }
    echo(f"ensemble of {len(members)} candidates: {run.metric.name}="
         f"{number(ensemble['score'])} (best single {number(best.trial.score)})")
    return SearchResult(run.trials, best.trial, pipeline, "ensemble",
                        {"members": ensemble["members"]}, ensemble["score"], metrics, ensemble,
                        protocol, stopped_by, classes)


def _clear_ensemble(run: _Run, best: _Scored, members: list,
                    mixed: np.ndarray | None) -> tuple[list, dict]:
    """The ensemble's members if it beats the best single candidate (ties broken by the second
    metric) clearly, else none (the best single candidate is the model). Clearly means, after
    cross-validation, by more than one standard error of the ensemble's judged score (the spread
    of its fold scores; with repeated folds, the mean of each shuffle's); after hold-out, by any
    margin.

    The standard error guards the ensemble, which adds members on the evidence of the same rows,
    in the spirit of the one-standard-error rule (Hastie, Tibshirani and Friedman, The Elements
    of Statistical Learning, 2nd ed., section 7.10). Among single models the same rule then
    prefers defaults and earlier families (_first_default_within_error).

    Returns the ensemble members (empty unless the ensemble is chosen) and a description of
    the rule for experiment.json."""
    rule: dict = {"rule": "the best single model; an ensemble only if it beats it by more than "
                          "one standard error", "standard_error": None}
    if not members:
        return [], rule
    key = run.key(mixed)
    if run.protocol.method == "cross-validation":  # each shuffle's, averaged
        rule["standard_error"] = _shuffles_standard_error(run, mixed)
        clear = key[0] + rule["standard_error"] < best.key[0]  # losses: lower is better
    else:
        clear = key < best.key
    return (members, rule) if clear else ([], rule)


def _first_default_within_error(run: _Run, best: _Scored, rule: dict) -> _Scored:
    """After cross-validation: the best candidate if it beats every family's default settings
    (its baseline) by more than one standard error of its fold scores; otherwise the first
    family's default (families in their order, linear models first) that scores within one
    standard error of the best default: of the two defaults' fold-by-fold difference
    (_paired_error), as both were scored on the same folds.

    On a few hundred rows, tuned settings and families tied within the error win the folds by
    chance. Measured with tests/bench/bench_quality.py (5-fold outer cross-validation, 10 s):
    taking the best scorer, a tuned SVM and the default extra trees each lost 0.10-0.12 r2 to
    the default Ridge they tied with on a diabetes fold, and SVMs, neighbours and forests fell
    0.7-1.4% below the default logistic regression on iris; this rule tied the best default on
    all of those (wine fell 1.2% below: there extra trees is best, logistic regression within
    the error). Averaging the defaults within the error instead, refitted on the same folds, fell
    more than 1% below on 5 of 12 pairs (diabetes, iris, wine) against this rule's 2.

    The window is measured from the best default, not from the best candidate: the best of many
    settings scores high by luck, the more so the more are tried. At 30 s on iris, a window
    measured from the best of ~20 tuned settings shut out the default logistic regression and
    chose defaults that scored 1.4% lower on the test rows; measured from the best default, the
    same runs tie it, and no other of the benchmark's 24 pairs changes for the worse.

    The window of each default is the standard error of its difference from the best default,
    fold by fold, not that of the best default's own fold scores: a fold that is hard for both
    moves neither's lead, so a default that trails on every fold falls outside. On wine at 30 s,
    extra trees led logistic regression by a row or two on most folds, well within the unpaired
    error, and the rule chose logistic regression 1.2% below the best default on two of three
    splits. With the paired window split 2 came within 0.6% (0.9830 against 0.9889), split 1
    went from 1.0 to 0.9940 (the best default: 0.9949), and split 0 stayed 1.2% below: there
    logistic regression and extra trees tie exactly on the folds, which _best_ranked_of_ties
    now tells apart. The other nine pairs of iris,
    diabetes and breast cancer chose the same. Replaying the defaults alone on those data
    (tests/bench/replay_defaults.py), a window widened 1.5 times for the folds' shared training
    rows (Nadeau and Bengio's correction of the variance) fell 1.2% below on wine split 1;
    picking the best default outright fell more than 1% below on 4 of those 12 pairs, the default
    with the best mean rank over the folds on 2 (iris split 1, diabetes split 0; it fixes wine
    split 0), the defaults in this window averaged on 4 (iris split 1, diabetes on all three;
    wine split 0 came within 0.6%; on digits and the sample data, 2 more of 12 where this rule
    has none), the best default averaged with the defaults tied with it exactly on the metric
    on 3 (iris split 1, diabetes splits 0 and 2; it fixes wine split 0, 0.9831), this rule's
    pick averaged with its exact ties on 2 (iris splits 0 and 1; neither adds a miss on digits
    and the sample data), and drawing the folds ten times instead of three on 2 of 9
    (wine, iris, diabetes).
    The figures in the paragraphs above this one were measured with the unpaired window.

    Without an error (the best candidate scored alike on every fold, as when a hundred rows are
    classified perfectly) there is no window: the best candidate stays, exact ties on the metric
    broken by the second metric. At 30 s the benchmark has one such fold in 120 (wine, split 0,
    fold 0: extra trees' default alone scores 1.0). The figures are recorded all the same.

    Adds to `rule`: the rule; every default's score ("defaults"); the best default's family
    and score ("best_default"); the standard error of the best candidate ("best_standard_error");
    each other default's window ("paired_errors", when the window is looked at);
    how far a tuned best candidate leads the best default, in those errors ("lead_in_errors",
    None without an error),
    and how many tuned settings were scored ("tuned_scored"); under "set_aside" the best
    candidate when another is chosen."""
    if run.protocol.method != "cross-validation":  # hold-out: no fold scores, no error
        return best
    rule["rule"] += ("; unless that beats every default by more than one standard error, the "
                     "first family's default settings within one standard error of the best "
                     "default (of their fold-by-fold difference); of defaults tied with it "
                     "exactly, the best ranked fold by fold")
    error = _shuffles_standard_error(run, best.outputs)
    defaults = [item for item in run.scored if _is_default(item)]
    if not defaults:
        return best
    best_default = min(defaults, key=_rank)
    rule["defaults"] = {item.trial.family: item.trial.score for item in defaults}
    rule["best_default"] = {"family": best_default.trial.family, "score": best_default.trial.score}
    rule["best_standard_error"] = error
    if not _is_default(best):
        rule["lead_in_errors"] = (round((best_default.key[0] - best.key[0]) / error, 3)
                                  if error > 0 else None)
        rule["tuned_scored"] = sum(not _is_default(item) for item in run.scored)
    if error <= 0:  # all folds alike (or one unscored): ties are the second metric's (_Run.key)
        return best
    if best_default.key[0] > best.key[0] + error:  # lower is better
        return best
    within = {item.trial.family: _paired_error(run, best_default, item, error)
              for item in defaults if item is not best_default}
    rule["paired_errors"] = within
    close = [item for item in defaults if item is best_default
             or item.key[0] <= best_default.key[0] + within[item.trial.family]]
    chosen = min(close, key=lambda item: item.number)  # baselines run first, in family order
    chosen = _best_ranked_of_ties(run, defaults, chosen, rule)
    if chosen is not best:
        rule["set_aside"] = {"family": best.trial.family, "params": best.trial.params,
                             "standard_error": error}
    return chosen


def _best_ranked_of_ties(run: _Run, defaults: list[_Scored], chosen: _Scored,
                         rule: dict) -> _Scored:
    """`chosen`, unless other defaults score exactly as it does on the metric (on a hundred
    rows, accuracy-like metrics tie often): then, of those and `chosen`, the one with the best
    mean rank among the defaults fold by fold (ties: family order), which tells apart defaults
    the pooled metric cannot. Adds the ranks to `rule` ("fold_ranks") when it looks at them.

    Replayed on the defaults alone (tests/bench/replay_defaults.py, rule window_rank): on wine
    split 0, logistic regression and extra trees tie exactly, extra trees ranks better on the
    folds and scores 0.9889 on the test rows against logistic regression's 0.9774 (the best
    default: 0.9889); no other pair of wine, iris, diabetes and breast cancer falls more than
    1% below the best default, where picking by rank alone leaves iris split 1 and diabetes
    split 0 below it, and averaging the tied defaults iris splits 0 and 1."""
    tied = [item for item in defaults if item.key[0] == chosen.key[0]]
    scores = [item.view_scores for item in defaults]
    if len(tied) < 2 or any(not views or None in views or len(views) != len(scores[0])
                            for views in scores):
        return chosen
    from scipy.stats import rankdata

    losses = np.array([[run.metric.sort_key(value) for value in views] for views in scores])
    ranks = dict(zip((item.number for item in defaults),
                     rankdata(losses, axis=0).mean(axis=1).tolist(), strict=True))
    rule["fold_ranks"] = {item.trial.family: round(ranks[item.number], 3) for item in tied}
    return min(tied, key=lambda item: (ranks[item.number], item.number))


def _paired_error(run: _Run, reference: _Scored, other: _Scored, fallback: float) -> float:
    """The standard error of the difference between two candidates' scores, fold by fold (per
    shuffle, averaged): both were scored on the same folds, so a fold that is hard for both moves
    neither's lead. `fallback` when a fold has no score (or no fold was recorded)."""
    mine, theirs = reference.view_scores, other.view_scores
    if not mine or len(mine) != len(theirs) or None in mine or None in theirs:
        return fallback
    return run.protocol.standard_error([a - b for a, b in zip(mine, theirs, strict=True)])


def _set_aside_line(run: _Run, chosen: _Scored, top: _Scored) -> str:
    """What train says when the first-default rule sets the best-scoring candidate aside; when
    another candidate had the same metric, that the second metric made `top` the best."""
    best = f"the best-scoring {top.trial.family} ({_settings(top.trial.params)})"
    if _is_default(top):
        line = f"within one standard error of {best}"
    else:
        best_default = min((item for item in run.scored if _is_default(item)), key=_rank)
        line = (f"{best} beats the best default, {best_default.trial.family}, by less than one "
                "standard error" + ("" if chosen is best_default else
                                    f", and {chosen.trial.family} is within one of it"))
    tied = sum(item is not top and item.key[0] == top.key[0] for item in run.scored)
    if tied:
        line += (f"; {top.trial.family} is ahead of {tied} other{'s' if tied > 1 else ''} with "
                 f"the same {run.metric.name} on {run.tie_breaker.name}")
    return f"chose {chosen.trial.family} with its default settings: {line}"


def _kept_tuned_line(run: _Run, best: _Scored, rule: dict) -> str:
    """What train says when tuned settings lead every default by more than the error, or, when
    the best candidate scored alike on every fold (no error), when they lead on the metric or
    tie it and lead on the second metric."""
    lead, family = rule["lead_in_errors"], rule["best_default"]["family"]
    if lead is not None:
        why = f"it beats the best default, {family}, by {lead:.2f} standard errors"
    elif best.key[0] < min(item.key for item in run.scored if _is_default(item))[0]:
        why = f"it beats the best default, {family}, with the same score on every fold"
    else:
        why = (f"it ties the best default, {family}, with the same {run.metric.name} on every "
               f"fold, and leads it on {run.tie_breaker.name}")
    return f"chose {best.trial.family} with tuned settings ({_settings(best.trial.params)}): {why}"


def _is_default(item: _Scored) -> bool:
    return item.candidate.is_baseline


def _cross_selected(run: _Run, pool: list[_Scored]) -> np.ndarray:
    """The ensemble selection's predictions for the scored rows, cross-validated: each fold's
    rows (of the first shuffle) get the mix selected (ensemble.select) on the other folds' rows,
    starting from the best candidate on those rows. No row's prediction comes from weights chosen
    on it."""
    protocol = run.protocol
    truth = run.y[protocol.scored]
    position = {row: index for index, row in enumerate(protocol.scored)}
    judged = np.zeros_like(pool[0].outputs)
    for view_index in protocol.output_views[:protocol.folds]:
        inside = np.array([position[row] for row in protocol.views[view_index].score])
        outside = np.setdiff1d(np.arange(len(truth)), inside)
        scorer = Scorer(run.task, truth[outside], run.classes, run.positive)

        def key(output: np.ndarray, scorer: Scorer = scorer) -> tuple:
            return (run.metric.sort_key(scorer.value(run.metric, output)),
                    run.tie_breaker.sort_key(scorer.value(run.tie_breaker, output)))

        ranked = sorted(pool, key=lambda item: (key(item.outputs[outside]), item.number))
        selection = select([item.outputs[outside] for item in ranked], key)
        weights = {0: 1.0} if selection is None else selection.weights
        judged[inside] = sum(weight * ranked[index].outputs[inside]
                             for index, weight in weights.items())
    return judged


def _fold_scores(run: _Run, output: np.ndarray) -> list[float | None]:
    """The metric on each output view's rows of `output` (predictions for the scored rows)."""
    position = {row: index for index, row in enumerate(run.protocol.scored)}
    scores = []
    for view_index in run.protocol.output_views:
        rows = [position[row] for row in run.protocol.views[view_index].score]
        scores.append(run.scorer(view_index).value(run.metric, output[rows]))
    return scores


def _shuffles_standard_error(run: _Run, output: np.ndarray) -> float:
    """The standard error of `output`'s fold scores, per shuffle of the folds, averaged."""
    return run.protocol.standard_error(_fold_scores(run, output))


def _final_model(run: _Run, features: dict[str, str], hooks: ProjectHooks, best: _Scored,
                 members: list[tuple[_Scored, float]]) -> Pipeline:
    """The chosen model as a fitted Pipeline (preprocessing, estimator or ensemble)."""
    kind = EnsembleClassifier if run.classification else EnsembleRegressor
    protocol = run.protocol
    if not protocol.refit:  # hold-out: the estimators fitted on the training rows
        preprocessor = run.views.get(protocol.output_views[-1])[0]
        view = protocol.views[protocol.output_views[-1]]
        model = best.fitted if not members else kind.from_fitted(
            [item.fitted for item, _ in members], [weight for _, weight in members],
            run.y[view.fit])
        return Pipeline([("preprocess", preprocessor), ("model", model)])
    if members:
        model = kind([item.candidate.family.build(item.candidate.params, run.seed)
                      for item, _ in members], [weight for _, weight in members])
    else:
        model = best.candidate.family.build(best.candidate.params, run.seed)
    pipeline = Pipeline([("preprocess", run.views.hooks.preprocessor(features)),
                         ("model", _fit_threads(model, len(run.y)))])
    try:
        with warnings.catch_warnings(), _native_threads.one():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(run.views.x, run.y)
    except (ValueError, ArithmeticError) as error:
        raise DataError(f"refitting the chosen model on train + validation failed: "
                        f"{_first_line(error)}") from None
    _single_threaded(model)
    return pipeline


def _single_threaded(estimator: object) -> None:
    """Predict without a thread pool: parallelism only slows down small (serving) batches, and
    threads add up forest votes in a varying order."""
    ensemble = isinstance(estimator, EnsembleClassifier | EnsembleRegressor)
    for part in _threaded_parts(estimator, estimator.estimators_ if ensemble else []):
        part.set_params(n_jobs=None)


def _tie_breaker(task: str, metric: Metric) -> Metric:
    names = TIE_BREAKERS["regression" if task == "regression" else "classification"]
    return METRICS[next(name for name in names if name != metric.name)]


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present and len(present) == len(values) else None


def _plain(classes: np.ndarray) -> list:
    """Class labels as JSON values (numpy integers become ints)."""
    return np.asarray(classes).tolist()


def _line(run: _Run, trial: Trial, improved: bool) -> str:
    """One candidate's progress row: its number, family, score and the clock in columns; how a
    candidate ended early follows them, so every row's columns line up."""
    score, note = f"{run.metric.name}={number(trial.score)}", ""
    if trial.error:
        score, note = "-", f"failed: {trial.error}"
    elif trial.pruned:
        score = f"{run.metric.name}={number(trial.partial_score)}"
        note = f"stopped after {trial.views}/{len(run.protocol.views)} folds"
    elif improved:
        note = "* best"
    return (f"  [{len(run.trials):>3}] {trial.family:<24} {score:<28} {run.clock.shown()}"
            + (f"  {note}" if note else ""))


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def _settings(params: dict) -> str:
    return ", ".join(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in params.items())
