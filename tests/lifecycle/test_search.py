"""The model search, in-process: proposals that follow the seed and the scores only, the scoring
protocols, fast scores equal to metrics.py, pruning, ensembles that must beat the best single
model, the refit after cross-validation, and Ctrl-C."""

from __future__ import annotations

import itertools
import random
import sys
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline

from mlscaffold.lifecycle import evaluation
from mlscaffold.lifecycle import search as search_module
from mlscaffold.lifecycle.ensemble import EnsembleClassifier, EnsembleRegressor, select
from mlscaffold.lifecycle.errors import DataError
from mlscaffold.lifecycle.hooks import ProjectHooks
from mlscaffold.lifecycle.metrics import METRICS, Outcome, get_metric, metrics_for
from mlscaffold.lifecycle.model import ModelBundle, load_bundle, predict_frame, save_bundle
from mlscaffold.lifecycle.proposals import Proposer
from mlscaffold.lifecycle.scoring import Scorer
from mlscaffold.lifecycle.search import Split, search
from mlscaffold.lifecycle.search_space import (
    BOOSTING_EARLY_STOPPING,
    SVM_MAX_ROWS,
    Candidate,
    Family,
    families_for,
)


@pytest.fixture(autouse=True)
def _one_shuffle(monkeypatch):
    """The other mechanisms are tested on one shuffle of the folds (a third of the fits)."""
    monkeypatch.setattr(evaluation, "REPEATS_MAX_ROWS", 0)

# ------------------------------------------------------------------------------------ proposals


def _proposals(task: str, seed: int, loss, count: int = 40) -> list[tuple]:
    """The first `count` proposals when each candidate's loss is loss(candidate, step)."""
    proposer = Proposer(families_for(task), seed)
    made = []
    for step in range(count):
        candidate = proposer.propose()
        made.append(candidate.key)
        proposer.observe(candidate, loss(candidate, step))
    return made


def _by_family(candidate: Candidate, step: int) -> float:
    return float(len(candidate.family.name))


def test_proposals_depend_on_the_seed_and_the_scores_only():
    assert _proposals("regression", 1, _by_family) == _proposals("regression", 1, _by_family)
    assert _proposals("regression", 1, _by_family) != _proposals("regression", 2, _by_family)
    assert _proposals("regression", 1, _by_family) != _proposals(
        "regression", 1, lambda candidate, step: -_by_family(candidate, step))


def test_proposals_start_with_every_baseline_then_favour_the_best_family():
    families = families_for("binary-classification")
    names = [family.name for family in families]

    def loss(candidate, step):  # logistic regression is best and keeps improving
        if candidate.family.name == "logistic_regression":
            return 0.1 - step / 1000
        return 0.5 + names.index(candidate.family.name)

    made = _proposals("binary-classification", 3, loss, count=len(families) + 40)
    baselines = [(family.name, tuple(sorted(family.baseline.items()))) for family in families]
    assert made[: len(families)] == baselines
    drawn = [name for name, _ in made[len(families):]]
    counts = {family.name: drawn.count(family.name) for family in families}
    assert counts["logistic_regression"] > max(v for k, v in counts.items()
                                               if k != "logistic_regression")
    assert counts["logistic_regression"] >= len(drawn) // 3


def test_the_forests_baselines_come_before_gradient_boosting():
    """A short budget ends the baselines early: it must reach the forests (often the best
    default on small data) before gradient boosting (costly with many classes)."""
    for task in ("binary-classification", "multiclass-classification", "regression"):
        families = families_for(task)
        names = [family.name for family in families]
        assert names[-1] == "hist_gradient_boosting"
        assert names[3:5] == ["extra_trees", "random_forest"]
        proposer = Proposer(families, seed=0)
        assert [proposer.propose().family.name for _ in names] == names


def test_near_duplicates_are_not_proposed_and_a_repeating_family_runs_out():
    nearly_one = Family("nearly_one", lambda params, seed: Ridge(**params),
                        lambda rng: {"alpha": round(1 + rng.random() / 10, 6)},
                        baseline={"alpha": 1.0})
    proposer = Proposer([nearly_one], seed=0)
    assert proposer.propose().params == {"alpha": 1.0}
    assert proposer.propose() is None  # every sample is within a fifth of a decade of 1.0

    wide = Family("wide", lambda params, seed: Ridge(**params),
                  lambda rng: {"alpha": 10 ** rng.uniform(-3, 3)}, baseline={"alpha": 1.0})
    proposer = Proposer([wide], seed=0)
    made = list(itertools.takewhile(lambda c: c is not None,
                                    (proposer.propose() for _ in range(100))))
    assert 20 <= len(made) <= 31  # six decades in fifths, each at most once
    assert len({candidate.near_key for candidate in made}) == len(made)


def _effective(candidate: Candidate) -> tuple:
    """The plain settings of the estimator a candidate builds: equal only for the same model."""
    settings = candidate.family.build(candidate.params, 0).get_params(deep=True)
    return candidate.family.name, tuple(sorted(
        (name, repr(value)) for name, value in settings.items()
        if isinstance(value, bool | int | float | str | None)))


@pytest.mark.parametrize("task", ["binary-classification", "regression"])
def test_a_proposal_that_only_spells_out_defaults_is_not_fitted_again(task):
    """A local step from a forest's baseline that sets max_depth=None, or nearest neighbours'
    weights="uniform", builds the same model: it is a repeat, not a new candidate."""
    families = families_for(task)
    best = {"extra_trees": 0.1, "random_forest": 0.12}  # local steps from their baselines
    proposer = Proposer(families, seed=0)
    made = []
    for step in range(200):
        candidate = proposer.propose()
        made.append(candidate)
        proposer.observe(candidate, best.get(candidate.family.name, 0.3) + (step % 7) / 100)
    assert len({_effective(candidate) for candidate in made}) == len(made)

    knn = next(f for f in families if f.name == "k_nearest_neighbors")
    spelled = Candidate(knn, {"n_neighbors": 5, "weights": "uniform"})
    assert spelled.near_key == Candidate(knn, knn.baseline).near_key and spelled.is_baseline
    assert not Candidate(knn, {"n_neighbors": 5, "weights": "distance"}).is_baseline
    svm = next(f for f in families if f.name == "support_vector_machine")  # a wrapped estimator
    assert svm.explicit({"C": 1, "gamma": "scale"}) == {}
    assert svm.explicit({"C": 1.0, "gamma": 0.01}) == {"gamma": 0.01}


