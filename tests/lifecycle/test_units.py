"""Building blocks: metrics table, schema inference, drift statistics, experiment ids (the
search's own are in test_search.py)."""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from mlscaffold import catalog, files
from mlscaffold.lifecycle.config import Layout
from mlscaffold.lifecycle.drift import categorical_psi, numeric_psi, sampling_psi, too_few_rows
from mlscaffold.lifecycle.errors import ConfigError, DataError
from mlscaffold.lifecycle.experiments import read_index, record_experiment, reserve_experiment
from mlscaffold.lifecycle.files import atomic_write_text
from mlscaffold.lifecycle.metrics import METRICS, TASKS, chance_warning, get_metric, metrics_for
from mlscaffold.lifecycle.schema import (
    build_preprocessor,
    coerce_features,
    date_parts,
    dates_as_parts,
    days_of,
    infer_schema,
    parse_dates,
    parse_numbers,
    text_warnings,
)


def test_every_task_has_metrics_and_every_metric_a_direction():
    for task in TASKS:
        assert [metric.name for metric in metrics_for(task)] == list(catalog.TASKS[task].metrics)
    assert METRICS["rmse"].is_better(1.0, 2.0) and METRICS["r2"].is_better(0.9, 0.1)
    assert METRICS["log_loss"].passes(0.2, 0.3) and not METRICS["roc_auc"].passes(0.6, 0.7)
    assert sorted([3.0, None, 1.0], key=METRICS["mae"].sort_key) == [1.0, 3.0, None]


def test_get_metric_checks_the_task():
    assert get_metric("f1", "multiclass-classification").higher_is_better
    with pytest.raises(ConfigError, match="does not apply"):
        get_metric("accuracy", "regression")
    with pytest.raises(ConfigError, match="unknown metric"):
        get_metric("auc", "binary-classification")


def test_schema_inference_finds_ids_constants_numbers_and_categories():
    rows = 40
    frame = pd.DataFrame(
        {
            "order_id": [f"O-{i:04d}" for i in range(rows)],
            "row_number": range(rows),
            "source": ["batch"] * rows,
            "amount": [float(i % 7) if i % 5 else None for i in range(rows)],
            "colour": [["red", "green", None][i % 3] for i in range(rows)],
            "urgent": [i % 2 == 0 for i in range(rows)],
            "target": [i % 2 for i in range(rows)],
        }
    )
    schema = infer_schema(frame, "target")
    kinds = {column.name: column.kind for column in schema.columns}
    assert kinds == {
        "order_id": "id-like",
        "row_number": "id-like",
        "source": "constant",
        "amount": "numeric",
        "colour": "categorical",
        "urgent": "categorical",
    }
    assert list(schema.features) == list(kinds)
    assert schema.features["order_id"] == "dropped"


def test_a_constant_column_is_noted_with_its_plain_value():
    frame = pd.DataFrame({"count": [5, 5, 5], "rate": [1.5, 1.5, None], "flag": [True] * 3,
                          "country": ["US"] * 3, "x": [1.0, 2.0, 3.0], "target": [0, 1, 0]})
    notes = {column.name: column.note for column in infer_schema(frame, "target").columns
             if column.kind == "constant"}
    assert notes == {"count": "always 5", "rate": "always 1.5 or missing", "flag": "always True",
                     "country": "always 'US'"}


def test_text_columns_of_iso_dates_are_read_as_dates():
    rows = 40
    frame = pd.DataFrame(
        {
            "signed_up": [f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(rows)],
            "week": [["2026-01-05", "2026-01-12", "2026-01-19"][i % 3] for i in range(rows)],
            "seen_at": [f"2026-03-01T{i % 24:02d}:{i:02d}:00Z" for i in range(rows)],
            "compact": ["20260131" if i % 2 else "20260201" for i in range(rows)],  # numbers
            "year": [str(2000 + i % 3) for i in range(rows)],  # numbers, not dates
            "plan": [["basic", "2026-01-05"][i % 2] for i in range(rows)],  # half dates: text
            "target": [i % 2 for i in range(rows)],
        }
    )
    schema = infer_schema(frame, "target")
    assert schema.features == {"signed_up": "date", "week": "date", "seen_at": "date",
                               "compact": "numeric", "year": "numeric", "plan": "categorical"}
    assert text_warnings("train.csv", schema) == []  # a date column is read as dates


