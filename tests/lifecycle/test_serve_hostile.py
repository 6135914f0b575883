"""The model server against hostile and malformed input: HTTP framing and head limits over raw
sockets, stalled requests, the body limit on chunked bodies, values no model can score, protocol
edge cases, and a property-based fuzz of the three protocols and of header fields (no 5xx, every
body valid JSON).

Each of these failed on the hand-written HTTP layer this server replaced (issue 13). Waits are
bounded by PATIENCE_SECONDS as a guard against hangs; no test asserts how long anything took.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlscaffold.lifecycle.model import ModelBundle, load_bundle, save_bundle
from mlscaffold.lifecycle.serving import build_server
from mlscaffold.lifecycle.serving.server import MAX_HEAD_BYTES, MAX_HEADER_FIELDS

from .conftest import PATIENCE_SECONDS
from .test_serve import INPUTS, NAME, Client, _fit, _records

LIMIT = 64 * 1024
STALL_SECONDS = 0.3  # the body and head timeouts of the `stalling_port` server


def _start(bundle: ModelBundle, **options):
    server = build_server(bundle, "127.0.0.1", 0, NAME, **options)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    return server, thread


def _stop(server, thread) -> None:
    server.stop()
    thread.join(PATIENCE_SECONDS)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> ModelBundle:
    return _fit("binary-classification", tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def port(classifier):
    """A binary classifier's server with a 64 KiB body limit and the default (generous) time
    limits, so that a client descheduled under load is never cut off."""
    server, thread = _start(classifier, max_body_bytes=LIMIT)
    yield server.port
    _stop(server, thread)


@pytest.fixture(scope="module")
def stalling_port(classifier):
    """The same model with STALL_SECONDS body and head timeouts, for the tests that stall on
    purpose (they wait for the timeout, so load only makes them wait longer)."""
    server, thread = _start(classifier, max_body_bytes=LIMIT, body_timeout=STALL_SECONDS,
                            head_timeout=STALL_SECONDS)
    yield server.port
    _stop(server, thread)


# ------------------------------------------------------------------------------ raw sockets


def _responses(data: bytes) -> list[tuple[int, dict, bytes]]:
    """(status, headers, body) of each complete response in `data` (Content-Length framing)."""
    found = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        if not separator:
            break
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        found.append((int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]
    return found


def _exchange(port: int, *parts: bytes) -> tuple[list, bool]:
    """Send `parts` on one connection without ever closing our side, then read until the
    server closes it. (responses, closed cleanly): a reset counts as not clean."""
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_SECONDS) as sock:
        for part in parts:
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed before taking everything
                break
        received, clean = b"", True
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                clean = False
                break
            if not chunk:
                break
            received += chunk
    return _responses(received), clean


def _only_error(responses: list, status: int) -> dict:
    """The one response is a JSON error with `status` that closes the connection."""
    assert [r[0] for r in responses] == [status], responses
    _, headers, body = responses[0]
    assert headers["content-type"] == "application/json"
    assert headers.get("connection") == "close"
    return json.loads(body)


SMUGGLED = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("head", [
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
    b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
    b"Content-Length: +0\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
    b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
], ids=["duplicate-content-length", "plus-zero", "te-with-cl"])
def test_ambiguous_framing_is_a_400_that_closes_the_connection(port, head):
    """RFC 9112 §6.3: the request after it is never answered."""
    responses, _ = _exchange(port, head + SMUGGLED)
    assert "malformed HTTP request" in _only_error(responses, 400)["error"]


def test_a_transfer_coding_before_chunked_closes_the_connection(port):
    """`gzip, chunked`: refused, and the request inside the body is not answered."""
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Transfer-Encoding: gzip, chunked\r\n\r\n")
    responses, _ = _exchange(port, head + body + SMUGGLED)
    assert "transfer coding 'gzip, chunked' is not supported" in \
        _only_error(responses, 400)["error"]


def test_a_negative_chunk_size_is_refused_without_reading_on(port):
    """The old server read until EOF; this one answers while our side is still open."""
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n-1\r\n")
    responses, _ = _exchange(port, head, b"x" * 4096)
    _only_error(responses, 400)


def test_a_chunked_body_over_the_limit_gets_413_as_soon_as_it_passes(port):
    """The body never ends: the answer comes from counting the chunks as they arrive."""
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (8192, b"1" * 8192)
    responses, _ = _exchange(port, head, *[chunk] * (LIMIT // 8192 + 2))
    assert "exceeds the limit of 65536 bytes" in _only_error(responses, 413)["error"]


def test_a_declared_length_over_the_limit_gets_413_before_the_body(port):
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: %d\r\n\r\n" % (LIMIT + 1))
    responses, _ = _exchange(port, head)
    assert "the limit is 65536" in _only_error(responses, 413)["error"]


def test_a_stalled_body_gets_408_and_a_close(stalling_port):
    """The server's body timeout is STALL_SECONDS here: we send half the body and wait."""
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 100\r\n\r\n1,2,3")
    responses, clean = _exchange(stalling_port, head)
    assert "stalled" in _only_error(responses, 408)["error"]
    assert clean


