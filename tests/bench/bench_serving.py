#!/usr/bin/env python3
"""Benchmark the generated project's model server against MLServer on loopback.

What it does, bounded in count and time:

1. Builds a throw-away folder in a temporary directory: the sample data for ``--task`` and a
   model fitted on it (impute + scale /
   impute + one-hot, then logistic regression, or ridge for regression), saved as a model bundle.
   ``--model-dir`` benchmarks an existing bundle instead (e.g. one made by ``train`` + ``promote``).
2. Makes sure MLServer and its scikit-learn runtime are installed in their own virtual environment
   (default ``~/.cache/mlscaffold-bench/mlserver-venv``, created on first use with the same
   scikit-learn, numpy and joblib versions as this interpreter; the first install takes a few
   minutes), or uses ``--mlserver-python``. The environment running this script is not modified.
3. Starts both servers on free 127.0.0.1 ports, serving the same ``model.joblib`` under the same
   name, and checks that they give the same predictions. Then, for each cell of the grid
   ``--rows`` x ``--concurrency`` (default {1, 100} rows per request x {1, 8, 32} connections),
   it sends both the same v2 request bodies (``POST /v2/models/<name>/infer``, one tensor per
   column, with ``"parameters": {"content_type": "pd"}`` so that MLServer decodes a DataFrame): a
   warm-up, then ``--rounds`` rounds of ``--requests`` requests (a quarter as many for requests
   of 100 rows), the servers taking turns round by round.
4. Prints each cell's medians across rounds: throughput (req/s) and p50 and p99 latency of each
   server, the throughput ratio ours/MLServer and our p99 beside MLServer's p50, against the
   targets (ratio >= 5, p99 <= MLServer's p50); then stops both servers (SIGTERM, SIGKILL after a
   grace period) and reports our server's exit code.

``--dates`` adds a column of ISO 8601 dates to the sample data (the model reads it as five
numbers, schema.date_parts, which our server computes before the ONNX graph). MLServer cannot
load such a model (the pipeline calls mlscaffold's code), so the peer is then our own server on
the scikit-learn pipeline route (``--no-fast-path``), and the ratio is fast route / pipeline.

Load generator: Python threads, each with one keep-alive ``http.client`` connection and
TCP_NODELAY (wrk is not assumed installed, and it runs for a duration rather than a request
count). It shares the machine's cores with the server under test, the same for both servers;
latencies include its own overhead.

MLServer runs with its default settings except ``debug: false`` (no access log per request, like
our server's default); ``--mlserver-workers`` sets its ``parallel_workers`` (default 1).

Run: ``.venv/bin/python tests/bench/bench_serving.py [--task regression] [--rounds 3]``.
Exit code 1 if any request failed or our server did not exit 0 on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODEL_NAME = "bench-model"
TASKS = ("binary-classification", "multiclass-classification", "regression")
LOOPBACK = "127.0.0.1"
# uvloop 0.22 breaks MLServer 1.7's inference workers ("There is no current event loop").
MLSERVER_REQUIREMENTS = ["mlserver>=1.6,<1.8", "mlserver-sklearn>=1.6,<1.8", "uvloop<0.22"]
INSTALL_TIMEOUT = 1800


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlscaffold-bench"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=TASKS, default="binary-classification")
    parser.add_argument("--model-dir", type=Path,
                        help="benchmark this model bundle instead of fitting one")
    parser.add_argument("--requests", type=int, default=1000,
                        help="requests per round of one-row requests; a quarter of it for "
                             "larger requests (default: 1000)")
    parser.add_argument("--rows", type=_counts, default=(1, 100),
                        help="rows per request, comma-separated (default: 1,100)")
    parser.add_argument("--concurrency", type=_counts, default=(1, 8, 32),
                        help="client connections, comma-separated (default: 1,8,32)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="measured rounds per server (default: 5)")
    parser.add_argument("--warmup", type=int, default=200,
                        help="warm-up requests per server and cell (default: 200)")
    parser.add_argument("--round-timeout", type=float, default=120.0,
                        help="end a round after this many seconds (default: 120)")
    parser.add_argument("--mlserver-python", type=Path,
                        help="python of an environment that has mlserver and mlserver-sklearn")
    parser.add_argument("--cache-dir", type=Path, default=cache,
                        help=f"where the MLServer environment is made (default: {cache})")
    parser.add_argument("--mlserver-workers", type=int,
                        help="MLServer's parallel_workers (default: MLServer's default, 1)")
    parser.add_argument("--no-fast-path", action="store_true",
                        help="run our server with --no-fast-path (the scikit-learn pipeline, "
                             "no ONNX Runtime)")
    parser.add_argument("--skip-mlserver", action="store_true", help="benchmark our server only")
    parser.add_argument("--dates", action="store_true",
                        help="add a date column; the peer is our server's pipeline route")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (logs, model)")
    args = parser.parse_args(argv)
    if min(args.requests, args.rounds, *args.rows, *args.concurrency) < 1 or args.warmup < 0:
        parser.error("--requests, --rows, --concurrency and --rounds must be positive")
    return args


def _counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}")\
            from None


# ---------------------------------------------------------------------------- project and model


DATE_COLUMN = "signed_up"


def make_project(workdir: Path, task: str, dates: bool = False) -> None:
    """The sample data of `task` in workdir/datasets; with `dates`, a column of ISO 8601 times
    over two years (every 7th missing)."""
    import pandas as pd

    from mlscaffold.sample_data import write_sample_datasets

    write_sample_datasets(workdir / "datasets", task, "label")
    if dates:
        for split in ("train", "test"):
            path = workdir / "datasets" / f"{split}.csv"
            frame = pd.read_csv(path)
            stamps = pd.Timestamp("2025-01-01") + pd.to_timedelta(
                [(i * 7919) % (730 * 86400 // 600) * 600 for i in range(len(frame))], unit="s")
            frame[DATE_COLUMN] = [None if i % 7 == 6 else stamp.isoformat()
                                  for i, stamp in enumerate(stamps)]
            frame.to_csv(path, index=False)


def fit_bundle(workdir: Path, task: str, model_dir: Path) -> None:
    """Fit a small pipeline on datasets/train.csv and save it as a model bundle."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    from mlscaffold.lifecycle import model
    from mlscaffold.lifecycle.schema import build_preprocessor, coerce_features, used_columns
    frame = pd.read_csv(workdir / "datasets" / "train.csv")
    features: dict[str, str] = {}
    for name in frame.columns.drop("label"):
        column = frame[name].dropna()
        numeric = pd.api.types.is_numeric_dtype(column)
        if name == DATE_COLUMN:
            features[name] = "date"
        elif column.nunique() <= 1 or (not numeric and column.nunique() > 0.95 * len(column)):
            features[name] = "dropped"  # constant or identifier
        else:
            features[name] = "numeric" if numeric else "categorical"
    estimator = Ridge() if task == "regression" else LogisticRegression(max_iter=1000)
    pipeline = Pipeline([("preprocess", build_preprocessor(features)), ("model", estimator)])
    pipeline.fit(coerce_features(frame, features)[used_columns(features)], frame["label"])
    classes = None if task == "regression" else pipeline.classes_.tolist()
    bundle = model.ModelBundle(pipeline=pipeline, task=task, label="label", features=features,
                               classes=classes, metric="n/a", metrics={}, name=MODEL_NAME)
    model.save_bundle(bundle, model_dir)


