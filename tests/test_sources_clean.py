"""Blueprints and templates hold no account ids, real ARNs, hosts or secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import REPO

SOURCES = sorted(p for folder in ("blueprints", "templates") for p in (REPO / folder).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
                 and "datasets" not in p.parts)

FORBIDDEN = {
    "AWS account id": re.compile(r"(?<![\d.])\d{12}(?![\d.])"),
    "ARN with an account": re.compile(r"arn:aws[\w-]*:[\w-]+:[\w-]*:\d{12}:"),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "secret assignment": re.compile(
        r"(?i)\b(password|secret|token|api_key)\b\s*[:=]\s*['\"][^'\"$<{]{6,}['\"]"),
    # AWS's own download bucket: the one pinned download of the CI pipelines (copier-ci.yml)
    "host name": re.compile(r"https?://(?!localhost|127\.0\.0\.1|json-schema\.org"
                            r"|s3\.amazonaws\.com/session-manager-downloads/)[\w.-]+"),
}


def test_there_are_sources_to_check():
    assert len(SOURCES) > 10


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_source_is_clean(path: Path):
    text = path.read_text(encoding="utf-8", errors="replace")
    found = {what: m.group(0) for what, pattern in FORBIDDEN.items()
             if (m := pattern.search(text))}
    assert found == {}, f"{path.relative_to(REPO)}: {found}"
