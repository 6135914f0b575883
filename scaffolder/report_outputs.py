"""What the report options (`graph -o`, `check -o`, `policy config -o`) write, recognised again
so that running a command once more replaces its own report and never another file.

Each format is recognised by the start of the file (mlscaffold.files.refuse_to_replace reads
it); an empty file holds nothing to lose. An image carries no text of ours by itself, so the SVG
and PNG diagrams are marked when written (:func:`mark_image`): an XML comment, a PNG text chunk.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from .files import refuse_to_replace

__all__ = ["DIAGRAM_FORMATS", "diagram_format", "mark_image", "refuse_unless_report"]

# what marks an image `mlscaffold graph` drew: an XML comment after the XML declaration (SVG), a
# tEXt chunk right after the header chunk (PNG, whose first chunk must be IHDR)
_SVG_MARK = b"<!-- drawn by mlscaffold graph -->"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = b"Software\0mlscaffold graph"
_PNG_MARK = struct.pack(">I", len(_PNG_TEXT)) + b"tEXt" + _PNG_TEXT + struct.pack(
    ">I", zlib.crc32(b"tEXt" + _PNG_TEXT))
_PNG_HEADER_END = len(_PNG_SIGNATURE) + 4 + 4 + 13 + 4  # length, type, IHDR's data, CRC


def mark_image(data: bytes, image_format: str) -> bytes:
    """`data`, an SVG or PNG diagram, with the mark that lets a later run replace it."""
    if image_format == "png":
        if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
            return data  # not a PNG: nowhere to put the mark
        return data[:_PNG_HEADER_END] + _PNG_MARK + data[_PNG_HEADER_END:]
    if data.startswith(b"<?xml"):  # nothing may come before the XML declaration
        end = data.index(b"?>") + 2
        return data[:end] + b"\n" + _SVG_MARK + data[end:]
    return _SVG_MARK + b"\n" + data


# an --output file's extension -> the diagram format it holds (.md: a Markdown ```mermaid block)
DIAGRAM_FORMATS = {".mmd": "mermaid", ".mermaid": "mermaid", ".md": "mermaid", ".dot": "dot",
                   ".gv": "dot", ".svg": "svg", ".png": "png"}
_DIAGRAM_NAMES = {"mermaid": "a Mermaid", "dot": "a Graphviz dot", "svg": "an SVG", "png": "a PNG"}


def diagram_format(output: Path | None, given: str | None) -> str:
    """The format `graph` writes: --format `given`, else the one --output's extension names,
    else mermaid; a UsageError when the two disagree or the extension names no diagram."""
    from .errors import UsageError

    suffix = output.suffix.lower() if output is not None else ""
    implied = DIAGRAM_FORMATS.get(suffix)
    known = ", ".join(sorted(DIAGRAM_FORMATS))
    if given is not None and implied is not None and implied != given:
        suffix_of = {name: suffix for suffix, name in reversed(DIAGRAM_FORMATS.items())}
        raise UsageError(f"--format {given} does not match --output {output} "
                         f"({_DIAGRAM_NAMES[implied]} file)",
                         hint=f"drop --format, or name the file "
                              f"{output.with_suffix(suffix_of[given])}")
    if given is None and suffix and implied is None and suffix != ".txt":
        raise UsageError(f"--output {output}: graph does not write {suffix} files",
                         hint=f"name it with one of {known}, or give --format")
    return given or implied or "mermaid"

def _text(test: Callable[[str], bool]) -> Callable[[bytes], bool]:
    """A test of a text report's start; binary data (a NUL byte) is not one."""
    return lambda head: b"\0" not in head and test(head.decode("utf-8", "ignore").lstrip())


# format: (what it is called, whether a file's first bytes are such a report)
_REPORTS: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    "mermaid": ("Mermaid diagram", _text(lambda text: text.removeprefix("```mermaid\n")
                                         .startswith("flowchart "))),
    "dot": ("Graphviz diagram", _text(lambda text: text.startswith("digraph "))),
    "svg": ("SVG diagram", lambda head: _SVG_MARK in head[:4096]),
    "png": ("PNG diagram", lambda head: head.startswith(_PNG_SIGNATURE)
            and head[_PNG_HEADER_END:].startswith(_PNG_MARK)),
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
    if output_format in _DIAGRAMS:  # a diagram replaces an earlier one of any format
        kind = "diagram `mlscaffold graph` wrote"
        looks_like = _any_diagram
    refuse_to_replace(path, looks_like, kind, "choose another --output, or move that file")


_DIAGRAMS = ("mermaid", "dot", "svg", "png")


def _any_diagram(head: bytes) -> bool:
    return any(_REPORTS[name][1](head) for name in _DIAGRAMS)