def test_a_family_whose_defaults_cannot_be_read_keeps_every_setting():
    def needs_alpha(params: dict, seed: int) -> Ridge:
        return Ridge(alpha=params["alpha"])

    family = Family("needs_alpha", needs_alpha, lambda rng: {"alpha": rng.random()},
                    baseline={"alpha": 1.0})
    assert family.explicit({"alpha": 1.0}) == {"alpha": 1.0}
    assert Candidate(family, {"alpha": 1.0}).is_baseline
    assert not Candidate(family, {"alpha": 2.0}).is_baseline


def test_a_family_that_does_not_suit_the_data_is_left_out():
    svm = next(f for f in families_for("regression") if f.name == "support_vector_machine")
    assert search_module._suits(Candidate(svm, {}), 100, SVM_MAX_ROWS)
    assert not search_module._suits(Candidate(svm, {}), 100, SVM_MAX_ROWS + 1)
    knn = next(f for f in families_for("regression") if f.name == "k_nearest_neighbors")
    assert not search_module._suits(Candidate(knn, {"n_neighbors": 41}), 40, 5000)
    assert search_module._suits(Candidate(knn, {"n_neighbors": 41}), 41, 5000)


def test_gradient_boosting_stops_early_whatever_the_rows():
    for task in ("binary-classification", "regression"):
        family = next(f for f in families_for(task) if f.name == "hist_gradient_boosting")
        model = family.build(dict(family.baseline), 0)
        assert {key: model.get_params()[key] for key in BOOSTING_EARLY_STOPPING} == \
            BOOSTING_EARLY_STOPPING
    rng = np.random.default_rng(0)
    model = family.build({}, 0).fit(rng.normal(size=(300, 4)), rng.normal(size=300))  # noise
    assert model.n_iter_ < BOOSTING_EARLY_STOPPING["max_iter"] / 10

# ------------------------------------------------------------------------------------ protocols


def test_small_data_is_cross_validated_in_stratified_folds():
    y = np.array([0] * 90 + [1] * 30)
    protocol = evaluation.plan(96, y, classification=True, seed=0)
    assert (protocol.method, protocol.folds, protocol.refit) == ("cross-validation", 5, True)
    assert sorted(np.concatenate([view.score for view in protocol.views])) == list(range(120))
    assert all(list(np.bincount(y[view.score])) == [18, 6] for view in protocol.views)
    assert all(np.intersect1d(view.fit, view.score).size == 0 for view in protocol.views)
    assert evaluation.plan(96, np.array([0] * 110 + [1] * 10 + [2] * 2), True, 0).folds == 2
    assert evaluation.plan(2400, np.arange(3000.0), False, 0).folds == evaluation.FOLDS_LARGE


def test_a_class_of_one_row_is_named_as_the_reason_for_hold_out():
    y = np.array(["a"] * 60 + ["b"] * 40 + ["c"] + ["a"] * 20 + ["b"] * 20)
    protocol = evaluation.plan(101, y, classification=True, seed=0)
    reason = ("class(es) 'c' have 1 row in train + validation, and cross-validation needs at "
              "least 2 per class")
    assert (protocol.method, protocol.reason) == ("hold-out", reason)
    assert protocol.describe()["description"] == (
        f"hold-out: fitted on train (101 rows), scored on validation (40 rows) ({reason})")
    assert evaluation.plan(96, np.array([0, 1] * 60), True, 0).reason == ""


def test_a_few_hundred_rows_are_cross_validated_on_repeated_shuffles(monkeypatch):
    monkeypatch.setattr(evaluation, "REPEATS_MAX_ROWS", 500)
    y = np.array([0] * 90 + [1] * 30)
    protocol = evaluation.plan(96, y, classification=True, seed=0)
    assert (protocol.folds, protocol.repeats, len(protocol.views)) == (5, evaluation.REPEATS, 15)
    assert protocol.output_views == tuple(range(15))
    shuffles = [protocol.views[start:start + 5] for start in range(0, 15, 5)]
    for views in shuffles:  # each shuffle is a partition of the rows, stratified
        assert sorted(np.concatenate([view.score for view in views])) == list(range(120))
        assert all(list(np.bincount(y[view.score])) == [18, 6] for view in views)
    assert len({tuple(views[0].score) for views in shuffles}) == 3
    assert list(protocol.scored) == list(np.concatenate([v.score for v in shuffles[0]]))
    assert "repeated 3 times" in protocol.describe()["description"]
    assert evaluation.plan(400, np.arange(500.0), False, 0).repeats == 3
    assert evaluation.plan(400, np.arange(501.0), False, 0).repeats == 1
    monkeypatch.setattr(evaluation, "REPEATS_MAX_ROWS", 0)
    one = evaluation.plan(96, y, classification=True, seed=0)  # the first shuffle alone
    assert one.repeats == 1
    assert [list(view.score) for view in one.views] == [list(v.score) for v in shuffles[0]]


def test_the_standard_error_is_each_shuffles_averaged(monkeypatch):
    monkeypatch.setattr(evaluation, "REPEATS_MAX_ROWS", 500)
    protocol = evaluation.plan(96, np.array([0, 1] * 60), classification=True, seed=0)
    steady, spread = [0.9] * 5, [0.8, 0.9, 1.0, 0.9, 0.9]
    spread_error = float(np.std(spread, ddof=1) / np.sqrt(5))
    # a steady shuffle has no spread; the mean over three shuffles, not the spread of all fifteen
    assert protocol.standard_error(steady + spread + spread) == pytest.approx(2 * spread_error / 3)
    assert protocol.standard_error(steady * 3) == 0.0
    # a fold without a score leaves its shuffle without an error
    assert protocol.standard_error([None, *spread[1:], *spread, *spread]) == pytest.approx(
        2 * spread_error / 3)


