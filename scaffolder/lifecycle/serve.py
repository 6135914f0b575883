"""HTTP model server for the SageMaker hosting, KServe v1 and KServe v2 (Open Inference) protocols.

Standard library only (``http.server``): one thread per connection, HTTP/1.1 keep-alive.

Routes (``<name>`` is the model name, by default the project name):

* SageMaker: ``GET /ping``, ``POST /invocations`` (``text/csv`` or ``application/json`` in;
  JSON or CSV out, chosen by ``Accept``).
* KServe v1: ``GET /v1/models``, ``GET /v1/models/<name>``, ``POST /v1/models/<name>:predict``.
* KServe v2: ``GET /v2``, ``GET /v2/health/live``, ``GET /v2/health/ready``,
  ``GET /v2/models/<name>``, ``GET /v2/models/<name>/ready``, ``POST /v2/models/<name>/infer``
  (also under ``/v2/models/<name>/versions/<v>/``). Inputs are one tensor per feature column
  (shape ``[N]``) or one tensor of shape ``[N, n_features]`` in feature order. The response holds
  the ``predict`` output; ask for class probabilities with
  ``"outputs": [{"name": "predict_proba"}]`` (as with MLServer's scikit-learn runtime).

Bad requests get a 4xx answer with the JSON body ``{"error": "..."}``. Requests that arrive while
the model is busy are predicted together in one call of the pipeline: a single predictor thread
takes whatever is queued, never waiting for more, so concurrent load costs one pipeline call per
batch rather than per request. SIGTERM stops accepting connections, lets in-flight requests
finish, and exits.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import queue
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import numpy as np

from .config import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT
from .model import ModelBundle, SchemaMismatch, frame_from_records, predict_frame

log = logging.getLogger(__name__)

DEFAULT_PREDICT_TIMEOUT = 60.0
DEFAULT_SHUTDOWN_GRACE = 20.0
IDLE_CONNECTION_TIMEOUT = 120  # seconds a keep-alive connection may stay silent

_NUMERIC_V2 = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                         "INT64", "FP16", "FP32", "FP64"})
_V2_DATATYPES = _NUMERIC_V2 | {"BYTES"}
_V2_OUTPUTS = ("predict", "predict_proba")
_V1_ROUTE = re.compile(r"^/v1/models/([^/:]+)(:predict)?$")
_V2_ROUTE = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")

Response = tuple[int, bytes, str]  # status, body, content type


class RequestError(Exception):
    """A request the server refuses: answered with `status` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# ------------------------------------------------------------------------------ payload decoding


class _Schema:
    """The columns a model accepts, derived once from the bundle."""

    def __init__(self, bundle: ModelBundle):
        self.all_columns = list(bundle.features)
        self.inputs = [c for c, kind in bundle.features.items() if kind != "dropped"]
        self.numeric = frozenset(c for c, kind in bundle.features.items() if kind == "numeric")
        self.strays = frozenset(bundle.strays)  # numeric columns that read text as missing
        self.known = frozenset(self.all_columns) | {bundle.label}

    def columns_for_width(self, width: int) -> list[str]:
        """Column names for rows given as plain lists of `width` values in feature order."""
        if width == len(self.all_columns):
            return self.all_columns
        if width == len(self.inputs):
            return self.inputs
        expected = f"{len(self.inputs)} ({', '.join(self.inputs)})"
        if len(self.all_columns) != len(self.inputs):
            expected += f" or {len(self.all_columns)} ({', '.join(self.all_columns)})"
        raise RequestError(400, f"rows without column names must hold {expected} values "
                                f"in that order, got {width}")

    def check(self, records: list[dict]) -> None:
        """Refuse an empty request and records lacking an input column (named in the message)."""
        if not records:
            raise RequestError(400, "the request holds no rows")
        missing: set[str] = set()
        for record in records:
            if not isinstance(record, dict):
                raise RequestError(400, "each row must be an object or a list of values, "
                                        f"got {_type_name(record)}")
            missing.update(c for c in self.inputs if c not in record)
        if missing:
            names = [c for c in self.inputs if c in missing]
            raise RequestError(400, f"missing columns: {', '.join(names)}")


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _rows_to_records(rows: Any, schema: _Schema) -> list[dict]:
    """Turn a list of records (objects) or rows (lists in feature order) into records."""
    if not isinstance(rows, list):
        raise RequestError(400, f"expected a list of rows, got {_type_name(rows)}")
    if not rows:
        raise RequestError(400, "the request holds no rows")
    if all(isinstance(r, dict) for r in rows):
        return rows
    if all(isinstance(r, list) for r in rows):
        width = len(rows[0])
        if any(len(r) != width for r in rows):
            raise RequestError(400, "all rows must have the same number of values")
        columns = schema.columns_for_width(width)
        return [dict(zip(columns, r, strict=True)) for r in rows]
    raise RequestError(400, "rows must all be objects (column: value) "
                            "or all be lists of values in feature order")


