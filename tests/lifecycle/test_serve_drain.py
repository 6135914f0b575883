"""SIGTERM under load: a real `mlscaffold serve` process answers every request it received,
closes idle keep-alive connections cleanly (no reset), and exits 0.

Busy clients send requests back to back on keep-alive connections until an answer says
``Connection: close``; idle clients made one request and wait. Nothing here is timed: the test
only waits (bounded by PATIENCE_SECONDS, a guard against hangs) for the clients and the process.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import threading

import pytest

from .conftest import PATIENCE_SECONDS, python_m, wait_for
from .test_serve import NAME, _fit, _records

BUSY, IDLE, WARM_REQUESTS = 8, 4, 20


@pytest.mark.slow
def test_sigterm_under_keep_alive_load_answers_every_request_and_exits_0(tmp_path):
    model_dir = tmp_path / "model"
    _fit("binary-classification", model_dir)
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = python_m("serve", "--model-dir", model_dir, "--model-name", NAME,
                           env={"SERVE_PORT": "0", "SAGEMAKER_BIND_TO_PORT": "", "MODEL_DIR": ""},
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        def server_log() -> str:
            return f"server log:\n{log_path.read_text()}"

        def listening() -> re.Match | None:
            assert process.poll() is None, f"the server exited: {server_log()}"
            return re.search(rf"serving binary-classification model '{NAME}' on "
                             r"http://127\.0\.0\.1:(\d+)", log_path.read_text())

        wait_for(listening, server_log)
        port = int(listening().group(1))
        body = json.dumps({"instances": _records(3)})
        answered = [0] * BUSY
        told_to_close = [False] * BUSY
        failures: list = []
        idle_endings: list = []
        idle_ready = threading.Barrier(IDLE + 1)

        def busy(slot: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE_SECONDS)
            try:
                while True:
                    try:
                        connection.request("POST", "/invocations", body,
                                           {"Content-Type": "application/json"})
                        response = connection.getresponse()
                        data = response.read()
                    except (OSError, http.client.HTTPException) as error:
                        failures.append((slot, answered[slot], repr(error)))
                        return
                    if response.status != 200 or len(json.loads(data)["predictions"]) != 3:
                        failures.append((slot, response.status, data[:200]))
                        return
                    answered[slot] += 1
                    if (response.getheader("Connection") or "").lower() == "close":
                        told_to_close[slot] = True
                        return
            finally:
                connection.close()

        def idle() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE_SECONDS)
            try:
                connection.request("GET", "/ping")
                response = connection.getresponse()
                response.read()
                idle_ready.wait()
                try:  # the server's close: b"" for a clean one, a reset otherwise
                    idle_endings.append(connection.sock.recv(1))
                except OSError as error:
                    idle_endings.append(repr(error))
            finally:
                connection.close()

        threads = [threading.Thread(target=idle) for _ in range(IDLE)]
        threads += [threading.Thread(target=busy, args=(slot,)) for slot in range(BUSY)]
        for thread in threads:
            thread.start()
        idle_ready.wait()
        wait_for(lambda: min(answered) >= WARM_REQUESTS or bool(failures),
                 lambda: f"the load never got going: {answered} {failures}; {server_log()}")
        process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(PATIENCE_SECONDS)
        assert not any(thread.is_alive() for thread in threads), server_log()
        assert failures == [], server_log()
        assert all(told_to_close), (told_to_close, server_log())
        assert idle_endings == [b""] * IDLE, server_log()
        assert process.wait(timeout=PATIENCE_SECONDS) == 0, server_log()
        assert "server stopped" in log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
