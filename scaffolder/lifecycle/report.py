"""The reports people look at: an experiment's model card (model_card.md) and the report.html
of an evaluation or an analysis, which shows its plots and links its files.

A report.html is self-contained (inline style, no scripts, nothing fetched from the network) and
refers to its plots and files by relative links, so the folder can be copied or published as a
CI artifact as it is.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .files import atomic_write_text
from .schema import (
    CATEGORICAL,
    DATE,
    DATE_PARTS,
    DROPPED,
    NUMERIC,
    USED,
    Schema,
    percent_note,
    stray_note,
)
from .text import number

REPORT_FILE = "report.html"


@dataclass
class Section:
    """A part of a report: text, a table, plots and links, each optional."""

    title: str
    paragraphs: Sequence[str] = ()
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[object]] = ()
    images: Sequence[tuple[str, str]] = ()  # (file name beside the report, caption)
    links: Sequence[tuple[str, str]] = ()  # (file name beside the report, text)
    notes: list[str] = field(default_factory=list)  # shown as warnings


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
th { background: #f4f4f4; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figure img { max-width: 34em; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
.note { color: #8a4b00; }
"""


def write_html_report(
    directory: Path, title: str, subtitle: str, sections: Sequence[Section]
) -> Path:
    """Write `directory`/report.html; every image and link must name a file in `directory`."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_text(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_text(title)}</h1>",
        f"<p>{_text(subtitle)}</p>",
    ]
    for section in sections:
        parts.append(f"<h2>{_text(section.title)}</h2>")
        parts.extend(f'<p class="note">{_text(note)}</p>' for note in section.notes)
        parts.extend(f"<p>{_text(paragraph)}</p>" for paragraph in section.paragraphs)
        if section.headers:
            parts.append(_table(section.headers, section.rows))
        for name, caption in section.images:
            parts.append(
                f'<figure><a href="{_link(name)}"><img src="{_link(name)}" '
                f'alt="{_text(caption)}"></a><figcaption>{_text(caption)}</figcaption></figure>'
            )
        if section.links:
            items = "".join(
                f'<li><a href="{_link(name)}">{_text(text)}</a></li>'
                for name, text in section.links
            )
            parts.append(f"<ul>{items}</ul>")
    parts.append("</body></html>\n")
    return atomic_write_text(Path(directory) / REPORT_FILE, "\n".join(parts))


def _text(value: object) -> str:
    return html.escape(str(value))


def _link(name: str) -> str:
    return html.escape(name, quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_text(cell)}</th>" for cell in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_text(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def input_rows(schema: Schema) -> list[list[str]]:
    """(column, kind, how it is read) for every input column: a card's and a report's table."""
    rows = []
    for column in schema.columns:
        kind = column.kind if column.kind in USED else DROPPED
        if column.kind == NUMERIC:
            reading = "number"
            if column.percent:
                reading += f" written with '%' ({percent_note(column.percent)})"
            if column.strays:
                reading += "; " + stray_note(column.strays, dict(column.stray_values))
        elif column.kind == CATEGORICAL:
            reading = "category (text)"
        elif column.kind == DATE:
            reading = f"date, as numbers: {', '.join(DATE_PARTS)}"
        else:
            reading = f"not used ({column.kind}: {column.note})"
        rows.append([column.name, kind, reading])
    return rows


def model_card(
    entry: dict, project: str, label: str, schema: Schema, data_files: dict, version: str,
    selection: str = "scored on the validation set", reason: str | None = None,
) -> str:
    """The Markdown model card of an experiment (its index entry `entry`), written by train.

    `selection` says how candidates were scored (the search protocol's description), `reason`
    why this model and not the best-scoring one or a default (what train said), if anything."""
    lines = [
        f"# Model card: {project} {entry['id']}",
        "",
        "| | |",
        "|---|---|",
        f"| task | {entry['task']} |",
        f"| label | `{label}` |",
        *([f"| positive class | `{_cell(entry['positive_class'])}` (f1, precision and recall "
           "score it) |"] if entry.get("positive_class") is not None else []),
        f"| model | {entry['family']} `{json.dumps(entry['params'], sort_keys=True)}` |",
        f"| selected by | {entry['metric']} {number(entry['score'])}: {_cell(selection)} |",
        *([f"| why this model | {_cell(reason)} |"] if reason else []),
        f"| trained | {entry['created_at']}, seed {entry['seed']}, mlscaffold {version} |",
    ]
    for split, facts in data_files.items():
        lines.append(
            f"| {split} data | `{facts['path']}`: {facts['rows']} rows, "
            f"sha256 `{facts['sha256'][:12]}` |"
        )
    lines += ["", "## Validation metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {number(value)} |" for name, value in entry["validation"].items()]
    lines += ["", "## Inputs", "", "| column | kind | how it is read |", "|---|---|---|"]
    lines += [
        f"| `{_cell(name)}` | {kind} | {_cell(reading)} |"
        for name, kind, reading in input_rows(schema)
    ]
    lines += ["", "## Data decisions", ""]
    strays = schema.strays
    if strays:
        names = ", ".join(f"`{name}`" for name in strays)
        lines.append(
            f"Mostly numeric columns holding some text: {names}. They are numbers; their text "
            "values are read as missing, here and wherever this model reads data (evaluate, "
            "predict, serve, drift). Text in any other numeric column is refused."
        )
    else:
        lines.append("Every numeric column held only numbers (or nothing).")
    if schema.percents:
        names = ", ".join(f"`{name}`" for name in schema.percents)
        lines += ["", f"Numbers written with '%': {names}. They are read as the numbers written "
                  "(64.3% is 64.3, not 0.643), here and wherever this model reads data."]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")
