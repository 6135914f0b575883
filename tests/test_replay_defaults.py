"""The defaults' replay (tests/bench/replay_defaults.py): its rules pick as train's rule and its
alternatives say, and it scores defaults with train's protocol."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlscaffold.lifecycle.evaluation import plan
from mlscaffold.lifecycle.metrics import get_metric
from mlscaffold.lifecycle.search_space import families_for

_SPEC = importlib.util.spec_from_file_location(
    "replay_defaults", Path(__file__).parent / "bench" / "replay_defaults.py")
replay = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = replay  # its dataclasses look their module up
_SPEC.loader.exec_module(replay)
bench = replay.bench  # the quality benchmark it imports: data sets, splits, the bar


# 5 stratified folds drawn 3 times, as train plans them for 100 rows
_PROTOCOL = plan(80, np.arange(100) % 2, True, seed=0)


def _default(family: str, views: list[float], test: float) -> object:
    """A default whose fold scores (sort keys: lower is better) are `views`, 5 folds a shuffle."""
    score = float(np.mean(views))
    return replay.Default(family, (score, 0.0), views, _PROTOCOL.standard_error(views), test)


def _replayed(*defaults) -> object:
    return replay.Replayed(list(defaults), _PROTOCOL)


def test_a_default_behind_the_best_on_every_fold_is_outside_the_paired_window_only():
    spread = [-0.99, -0.93, -0.97, -0.91, -0.95] * 3  # the best default: hard and easy folds
    behind = [value + 0.01 for value in spread]  # 0.01 behind on every fold
    replayed = _replayed(_default("first", behind, 0.90), _default("second", spread, 0.95))
    assert replay.choose(replayed, "unpaired").family == "first"  # within its fold error
    assert replay.choose(replayed, "window").family == "second"  # the difference never varies
    assert replay.choose(replayed, "best").family == "second"
    assert replay.choose(replayed, "rank").family == "second"


def test_the_window_takes_the_first_family_among_noisy_near_ties():
    best = [-0.99, -0.93, -0.97, -0.91, -0.95] * 3
    noisy = [-0.93, -0.99, -0.91, -0.97, -0.94] * 3  # 0.002 lower on average, fold by fold noise
    replayed = _replayed(_default("first", noisy, 0.97), _default("second", best, 0.95))
    assert replay.choose(replayed, "window").family == "first"
    assert replay.choose(replayed, "unpaired").family == "first"
    assert replay.choose(replayed, "best").family == "second"


def test_without_a_fold_error_the_best_default_stays():
    perfect = [-1.0] * 15
    replayed = _replayed(_default("first", [-0.99] * 15, 0.9), _default("second", perfect, 1.0))
    for rule in replay.RULES:
        assert replay.score_of(replayed, rule) == 1.0
    assert replay.choose(replayed, "window").family == "second"


def test_the_average_mixes_the_windows_defaults_on_the_test_rows():
    best = [-0.99, -0.93, -0.97, -0.91, -0.95] * 3
    noisy = [-0.93, -0.99, -0.91, -0.97, -0.94] * 3  # within the window
    behind = [value + 0.05 for value in best]  # 0.05 behind on every fold: outside
    outputs = {"first": np.array([[0.9, 0.1], [0.4, 0.6]]),
               "second": np.array([[0.3, 0.7], [0.2, 0.8]]),
               "third": np.array([[0.0, 1.0], [0.0, 1.0]])}
    defaults = [_default(name, views, 0.0) for name, views in
                (("first", noisy), ("second", best), ("third", behind))]
    for item in defaults:
        item.test_output = outputs[item.family]
    mixed = []
    replayed = replay.Replayed(defaults, _PROTOCOL, lambda output: mixed.append(output) or 0.5)
    assert [item.family for item in replay.within_window(replayed)] == ["first", "second"]
    assert replay.score_of(replayed, "average") == 0.5
    np.testing.assert_allclose(mixed[0], [[0.6, 0.4], [0.3, 0.7]])  # first and second only
    with pytest.raises(ValueError, match="score_of"):
        replay.choose(replayed, "average")


def test_the_tie_rules_mix_only_defaults_of_exactly_the_same_metric():
    best = [-0.99, -0.93, -0.97, -0.91, -0.95] * 3
    shuffled = [-0.93, -0.99, -0.91, -0.97, -0.95] * 3  # the same mean, other folds
    near = [-0.93, -0.99, -0.91, -0.97, -0.94] * 3  # 0.002 lower: in the window, not tied
    defaults = [_default(name, views, 0.0) for name, views in
                (("near", near), ("first", best), ("second", shuffled))]
    defaults[2].key = (defaults[1].key[0], 1.0)  # tied on the metric, behind on the second
    for item, output in zip(defaults, ([[1.0, 0.0]], [[0.2, 0.8]], [[0.4, 0.6]]), strict=True):
        item.test_output = np.array(output)
    mixed = []
    replayed = replay.Replayed(defaults, _PROTOCOL, lambda output: mixed.append(output) or 0.5)
    assert [item.family for item in replay.tied(replayed)] == ["first", "second"]
    assert replay.score_of(replayed, "ties") == 0.5
    np.testing.assert_allclose(mixed[-1], [[0.3, 0.7]])
    assert replay.choose(replayed, "window").family == "near"  # train's pick: tied with none
    assert replay.score_of(replayed, "window_ties") == 0.0  # its own test score, unmixed


def test_rank_takes_the_default_best_on_most_folds():
    wins_most = [-0.96, -0.96, -0.96, -0.96, -0.80] * 3  # best on four folds of five
    steady = [-0.95] * 15
    replayed = _replayed(_default("steady", steady, 0.95), _default("spiky", wins_most, 0.9))
    assert replay.choose(replayed, "best").family == "steady"  # the better mean
    assert replay.choose(replayed, "rank").family == "spiky"


def test_defaults_are_scored_with_trains_protocol_on_a_small_data_set():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame[bench.LABEL] = (x[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int)
    (parts,) = bench.split(bench.Dataset("made", "binary-classification", frame), seed=0,
                           outer_folds=1)
    metric = get_metric("roc_auc", "binary-classification")
    families = families_for("binary-classification")[:2]
    replayed = replay.score_defaults(parts, "binary-classification", metric, 0, families)
    assert (replayed.protocol.folds, replayed.protocol.repeats) == (5, 3)
    assert [item.family for item in replayed.defaults] == [family.name for family in families]
    for item in replayed.defaults:
        assert len(item.views) == 15  # under 500 rows: 5 folds, shuffled 3 times
        assert item.key[0] == pytest.approx(np.mean(item.views), abs=0.05)  # -roc_auc
        assert item.error > 0
        assert 0.5 < item.test <= 1.0  # the signal in column a is learnt
        assert replayed.score_test(item.test_output) == item.test
    assert replay.choose(replayed, "window") in replayed.defaults


def test_the_replay_refuses_unknown_data_sets(capsys):
    with pytest.raises(SystemExit) as exit_info:
        replay.main(["--datasets", "wine,nonesuch"])
    assert exit_info.value.code == 2
    assert "nonesuch" in capsys.readouterr().err


def test_the_window_replays_the_choice_train_makes_among_its_defaults():
    """train's search, stopped after the families' defaults (they run first, in family order),
    records the same scores, errors and windows as the replay, and chooses what it picks."""
    from sklearn.datasets import load_iris

    from mlscaffold.lifecycle.hooks import ProjectHooks
    from mlscaffold.lifecycle.schema import coerce_features, infer_schema
    from mlscaffold.lifecycle.search import Split, search

    task = "multiclass-classification"
    frame = load_iris(as_frame=True).frame.rename(columns={"target": bench.LABEL})
    parts = bench.split(bench.Dataset("iris", task, frame), seed=0)[0]
    metric = get_metric("f1", task)
    families = families_for(task)[:3]  # the quick ones: linear, neighbours, SVM
    replayed = replay.score_defaults(parts, task, metric, 0, families)

    features = infer_schema(parts["train"], bench.LABEL).features
    train, validation = (Split(coerce_features(parts[name].drop(columns=[bench.LABEL]),
                                               features),
                               parts[name][bench.LABEL].to_numpy())
                         for name in ("train", "validation"))
    hooks = ProjectHooks(functions={"candidates": lambda task: list(families)})
    result = search(train, validation, features, task, metric, None, 0, lambda line: None,
                    hooks, trials=len(families))
    choice = result.protocol["choice"]

    assert [trial.family for trial in result.trials] == [item.family for item in replayed.defaults]
    for item in replayed.defaults:
        assert metric.sort_key(choice["defaults"][item.family]) == pytest.approx(item.key[0])
    best = min(replayed.defaults, key=lambda item: item.key)
    assert choice["best_default"]["family"] == best.family
    assert choice["best_standard_error"] == pytest.approx(best.error)
    for item in replayed.defaults:
        if item is not best:
            assert choice["paired_errors"][item.family] == pytest.approx(
                replayed.protocol.standard_error([a - b for a, b in zip(item.views, best.views,
                                                                        strict=True)]))
    assert result.family == replay.choose(replayed, "window_rank").family