def request_bodies(test_csv: Path, model_dir: Path, rows: int = 1,
                   count: int = 200) -> list[bytes]:
    """`count` v2 request bodies of `rows` complete rows (no missing value) of the test split,
    taken in turn (the split is cycled when it is shorter)."""
    import pandas as pd

    features = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))["features"]
    columns = [c for c, kind in features.items() if kind != "dropped"]
    frame = pd.read_csv(test_csv)[columns].dropna()
    if frame.empty:
        raise SystemExit(f"{test_csv} has no complete rows to send")
    records = list(frame.itertuples(index=False))
    bodies = []
    for number in range(min(count, len(records)) if rows == 1 else count):
        chosen = [records[(number * rows + i) % len(records)] for i in range(rows)]
        inputs = []
        for index, name in enumerate(columns):
            numeric = features[name] == "numeric"  # dates are text, as categories are
            inputs.append({"name": name, "shape": [rows],
                           "datatype": "FP64" if numeric else "BYTES",
                           "data": [float(r[index]) if numeric else str(r[index])
                                    for r in chosen]})
        bodies.append(json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode())
    return bodies


# ---------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ensure_mlserver(args: argparse.Namespace) -> Path:
    """Python of an environment with MLServer; made under the cache dir when missing."""
    if args.mlserver_python:
        return args.mlserver_python
    import joblib
    import numpy
    import sklearn

    wanted = [*MLSERVER_REQUIREMENTS, f"scikit-learn=={sklearn.__version__}",
              f"numpy=={numpy.__version__}", f"joblib=={joblib.__version__}"]
    env_dir = args.cache_dir / "mlserver-venv"
    python = env_dir / "bin" / "python"
    marker = env_dir / ".mlscaffold-requirements"
    if python.exists() and marker.exists() and marker.read_text() == "\n".join(wanted):
        return python
    print(f"installing MLServer into {env_dir} (once; takes a few minutes)", flush=True)
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    log = args.cache_dir / "mlserver-install.log"
    with log.open("w") as handle:
        done = subprocess.run([str(python), "-m", "pip", "install", *wanted], stdout=handle,
                              stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT, env=_clean_env())
    if done.returncode != 0:
        raise SystemExit(f"installing MLServer failed; see {log}")
    marker.write_text("\n".join(wanted))
    return python


