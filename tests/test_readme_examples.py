"""The request examples of a project's README work against `mlscaffold serve` as written."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

PATIENCE_SECONDS = 300  # only how long a broken server is waited for, never a pass condition


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _call(port: int, method: str, path: str, body: str | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body,
                           {"Content-Type": "application/json"} if body else {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.slow
def test_the_readmes_kserve_v2_request_is_answered(tmp_path: Path):
    root = create_project(tmp_path / "churn", validate_spec({"name": "churn", "ci": "none"}),
                          git=False).path
    readme = (root / "README.md").read_text(encoding="utf-8")
    example = re.search(r"curl -s localhost:8080(/v2/models/\S+/infer) .*?-d '\n(.*?)'\n",
                        readme, re.DOTALL)
    assert example, "the README lost its KServe v2 request example"
    path, body = example.group(1), example.group(2)
    json.loads(body)  # the example is valid JSON as written

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    run = [sys.executable, "-m", "mlscaffold"]
    trained = subprocess.run([*run, "train", "--time", "3", "--seed", "1"], cwd=root, env=env,
                             capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    port = _free_port()
    server = subprocess.Popen([*run, "serve", "--model", "exp-001", "--port", str(port)],
                              cwd=root, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        give_up = time.monotonic() + PATIENCE_SECONDS
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if _call(port, "GET", "/ping")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < give_up, "the server never answered /ping"
                time.sleep(0.2)
        status, answer = _call(port, "POST", path, body)
        assert status == 200, answer
        outputs = json.loads(answer)["outputs"]
        assert outputs and all(len(output["data"]) >= 1 for output in outputs)
    finally:
        server.terminate()
        server.wait(timeout=60)