def _columns_to_records(columns: dict) -> list[dict]:
    """Turn ``{column: [values...]}`` (scalars for a single row) into records."""
    if not columns:
        raise RequestError(400, "the request holds no columns")
    names = list(columns)
    values = [v if isinstance(v, list) else [v] for v in columns.values()]
    if any(len(v) != len(values[0]) for v in values):
        raise RequestError(400, "all columns must hold the same number of values")
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def decode_json_rows(doc: Any, schema: _Schema) -> list[dict]:
    """Records from the JSON bodies that /invocations and KServe v1 accept.

    ``{"instances": [...]}``, ``{"inputs": [...] | {column: [...]} | [v2 tensors]}``, a bare list
    of rows, or a single record object.
    """
    if isinstance(doc, list):
        return _rows_to_records(doc, schema)
    if not isinstance(doc, dict):
        raise RequestError(400, f"expected a JSON object or list, got {_type_name(doc)}")
    if "instances" in doc:
        return _rows_to_records(doc["instances"], schema)
    if "inputs" in doc:
        inputs = doc["inputs"]
        if isinstance(inputs, dict):
            return _columns_to_records(inputs)
        if isinstance(inputs, list) and inputs and all(
                isinstance(t, dict) and "data" in t and "name" in t for t in inputs):
            return decode_v2_inputs(doc, schema)
        return _rows_to_records(inputs, schema)
    if doc and not (doc.keys() - schema.known):
        return [doc]
    raise RequestError(400, 'expected {"instances": [...]}, {"inputs": ...}, a list of rows '
                            "or one record")


