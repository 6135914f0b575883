#!/usr/bin/env python3
"""Replay how train chooses among the families' default settings, and how other rules would.

After cross-validation, train keeps a tuned candidate only if it beats every default clearly;
otherwise it chooses among the families' defaults (scaffolder/lifecycle/search.py,
``_first_default_within_error``). bench_quality.py measures that inside the whole search, at
30 s per fold: most of an hour for a few data sets, with tuned candidates and ensembles in the
way. This script isolates the choice among the defaults. On the benchmark's own splits
(bench_quality.split), it scores every family's default settings as train does (the protocol
of scaffolder/lifecycle/evaluation.py: its folds and shuffles, the project's preprocessing and
metric, a row's prediction the mean over the shuffles), refits each on train + validation and
scores it on the test rows. Each rule's pick is then compared with the benchmark's bar: the
best plain default on the test rows (bench_quality.run_defaults, an oracle).

Rules (each sees only the cross-validation, never the test rows):

* ``window``: train's rule. The first family's default (families in train's order, linear
  first) that scores within one standard error of the best default, the standard error of the
  two defaults' fold-by-fold difference (per shuffle, averaged).
* ``unpaired``: the same, with the best default's own fold standard error as the window (train's
  rule before the paired window).
* ``best``: the best-scoring default (ties: the second metric, then family order).
* ``rank``: the default with the best mean rank over the folds.
* ``average``: every default in train's window (the best default and those within their paired
  error) averaged: the mean of their class probabilities, or of their predictions, on the test
  rows; with one default in the window, that default.
* ``ties``: the best default, averaged (as ``average``) with every default whose
  cross-validated metric equals its exactly: where the folds cannot tell them apart.
* ``window_ties``: train's pick, averaged with every default whose metric equals its exactly.
* ``window_rank``: train's pick, unless defaults tie it exactly on the metric: then, of those and
  the pick, the one with the best mean rank over the folds (ties: family order).

Prints, per data set and split, the bar and each rule's test score ("!" when more than 1% below
the bar), then how many pairs each rule leaves more than 1% below and its mean gap to the bar.
``--repeats`` draws the folds that many times instead of train's (to measure more shuffles).

Run: ``.venv/bin/python tests/bench/replay_defaults.py [--datasets wine,iris] [--splits 3]``.
A data set of a few hundred rows takes a minute or two per split on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import bench_quality as bench  # the benchmark's data sets, splits and bar

RULES = ("window", "unpaired", "best", "rank", "average", "ties", "window_ties", "window_rank")


@dataclass
class Default:
    """One family's default settings on one outer fold: how cross-validation saw it, and its
    test score after a refit on train + validation."""

    family: str
    key: tuple  # (metric, second metric) of the mean-over-shuffles predictions; lower is better
    views: list[float]  # the metric's sort key on each view (fold of a shuffle), lower is better
    error: float  # the standard error of its fold scores, per shuffle, averaged
    test: float
    test_output: np.ndarray | None = None  # class probabilities or predictions on the test rows


@dataclass
class Replayed:
    """The families' defaults on one outer fold, in train's family order."""

    defaults: list[Default]
    protocol: object  # mlscaffold.lifecycle.evaluation.Protocol: its folds and shuffles
    score_test: Callable[[np.ndarray], float] | None = None  # the metric of a test output


def score_defaults(parts: dict[str, pd.DataFrame], task: str, metric, seed: int,
                   families: list | None = None) -> Replayed:
    """Every family's default (or each of `families`') on one outer fold."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    from mlscaffold.lifecycle.evaluation import plan
    from mlscaffold.lifecycle.schema import build_preprocessor, coerce_features, infer_schema
    from mlscaffold.lifecycle.scoring import Scorer
    from mlscaffold.lifecycle.search import _tie_breaker
    from mlscaffold.lifecycle.search_space import families_for

    fit = pd.concat([parts["train"], parts["validation"]])
    features = infer_schema(parts["train"], bench.LABEL).features
    x = coerce_features(fit.drop(columns=[bench.LABEL]), features).reset_index(drop=True)
    x_test = coerce_features(parts["test"].drop(columns=[bench.LABEL]), features)
    y, y_test = fit[bench.LABEL].to_numpy(), parts["test"][bench.LABEL].to_numpy()
    classes = None if task == "regression" else np.unique(y)
    protocol = plan(len(parts["train"]), y, classes is not None, seed)
    if protocol.method != "cross-validation":
        raise SystemExit(f"{len(y)} rows are scored on a hold-out split, where train keeps the "
                         "best candidate: no defaults' rule to replay")
    second = _tie_breaker(task, metric)
    scored = Scorer(task, y[protocol.scored], classes)
    position = {row: index for index, row in enumerate(protocol.scored)}
    rows = [[position[row] for row in view.score] for view in protocol.views]  # in `scored`
    scorers = [Scorer(task, y[view.score], classes) for view in protocol.views]
    tested = Scorer(task, y_test, classes)
    found = []
    for family in families or families_for(task):
        pipeline = Pipeline([("preprocess", build_preprocessor(features)),
                             ("model", family.build(family.baseline, seed))])
        outputs = []
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            for view in protocol.views:
                fitted = clone(pipeline).fit(x.iloc[view.fit], y[view.fit])
                outputs.append(bench._output(fitted, x.iloc[view.score], task)[0])
            test = bench._output(clone(pipeline).fit(x, y), x_test, task)[0]
        mean = np.zeros((len(protocol.scored), *outputs[0].shape[1:]))
        for view_rows, output in zip(rows, outputs, strict=True):
            mean[view_rows] += output / protocol.repeats  # a row's mean over the shuffles
        views = [metric.sort_key(scorer.value(metric, output))
                 for scorer, output in zip(scorers, outputs, strict=True)]
        folds = [metric.sort_key(scorer.value(metric, mean[view_rows]))
                 for scorer, view_rows in zip(scorers, rows, strict=True)]
        found.append(Default(
            family.name,
            (metric.sort_key(scored.value(metric, mean)), second.sort_key(scored.value(second,
                                                                                       mean))),
            views, protocol.standard_error(folds), tested.value(metric, test), test))
    return Replayed(found, protocol, lambda output: tested.value(metric, output))


