#!/usr/bin/env python3
"""Benchmark the model search's quality against FLAML and the best plain scikit-learn default.

What it does, bounded in count and time:

1. Data sets that installed packages ship, no download: scikit-learn's bundled breast_cancer
   (binary), iris, wine and digits (multiclass) and diabetes (regression), california_housing if
   scikit-learn's cache already holds it, and mlscaffold's own messy sample data for each task
   (text categories, missing values, an ID column). Each is split ``--splits`` times (seeds 0,
   1, 2...) into train 60% / validation 20% / test 20%, stratified for classification.
   A data set under ``SMALL_ROWS`` rows would leave a test set of a few dozen rows, where one row
   is worth 2-3% of accuracy or macro f1: a per-split comparison against a 1% limit would measure
   the luck of one row. Such a data set is scored by outer cross-validation instead: for each
   split seed, ``--outer-folds`` stratified folds each serve once as the test set (the rest split
   75/25 into train and validation as above), every system runs once per fold, and the split's
   score is the mean over its folds, every row of the data set tested once.
2. For each data set and split, side by side and in alternating order under the same load:

   * ours: ``mlscaffold train --time T --seed S`` in a project holding the split, then
     ``mlscaffold evaluate`` on its test set;
   * FLAML (a peer to measure against, never a dependency): ``AutoML.fit`` on train +
     validation with the same metric, ``time_budget=T`` and ``seed=S``, its other settings left
     at their defaults, in its own virtual environment (default
     ``~/.cache/mlscaffold-bench/flaml-venv``, made on first use; or ``--flaml-python``);
   * plain defaults: scikit-learn's estimators with their default settings, each fitted on train
     + validation after mlscaffold's default preprocessing; the best of them on the test set (an
     oracle choice, so a hard bar; under outer cross-validation, the best mean over the folds).
     Beside it, as a diagnostic, the default that a 5-fold cross-validation on train +
     validation picks: what a plain workflow gets without looking at the test rows.

   Every test score is computed by the same code (mlscaffold.lifecycle.metrics), with the
   project's default metric of the task: roc_auc, macro f1, r2.
3. Prints one line per pair and the totals: ours against FLAML (win / tie / loss; a tie is a
   difference of at most ``--tie`` in the metric), ours against the best default (below it by
   more than 1%?), and the mean gap between each system's own validation estimate and its test
   score (how much selection overfits).

Run: ``.venv/bin/python tests/bench/bench_quality.py [--quick] [--time 30] [--splits 3]``.
``--quick`` uses a 10 s budget; ``--json F`` saves every result, ``--report F`` prints them
again. The machine's load changes how many candidates fit in the budget (both systems alike);
the winner of a pair on a few dozen test rows is partly luck.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

FLAML_REQUIREMENTS = ["flaml[automl]>=2.7,<2.8"]
INSTALL_TIMEOUT = 1800
LABEL = "target"
# the project's default metric of each task, and FLAML's name for it (its loss is 1 - score)
FLAML_METRIC = {"roc_auc": "roc_auc", "f1": "macro_f1", "r2": "r2"}
FLAML_TASK = {"binary-classification": "classification",
              "multiclass-classification": "classification", "regression": "regression"}
QUICK_SECONDS = 10.0
BELOW_DEFAULT_LIMIT = 0.01  # "never more than 1% below the best plain default"
CV_PICK_FOLDS = 5
# below this many rows, the 20% test split holds under 200 rows: scored by outer folds instead
SMALL_ROWS = 1000
OUTER_FOLDS = 5

FLAML_SCRIPT = """
import json, sys
import numpy as np, pandas as pd
from flaml import AutoML
fit_csv, test_csv, label, task, metric, budget, seed = sys.argv[1:8]
frame = pd.read_csv(fit_csv)
test = pd.read_csv(test_csv)
automl = AutoML()
automl.fit(frame.drop(columns=[label]), frame[label], task=task, metric=metric,
           time_budget=float(budget), seed=int(seed), verbose=0)
