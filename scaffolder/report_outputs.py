"""What the report options (`graph -o`, `check -o`, `policy config -o`) write, recognised again
so that running a command once more replaces its own report and never another file.

Each format is recognised by the start of the file (mlscaffold.files.refuse_to_replace reads
it); an empty file holds nothing to lose.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .files import refuse_to_replace

__all__ = ["refuse_unless_report"]

def _text(test: Callable[[str], bool]) -> Callable[[bytes], bool]:
    """A test of a text report's start; binary data (a NUL byte) is not one."""
    return lambda head: b"\0" not in head and test(head.decode("utf-8", "ignore").lstrip())


# format: (what it is called, whether a file's first bytes are such a report)
_REPORTS: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    "mermaid": ("Mermaid diagram", _text(lambda text: text.startswith("flowchart "))),
    "dot": ("Graphviz diagram", _text(lambda text: text.startswith("digraph "))),
    "svg": ("SVG image", _text(lambda text: "<svg" in text[:4096])),
    "png": ("PNG image", lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    "table": ("check report", _text(lambda text: re.match(r"\S+: (passed|FAILED): ", text)
                                    is not None)),
    "json": ("check report", _text(lambda text: text.startswith("[") and (
        text.replace(" ", "").replace("\n", "") == "[]" or '"stack":' in text))),
    "sarif": ("SARIF report", _text(lambda text: text.startswith("{") and "sarif" in text[:512])),
    "policy-config": ("policy pack configuration", _text(
        lambda text: text.startswith("{") and '"enforcementLevel":' in text)),
}


def refuse_unless_report(path: Path | None, output_format: str) -> None:
    """Raise OutputExists when `path` is an existing file but not an `output_format` report
    (nothing to check without a path: the report goes to standard output)."""
    if path is None:
        return
    kind, looks_like = _REPORTS[output_format]
    refuse_to_replace(path, looks_like, kind, "choose another --output, or move that file")