def choose(replayed: Replayed, rule: str) -> Default:
    """The default that `rule` picks."""
    defaults = replayed.defaults
    best = min(defaults, key=lambda item: item.key)  # min keeps the first of equal keys
    if rule == "best":
        return best
    if rule == "rank":
        from scipy.stats import rankdata

        ranks = rankdata([item.views for item in defaults], axis=0).mean(axis=1)
        return defaults[int(np.argmin(ranks))]  # ties: the first family
    if rule == "window_rank":
        from scipy.stats import rankdata

        pick = choose(replayed, "window")
        ranks = rankdata([item.views for item in defaults], axis=0).mean(axis=1)
        members = [index for index, item in enumerate(defaults) if item.key[0] == pick.key[0]]
        return defaults[min(members, key=lambda index: (ranks[index], index))]
    if rule not in ("window", "unpaired"):
        raise ValueError(f"{rule} scores a mix, not one default: use score_of")
    return within_window(replayed, paired=rule == "window")[0]


def within_window(replayed: Replayed, paired: bool = True) -> list[Default]:
    """The defaults within one standard error of the best default, in family order: of their
    fold-by-fold difference from it (`paired`, train's window) or of its own fold scores.
    Only the best default when its folds all scored alike (train keeps it: no window)."""
    best = min(replayed.defaults, key=lambda item: item.key)
    if best.error <= 0:
        return [best]
    return [item for item in replayed.defaults if item is best or item.key[0] <= best.key[0] + (
        replayed.protocol.standard_error([a - b for a, b in zip(item.views, best.views,
                                                                 strict=True)])
        if paired else best.error)]


def tied(replayed: Replayed, pick: Default | None = None) -> list[Default]:
    """The defaults whose cross-validated metric equals `pick`'s (the best default's) exactly."""
    pick = pick or min(replayed.defaults, key=lambda item: item.key)
    return [item for item in replayed.defaults if item.key[0] == pick.key[0]]


def score_of(replayed: Replayed, rule: str) -> float:
    """The test score of what `rule` picks: one default's, or the window's average's."""
    if rule not in ("average", "ties", "window_ties"):
        return choose(replayed, rule).test
    members = (within_window(replayed) if rule == "average" else tied(replayed) if rule == "ties"
               else tied(replayed, choose(replayed, "window")))
    if len(members) == 1:
        return members[0].test
    return replayed.score_test(np.mean([item.test_output for item in members], axis=0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="wine,iris,diabetes,breast_cancer",
                        help="comma-separated names (default: wine,iris,diabetes,breast_cancer)")
    parser.add_argument("--splits", type=int, default=3, help="splits per data set (default: 3)")
    parser.add_argument("--repeats", type=int,
                        help="shuffles of the folds (default: train's, for the data's size)")
    args = parser.parse_args(argv)
    if args.splits < 1 or (args.repeats is not None and args.repeats < 1):
        parser.error("--splits and --repeats must be positive")
    from mlscaffold import catalog
    from mlscaffold.lifecycle import evaluation
    from mlscaffold.lifecycle.metrics import get_metric

    available = {dataset.name: dataset for dataset in bench.datasets()}
    unknown = sorted(set(args.datasets.split(",")) - set(available))
    if unknown:
        parser.error(f"unknown or unavailable data sets: {', '.join(unknown)}; choose from "
                     f"{', '.join(available)}")
    if args.repeats is not None:  # plan() reads the module's setting when it is called
        evaluation.REPEATS, evaluation.REPEATS_MAX_ROWS = args.repeats, evaluation.CV_MAX_ROWS
    gaps: dict[str, list[tuple[str, float, bool]]] = {rule: [] for rule in RULES}
    for name in args.datasets.split(","):
        dataset = available[name]
        metric = get_metric(catalog.TASKS[dataset.task].default_metric, dataset.task)
        for seed in range(args.splits):
            folds = bench.split(dataset, seed)
            bar = bench.combine([bench.run_defaults(parts, dataset.task, metric, seed)
                                 for parts in folds], metric).test
            scored = [score_defaults(parts, dataset.task, metric, seed) for parts in folds]
            line = f"{name:<20}{seed:>3}  bar {bar:.4f}"
            for rule in RULES:
                test = float(np.mean([score_of(replayed, rule) for replayed in scored]))
                below = test < bar - bench.BELOW_DEFAULT_LIMIT * abs(bar)
                gaps[rule].append((f"{name}/{seed}", test - bar, below))
                line += f" | {rule} {test:.4f}{'!' if below else ' '}"
            print(line, flush=True)
    print()
    for rule, rows in gaps.items():
        below = [pair for pair, _, is_below in rows if is_below]
        print(f"{rule:<9} more than 1% below the bar: {len(below)} of {len(rows)} "
              f"({', '.join(below) or 'none'}); mean gap {np.mean([g for _, g, _ in rows]):+.4f}")


if __name__ == "__main__":
    main()