class Server:
    """A server subprocess in a process group of its own, logging to a file."""

    def __init__(self, label: str, command: list[str], port: int, cwd: Path,
                 env: dict[str, str], log: Path):
        self.label, self.port, self.log = label, port, log
        self._log_handle = log.open("w")
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=self._log_handle,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.label} exited with code {self.process.returncode}:\n"
                                 f"{self.tail()}")
            with contextlib.suppress(OSError):
                if get(self.port, f"/v2/models/{MODEL_NAME}/ready")[0] == 200:
                    return
            time.sleep(0.25)
        raise SystemExit(f"{self.label} not ready after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        self._log_handle.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; returns the exit code."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
            except ProcessLookupError:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers left in the group
        self._log_handle.close()
        return self.process.returncode


def start_ours(workdir: Path, model_dir: Path, fast_path: bool, label: str = "ours") -> Server:
    port = free_port()
    command = [sys.executable, "-m", "mlscaffold", "serve", "--host", LOOPBACK, "--port", str(port),
               "--model-dir", str(model_dir), "--model-name", MODEL_NAME]
    if not fast_path:
        command.append("--no-fast-path")
    env = _clean_env()
    return Server(label, command, port, workdir, env, workdir / f"{label}.log")


def start_mlserver(workdir: Path, python: Path, model_dir: Path, workers: int | None) -> Server:
    root = workdir / "mlserver"
    model_root = root / "models" / MODEL_NAME
    model_root.mkdir(parents=True)
    shutil.copy(model_dir / "model.joblib", model_root / "model.joblib")
    (model_root / "model-settings.json").write_text(json.dumps({
        "name": MODEL_NAME, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }))
    port = free_port()
    settings = {"host": LOOPBACK, "http_port": port, "grpc_port": free_port(),
                "metrics_port": free_port(), "debug": False}
    if workers is not None:
        settings["parallel_workers"] = workers
    (root / "settings.json").write_text(json.dumps(settings))
    command = [str(python.parent / "mlserver"), "start", str(root)]
    return Server("MLServer", command, port, root, _clean_env(), workdir / "mlserver.log")


# ---------------------------------------------------------------------------- client and load


def _connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def infer(port: int, body: bytes) -> list:
    """The predict output for one request body."""
    conn = _connect(port)
    try:
        conn.request("POST", f"/v2/models/{MODEL_NAME}/infer", body,
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"port {port}: HTTP {response.status}: {data[:300]!r}")
        outputs = {o["name"]: o for o in json.loads(data)["outputs"]}
        return outputs["predict"]["data"]
    finally:
        conn.close()


def run_load(port: int, bodies: list[bytes], total: int, concurrency: int,
             timeout: float) -> dict:
    """Send `total` requests over `concurrency` keep-alive connections; the round's figures."""
    path = f"/v2/models/{MODEL_NAME}/infer"
    headers = {"Content-Type": "application/json"}
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start = threading.Barrier(concurrency + 1)
    deadline = time.monotonic() + timeout

    def worker(slot: int) -> None:
        conn = _connect(port)
        mine = latencies[slot]
        start.wait()
        try:
            while (n := next(counter)) < total and time.monotonic() < deadline:
                began = time.perf_counter()
                try:
                    conn.request("POST", path, bodies[n % len(bodies)], headers)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = _connect(port)
                mine.append(time.perf_counter() - began)
                errors[slot] += not ok
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout + 30)
    wall = time.perf_counter() - began
    samples = sorted(x for mine in latencies for x in mine)
    if not samples:
        raise SystemExit(f"port {port}: no request completed")
    return {
        "requests": len(samples),
        "errors": sum(errors),
        "throughput": len(samples) / wall,
        "p50_ms": 1000 * samples[round(0.50 * (len(samples) - 1))],
        "p99_ms": 1000 * samples[round(0.99 * (len(samples) - 1))],
    }