def test_a_stalled_request_head_gets_408_and_a_close(stalling_port):
    responses, clean = _exchange(stalling_port,
                                 b"POST /invocations HTTP/1.1\r\nHost: x\r\nConte")
    assert "head stalled" in _only_error(responses, 408)["error"]
    assert clean


def test_a_silent_connection_is_closed_cleanly(stalling_port):
    responses, clean = _exchange(stalling_port)
    assert responses == [] and clean


# the request head: limits uvicorn's httptools protocol does not have (MAX_HEAD_BYTES,
# MAX_HEADER_FIELDS); a flood of repeated fields once held the server for seconds per request

PAD = b"X-Pad: " + b"a" * 1000 + b"\r\n"


def _ping_still_answers(port: int) -> None:
    client = Client(port)
    assert client.call("GET", "/ping") == (200, {"status": "healthy"})
    client.close()


def test_a_flood_of_repeated_headers_gets_431_and_the_server_keeps_answering(port):
    """4 MB of `X-Pad` fields, and the head never ends: only a limit on the bytes received
    can answer it (without one, the server buffers it all and waits for the head timeout)."""
    responses, _ = _exchange(port, b"GET /ping HTTP/1.1\r\nHost: x\r\n", *[PAD * 100] * 40)
    assert _only_error(responses, 431) == {
        "error": f"the request head is larger than the limit of {MAX_HEAD_BYTES} bytes"}
    _ping_still_answers(port)


@pytest.mark.parametrize(("fields", "status"), [(MAX_HEADER_FIELDS, 200),
                                               (MAX_HEADER_FIELDS + 1, 431)])
def test_more_header_fields_than_the_limit_get_431(port, fields, status):
    head = (b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * (fields - 2)
            + b"Connection: close\r\n\r\n")
    responses, _ = _exchange(port, head)
    if status == 200:
        ((answer, _, body),) = responses
        assert answer == 200 and json.loads(body) == {"status": "healthy"}
    else:
        assert _only_error(responses, 431) == {
            "error": f"the request has more than {MAX_HEADER_FIELDS} header fields"}
        _ping_still_answers(port)


def test_a_refused_head_is_logged_with_its_reason_not_as_invalid_http(port, caplog):
    """uvicorn warns "Invalid HTTP request received." whenever a parser callback stops the
    parser; a head over a limit is valid HTTP, refused by this server with its reason."""
    caplog.set_level(logging.INFO)
    head = (b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * MAX_HEADER_FIELDS
            + b"\r\n")
    _only_error(_exchange(port, head)[0], 431)
    _exchange(port, b"GET /ping HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    logged = [(record.levelname, record.getMessage()) for record in caplog.records
              if record.name.startswith("uvicorn.error") or "refused" in record.getMessage()]
    assert ("INFO", f"request head refused: 431 the request has more than "
                    f"{MAX_HEADER_FIELDS} header fields") in logged
    # the second request's two Content-Length fields are invalid HTTP: warned, once
    assert [entry for entry in logged if entry[0] == "WARNING"] == [
        ("WARNING", "Invalid HTTP request received.")]


