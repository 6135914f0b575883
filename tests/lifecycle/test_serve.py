"""The model server: SageMaker, KServe v1 and KServe v2 routes, bad requests, concurrency, the
`mlscaffold serve` command and its environment defaults, SIGTERM draining in-flight requests.

Most servers run in a thread on a free loopback port and serve a small model fitted here, one per
task, so the protocols are checked for every task; a model of each task trained by
`mlscaffold train` goes through it too, and one real `mlscaffold serve` process is stopped with
SIGTERM while a request is in flight.
"""

from __future__ import annotations

import asyncio
import csv
import http.client
import io
import json
import re
import signal
import socket
import subprocess
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlscaffold.lifecycle import serving as serve_module
from mlscaffold.lifecycle.config import DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT
from mlscaffold.lifecycle.data import read_csv, text_columns
from mlscaffold.lifecycle.ensemble import EnsembleClassifier, EnsembleRegressor
from mlscaffold.lifecycle.model import (
    ModelBundle,
    frame_from_records,
    load_bundle,
    predict_frame,
    resolve_model_dir,
    save_bundle,
)
from mlscaffold.lifecycle.schema import build_preprocessor, coerce_features
from mlscaffold.lifecycle.serving import build_server
from mlscaffold.lifecycle.serving.batching import Predictor
from mlscaffold.lifecycle.serving.compiled import CompiledModel, _day_offsets, _numeric_offsets
from mlscaffold.lifecycle.serving.records import Columns

from .conftest import (
    PATIENCE_SECONDS,
    TASKS,
    accepts_connections,
    assert_error,
    invoke,
    package_dir,
    python_m,
    run_cli,
    wait_for,
)

NAME = "test-model"
BODY_LIMIT = 64 * 1024
# column order matters: headerless rows follow it; row_id is dropped by the model
FEATURES = {"row_id": "dropped", "age": "numeric", "plan": "categorical", "income": "numeric",
            "city": "categorical"}
INPUTS = [c for c, kind in FEATURES.items() if kind != "dropped"]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "row_id": [f"R{seed}-{i}" for i in range(rows)],
        "age": rng.integers(18, 80, rows).astype(float),
        "plan": rng.choice(["basic", "plus", "pro"], rows).astype(object),
        "income": rng.normal(50.0, 15.0, rows).round(2),
        "city": rng.choice(["north", "south"], rows).astype(object),
    })
    frame.loc[::7, "age"] = np.nan
    frame.loc[::11, "plan"] = None
    return frame


def _labels(task: str, score: pd.Series, offset: float = 0.0) -> pd.Series:
    """The task's labels of `score`: above its median (binary), its thirds (multiclass), or
    `offset` + the score (regression)."""
    if task == "binary-classification":
        return (score > score.median()).astype(int)
    if task == "multiclass-classification":
        return pd.cut(score, 3, labels=["low", "mid", "high"]).astype(str)
    return score + offset


def _saved(pipeline: Pipeline, task: str, features: dict[str, str],
           directory: Path) -> ModelBundle:
    """The fitted `pipeline` as a model bundle, saved in `directory` and loaded back."""
    classes = None if task == "regression" else pipeline.classes_.tolist()
    save_bundle(ModelBundle(pipeline=pipeline, task=task, label="label", features=features,
                            classes=classes, metric="m", metrics={}, name=NAME), directory)
    return load_bundle(directory)


def _fit(task: str, directory: Path) -> ModelBundle:
    frame = _frame(150, 1)
    score = frame["income"] / 10 + frame["age"].fillna(40) / 20 + (frame["plan"] == "pro") * 2
    label = _labels(task, score)
    numeric = [c for c in INPUTS if FEATURES[c] == "numeric"]
    categorical = [c for c in INPUTS if FEATURES[c] == "categorical"]
    preprocess = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), numeric),
        ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                  ("one_hot", OneHotEncoder(handle_unknown="ignore"))]),
         categorical),
    ], sparse_threshold=0.0)
    estimator = Ridge() if task == "regression" else LogisticRegression(max_iter=500)
    pipeline = Pipeline([("preprocess", preprocess), ("model", estimator)])
    pipeline.fit(frame[INPUTS], label)
    return _saved(pipeline, task, FEATURES, directory)


def _records(rows: int = 5, seed: int = 2) -> list[dict]:
    frame = _frame(rows, seed).astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