def decode_csv_rows(text: str, schema: _Schema) -> list[dict]:
    """Records from CSV: rows in feature order, or under a header row naming the columns."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise RequestError(400, f"malformed CSV: {exc}") from None
    if not rows:
        raise RequestError(400, "the CSV body holds no rows")
    first = [cell.strip() for cell in rows[0]]
    if set(schema.inputs) <= set(first):  # a header row: columns by name, any order
        columns, rows = first, rows[1:]
        if not rows:
            raise RequestError(400, "the CSV body holds a header row but no data rows")
    else:
        columns = schema.columns_for_width(len(rows[0]))
    records = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(columns):
            raise RequestError(400, f"CSV row {number} has {len(row)} values, "
                                    f"expected {len(columns)}")
        record = {}
        for column, cell in zip(columns, row, strict=True):
            cell = cell.strip()
            if not cell:
                record[column] = None
            elif column in schema.numeric:
                try:
                    record[column] = float(cell)
                except ValueError:
                    if column in schema.strays:  # the bundle's parsing reads it as missing
                        record[column] = cell
                        continue
                    raise RequestError(400, f"CSV row {number}: column {column} must be a number, "
                                            f"got {cell!r}") from None
            else:
                record[column] = cell
        records.append(record)
    return records


def _flatten(data: list) -> list:
    """Flatten nested lists (the v2 protocol allows row-major nesting)."""
    if not any(isinstance(v, list) for v in data):
        return data
    flat: list = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _v2_tensor(tensor: Any, index: int) -> tuple[str, list[int], list]:
    """Validate one v2 input tensor; returns (name, shape, flat data)."""
    if not isinstance(tensor, dict):
        raise RequestError(400, f"inputs[{index}] must be an object")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(400, f"inputs[{index}] needs a name")
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise RequestError(400, f"input {name!r} needs a shape: a list of non-negative integers")
    datatype = tensor.get("datatype")
    if datatype not in _V2_DATATYPES:
        raise RequestError(400, f"input {name!r} has datatype {datatype!r}; "
                                f"expected one of {', '.join(sorted(_V2_DATATYPES))}")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise RequestError(400, f"input {name!r} needs data: a list of values")
    data = _flatten(data)
    if len(data) != math.prod(shape):
        raise RequestError(400, f"input {name!r} has shape {shape} but {len(data)} values")
    if datatype in _NUMERIC_V2 and any(isinstance(v, str) for v in data):
        raise RequestError(400, f"input {name!r} has datatype {datatype} but holds strings; "
                                "use BYTES")
    return name, shape, data


def decode_v2_inputs(doc: Any, schema: _Schema) -> list[dict]:
    """Records from a v2 inference request: one tensor per column, or one [N, n_features] tensor."""
    if not isinstance(doc, dict):
        raise RequestError(400, "expected a JSON object with inputs")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(400, "inputs must be a non-empty list of tensors")
    tensors = [_v2_tensor(t, i) for i, t in enumerate(inputs)]
    name, shape, data = tensors[0]
    if len(tensors) == 1 and len(shape) == 2 and not (name in schema.known and shape[1] == 1):
        rows, width = shape
        columns = schema.columns_for_width(width)
        return [dict(zip(columns, data[i * width:(i + 1) * width], strict=True))
                for i in range(rows)]
    names = []
    for name, shape, data in tensors:
        if name not in schema.known:
            raise RequestError(400, f"unknown input {name!r}; send the columns "
                                    f"{', '.join(schema.inputs)} as tensors of shape [N], "
                                    "or one tensor of shape [N, n_features]")
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise RequestError(400, f"input {name!r} must have shape [N], got {shape}")
        if len(data) != len(tensors[0][2]):
            raise RequestError(400, f"input {name!r} has {len(data)} values, "
                                    f"input {tensors[0][0]!r} has {len(tensors[0][2])}")
        names.append(name)
    if len(set(names)) != len(names):
        raise RequestError(400, "each input column may appear only once")
    columns = zip(*(t[2] for t in tensors), strict=True)
    return [dict(zip(names, row, strict=True)) for row in columns]


def _requested_outputs(doc: dict, is_classifier: bool) -> list[str]:
    """Output names a v2 request asks for (default: predict)."""
    outputs = doc.get("outputs")
    if outputs is None:
        return ["predict"]
    if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        raise RequestError(400, 'outputs must be a list of {"name": ...} objects')
    names = [o["name"] for o in outputs]
    for name in names:
        if name not in _V2_OUTPUTS:
            raise RequestError(400, f"unknown output {name!r}; this model offers "
                                    f"{', '.join(_V2_OUTPUTS[:1 + is_classifier])}")
        if name == "predict_proba" and not is_classifier:
            raise RequestError(400, "predict_proba is only available for classification models")
    return names or ["predict"]


def _v2_datatype(values: list) -> str:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return "BOOL"
    if isinstance(sample, int):
        return "INT64"
    if isinstance(sample, str):
        return "BYTES"
    return "FP64"


def _tolist(values: Any) -> list | None:
    if values is None:
        return None
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), default=_json_default).encode("utf-8")


def _loads(body: bytes) -> Any:
    if not body:
        raise RequestError(400, "the request body is empty")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None


def _media_type(headers: Any) -> str:
    return (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _wants_csv(accept: str | None) -> bool:
    """True if the Accept header prefers CSV to JSON; refuses types the server cannot produce."""
    if not accept:
        return False
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if _is_json(media) or media in ("*/*", "application/*"):
            return False
        if media in ("text/csv", "text/*"):
            return True
    raise RequestError(406, f"cannot answer with {accept!r}; accept application/json or text/csv")


# ------------------------------------------------------------------------------ fast path


class _Unsupported(Exception):
    """The fast path cannot reproduce the pipeline for this model or these values."""


class FastPath:
    """A numpy replay of the usual preprocessing, so batches skip pandas and the ColumnTransformer.

    Supports a Pipeline of a ColumnTransformer (dense output; blocks of SimpleImputer,
    StandardScaler and OneHotEncoder) followed by any estimator, which is called for real.
    `build` refuses other pipelines and checks, on probe rows, that the replay gives exactly what
    ``predict_frame`` gives; `predict` returns None for values it does not handle (text in a
    numeric column, numbers in a categorical one, unknown categories the encoder would refuse),
    and the caller then takes the regular path. Pipeline and bundle are never modified.
    """

    def __init__(self, bundle: ModelBundle):
        self.bundle = bundle
        pipeline = bundle.pipeline
        steps = getattr(pipeline, "steps", None)
        if type(pipeline).__name__ != "Pipeline" or not steps or len(steps) != 2:
            raise _Unsupported("the model is not a two-step Pipeline (preprocessing, estimator)")
        preprocess, self.estimator = steps[0][1], steps[1][1]
        if hasattr(self.estimator, "feature_names_in_"):
            raise _Unsupported("the estimator expects a DataFrame")
        if (type(preprocess).__name__ != "ColumnTransformer"
                or getattr(preprocess, "sparse_output_", True)):
            raise _Unsupported("the preprocessing is not a ColumnTransformer with dense output")
        self.blocks: list[tuple[list[str], list[tuple]]] = []
        self.width = 0
        for name, transformer, columns in preprocess.transformers_:
            if isinstance(transformer, str):
                if transformer == "drop":
                    continue
                raise _Unsupported(f"transformer {name!r} is {transformer!r}")
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise _Unsupported(f"transformer {name!r} does not select columns by name")
            if not columns:
                continue
            kinds = {bundle.features.get(c) for c in columns}
            if kinds not in ({"numeric"}, {"categorical"}):
                raise _Unsupported(f"transformer {name!r} mixes column kinds")
            steps = getattr(transformer, "steps", None) or [(name, transformer)]
            numeric = kinds == {"numeric"}
            ops = [self._compile(step, numeric, len(columns)) for _, step in steps]
            names = [op[0] for op in ops]
            if not numeric and names not in (["one_hot"], ["impute", "one_hot"]):
                raise _Unsupported(f"transformer {name!r} does not end in a OneHotEncoder")
            width = len(columns) if numeric else ops[-1][2]
            self.blocks.append((columns, ops))
            self.width += width
        if not self.blocks:
            raise _Unsupported("the preprocessing selects no columns")

    @staticmethod
    def _compile(step: Any, numeric: bool, n_columns: int) -> tuple:
        kind = type(step).__name__
        if kind == "SimpleImputer":
            missing = step.missing_values
            statistics = step.statistics_
            if (getattr(step, "add_indicator", False) or not isinstance(missing, float)
                    or not math.isnan(missing) or len(statistics) != n_columns):
                raise _Unsupported("unsupported SimpleImputer settings")
            if numeric:
                statistics = np.asarray(statistics, dtype=float)
                if np.isnan(statistics).any():
                    raise _Unsupported("a column had no values in training")
            elif not all(isinstance(s, str) for s in statistics):
                raise _Unsupported("unsupported SimpleImputer fill values")
            return ("impute", statistics)
        if kind == "StandardScaler" and numeric:
            return ("scale", step.mean_, step.scale_)
        if kind == "OneHotEncoder" and not numeric:
            if (step.drop is not None or step.handle_unknown not in ("ignore", "error")
                    or step.min_frequency is not None or step.max_categories is not None
                    or np.dtype(step.dtype) != np.float64):
                raise _Unsupported("unsupported OneHotEncoder settings")
            if not all(isinstance(v, str) for cats in step.categories_ for v in cats):
                raise _Unsupported("OneHotEncoder categories are not all text")
            offsets, start = [], 0
            for categories in step.categories_:
                offsets.append({value: start + i for i, value in enumerate(categories)})
                start += len(categories)
            return ("one_hot", offsets, start, step.handle_unknown == "ignore")
        raise _Unsupported(f"{kind} is not supported")

    @classmethod
    def build(cls, bundle: ModelBundle) -> FastPath | None:
        """A verified fast path for `bundle`, or None (with the reason logged)."""
        try:
            fast = cls(bundle)
            fast._verify()
        except _Unsupported as exc:
            log.info("fast path off: %s", exc)
            return None
        except Exception as exc:
            log.info("fast path off: %s: %s", type(exc).__name__, exc)
            return None
        log.info("fast path on: preprocessing replayed with numpy, verified against the pipeline")
        return fast

    def _verify(self) -> None:
        """Compare with the regular path on probe rows covering imputation and unknown values."""
        probes = []
        for i in range(12):
            record: dict[str, Any] = {}
            for columns, ops in self.blocks:
                for j, column in enumerate(columns):
                    if ops[0][0] == "impute" and i % 4 == 1:
                        record[column] = None
                    elif ops[-1][0] == "one_hot":
                        categories = list(ops[-1][1][j])
                        if ops[-1][3]:
                            categories.append("\x00unknown")
                        record[column] = categories[(i + j) % len(categories)]
                    else:
                        record[column] = float((i - 5) * (j + 1)) * 7.3
            probes.append(record)
        expected = predict_frame(self.bundle, frame_from_records(self.bundle, probes))
        got = self.predict(probes)
        if got is None:
            raise _Unsupported("the probe rows were refused")
        want_predictions = _tolist(expected["predictions"])
        if self.bundle.task == "regression":
            same = np.allclose(got["predictions"], want_predictions, rtol=1e-9, atol=1e-12)
        else:
            same = got["predictions"] == want_predictions
            probabilities = _tolist(expected.get("probabilities"))
            same = same and np.allclose(got["probabilities"], probabilities, rtol=1e-9, atol=1e-12)
        if not same:
            raise _Unsupported("the replay does not match predict_frame on probe rows")

    def predict(self, records: list[dict]) -> dict | None:
        """``predict_frame``'s answer for `records`, or None if a value needs the regular path."""
        rows = len(records)
        matrix = np.empty((rows, self.width))
        start = 0
        for columns, ops in self.blocks:
            values = [[record[c] for c in columns] for record in records]
            if ops[-1][0] == "one_hot":
                block = self._categorical(values, ops, rows)
                if block is None:
                    return None
            else:
                for row in values:
                    for value in row:
                        if value is not None and type(value) not in (float, int):
                            return None  # text, booleans: the regular path coerces or refuses
                block = np.array(values, dtype=float)
                for op in ops:
                    if op[0] == "impute":
                        missing = np.isnan(block)
                        if missing.any():
                            block[missing] = np.take(op[1], np.nonzero(missing)[1])
                    else:
                        if op[1] is not None:
                            block -= op[1]
                        if op[2] is not None:
                            block /= op[2]
            matrix[:, start:start + block.shape[1]] = block
            start += block.shape[1]
        if self.bundle.task == "regression":
            return {"predictions": self.estimator.predict(matrix).astype(float).tolist(),
                    "probabilities": None}
        probabilities = self.estimator.predict_proba(matrix)
        classes = self.bundle.classes
        return {"predictions": [classes[i] for i in np.argmax(probabilities, axis=1)],
                "probabilities": probabilities.astype(float).tolist()}

    @staticmethod
    def _categorical(values: list[list], ops: list[tuple], rows: int):
        fill = ops[0][1] if ops[0][0] == "impute" else None
        _, offsets, width, ignore_unknown = ops[-1]
        block = np.zeros((rows, width))
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                if value is None and fill is not None:
                    value = fill[j]
                elif type(value) is not str:
                    return None
                index = offsets[j].get(value)
                if index is not None:
                    block[i, index] = 1.0
                elif not ignore_unknown:
                    return None
        return block