def _same(a: list, b: list) -> bool:
    """Same predictions (numbers equal within 1e-9 relative)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, int | float) and isinstance(y, int | float):
            if abs(x - y) > 1e-9 * max(1.0, abs(x), abs(y)):
                return False
        elif x != y:
            return False
    return True


# ---------------------------------------------------------------------------- main


def measure(servers: list[Server], bodies: list[bytes], requests: int, concurrency: int,
            args: argparse.Namespace) -> dict:
    """One cell: warm up, then the rounds, servers taking turns; per-server round figures."""
    for server in servers:
        run_load(server.port, bodies, args.warmup, concurrency, args.round_timeout)
    results: dict[str, list[dict]] = {server.label: [] for server in servers}
    for number in range(args.rounds):
        for server in servers if number % 2 == 0 else servers[::-1]:
            figures = run_load(server.port, bodies, requests, concurrency, args.round_timeout)
            results[server.label].append(figures)
            print(f"    round {number + 1} {server.label:9s} {figures['throughput']:8.1f} req/s"
                  f"  p50 {figures['p50_ms']:8.2f} ms  p99 {figures['p99_ms']:8.2f} ms"
                  f"  errors {figures['errors']}", flush=True)
    return results


def medians(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds)
            for key in ("throughput", "p50_ms", "p99_ms")}


def report(cells: dict[tuple[int, int], dict[str, list[dict]]]) -> bool:
    """The table of medians per cell; True when every cell meets both targets."""
    print("\nmedians across rounds (targets against MLServer: ours >= 5x its req/s, "
          "our p99 <= its p50)")
    print(f"  {'rows':>4s} {'conns':>5s} | {'ours req/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} |"
          f" {'peer req/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} | {'ratio':>6s}"
          f" {'p99/peer p50':>11s}  met")
    met = True
    for (rows, concurrency), results in cells.items():
        ours = medians(results["ours"])
        line = (f"  {rows:4d} {concurrency:5d} | {ours['throughput']:10.1f} {ours['p50_ms']:8.2f}"
                f" {ours['p99_ms']:8.2f} |")
        if "pipeline" in results:  # --dates: no target, the fast route against the pipeline
            theirs = medians(results["pipeline"])
            line += (f" {theirs['throughput']:10.1f} {theirs['p50_ms']:8.2f}"
                     f" {theirs['p99_ms']:8.2f} | {ours['throughput'] / theirs['throughput']:5.1f}x"
                     f" {ours['p99_ms'] / theirs['p50_ms']:10.2f}x  (peer: pipeline route)")
        if "MLServer" in results:
            theirs = medians(results["MLServer"])
            ratio = ours["throughput"] / theirs["throughput"]
            latency = ours["p99_ms"] / theirs["p50_ms"]
            ok = ratio >= 5 and latency <= 1
            met = met and ok
            line += (f" {theirs['throughput']:10.1f} {theirs['p50_ms']:8.2f}"
                     f" {theirs['p99_ms']:8.2f} | {ratio:5.1f}x {latency:10.2f}x  "
                     f"{'yes' if ok else 'NO'}")
        print(line)
    return met


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mlserver_python = None if args.skip_mlserver or args.dates else ensure_mlserver(args)
    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    servers: list[Server] = []
    failed = False
    try:
        make_project(workdir, args.task, args.dates)
        model_dir = workdir / "model"
        if args.model_dir:
            shutil.copytree(args.model_dir, model_dir)
        else:
            fit_bundle(workdir, args.task, model_dir)
        test_csv = workdir / "datasets" / "test.csv"
        bodies = {rows: request_bodies(test_csv, model_dir, rows) for rows in args.rows}

        servers.append(start_ours(workdir, model_dir, not args.no_fast_path))
        if mlserver_python:
            servers.append(start_mlserver(workdir, mlserver_python, model_dir,
                                          args.mlserver_workers))
        elif args.dates and not args.no_fast_path:
            servers.append(start_ours(workdir, model_dir, False, "pipeline"))
        for server in servers:
            server.wait_ready()
        fast = [line for line in servers[0].tail(50).splitlines() if "fast path" in line]
        print(f"our server: {fast[-1].split(': ', 1)[-1] if fast else 'fast path: unknown'}")

        sample = bodies[args.rows[0]][:20]
        reference = [infer(servers[0].port, body) for body in sample]
        for server in servers[1:]:
            same = sum(_same(a, infer(server.port, body)) for a, body in zip(reference, sample,
                                                                              strict=True))
            print(f"predictions agree with {server.label} on {same}/{len(sample)} requests")
            if same != len(sample):
                print("warning: the servers disagree; the comparison is not like for like")

        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"task {args.task}; {args.rounds} rounds per cell, v2 infer, HTTP/1.1 keep-alive on "
              f"{LOOPBACK}; {os.cpu_count()} CPUs, load average {load:.2f}")
        cells = {}
        for rows in args.rows:
            requests = args.requests if rows == 1 else max(1, args.requests // 4)
            for concurrency in args.concurrency:
                print(f"  cell: {rows} row(s) per request, {concurrency} connection(s), "
                      f"{requests} requests per round", flush=True)
                cells[(rows, concurrency)] = measure(servers, bodies[rows], requests,
                                                     concurrency, args)
        met = report(cells)
        if mlserver_python:
            print(f"targets {'met in every cell' if met else 'MISSED in a cell (NO above)'}")
        failed = any(r["errors"] for results in cells.values() for rounds in results.values()
                     for r in rounds)
    finally:
        for server in servers:
            code = server.stop()
            if server.label == "ours":
                print(f"our server exited with code {code} on SIGTERM")
                if code != 0:
                    print(server.tail())
                    failed = True
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
