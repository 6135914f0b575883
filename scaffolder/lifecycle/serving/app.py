"""The ASGI application: routes, request bodies (size limit, stall timeout), JSON answers.

Routes (``<name>`` is the model name, by default the project name):

* SageMaker: ``GET /ping``, ``POST /invocations`` (``text/csv`` or ``application/json`` in;
  JSON or CSV out, chosen by ``Accept``).
* KServe v1: ``GET /v1/models``, ``GET /v1/models/<name>``, ``POST /v1/models/<name>:predict``.
* KServe v2: ``GET /v2``, ``GET /v2/health/live``, ``GET /v2/health/ready``,
  ``GET /v2/models/<name>``, ``GET /v2/models/<name>/ready``, ``POST /v2/models/<name>/infer``,
  also under ``/v2/models/<name>/versions/1/`` (the one version served).

Every refusal is a 4xx with the JSON body ``{"error": "..."}``; a 405 names the allowed methods
in ``Allow``. A body larger than `max_body_bytes` gets a 413 as soon as the declared length or
the bytes counted so far (chunked bodies too) pass the limit; a body not complete
`body_timeout` seconds after its head gets a 408 (uvicorn has no such limit:
Kludex/uvicorn#157). Both close the connection, as does a request whose framing the server does
not take (a transfer coding other than chunked).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from ..model import ModelBundle
from . import negotiation, protocols
from .batching import Predictor
from .errors import RequestError
from .negotiation import CSV, JSON
from .records import Columns, Table, decode_csv, dumps, encode_csv, loads

log = logging.getLogger(__name__)

MODEL_VERSION = "1"
_V1_ROUTE = re.compile(r"^/v1/models/([^/:]+)(:predict)?$")
_V2_ROUTE = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")
_READ = ("GET", "HEAD")
_WRITE = ("POST",)

Answer = tuple[int, bytes, str]  # status, body, content type


class _Disconnected(Exception):
    """The client went away before its request was read: nobody to answer."""


class Request:
    """One HTTP request as the routes see it; the body is read on demand."""

    def __init__(self, scope: dict, receive: Any, max_body_bytes: int, body_timeout: float):
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        values: dict[str, list[str]] = {}
        for name, value in scope["headers"]:  # repeated fields: one value, joined once
            values.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        self.headers = {key: ", ".join(parts) for key, parts in values.items()}
        self._receive = receive
        self._limit = max_body_bytes
        self._timeout = body_timeout

    async def body(self) -> bytes:
        """The whole body; 413 past the limit, 408 when it stalls, both closing the connection."""
        declared = self.headers.get("content-length")
        if declared is not None and "transfer-encoding" not in self.headers \
                and int(declared) > self._limit:
            raise RequestError(413, f"the request body has {declared} bytes; the limit is "
                                    f"{self._limit}", close=True)
        parts, size = [], 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout  # for the whole body: a trickle cannot hold on
        while True:
            try:
                message = await asyncio.wait_for(self._receive(), deadline - loop.time())
            except TimeoutError:
                raise RequestError(408, "the request body stalled: not complete after "
                                        f"{self._timeout:g} s", close=True) from None
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                raise RequestError(413, "the request body exceeds the limit of "
                                        f"{self._limit} bytes", close=True)
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    def media_type(self) -> str:
        return negotiation.media_type(self.headers.get("content-type"))

    def accept(self, offers: tuple[str, ...]) -> str:
        return negotiation.choose(self.headers.get("accept"), offers)

    async def json(self) -> Any:
        """The body as JSON (a JSON content type, or none)."""
        media = self.media_type()
        if media and not negotiation.is_json(media):
            raise RequestError(415, f"unsupported content type {media[:100]!r}; "
                                    "send application/json")
        return loads(await self.body())


class ServingApp:
    """The protocols' routes over one model, as an ASGI 3 application."""

    def __init__(self, bundle: ModelBundle, model_name: str | None = None, *,
                 max_body_bytes: int, max_batch_rows: int, predict_timeout: float,
                 body_timeout: float, fast_path: bool = True):
        self.bundle = bundle
        self.model_name = model_name or bundle.name or "model"
        self.max_body_bytes = max_body_bytes
        self.predict_timeout = predict_timeout
        self.body_timeout = body_timeout
        self.columns = Columns(bundle)
        self.outputs = ("predict", "predict_proba") if bundle.is_classifier else ("predict",)
        self.predictor = Predictor(bundle, max_batch_rows, fast_path)
        self.draining = False

    @property
    def ready(self) -> bool:
        return not self.draining

    def close(self) -> None:
        """Answer what is queued for the model, then stop its thread."""
        self.predictor.stop()

    # ---- ASGI
    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan is off; nothing else is served
            return
        request = Request(scope, receive, self.max_body_bytes, self.body_timeout)
        extra: dict[str, str] = {}
        close = request.method == "CONNECT" or "upgrade" in request.headers
        try:
            coding = request.headers.get("transfer-encoding")
            if coding is not None and [c.strip().lower() for c in coding.split(",")] != \
                    ["chunked"]:
                raise RequestError(400, f"transfer coding {coding[:100]!r} is not supported; "
                                        "send the body with Content-Length or as chunked",
                                   close=True)
            status, body, content_type = await self.route(request)
        except RequestError as error:
            status, body, content_type = error.status, dumps({"error": error.message}), JSON
            extra, close = error.headers, close or error.close
            log.info("%s %s -> %d %s", request.method, request.path[:200], status, error.message)
        except _Disconnected:
            return
        except Exception:  # a bug must answer as one, in JSON, and keep the server up
            log.exception("error while handling %s %s", request.method, request.path[:200])
            status, body, content_type = 500, dumps({"error": "internal server error"}), JSON
            close = True
        headers = [(b"content-type", content_type.encode()),
                   (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in extra.items()]
        if close or self.draining:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # ---- routing
    async def route(self, request: Request) -> Answer:
        path = request.path
        if len(path) > 1:
            path = path.rstrip("/")
        if path == "/ping":
            _allow(request, _READ)
            return _json(200 if self.ready else 503,
                         {"status": "healthy" if self.ready else "shutting down"})
        if path == "/invocations":
            _allow(request, _WRITE)
            return await self._invocations(request)
        if path.startswith("/v2"):
            return await self._v2(request, path)
        if path.startswith("/v1"):
            return await self._v1(request, path)
        if path == "/":
            _allow(request, _READ)
            return _json(200, {"status": "alive"})
        raise RequestError(404, f"no route for {request.method} {path[:200]}")

    def _check_model(self, name: str) -> None:
        if name != self.model_name:
            raise RequestError(404, f"model {name[:100]!r} not found; this server serves "
                                    f"{self.model_name!r}")

    async def _predict(self, table: Table) -> dict:
        return await self.predictor.predict(table, self.predict_timeout)

    # ---- SageMaker
    async def _invocations(self, request: Request) -> Answer:
        answer = request.accept((JSON, CSV))
        media = request.media_type()
        if media in ("text/csv", "application/csv"):
            result = await self._predict(decode_csv(await request.body(), self.columns))
        elif negotiation.is_json(media):
            result = await self._predict(protocols.decode_rows(loads(await request.body()),
                                                               self.columns))
        else:
            raise RequestError(415, f"unsupported content type {media[:100] or '(none)'!r}; "
                                    "send text/csv or application/json")
        if answer == CSV:
            return 200, encode_csv(result["predictions"]), CSV
        doc = {"predictions": result["predictions"]}
        if result["probabilities"] is not None:
            doc["probabilities"] = result["probabilities"]
        return _json(200, doc)

    # ---- KServe v1
    async def _v1(self, request: Request, path: str) -> Answer:
        if path == "/v1/models":
            _allow(request, _READ)
            request.accept((JSON,))
            return _json(200, {"models": [self.model_name]})
        match = _V1_ROUTE.match(path)
        if not match:
            raise RequestError(404, f"no route for {request.method} {path[:200]}")
        self._check_model(match.group(1))
        if match.group(2):
            _allow(request, _WRITE)
            request.accept((JSON,))
            table = protocols.decode_rows(await request.json(), self.columns)
            return _json(200, {"predictions": (await self._predict(table))["predictions"]})
        _allow(request, _READ)
        return _json(200, {"name": self.model_name, "ready": self.ready})

    # ---- KServe v2 (Open Inference Protocol)
    async def _v2(self, request: Request, path: str) -> Answer:
        if path in ("/v2", "/v2/health/live", "/v2/health/ready"):
            _allow(request, _READ)
            if path == "/v2":
                request.accept((JSON,))
                return _json(200, {"name": "mlscaffold-serve", "version": "1", "extensions": []})
            if path == "/v2/health/live":
                return _json(200, {"live": True})
            return _json(200 if self.ready else 503, {"ready": self.ready})
        match = _V2_ROUTE.match(path)
        if not match:
            raise RequestError(404, f"no route for {request.method} {path[:200]}")
        self._check_model(match.group(1))
        version = match.group(2)
        if version is not None and version != MODEL_VERSION:
            raise RequestError(404, f"model {self.model_name!r} has no version {version[:60]!r};"
                                    f" it serves version {MODEL_VERSION}")
        action = match.group(3)
        if action == "/infer":
            _allow(request, _WRITE)
            request.accept((JSON,))
            if "inference-header-content-length" in request.headers:
                raise RequestError(400, protocols.BINARY_UNSUPPORTED)
            doc = await request.json()
            table = protocols.decode_v2(doc, self.columns)
            wanted = protocols.requested_outputs(doc, self.outputs)
            result = await self._predict(table)
            return _json(200, protocols.v2_response(doc, self.model_name, MODEL_VERSION, wanted,
                                                    result))
        _allow(request, _READ)
        if action == "/ready":
            return _json(200 if self.ready else 503,
                         {"name": self.model_name, "ready": self.ready})
        request.accept((JSON,))
        return _json(200, self.v2_metadata())

    def v2_metadata(self) -> dict:
        """The model's metadata in the v2 protocol's form."""
        classes = self.bundle.classes
        inputs = [{"name": c, "datatype": "FP64" if c in self.columns.numeric else "BYTES",
                   "shape": [-1]} for c in self.columns.inputs]
        outputs = [{"name": "predict",
                    "datatype": protocols.v2_datatype(classes) if classes else "FP64",
                    "shape": [-1]}]
        if "predict_proba" in self.outputs:
            outputs.append({"name": "predict_proba", "datatype": "FP64",
                            "shape": [-1, len(classes or [])]})
        return {"name": self.model_name, "versions": [MODEL_VERSION], "platform": "sklearn",
                "inputs": inputs, "outputs": outputs,
                "parameters": {"task": self.bundle.task, "label": self.bundle.label,
                               "classes": classes}}


def _allow(request: Request, methods: tuple[str, ...]) -> None:
    if request.method not in methods:
        allowed = ", ".join(methods)
        raise RequestError(405, f"{request.method[:20]} is not allowed here; use {allowed}",
                           {"Allow": allowed})


def _json(status: int, doc: Any) -> Answer:
    return status, dumps(doc), JSON
