"""The model API that serving builds on: bundles, records, predictions; for a model of each task
trained by `mlscaffold train`."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlscaffold.lifecycle.errors import NotFoundError
from mlscaffold.lifecycle.model import (
    SchemaMismatch,
    frame_from_records,
    load_bundle,
    predict_frame,
    resolve_model_dir,
    save_bundle,
)

from .conftest import TASKS, read_spec


@pytest.fixture(scope="module", params=TASKS)
def task(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def bundle(trained, task):
    return load_bundle(resolve_model_dir(trained(task), "exp-001"))


@pytest.fixture(scope="module")
def records(trained, task, bundle):
    frame = pd.read_csv(trained(task) / "datasets" / "test.csv").head(5)
    frame = frame.drop(columns=[bundle.label]).astype(object)
    return frame.where(frame.notna(), None).to_dict(orient="records")


def test_bundle_metadata(bundle, trained, task):
    spec = read_spec(trained(task))
    assert bundle.task == task and bundle.label == spec["label"] and bundle.name == spec["name"]
    assert set(bundle.features.values()) <= {"numeric", "categorical", "dropped"}
    assert bundle.metric == spec["metric"] and bundle.metric in bundle.metrics
    assert (bundle.classes is None) == (task == "regression")


def test_predictions_are_plain_json(bundle, records):
    result = predict_frame(bundle, frame_from_records(bundle, records))
    assert len(result["predictions"]) == len(records)
    json.dumps(result)
    if bundle.classes is None:
        assert result["probabilities"] is None
        assert all(isinstance(value, float) for value in result["predictions"])
    else:
        assert all(p in bundle.classes for p in result["predictions"])
        assert all(len(row) == len(bundle.classes) for row in result["probabilities"])
        assert all(abs(sum(row) - 1) < 1e-6 for row in result["probabilities"])


def test_one_record_with_missing_values_and_extra_keys(bundle):
    record = {name: None for name in bundle.features} | {"not_a_feature": 1}
    assert len(predict_frame(bundle, frame_from_records(bundle, [record]))["predictions"]) == 1


def test_missing_fields_raise_schema_mismatch(bundle, records):
    required = bundle.input_columns[0]
    incomplete = [{k: v for k, v in record.items() if k != required} for record in records]
    with pytest.raises(SchemaMismatch) as caught:
        frame_from_records(bundle, incomplete)
    assert caught.value.missing == [required] and required in str(caught.value)
    with pytest.raises(SchemaMismatch):
        predict_frame(bundle, pd.DataFrame(incomplete))


def test_text_in_a_numeric_field_is_a_value_error(bundle, records):
    numeric = [name for name, kind in bundle.features.items() if kind == "numeric"]
    assert numeric, "the sample data of every task has numeric features"
    with pytest.raises(ValueError, match=numeric[0]):
        frame_from_records(bundle, [records[0] | {numeric[0]: "lots"}])


def test_save_and_load_round_trip(bundle, records, tmp_path):
    save_bundle(bundle, tmp_path)
    again = load_bundle(tmp_path)
    frame = frame_from_records(bundle, records)
    assert predict_frame(again, frame) == predict_frame(bundle, frame)
    assert json.loads((tmp_path / "model.json").read_text())["features"] == bundle.features


def test_resolve_model_dir_errors(trained, task):
    project = trained(task)
    with pytest.raises(NotFoundError, match="promote"):
        resolve_model_dir(project, "production")
    with pytest.raises(NotFoundError, match="list"):
        resolve_model_dir(project, "exp-404")
    with pytest.raises(NotFoundError,
                       match=r"use production \(or prod\), staging or an experiment id"):
        resolve_model_dir(project, "latest")


def test_a_folder_without_a_model_is_named(tmp_path):
    with pytest.raises(NotFoundError, match=f"no model in {tmp_path}"):
        load_bundle(tmp_path)