def test_a_date_becomes_its_day_month_weekday_day_of_month_and_hour():
    frame = pd.DataFrame({"at": ["2026-01-31T08:30:00Z", "2026-02-01", None, "soon",
                                 "2026-01-31T10:30:00+02:00"]})
    parts = date_parts(frame)
    days = (pd.Timestamp("2026-01-31 08:30") - pd.Timestamp("1970-01-01")).total_seconds() / 86400
    np.testing.assert_allclose(parts[0], [days, 1, 5, 31, 8.5])  # a Saturday
    np.testing.assert_allclose(parts[1], [days + 15.5 / 24, 2, 6, 1, 0])
    assert np.isnan(parts[2]).all() and np.isnan(parts[3]).all()  # missing, not a date
    np.testing.assert_allclose(parts[4], parts[0])  # the same instant: times are read as UTC
    features = {"at": "date", "n": "numeric"}
    training = pd.DataFrame({"at": ["2026-01-05", "2026-03-01", None], "n": [1.0, 2.0, 3.0]})
    preprocessor = build_preprocessor(features).fit(coerce_features(training, features))
    assert list(preprocessor.get_feature_names_out()) == [
        "numeric__n", "date__at.days", "date__at.month", "date__at.weekday", "date__at.day",
        "date__at.hour"]
    later = preprocessor.transform(coerce_features(
        pd.DataFrame({"at": ["2027-06-01"], "n": [1.0]}), features))
    assert later[0][1] > 1  # a later date than any in training reads as later, not unknown


def test_date_parts_are_what_pandas_reads_before_1970_across_midnight_and_offsets():
    """dates_as_parts computes in numpy what pandas' accessors give (serving pays no accessor)."""
    values = ["1969-12-31T23:59:00", "1900-03-01T00:01", "2024-02-29T23:59:59+02:00",
              "2026-11-02 17:45", "2038-01-19T03:14:08Z", None, "soon", "1970-01-01"]
    stamps = parse_dates(pd.Series(values))
    expected = [days_of(stamps), stamps.dt.month, stamps.dt.day_of_week, stamps.dt.day,
                stamps.dt.hour + stamps.dt.minute / 60]
    for part, want in zip(dates_as_parts(values), expected, strict=True):
        np.testing.assert_array_equal(part, np.asarray(want, dtype="float64"))
    assert dates_as_parts(values)[2][0] == 2  # 1969-12-31 was a Wednesday


def test_numbers_written_with_commas_are_found_and_named_with_what_the_model_makes_of_them():
    rows = 40
    frame = pd.DataFrame(
        {
            "decimal": [f"{i},{i % 10}5" for i in range(rows)],  # 0,05 1,15 ...
            "european": [f"{1 + i % 9}.{i:03d},50" for i in range(rows)],  # 1.000,50
            "thousands": [f"{1 + i % 9},{i:03d},000" for i in range(rows)],  # 1,000,000
            "mixed": [str(i * 10) if i % 2 else f"1,{i:03d}" for i in range(rows)],  # 10 1,002
            "few": [f"{i},5" if i == 0 else str(i) for i in range(rows)],  # numeric, 1 stray
            "lists": [f"{i % 3},{i % 5},{i % 7}" for i in range(rows)],  # not numbers
            "words": [["a,b", "c,d"][i % 2] for i in range(rows)],
            "target": [i % 2 for i in range(rows)],
        }
    )
    schema = infer_schema(frame, "target")
    commas = "numbers written with commas"
    assert schema.unread == {"decimal": ("id-like", commas, "0,05"),
                             "european": ("id-like", commas, "1.000,50"),
                             "thousands": ("id-like", commas, "1,000,000"),
                             "mixed": ("id-like", commas, "1,000")}
    assert {c.name: c.kind for c in schema.columns}["few"] == "numeric"  # a stray, read as missing
    frame["grouped"] = [["1,5", "2,5"][i % 2] for i in range(rows)]
    warnings = text_warnings("train.csv", infer_schema(frame, "target"))
    assert warnings[-1] == (
        "train.csv: column 'grouped' holds numbers written with commas ('1,5'), read as text: "
        "one-hot encoded as categories; write them as plain numbers (a decimal point, no "
        "thousands separators) to have them read as numbers")
    assert warnings[0].startswith("train.csv: column 'decimal' holds numbers written with commas "
                                  "('0,05'), read as text and dropped as id-like; write them")


