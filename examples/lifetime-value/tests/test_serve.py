"""The model server: SageMaker, KServe v1 and KServe v2 routes, bad requests, concurrency, SIGTERM.

Each test server runs in a thread on a free loopback port and serves a small model fitted here,
one per task, so the protocols are checked for every task whatever this project's task is.
"""

import csv
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lifetime_value.cli import build_parser
from lifetime_value.model import (
    ModelBundle,
    frame_from_records,
    load_bundle,
    predict_frame,
    save_bundle,
)
from lifetime_value.serve import FastPath, build_server, serve

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("binary-classification", "multiclass-classification", "regression")
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


def _fit(task: str, directory: Path) -> ModelBundle:
    frame = _frame(150, 1)
    score = frame["income"] / 10 + frame["age"].fillna(40) / 20 + (frame["plan"] == "pro") * 2
    if task == "binary-classification":
        label = (score > score.median()).astype(int)
    elif task == "multiclass-classification":
        label = pd.cut(score, 3, labels=["low", "mid", "high"]).astype(str)
    else:
        label = score
    numeric = [c for c in INPUTS if FEATURES[c] == "numeric"]
    categorical = [c for c in INPUTS if FEATURES[c] == "categorical"]
    preprocess = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), numeric),
        ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                  ("one_hot", OneHotEncoder(handle_unknown="ignore"))]), categorical),
    ], sparse_threshold=0.0)
    estimator = Ridge() if task == "regression" else LogisticRegression(max_iter=500)
    pipeline = Pipeline([("preprocess", preprocess), ("model", estimator)]).fit(frame[INPUTS], label)
    classes = None if task == "regression" else pipeline.classes_.tolist()
    bundle = ModelBundle(pipeline=pipeline, task=task, label="label", features=FEATURES,
                         classes=classes, metric="m", metrics={}, name=NAME)
    save_bundle(bundle, directory)
    return load_bundle(directory)


def _records(rows: int = 5, seed: int = 2) -> list[dict]:
    frame = _frame(rows, seed).astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


