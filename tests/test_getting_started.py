"""Every fenced command of docs/getting-started.md runs, in order, as a new user would run it:
the page cannot drift from the product. A command that cannot run here is listed below with
the reason; any other command, including one added to the page later, is run and must exit 0."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

PAGE = REPO / "docs" / "getting-started.md"
BIN = Path(sys.executable).parent

# commands that cannot run in this test, by pattern, with the reason
SKIPPED: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), reason) for pattern, reason in [
    (r"^python3 -m venv \.venv$", "the test runs in mlscaffold's own environment"),
    (r"^\.venv/bin/pip install \./mlscaffold", "installed already: this checkout"),
    (r"^source \.venv/bin/activate", "mlscaffold's environment is on PATH"),
    (r"^make install$", "installs mlscaffold-kit from the organisation's index, not here"),
    (r"^make serve$", "a server that runs until stopped (tests/lifecycle cover serving)"),
    (r"^mlscaffold preflight ", "reads the quotas of an AWS account"),
    (r"^pulumi ", "no Pulumi CLI and no cloud here"),
    (r"^pip install 'mlscaffold-kit==<new version>'", "a release not published here"),
    (r"--blueprint \.\./our-blueprints/", "an example blueprint of the reader's own"),
    (r"https://git\.example\.com/", "an example URL of the reader's git server"),
    (r"^copier update ", "needs a project made from a hosted blueprint (tests/test_update.py "
                         "runs plain `copier update` on one)"),
    (r"^mlscaffold update --vcs-ref ", "needs a project made from a hosted blueprint tagged v2 "
                                       "(tests/test_update.py runs it on one)"),
]]


def _commands(text: str) -> list[str]:
    """The command lines of the page's bash blocks, continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def test_the_page_has_commands_and_every_skip_is_used():
    commands = _commands(PAGE.read_text(encoding="utf-8"))
    assert len(commands) > 20
    unused = [p.pattern for p, _ in SKIPPED if not any(p.search(c) for c in commands)]
    assert unused == [], "skips of commands the page no longer has"


@pytest.mark.slow
def test_every_command_of_the_page_runs(tmp_path: Path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", GIT_AUTHOR_NAME="reader",
               GIT_AUTHOR_EMAIL="reader@example.com", GIT_COMMITTER_NAME="reader",
               GIT_COMMITTER_EMAIL="reader@example.com")
    cwd = tmp_path
    ran = []
    for command in _commands(PAGE.read_text(encoding="utf-8")):
        if any(pattern.search(command) for pattern, _ in SKIPPED):
            continue
        # `cd X && rest` and a plain `cd X` move the reader, as their shell would
        first, _, rest = command.partition(" && ")
        if first.startswith("cd "):
            cwd = (cwd / shlex.split(first)[1]).resolve()
            if not rest:
                continue
            command = rest
        if command.startswith("make "):  # the project's Makefile with this environment
            command += f" PY={sys.executable}"
        completed = subprocess.run(["bash", "-c", command], cwd=cwd, env=env,
                                   capture_output=True, text=True, timeout=1200)
        assert completed.returncode == 0, (
            f"`{command}` in {cwd} exited {completed.returncode}:\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}")
        ran.append(command)
    assert any(c.startswith("mlscaffold train") or c.startswith("make train") for c in ran)