def test_dates_written_day_or_month_first_are_named_not_guessed():
    rows = 40
    frame = pd.DataFrame({
        "day_first": [f"{1 + i % 28:02d}/{1 + i % 12:02d}/2026" for i in range(rows)],
        "dotted": [["31.01.26 08:00", "01.02.26 09:30"][i % 2] for i in range(rows)],
        "slashed": [f"2026/{1 + i % 12:02d}/{1 + i % 28:02d}" for i in range(rows)],  # ISO-like
        "versions": [f"1.{i % 5}.{i % 3}" for i in range(rows)],  # not dates
        "target": [i % 2 for i in range(rows)],
    })
    schema = infer_schema(frame, "target")
    assert schema.features["slashed"] == "date"  # year first: read as the date it is
    assert schema.unread == {
        "day_first": ("id-like", "dates not written in ISO 8601", "01/01/2026"),
        "dotted": ("categorical", "dates not written in ISO 8601", "31.01.26 08:00")}
    assert text_warnings("train.csv", schema)[1] == (
        "train.csv: column 'dotted' holds dates not written in ISO 8601 ('31.01.26 08:00'), "
        "read as text: one-hot encoded as categories; write them as ISO 8601 (2026-01-31, "
        "2026-01-31T08:00Z) to have them read as dates")


def test_a_number_written_with_a_comma_where_the_model_reads_numbers_says_how_to_write_it():
    with pytest.raises(DataError, match=r"^column 'x' must be numeric; got '1,5', '2\.000,1'; "
                                        r"write numbers with a decimal point and no thousands "):
        parse_numbers(pd.Series(["1,5", "2.000,1", "3"]), "x")
    with pytest.raises(DataError, match=r"^column 'x' must be numeric; got 'eight', '1,5'$"):
        parse_numbers(pd.Series(["eight", "1,5"]), "x")


def test_coercion_unifies_missing_values_and_numbers():
    features = {"n": "numeric", "c": "categorical", "skip": "dropped"}
    frame = pd.DataFrame({"n": [1, None, "2.5"], "c": ["a", None, 3], "skip": [1, 2, 3]})
    coerced = coerce_features(frame, features)
    assert list(coerced.columns) == ["n", "c"]
    assert coerced["n"].dtype == "float64" and coerced["n"].iloc[2] == 2.5
    assert coerced["c"].iloc[0] == "a" and coerced["c"].iloc[2] == "3"
    assert np.isnan(coerced["c"].iloc[1])


def test_psi_is_zero_for_the_same_data_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(0, 1, 2000))
    assert numeric_psi(reference, reference) == pytest.approx(0, abs=1e-9)
    assert numeric_psi(reference, pd.Series(rng.normal(0, 1, 2000))) < 0.1
    assert numeric_psi(reference, pd.Series(rng.normal(2, 1, 2000))) > 0.2
    colours = pd.Series(["red"] * 50 + ["blue"] * 50)
    assert categorical_psi(colours, colours) == pytest.approx(0, abs=1e-9)
    assert categorical_psi(colours, pd.Series(["green"] * 100)) > 0.2