features = test.drop(columns=[label])
report = {"estimator": automl.best_estimator, "best_loss": float(automl.best_loss)}
if task == "classification":
    report["classes"] = np.asarray(automl.classes_).tolist()
    report["probabilities"] = np.asarray(automl.predict_proba(features)).tolist()
else:
    report["predictions"] = np.asarray(automl.predict(features), dtype=float).tolist()
print(json.dumps(report))
"""


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str
    frame: pd.DataFrame  # features and LABEL


@dataclass
class Score:
    test: float
    estimate: float | None  # the system's own validation estimate of the same metric
    detail: str  # what it chose
    seconds: float
    scores: dict[str, float] | None = None  # plain defaults: every estimator's test score
    # plain defaults: the one a cross-validation on train + validation picks (no test row seen)
    picked: str | None = None
    # ours: how train chose (experiment.json's selection.choice: the rule, the best default, a
    # tuned candidate's lead over it in standard errors)
    choice: dict | None = None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlscaffold-bench"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=30.0,
                        help="search budget of each system, seconds (default: 30)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a {QUICK_SECONDS:g} s budget (unless --time is given)")
    parser.add_argument("--splits", type=int, default=3, help="splits per data set (default: 3)")
    parser.add_argument("--datasets", help="comma-separated names (default: all available)")
    parser.add_argument("--outer-folds", type=int, default=OUTER_FOLDS,
                        help=f"outer folds of a data set under {SMALL_ROWS:,} rows (default: "
                             f"{OUTER_FOLDS}; 1 scores it on one holdout split like the others)")
    parser.add_argument("--tie", type=float, default=0.001,
                        help="largest difference counted as a tie (default: 0.001)")
    parser.add_argument("--flaml-python", type=Path,
                        help="python of an environment that has flaml[automl]")
    parser.add_argument("--skip-flaml", action="store_true", help="compare with defaults only")
    parser.add_argument("--cache-dir", type=Path, default=cache,
                        help=f"where the FLAML environment is made (default: {cache})")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="print the pairs and totals of a run saved with --json; run nothing")
    args = parser.parse_args(argv)
    if args.quick and "--time" not in (argv if argv is not None else sys.argv[1:]):
        args.time = QUICK_SECONDS
    if args.time <= 0 or args.splits < 1 or args.outer_folds < 1:
        parser.error("--time, --splits and --outer-folds must be positive")
    return args


# ------------------------------------------------------------------------------------ data sets


def datasets() -> list[Dataset]:
    """Every data set available without a download."""
    from sklearn import datasets as sk

    found = [
        Dataset("breast_cancer", "binary-classification", _frame(sk.load_breast_cancer())),
        Dataset("iris", "multiclass-classification", _frame(sk.load_iris())),
        Dataset("wine", "multiclass-classification", _frame(sk.load_wine())),
        Dataset("digits", "multiclass-classification", _frame(sk.load_digits())),
        Dataset("diabetes", "regression", _frame(sk.load_diabetes(scaled=False))),
    ]
    with contextlib.suppress(OSError):  # only if scikit-learn's cache holds it
        found.append(Dataset("california_housing", "regression",
                             _frame(sk.fetch_california_housing(download_if_missing=False))))
    for task in ("binary-classification", "multiclass-classification", "regression"):
        found.append(Dataset(f"sample_{task.split('-')[0]}", task, _sample(task)))
    return found


def _frame(bunch) -> pd.DataFrame:
    frame = pd.DataFrame(bunch.data, columns=[str(name) for name in bunch.feature_names])
    frame[LABEL] = bunch.target
    return frame


def _sample(task: str) -> pd.DataFrame:
    """mlscaffold's sample data of `task`, all splits together."""
    from mlscaffold.sample_data import SPLITS, sample_rows

    rows = [row for rows, seed in SPLITS.values() for row in sample_rows(task, rows, seed)]
    frame = pd.DataFrame(rows).rename(columns={"": LABEL})
    return pd.read_csv(_to_csv(frame))  # the types a CSV reader infers, as a project reads it


def _to_csv(frame: pd.DataFrame):
    import io

    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    return buffer