def test_one_header_value_over_the_limit_gets_431(port):
    """A complete head, sent at once: the field's length is counted when the parser hands it
    over."""
    head = (b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * MAX_HEAD_BYTES
            + b"\r\n\r\n")
    responses, _ = _exchange(port, head)
    assert "larger than the limit" in _only_error(responses, 431)["error"]
    _ping_still_answers(port)


def test_a_request_target_over_the_limit_gets_414(port):
    responses, _ = _exchange(port, b"GET /" + b"p" * MAX_HEAD_BYTES + b" HTTP/1.1\r\n"
                             b"Host: x\r\n\r\n")
    assert "request target is longer" in _only_error(responses, 414)["error"]
    _ping_still_answers(port)


def test_repeated_fields_are_read_as_one_list(port):
    """Accept in two fields is one list of media ranges (RFC 9110 §5.3): q-values still hold."""
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Accept: text/csv;q=0.1\r\nAccept: application/json\r\nConnection: close\r\n")
    body = json.dumps({"instances": _records(1)}).encode()
    responses, _ = _exchange(port, head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    ((status, headers, data),) = responses
    assert status == 200 and headers["content-type"] == "application/json", data


@pytest.mark.parametrize("method", ["TRACE", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT"])
def test_every_405_names_the_allowed_methods(port, method):
    target = b"127.0.0.1:443" if method == "CONNECT" else b"/ping"
    responses, _ = _exchange(port, b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                             % (method.encode(), target))
    ((status, headers, body),) = responses
    if method == "CONNECT" and status == 400:  # llhttp refuses an authority it cannot route
        assert "error" in json.loads(body)
        return
    assert status == 405 and headers["allow"] == "GET, HEAD", responses
    assert "not allowed" in json.loads(body)["error"]


def test_an_unknown_method_is_a_json_4xx(port):
    responses, _ = _exchange(port, b"BREW /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    ((status, headers, body),) = responses
    assert 400 <= status < 500 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]


def test_the_connection_keeps_serving_after_a_refusal_with_a_read_body(port):
    client = Client(port)
    assert client.call("POST", "/invocations", "a=1", "application/x-www-form-urlencoded")[0] \
        == 415
    assert client.call("GET", "/ping") == (200, {"status": "healthy"})
    client.close()


# ------------------------------------------------------------------------------ payloads


def _record(**changes) -> dict:
    return {**_records(1)[0], **changes}


@pytest.mark.parametrize(("body", "needle"), [
    (b"[" * 50_000, "nested too deeply"),
    (b'{"instances": [{"age": 1' + b"0" * 400 + b', "plan": "basic", "income": 1, '
     b'"city": "north"}]}', "column age holds a number beyond the floating-point range"),
    (b'{"instances": [{"age": 1e400, "plan": "basic", "income": 1, "city": "north"}]}',
     "column age must be a finite number, got Infinity"),
    (b'{"instances": [{"age": 1, "plan": "basic", "income": NaN, "city": "north"}]}',
     "column income must be a finite number, got NaN"),
    (b'{"instances": [{"age": 1, "plan": -Infinity, "income": 1, "city": "north"}]}',
     "column plan must be text or a finite number, got -Infinity"),
    (b'{"instances": [{"age": [1], "plan": "basic", "income": 1, "city": "north"}]}',
     "column age must be a number, got a list"),
    (b'{"instances": [{"age": 1, "plan": {"a": 1}, "income": 1, "city": "north"}]}',
     "column plan must be text, got an object"),
])
def test_json_no_model_can_score_is_a_400_naming_the_column(port, body, needle):
    client = Client(port)
    status, doc = client.call("POST", "/invocations", body)
    client.close()
    assert status == 400 and needle in doc["error"], doc


@pytest.mark.parametrize(("cell", "needle"), [
    ("inf", "column age must be a finite number, got 'inf'"),
    ("1e999", "column age must be a finite number, got '1e999'"),
])
def test_csv_non_finite_numbers_are_a_400_naming_the_column(port, cell, needle):
    client = Client(port)
    status, doc = client.call("POST", "/invocations", f"R1,{cell},basic,3.0,north\n",
                              "text/csv")
    client.close()
    assert status == 400 and doc["error"] == f"CSV row 1: {needle}"


@pytest.mark.parametrize("datatype", [["FP64"], {"type": "FP64"}, 7, None])
def test_a_v2_datatype_that_is_not_a_string_is_a_400(port, datatype):
    client = Client(port)
    status, doc = client.call("POST", f"/v2/models/{NAME}/infer", {"inputs": [
        {"name": "age", "shape": [1], "datatype": datatype, "data": [1]}]})
    client.close()
    assert status == 400 and "has datatype" in doc["error"], doc


def test_v2_versions_other_than_the_served_one_are_404(port):
    client = Client(port)
    status, meta = client.call("GET", f"/v2/models/{NAME}")
    assert meta["versions"] == ["1"]
    assert client.call("GET", f"/v2/models/{NAME}/versions/1")[0] == 200
    for path in ("versions/999", "versions/999/ready", "versions/2/infer"):
        method = "POST" if path.endswith("infer") else "GET"
        status, doc = client.call(method, f"/v2/models/{NAME}/{path}", {"inputs": []})
        assert status == 404 and "no version" in doc["error"], (path, doc)
    client.close()


def _v2_tensors(records: list[dict]) -> list[dict]:
    return [{"name": c, "shape": [len(records)],
             "datatype": "BYTES" if c in ("plan", "city") else "FP64",
             "data": [r[c] for r in records]} for c in INPUTS]


def test_the_binary_data_extension_is_refused_by_name(port):
    client = Client(port)
    tensors = _v2_tensors(_records(1))
    document = json.dumps({"inputs": tensors}).encode()
    status, doc = client.call("POST", f"/v2/models/{NAME}/infer", document + b"\x00\x01\x02\x03",
                              headers={"Inference-Header-Content-Length": str(len(document))})
    assert status == 400 and doc["error"].startswith("binary data extension not supported")
    tensors[1] = {**tensors[1], "data": [], "parameters": {"binary_data_size": 8}}
    status, doc = client.call("POST", f"/v2/models/{NAME}/infer", {"inputs": tensors})
    assert status == 400 and doc["error"].startswith("binary data extension not supported")
    client.close()


@pytest.mark.parametrize(("accept", "answer"), [
    ("text/csv;q=0.1, application/json", "json"),
    ("application/json;q=0.5, text/csv", "csv"),
    ("text/*", "csv"),
    ("*/*;q=0.2, text/csv;q=0.1", "json"),
    ("application/vnd.example+json", "json"),
    ("text/html", 406),
    ("application/json;q=0, text/csv;q=0", 406),
])
def test_accept_q_values_choose_the_answer(port, accept, answer):
    client = Client(port)
    record = _records(1)[0]
    status, doc = client.call("POST", "/invocations", {"instances": [record]},
                              headers={"Accept": accept})
    client.close()
    if answer == 406:
        assert status == 406 and "cannot answer" in doc["error"]
    elif answer == "json":
        assert status == 200 and isinstance(doc, dict)
    else:
        assert status == 200 and isinstance(doc, str) and len(doc.splitlines()) == 1


def _fit_tiny_scale(directory: Path, factor: float = 1e6) -> ModelBundle:
    """A regression whose scaler divides by ~3e-4 and whose coefficient grows with `factor`:
    large inputs overflow float32 (factor 1e6) or even float64 (factor 1e270)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.uniform(0, 1e-3, 80), "c": rng.choice(["a", "b"], 80)})
    features = {"x": "numeric", "c": "categorical"}
    pipeline = Pipeline([("preprocess", ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), ["x"]),
        ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                  ("one_hot", OneHotEncoder(handle_unknown="ignore"))]), ["c"]),
    ], sparse_threshold=0.0)), ("model", Ridge())])
    pipeline.fit(frame, frame["x"] * factor)
    save_bundle(ModelBundle(pipeline=pipeline, task="regression", label="y", features=features,
                            classes=None, metric="m", metrics={}, name=NAME), directory)
    return load_bundle(directory)


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_prediction_that_is_not_finite_is_an_error_not_invalid_json(tmp_path, fast_path):
    server, thread = _start(_fit_tiny_scale(tmp_path / "float32"), fast_path=fast_path)
    try:
        client = Client(server.port)
        # 1e37 overflows float32 inside the ONNX graph: the pipeline answers in float64
        status, doc = client.call("POST", "/invocations", {"instances": [{"x": 1e37, "c": "a"}]})
        client.close()
        assert status == 200 and math.isfinite(doc["predictions"][0]) and \
            doc["predictions"][0] > 1e39, doc
    finally:
        _stop(server, thread)
    server, thread = _start(_fit_tiny_scale(tmp_path / "float64", 1e270), fast_path=fast_path)
    try:
        client = Client(server.port)
        for accept in ("application/json", "text/csv"):  # 3e38 scaled 1e42, times ~3e268
            status, doc = client.call("POST", "/invocations",
                                      {"instances": [{"x": 5e-4, "c": "a"},
                                                     {"x": 3e38, "c": "b"}]},
                                      headers={"Accept": accept})
            assert status == 400, doc
            assert "prediction for row(s) 2 is not a finite number" in doc["error"]
        client.close()
    finally:
        _stop(server, thread)


BEYOND_FLOAT32 = "must be a number between -3.4e+38 and 3.4e+38 (the float32 range models " \
                 "compute in), got "


@pytest.mark.parametrize("fast_path", [True, False])
def test_numbers_beyond_float32_are_a_400_naming_the_column(classifier, fast_path):
    """Finite in float64, beyond what tree models and the ONNX graph read: refused before the
    model on both routes, in JSON and CSV, instead of scikit-learn's message naming no column."""
    server, thread = _start(classifier, fast_path=fast_path)
    try:
        client = Client(server.port)
        for value, shown in ((1e308, "1e+308"), (-3.5e38, "-3.5e+38"), (10 ** 39, "1e+39")):
            status, doc = client.call("POST", "/invocations",
                                      {"instances": [_record(), _record(income=value)]})
            assert (status, doc) == (400, {"error": f"row 2: column income {BEYOND_FLOAT32}"
                                                    f"{shown}"}), (value, doc)
            status, doc = client.call("POST", "/invocations", f"R1,{value},basic,3.0,north\n",
                                      "text/csv")
            assert (status, doc) == (400, {"error": f"CSV row 1: column age {BEYOND_FLOAT32}"
                                                    f"{shown}"}), (value, doc)
            status, doc = client.call("POST", f"/v2/models/{NAME}/infer",
                                      {"inputs": _v2_tensors([_record(age=value)])})
            assert status == 400 and f"column age {BEYOND_FLOAT32}" in doc["error"], doc
        # the largest float32 itself is taken
        status, doc = client.call("POST", "/invocations",
                                  {"instances": [_record(income=3.4e38)]})
        assert status == 200, doc
        client.close()
    finally:
        _stop(server, thread)


# ------------------------------------------------------------------------------ fuzz

_JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(10 ** 400), 10 ** 400)
                 | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
                 | st.sampled_from(["basic", "north", "", " 41 ", "1e999", "nan"]))
_JSON = st.recursive(_JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8) | st.sampled_from(INPUTS), inner,
                                       max_size=5), max_leaves=25)