def test_a_many_category_column_drifts_on_new_categories_not_on_a_random_split():
    """A bin per category made a random half of a 300-category column drift (PSI 1.15)."""
    rng = np.random.default_rng(7)
    stores = pd.Series(rng.choice([f"s{i}" for i in range(300)], 2000))
    reference, batch = stores[:1500], stores[1500:].reset_index(drop=True)
    assert categorical_psi(reference, batch) < 0.1
    opened = pd.concat([batch[:460], pd.Series(["new store"] * 40)], ignore_index=True)
    assert categorical_psi(reference, opened) > 0.2  # 8% of rows in a category never seen
    rarer = pd.Series(["a"] * 900 + [f"r{i}" for i in range(100)])
    assert categorical_psi(rarer, pd.Series(["a"] * 500 + ["r1"] * 500)) > 0.2  # the tail grew


def test_a_batch_too_small_for_the_threshold_is_named():
    assert too_few_rows(200, 800, 0.2) == ""  # the sample data's test split
    assert too_few_rows(100, 1500, 0.2) == (
        "100 rows against 1500: PSI is about 0.13 by chance alone, against the threshold 0.2; "
        "compare at least 131 rows")
    assert too_few_rows(100, 100, 0.2).endswith("compare more rows, and a larger reference")
    # the figure it rests on: two samples of one distribution over BINS bins
    rng = np.random.default_rng(3)
    chance = [categorical_psi(pd.Series(rng.choice(list("abcdefghijkl"), 1500)),
                              pd.Series(rng.choice(list("abcdefghijkl"), 100)))
              for _ in range(200)]
    assert np.mean(chance) == pytest.approx(sampling_psi(100, 1500), rel=0.25)


def test_a_model_no_better_than_chance_is_named():
    labels = np.array(["no"] * 396 + ["yes"] * 4)
    assert chance_warning("roc_auc", 0.4727, labels) == (
        "the best model's roc_auc 0.4727 is no better than chance (0.5): the columns may not "
        "predict the label, or the data is too small; its rarest class, 'yes', has 4 of 400 "
        "rows; look at the data before promoting it")
    assert chance_warning("roc_auc", 0.51, labels) == ""
    assert "accuracy 0.99 is no better than chance (0.99)" in chance_warning("accuracy", 0.99,
                                                                             labels)
    assert chance_warning("balanced_accuracy", 0.5, labels).startswith(
        "the best model's balanced_accuracy 0.5 is no better than chance (0.5)")
    assert chance_warning("r2", -0.2, np.arange(10.0)).endswith(
        "(0): the columns may not predict the label, or the data is too small; look at the "
        "data before promoting it")
    assert chance_warning("f1", 0.0, labels) == chance_warning("roc_auc", None, labels) == ""


def test_concurrent_reservations_get_distinct_ids(tmp_path):
    layout = Layout(tmp_path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        reserved = list(pool.map(lambda _: reserve_experiment(layout)[0], range(24)))
    assert len(set(reserved)) == 24
    assert all(len(name) == len("exp-001") for name in reserved)


def test_a_fresh_clone_numbers_experiments_after_those_its_registry_names(tmp_path):
    layout = Layout(tmp_path)
    layout.registry.parent.mkdir(parents=True)
    layout.registry.write_text(json.dumps({"stages": {
        "staging": {"current": 2, "history": [1, 2], "versions": [
            {"version": 1, "experiment": "exp-001"}, {"version": 2, "experiment": "exp-004"}]},
        "production": {"current": None, "history": [], "versions": []}}}))
    assert reserve_experiment(layout)[0] == "exp-005"  # experiments/ itself is empty
    layout.registry.write_text("{not json")  # the registry's commands say so; numbering goes on
    assert reserve_experiment(layout)[0] == "exp-006"


def test_concurrent_index_updates_keep_every_entry(tmp_path):
    layout = Layout(tmp_path)
    entries = [{"id": f"exp-{i:03d}", "validation": {}} for i in range(1, 21)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda entry: record_experiment(layout, entry), entries))
    assert [entry["id"] for entry in read_index(layout)] == [entry["id"] for entry in entries]


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_text(tmp_path / "file.txt", "one")
    atomic_write_text(tmp_path / "file.txt", "two")
    assert os.listdir(tmp_path) == ["file.txt"]
    assert (tmp_path / "file.txt").read_text() == "two"