def split(dataset: Dataset, seed: int, outer_folds: int = OUTER_FOLDS) -> list[dict[str,
                                                                            pd.DataFrame]]:
    """The train / validation / test parts of split `seed`: one holdout, or one per outer fold
    when the data set is under SMALL_ROWS rows (each row then tested exactly once)."""
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    frame, classify = dataset.frame, dataset.task != "regression"
    if len(frame) >= SMALL_ROWS or outer_folds == 1:
        rest, test = train_test_split(frame, test_size=0.2, random_state=seed,
                                      stratify=frame[LABEL] if classify else None)
        tests = [(rest, test)]
    else:
        folds = (StratifiedKFold if classify else KFold)(outer_folds, shuffle=True,
                                                         random_state=seed)
        tests = [(frame.iloc[kept], frame.iloc[tested])
                 for kept, tested in folds.split(frame, frame[LABEL])]
    parts = []
    for rest, test in tests:
        train, validation = train_test_split(rest, test_size=0.25, random_state=seed,
                                             stratify=rest[LABEL] if classify else None)
        parts.append({"train": train, "validation": validation, "test": test})
    return parts


def combine(scores: list[Score], metric) -> Score:
    """One split's score from its outer folds' scores: the mean test score and estimate; for the
    plain defaults, each estimator's mean, and the best of those means."""
    if len(scores) == 1:
        return scores[0]
    seconds = statistics.mean(score.seconds for score in scores)
    estimates = [score.estimate for score in scores]
    estimate = None if None in estimates else statistics.mean(estimates)
    if scores[0].scores is not None:  # the plain defaults
        means = {name: statistics.mean(score.scores[name] for score in scores)
                 for name in scores[0].scores}
        best = min(means, key=lambda name: metric.sort_key(means[name]))
        return Score(means[best], None, best, seconds, means)
    chosen = ", ".join(f"{detail} x{count}" if count > 1 else detail for detail, count in
                       Counter(score.detail for score in scores).most_common())
    return Score(statistics.mean(score.test for score in scores), estimate, chosen, seconds)


# ------------------------------------------------------------------------------------- systems


def make_projects(scratch: Path) -> dict[str, Path]:
    """One rendered project per task, copied for each pair."""
    from mlscaffold.project import create_project
    from mlscaffold.spec import validate_spec

    made = {}
    for task in FLAML_TASK:
        spec = validate_spec({"name": f"bench-{task.split('-')[0]}", "task": task,
                              "label": LABEL, "ci": "none", "serving": "none"})
        made[task] = create_project(scratch / "templates" / spec.name, spec, git=False).path
    return made


def run_ours(template: Path, root: Path, parts: dict[str, pd.DataFrame], budget: float,
             seed: int) -> Score:
    shutil.copytree(template, root)
    for name, frame in parts.items():
        frame.to_csv(root / "datasets" / f"{name}.csv", index=False)
    started = time.perf_counter()
    _mlscaffold(root, "train", "--time", f"{budget:g}", "--seed", str(seed))
    seconds = time.perf_counter() - started
    experiment = json.loads((root / "experiments" / "exp-001" / "experiment.json").read_text())
    # exit 1 is the spec's quality gate refusing the model: not this benchmark's concern
    evaluation = json.loads(_mlscaffold(root, "evaluate", "--experiment", "exp-001",
                                        "--format", "json", passing=(0, 1)))
    metric = experiment["metric"]
    return Score(evaluation["metrics"][metric], experiment["score"],
                 f"{chosen(experiment)} ({experiment['candidates']['evaluated']} tried)", seconds,
                 choice=experiment["selection"].get("choice"))


def chosen(experiment: dict) -> str:
    """What a run chose: a family, marked "tuned" when not at its default settings (the
    first-default rule kept the best candidate), or an ensemble's families."""
    from mlscaffold.lifecycle.search_space import Candidate, families_for

    if experiment.get("ensemble"):
        return "ensemble:" + "+".join(sorted({member["family"] for member in
                                              experiment["ensemble"]["members"]}))
    family = next((f for f in families_for(experiment["task"])
                   if f.name == experiment["family"]), None)
    tuned = family is not None and not Candidate(family, experiment["params"]).is_baseline
    return experiment["family"] + (" tuned" if tuned else "")


