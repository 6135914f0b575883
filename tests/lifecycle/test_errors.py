"""Bad inputs to the lifecycle commands get one clear line on stderr, the right exit code and no
traceback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from mlscaffold.lifecycle import train as train_module
from mlscaffold.lifecycle.metrics import METRICS

from .conftest import assert_error, read_spec, run_cli, set_config


def test_analyze_without_the_label_column_names_it_and_the_columns_found(project, tmp_path):
    label = read_spec(project)["label"]
    data = pd.read_csv(project / "datasets" / "train.csv").drop(columns=[label])
    path = tmp_path / "unlabelled.csv"
    data.to_csv(path, index=False)
    result = run_cli(project, "analyze", "--input", path)
    assert_error(result, 2, f"label column {label!r} not found in {path}", data.columns[0])


def test_a_missing_file_is_named_with_where_the_file_should_be(project, tmp_path):
    missing = tmp_path / "nothere.csv"
    for command in (["analyze", "--input", missing], ["drift", "--input", missing]):
        assert_error(run_cli(project, *command), 2, f"{missing}: no such file",
                     "check the path (a relative one is read from the current directory)")
    train = project / "datasets" / "train.csv"
    train.rename(tmp_path / "train.csv")
    for command in (["analyze"], ["train", "--time", "5"]):
        assert_error(run_cli(project, *command), 2, f"{train}: no such file",
                     "a project reads its data from datasets/train.csv, validation.csv and "
                     "test.csv: put the file there")


@pytest.mark.parametrize(
    "command", [["evaluate", "--experiment", "exp-999"], ["promote", "exp-999"]]
)
def test_unknown_experiment_says_how_to_list_them(trained, command):
    result = run_cli(trained("binary-classification"), *command)
    assert_error(result, 2, "unknown experiment 'exp-999'; run `mlscaffold list`")


def test_predict_with_a_missing_column_names_it(trained, tmp_path):
    project = trained("binary-classification")
    model = json.loads((project / "experiments" / "exp-001" / "model.json").read_text())
    features = [name for name, kind in model["features"].items() if kind != "dropped"]
    data = pd.read_csv(project / "datasets" / "test.csv").drop(columns=[features[0]])
    path = tmp_path / "incomplete.csv"
    data.to_csv(path, index=False)
    result = run_cli(project, "predict", "--input", path, "--output", tmp_path / "out.csv",
                     "--model", "exp-001")
    assert_error(result, 2, f"missing column(s): {features[0]}")
    assert not (tmp_path / "out.csv").exists()


def test_predict_before_any_promotion_says_to_promote(trained, tmp_path):
    project = trained("binary-classification")
    result = run_cli(project, "predict", "--input", project / "datasets" / "test.csv",
                     "--output", tmp_path / "out.csv")
    assert_error(result, 2, "no model promoted to production yet",
                 "mlscaffold promote exp-NNN --to production")
    assert not (tmp_path / "out.csv").exists()


def test_predict_names_the_model_another_stage_serves(trained_copy, tmp_path):
    project = trained_copy
    assert run_cli(project, "promote", "exp-001").code == 0  # to staging, the default
    result = run_cli(project, "predict", "--input", project / "datasets" / "test.csv",
                     "--output", tmp_path / "out.csv")
    assert_error(result, 2, "no model promoted to production yet",
                 "or use staging's v1 with `--model staging`")
    assert not (tmp_path / "out.csv").exists()


def test_predict_never_replaces_a_data_set_but_replaces_its_own_predictions(trained, tmp_path):
    project = trained("multiclass-classification")
    test = project / "datasets" / "test.csv"
    swapped = tmp_path / "test.csv"  # --input and --output the wrong way round
    swapped.write_bytes(test.read_bytes())
    result = run_cli(project, "predict", "--input", test, "--output", swapped,
                     "--model", "exp-001")
    assert_error(result, 2, f"{swapped} exists and is not a predictions file",
                 "choose another --output, or add --force to replace it")
    assert swapped.read_bytes() == test.read_bytes()

    output = tmp_path / "predictions.csv"
    output.touch()  # an empty file holds nothing to lose
    for _ in range(2):  # the second run replaces the first's predictions
        result = run_cli(project, "predict", "--input", test, "--output", output,
                         "--model", "exp-001")
        assert result.code == 0, result.err
    written = pd.read_csv(output)
    assert "prediction" in written.columns and "probability_gold" in written.columns
    assert len(written) == len(pd.read_csv(test))

    result = run_cli(project, "predict", "--input", test, "--output", swapped,
                     "--model", "exp-001", "--force")
    assert result.code == 0, result.err
    assert pd.read_csv(swapped).equals(written)


def test_drift_replaces_only_an_earlier_drift_report(trained, tmp_path):
    project = trained("regression")
    notes = tmp_path / "notes.json"
    notes.write_text('{"owner": "the team"}\n')
    result = run_cli(project, "drift", "--input", project / "datasets" / "test.csv",
                     "--report", notes)
    assert_error(result, 2, f"{notes} exists and is not a drift report", "choose another --report")
    assert notes.read_text() == '{"owner": "the team"}\n'
    report = tmp_path / "drift.json"
    for _ in range(2):
        result = run_cli(project, "drift", "--input", project / "datasets" / "test.csv",
                         "--report", report)
        assert result.code in (0, 1), result.err
    assert json.loads(report.read_text())["input"]["rows"] == len(
        pd.read_csv(project / "datasets" / "test.csv"))


def test_unknown_metric_lists_the_valid_ones(project):
    spec = read_spec(project)
    assert_error(run_cli(project, "train", "--metric", "nope"), 2, "unknown metric 'nope'",
                 spec["metric"])
    assert not (project / "experiments" / "exp-001").exists()


def test_metric_of_another_task_is_refused(project):
    task = read_spec(project)["task"]
    other = next(m for m in METRICS.values() if task not in m.tasks)
    assert_error(run_cli(project, "list", "--metric", other.name), 2,
                 f"metric {other.name!r} does not apply to {task}")
    assert_error(run_cli(project, "train", "--metric", other.name), 2, "does not apply")


@pytest.mark.parametrize("budget", ["0", "-3"])
def test_non_positive_time_budget_is_refused(project, budget):
    result = run_cli(project, "train", "--time", budget)
    assert_error(result, 2, "--time", budget)
    assert "see 'mlscaffold train --help'" in result.err


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_seed_numpy_cannot_take_is_a_usage_error(project, seed):
    result = run_cli(project, "train", "--time", "5", "--seed", seed)
    assert_error(result, 2, f"Invalid value for '--seed': {seed} is not in the range "
                 "0<=x<=4294967295.")
    assert "see 'mlscaffold train --help'" in result.err


def test_rollback_without_history_is_refused(trained_copy):
    # --stage is --to's other name (the Makefile's STAGE), prod is production's
    for command in (["promote", "--rollback", "--to", "production"],
                    ["rollback", "--stage", "prod"]):
        assert_error(run_cli(trained_copy, *command), 2,
                     "nothing to roll back to: production has no earlier version")


def test_the_same_model_under_another_experiment_id_is_not_promoted_again(trained_copy):
    experiments = trained_copy / "experiments"
    shutil.copytree(experiments / "exp-001", experiments / "exp-002")  # the same bytes
    index = json.loads((experiments / "index.json").read_text())
    index["experiments"].append({**index["experiments"][0], "id": "exp-002"})
    (experiments / "index.json").write_text(json.dumps(index))
    assert run_cli(trained_copy, "promote", "exp-001", "--to", "staging").code == 0
    registry = (trained_copy / "models" / "registry.json").read_bytes()
    again = run_cli(trained_copy, "promote", "exp-002", "--to", "staging")
    assert (again.code, again.err) == (0, "")
    assert again.out.startswith("exp-002 holds the same model (exp-001's) as staging's current "
                                "version, v1 (sha256 ")
    assert again.out.endswith("; nothing changed\n")
    assert (trained_copy / "models" / "registry.json").read_bytes() == registry


def test_promote_needs_an_experiment_and_rollback_none(trained_copy):
    assert_error(run_cli(trained_copy, "promote"), 2, "name the experiment to promote")
    assert_error(run_cli(trained_copy, "promote", "exp-001", "--rollback"), 2,
                 "do not name an experiment (got exp-001)")


def test_quality_gate_blocks_evaluate_and_promotion(trained_copy):
    spec = read_spec(trained_copy)
    metric = METRICS[spec["metric"]]
    unreachable = 1.0 if metric.higher_is_better else 0.0  # a perfect score
    set_config(trained_copy, metric_threshold=unreachable)
    assert_error(run_cli(trained_copy, "evaluate"), 1, "quality gate failed for exp-001")
    assert (trained_copy / "experiments" / "exp-001" / "evaluation.json").is_file()
    assert_error(run_cli(trained_copy, "promote", "exp-001", "--to", "production"), 1,
                 "threshold", "--force")
    assert not (trained_copy / "models" / "registry.json").exists()
    forced = run_cli(trained_copy, "promote", "exp-001", "--to", "production", "--force")
    assert forced.code == 0 and "promoted despite" in forced.err


def test_staging_takes_a_model_below_the_gate_and_says_production_will_refuse_it(trained_copy):
    metric = METRICS[read_spec(trained_copy)["metric"]]
    unreachable = 1 if metric.higher_is_better else 0
    set_config(trained_copy, metric_threshold=float(unreachable))
    result = run_cli(trained_copy, "promote", "exp-001", "--to", "staging")
    assert result.code == 0, result.err
    relation = "below" if metric.higher_is_better else "above"
    assert result.err.startswith(f"warning: exp-001 {metric.name}=")
    assert result.err.endswith(f" is {relation} the threshold {unreachable}: production will "
                               "refuse it without --force\n")
    assert "promoted exp-001 to staging as v1" in result.out


def test_interrupted_training_leaves_no_experiment(trained_copy, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "search", interrupt)
    index_before = (trained_copy / "experiments" / "index.json").read_text()
    result = run_cli(trained_copy, "train", "--time", "1")
    # Click ends the terminal's ^C line first
    assert (result.code, result.err) == (130, "\nerror: interrupted\n"), result
    assert (trained_copy / "experiments" / "index.json").read_text() == index_before
    assert not (trained_copy / "experiments" / "exp-002").exists()


def test_a_folder_without_a_spec_is_named(tmp_path):
    assert_error(run_cli(tmp_path, "list"), 2,
                 f"{tmp_path.resolve()} holds no mlscaffold.yaml; pass the project's folder "
                 "to --project")


def test_unreadable_data_is_one_line(project):
    (project / "datasets" / "train.csv").write_text("")
    assert_error(run_cli(project, "train", "--time", "1"), 2,
                 f"cannot read {project.resolve() / 'datasets' / 'train.csv'}")


@pytest.mark.parametrize("command", ["evaluate", "list", "analyze"])
def test_output_whose_reader_has_gone_ends_quietly(trained_copy, command):
    """`mlscaffold evaluate | head -1`: the reader closes the pipe. Such a write failed as a
    file error (`error: [Errno 32] Broken pipe`, exit 2); Click ends quietly, exit 1."""
    import os
    import subprocess
    import sys

    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run([sys.executable, "-m", "mlscaffold", command, "--project",
                               str(trained_copy)], stdout=writer, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (1, "")


def test_drift_names_a_renamed_column_with_its_new_name(project, tmp_path):
    frame = pd.read_csv(project / "datasets" / "test.csv")
    column = frame.columns[1]
    renamed = tmp_path / "renamed.csv"
    frame.rename(columns={column: column[:-1]}).to_csv(renamed, index=False)
    result = run_cli(project, "drift", "--input", renamed, "--report", tmp_path / "r.json")
    assert_error(result, 2, f"new data lacks column(s) of the reference: {column} (did you "
                            f"mean {column[:-1]!r}?)")


def test_infinite_values_are_refused_naming_the_file_column_and_rows(make_project, tmp_path):
    project = make_project("regression")
    label = read_spec(project)["label"]
    data = pd.read_csv(project / "datasets" / "train.csv")
    data[label] = data[label].astype(object)
    data.loc[[0, 1], label] = ["inf", "-inf"]
    path = tmp_path / "inf.csv"
    data.to_csv(path, index=False)
    assert_error(run_cli(project, "analyze", "--input", path), 2,
                 f"{path}: column {label!r} holds 2 infinite value(s) (row(s) 1, 2, counted "
                 "from 1 after the header); remove those rows, or leave the cells empty to have "
                 "them read as missing")
    assert not (project / "experiments" / "analysis" / "inf").exists()
    # in a feature too, also in a column of text read as numbers, before any search
    train = project / "datasets" / "train.csv"
    data = pd.read_csv(train)
    column = next(name for name in data.columns if data[name].dtype == "float64"
                  and name != label)
    data[column] = data[column].astype(object)
    data.loc[4, column], data.loc[5, column] = "?", "1e999"
    data.to_csv(train, index=False)
    assert_error(run_cli(project, "train", "--time", "5"), 2,
                 f"{train.resolve()}: column {column!r} holds 1 infinite value(s) (row(s) 6, "
                 "counted from 1 after the header)")
    assert not (project / "experiments" / "exp-001").exists()


def test_analyze_writes_its_folder_whole_or_not_at_all(project, tmp_path, monkeypatch):
    from mlscaffold.lifecycle import analyze as analyze_module

    assert run_cli(project, "analyze").code == 0
    analysis = project / "experiments" / "analysis"
    before = sorted(path.name for path in (analysis / "train").iterdir())
    shutil.copy(project / "datasets" / "train.csv", tmp_path / "other.csv")

    def fail(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(analyze_module, "write_html_report", fail)
    for command in (["analyze"], ["analyze", "--input", tmp_path / "other.csv"]):
        with pytest.raises(RuntimeError):
            run_cli(project, *command)
    assert [path.name for path in analysis.iterdir()] == ["train"]
    assert sorted(path.name for path in (analysis / "train").iterdir()) == before


def test_evaluate_refuses_test_labels_that_are_not_the_models_classes(trained_copy):
    project = trained_copy
    label = read_spec(project)["label"]
    test = project / "datasets" / "test.csv"
    data = pd.read_csv(test)
    data[label].map({0: "no", 1: "yes"}).pipe(lambda labels: data.assign(**{label: labels})) \
        .to_csv(test, index=False)
    assert_error(run_cli(project, "evaluate"), 2,
                 "error: datasets/test.csv: label values 'no', 'yes' are not classes of the model "
                 "(0, 1); label the test rows as the training rows are, or train a model on "
                 "labels written this way")


def test_evaluate_names_the_test_rows_it_leaves_out(trained_copy):
    project = trained_copy
    label = read_spec(project)["label"]
    test = project / "datasets" / "test.csv"
    data = pd.read_csv(test)
    data[label] = data[label].astype(object)
    data.loc[0:2, label] = "maybe"
    data.loc[3, label] = None
    data.to_csv(test, index=False)
    result = run_cli(project, "evaluate")
    assert result.code in (0, 1), result.err
    assert result.err.splitlines()[:2] == [
        "warning: ignored 1 row(s) of test without a label",
        "warning: ignored 3 row(s) of test whose label is not a class of the model: 'maybe'",
    ]
    evaluation = json.loads((project / "experiments" / "exp-001" / "evaluation.json").read_text())
    assert evaluation["data"]["rows"] == len(data) - 4


def test_a_column_name_written_twice_in_the_header_is_refused(project, tmp_path):
    train = project / "datasets" / "train.csv"
    lines = train.read_text().splitlines(keepends=True)
    names = lines[0].rstrip("\n").split(",")
    header = ",".join([names[1], *names[1:]]) + "\n"
    train.write_text(header + "".join(lines[1:]))
    assert_error(run_cli(project, "train", "--time", "5"), 2,
                 f"error: {train.resolve()}: column name(s) {names[1]!r} appear more than once "
                 "in the header; give each column its own name")
    path = tmp_path / "semicolons.csv"
    path.write_text("x1;cat;x1;label\n1,5;a;2;0\n")
    assert_error(run_cli(project, "analyze", "--input", path), 2,
                 f"error: {path}: column name(s) 'x1' appear more than once in the header")


@pytest.mark.parametrize("index", ["{bad", '{"experiments": 3}'])
def test_a_damaged_experiment_index_stops_train_before_the_search(project, monkeypatch, index):
    path = project / "experiments" / "index.json"
    path.write_text(index)

    def search(*args, **kwargs):
        raise AssertionError("the search ran")

    monkeypatch.setattr(train_module, "search", search)
    result = run_cli(project, "train", "--time", "5")
    assert_error(result, 2, f"{path.resolve()} is not ", "restore it from a backup")
    assert_error(run_cli(project, "list"), 2, f"{path.resolve()} is not ")
    assert sorted(p.name for p in path.parent.iterdir()) == [".gitkeep", "index.json"]


def test_a_training_set_of_one_row_says_it_has_too_few_rows(project):
    train = project / "datasets" / "train.csv"
    train.write_text("".join(train.read_text().splitlines(keepends=True)[:2]))
    assert_error(run_cli(project, "train", "--time", "5"), 2,
                 f"error: {train.resolve()} has 1 labelled row(s); training needs at least 10: "
                 "add rows to it")


def test_train_says_why_a_class_of_one_row_means_hold_out(make_project):
    project = make_project("multiclass-classification")
    label = read_spec(project)["label"]
    train = project / "datasets" / "train.csv"
    data = pd.read_csv(train)
    data[label] = data[label].astype(object)
    data.loc[0, label] = "rare"
    data.to_csv(train, index=False)
    result = run_cli(project, "train", "--trials", "1")
    assert result.code == 0, result.err
    assert ("note: scoring on validation, not by cross-validation: class(es) 'rare' have 1 row "
            "in train + validation, and cross-validation needs at least 2 per class\n"
            ) in result.out


def test_train_names_the_file_of_a_bad_value_and_a_renamed_column(project):
    validation = project / "datasets" / "validation.csv"
    frame = pd.read_csv(validation)
    label = read_spec(project)["label"]
    numeric = frame.drop(columns=[label]).select_dtypes("number").columns[0]
    frame[numeric] = frame[numeric].astype(object)
    frame.loc[0, numeric] = "12kg"
    frame.to_csv(validation, index=False)
    assert_error(run_cli(project, "train", "--trials", "1"), 2,
                 f"error: datasets/validation.csv: column {numeric!r} must be numeric; got "
                 "'12kg'")
    frame = frame.drop(index=0).rename(columns={numeric: numeric.upper()})
    frame.to_csv(validation, index=False)
    assert_error(run_cli(project, "train", "--trials", "1"), 2,
                 f"lacks column(s) of the training data: {numeric} (did you mean "
                 f"{numeric.upper()!r}?)")


def test_train_warns_of_a_validation_column_train_lacks(project):
    validation = project / "datasets" / "validation.csv"
    frame = pd.read_csv(validation)
    frame["referrer"] = "ads"
    frame.to_csv(validation, index=False)
    result = run_cli(project, "train", "--trials", "1")
    assert result.code == 0, result.err
    assert ("warning: datasets/validation.csv has column(s) that datasets/train.csv lacks, which "
            "the model ignores: referrer; add them to both files or drop them\n") in result.err


def test_spaces_around_header_names_are_not_part_of_them(trained_copy, tmp_path):
    """`label ` was 'not found' by train, and predict refused `tenure_months ` with a
    did-you-mean that looked like the name given, while serve took the same file."""
    from mlscaffold.lifecycle.data import read_csv
    from mlscaffold.lifecycle.model import SchemaMismatch

    project = trained_copy
    test = pd.read_csv(project / "datasets" / "test.csv")
    label = read_spec(project)["label"]
    spaced = test.rename(columns=lambda name: f" {name} ").drop(columns=[f" {label} "])
    spaced.to_csv(tmp_path / "spaced.csv", index=False)
    test.drop(columns=[label]).to_csv(tmp_path / "plain.csv", index=False)
    assert list(read_csv(tmp_path / "spaced.csv").columns) == list(test.columns.drop(label))
    for name in ("spaced", "plain"):
        predicted = run_cli(project, "predict", "--model", "exp-001", "--input",
                            tmp_path / f"{name}.csv", "--output", tmp_path / f"{name}-out.csv")
        assert predicted.code == 0, predicted.err
    assert (tmp_path / "spaced-out.csv").read_text() == (tmp_path / "plain-out.csv").read_text()

    train = project / "datasets" / "train.csv"
    lines = train.read_text().splitlines(keepends=True)
    train.write_text(lines[0].replace(",", " ,").replace("\n", " \n") + "".join(lines[1:]))
    trained = run_cli(project, "train", "--trials", 1)
    assert trained.code == 0, trained.err
    first = lines[0].split(",")[0]
    train.write_text(f"{first} ,{lines[0]}" + "".join(f"x,{line}" for line in lines[1:]))
    assert_error(run_cli(project, "train", "--trials", 1), 2,
                 f"column name(s) {first!r} appear more than once in the header (spaces around "
                 "a name do not count); give each column its own name")

    set_config(project, label=f"{label}_")  # a label the header lacks: names listed quoted
    train.write_text("".join(lines))
    assert_error(run_cli(project, "train", "--trials", 1), 2,
                 f"label column '{label}_' not found in", f"columns found: {first!r}, ")
    assert str(SchemaMismatch(["plan"], ["plan "])).endswith(
        "missing column(s): plan; unexpected column(s): 'plan ' (did you mean 'plan'?)")


def test_a_gate_on_an_undefined_roc_auc_says_which_class_has_no_test_rows(make_project):
    """With a class missing from test.csv, the gate failed with 'roc_auc=n/a' and no reason."""
    from mlscaffold.lifecycle.metrics import Outcome, why_undefined

    project = make_project("multiclass-classification", with_experiment=True)
    label = read_spec(project)["label"]
    test = project / "datasets" / "test.csv"
    data = pd.read_csv(test)
    gone = sorted(data[label].unique())[0]
    data[data[label] != gone].to_csv(test, index=False)
    set_config(project, metric="roc_auc", metric_threshold=0.5)
    reason = (f"roc_auc needs every class of the model in datasets/test.csv; {gone!r} has no "
              "rows there: add rows of it, or gate on another metric")
    result = run_cli(project, "evaluate")
    assert result.code == 1, result.err
    assert f"warning: {reason}\n" in result.err
    assert result.err.splitlines()[-1].endswith(
        f"roc_auc=n/a, required >= 0.5 ({reason})")
    evaluation = json.loads((project / "experiments" / "exp-001" / "evaluation.json").read_text())
    assert evaluation["undefined"] == {"roc_auc": reason}
    assert evaluation["gate"]["undefined"] == reason

    one_class = Outcome("binary-classification", np.array(["no", "no"]), np.array(["no", "no"]),
                        np.array([[0.6, 0.4], [0.7, 0.3]]), ["no", "yes"])
    assert why_undefined("roc_auc", one_class, "t.csv") == (
        "roc_auc needs both classes in t.csv; 'yes' has no rows there: add rows of it, or gate "
        "on another metric")


def test_rows_shared_between_the_data_sets_are_counted_in_a_warning(project):
    """Validation rows copied from train.csv, and test rows copied into it, made scores
    optimistic without a word (the gate passed at roc_auc 1.0)."""
    from mlscaffold.lifecycle.data import shared_rows

    datasets = project / "datasets"
    train, validation, test = (pd.read_csv(datasets / f"{split}.csv")
                               for split in ("train", "validation", "test"))
    pd.concat([validation, train.head(30)]).to_csv(datasets / "validation.csv", index=False)
    pd.concat([train, test.head(40)]).to_csv(datasets / "train.csv", index=False)
    trained = run_cli(project, "train", "--trials", 1)
    assert trained.code == 0, trained.err
    assert (f"warning: 30 of {len(validation) + 30} row(s) of datasets/validation.csv are also in "
            "datasets/train.csv (the same features and label): validation scores, and the "
            "choice of model, are optimistic; remove them from one of the files") in trained.err
    evaluated = run_cli(project, "evaluate")
    assert evaluated.code in (0, 1), evaluated.err
    assert (f"warning: 40 of {len(test)} row(s) of datasets/test.csv are also in the training "
            "data (datasets/train.csv or validation.csv: the same features and label): the test "
            "scores are optimistic; remove them from one side") in evaluated.err

    rows = pd.DataFrame({"x": [1.0, 2.0, np.nan], "c": ["a", "b", np.nan]})
    assert shared_rows(rows, np.array([1, 0, 1]), [(rows.iloc[::-1], np.array(["1", "0", "1"]))]
                       ) == 3  # any order; a label read as text is the same label
    assert shared_rows(rows, np.array([0, 0, 1]), [(rows, np.array([1, 0, 1]))]) == 2
    assert shared_rows(rows, np.array([1, 0, 1]), []) == 0
