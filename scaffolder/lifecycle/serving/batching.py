"""Micro-batching: the requests waiting for the model are predicted together, in one call.

Requests are decoded and checked on the event loop, then queued. One batching task takes
whatever is queued (up to `max_batch_rows` rows), never waiting for more, so an idle server
answers at once and a busy one pays one model call per batch instead of one per request: while
a batch is computed, the requests that arrive queue up for the next.

The compiled model (ONNX Runtime, tens of microseconds a call) runs on the event loop itself:
handing each call to a thread would cost more than the call, and two busy threads take turns on
the interpreter lock in 5 ms slices, the tail latency of every request under load. The
scikit-learn pipeline (milliseconds a call) runs on one worker thread, so the loop keeps
reading requests meanwhile. When a merged pipeline call fails, each request of the batch is
predicted alone, so an error stays with the request that caused it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from ..errors import DataError
from ..model import ModelBundle, SchemaMismatch, predict_frame
from .compiled import CompiledModel
from .errors import RequestError
from .records import Table, concat

log = logging.getLogger(__name__)

Job = tuple[Table, asyncio.Future]  # checked rows, the future their result settles


class Predictor:
    """The model behind a queue; `predict` is awaited by request handlers on one event loop."""

    def __init__(self, bundle: ModelBundle, max_batch_rows: int, fast_path: bool = True):
        self.bundle = bundle
        self.compiled = CompiledModel.build(bundle) if fast_path else None
        self.max_batch_rows = max(1, max_batch_rows)
        self._pending: deque[Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._batcher: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="predictor")

    async def predict(self, rows: Table, timeout: float) -> dict:
        """``{"predictions": [...], "probabilities": [[...]] | None}`` for checked rows."""
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.done():
            self._wakeup = asyncio.Event()
            self._batcher = loop.create_task(self._batches())
        future = loop.create_future()
        self._pending.append((rows, future))
        self._wakeup.set()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise RequestError(503, f"the prediction took longer than {timeout:g} s") from None

    def stop(self) -> None:
        """End the pipeline's thread (after what it is computing)."""
        self._executor.shutdown(wait=True)

    async def _batches(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = [self._pending.popleft()]
                rows = batch[0][0].rows
                while self._pending and rows + self._pending[0][0].rows <= self.max_batch_rows:
                    job = self._pending.popleft()
                    batch.append(job)
                    rows += job[0].rows
                batch = [job for job in batch if not job[1].done()]  # gave up waiting
                if batch:
                    await self._run(batch)

    async def _run(self, batch: list[Job]) -> None:
        merged = self._compiled(concat([table for table, _ in batch]))
        if merged is not None:
            _settle(batch, _split(merged, batch))
            return
        loop = asyncio.get_running_loop()
        outcomes = await loop.run_in_executor(self._executor, self._with_pipeline,
                                              [table for table, _ in batch])
        _settle(batch, outcomes)

    def _compiled(self, rows: Table) -> dict | None:
        if self.compiled is None:
            return None
        try:
            return self.compiled.predict(rows)
        except Exception as error:
            log.warning("fast path failed (%s: %s); using the pipeline",
                        type(error).__name__, error)
            return None

    def _with_pipeline(self, requests: list[Table]) -> list:
        """Results (or errors) of each request's rows, in one call when they all succeed."""
        if len(requests) > 1:
            try:
                merged = self._pipeline(concat(requests))
            except Exception:
                merged = None
            if merged is not None:
                return _split(merged, [(rows, None) for rows in requests])
        outcomes: list = []
        for rows in requests:
            try:
                outcomes.append(self._pipeline(rows))
            except Exception as error:
                outcomes.append(_as_request_error(error))
        return outcomes

    def _pipeline(self, rows: Table) -> dict:
        with np.errstate(over="ignore", invalid="ignore"):  # refused below, not warned about
            out = predict_frame(self.bundle, pd.DataFrame(rows.columns))
        if len(out["predictions"]) != rows.rows:
            raise RuntimeError(f"the model gave {len(out['predictions'])} predictions "
                               f"for {rows.rows} rows")
        return out


def _split(merged: dict, batch: list) -> list[dict]:
    """Each request's share of a merged result, in batch order."""
    parts, start = [], 0
    probabilities = merged["probabilities"]
    for rows, _ in batch:
        end = start + rows.rows
        parts.append({"predictions": merged["predictions"][start:end],
                      "probabilities": probabilities and probabilities[start:end]})
        start = end
    return parts


def _settle(batch: list[Job], outcomes: list) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
            continue
        problem = _non_finite(outcome)
        if problem is not None:
            future.set_exception(problem)
        else:
            future.set_result(outcome)


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