# ------------------------------------------------------------------------------ batching predictor


class _Job:
    __slots__ = ("done", "error", "records", "result")

    def __init__(self, records: list[dict]):
        self.records = records
        self.done = threading.Lock()  # held until the predictor fills in result or error
        self.done.acquire()
        self.result: dict | None = None
        self.error: BaseException | None = None


class Predictor:
    """Runs every prediction on one thread, merging the requests that are waiting into one call.

    Merging is opportunistic: the thread takes what is queued (up to `max_batch_rows` rows) and
    never waits for more. When a merged call fails, each request of the batch is predicted alone,
    so an error stays with the request that caused it. Only this thread touches the pipeline.
    """

    def __init__(self, bundle: ModelBundle, max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
                 timeout: float = DEFAULT_PREDICT_TIMEOUT, fast_path: bool = True):
        self.bundle = bundle
        self.fast = FastPath.build(bundle) if fast_path else None
        self.max_batch_rows = max(1, max_batch_rows)
        self.timeout = timeout
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="predictor", daemon=True)
        self._thread.start()

    def predict(self, records: list[dict]) -> dict:
        """Predict `records`: ``{"predictions": [...], "probabilities": [[...]] | None}``."""
        job = _Job(records)
        self._queue.put(job)
        if not job.done.acquire(timeout=self.timeout):
            raise RequestError(503, f"the prediction took longer than {self.timeout:g} s")
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        carry: _Job | None = None
        stopping = False
        while not stopping:
            job = carry or self._queue.get()
            carry = None
            if job is None:
                return
            batch, rows = [job], len(job.records)
            while rows < self.max_batch_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                if rows + len(nxt.records) > self.max_batch_rows:
                    carry = nxt
                    break
                batch.append(nxt)
                rows += len(nxt.records)
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        if len(batch) > 1:
            try:
                out = self._predict([r for job in batch for r in job.records])
            except Exception:
                out = None
            if out is not None:
                start = 0
                for job in batch:
                    end = start + len(job.records)
                    probabilities = out["probabilities"]
                    job.result = {
                        "predictions": out["predictions"][start:end],
                        "probabilities": probabilities and probabilities[start:end],
                    }
                    start = end
                    job.done.release()
                return
        for job in batch:
            try:
                job.result = self._predict(job.records)
            except Exception as exc:
                job.error = exc
            finally:
                job.done.release()

    def _predict(self, records: list[dict]) -> dict:
        if self.fast is not None:
            try:
                out = self.fast.predict(records)
            except Exception:
                out = None
            if out is not None:
                return out
        out = predict_frame(self.bundle, frame_from_records(self.bundle, records))
        predictions = _tolist(out["predictions"])
        if len(predictions) != len(records):
            raise RuntimeError(f"the model gave {len(predictions)} predictions "
                               f"for {len(records)} rows")
        return {"predictions": predictions, "probabilities": _tolist(out.get("probabilities"))}


