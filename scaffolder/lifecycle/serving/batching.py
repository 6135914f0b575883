"""Micro-batching: one predictor thread merges the requests waiting for the model into one call.

Requests are decoded and checked on the event loop, then queued. The thread takes whatever is
queued (up to `max_batch_rows` rows), never waiting for more, so an idle server answers at once
and a busy one pays one model call per batch instead of one per request. When a merged call
fails, each request of the batch is predicted alone, so an error stays with the request that
caused it. Only this thread touches the model.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
from typing import Any

import numpy as np

from ..errors import DataError
from ..model import ModelBundle, SchemaMismatch, frame_from_records, predict_frame
from .compiled import CompiledModel
from .errors import RequestError

log = logging.getLogger(__name__)


class _Job:
    __slots__ = ("future", "loop", "rows")

    def __init__(self, rows: list[dict], loop: asyncio.AbstractEventLoop):
        self.rows = rows
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()

    def finish(self, result: dict | None, error: BaseException | None = None) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the request gave up waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Predictor:
    """The model behind a queue; `predict` is awaited by request handlers."""

    def __init__(self, bundle: ModelBundle, max_batch_rows: int, fast_path: bool = True):
        self.bundle = bundle
        self.compiled = CompiledModel.build(bundle) if fast_path else None
        self.max_batch_rows = max(1, max_batch_rows)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="predictor", daemon=True)
        self._thread.start()

    async def predict(self, rows: list[dict], timeout: float) -> dict:
        """``{"predictions": [...], "probabilities": [[...]] | None}`` for normalized rows."""
        job = _Job(rows, asyncio.get_running_loop())
        self._queue.put(job)
        try:
            return await asyncio.wait_for(job.future, timeout)
        except TimeoutError:
            raise RequestError(503, f"the prediction took longer than {timeout:g} s") from None

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        carry: _Job | None = None
        while True:
            job = carry or self._queue.get()
            carry = None
            if job is None:
                return
            batch, rows = [job], len(job.rows)
            stopping = False
            while rows < self.max_batch_rows:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stopping = True
                    break
                if rows + len(following.rows) > self.max_batch_rows:
                    carry = following
                    break
                batch.append(following)
                rows += len(following.rows)
            self._run(batch)
            if stopping:
                if carry is not None:
                    self._run([carry])
                return

    def _run(self, batch: list[_Job]) -> None:
        if len(batch) > 1:
            try:
                merged = self._predict([row for job in batch for row in job.rows])
            except Exception:
                merged = None
            if merged is not None:
                start = 0
                for job in batch:
                    end = start + len(job.rows)
                    probabilities = merged["probabilities"]
                    part = {"predictions": merged["predictions"][start:end],
                            "probabilities": probabilities and probabilities[start:end]}
                    start = end
                    problem = _non_finite(part)
                    job.finish(None if problem else part, problem)
                return
        for job in batch:
            try:
                result = self._predict(job.rows)
            except Exception as error:
                job.finish(None, _as_request_error(error))
            else:
                problem = _non_finite(result)
                job.finish(None if problem else result, problem)

    def _predict(self, rows: list[dict]) -> dict:
        if self.compiled is not None:
            try:
                result = self.compiled.predict(rows)
            except Exception as error:
                log.warning("fast path failed (%s: %s); using the pipeline",
                            type(error).__name__, error)
                result = None
            if result is not None:
                return result
        with np.errstate(over="ignore", invalid="ignore"):  # refused below, not warned about
            out = predict_frame(self.bundle, frame_from_records(self.bundle, rows))
        if len(out["predictions"]) != len(rows):
            raise RuntimeError(f"the model gave {len(out['predictions'])} predictions "
                               f"for {len(rows)} rows")
        return out


def _as_request_error(error: Exception) -> BaseException:
    """A model's refusal of the rows as a 400; anything else stays a server error."""
    if isinstance(error, SchemaMismatch):
        parts = []
        if error.missing:
            parts.append("missing columns: " + ", ".join(error.missing))
        if error.extra:
            parts.append("unexpected columns: " + ", ".join(error.extra))
        return RequestError(400, "; ".join(parts) or str(error))
    if isinstance(error, (DataError, ValueError, TypeError, KeyError)):
        return RequestError(400, f"the rows cannot be scored: {error}")
    return error


def _non_finite(result: dict) -> RequestError | None:
    """A 400 when a prediction or probability is NaN or infinite (inputs beyond what the model
    can score): such a number has no JSON or CSV form."""
    bad = [number for number, value in enumerate(result["predictions"], start=1)
           if isinstance(value, float) and not math.isfinite(value)]
    for number, row in enumerate(result["probabilities"] or [], start=1):
        if not all(math.isfinite(p) for p in row) and number not in bad:
            bad.append(number)
    if not bad:
        return None
    shown = ", ".join(map(str, sorted(bad)[:10])) + (" ..." if len(bad) > 10 else "")
    return RequestError(400, f"the model's prediction for row(s) {shown} is not a finite number: "
                             "the inputs are beyond the range it can score")