_VALUE = _JSON_SCALARS | st.lists(_JSON_SCALARS, max_size=2)
_ROW = st.fixed_dictionaries({c: _VALUE for c in INPUTS},
                             optional={"label": _VALUE, "row_id": _VALUE, "extra": _VALUE})
_TENSOR = st.fixed_dictionaries({
    "name": st.sampled_from([*INPUTS, "x", ""]) | _JSON_SCALARS,
    "shape": st.lists(st.integers(-1, 4), min_size=0, max_size=3) | _JSON,
    "datatype": st.sampled_from(["FP64", "BYTES", "INT64", "BOOL", "fp64"]) | _JSON,
    "data": st.lists(_VALUE, max_size=6) | _JSON,
}, optional={"parameters": _JSON})
_DOCUMENT = (_JSON
             | st.fixed_dictionaries({"instances": st.lists(_ROW, max_size=3) | _JSON})
             | st.fixed_dictionaries({"inputs": st.lists(_TENSOR, max_size=4) | _JSON},
                                     optional={"outputs": _JSON, "id": _JSON})
             | st.lists(_ROW, max_size=3))


def _body(draw_doc) -> bytes:
    return json.dumps(draw_doc, allow_nan=True).encode()


# extra header fields: (name, value, how many times); repeated or large enough to pass the head
# limits now and then (MAX_HEADER_FIELDS fields, MAX_HEAD_BYTES bytes)
_FIELD = st.tuples(
    st.sampled_from(["X-Pad", "Accept", "Content-Type", "Cookie", "Transfer-Encoding",
                     "Inference-Header-Content-Length", "Upgrade", "Expect"]),
    st.builds(lambda base, times: base * times,
              st.sampled_from(["a", "1", " ", "*/*;q=0.5,", "text/csv", "chunked", "100-continue",
                               "application/json;q=0"]),
              st.integers(0, 1200)),
    st.integers(1, 60))