# ------------------------------------------------------------------------------ protocols


class ServingApp:
    """The protocols' logic, apart from the HTTP plumbing."""

    def __init__(self, bundle: ModelBundle, model_name: str | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
                 predict_timeout: float = DEFAULT_PREDICT_TIMEOUT, access_log: bool = False,
                 fast_path: bool = True):
        self.bundle = bundle
        self.model_name = model_name or bundle.name or "model"
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self.schema = _Schema(bundle)
        self.is_classifier = bundle.task != "regression"
        self.predictor = Predictor(bundle, max_batch_rows, predict_timeout, fast_path)
        self.draining = False
        self._inflight = 0
        self._idle = threading.Condition()

    # ---- lifecycle
    def enter(self) -> None:
        with self._idle:
            self._inflight += 1

    def leave(self) -> None:
        with self._idle:
            self._inflight -= 1
            if not self._inflight:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled; False if `timeout` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout)

    @property
    def ready(self) -> bool:
        return not self.draining

    # ---- routing
    def handle(self, method: str, path: str, headers: Any,
               read_body: Callable[[], bytes]) -> Response:
        """Answer one request."""
        path = path.split("?", 1)[0]
        if len(path) > 1:
            path = path.rstrip("/")
        if path == "/ping":
            self._allow(method, "GET")
            state = "healthy" if self.ready else "shutting down"
            return self._json(200 if self.ready else 503, {"status": state})
        if path == "/invocations":
            self._allow(method, "POST")
            return self._invocations(headers, read_body())
        if path.startswith("/v2"):
            return self._v2(method, path, headers, read_body)
        if path.startswith("/v1"):
            return self._v1(method, path, headers, read_body)
        if path == "/":
            self._allow(method, "GET")
            return self._json(200, {"status": "alive"})
        raise RequestError(404, f"no route for {method} {path}")

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise RequestError(405, f"{method} is not allowed here; use {allowed}",
                               {"Allow": allowed})

    def _check_model(self, name: str) -> None:
        name = unquote(name)
        if name != self.model_name:
            raise RequestError(404, f"model {name!r} not found; this server serves "
                                    f"{self.model_name!r}")

    @staticmethod
    def _json(status: int, doc: Any) -> Response:
        return status, _dumps(doc), "application/json"

    @staticmethod
    def _json_body(headers: Any, body: bytes) -> Any:
        media = _media_type(headers)
        if media and not _is_json(media):
            raise RequestError(415, f"unsupported content type {media!r}; send application/json")
        return _loads(body)

    # ---- SageMaker
    def _invocations(self, headers: Any, body: bytes) -> Response:
        media = _media_type(headers)
        as_csv = _wants_csv(headers.get("Accept"))
        if media in ("text/csv", "application/csv"):
            try:
                text = body.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise RequestError(400, "the CSV body is not valid UTF-8") from None
            records = decode_csv_rows(text, self.schema)
        elif _is_json(media):
            records = decode_json_rows(_loads(body), self.schema)
        else:
            raise RequestError(415, f"unsupported content type {media or '(none)'!r}; "
                                    "send text/csv or application/json")
        out = self._predict(records)
        if as_csv:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows([p] for p in out["predictions"])
            return 200, buffer.getvalue().encode("utf-8"), "text/csv"
        doc = {"predictions": out["predictions"]}
        if out["probabilities"] is not None:
            doc["probabilities"] = out["probabilities"]
        return self._json(200, doc)

    # ---- KServe v1
    def _v1(self, method: str, path: str, headers: Any, read_body: Callable[[], bytes]) -> Response:
        if path == "/v1/models":
            self._allow(method, "GET")
            return self._json(200, {"models": [self.model_name]})
        match = _V1_ROUTE.match(path)
        if not match:
            raise RequestError(404, f"no route for {method} {path}")
        self._check_model(match.group(1))
        if match.group(2):
            self._allow(method, "POST")
            records = decode_json_rows(self._json_body(headers, read_body()), self.schema)
            return self._json(200, {"predictions": self._predict(records)["predictions"]})
        self._allow(method, "GET")
        return self._json(200, {"name": self.model_name, "ready": self.ready})

    # ---- KServe v2 / Open Inference Protocol
    def _v2(self, method: str, path: str, headers: Any, read_body: Callable[[], bytes]) -> Response:
        if path in ("/v2", "/v2/health/live", "/v2/health/ready"):
            self._allow(method, "GET")
            if path == "/v2":
                return self._json(200, {"name": "mlscaffold-serve", "version": "1",
                                        "extensions": []})
            if path == "/v2/health/live":
                return self._json(200, {"live": True})
            return self._json(200 if self.ready else 503, {"ready": self.ready})
        match = _V2_ROUTE.match(path)
        if not match:
            raise RequestError(404, f"no route for {method} {path}")
        self._check_model(match.group(1))
        action = match.group(3)
        if action == "/infer":
            self._allow(method, "POST")
            return self._v2_infer(self._json_body(headers, read_body()))
        self._allow(method, "GET")
        if action == "/ready":
            return self._json(200 if self.ready else 503,
                              {"name": self.model_name, "ready": self.ready})
        return self._json(200, self.v2_metadata())

    def v2_metadata(self) -> dict:
        """The model's metadata in the v2 protocol's form."""
        classes = _tolist(self.bundle.classes)
        inputs = [{"name": c, "datatype": "FP64" if c in self.schema.numeric else "BYTES",
                   "shape": [-1]} for c in self.schema.inputs]
        outputs = [{"name": "predict", "datatype": _v2_datatype(classes) if classes else "FP64",
                    "shape": [-1]}]
        if self.is_classifier:
            outputs.append({"name": "predict_proba", "datatype": "FP64",
                            "shape": [-1, len(classes or [])]})
        return {
            "name": self.model_name,
            "versions": [],
            "platform": "sklearn",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {"task": self.bundle.task, "label": self.bundle.label,
                           "classes": classes},
        }

    def _v2_infer(self, doc: Any) -> Response:
        records = decode_v2_inputs(doc, self.schema)
        wanted = _requested_outputs(doc, self.is_classifier)
        out = self._predict(records)
        rows = len(records)
        outputs = []
        for name in wanted:
            if name == "predict":
                data = out["predictions"]
                outputs.append({"name": name, "shape": [rows], "datatype": _v2_datatype(data),
                                "data": data})
            else:
                probabilities = out["probabilities"] or []
                width = len(probabilities[0]) if probabilities else 0
                outputs.append({"name": name, "shape": [rows, width], "datatype": "FP64",
                                "data": [p for row in probabilities for p in row]})
        request_id = doc.get("id")
        return self._json(200, {
            "model_name": self.model_name,
            "id": request_id if isinstance(request_id, str) and request_id else uuid.uuid4().hex,
            "outputs": outputs,
        })

    # ---- prediction
    def _predict(self, records: list[dict]) -> dict:
        self.schema.check(records)
        try:
            return self.predictor.predict(records)
        except SchemaMismatch as exc:
            parts = []
            if exc.missing:
                parts.append("missing columns: " + ", ".join(exc.missing))
            if exc.extra:
                parts.append("unexpected columns: " + ", ".join(exc.extra))
            raise RequestError(400, "; ".join(parts) or str(exc)) from None
        except RequestError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise RequestError(400, f"the rows cannot be scored: {exc}") from None