class Client:
    """A keep-alive HTTP client for one test server."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

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
    server = build_server(bundle, "127.0.0.1", 0, NAME, BODY_LIMIT)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield bundle, server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


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


def test_the_project_task_is_covered():
    spec = yaml.safe_load((ROOT / "mlscaffold.yaml").read_text())
    assert spec["task"] in TASKS


def test_the_project_data_goes_through_the_server_as_csv(tmp_path):
    """A model of this project's task on its own data; test.csv rows as sent, header and all."""
    spec = yaml.safe_load((ROOT / "mlscaffold.yaml").read_text())
    train_csv, test_csv = ROOT / "datasets" / "train.csv", ROOT / "datasets" / "test.csv"
    if not (train_csv.is_file() and test_csv.is_file()):
        pytest.skip("the project has no datasets/train.csv and datasets/test.csv")
    train = pd.read_csv(train_csv).head(500)
    features = {}
    for name in train.columns.drop(spec["label"]):
        values = train[name].dropna()
        numeric = pd.api.types.is_numeric_dtype(values)
        if values.nunique() <= 1 or (not numeric and values.nunique() > 0.9 * len(values)):
            features[name] = "dropped"
        else:
            features[name] = "numeric" if numeric else "categorical"
    numeric = [c for c, kind in features.items() if kind == "numeric"]
    categorical = [c for c, kind in features.items() if kind == "categorical"]
    preprocess = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), numeric),
        ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                  ("one_hot", OneHotEncoder(handle_unknown="ignore"))]), categorical),
    ], sparse_threshold=0.0)
    regression = spec["task"] == "regression"
    estimator = Ridge() if regression else LogisticRegression(max_iter=1000)
    pipeline = Pipeline([("preprocess", preprocess), ("model", estimator)])
    pipeline.fit(train[numeric + categorical], train[spec["label"]])
    bundle = ModelBundle(pipeline=pipeline, task=spec["task"], label=spec["label"],
                         features=features, classes=None if regression else pipeline.classes_.tolist(),
                         metric="m", metrics={}, name=NAME)
    lines = test_csv.read_text(encoding="utf-8").splitlines()[:21]
    expected = predict_frame(bundle, pd.read_csv(io.StringIO("\n".join(lines))))["predictions"]
    server = build_server(bundle, "127.0.0.1", 0, NAME)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        status, doc = Client(server.server_address[1]).call("POST", "/invocations",
                                                            "\n".join(lines), "text/csv")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert status == 200, doc
    assert _same(doc["predictions"], expected)


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
            assert np.allclose(doc["probabilities"], expected["probabilities"])
            assert len(doc["probabilities"][0]) == len(bundle.classes)


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
    tensors = [{"name": c, "shape": [3], "datatype": "FP64" if FEATURES[c] == "numeric" else "BYTES",
                "data": [r[c] for r in records]} for c in INPUTS]
    status, doc = client.call("POST", f"/v2/models/{NAME}/infer", {"id": "req-1", "inputs": tensors})
    assert status == 200, doc
    assert doc["model_name"] == NAME and doc["id"] == "req-1"
    (output,) = doc["outputs"]
    assert output["name"] == "predict" and output["shape"] == [3]
    assert _same(output["data"], expected["predictions"])

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
        assert np.allclose(proba["data"], np.ravel(expected["probabilities"]))


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status", "needle"), [
    ("POST", "/invocations", "{not json", "application/json", 400, "malformed JSON"),
    ("POST", f"/v2/models/{NAME}/infer", "[1, 2", "application/json", 400, "malformed JSON"),
    ("POST", "/invocations", "a=1", "application/x-www-form-urlencoded", 415, "content type"),
    ("POST", "/invocations", {"instances": [{"age": 30, "plan": "basic"}]}, "application/json",
     400, "missing columns: income, city"),
    ("POST", "/invocations", {"instances": []}, "application/json", 400, "no rows"),
    ("POST", "/invocations", "1,2\n", "text/csv", 400, "values"),
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
     "application/json", 400, "unknown input"),
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
        thread.join(30)
    assert not failures


def test_fast_path_matches_the_pipeline_and_refuses_what_it_cannot_replay(served):
    bundle, _ = served
    fast = FastPath.build(bundle)
    assert fast is not None
    records = _records(30, seed=4)
    got, expected = fast.predict(records), _expected(bundle, records)
    assert got["predictions"] == expected["predictions"]
    assert got["probabilities"] == expected["probabilities"]
    assert fast.predict([{**records[0], "age": "41"}]) is None  # text: left to the regular path
    assert fast.predict([{**records[0], "plan": 3}]) is None
    pipeline = Pipeline([("scale", StandardScaler()), *bundle.pipeline.steps[1:]])
    assert FastPath.build(ModelBundle(**{**bundle.__dict__, "pipeline": pipeline})) is None


def test_values_the_fast_path_leaves_alone_are_still_served(served, client):
    bundle, _ = served
    record = {**_records(1)[0], "age": "41", "income": 7}
    status, doc = client.call("POST", "/invocations", {"instances": [record]})
    assert status == 200, doc
    assert _same(doc["predictions"], _expected(bundle, [record])["predictions"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_command_line_has_serve():
    args = build_parser().parse_args(["serve", "--port", "9001", "--model", "staging"])
    assert (args.command, args.port, args.model) == ("serve", 9001, "staging")


def test_a_busy_port_is_a_one_line_error(tmp_path, capsys):
    _fit("regression", tmp_path / "model")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = serve(["--port", str(port), "--model-dir", str(tmp_path / "model")])
    assert code == 2
    assert "cannot listen" in capsys.readouterr().err


def test_sigterm_stops_the_server_cleanly(tmp_path):
    _fit("regression", tmp_path / "model")
    port = _free_port()
    path = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    code = "import sys; from lifetime_value.serve import serve; sys.exit(serve(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--model-dir", str(tmp_path / "model")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if Client(port).call("GET", "/ping")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "server stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
