"""The HTTP server: uvicorn with httptools, configured for a model server.

Why uvicorn on httptools: HTTP/1.1 framing is done by llhttp (Node.js's parser, maintained and
fuzzed for years), which refuses what RFC 9112 says to refuse (two Content-Length fields, a
Content-Length of ``+0``, one beside Transfer-Encoding, a negative or malformed chunk size) and
runs in C, where h11 would parse in Python and cost a large share of a one-row prediction. No
request line, header or chunk is parsed here.

What this module adds to uvicorn, each a small override of its protocol or server class:

* a response's head and body written together (one send instead of two);
* a JSON body on the 400 uvicorn sends for a request llhttp refuses (uvicorn's is plain text);
* time limits where uvicorn has none (Kludex/uvicorn#157; its keep-alive timer restarts on
  every byte): a connection that sends nothing, or whose request head is not complete
  `head_timeout` seconds after it began, is closed (with a 408 when a request had begun);
* size limits on the request head where uvicorn's httptools protocol has none (Kludex/uvicorn#157:
  llhttp's own limit cannot be set): a head over `MAX_HEAD_BYTES`, or with more than
  `MAX_HEADER_FIELDS` fields, gets a 431 (a request target over the limit, a 414) and the
  connection closes, counted as the bytes arrive, so a head that never ends is refused too;
  the refusal is logged with its reason, without uvicorn's "Invalid HTTP request" warning;
* a drain on SIGTERM or SIGINT that answers every request it has received: the listening socket
  closes, requests in flight are answered with ``Connection: close``, and an idle keep-alive
  connection stays open for `drain_idle_seconds` so that a request already on its way is
  answered (with ``Connection: close``) instead of being reset; then the process exits 0 (uvicorn
  re-raises the signal, which would end it with status -15).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..config import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT
from ..model import ModelBundle
from .app import ServingApp
from .records import dumps

log = logging.getLogger(__name__)

DEFAULT_PREDICT_TIMEOUT = 60.0
# within the 30 s Kubernetes and SageMaker wait between SIGTERM and SIGKILL (SageMaker docs,
# "Custom Inference Code with Hosting Services")
DEFAULT_SHUTDOWN_GRACE = 20.0
DEFAULT_BODY_TIMEOUT = 30.0  # a request body not complete this long after its head: 408
DEFAULT_HEAD_TIMEOUT = 30.0  # a connection silent (or mid-head) this long before a request
# longer than the 60 s idle timeout of AWS load balancers in front of the container, so that
# the balancer, not the server, closes an idle connection
KEEP_ALIVE_SECONDS = 75
DRAIN_IDLE_SECONDS = 5.0
BACKLOG = 1024
# the request line and header fields together, and the number of fields: Apache httpd allows
# 100 fields (LimitRequestFields) of 8190 bytes each; a model request needs a handful
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_FIELDS = 100


class _HeadTooLarge(Exception):
    """Raised inside a parser callback: httptools turns it into HttpParserError."""


def _raw_answer(status: int, reason: str, message: str, head_only: bool = False) -> bytes:
    """An error answer that closes the connection; `head_only` for a HEAD request."""
    body = dumps({"error": message})
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() \
        + (b"" if head_only else body)


class _Coalescing:
    """A connection's transport whose writes made in one event-loop step leave in one send.

    uvicorn writes a response's head and body separately: two system calls, and two TCP
    segments, where one does; on loopback the second call costs about as much as the model.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: Any, loop: Any):
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _RefusalLog:
    """A connection's uvicorn logger, less uvicorn's warning "Invalid HTTP request received."
    after a request head this module refused (431, 414): the refusal is logged with its reason,
    and the request was not invalid HTTP. A head llhttp refuses still gets the warning."""

    def __init__(self, logger: logging.Logger, protocol: _Protocol):
        self._logger, self._protocol = logger, protocol

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if self._protocol._refusal is None:
            self._logger.warning(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with JSON refusals, head timeouts and size limits, and a
    lingering drain."""

    head_timeout = DEFAULT_HEAD_TIMEOUT
    drain_idle_seconds = DRAIN_IDLE_SECONDS
    max_head_bytes = MAX_HEAD_BYTES
    max_header_fields = MAX_HEADER_FIELDS

    def connection_made(self, transport: Any) -> None:
        super().connection_made(_Coalescing(transport, self.loop))
        self.logger = _RefusalLog(self.logger, self)
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out, False)
        # a request head is awaited from here on and after each message: `_head_received`
        # counts the bytes that arrived meanwhile, `_head_parsed` what the parser gave back
        self._in_head = True
        self._head_received = self._head_parsed = self._head_fields = 0
        self._refusal: bytes | None = None
        self._is_head = False  # the request's method is HEAD: answers have no body

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_received += len(data)
        super().data_received(data)
        # a head still incomplete after a whole chunk: every byte counted was the head's (a
        # field's value is only handed over when it ends, so on_header alone cannot see it)
        if self._in_head and self._head_received > self.max_head_bytes \
                and not self.transport.is_closing():
            self._refuse_head(431, "Request Header Fields Too Large", self._too_large())
            self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_parsed = self._head_fields = 0
        self._is_head = False
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out, True)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if not self._head_parsed:  # the method is parsed before the target
            self._is_head = self.parser.get_method() == b"HEAD"
        self._head_parsed += len(url)
        if self._head_parsed > self.max_head_bytes:
            self._refuse_head(414, "URI Too Long", f"the request target is longer than the "
                                                   f"limit of {self.max_head_bytes} bytes")
            raise _HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_parsed += len(name) + len(value) + 4  # ": " and CRLF
        self._head_fields += 1
        if self._head_fields > self.max_header_fields:
            self._refuse_head(431, "Request Header Fields Too Large",
                              f"the request has more than {self.max_header_fields} header "
                              "fields")
            raise _HeadTooLarge
        if self._head_parsed > self.max_head_bytes:
            self._refuse_head(431, "Request Header Fields Too Large", self._too_large())
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_received = 0

    def _too_large(self) -> str:
        return f"the request head is larger than the limit of {self.max_head_bytes} bytes"

    def _refuse_head(self, status: int, reason: str, message: str) -> None:
        # the answer goes out from send_400_response, where uvicorn sends a parser error
        self._refusal = _raw_answer(status, reason, message, self._is_head)
        log.info("request head refused: %d %s", status, message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _cancel_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_timed_out(self, begun: bool) -> None:
        self._head_timer = None
        if self.transport.is_closing() or (self.cycle is not None
                                           and not self.cycle.response_complete):
            return
        if begun:
            message = f"the request head stalled: not complete after {self.head_timeout:g} s"
            self.transport.write(_raw_answer(408, "Request Timeout", message, self._is_head))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # llhttp refused the request's framing, or a head limit was passed (`_refusal`)
        self._refuse()

    def _refuse(self) -> None:
        """Answer a request the parser cannot go on with in JSON, and close (RFC 9112 §6.3)."""
        self._cancel_head_timer()
        in_head, self._in_head = self._in_head, False
        answer = self._refusal or _raw_answer(
            400, "Bad Request", "malformed HTTP request: the request line, a header or the "
                                "body framing is invalid", self._is_head)
        if in_head and self.cycle is not None and not self.cycle.response_complete:
            # the head of a pipelined request while the one before is being answered: that
            # answer goes out, then the connection closes; nothing more is read
            self.flow.pause_reading()
            self.cycle.keep_alive = False
            return
        self.transport.write(answer)
        self.transport.close()

    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            # idle: a request may be on its way; answer it (the app says Connection: close)
            # or close when none comes
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.drain_idle_seconds, self.timeout_keep_alive_handler)
        else:
            self.cycle.keep_alive = False


class _Server(uvicorn.Server):
    """uvicorn's server, draining the app on a signal and exiting normally afterwards."""

    def __init__(self, config: uvicorn.Config, app: ServingApp):
        super().__init__(config)
        self.serving_app = app

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: Any) -> None:
        if not self.should_exit:
            log.info("signal %d: draining (no new connections; answering what was received)",
                     sig)
        self.serving_app.draining = True
        super().handle_exit(sig, frame)