# ------------------------------------------------------------------------------ HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlscaffold-serve"
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_TIMEOUT
    server: ServingHTTPServer

    def do_GET(self) -> None:  # the names http.server looks up
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        app.enter()
        started = time.perf_counter()
        self._body_read = False
        extra: dict[str, str] = {}
        try:
            try:
                status, body, content_type = app.handle(
                    "GET" if method == "HEAD" else method, self.path, self.headers,
                    self._read_body)
            except RequestError as exc:
                status, body, content_type = exc.status, _dumps({"error": exc.message}), \
                    "application/json"
                extra = exc.headers
                log.info("%s %s -> %d %s", method, self.path, status, exc.message)
            except Exception:  # a bug must not take the server down
                log.exception("error while handling %s %s", method, self.path)
                status, body, content_type = 500, _dumps({"error": "internal server error"}), \
                    "application/json"
            if not self._body_read:
                self._discard_body()
            if app.draining:
                self.close_connection = True
            self._send(status, b"" if method == "HEAD" else body, content_type, extra, len(body))
            if app.access_log:
                log.info('%s "%s %s" %d %d %.1fms', self.client_address[0], method, self.path,
                         status, len(body), (time.perf_counter() - started) * 1000)
        finally:
            app.leave()

    def _read_body(self) -> bytes:
        limit = self.server.app.max_body_bytes
        self._body_read = True
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            return self._read_chunked(limit)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
            if size < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            raise RequestError(400, f"invalid Content-Length {length!r}") from None
        if size > limit:
            self._discard(size)
            raise RequestError(413, f"the request body has {size} bytes; the limit is {limit}")
        body = self.rfile.read(size)
        if len(body) != size:
            self.close_connection = True
            raise RequestError(400, "the request body ended early")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise RequestError(400, "malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                return b"".join(parts)
            total += size
            if total > limit:
                self.close_connection = True
                raise RequestError(413, f"the request body exceeds the limit of {limit} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _discard_body(self) -> None:
        """Consume a body the route did not read, so the connection can carry the next request."""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            self.close_connection = True
            return
        try:
            self._discard(int(self.headers.get("Content-Length") or 0))
        except ValueError:
            self.close_connection = True

    def _discard(self, size: int) -> None:
        if size > 4 * self.server.app.max_body_bytes + (1 << 20):
            self.close_connection = True  # too big to drain: answer, then drop the connection
            return
        while size > 0:
            chunk = self.rfile.read(min(size, 1 << 16))
            if not chunk:
                self.close_connection = True
                return
            size -= len(chunk)

    def _send(self, status: int, body: bytes, content_type: str,
              extra: dict[str, str] | None = None, length: int | None = None) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        head = [f"HTTP/1.1 {status} {reason}", f"Server: {self.server_version}",
                f"Content-Type: {content_type}",
                f"Content-Length: {len(body) if length is None else length}"]
        head.extend(f"{key}: {value}" for key, value in (extra or {}).items())
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            self.wfile.write(data)  # one write: headers and body leave together
        except OSError:
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors http.server raises itself (bad request line, too many headers...) as JSON."""
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        if code == 501:  # http.server's answer to an unknown method
            code, text = 405, f"method {self.command} is not supported"
        log.info("%s -> %d %s", self.requestline or "request", code, text)
        self._send(code, _dumps({"error": text}), "application/json")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.client_address[0], *args)


class ServingHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server (a thread per connection) bound to a `ServingApp`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: ServingApp,
                 shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE):
        self.app = app
        self.shutdown_grace = shutdown_grace
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def begin_shutdown(self) -> None:
        """Stop accepting connections; returns at once (safe in a signal handler)."""
        if not self.app.draining:
            self.app.draining = True
            threading.Thread(target=self.shutdown, name="shutdown", daemon=True).start()

    def server_close(self) -> None:
        """Close the listening socket, let in-flight requests finish, stop the predictor."""
        self.app.draining = True
        super().server_close()
        if not self.app.wait_idle(self.shutdown_grace):
            log.warning("requests still running after %.0f s; stopping anyway", self.shutdown_grace)
        self.app.predictor.stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended: %r", client_address, sys.exc_info()[1])


def build_server(bundle: ModelBundle, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 model_name: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, *,
                 max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
                 predict_timeout: float = DEFAULT_PREDICT_TIMEOUT, access_log: bool = False,
                 shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
                 fast_path: bool = True) -> ServingHTTPServer:
    """Bind a server for `bundle` (port 0: any free port); run it with ``serve_forever()``.

    Stop it with ``shutdown()`` (from another thread) and ``server_close()``.
    """
    app = ServingApp(bundle, model_name, max_body_bytes, max_batch_rows, predict_timeout,
                     access_log, fast_path)
    try:
        return ServingHTTPServer((host, port), app, shutdown_grace)
    except BaseException:
        app.predictor.stop()
        raise


def run(bundle: ModelBundle, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
        model_name: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        **options: Any) -> None:
    """Serve `bundle` until SIGTERM or SIGINT, then shut down gracefully."""
    server = build_server(bundle, host, port, model_name, max_body_bytes, **options)
    previous = {signum: signal.signal(signum, lambda *_: server.begin_shutdown())
                for signum in (signal.SIGTERM, signal.SIGINT)}
    log.info("serving %s model %r on %s", bundle.task, server.app.model_name, server.url)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        log.info("server stopped")