def _mlscaffold(root: Path, *args: str, passing: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run([sys.executable, "-m", "mlscaffold", *args, "--project", str(root)],
                          capture_output=True, text=True, timeout=3600, env=_run_env())
    if done.returncode not in passing:
        raise SystemExit(f"mlscaffold {' '.join(args)} failed in {root}:\n{done.stderr}")
    return done.stdout


def ensure_flaml(args: argparse.Namespace) -> Path:
    """Python of an environment with FLAML; made under the cache dir when missing."""
    if args.flaml_python:
        return args.flaml_python
    env_dir = args.cache_dir / "flaml-venv"
    python = env_dir / "bin" / "python"
    marker = env_dir / ".mlscaffold-requirements"
    if python.exists() and marker.exists() and marker.read_text() == "\n".join(FLAML_REQUIREMENTS):
        return python
    print(f"installing FLAML into {env_dir} (once; takes a few minutes)", flush=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    log = args.cache_dir / "flaml-install.log"
    with log.open("w") as handle:
        done = subprocess.run([str(python), "-m", "pip", "install", *FLAML_REQUIREMENTS],
                              stdout=handle, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT,
                              env=_clean_env())
    if done.returncode != 0:
        raise SystemExit(f"installing FLAML failed; see {log}")
    marker.write_text("\n".join(FLAML_REQUIREMENTS))
    return python


def _clean_env() -> dict[str, str]:
    """This interpreter's environment without its virtualenv (pip must use the target's)."""
    return {k: v for k, v in _run_env().items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}


def _run_env() -> dict[str, str]:
    """The environment of each system's run. Bytecode writing stays on: with it off (some
    machines set PYTHONDONTWRITEBYTECODE), a venv that has none yet (uv compiles none ahead)
    makes each run compile every module it imports again, which added 5 s to each of ours at
    30 s, time no user's second run spends."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_flaml(python: Path, workdir: Path, parts: dict[str, pd.DataFrame], task: str,
              metric, budget: float, seed: int) -> Score:
    fit_csv, test_csv = workdir / "flaml-fit.csv", workdir / "flaml-test.csv"
    pd.concat([parts["train"], parts["validation"]]).to_csv(fit_csv, index=False)
    parts["test"].to_csv(test_csv, index=False)
    started = time.perf_counter()
    done = subprocess.run([str(python), "-c", FLAML_SCRIPT, str(fit_csv), str(test_csv), LABEL,
                           FLAML_TASK[task], FLAML_METRIC[metric.name], f"{budget:g}",
                           str(seed)], capture_output=True, text=True, timeout=3600,
                          env=_clean_env())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"FLAML failed in {workdir}:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    y = parts["test"][LABEL].to_numpy()
    if "probabilities" in report:
        test = _score(metric, task, y, np.asarray(report["probabilities"]), report["classes"])
    else:
        test = _score(metric, task, y, np.asarray(report["predictions"]), None)
    return Score(test, 1 - report["best_loss"], report["estimator"], seconds)


def run_defaults(parts: dict[str, pd.DataFrame], task: str, metric, seed: int) -> Score:
    """The best, on the test set, of scikit-learn's estimators at their default settings."""
    from sklearn import ensemble, linear_model, neighbors
    from sklearn.pipeline import Pipeline

    from mlscaffold.lifecycle.schema import build_preprocessor, coerce_features, infer_schema

    fit = pd.concat([parts["train"], parts["validation"]])
    features = infer_schema(parts["train"], LABEL).features
    x_fit = coerce_features(fit.drop(columns=[LABEL]), features)
    x_test = coerce_features(parts["test"].drop(columns=[LABEL]), features)
    y_fit, y_test = fit[LABEL].to_numpy(), parts["test"][LABEL].to_numpy()
    if task == "regression":
        models = {"ridge": linear_model.Ridge(), "linear": linear_model.LinearRegression(),
                  "random_forest": ensemble.RandomForestRegressor(random_state=seed),
                  "extra_trees": ensemble.ExtraTreesRegressor(random_state=seed),
                  "hist_gradient_boosting": ensemble.HistGradientBoostingRegressor(
                      random_state=seed),
                  "k_nearest_neighbors": neighbors.KNeighborsRegressor()}
    else:
        models = {"logistic_regression": linear_model.LogisticRegression(max_iter=5000),
                  "random_forest": ensemble.RandomForestClassifier(random_state=seed),
                  "extra_trees": ensemble.ExtraTreesClassifier(random_state=seed),
                  "hist_gradient_boosting": ensemble.HistGradientBoostingClassifier(
                      random_state=seed),
                  "k_nearest_neighbors": neighbors.KNeighborsClassifier()}
    started = time.perf_counter()
    scores, validated = {}, {}
    for name, model in models.items():
        pipeline = Pipeline([("preprocess", build_preprocessor(features)), ("model", model)])
        validated[name] = _cross_validated(pipeline, x_fit, y_fit, task, metric, seed)
        pipeline.fit(x_fit, y_fit)
        scores[name] = _score(metric, task, y_test, *_output(pipeline, x_test, task))
    best = min(scores, key=lambda name: metric.sort_key(scores[name]))
    picked = min(validated, key=lambda name: metric.sort_key(validated[name]))
    return Score(scores[best], None, best, time.perf_counter() - started, scores, picked)


def _cross_validated(pipeline, x: pd.DataFrame, y: np.ndarray, task: str, metric,
                     seed: int) -> float:
    """The mean score of `pipeline` over CV_PICK_FOLDS folds of the fit rows: how a plain
    workflow, with no test rows to peek at, would pick among the defaults."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    kind = KFold if task == "regression" else StratifiedKFold
    folds = kind(CV_PICK_FOLDS, shuffle=True, random_state=seed)
    scores = cross_val_score(
        pipeline, x, y, cv=folds,
        scoring=lambda fitted, held_x, held_y: _score(metric, task, held_y,
                                                     *_output(fitted, held_x, task)))
    return float(np.mean(scores))


def _output(pipeline, x: pd.DataFrame, task: str) -> tuple[np.ndarray, list | None]:
    if task == "regression":
        return pipeline.predict(x), None
    return pipeline.predict_proba(x), pipeline.classes_.tolist()


def _score(metric, task: str, y: np.ndarray, output: np.ndarray, classes: list | None) -> float:
    from mlscaffold.lifecycle.metrics import Outcome

    if classes is None:
        return float(metric.compute(Outcome(task, y, output)))
    predicted = np.asarray(classes)[np.argmax(output, axis=1)]
    return float(metric.compute(Outcome(task, y, predicted, output, classes)))


# ------------------------------------------------------------------------------------ the runs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        results = json.loads(args.report.read_text())
        print("\n".join([*(_line(row, args.tie) for row in results), _totals(results, args.tie)]))
        return
    from mlscaffold import catalog
    from mlscaffold.lifecycle.metrics import get_metric

    available = datasets()
    if args.datasets:
        wanted = args.datasets.split(",")
        unknown = sorted(set(wanted) - {d.name for d in available})
        if unknown:
            raise SystemExit(f"unknown or unavailable data sets: {', '.join(unknown)}; "
                             f"choose from {', '.join(d.name for d in available)}")
        available = [d for d in available if d.name in wanted]
    flaml = None if args.skip_flaml else ensure_flaml(args)
    scratch = Path(tempfile.mkdtemp(prefix="mlscaffold-quality-"))
    results = []
    try:
        templates = make_projects(scratch)
        print(f"budget {args.time:g} s per system; {args.splits} split(s) per data set; "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
        print(f"{'data set':<20}{'split':>5}{'tested':>7} {'metric':<7}{'ours':>8}{'FLAML':>8}"
              f"{'default':>8}"
              f"  {'vs FLAML':<9}{'vs default':<11} {'est-test ours/FLAML':<20} chosen", flush=True)
        pair = 0
        for dataset in available:
            metric = get_metric(catalog.TASKS[dataset.task].default_metric, dataset.task)
            for seed in range(args.splits):
                folds = split(dataset, seed, args.outer_folds)
                done: dict[str, list[Score]] = {"ours": [], "flaml": [], "default": []}
                for fold, parts in enumerate(folds):
                    workdir = scratch / f"{dataset.name}-{seed}-{fold}"
                    workdir.mkdir()
                    systems = {
                        "ours": lambda parts=parts, workdir=workdir, dataset=dataset, seed=seed:
                            run_ours(templates[dataset.task], workdir / "project", parts,
                                     args.time, seed),
                        "flaml": lambda parts=parts, workdir=workdir, dataset=dataset, seed=seed,
                            metric=metric: run_flaml(flaml, workdir, parts, dataset.task,
                                                     metric, args.time, seed),
                    }
                    # alternate which system runs first, so both meet the same machine load
                    for name in (("ours", "flaml") if pair % 2 == 0 else ("flaml", "ours")):
                        if name == "ours" or flaml is not None:
                            done[name].append(systems[name]())
                    pair += 1
                    done["default"].append(run_defaults(parts, dataset.task, metric, seed))
                row = {"dataset": dataset.name, "task": dataset.task, "split": seed,
                       "folds": len(folds), "metric": metric.name,
                       "test_rows": sum(len(parts["test"]) for parts in folds)}
                for name, scores in done.items():
                    row[name] = combine(scores, metric).__dict__ if scores else None
                    row[f"{name}_folds"] = [score.__dict__ for score in scores]
                results.append(row)
                print(_line(row, args.tie), flush=True)
        print(_totals(results, args.tie))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _versus(ours: float, other: float, tie: float) -> str:
    if abs(ours - other) <= tie:
        return "tie"
    return "win" if ours > other else "loss"


def _below_default(ours: float, default: float) -> bool:
    return ours < default - BELOW_DEFAULT_LIMIT * abs(default)


def _line(row: dict, tie: float) -> str:
    ours, flaml, default = row["ours"], row["flaml"], row["default"]
    versus = _versus(ours["test"], flaml["test"], tie) if flaml else "-"
    below = "BELOW 1%" if _below_default(ours["test"], default["test"]) else (
        _versus(ours["test"], default["test"], tie))
    gaps = f"{ours['estimate'] - ours['test']:+.3f}"
    gaps += f"/{flaml['estimate'] - flaml['test']:+.3f}" if flaml else "/-"
    flaml_test = f"{flaml['test']:8.4f}" if flaml else f"{'-':>8}"
    tested = f"{row['test_rows']}" + (f"/{row['folds']}f" if row["folds"] > 1 else "")
    return (f"{row['dataset']:<20}{row['split']:>5}{tested:>7} {row['metric']:<7}"
            f"{ours['test']:8.4f}"
            f"{flaml_test}{default['test']:8.4f}  {versus:<9}{below:<11} {gaps:<20} "
            f"{ours['detail']} | {flaml['detail'] if flaml else '-'} | {default['detail']}")


def _totals(results: list[dict], tie: float) -> str:
    lines = [""]
    with_flaml = [row for row in results if row["flaml"]]
    if with_flaml:
        outcomes = [_versus(r["ours"]["test"], r["flaml"]["test"], tie) for r in with_flaml]
        wins = outcomes.count("win")
        lines.append(f"vs FLAML:   {wins} win, {outcomes.count('tie')} tie, "
                     f"{outcomes.count('loss')} loss of {len(outcomes)} pairs "
                     f"(target: at least {-(-2 * len(outcomes) // 3)} wins) -> "
                     f"{'met' if 3 * wins >= 2 * len(outcomes) else 'MISSED'}")
    outcomes = [_versus(r["ours"]["test"], r["default"]["test"], tie) for r in results]
    below = [_below_text(r) for r in results
             if _below_default(r["ours"]["test"], r["default"]["test"])]
    lines.append(f"vs default: {outcomes.count('win')} win, {outcomes.count('tie')} tie, "
                 f"{outcomes.count('loss')} loss; more than 1% below the best default: "
                 f"{len(below)} ({', '.join(below) or 'none'}) -> "
                 f"{'met' if not below else 'MISSED'}")
    lines.append(_versus_steady_default(results, tie))
    if all(fold.get("picked") for row in results for fold in row["default_folds"]):
        lines.append(_versus_picked_default(results, tie))
    gap = statistics.mean(r["ours"]["estimate"] - r["ours"]["test"] for r in results)
    text = f"mean validation estimate - test score: ours {gap:+.4f}"
    if with_flaml:
        peer = statistics.mean(r["flaml"]["estimate"] - r["flaml"]["test"] for r in with_flaml)
        text += f", FLAML {peer:+.4f}"
    lines.append(text)
    seconds = statistics.median(r["ours"]["seconds"] for r in results)
    text = f"median wall seconds per run (process start to exit): ours {seconds:.1f}"
    if with_flaml:
        text += f", FLAML {statistics.median(r['flaml']['seconds'] for r in with_flaml):.1f}"
    lines.append(text)
    return "\n".join(lines)


def _below_text(row: dict) -> str:
    """A pair below the best default, by how much, and (over outer folds) the standard error of
    the per-fold differences: how many rows' luck the gap amounts to."""
    default = row["default"]
    text = (f"{row['dataset']}/{row['split']} "
            f"{(row['ours']['test'] - default['test']) / abs(default['test']):+.1%}")
    differences = [ours["test"] - fold["scores"][default["detail"]]
                   for ours, fold in zip(row["ours_folds"], row["default_folds"], strict=True)]
    if len(differences) > 1:
        error = statistics.stdev(differences) / len(differences) ** 0.5 / abs(default["test"])
        text += f" [fold SE {error:.1%}]"
    return text


def _versus_steady_default(results: list[dict], tie: float) -> str:
    """A second, diagnostic bar beside the target's: per data set, the one default estimator
    whose test score is best on average over the splits (an oracle per data set, not per split:
    the per-split best on a few dozen test rows is partly the luck of one row)."""
    from mlscaffold.lifecycle.metrics import get_metric

    steady = {}
    for name in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == name]
        metric = get_metric(rows[0]["metric"], rows[0]["task"])
        steady[name] = min(rows[0]["default"]["scores"], key=lambda estimator: statistics.mean(
            metric.sort_key(r["default"]["scores"][estimator]) for r in rows))
    scores = [(r, r["default"]["scores"][steady[r["dataset"]]]) for r in results]
    outcomes = [_versus(r["ours"]["test"], score, tie) for r, score in scores]
    below = [f"{r['dataset']}/{r['split']}" for r, score in scores
             if _below_default(r["ours"]["test"], score)]
    return (f"vs the default best on average over each data set's splits (diagnostic): "
            f"{outcomes.count('win')} win, {outcomes.count('tie')} tie, "
            f"{outcomes.count('loss')} loss; more than 1% below it: {len(below)} "
            f"({', '.join(below) or 'none'})")


def _versus_picked_default(results: list[dict], tie: float) -> str:
    """A third, diagnostic bar: per split (per outer fold, averaged), the default that a 5-fold
    cross-validation on train + validation picks, as a plain workflow would without the test
    rows; what the best plain default costs to find."""
    scores = [(r, statistics.mean(fold["scores"][fold["picked"]] for fold in r["default_folds"]))
              for r in results]
    outcomes = [_versus(r["ours"]["test"], score, tie) for r, score in scores]
    below = [f"{r['dataset']}/{r['split']}" for r, score in scores
             if _below_default(r["ours"]["test"], score)]
    short = [f"{r['dataset']}/{r['split']}" for r, score in scores
             if _below_default(score, r["default"]["test"])]
    return (f"vs the default a {CV_PICK_FOLDS}-fold cross-validation on train + validation picks "
            f"(diagnostic): {outcomes.count('win')} win, {outcomes.count('tie')} tie, "
            f"{outcomes.count('loss')} loss; more than 1% below it: {len(below)} "
            f"({', '.join(below) or 'none'}); that pick more than 1% below the best default: "
            f"{len(short)} ({', '.join(short) or 'none'})")


if __name__ == "__main__":
    main()