class ModelServer:
    """A bound server for one model: `serve()` blocks until `stop()` or SIGTERM/SIGINT."""

    def __init__(self, app: ServingApp, sock: socket.socket, *, access_log: bool,
                 shutdown_grace: float, head_timeout: float, drain_idle_seconds: float):
        self.app = app
        self.socket = sock
        protocol = type("ServingProtocol", (_Protocol,),
                        {"head_timeout": head_timeout, "drain_idle_seconds": drain_idle_seconds})
        config = uvicorn.Config(
            app, http=protocol, loop="asyncio", lifespan="off", interface="asgi3", ws="none",
            log_config=None, access_log=access_log, timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=shutdown_grace, server_header=False, backlog=BACKLOG,
            proxy_headers=False)
        self._server = _Server(config, app)

    @property
    def port(self) -> int:
        return self.socket.getsockname()[1]

    @property
    def url(self) -> str:
        host = self.socket.getsockname()[0]
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def serve(self) -> None:
        """Serve until stopped, drain, then stop the model's thread."""
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self.socket.close()
            self.app.close()

    def stop(self) -> None:
        """Begin the drain (from any thread); `serve` returns when it is done."""
        self.app.draining = True
        self._server.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that name it, and without it
    # a response's head and body wait on the client's delayed ACK (40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def build_server(bundle: ModelBundle, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 model_name: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, *,
                 max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
                 predict_timeout: float = DEFAULT_PREDICT_TIMEOUT, access_log: bool = False,
                 shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE, fast_path: bool = True,
                 body_timeout: float = DEFAULT_BODY_TIMEOUT,
                 head_timeout: float = DEFAULT_HEAD_TIMEOUT,
                 drain_idle_seconds: float = DRAIN_IDLE_SECONDS) -> ModelServer:
    """Bind a server for `bundle` (port 0: any free port); run it with ``serve()``.

    OSError when the address cannot be bound.
    """
    sock = _bind(host, port)
    try:
        app = ServingApp(bundle, model_name, max_body_bytes=max_body_bytes,
                         max_batch_rows=max_batch_rows, predict_timeout=predict_timeout,
                         body_timeout=body_timeout, fast_path=fast_path)
    except BaseException:
        sock.close()
        raise
    return ModelServer(app, sock, access_log=access_log, shutdown_grace=shutdown_grace,
                       head_timeout=head_timeout, drain_idle_seconds=drain_idle_seconds)


def run(bundle: ModelBundle, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
        model_name: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        **options: Any) -> None:
    """Serve `bundle` until SIGTERM or SIGINT, then drain and return."""
    server = build_server(bundle, host, port, model_name, max_body_bytes, **options)
    log.info("serving %s model %r on %s", bundle.task, server.app.model_name, server.url)
    server.serve()
    log.info("server stopped")
