"""The model server: SageMaker hosting, KServe v1 and KServe v2 (Open Inference) over HTTP/1.1.

uvicorn (httptools) does the HTTP; this package has the routes (`app`), the protocols' payloads
(`protocols`, `records`), content negotiation (`negotiation`), micro-batching (`batching`), the
ONNX fast route (`compiled`) and the server's configuration, time limits and drain (`server`).
"""

from __future__ import annotations

from .app import ServingApp
from .errors import RequestError
from .server import ModelServer, build_server, run

__all__ = ["ModelServer", "RequestError", "ServingApp", "build_server", "run"]