_REQUEST = st.tuples(
    st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "HEAD"]),
    st.sampled_from(["/invocations", f"/v1/models/{NAME}:predict", f"/v2/models/{NAME}/infer",
                     f"/v2/models/{NAME}/versions/1/infer", f"/v2/models/{NAME}", "/ping",
                     "/v1/models/other:predict", "/v2/models/x%00/infer"]),
    _DOCUMENT.map(_body) | st.binary(max_size=64)
    | st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(["application/json", "text/csv", "application/csv", "", "text/plain",
                     "application/json; charset=utf-8"]),
    st.sampled_from([None, "application/json", "text/csv", "text/csv;q=0.5, */*;q=0.1",
                     "image/png", "*/*;q=abc"]),
    st.lists(_FIELD, max_size=3),
)


def _raw_request(method: str, path: str, body: bytes, content_type: str, accept: str | None,
                 fields: list[tuple[str, str, int]]) -> bytes:
    """One request with Connection: close, so that the server's answer ends the exchange."""
    lines = [f"{method} {path} HTTP/1.1", "Host: x", "Connection: close",
             f"Content-Length: {len(body)}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if accept is not None:
        lines.append(f"Accept: {accept}")
    for name, value, times in fields:
        lines += [f"{name}: {value}"] * times
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _strict_json(body: bytes):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(body, parse_constant=refuse)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(request=_REQUEST)
def test_fuzz_of_the_three_protocols_never_gives_a_5xx_or_invalid_json(port, request):
    method = request[0]
    responses, _ = _exchange(port, _raw_request(*request))
    assert len(responses) == 1, responses
    ((status, headers, data),) = responses
    assert status < 500, (status, data)
    if method == "HEAD":
        assert data == b""
    elif headers.get("content-type") == "text/csv":
        assert status == 200 and all(line for line in data.decode().splitlines())
        assert not {"nan", "inf", "-inf"} & set(data.decode().lower().split())
    else:
        assert headers.get("content-type") == "application/json", (status, headers, data)
        doc = _strict_json(data)
        assert status == 200 or isinstance(doc.get("error"), str)
