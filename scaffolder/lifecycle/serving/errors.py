"""The one error type of the server: a request it refuses, answered with a JSON body."""

from __future__ import annotations


class RequestError(Exception):
    """A refused request: answered with `status` and ``{"error": message}``.

    `headers` are added to the answer (``Allow`` on a 405); `close` ends the connection after it
    (the request's framing or body cannot be trusted, or was not read).
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, *,
                 close: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.close = close


def type_name(value: object) -> str:
    """How a JSON value is named in an error message."""
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null",
             bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
