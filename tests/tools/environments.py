"""What several tests take away from the command under test: AWS credentials, matplotlib."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# `python -c WITHOUT_MATPLOTLIB ARGS...` runs `mlscaffold ARGS...` where importing matplotlib
# fails as it does where it is not installed
WITHOUT_MATPLOTLIB = """\
import sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
from mlscaffold.cli import main
sys.argv = ["mlscaffold", *sys.argv[1:]]
main()
"""


def run_without_matplotlib(*args: object, timeout: float = 600
                           ) -> subprocess.CompletedProcess[str]:
    """`mlscaffold ARGS` in a fresh interpreter that cannot import matplotlib."""
    return subprocess.run([sys.executable, "-c", WITHOUT_MATPLOTLIB, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def without_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS setting of the environment, no config or credentials file, no instance
    metadata: boto3 finds no credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