def test_a_candidates_score_is_that_of_its_predictions_averaged_over_the_shuffles(monkeypatch):
    from sklearn.model_selection import RepeatedStratifiedKFold

    from mlscaffold.lifecycle.schema import build_preprocessor

    monkeypatch.setattr(evaluation, "REPEATS_MAX_ROWS", 500)
    result = _search(hooks=_families(Family(
        "logistic", lambda params, seed: LogisticRegression(**params), lambda rng: {},
        baseline={"C": 1.0})), trials=1)
    assert result.protocol["repeats"] == 3 and result.trials[0].views == 15
    train, validation, features = _data("binary-classification")
    x = pd.concat([train.x, validation.x], ignore_index=True)
    y = np.concatenate([train.y, validation.y])
    mean = np.zeros(len(y))
    for fit, score in RepeatedStratifiedKFold(n_splits=5, n_repeats=3,
                                              random_state=0).split(x, y):
        model = Pipeline([("p", build_preprocessor(features)), ("m", LogisticRegression())])
        mean[score] += model.fit(x.iloc[fit], y[fit]).predict_proba(x.iloc[score])[:, 1] / 3
    expected = METRICS["roc_auc"].compute(Outcome("binary-classification", y, mean > 0.5,
                                                  np.column_stack([1 - mean, mean]), [0, 1]))
    assert result.score == pytest.approx(expected, abs=1e-9)


def test_large_data_is_held_out_after_a_screening_fit(monkeypatch):
    monkeypatch.setattr(evaluation, "CV_MAX_ROWS", 100)
    monkeypatch.setattr(evaluation, "SCREEN_MIN_ROWS", 20)
    y = np.array([0, 1] * 100)
    protocol = evaluation.plan(160, y, classification=True, seed=0)
    assert (protocol.method, protocol.refit, protocol.output_views) == ("hold-out", False, (1,))
    screen, full = protocol.views
    assert list(full.fit) == list(range(160)) and list(full.score) == list(range(160, 200))
    assert len(screen.fit) == 40 and set(screen.fit) < set(full.fit)
    assert list(protocol.scored) == list(range(160, 200))

# --------------------------------------------------------------------------------------- scores


def _outcomes():
    """Random outcomes of every task, with ties, rare and unpredicted classes."""
    rng = np.random.default_rng(7)
    for trial in range(60):
        rows = int(rng.integers(5, 80))
        for task, k in (("binary-classification", 2), ("multiclass-classification", 4)):
            classes = np.array(["a", "b", "c", "d"][:k]) if trial % 2 else np.arange(k) * 10
            y = classes[rng.integers(0, k, rows)]
            probabilities = rng.dirichlet(np.ones(k) * 0.5, rows).round(1 if trial % 3 else 3)
            probabilities[:, -1] = 1 - probabilities[:, :-1].sum(axis=1)
            probabilities = np.clip(probabilities, 0, 1)
            yield task, y, probabilities, classes
        y = rng.normal(size=rows) * 10 + (trial % 3 == 0) * 1e-9
        yield "regression", y, y + rng.normal(size=rows), None


def _positives(task: str, classes):
    """The last class (None) and, for a binary task, the spec's positive_class as the first."""
    return (None, classes[0]) if task == "binary-classification" else (None,)


def test_fast_scores_equal_the_metrics_table():
    compared = 0
    for task, y, output, classes, positive in (
            (*outcome, positive) for outcome in _outcomes()
            for positive in _positives(outcome[0], outcome[3])):
        scorer = Scorer(task, y, classes, positive)
        outcome = scorer.outcome(output)
        for metric in metrics_for(task):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # undefined cases are None below
                    expected = float(metric.compute(outcome))
            except ValueError:
                expected = None
            got = scorer.value(metric, output)
            if expected is None or np.isnan(expected):
                assert got is None, (task, metric.name)
            else:
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), (task, metric.name)
                compared += 1
    assert compared > 1000


# ------------------------------------------------------------------------------------ ensembles


def test_selection_mixes_complementary_models_and_refuses_a_useless_one():
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    first, second = y + rng.normal(size=500), y + rng.normal(size=500)
    worse = first + rng.normal(size=500)

    def rmse(output):
        return (float(np.sqrt(np.mean((output - y) ** 2))),)

    mix = select([first, second], rmse)
    assert mix is not None and set(mix.counts) == {0, 1}
    assert mix.key < rmse(first) and mix.key < rmse(second)
    assert select([first, worse], rmse) is None
    assert select([first], rmse) is None


def test_ensembles_pickle_and_predict_like_any_estimator(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3))
    y = np.where(x[:, 0] > 0.5, "high", np.where(x[:, 0] < -0.5, "low", "mid"))
    model = EnsembleClassifier([LogisticRegression(), KNeighborsClassifier()], [3, 1]).fit(x, y)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert list(loaded.classes_) == ["high", "low", "mid"]
    assert np.allclose(loaded.predict_proba(x).sum(axis=1), 1)
    assert list(loaded.predict(x)) == list(model.predict(x))
    assert np.mean(loaded.predict(x) == y) > 0.8

    # a member fitted without one of the classes still predicts under the right columns
    seen = y != "mid"
    partial = EnsembleClassifier.from_fitted(
        [LogisticRegression().fit(x[seen], y[seen]), LogisticRegression().fit(x, y)], [1, 1], y)
    assert partial.predict_proba(x).shape == (120, 3)
    assert np.allclose(partial.predict_proba(x).sum(axis=1), 1)

    target = x @ np.array([1.0, 2.0, 0.0])
    regressor = EnsembleRegressor([Ridge(), KNeighborsRegressor()], [1, 1]).fit(x, target)
    expected = (Ridge().fit(x, target).predict(x)
                + KNeighborsRegressor().fit(x, target).predict(x)) / 2
    assert np.allclose(regressor.predict(x), expected)


# --------------------------------------------------------------------------------------- search