@pytest.mark.parametrize(("umask", "file_mode", "folder_mode"),
                         [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)],
                         ids=["umask-022", "umask-077", "umask-002"])
def test_atomic_writes_take_the_umasks_modes(tmp_path, umask, file_mode, folder_mode):
    """What open() and mkdir() would give, not mkstemp's 0600 and mkdtemp's 0700: the writers
    of `new`, `ci` and the lifecycle (which imports them)."""
    old_umask = os.umask(umask)
    try:
        written = files.atomic_write_text(tmp_path / "file.txt", "one")
        folder = files.temporary_directory(tmp_path, ".stage-")
    finally:
        os.umask(old_umask)
    assert written.stat().st_mode & 0o777 == file_mode
    assert folder.stat().st_mode & 0o777 == folder_mode
    assert folder.name.startswith(".stage-")



def test_files_separated_by_semicolons_or_tabs_are_read_as_their_columns(tmp_path):
    from mlscaffold.lifecycle.data import read_csv

    for name, separator in (("semicolons.csv", ";"), ("tabs.tsv", "\t")):
        path = tmp_path / name
        path.write_text(separator.join(["a", "b;c" if separator == "\t" else "b", "label"])
                        + "\n" + separator.join(["1", "x", "0"]) + "\n")
        frame = read_csv(path)
        assert list(frame.columns) == ["a", "b;c" if separator == "\t" else "b", "label"]
        assert frame.iloc[0].tolist() == [1, "x", 0]
    single = tmp_path / "single.csv"
    single.write_text("amount\n1\n2\n")  # one column, no separator at all: as it is
    assert list(read_csv(single).columns) == ["amount"]
    european = tmp_path / "european.csv.gz"  # decimal commas, compressed
    european.write_bytes(gzip.compress(b"spend;plan\n64,26;basic\n1.234,5;pro\n"))
    frame = read_csv(european)
    assert frame.to_dict("list") == {"spend": ["64,26", "1.234,5"], "plan": ["basic", "pro"]}


def test_a_file_that_is_not_utf8_is_refused_naming_the_line_and_byte(tmp_path):
    from mlscaffold.lifecycle.data import read_csv

    path = tmp_path / "latin.csv"
    path.write_bytes(b"name,label\n" + "Jos\u00e9,1\n".encode("latin-1") * 3)
    with pytest.raises(DataError) as caught:
        read_csv(path)
    assert str(caught.value) == (f"cannot read {path}: it is not UTF-8 text (line 2: byte 0xe9);"
                                 " save it as UTF-8 (a spreadsheet's \"CSV UTF-8\")")
    workbook = tmp_path / "book.xlsx"
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("xl/workbook.xml", "\u00e9" * 100)
    with pytest.raises(DataError, match=r"it is a ZIP archive \(an Excel workbook\?\), not CSV "
                                        r"text; save it as CSV UTF-8$"):
        read_csv(workbook)


def test_the_feature_store_reads_a_file_separated_by_semicolons_as_the_lifecycle_does(tmp_path):
    from mlscaffold.lifecycle.data import read_csv
    from mlscaffold.stacks.columns import separator_of
    from mlscaffold.stacks.feature_schema import feature_definitions_from_csv

    path = tmp_path / "train.csv"
    path.write_text("customer_id;spend;label\nc1;1.5;0\nc2;2.5;1\n")
    assert list(read_csv(path).columns) == ["customer_id", "spend", "label"]
    schema = feature_definitions_from_csv(path, "label", None)
    assert "spend" in {feature.name for feature in schema.features}
    assert [separator_of(h) for h in ("a,b;c", "a;b\tc;d", "a\tb", "a")] == [",", ";", "\t", ","]