class Client:
    """A keep-alive HTTP client for one test server."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE_SECONDS)

    def call(self, method: str, path: str, body=None, content_type: str = "application/json",
             headers: dict | None = None):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        sent = dict(headers or {})
        if body is not None:
            sent.setdefault("Content-Type", content_type)
        self.conn.request(method, path, body=body, headers=sent)
        response = self.conn.getresponse()
        data = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(data) if kind == "application/json" else data.decode()

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module", params=TASKS)
def served(request, tmp_path_factory):
    """(bundle, port) of a running server for each task."""
    bundle = _fit(request.param, tmp_path_factory.mktemp(request.param))
    server, thread = _serving(bundle, max_body_bytes=BODY_LIMIT)
    yield bundle, server.port
    _stop(server, thread)


@pytest.fixture
def client(served):
    client = Client(served[1])
    yield client
    client.close()


def _expected(bundle: ModelBundle, records: list[dict]) -> dict:
    return predict_frame(bundle, frame_from_records(bundle, records))


def _same(actual: list, expected: list) -> bool:
    if expected and all(isinstance(v, float) for v in expected):
        return bool(np.allclose(actual, expected))
    return list(actual) == list(expected)


def _serving(bundle: ModelBundle, **options):
    """A server on a free loopback port, serving in a thread (it accepts connections at once:
    the socket is bound and listening when build_server returns)."""
    server = build_server(bundle, "127.0.0.1", 0, NAME, **options)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    return server, thread


def _stop(server, thread) -> None:
    server.stop()
    thread.join(PATIENCE_SECONDS)
    assert not thread.is_alive()


@pytest.mark.parametrize("task", TASKS)
def test_a_trained_model_serves_the_project_data_as_csv(trained, task):
    """The model `mlscaffold train` made; test.csv rows as a user sends them, header and all."""
    project = trained(task)
    bundle = load_bundle(resolve_model_dir(project, "exp-001"))
    lines = (project / "datasets" / "test.csv").read_text(encoding="utf-8").splitlines()[:21]
    expected = predict_frame(bundle, pd.read_csv(io.StringIO("\n".join(lines))))["predictions"]
    server, thread = _serving(bundle)
    try:
        client = Client(server.port)
        status, doc = client.call("POST", "/invocations", "\n".join(lines), "text/csv")
        client.close()
    finally:
        _stop(server, thread)
    assert status == 200, doc
    assert len(expected) == 20 and _same(doc["predictions"], expected)


def test_health_and_metadata_routes(served, client):
    bundle, _ = served
    assert client.call("GET", "/ping") == (200, {"status": "healthy"})
    assert client.call("GET", "/v2/health/live") == (200, {"live": True})
    assert client.call("GET", "/v2/health/ready") == (200, {"ready": True})
    assert client.call("GET", f"/v1/models/{NAME}") == (200, {"name": NAME, "ready": True})
    assert client.call("GET", f"/v2/models/{NAME}/ready")[0] == 200
    status, meta = client.call("GET", f"/v2/models/{NAME}")
    assert status == 200 and meta["name"] == NAME
    assert [t["name"] for t in meta["inputs"]] == INPUTS
    assert {t["name"]: t["datatype"] for t in meta["inputs"]}["plan"] == "BYTES"
    outputs = [t["name"] for t in meta["outputs"]]
    assert outputs == (["predict"] if bundle.task == "regression" else ["predict", "predict_proba"])


def test_invocations_csv_with_and_without_header(served, client):
    bundle, _ = served
    records = _records()
    expected = _expected(bundle, records)["predictions"]

    def cell(value):
        return "" if value is None else str(value)

    every_column = "\n".join(",".join(cell(r[c]) for c in FEATURES) for r in records)
    inputs_only = "\n".join(",".join(cell(r[c]) for c in INPUTS) for r in records)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*reversed(INPUTS), "label"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**{k: cell(v) for k, v in r.items()}, "label": "x"} for r in records)
    for body in (every_column, inputs_only, buffer.getvalue()):
        status, doc = client.call("POST", "/invocations", body, "text/csv")
        assert status == 200, doc
        assert _same(doc["predictions"], expected)
        assert ("probabilities" in doc) == (bundle.task != "regression")
    status, text = client.call("POST", "/invocations", inputs_only, "text/csv",
                               {"Accept": "text/csv"})
    assert status == 200 and len(text.strip().splitlines()) == len(records)


def test_invocations_json_shapes(served, client):
    bundle, _ = served
    records = _records(4)
    expected = _expected(bundle, records)
    columns = {c: [r[c] for r in records] for c in INPUTS}
    for body in ({"instances": records}, records, {"inputs": columns},
                 {"instances": [[r[c] for c in INPUTS] for r in records]}):
        status, doc = client.call("POST", "/invocations", body)
        assert status == 200, doc
        assert _same(doc["predictions"], expected["predictions"])
        if bundle.task != "regression":
            assert np.allclose(doc["probabilities"], expected["probabilities"], atol=1e-6)
            assert len(doc["probabilities"][0]) == len(bundle.classes)
    # one record, bare or in "instances": a key the model does not know is ignored either way
    for body in ({**records[0], "note": "x"}, {"instances": [{**records[0], "note": "x"}]}):
        status, doc = client.call("POST", "/invocations", body)
        assert status == 200 and _same(doc["predictions"], expected["predictions"][:1]), doc


def test_kserve_v1_predict(served, client):
    bundle, _ = served
    records = _records(3)
    expected = _expected(bundle, records)["predictions"]
    for instances in (records, [[r[c] for c in FEATURES] for r in records]):
        status, doc = client.call("POST", f"/v1/models/{NAME}:predict", {"instances": instances})
        assert status == 200, doc
        assert _same(doc["predictions"], expected)


def test_kserve_v2_infer_column_tensors_and_matrix(served, client):
    bundle, _ = served
    records = _records(3)
    expected = _expected(bundle, records)
    tensors = [{"name": c, "shape": [3],
                "datatype": "FP64" if FEATURES[c] == "numeric" else "BYTES",
                "data": [r[c] for r in records]} for c in INPUTS]
    status, doc = client.call("POST", f"/v2/models/{NAME}/infer",
                              {"id": "req-1", "inputs": tensors})
    assert status == 200, doc
    assert doc["model_name"] == NAME and doc["id"] == "req-1"
    # no "outputs" asked for: every output the metadata lists
    outputs = {output["name"]: output for output in doc["outputs"]}
    offered = ["predict"] if bundle.task == "regression" else ["predict", "predict_proba"]
    assert list(outputs) == offered
    assert outputs["predict"]["shape"] == [3]
    assert _same(outputs["predict"]["data"], expected["predictions"])
    if bundle.task != "regression":
        assert outputs["predict_proba"]["shape"] == [3, len(bundle.classes)]
    status, doc = client.call("POST", f"/v2/models/{NAME}/infer",
                              {"inputs": tensors, "outputs": [{"name": "predict"}]})
    assert status == 200 and [o["name"] for o in doc["outputs"]] == ["predict"]

    matrix = {"inputs": [{"name": "x", "shape": [3, len(INPUTS)], "datatype": "BYTES",
                          "data": [[r[c] for c in INPUTS] for r in records]}]}
    if bundle.task != "regression":
        matrix["outputs"] = [{"name": "predict"}, {"name": "predict_proba"}]
    status, doc = client.call("POST", f"/v2/models/{NAME}/versions/1/infer", matrix)
    assert status == 200, doc
    assert _same(doc["outputs"][0]["data"], expected["predictions"])
    if bundle.task == "regression":
        status, doc = client.call("POST", f"/v2/models/{NAME}/infer",
                                  {**matrix, "outputs": [{"name": "predict_proba"}]})
        assert status == 400 and "classification" in doc["error"]
    else:
        proba = doc["outputs"][1]
        assert proba["shape"] == [3, len(bundle.classes)]
        assert np.allclose(proba["data"], np.ravel(expected["probabilities"]), atol=1e-6)


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status", "needle"), [
    ("POST", "/invocations", "{not json", "application/json", 400, "malformed JSON"),
    ("POST", f"/v2/models/{NAME}/infer", "[1, 2", "application/json", 400, "malformed JSON"),
    ("POST", "/invocations", "a=1", "application/x-www-form-urlencoded", 415, "content type"),
    ("POST", "/invocations", {"instances": [{"age": 30, "plan": "basic"}]}, "application/json",
     400, "missing columns: income, city"),
    ("POST", "/invocations", {"instances": [{"age": 30, "plan": "basic", "incme": 1,
                                             "city": "north"}]}, "application/json",
     400, "missing columns: income ('incme' sent: did you mean 'income'?)"),
    ("POST", "/invocations", {"age": 30, "plan": "basic", "incme": 1, "city": "north"},
     "application/json", 400, "missing columns: income ('incme' sent: did you mean 'income'?)"),
    ("POST", "/invocations", {"instances": []}, "application/json", 400, "no rows"),
    ("POST", "/invocations", "1,2\n", "text/csv", 400, "values"),
    ("POST", "/invocations", "age,plan,city\n30,basic,north\n", "text/csv", 400,
     "missing columns: income"),
    ("POST", "/invocations", "age,plan,incme,city\n30,basic,1,north\n", "text/csv", 400,
     "missing columns: income ('incme' sent: did you mean 'income'?)"),
    ("POST", "/invocations", "R1,abc,basic,3.0,north\n", "text/csv", 400, "age must be a number"),
    ("POST", "/invocations", {"instances": [{"age": "old", "plan": "basic", "income": 1,
                                             "city": "north"}]}, "application/json", 400, "age"),
    ("POST", "/v1/models/other:predict", {"instances": []}, "application/json", 404, "other"),
    ("GET", "/v2/models/other", None, "", 404, "other"),
    ("POST", f"/v2/models/{NAME}/infer", {"inputs": [{"name": "x", "shape": [2, 4],
                                                      "datatype": "FP64", "data": [1, 2, 3]}]},
     "application/json", 400, "shape"),
    ("POST", f"/v2/models/{NAME}/infer", {"inputs": [{"name": "nope", "shape": [1],
                                                      "datatype": "FP64", "data": [1]}]},
     "application/json", 400, "unknown input 'nope'; send the columns"),
    ("POST", f"/v2/models/{NAME}/infer", {"inputs": [{"name": "citty", "shape": [1],
                                                      "datatype": "BYTES", "data": ["x"]}]},
     "application/json", 400, "unknown input 'citty' (did you mean 'city'?); send the columns"),
    ("POST", f"/v2/models/{NAME}/infer", {"inputs": [{"name": "age", "shape": [1],
                                                      "datatype": "FP64", "data": [1]}]},
     "application/json", 400, "missing columns"),
    ("POST", f"/v2/models/{NAME}/infer", {"inputs": []}, "application/json", 400, "inputs"),
    ("GET", "/nowhere", None, "", 404, "no route"),
    ("GET", "/invocations", None, "", 405, "POST"),
])
def test_bad_requests_get_a_4xx_json_error(served, client, method, path, body, content_type,
                                           status, needle):
    got, doc = client.call(method, path, body, content_type)
    assert got == status, doc
    assert needle in doc["error"]
    assert client.call("GET", "/ping")[0] == 200  # same connection, still serving


def test_oversized_body_gets_413_and_the_server_keeps_serving(served, client):
    status, doc = client.call("POST", "/invocations", "x" * (BODY_LIMIT + 1), "text/csv")
    assert status == 413 and "limit" in doc["error"]
    fresh = Client(served[1])
    assert fresh.call("GET", "/ping")[0] == 200
    fresh.close()


def test_concurrent_requests_get_their_own_predictions(served):
    bundle, port = served
    records = _records(40, seed=3)
    expected = _expected(bundle, records)["predictions"]
    failures = []

    def worker(offset: int) -> None:
        client = Client(port)
        for i in range(offset, len(records), 8):
            status, doc = client.call("POST", "/invocations", {"instances": [records[i]]})
            if status != 200 or not _same(doc["predictions"], [expected[i]]):
                failures.append((i, status, doc))
            # passes the column check, fails in the model: its batch is retried row by row
            bad = client.call("POST", "/invocations", {"instances": [{**records[i], "age": "?"}]})
            if bad[0] != 400 or "age" not in bad[1]["error"]:
                failures.append((i, "bad row not refused", bad))
        client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE_SECONDS)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures


def _table(bundle: ModelBundle, records: list[dict]):
    return Columns(bundle).from_records(records)


def _counting(function, calls: list, gate: threading.Event | None = None):
    """`function`, recording the rows of each call; the first call waits for `gate`."""
    def counted(rows):
        calls.append(rows.rows)
        if gate is not None and len(calls) == 1:
            assert gate.wait(PATIENCE_SECONDS)
        return function(rows)
    return counted


@pytest.mark.parametrize("fast_path", [True, False])
def test_requests_queued_together_are_predicted_in_one_model_call(served, fast_path):
    """Eight requests awaited at once, on one event loop: the batcher task runs after all of
    them are queued (asyncio runs ready tasks in order), so it finds eight, not one."""
    bundle, _ = served
    predictor = Predictor(bundle, max_batch_rows=256, fast_path=fast_path)
    calls: list[int] = []
    if fast_path:
        assert predictor.compiled is not None
        predictor.compiled.predict = _counting(predictor.compiled.predict, calls)
    else:
        predictor._pipeline = _counting(predictor._pipeline, calls)
    records = _records(8, seed=5)
    expected = _expected(bundle, records)["predictions"]

    async def predict_all():
        return await asyncio.gather(*(predictor.predict(_table(bundle, [record]),
                                                        PATIENCE_SECONDS) for record in records))

    try:
        results = asyncio.run(predict_all())
    finally:
        predictor.stop()
    assert calls == [8]
    assert [_same(result["predictions"], [value]) for result, value in zip(
        results, expected, strict=True)] == [True] * 8


def test_requests_arriving_while_the_model_computes_share_the_next_call(served):
    """Over HTTP, on the pipeline route: the first request's model call is held until the
    other N-1 requests are queued; they are then answered by one call, N requests in 2 calls."""
    bundle, _ = served
    server, thread = _serving(bundle, fast_path=False)
    predictor = server.app.predictor
    calls: list[int] = []
    gate = threading.Event()
    predictor._pipeline = _counting(predictor._pipeline, calls, gate)
    records = _records(6, seed=6)
    expected = _expected(bundle, records)["predictions"]
    answers: dict[int, tuple] = {}

    def send(index: int) -> None:
        client = Client(server.port)
        answers[index] = client.call("POST", "/invocations", {"instances": [records[index]]})
        client.close()

    try:
        first = threading.Thread(target=send, args=(0,))
        first.start()
        wait_for(lambda: len(calls) == 1, lambda: f"model calls: {calls}")
        others = [threading.Thread(target=send, args=(i,)) for i in range(1, len(records))]
        for other in others:
            other.start()
        wait_for(lambda: len(predictor._pending) == len(others),
                 lambda: f"{len(predictor._pending)} requests queued")
        gate.set()
        for worker in [first, *others]:
            worker.join(PATIENCE_SECONDS)
    finally:
        gate.set()
        _stop(server, thread)
    assert calls == [1, len(others)]
    for index, value in enumerate(expected):
        status, doc = answers[index]
        assert status == 200 and _same(doc["predictions"], [value]), (index, doc)


def _compiled_agrees(compiled: CompiledModel, bundle: ModelBundle, records: list[dict],
                     atol: float) -> dict:
    """Assert the ONNX graph predicts what the pipeline does (labels exactly, values within
    float32's precision); returns the pipeline's predictions."""
    got, expected = compiled.predict(_table(bundle, records)), _expected(bundle, records)
    if bundle.task == "regression":
        assert np.allclose(got["predictions"], expected["predictions"], rtol=1e-5)
    else:
        assert got["predictions"] == expected["predictions"]
        assert np.allclose(got["probabilities"], expected["probabilities"], atol=atol)
    return expected


def _invoked(bundle: ModelBundle, body, content_type: str = "application/json", **options):
    """(status, document, whether the fast route was on) of one /invocations request to a
    server of `bundle` started for it."""
    server, thread = _serving(bundle, **options)
    try:
        fast = server.app.predictor.compiled is not None
        client = Client(server.port)
        status, doc = client.call("POST", "/invocations", body, content_type=content_type)
        client.close()
    finally:
        _stop(server, thread)
    return status, doc, fast


def _assert_served_fast(bundle: ModelBundle, records: list[dict], atol: float) -> None:
    """`bundle` compiles, its graph agrees with the pipeline on `records`, and a server of it
    answers them on the fast route with the graph's predictions."""
    compiled = CompiledModel.build(bundle)
    assert compiled is not None
    expected = _compiled_agrees(compiled, bundle, records, atol=atol)
    status, doc, fast = _invoked(bundle, {"instances": records})
    assert fast and status == 200 and _same(doc["predictions"], expected["predictions"]), doc


def test_the_compiled_model_predicts_what_the_pipeline_does(served):
    """The ONNX graph agrees with the pipeline within float32 precision, labels exactly."""
    bundle, _ = served
    compiled = CompiledModel.build(bundle)
    assert compiled is not None
    records = _records(30, seed=4)
    _compiled_agrees(compiled, bundle, records, atol=1e-6)


def test_the_compiled_model_leaves_what_it_cannot_take_to_the_pipeline(served):
    bundle, _ = served
    compiled = CompiledModel.build(bundle)
    row = _records(1)[0]
    beyond = _table(bundle, [row])  # beyond float32 (the records refuse it; built here)
    beyond.columns["age"] = np.array([1e39])
    assert compiled.predict(beyond) is None
    marker = {**row, "plan": "\x00mlscaffold-missing"}
    assert compiled.predict(_table(bundle, [marker])) is None
    # a step skl2onnx does not know: no compiled model, and the server still predicts
    pipeline = Pipeline([("odd", FunctionTransformer(_passthrough)), *bundle.pipeline.steps])
    odd = ModelBundle(**{**bundle.__dict__, "pipeline": pipeline})
    assert CompiledModel.build(odd) is None


def _passthrough(frame):
    return frame


def _fit_ensemble(task: str, directory: Path) -> ModelBundle:
    """`_fit`'s pipeline with the ensemble `train` makes as its model: unequal weights over
    two linear models (a linear and a neighbours model for regression) and a neighbours model.
    No trees: those stay on the pipeline route (the test below)."""
    bundle = _fit(task, directory / "single")
    pipeline = bundle.pipeline
    frame = _frame(150, 1)[INPUTS]
    labels = pipeline.predict(frame)  # any labels of the task's kind will do
    features = pipeline[:-1].transform(frame)
    if task == "regression":
        members = [Ridge(), KNeighborsRegressor(15), KNeighborsRegressor(5)]
        kind = EnsembleRegressor
    else:
        members = [LogisticRegression(max_iter=500), LogisticRegression(C=0.1, max_iter=500),
                   KNeighborsClassifier(5)]
        kind = EnsembleClassifier
    ensemble = kind.from_fitted([m.fit(features, labels) for m in members], [3, 2, 1], labels)
    ensembled = Pipeline([*pipeline.steps[:-1], ("model", ensemble)])
    save_bundle(ModelBundle(**{**bundle.__dict__, "pipeline": ensembled}), directory)
    return load_bundle(directory)


def test_a_trained_ensemble_is_served_on_the_fast_route(served, tmp_path):
    """skl2onnx has no converter for the ensemble: each member compiles, the weights combine."""
    bundle = _fit_ensemble(served[0].task, tmp_path)
    compiled = CompiledModel.build(bundle)
    assert compiled is not None and len(compiled.parts) == 3
    records = _records(30, seed=7)
    expected = _compiled_agrees(compiled, bundle, records, atol=1e-6)
    status, doc, fast = _invoked(bundle, {"instances": records})
    assert fast and status == 200 and _same(doc["predictions"], expected["predictions"]), doc


def _fit_dated(task: str, directory: Path, span_days: float) -> tuple[ModelBundle, list[dict]]:
    """A linear model on `_frame`'s columns and a date column spread over `span_days`, through
    the project's own preprocessing (schema.build_preprocessor); and rows to send it, with a
    missing date, text that is no date and a time with an offset."""
    features = {**FEATURES, "signed_up": "date"}
    frame = _frame(150, 1)
    rng = np.random.default_rng(3)
    seconds = rng.uniform(0, span_days * 86400, len(frame))
    stamps = pd.Timestamp("2025-03-01") + pd.to_timedelta(seconds, unit="s")
    frame["signed_up"] = [stamp.isoformat() for stamp in stamps]
    score = frame["income"] / 10 + (stamps.month > 6) * 2 + seconds / (span_days * 86400)
    label = _labels(task, score)
    inputs = [c for c, kind in features.items() if kind != "dropped"]
    estimator = Ridge() if task == "regression" else LogisticRegression(max_iter=500)
    pipeline = Pipeline([("preprocess", build_preprocessor(features)), ("model", estimator)])
    pipeline.fit(coerce_features(frame, features), label)
    rows = frame[inputs].head(30).astype(object)
    records = rows.where(rows.notna(), None).to_dict("records")
    records[1]["signed_up"], records[2]["signed_up"] = None, "soon"
    records[3]["signed_up"] = "2025-08-01T23:30:00-02:00"
    return _saved(pipeline, task, features, directory), records


def test_a_model_with_a_date_column_is_served_on_the_fast_route(served, tmp_path):
    """The date is turned into its parts before the graph (ONNX has no date parsing); the graph
    takes the parts (named as skl2onnx allows: ``signed_up_days``) and imputes and scales them."""
    bundle, records = _fit_dated(served[0].task, tmp_path, span_days=700)
    _assert_served_fast(bundle, records, atol=1e-5)


def test_columns_named_as_people_name_them_are_served_on_the_fast_route(tmp_path):
    """skl2onnx makes input names valid (``monthly spend`` becomes ``monthly_spend``, which
    another column may already be): the graph is fed by position, not by column name."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"monthly spend": rng.normal(size=120), "monthly_spend": rng.normal(
        size=120), "plan.type": rng.choice(["a", "b"], 120).astype(object),
        "größe (cm)": rng.normal(170, 10, 120)})
    features = {c: "categorical" if c == "plan.type" else "numeric" for c in frame}
    label = (frame["monthly spend"] + (frame["plan.type"] == "a") > 0).astype(int)
    pipeline = Pipeline([("preprocess", build_preprocessor(features)),
                         ("model", LogisticRegression())]).fit(frame, label)
    bundle = ModelBundle(pipeline=pipeline, task="binary-classification", label="label",
                         features=features, classes=[0, 1], metric="m", metrics={}, name=NAME)
    compiled = CompiledModel.build(bundle)
    assert compiled is not None
    records = frame.head(20).to_dict("records")
    _compiled_agrees(compiled, bundle, records, atol=1e-6)


@pytest.mark.parametrize("span_days", [2 / 24, 90 / 86400])
def test_dates_spanning_hours_or_seconds_are_served_on_the_fast_route(served, tmp_path,
                                                                      span_days):
    """As float32 a day since 1970 is ~3 minutes: the days are fed relative to the training's
    median date, so a model of dates two hours (or 90 seconds) apart agrees with the pipeline."""
    bundle, records = _fit_dated(served[0].task, tmp_path, span_days=span_days)
    _assert_served_fast(bundle, records, atol=1e-5)


def test_only_a_date_step_that_passes_a_shift_through_is_fed_relative_days(served, tmp_path):
    """build_preprocessor's date step (impute, then a scaler that centres) is fed days relative
    to the training's median; a scaler that does not centre would not pass the shift through,
    so such a step is fed days since 1970."""
    bundle, _ = _fit_dated(served[0].task, tmp_path, span_days=700)
    (date_step,) = [step for _, step, columns in bundle.pipeline[0].transformers_
                    if columns == ["signed_up"]]
    median = date_step.steps[1][1].statistics_[0]
    assert 20_148 < median < 20_148 + 700  # 2025-03-01 is day 20,148
    assert _day_offsets(bundle.pipeline) == {"signed_up": median}
    date_step.steps[2][1].with_mean = False
    assert _day_offsets(bundle.pipeline) == {}


def _fit_stamped(task: str, directory: Path, numeric_steps: list | None = None,
                 offset: float = 0.0, model=None) -> tuple[ModelBundle, list[dict]]:
    """`_fit`'s model (or `model`) with `age` written as a millisecond timestamp (1.7e12 + age
    seconds: float32 steps there are 131 seconds), through build_preprocessor (its numeric
    step's steps replaced by `numeric_steps`); labels `offset` + a signal for regression. And
    rows to send it."""
    frame = _frame(150, 1)
    score = frame["income"] / 10 + frame["age"].fillna(40) / 20 + (frame["plan"] == "pro") * 2
    frame["age"] = 1.7e12 + frame["age"] * 1000
    label = _labels(task, score, offset)
    preprocess = build_preprocessor(FEATURES)
    if numeric_steps is not None:
        preprocess.transformers[0][1].steps[:] = numeric_steps
    estimator = model or (Ridge() if task == "regression" else LogisticRegression(max_iter=500))
    pipeline = Pipeline([("preprocess", preprocess), ("model", estimator)])
    pipeline.fit(coerce_features(frame, FEATURES), label)
    rows = frame[INPUTS].sample(40, random_state=2).astype(object)
    return (_saved(pipeline, task, FEATURES, directory),
            rows.where(rows.notna(), None).to_dict("records"))


def test_large_numbers_with_a_small_spread_are_served_on_the_fast_route(served, tmp_path):
    """A millisecond timestamp as float32 collapses to 131-second steps: the column is fed
    relative to its training mean (in float64) with the graph's imputer and scaler shifted
    alike, so the graph agrees with the pipeline on the rows a user sends."""
    bundle, records = _fit_stamped(served[0].task, tmp_path)
    offsets = _numeric_offsets(bundle.pipeline)
    assert set(offsets) == {"age", "income"}
    assert offsets["age"] == bundle.pipeline[0].named_transformers_["numeric"][-1].mean_[0]
    _assert_served_fast(bundle, records, atol=1e-5)


def test_a_graph_that_loses_large_numbers_is_refused_by_the_check(served, tmp_path):
    """A numeric step other than build_preprocessor's (here a second scaler) is not shifted, so
    the timestamp is fed as it is and loses its seconds in float32: probes around the column's
    training centre show it, and the pipeline serves. The probes of fixed numbers (0 to 1e4,
    1.7e12 below the centre) did not: there the probabilities are 0 or 1 either way."""
    steps = [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()),
             ("rescale", StandardScaler())]
    bundle, records = _fit_stamped(served[0].task, tmp_path, steps)
    assert _numeric_offsets(bundle.pipeline) == {}
    assert CompiledModel.build(bundle) is None
    status, doc, fast = _invoked(bundle, {"instances": records})
    assert not fast and status == 200
    assert _same(doc["predictions"], _expected(bundle, records)["predictions"]), doc


def _within_spread(got: list, expected: list) -> bool:
    """Regression values as close as float32 computes them, judged against their spread: a
    relative tolerance passes 999999995904.0 for 1000000000447.84."""
    return bool(np.abs(np.subtract(got, expected)).max() <= 1e-5 * np.std(expected))


@pytest.mark.parametrize("model", ["ridge", "ensemble"])
def test_large_regression_values_are_served_on_the_fast_route(tmp_path, model):
    """Labels of 1e12 + a signal: float32 values there are 131,072 apart, and the graph
    answered 999999995904.0 for every row. Its intercept (each member's) is shifted by the
    pipeline's typical prediction, added back in float64 after the graph."""
    ensemble = EnsembleRegressor([Ridge(), Ridge(alpha=30.0)], [2, 1]) \
        if model == "ensemble" else None
    bundle, records = _fit_stamped("regression", tmp_path, offset=1e12, model=ensemble)
    compiled = CompiledModel.build(bundle)
    assert compiled is not None
    expected = _expected(bundle, records)["predictions"]
    assert _within_spread(compiled.predict(_table(bundle, records))["predictions"], expected)
    status, doc, fast = _invoked(bundle, {"instances": records})
    assert fast and status == 200 and _within_spread(doc["predictions"], expected), doc


@pytest.mark.parametrize("model", ["neighbours", "ensemble member"])
def test_a_graph_that_loses_large_regression_values_is_refused_by_the_check(tmp_path, model):
    """Neighbours have no intercept to shift: their graph averages the training labels as
    float32, 1e12 + a signal losing the signal. The check judges differences against the
    spread of the pipeline's predictions, not their size, so the pipeline serves."""
    neighbours = KNeighborsRegressor(5)
    if model == "ensemble member":
        neighbours = EnsembleRegressor([Ridge(), neighbours], [1, 1])
    bundle, records = _fit_stamped("regression", tmp_path, offset=1e12, model=neighbours)
    assert CompiledModel.build(bundle) is None
    status, doc, fast = _invoked(bundle, {"instances": records})
    expected = _expected(bundle, records)["predictions"]
    assert not fast and status == 200 and _within_spread(doc["predictions"], expected), doc


@pytest.mark.parametrize("trees", ["forest", "boosting", "ensemble member"])
def test_tree_models_stay_on_the_pipeline_route(served, tmp_path, trees):
    """A tree branches on float32 values: fed float32 preprocessing, a forest's graph differed
    from scikit-learn on 4% of rows (up to 0.14 in probability) where the probes agreed."""
    bundle, _ = served
    regression = bundle.task == "regression"
    frame = _frame(150, 1)[INPUTS]
    labels = bundle.pipeline.predict(frame)
    features = bundle.pipeline[:-1].transform(frame)
    forest = (RandomForestRegressor if regression else RandomForestClassifier)(
        n_estimators=5, random_state=0)
    boosting = (HistGradientBoostingRegressor if regression
                else HistGradientBoostingClassifier)(max_iter=5)
    linear = Ridge() if regression else LogisticRegression(max_iter=500)
    if trees == "ensemble member":
        kind = EnsembleRegressor if regression else EnsembleClassifier
        model = kind.from_fitted([linear.fit(features, labels), forest.fit(features, labels)],
                                 [1, 1], labels)
    else:
        model = (forest if trees == "forest" else boosting).fit(features, labels)
    pipeline = Pipeline([*bundle.pipeline.steps[:-1], ("model", model)])
    treed = ModelBundle(**{**bundle.__dict__, "pipeline": pipeline})
    assert CompiledModel.build(treed) is None
    # the linear model alone compiles: the refusal is the trees'
    linear_only = Pipeline([*bundle.pipeline.steps[:-1], ("model", linear.fit(features, labels))])
    assert CompiledModel.build(ModelBundle(**{**bundle.__dict__, "pipeline": linear_only}))


@pytest.mark.parametrize("fast_path", [True, False])
def test_values_the_model_coerces_are_served_on_either_route(served, fast_path):
    bundle, _ = served
    record = {**_records(1)[0], "age": " 41 ", "income": 7, "plan": None, "city": 3}
    server, thread = _serving(bundle, fast_path=fast_path)
    try:
        client = Client(server.port)
        status, doc = client.call("POST", "/invocations", {"instances": [record]})
        client.close()
    finally:
        _stop(server, thread)
    assert status == 200, doc
    assert _same(doc["predictions"], _expected(bundle, [record])["predictions"])


@pytest.mark.parametrize("fast_path", [True, False])
def test_true_and_false_read_as_in_training_whatever_their_spelling(tmp_path, fast_path):
    """pandas reads a CSV column of true/false as booleans, which training knows as "True" and
    "False"; a CSV body keeps the spelling written. Unmapped, `true` was an unknown category:
    the server answered as if the flag were missing, where `predict` read it as True."""
    rng = np.random.default_rng(8)
    flag = rng.random(200) < 0.5
    lines = ["flag,x,label"] + [f"{'true' if f else 'false'},{x:.3f},{'yes' if f else 'no'}"
                                for f, x in zip(flag, rng.normal(size=200), strict=True)]
    frame = pd.read_csv(io.StringIO("\n".join(lines)))
    assert frame["flag"].dtype == bool  # as training reads it
    features = {"flag": "categorical", "x": "numeric"}
    pipeline = Pipeline([("preprocess", build_preprocessor(features)),
                         ("model", LogisticRegression())])
    pipeline.fit(coerce_features(frame, features), frame["label"])
    bundle = ModelBundle(pipeline=pipeline, task="binary-classification", label="label",
                         features=features, classes=["no", "yes"], metric="m", metrics={},
                         name=NAME)
    body = "flag,x\ntrue,0.1\nTRUE,0.1\nfalse,0.1\nFalse,0.1\n"
    expected = predict_frame(bundle, pd.read_csv(io.StringIO(body)))["predictions"]
    assert expected == ["yes", "yes", "no", "no"]
    mixed = pd.DataFrame({"flag": ["true", "FALSE", "maybe"], "x": [0.1, 0.1, 0.1]})
    assert predict_frame(bundle, mixed)["predictions"][:2] == ["yes", "no"]  # a text column
    server, thread = _serving(bundle, fast_path=fast_path)
    try:
        client = Client(server.port)
        status, doc = client.call("POST", "/invocations", body, content_type="text/csv")
        json_status, json_doc = client.call("POST", "/invocations", [
            {"flag": "true", "x": 0.1}, {"flag": True, "x": 0.1}, {"flag": "false", "x": 0.1}])
        client.close()
    finally:
        _stop(server, thread)
    assert status == 200 and doc["predictions"] == expected, doc
    assert json_status == 200 and json_doc["predictions"] == ["yes", "yes", "no"], json_doc


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_body_separated_as_predict_accepts_is_read(served, client, separator):
    """A header without commas holding ';' or tabs separates the columns with it, as `predict`
    reads a file (the body was read as one column: a width error)."""
    bundle, _ = served
    records = _records(4)
    lines = [separator.join(INPUTS)] + [separator.join("" if r[c] is None else str(r[c])
                                                       for c in INPUTS) for r in records]
    status, doc = client.call("POST", "/invocations", "\n".join(lines), "text/csv")
    assert status == 200, doc
    assert _same(doc["predictions"], _expected(bundle, records)["predictions"])


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_csv_body_is_read_as_predict_reads_the_file(served, tmp_path, fast_path):
    """Spaces around a category are part of it, and NA, null or NaN is missing, as `predict`
    (and training) read a file; a CSV body read ' north ' as 'north', and NA as a category (NaN
    as an error), so a row was answered one way by serve and another by predict and serve's
    JSON route."""
    bundle, _ = served
    body = ("age,plan,income,city\n30,basic,50.0,north\n30, basic ,50.0, north \n"
            "30,NA,50.0,north\n 30 ,basic, 50.0 ,null\nNaN,basic,50.0,north\n")
    (tmp_path / "in.csv").write_text(body, encoding="utf-8")
    frame = read_csv(tmp_path / "in.csv", text=text_columns(bundle.features))
    expected = predict_frame(bundle, frame)
    padded = {"age": 30, "plan": " basic ", "income": 50.0, "city": " north "}
    server, thread = _serving(bundle, fast_path=fast_path)
    try:
        client = Client(server.port)
        status, doc = client.call("POST", "/invocations", body, content_type="text/csv")
        json_status, json_doc = client.call("POST", "/invocations", {"instances": [padded]})
        client.close()
    finally:
        _stop(server, thread)
    assert status == 200 and json_status == 200, (doc, json_doc)
    key = "predictions" if bundle.task == "regression" else "probabilities"
    assert not np.allclose(expected[key][0], expected[key][1])  # the spaces count
    assert np.allclose(doc[key], expected[key], atol=1e-6), (doc, expected)
    assert np.allclose(json_doc[key], expected[key][1:2], atol=1e-6)


SERVE_ENVIRONMENT = ("SERVE_HOST", "SERVE_PORT", "SAGEMAKER_BIND_TO_PORT", "MODEL_DIR",
                     "MODEL_NAME", "SERVE_MAX_BODY_BYTES")


def test_serve_help_names_its_options_and_environment():
    result = invoke("serve", "--help")
    assert result.code == 0, result.err
    for option in ("--project DIR", "--host", "--port", "--model production|staging|exp-NNN",
                   "--model-dir DIR", "--model-name NAME", "--max-body-bytes N",
                   "--max-batch-rows N", "--no-fast-path", "--access-log"):
        assert option in result.out, option
    for variable in SERVE_ENVIRONMENT:
        assert f"${variable}" in result.out, variable


@pytest.fixture
def started(monkeypatch):
    """What `mlscaffold serve` would serve: run() records its arguments instead of serving."""
    for name in SERVE_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    calls = []

    def run(bundle, host, port, model_name, max_body_bytes, **options):
        calls.append({"task": bundle.task, "host": host, "port": port, "model_name": model_name,
                      "max_body_bytes": max_body_bytes, **options})

    monkeypatch.setattr(serve_module, "run", run)
    return calls


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    _fit("regression", directory)
    return directory


def test_serve_defaults(started, model_dir):
    assert invoke("serve", "--model-dir", model_dir).code == 0
    assert started == [{"task": "regression", "host": "127.0.0.1", "port": DEFAULT_PORT,
                        "model_name": None, "max_body_bytes": DEFAULT_MAX_BODY_BYTES,
                        "max_batch_rows": 256, "access_log": False, "fast_path": True}]


def test_serve_reads_its_settings_from_the_environment(started, model_dir, tmp_path,
                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)  # no project here: MODEL_DIR needs none
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("MODEL_NAME", "churn")
    monkeypatch.setenv("SERVE_HOST", "0.0.0.0")
    monkeypatch.setenv("SERVE_PORT", "9001")
    monkeypatch.setenv("SERVE_MAX_BODY_BYTES", "1024")
    assert invoke("serve").code == 0
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9002")  # SageMaker's wins over SERVE_PORT
    assert invoke("serve").code == 0
    assert invoke("serve", "--port", "9003", "--model-name", "other").code == 0  # options win
    assert [(c["host"], c["port"], c["model_name"], c["max_body_bytes"]) for c in started] == [
        ("0.0.0.0", 9001, "churn", 1024), ("0.0.0.0", 9002, "churn", 1024),
        ("0.0.0.0", 9003, "other", 1024)]


def test_serve_from_a_project_resolves_the_model(started, trained_copy):
    assert_error(run_cli(trained_copy, "serve"), 2, "no model promoted to production yet")
    assert run_cli(trained_copy, "promote", "exp-001", "--to", "staging").code == 0
    assert run_cli(trained_copy, "serve", "--model", "staging").code == 0
    assert [call["task"] for call in started] == ["binary-classification"]
    assert_error(run_cli(trained_copy, "serve", "--model", "latest"), 2, "unknown model 'latest'")


def test_a_bad_port_in_the_environment_is_a_usage_error(started, model_dir, monkeypatch):
    monkeypatch.setenv("SERVE_PORT", "http")
    result = invoke("serve", "--model-dir", model_dir)
    assert_error(result, 2, "$SERVE_PORT is 'http', not a port number from 0 to 65535; set it "
                            "to one, or unset it")
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "70000")
    assert_error(invoke("serve", "--model-dir", model_dir), 2, "$SAGEMAKER_BIND_TO_PORT is "
                                                               "'70000', not a port number")
    assert started == []


def test_a_busy_port_is_a_one_line_error(model_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("serve", "--port", port, "--model-dir", model_dir)
    assert_error(result, 2, f"cannot listen on 127.0.0.1:{port}: ", "choose another --port")


HOLD_ON = """
    import os
    import time
    from pathlib import Path

    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.pipeline import Pipeline

    from mlscaffold.lifecycle.hooks import default_preprocessor


    class HoldOn(BaseEstimator, TransformerMixin):
        \"\"\"Passes rows through; one holding 'hold-on' waits for $HOLD_DIR/release.\"\"\"

        def fit(self, X, y=None):
            return self

        def transform(self, X):
            folder = os.environ.get("HOLD_DIR")
            if folder and (X.astype(str) == "hold-on").any(axis=None):
                Path(folder, "started").touch()
                while not Path(folder, "release").exists():
                    time.sleep(0.05)
            return X


    def build_preprocessor(features):
        return Pipeline([("hold", HoldOn()), ("default", default_preprocessor(features))])
"""


def test_sigterm_drains_the_request_in_flight_and_exits_0(make_project, tmp_path):
    """A real `mlscaffold serve` (port and model name from the environment) whose model, built
    by the project's preprocessing hook, holds one request until the test releases it."""
    project = make_project("regression")
    (package_dir(project) / "preprocessing.py").write_text(textwrap.dedent(HOLD_ON).lstrip())
    trained = run_cli(project, "train", "--time", "1")
    assert trained.code == 0, trained.err
    bundle = load_bundle(project / "experiments" / "exp-001")
    column = next(name for name, kind in bundle.features.items() if kind == "categorical")
    rows = pd.read_csv(project / "datasets" / "test.csv").head(1)
    rows[column] = "hold-on"
    body = rows.to_csv(index=False)

    hold = tmp_path / "hold"
    hold.mkdir()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = python_m("serve", "--project", project, "--model", "exp-001",
                           env={"SERVE_PORT": "0", "MODEL_NAME": "held", "HOLD_DIR": str(hold),
                                "SAGEMAKER_BIND_TO_PORT": "", "MODEL_DIR": ""},
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        def server_log() -> str:
            return f"server log:\n{log_path.read_text()}"

        def listening() -> re.Match | None:
            assert process.poll() is None, f"the server exited: {server_log()}"
            return re.search(r"serving regression model 'held' on http://127\.0\.0\.1:(\d+)",
                             log_path.read_text())

        wait_for(listening, server_log)
        port = int(listening().group(1))
        client = Client(port)
        assert client.call("GET", "/v1/models/held") == (200, {"name": "held", "ready": True})
        answers = []

        def send() -> None:
            try:
                answers.append(client.call("POST", "/invocations", body, "text/csv"))
            except (OSError, http.client.HTTPException) as error:  # dropped: not drained
                answers.append((None, repr(error)))

        request = threading.Thread(target=send)
        request.start()
        wait_for((hold / "started").exists, lambda: f"the request never reached the model; "
                                                    f"{server_log()}")
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: not accepts_connections(port),
                 lambda: f"still accepting connections after SIGTERM; {server_log()}")
        (hold / "release").touch()
        request.join(PATIENCE_SECONDS)
        assert not request.is_alive(), server_log()
        ((status, doc),) = answers
        assert status == 200, f"{doc}; {server_log()}"
        assert len(doc["predictions"]) == 1
        assert process.wait(timeout=PATIENCE_SECONDS) == 0, server_log()
        assert "server stopped" in log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