def _data(task: str, rows: int = 240, seed: int = 0) -> tuple[Split, Split, dict[str, str]]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows),
                          "colour": rng.choice(["red", "green", "blue"], rows)})
    signal = frame["a"] * 2 + np.sin(3 * frame["b"]) + (frame["colour"] == "red")
    if task == "regression":
        y = (signal + rng.normal(scale=0.3, size=rows)).to_numpy()
    else:
        y = (signal + rng.normal(scale=0.5, size=rows) > 0.5).astype(int).to_numpy()
    features = {"a": "numeric", "b": "numeric", "colour": "categorical"}
    cut = rows * 3 // 4
    return Split(frame[:cut], y[:cut]), Split(frame[cut:].reset_index(drop=True), y[cut:]), \
        features


def _search(task="binary-classification", metric="roc_auc", hooks=None, trials=8, seed=0,
            data=None, echo=lambda line: None):
    train, validation, features = data or _data(task)
    return search(train, validation, features, task, get_metric(metric, task), None, seed,
                  echo, hooks, trials=trials)


def _families(*families: Family) -> ProjectHooks:
    return ProjectHooks(functions={"candidates": lambda task: list(families)})


def _candidates(result) -> list[tuple]:
    return [(trial.family, trial.params, trial.score, trial.pruned) for trial in result.trials]


def test_the_same_seed_and_trials_give_the_same_candidates():
    # the default families but forests (slow to fit; they are drawn like the others)
    hooks = _families(*(family for family in families_for("binary-classification")
                        if family.name not in ("random_forest", "extra_trees")))
    first, second = _search(hooks=hooks, trials=10), _search(hooks=hooks, trials=10)
    assert _candidates(first) == _candidates(second)
    assert len(first.trials) == 10 and first.stopped_by == "trials"
    assert _candidates(_search(hooks=hooks, trials=10, seed=1)) != _candidates(first)


class _Recorder(LogisticRegression):
    """Logistic regression that records how many rows each fit saw."""

    rows: list[int] = []  # noqa: RUF012 (shared on purpose: clones record into it)

    def fit(self, X, y, sample_weight=None):
        _Recorder.rows.append(len(X))
        return super().fit(X, y, sample_weight)


def test_small_data_is_cross_validated_and_the_choice_refitted_on_all_rows():
    _Recorder.rows = []
    recorder = Family("recorder", lambda params, seed: _Recorder(**params),
                      lambda rng: {"C": 10 ** rng.uniform(-2, 2)}, baseline={"C": 1.0})
    result = _search(hooks=_families(recorder), trials=3)
    assert result.protocol["method"] == "cross-validation" and result.protocol["folds"] == 5
    assert _Recorder.rows[:5] == [192] * 5  # 4/5 of 240 rows per fold
    assert _Recorder.rows[-1] == 240  # the refit: train and validation
    assert len(result.trials) == 3 and all(trial.views == 5 for trial in result.trials)


def test_large_data_is_scored_on_validation_without_a_refit(monkeypatch):
    monkeypatch.setattr(evaluation, "CV_MAX_ROWS", 100)
    _Recorder.rows = []
    recorder = Family("recorder", lambda params, seed: _Recorder(**params),
                      lambda rng: {"C": 10 ** rng.uniform(-2, 2)}, baseline={"C": 1.0})
    result = _search(hooks=_families(recorder), trials=3)
    assert result.protocol["method"] == "hold-out"
    assert set(_Recorder.rows) == {180}  # the training rows only, never refitted
    assert isinstance(result.pipeline, Pipeline)
    probabilities = result.pipeline.predict_proba(_data("binary-classification")[1].x)
    assert np.allclose(probabilities.sum(axis=1), 1)


def test_ties_go_to_the_better_second_metric():
    """Both reach accuracy 1.0; the more confident one (lower log loss) is chosen, though it
    comes second."""
    timid = Family("timid", lambda params, seed: LogisticRegression(C=1e-3),
                   lambda rng: {}, baseline={})
    sure = Family("sure", lambda params, seed: LogisticRegression(C=100),
                  lambda rng: {}, baseline={})
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": np.concatenate([rng.normal(-5, 1, 60), rng.normal(5, 1, 60)])})
    y = np.repeat([0, 1], 60)
    order = rng.permutation(120)
    frame, y = frame.iloc[order].reset_index(drop=True), y[order]
    data = (Split(frame[:90], y[:90]), Split(frame[90:].reset_index(drop=True), y[90:]),
            {"a": "numeric"})
    result = _search(metric="accuracy", hooks=_families(timid, sure), trials=2, data=data)
    assert [trial.score for trial in result.trials] == [1.0, 1.0]
    assert result.best.family == "sure"


def test_a_poor_candidate_is_stopped_after_its_first_fold(monkeypatch):
    monkeypatch.setattr(search_module, "PRUNE_RANK", 2)
    good = Family("good", lambda params, seed: LogisticRegression(**params),
                  lambda rng: {"C": 10 ** rng.uniform(-1, 2)}, baseline={"C": 1.0})
    poor = Family("poor", lambda params, seed: DummyClassifier(**params),
                  lambda rng: {"strategy": rng.choice(["prior", "uniform"]),
                               "random_state": rng.randint(0, 10 ** 6)},
                  baseline={"strategy": "prior"})
    result = _search(hooks=_families(good, poor), trials=30)
    good_scored, poor_later = 0, []  # poor candidates tried once two good ones were scored
    for trial in result.trials:
        good_scored += trial.family == "good" and trial.score is not None
        if trial.family == "poor" and good_scored >= 2:
            poor_later.append(trial)
    assert poor_later and all(trial.pruned for trial in poor_later)
    pruned = [trial for trial in result.trials if trial.pruned]
    assert all(trial.views < 5 and trial.score is None and trial.partial_score is not None
               for trial in pruned)
    assert all(trial.views == 1 and trial.partial_score < 0.7 for trial in poor_later)
    assert all(trial.views == 5 for trial in result.trials if not trial.pruned)


