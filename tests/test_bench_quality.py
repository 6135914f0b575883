"""The quality benchmark's splits and scores (tests/bench/bench_quality.py): a small data set is
scored over outer folds that test every row once, without leaking a test row into training."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlscaffold.lifecycle.metrics import get_metric

_PATH = Path(__file__).parent / "bench" / "bench_quality.py"
_SPEC = importlib.util.spec_from_file_location("bench_quality", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # its dataclasses look their module up
_SPEC.loader.exec_module(bench)


def _dataset(rows: int, task: str) -> bench.Dataset:
    frame = pd.DataFrame({"x": range(rows), bench.LABEL: [i % 3 for i in range(rows)]})
    return bench.Dataset("made", task, frame)


@pytest.mark.parametrize("task", ["multiclass-classification", "regression"])
def test_a_small_data_set_is_tested_once_per_row_over_outer_folds(task):
    dataset = _dataset(150, task)
    folds = bench.split(dataset, seed=1)
    assert len(folds) == bench.OUTER_FOLDS
    tested = [index for parts in folds for index in parts["test"].index]
    assert sorted(tested) == list(range(150))  # every row once
    for parts in folds:
        seen = [set(parts[name].index) for name in ("train", "validation", "test")]
        assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
        assert sum(map(len, seen)) == 150
        assert len(parts["validation"]) == pytest.approx(len(parts["train"]) / 3, abs=1)
    if task != "regression":  # stratified: each fold's test holds every class alike
        assert all(parts["test"][bench.LABEL].value_counts().tolist() == [10, 10, 10]
                   for parts in folds)


def test_a_large_data_set_or_one_outer_fold_keeps_one_holdout_split():
    assert len(bench.split(_dataset(bench.SMALL_ROWS, "regression"), seed=0)) == 1
    (parts,) = bench.split(_dataset(150, "regression"), seed=0, outer_folds=1)
    assert [len(parts[name]) for name in ("train", "validation", "test")] == [90, 30, 30]


def test_a_split_scored_over_folds_takes_means_and_the_best_mean_default():
    metric = get_metric("r2", "regression")
    ours = [bench.Score(0.5, 0.6, "ridge (9 tried)", 2.0),
            bench.Score(0.7, None, "ridge (9 tried)", 4.0),
            bench.Score(0.6, 0.7, "lasso (3 tried)", 3.0)]
    combined = bench.combine(ours, metric)
    assert combined.test == pytest.approx(0.6)
    assert combined.estimate is None  # one fold without an estimate: no mean of the rest
    assert combined.seconds == pytest.approx(3.0)
    assert combined.detail == "ridge (9 tried) x2, lasso (3 tried)"
    # the best default is the one best on average, not the best of each fold
    defaults = [bench.Score(0.9, None, "a", 1.0, {"a": 0.9, "b": 0.6}),
                bench.Score(0.8, None, "b", 1.0, {"a": 0.1, "b": 0.8})]
    best = bench.combine(defaults, metric)
    assert (best.detail, best.test) == ("b", pytest.approx(0.7))
    assert best.scores == {"a": pytest.approx(0.5), "b": pytest.approx(0.7)}
    assert bench.combine(ours[:1], metric) is ours[0]


def _row(ours: list[float], best: list[float], picked: str | None = None) -> dict:
    """A saved pair of a run: ours and the best default ("ridge") per outer fold; `picked`, the
    default the folds' cross-validations picked (runs before it saved none)."""
    folds = [{"scores": {"ridge": score, "lasso": 0.45}, "picked": picked} for score in best]
    return {"dataset": "made", "task": "regression", "split": 1, "folds": len(ours),
            "metric": "r2", "test_rows": 50 * len(ours),
            "ours": {"test": sum(ours) / len(ours), "estimate": 0.5, "detail": "ridge",
                     "seconds": 3.0},
            "ours_folds": [{"test": score} for score in ours], "flaml": None,
            "default": {"test": sum(best) / len(best), "detail": "ridge",
                        "scores": {"ridge": sum(best) / len(best), "lasso": 0.45}},
            "default_folds": folds}


def test_a_pair_below_the_best_default_is_listed_with_its_gap_and_fold_error():
    # per-fold differences -0.04, 0.0, -0.02 from a best default of 0.5: mean -4%, SE 2.3%
    row = _row([0.46, 0.5, 0.48], [0.5, 0.5, 0.5])
    assert bench._below_text(row) == "made/1 -4.0% [fold SE 2.3%]"
    single = _row([0.46], [0.5])
    assert bench._below_text(single) == "made/1 -8.0%"  # one holdout split: no fold error
    totals = bench._totals([row, _row([0.5, 0.5], [0.5, 0.5])], tie=0.001)
    assert "more than 1% below the best default: 1 (made/1 -4.0% [fold SE 2.3%]) -> MISSED" \
        in totals


def test_a_saved_run_is_reported_again_without_running(tmp_path, capsys):
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps([_row([0.5, 0.5], [0.5, 0.5])]))
    bench.main(["--report", str(saved)])
    printed = capsys.readouterr().out
    assert printed.startswith("made ")
    assert "more than 1% below the best default: 0 (none) -> met" in printed


def test_the_default_a_cross_validation_picks_is_a_second_bar_when_the_run_saved_it():
    # ours 0.46 is 8% below the best default (ridge, 0.5) and 2.2% above lasso (0.45), which
    # the cross-validations picked: a pick itself 10% below the best default
    picked = bench._totals([_row([0.46], [0.5], picked="lasso")], tie=0.001)
    assert ("vs the default a 5-fold cross-validation on train + validation picks "
            "(diagnostic): 1 win, 0 tie, 0 loss; more than 1% below it: 0 (none); that pick "
            "more than 1% below the best default: 1 (made/1)") in picked
    assert "cross-validation on train" not in bench._totals([_row([0.46], [0.5])], tie=0.001)


def test_the_plain_defaults_pick_one_by_cross_validation_without_the_test_rows():
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns={"target": bench.LABEL})
    parts = bench.split(bench.Dataset("iris", "multiclass-classification", frame), seed=0)[0]
    metric = get_metric("f1", "multiclass-classification")
    score = bench.run_defaults(parts, "multiclass-classification", metric, seed=0)
    assert score.picked in score.scores
    # the pick ignores the test rows: spoiling their labels changes the scores, not the pick
    spoiled = {**parts, "test": parts["test"].assign(**{bench.LABEL: 0})}
    again = bench.run_defaults(spoiled, "multiclass-classification", metric, seed=0)
    assert again.picked == score.picked and again.scores != score.scores


def test_a_chosen_model_is_marked_tuned_unless_at_its_default_settings():
    def experiment(family: str, params: dict, ensemble: dict | None = None) -> dict:
        return {"task": "multiclass-classification", "family": family, "params": params,
                "ensemble": ensemble}

    assert bench.chosen(experiment("k_nearest_neighbors", {"n_neighbors": 5})) == \
        "k_nearest_neighbors"
    # the default spelled out is still the default
    assert bench.chosen(experiment("k_nearest_neighbors",
                                   {"n_neighbors": 5, "weights": "uniform"})) == \
        "k_nearest_neighbors"
    assert bench.chosen(experiment("extra_trees", {"n_estimators": 100, "max_depth": 20})) == \
        "extra_trees tuned"
    members = {"members": [{"family": "svm"}, {"family": "extra_trees"}, {"family": "svm"}]}
    assert bench.chosen(experiment("ensemble", {}, members)) == "ensemble:extra_trees+svm"
