"""`make install` hands pip's index and CA bundle on to uv, which reads neither pip.conf nor
PIP_INDEX_URL: behind an organisation's mirror, uv would otherwise go to pypi.org.

The recipe runs for real with a stand-in Python: `-m venv` makes a venv whose `uv` records the
settings it was given, `-m pip install` does nothing, and `-m pip config` is this environment's
pip reading the test's pip.conf."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

MIRROR = "https://pypi.mirror.example/simple"
CA = "/etc/ssl/corp-ca.pem"

_PYTHON = """#!/bin/sh
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && cp "$(dirname "$0")/uv" "$3/bin/uv"
elif [ "$1 $2 $3" = "-m pip config" ]; then
  shift 2 && exec {real} -m pip "$@"
fi
"""
_UV = """#!/bin/sh
echo "index=${{UV_DEFAULT_INDEX-unset}} cert=${{SSL_CERT_FILE-unset}}" > {record}
"""


def _install(tmp_path: Path, pip_conf: str, **env: str) -> str:
    """What `make install`'s uv was given, with `pip_conf` as pip's only configuration file."""
    tools = tmp_path / "tools"
    tools.mkdir()
    record = tmp_path / "uv-settings"
    (tools / "python").write_text(_PYTHON.format(real=shlex.quote(sys.executable)))
    (tools / "uv").write_text(_UV.format(record=shlex.quote(str(record))))
    for tool in tools.iterdir():
        tool.chmod(0o755)
    (tmp_path / "pip.conf").write_text(pip_conf)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PIP_", "UV_", "MAKE")) and k != "SSL_CERT_FILE"}
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "install",
         f"PYTHON={tools / 'python'}", f"VENV={tmp_path / 'venv'}"],
        env={**clean, "PIP_CONFIG_FILE": str(tmp_path / "pip.conf"), **env},
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return record.read_text().strip()


@pytest.mark.parametrize(("pip_conf", "env", "given"), [
    (f"[global]\nindex-url = {MIRROR}\ncert = {CA}\n", {}, f"index={MIRROR} cert={CA}"),
    # pip's [install] section wins over [global] for `pip install`
    (f"[global]\nindex-url = https://other.example/simple\n[install]\nindex-url = {MIRROR}\n",
     {}, f"index={MIRROR} cert=unset"),
    # the environment wins over pip.conf, as it does for pip
    ("[global]\nindex-url = https://other.example/simple\n",
     {"PIP_INDEX_URL": MIRROR, "PIP_CERT": CA}, f"index={MIRROR} cert={CA}"),
    # nothing configured: uv keeps its own defaults (no empty index)
    ("", {}, "index=unset cert=unset"),
], ids=["pip.conf", "install-section", "environment", "nothing"])
def test_install_hands_pips_index_and_ca_bundle_to_uv(tmp_path: Path, pip_conf, env, given):
    assert _install(tmp_path, pip_conf, **env) == given