def test_the_first_family_within_the_error_is_chosen_over_a_later_one_scoring_higher():
    """The later family scores higher, but the first family's default scores within one
    standard error of it (C=0.05 against C=100 on these rows): the first is the model, and the
    choice names the one set aside."""
    simple = Family("simple", lambda params, seed: LogisticRegression(C=0.05),
                    lambda rng: {}, baseline={})
    flexible = Family("flexible", lambda params, seed: LogisticRegression(C=100),
                      lambda rng: {}, baseline={})
    result = _search(hooks=_families(simple, flexible), trials=2)
    scores = {trial.family: trial.score for trial in result.trials}
    assert scores["flexible"] > scores["simple"]
    assert result.best.family == "simple"
    assert (result.family, result.score) == ("simple", scores["simple"])
    choice = result.protocol["choice"]
    assert choice["rule"].startswith("the best single model")
    assert choice["set_aside"]["family"] == "flexible" and choice["set_aside"]["standard_error"] > 0
    # what train says, kept for the model card
    assert choice["reason"].startswith("chose simple with its default settings: within one "
                                       "standard error of the best-scoring flexible")


def test_the_model_card_says_why_this_model_when_train_said_it():
    from mlscaffold.lifecycle.report import model_card
    from mlscaffold.lifecycle.schema import infer_schema

    entry = {"id": "exp-001", "task": "regression", "family": "ridge", "params": {"alpha": 1.0},
             "metric": "r2", "score": 0.5, "created_at": "2026-12-04T00:00:00Z", "seed": 0,
             "validation": {"r2": 0.5}}
    schema = infer_schema(pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}), "y")
    reason = "chose ridge with its default settings: within one standard error of knn | x"
    card = model_card(entry, "p", "y", schema, {}, "1.0", "5-fold", reason=reason).splitlines()
    selected = next(i for i, line in enumerate(card) if line.startswith("| selected by |"))
    assert card[selected + 1] == ("| why this model | chose ridge with its default settings: "
                                  "within one standard error of knn \\| x |")
    assert not any("why this model" in line
                   for line in model_card(entry, "p", "y", schema, {}, "1.0", "5-fold"))


def _choice_run(y: np.ndarray):
    """A cross-validated search's state as _clear_ensemble reads it: protocol, labels, metric."""
    protocol = evaluation.plan(len(y), y, classification=False, seed=0)
    return search_module._Run(protocol, None, y, "regression", None, METRICS["r2"],
                              METRICS["mae"], 0, None, None)


@pytest.mark.parametrize("scale", [0.97, 0.5])
def test_an_ensemble_is_kept_only_beyond_one_standard_error_of_the_best(scale):
    """A mix slightly better than the best single candidate (noise 0.97 against 1.0) is within
    the error of its fold scores and dropped; a much better one (0.5) is kept."""
    from types import SimpleNamespace

    rng = np.random.default_rng(4)
    y = rng.normal(size=200)
    run = _choice_run(y)
    scored = run.protocol.scored
    noise = rng.normal(size=200)
    best = SimpleNamespace(key=run.key((y + noise)[scored]))
    mixed = (y + scale * noise)[scored]
    members = ["a", "b"]  # passed through as they are when kept
    kept, rule = search_module._clear_ensemble(run, best, members, mixed)
    folds = search_module._fold_scores(run, mixed)
    error = float(np.std(folds, ddof=1) / np.sqrt(len(folds)))
    assert rule["standard_error"] == pytest.approx(error)
    gain = best.key[0] - run.key(mixed)[0]
    assert gain > 0  # the mix scores better either way
    assert (gain > error) == (scale == 0.5)
    assert kept == (members if scale == 0.5 else [])


def test_without_an_ensemble_to_weigh_the_best_single_model_is_kept():
    run = _choice_run(np.arange(50.0))
    kept, rule = search_module._clear_ensemble(run, None, [], None)
    assert kept == [] and rule["standard_error"] is None


def test_a_kept_ensemble_beats_the_best_single_model_and_saves_like_any_model(tmp_path,
                                                                              monkeypatch):
    # no standard error: the best-scoring mix wins
    monkeypatch.setattr(evaluation.Protocol, "standard_error", lambda self, scores: 0.0)
    train, validation, features = _data("regression", rows=400)
    result = _search("regression", "r2", trials=14, data=(train, validation, features))
    assert result.ensemble is not None and result.family == "ensemble"
    assert result.score > result.best.score
    assert result.ensemble["best_single"]["score"] == result.best.score
    assert len(result.ensemble["members"]) >= 2
    assert sum(member["weight"] for member in result.ensemble["members"]) == pytest.approx(1,
                                                                                           abs=1e-3)
    assert isinstance(result.pipeline.named_steps["model"], EnsembleRegressor)
    bundle = ModelBundle(result.pipeline, "regression", "y", features, None, "r2",
                         result.metrics, "demo")
    save_bundle(bundle, tmp_path)
    predicted = predict_frame(load_bundle(tmp_path), validation.x)["predictions"]
    assert np.allclose(predicted, result.pipeline.predict(validation.x))


def _pool_run(y: np.ndarray, outputs: list[np.ndarray]):
    """What _cross_selected reads of a search: 5-fold protocol, labels, metric, pool."""
    from types import SimpleNamespace

    protocol = evaluation.plan(len(y), y, classification=False, seed=0)
    run = SimpleNamespace(protocol=protocol, y=y, task="regression", classes=None, positive=None,
                          metric=METRICS["r2"], tie_breaker=METRICS["mae"])
    pool = [SimpleNamespace(outputs=output[protocol.scored], number=index + 1)
            for index, output in enumerate(outputs)]
    return run, pool


def test_an_ensemble_is_judged_on_rows_its_weights_did_not_see():
    """Each fold's rows are predicted by the mix selected on the other folds' rows: changing
    one fold's labels leaves that fold's predictions as they were, and changes the others'."""
    rng = np.random.default_rng(3)
    y = rng.normal(size=150)
    outputs = [y + rng.normal(scale=scale, size=150) for scale in (0.6, 0.7, 0.9, 1.5)]
    run, pool = _pool_run(y, outputs)
    judged = search_module._cross_selected(run, pool)
    assert judged.shape == (150,)
    mixes = np.stack([item.outputs for item in pool])
    fold = run.protocol.views[0].score
    inside = np.isin(run.protocol.scored, fold)
    changed = y.copy()
    changed[fold] = -changed[fold]
    run_changed, pool_changed = _pool_run(changed, outputs)
    judged_changed = search_module._cross_selected(run_changed, pool_changed)
    assert np.array_equal(judged[inside], judged_changed[inside])
    assert not np.allclose(judged[~inside], judged_changed[~inside])
    # every prediction is a weighted mean of the candidates' (weights summing to 1)
    low, high = mixes.min(axis=0), mixes.max(axis=0)
    assert np.all((judged >= low - 1e-9) & (judged <= high + 1e-9))


