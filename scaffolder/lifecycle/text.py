"""Formatting of numbers and tables for terminal output."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def quiet(line: str) -> None:
    """Discard a progress line: the default `echo` of the core, which never prints itself."""


def plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, as messages show it: 5 and True, not
    np.int64(5) and np.True_."""
    return value.item() if isinstance(value, np.generic) else value


def column_name(name: object) -> str:
    """A column's name as a list in a message shows it: as written, or quoted when spaces
    around it (or no name at all) would not show: 'label ' is not label."""
    text = str(name)
    return repr(text) if not text or text != text.strip() else text


def number(value: float | None, digits: int = 4) -> str:
    """A metric value for humans; 'n/a' when missing."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain left-aligned text table."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths).rstrip())
    return "\n".join(lines)
