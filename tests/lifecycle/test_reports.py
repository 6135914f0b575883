"""The pictures: `evaluate` writes curves, calibration, importance (classifiers) or predicted vs
actual, residuals and importance (regressors); `analyze` writes a distribution plot per column and
a correlation view; each writes a report.html whose every link resolves beside it. Without
matplotlib both still write their report, say once why there are no plots, and exit as usual.
"""

from __future__ import annotations

import html
import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from mlscaffold.lifecycle.files import read_json
from mlscaffold.lifecycle.model import load_bundle
from mlscaffold.packaging import pinned

from ..tools.environments import run_without_matplotlib
from .conftest import TASKS, copy_project, run_cli, set_config

PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = {
    "binary-classification": {"confusion_matrix", "roc", "precision_recall", "calibration",
                              "importance"},
    "multiclass-classification": {"confusion_matrix", "roc", "precision_recall", "calibration",
                                  "importance"},
    "regression": {"predicted_vs_actual", "residuals", "importance"},
}
NO_PLOTS = ("warning: plots skipped: matplotlib is not installed here (an image installs only the "
            f"lifecycle runtime); pip install '{pinned()}' draws them")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.targets += [value for name, value in attrs if name in ("href", "src") and value]


def resolved_links(report: Path) -> set[str]:
    """The files report.html links, after checking each is a relative link to a non-empty file."""
    parser = _Links()
    parser.feed(report.read_text(encoding="utf-8"))
    for target in parser.targets:
        assert "/" not in target and ":" not in target, target  # beside the report, no network
        assert (report.parent / target).is_file(), f"{report} links {target}, which is missing"
        assert (report.parent / target).stat().st_size > 0, target
    return set(parser.targets)


def _pngs(directory: Path) -> set[str]:
    return {path.stem for path in directory.glob("*.png")}


@pytest.fixture
def evaluated(trained, tmp_path):
    def make(task: str) -> Path:
        source = trained(task)
        project = copy_project(source, tmp_path / task / source.name)
        set_config(project, metric_threshold=None)  # the gate is not under test here
        return project

    return make


@pytest.mark.parametrize("task", TASKS)
def test_evaluate_draws_the_plots_of_its_task_and_a_report_linking_them(evaluated, task):
    project = evaluated(task)
    result = run_cli(project, "evaluate")
    assert result.code == 0, result.err
    experiment = project / "experiments" / "exp-001"
    assert _pngs(experiment) == PLOTS[task]
    for name in PLOTS[task]:
        assert (experiment / f"{name}.png").read_bytes()[:8] == PNG
    linked = resolved_links(experiment / "report.html")
    assert {f"{name}.png" for name in PLOTS[task]} <= linked
    assert {"evaluation.json", "importance.csv", "model_card.md", "experiment.json"} <= linked
    assert "report.html" in result.out

    columns = load_bundle(experiment).input_columns
    importance = read_json(experiment / "evaluation.json")["importance"]
    assert importance["metric"] == read_json(experiment / "experiment.json")["metric"]
    assert sorted(row["feature"] for row in importance["columns"]) == sorted(columns)
    means = [row["mean"] for row in importance["columns"]]
    assert means == sorted(means, reverse=True) and means[0] > 0  # some column matters
    table = pd.read_csv(experiment / "importance.csv")
    assert sorted(table["feature"]) == sorted(columns)


def test_analyze_draws_every_used_column_the_label_and_correlations(project):
    result = run_cli(project, "analyze")
    assert result.code == 0, result.err
    directory = project / "experiments" / "analysis" / "train"
    report = read_json(directory / "analysis.json")
    used = [f["name"] for f in report["features"] if f["kind"] in ("numeric", "categorical")]
    plots = _pngs(directory)
    assert plots == {"label", "correlation"} | {
        f"column-{index:02d}-{name}" for index, name in enumerate(used, start=1)}
    assert all((directory / f"{name}.png").read_bytes()[:8] == PNG for name in plots)
    assert resolved_links(directory / "report.html") == {f"{name}.png" for name in plots} | {
        "analysis.json"}
    assert f"wrote {directory / 'report.html'}" in result.out


def test_analyze_of_another_file_reports_beside_its_own_name(project, tmp_path):
    data = pd.read_csv(project / "datasets" / "validation.csv")
    data.to_csv(tmp_path / "incoming batch.csv", index=False)
    result = run_cli(project, "analyze", "--input", tmp_path / "incoming batch.csv",
                     "--format", "json")
    assert result.code == 0, result.err
    report = Path(json.loads(result.out)["report"])
    assert report == project / "experiments" / "analysis" / "incoming batch" / "report.html"
    assert "column-01-tenure_months.png" in resolved_links(report)




def _without_matplotlib(*args: object) -> subprocess.CompletedProcess[str]:
    return run_without_matplotlib(*args)


def test_without_matplotlib_the_reports_say_why_there_are_no_plots(evaluated):
    project = evaluated("binary-classification")
    experiment = project / "experiments" / "exp-001"
    completed = _without_matplotlib("evaluate", "--project", project)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == NO_PLOTS + "\n"
    assert _pngs(experiment) == set()
    assert {"evaluation.json", "confusion_matrix.csv", "importance.csv"} <= resolved_links(
        experiment / "report.html")
    note = html.escape(NO_PLOTS.removeprefix("warning: "))
    assert note in (experiment / "report.html").read_text()
    assert read_json(experiment / "evaluation.json")["importance"]["columns"]

    analyzed = _without_matplotlib("analyze", "--project", project)
    assert analyzed.returncode == 0, analyzed.stderr
    assert analyzed.stderr == NO_PLOTS + "\n"
    directory = project / "experiments" / "analysis" / "train"
    assert _pngs(directory) == set()
    assert resolved_links(directory / "report.html") == {"analysis.json"}