def test_a_mix_that_only_fits_its_own_rows_is_not_kept(monkeypatch):
    """On noise, greedy selection finds a mix that beats the best single candidate on the rows
    it was chosen on; judged on rows its weights did not see, it does not, and is dropped."""
    # no standard error: the best-scoring mix wins
    monkeypatch.setattr(evaluation.Protocol, "standard_error", lambda self, scores: 0.0)
    rng = np.random.default_rng(5)
    rows = 200
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    y = rng.normal(size=rows)  # unrelated to the features
    data = (Split(frame[:150], y[:150]), Split(frame[150:].reset_index(drop=True), y[150:]),
            {"a": "numeric", "b": "numeric"})
    knn = Family("knn", lambda params, seed: KNeighborsRegressor(**params),
                 lambda rng: {"n_neighbors": rng.choice([3, 5, 9, 15, 25, 41])},
                 baseline={"n_neighbors": 5})
    selections = []  # the first is on all the rows, then one per fold's other rows
    select_all = search_module.select

    def spy(outputs, key):
        selections.append(select_all(outputs, key))
        return selections[-1]

    monkeypatch.setattr(search_module, "select", spy)
    result = _search("regression", "r2", hooks=_families(knn), trials=6, data=data)
    assert len(selections) == 1 + 5
    assert selections[0] is not None  # on all the rows, a mix beat the best single candidate
    assert result.ensemble is None and result.family == "knn"


def test_ctrl_c_keeps_the_best_candidate_so_far():
    calls = itertools.count(1)

    def build(params, seed):
        if next(calls) == 8:  # the second candidate's third fold
            raise KeyboardInterrupt
        return LogisticRegression(**params)

    family = Family("interrupted", build, lambda rng: {"C": 10 ** rng.uniform(-2, 2)},
                    baseline={"C": 1.0})
    result = _search(hooks=_families(family), trials=5)
    assert result.interrupted and result.stopped_by == "interrupted"
    assert len(result.trials) == 1 and result.best.params == {"C": 1.0}
    assert result.ensemble is None
    assert result.pipeline.predict_proba(_data("binary-classification")[1].x).shape[1] == 2


def test_ctrl_c_before_any_candidate_is_scored_keeps_nothing():
    def build(params, seed):
        raise KeyboardInterrupt

    family = Family("never", build, lambda rng: {}, baseline={})
    with pytest.raises(KeyboardInterrupt):
        _search(hooks=_families(family))


def test_every_candidate_failing_is_one_error():
    def build(params, seed):
        raise ValueError("no good")

    family = Family("failing", build, lambda rng: {"x": random.random()}, baseline={})
    with pytest.raises(DataError, match="every candidate failed; first error: no good"):
        _search(hooks=_families(family), trials=3)


def test_outcome_of_the_fast_scorer_is_the_metrics_outcome():
    scorer = Scorer("binary-classification", np.array([0, 1, 1]), np.array([0, 1]))
    outcome = scorer.outcome(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    assert isinstance(outcome, Outcome) and list(outcome.y_pred) == [0, 1, 0]
    assert scorer.value(METRICS["accuracy"], np.array([[0.9, 0.1], [0.2, 0.8],
                                                        [0.6, 0.4]])) == pytest.approx(2 / 3)


def test_a_forest_fits_small_data_on_one_thread_and_large_data_on_its_pool():
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    small = search_module.PARALLEL_FIT_ROWS - 1
    forest = search_module._fit_threads(RandomForestClassifier(n_jobs=-1), small)
    assert forest.n_jobs == 1
    assert search_module._fit_threads(RandomForestClassifier(n_jobs=-1),
                                      small + 1).n_jobs == -1
    assert search_module._fit_threads(KNeighborsClassifier(), small).n_jobs is None
    ensemble = search_module._fit_threads(
        EnsembleClassifier([ExtraTreesClassifier(n_jobs=-1), LogisticRegression()], [1, 1]),
        small)
    assert ensemble.estimators[0].n_jobs == 1
    # the trees do not depend on the threads that grew them
    x, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    one, many = (RandomForestClassifier(n_estimators=20, random_state=3, n_jobs=jobs).fit(x, y)
                 for jobs in (1, 2))
    assert np.array_equal(one.predict_proba(x), many.predict_proba(x))


def test_native_thread_limits_scan_the_loaded_libraries_again_only_after_an_import(monkeypatch):
    threads = search_module._NativeThreads()
    with threads.one():
        first = threads.controller
    with threads.one():
        assert threads.controller is first
    monkeypatch.setitem(sys.modules, "a_module_imported_since", object())
    with threads.one():
        assert threads.controller is not first


_RIDGE = Family("ridge", lambda p, seed: Ridge(**p), lambda r: {"alpha": r.random()},
                baseline={"alpha": 1.0})
_KNN = Family("knn", lambda p, seed: KNeighborsRegressor(**p), lambda r: {},
              baseline={"n_neighbors": 5})


def _scored(family: Family, params: dict, key: tuple, number: int,
            outputs: np.ndarray | None = None, run=None) -> search_module._Scored:
    """A scored candidate as the search keeps it, with a given key (and predictions, and, given
    the run, the fold scores of those predictions as its per-fold scores)."""
    trial = search_module.Trial(family.name, params, None, 0.1)
    views = [] if run is None else search_module._fold_scores(run, outputs)
    return search_module._Scored(number, Candidate(family, params), trial, key, views, 0.1,
                                 outputs)


@pytest.mark.parametrize("scale", [0.97, 0.5])
def test_the_first_default_within_one_standard_error_of_the_best_is_chosen(scale):
    """Ridge with a tuned alpha scoring a little better than the default alpha (noise 0.97
    against 1.0) is within the error of its fold scores: the default is chosen. Much better
    (0.5): the tuned setting is kept. Among defaults within the error of the best default (here
    a later family's, with noise of its own), the first family's."""
    rng = np.random.default_rng(4)
    y = rng.normal(size=200)
    run = _choice_run(y)
    scored = run.protocol.scored
    noise, own = rng.normal(size=200), rng.normal(size=200)

    def candidate(family: Family, params: dict, output: np.ndarray,
                  number: int) -> search_module._Scored:
        return _scored(family, params, run.key(output[scored]), number, output[scored], run)

    default = candidate(_RIDGE, {"alpha": 1.0}, y + noise, 1)
    later = candidate(_KNN, {"n_neighbors": 5}, y + 0.97 * own, 2)  # scores a little better
    tuned = candidate(_RIDGE, {"alpha": 0.02}, y + scale * noise, 3)
    run.scored = [default, later, tuned]
    rule = {"rule": "the best single model"}
    chosen = search_module._first_default_within_error(run, tuned, rule)
    error = search_module._shuffles_standard_error(run, tuned.outputs)
    assert (default.key[0] - tuned.key[0] > error) == (scale == 0.5)
    assert chosen is (tuned if scale == 0.5 else default)
    assert rule.get("set_aside", {}).get("params") == (None if scale == 0.5 else {"alpha": 0.02})
    assert "the first family's default settings within one standard error" in rule["rule"]
    # the figures behind the choice: the best default, and the tuned candidate's lead over it
    assert rule["best_default"] == {"family": "knn", "score": later.trial.score}
    assert list(rule["defaults"]) == ["ridge", "knn"] and rule["best_standard_error"] == error
    assert rule["lead_in_errors"] == pytest.approx((later.key[0] - tuned.key[0]) / error,
                                                   abs=1e-3)
    assert (rule["lead_in_errors"] > 1) == (scale == 0.5) and rule["tuned_scored"] == 1
    if scale == 0.5:  # what train says about it
        assert search_module._kept_tuned_line(run, tuned, rule) == (
            "chose ridge with tuned settings (alpha=0.02): it beats the best default, knn, by "
            f"{rule['lead_in_errors']:.2f} standard errors")
    if scale != 0.5:  # within one standard error of its fold-by-fold difference from knn
        assert 0 < default.key[0] - later.key[0] <= rule["paired_errors"]["ridge"]
    # a later family's default scoring best gives way to the first's within the error
    assert later.key[0] < default.key[0]
    assert search_module._first_default_within_error(run, later, {"rule": ""}) is default
    # without a scored default, the best stays
    run.scored = [tuned]
    assert search_module._first_default_within_error(run, tuned, {"rule": ""}) is tuned


def test_a_default_behind_the_best_default_on_every_fold_is_outside_the_window():
    """The window around the best default is one standard error of each other default's
    fold-by-fold difference from it, not of its own fold scores: folds that are hard for both
    move both. Here ridge errs like knn, a little more on every fold: within one standard error
    of knn's fold scores, far outside one of the difference, so knn is chosen. Measured with
    tests/bench/bench_quality.py on wine, where extra trees led logistic regression by a row or
    two on most folds, and the unpaired window chose logistic regression 1.2% below."""
    rng = np.random.default_rng(4)
    y = rng.normal(size=200)
    run = _choice_run(y)
    scored, noise = run.protocol.scored, rng.normal(size=200)

    def candidate(family: Family, params: dict, scale: float,
                  number: int) -> search_module._Scored:
        output = (y + scale * noise)[scored]
        return _scored(family, params, run.key(output), number, output, run)

    first = candidate(_RIDGE, {"alpha": 1.0}, 1.0, 1)
    best = candidate(_KNN, {"n_neighbors": 5}, 0.97, 2)
    run.scored = [first, best]
    rule = {"rule": ""}
    gap = first.key[0] - best.key[0]
    assert 0 < gap <= search_module._shuffles_standard_error(run, best.outputs)
    assert search_module._first_default_within_error(run, best, rule) is best
    assert 0 < rule["paired_errors"]["ridge"] < gap
    assert rule["paired_errors"]["ridge"] == search_module._paired_error(run, best, first, 1.0)
    # without per-fold scores to pair, the best default's own error is the window
    first.view_scores = []
    assert search_module._first_default_within_error(run, best, {"rule": ""}) is first


def test_without_a_spread_across_folds_the_figures_are_kept_and_ties_go_to_the_second_metric():
    """A candidate that scores the same on every fold (here perfectly) has no standard error,
    so no window: the best candidate stays (exact ties broken by the second metric, as in
    test_ties_go_to_the_better_second_metric). The figures behind the choice are recorded all
    the same, and train says why tuned settings were kept, without a lead in errors."""
    y = np.random.default_rng(6).normal(size=200)
    run = _choice_run(y)
    perfect = y[run.protocol.scored]
    assert search_module._shuffles_standard_error(run, perfect) == 0
    default = _scored(_RIDGE, {"alpha": 1.0}, (-1.0, 0.02), 1, perfect)
    knn = _scored(_KNN, {"n_neighbors": 5}, (-1.0, 0.01), 2, perfect)
    tuned = _scored(_RIDGE, {"alpha": 0.02}, (-1.0, 0.0), 3, perfect)
    run.scored = [default, knn, tuned]
    rule = {"rule": ""}
    assert search_module._first_default_within_error(run, tuned, rule) is tuned
    assert rule["best_standard_error"] == 0 and rule["lead_in_errors"] is None
    assert list(rule["defaults"]) == ["ridge", "knn"] and rule["tuned_scored"] == 1
    assert rule["best_default"]["family"] == "knn" and "set_aside" not in rule
    assert search_module._kept_tuned_line(run, tuned, rule) == (
        "chose ridge with tuned settings (alpha=0.02): it ties the best default, knn, with the "
        f"same {run.metric.name} on every fold, and leads it on {run.tie_breaker.name}")
    default.key, knn.key = (-0.9, 0.1), (-0.95, 0.1)
    assert search_module._kept_tuned_line(run, tuned, rule) == (
        "chose ridge with tuned settings (alpha=0.02): it beats the best default, knn, with the "
        "same score on every fold")


def test_the_set_aside_line_names_the_second_metric_when_the_best_tied_on_the_first():
    y = np.random.default_rng(5).normal(size=200)
    run = _choice_run(y)
    default = _scored(_RIDGE, {"alpha": 1.0}, (0.30, 0.5), 1)
    top = _scored(_KNN, {"n_neighbors": 5}, (0.20, 0.4), 2)
    run.scored = [default, top]
    line = search_module._set_aside_line(run, default, top)
    assert line == ("chose ridge with its default settings: within one standard error of the "
                    "best-scoring knn (n_neighbors=5)")
    run.scored.append(_scored(_RIDGE, {"alpha": 0.5}, (0.20, 0.45), 3))
    line = search_module._set_aside_line(run, default, top)
    assert line.endswith(f"; knn is ahead of 1 other with the same {run.metric.name} on "
                         f"{run.tie_breaker.name}")


def test_the_defaults_window_is_measured_from_the_best_default_not_the_best_of_many():
    """The best of many tuned settings scores high by luck. Here a tuned ridge leads the best
    default (a later family's) by less than one standard error, and the first family's default
    is more than one error below the tuned one but within one of the best default (of their
    fold-by-fold difference; its errors are its own): the first family's default is chosen, as it
    would be had the tuned settings never been tried."""
    rng = np.random.default_rng(4)
    y = rng.normal(size=200)
    run = _choice_run(y)
    scored, noise, own = run.protocol.scored, rng.normal(size=200), rng.normal(size=200)

    def candidate(family: Family, params: dict, output: np.ndarray,
                  number: int) -> search_module._Scored:
        return _scored(family, params, run.key(output[scored]), number, output[scored], run)

    first = candidate(_RIDGE, {"alpha": 1.0}, y + 0.8 * own, 1)
    best_default = candidate(_KNN, {"n_neighbors": 5}, y + 0.745 * noise, 2)
    tuned = candidate(_RIDGE, {"alpha": 0.02}, y + 0.72 * noise, 3)
    run.scored = [first, best_default, tuned]
    error = search_module._shuffles_standard_error(run, tuned.outputs)
    assert first.key[0] - tuned.key[0] > error  # outside a window measured from the tuned
    assert best_default.key[0] - tuned.key[0] <= error  # the tuned does not clearly lead
    paired = search_module._paired_error(run, best_default, first, error)
    assert 0 < first.key[0] - best_default.key[0] <= paired
    rule = {"rule": "the best single model"}
    assert search_module._first_default_within_error(run, tuned, rule) is first
    assert rule["set_aside"] == {"family": "ridge", "params": {"alpha": 0.02},
                                 "standard_error": error}
    assert search_module._set_aside_line(run, first, tuned) == (
        "chose ridge with its default settings: the best-scoring ridge (alpha=0.02) beats the "
        "best default, knn, by less than one standard error, and ridge is within one of it")
    assert search_module._set_aside_line(run, best_default, tuned) == (
        "chose knn with its default settings: the best-scoring ridge (alpha=0.02) beats the "
        "best default, knn, by less than one standard error")


def test_progress_rows_keep_their_columns_whatever_the_candidate_s_end():
    from types import SimpleNamespace

    run = SimpleNamespace(metric=get_metric("balanced_accuracy", "multiclass-classification"),
                          protocol=SimpleNamespace(views=[0] * 5), trials=[None] * 12,
                          clock=search_module._Clock(30))
    trials = {
        "scored": search_module.Trial("extra_trees", {}, 0.81234, 1.0),
        "pruned": search_module.Trial("support_vector_machine", {}, None, 1.0, views=1,
                                      pruned=True, partial_score=0.5),
        "failed": search_module.Trial("k_nearest_neighbors", {}, None, 1.0, error="boom"),
    }
    rows = {name: search_module._line(run, trial, name == "scored")
            for name, trial in trials.items()}
    clock = {name: row.index("s/30s") for name, row in rows.items()}
    assert len(set(clock.values())) == 1, rows  # the clock's column is the same on every row
    assert rows["scored"].endswith("  * best")
    assert rows["pruned"].endswith("  stopped after 1/5 folds")
    assert "balanced_accuracy=0.5000 " in rows["pruned"]
    assert rows["failed"].endswith("  failed: boom")


def test_defaults_tied_exactly_are_told_apart_by_their_rank_fold_by_fold():
    """Logistic regression (first in family order) and extra trees pool to the same accuracy;
    extra trees ranks better among the defaults fold by fold, so it is chosen."""
    from types import SimpleNamespace

    def scored(number: int, family: str, views: list[float | None]) -> object:
        mean = float(np.mean([v for v in views if v is not None]))
        return SimpleNamespace(number=number, key=(-mean, 0.0), view_scores=views,
                               trial=SimpleNamespace(family=family))

    run = SimpleNamespace(metric=get_metric("accuracy", "multiclass-classification"))
    linear = scored(1, "logistic_regression", [0.8, 0.9, 1.0])
    trees = scored(2, "extra_trees", [1.0, 0.9, 0.8])
    neighbours = scored(3, "k_nearest_neighbors", [0.85, 0.95, 0.75])
    rule: dict = {}
    chosen = search_module._best_ranked_of_ties(run, [linear, trees, neighbours], linear, rule)
    # ranks per fold: trees 1, 2.5, 2 (mean 1.83); linear 3, 2.5, 1 (2.17)
    assert chosen is trees
    assert rule["fold_ranks"] == {"logistic_regression": 2.167, "extra_trees": 1.833}
    # no exact tie, or a fold without a score: the window's pick stays
    untied = scored(2, "extra_trees", [1.0, 0.9, 0.81])
    assert search_module._best_ranked_of_ties(run, [linear, untied, neighbours], linear,
                                              {}) is linear
    unscored = scored(2, "extra_trees", [1.0, None, 0.8])
    unscored.key = linear.key
    assert search_module._best_ranked_of_ties(run, [linear, unscored, neighbours], linear,
                                              {}) is linear
