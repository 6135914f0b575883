"""What the platform commands print: their tables and reports, and per-stack progress.

Tables are rich tables without borders. On a terminal the headers are bold and the widest
column wraps at the terminal's width; anywhere else (a pipe, a file, CI) they are plain text,
columns two spaces apart, lines never wrapped: what scripts, tests and the docs read. Progress
goes to stderr, and only when stderr is a terminal. rich is imported here only, when something
is printed, so that ``mlscaffold --help`` does not load it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import click

__all__ = ["Column", "StackProgress", "check_table", "echo_table", "print_cost",
           "print_feature_schema", "print_preflight", "print_preview", "print_rules"]

# wide enough that no table of ours is ever wrapped when the output is not a terminal
_UNBOUNDED = 100_000
# on a terminal, the least width a wrapping column (key inputs, descriptions) is given
_LEAST_WRAP = 30


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _stdout_is_terminal() -> bool:
    return _is_terminal(sys.stdout)


def _stderr_is_terminal() -> bool:
    return _is_terminal(sys.stderr)


def _console(file: TextIO, *, terminal: bool, width: int | None = None) -> Any:
    from rich.console import Console

    # markup and emoji off: values such as "[advisory/high]" or ":gpu:" are printed as they are
    return Console(file=file, width=width, force_terminal=terminal, no_color=not terminal,
                   color_system="standard" if terminal else None, markup=False,
                   highlight=False, emoji=False)


@dataclass(frozen=True)
class Column:
    """A table column: its header, how its cells are justified, whether they may wrap on a
    terminal (the others keep their width), and its least width."""

    header: str
    justify: str = "left"
    wrap: bool = False
    min_width: int | None = None


def echo_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *,
               indent: int = 0) -> None:
    """Print a table on stdout, every line indented by `indent` spaces."""
    import io
    import shutil

    from rich.cells import cell_len
    from rich.table import Table

    terminal = _stdout_is_terminal()
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1),
                  header_style="bold")
    for column in columns:
        table.add_column(column.header, justify=column.justify,  # type: ignore[arg-type]
                         no_wrap=not column.wrap, min_width=column.min_width, overflow="fold")
    for row in rows:
        table.add_row(*row)
    width = _UNBOUNDED
    if terminal:
        # the wrapping columns wrap at the terminal's width when the others leave them
        # _LEAST_WRAP columns; else lines are printed whole, as off a terminal
        fixed = sum(max(cell_len(c) for c in (column.header, *(r[i] for r in rows)))
                    for i, column in enumerate(columns) if not column.wrap)
        least = fixed + 2 * (len(columns) - 1) + _LEAST_WRAP * sum(c.wrap for c in columns)
        if shutil.get_terminal_size().columns - indent >= least:
            width = shutil.get_terminal_size().columns - indent
    buffer = io.StringIO()
    _console(buffer, terminal=terminal, width=width).print(table)
    for line in buffer.getvalue().splitlines():
        click.echo(" " * indent + line.rstrip())


class StackProgress:
    """Per-stack progress of a command on stderr: a spinner while a stack runs, then
    ``checking dev… 4.1 s``. Silent unless `enabled` and stderr is a terminal."""

    def __init__(self, verb: str, *, enabled: bool = True) -> None:
        self.verb = verb
        self.console = _console(sys.stderr, terminal=True) if (
            enabled and _stderr_is_terminal()) else None

    @contextmanager
    def stack(self, name: str) -> Iterator[None]:
        if self.console is None:
            yield
            return
        started = time.perf_counter()
        with self.console.status(f"{self.verb} {name}…"):
            yield
        self.console.print(f"{self.verb} {name}… {time.perf_counter() - started:.1f} s")


def print_preview(graph: Any) -> None:
    """The resources of a stack as a tree (a component, then its children, indented)."""
    from .diagram import key_inputs, short_type

    rows = [(short_type(r.type), "  " * depth + r.name,
             ", ".join(f"{k}={v}" for k, v in key_inputs(r).items()))
            for depth, r in graph.tree()]
    echo_table([Column("TYPE"), Column("NAME"), Column("KEY INPUTS", wrap=True)], rows)
    custom = sum(1 for r in graph.resources if r.custom)
    click.echo(f"\n{graph.project}/{graph.stack}: {custom} resources in "
               f"{len(graph.resources) - custom} components (under mocks; nothing deployed)")


def check_table(checks: list[Any]) -> str:
    """Each stack's verdict, then its findings grouped by resource."""
    from .diagram import short_type

    lines = []
    for check in checks:
        result = check.result
        mandatory = len(result.mandatory)
        advisory = sum(f.level == "advisory" for f in result.findings)
        unknown = sum(f.level == "unknown" for f in result.findings)
        verdict = "FAILED" if mandatory else "passed"
        lines.append(f"{result.stack}: {verdict}: {mandatory} mandatory, {advisory} advisory"
                     f"{f', {unknown} not checkable before deployment' if unknown else ''} "
                     f"({result.rules} rules on {result.resources} resources)")
        current = None
        for finding in result.findings:
            if (finding.resource, finding.resource_type) != current:
                current = (finding.resource, finding.resource_type)
                where = f"{short_type(finding.resource_type)} {finding.resource}".strip()
                lines.append(f"  {where or 'stack'}")
            lines.append(f"    [{finding.level}/{finding.severity}] {finding.rule}: "
                         f"{finding.message}")
    return "\n".join(lines)


def print_cost(estimates: list[tuple[str, Any]]) -> None:
    """A table per stack, most expensive first, with its total; then the assumptions."""
    for environment, estimate in estimates:
        lines = sorted(estimate.lines, key=lambda line: -line.monthly_usd)
        click.echo(f"{environment} ({estimate.region}, prices as of {estimate.as_of}, "
                   f"{estimate.currency} per month)")
        rows = [(line.resource, "not priced" if line.unpriced else f"{line.monthly_usd:,.2f}",
                 "not priced" if line.unpriced or line.full_scale_unpriced
                 else f"{line.at_full_scale_usd:,.2f}", line.basis) for line in lines]
        excluded, excluded_max = estimate.excluded, estimate.excluded_at_full_scale
        rows.append(("TOTAL", f"{estimate.total:,.2f}{' *' if excluded else ''}",
                     f"{estimate.at_full_scale:,.2f}{' *' if excluded_max else ''}",
                     "* excludes what mlscaffold cannot price: "
                     f"{'; '.join(excluded_max)}" if excluded_max else ""))
        echo_table([Column("RESOURCE", min_width=8),
                    Column("MONTHLY", justify="right", min_width=10),
                    Column("FULL SCALE", justify="right", min_width=10),
                    Column("BASIS", wrap=True)], rows, indent=2)
        click.echo()
    click.echo("Assumptions:")
    for assumption in dict.fromkeys(a for _, e in estimates for a in e.assumptions):
        click.echo(f"  - {assumption}")


def print_preflight(results: list[Any], strict: bool) -> None:
    """Each stack's quotas against what it launches, the requests to make, and a verdict."""
    from .preflight import NOT_FOUND, OK, SHORT, SHORT_AT_FULL_SCALE

    status_text = {OK: "ok", SHORT: "SHORT", SHORT_AT_FULL_SCALE: "short at full scale",
                   NOT_FOUND: "not found"}
    for result in results:
        short, warnings = len(result.short), len(result.warnings)
        verdict = (f"{short} short of a deploy" if short else "covers a deploy") + (
            f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else "")
        click.echo(f"{result.stack} ({result.region}): {verdict}")
        rows = [(c.name, c.code or "-", c.unit, str(c.deploy), str(c.full_scale),
                 "-" if c.quota is None else f"{c.quota:g}", status_text[c.status])
                for c in result.checks]
        if rows:
            echo_table([Column("QUOTA", wrap=True), Column("CODE"), Column("UNIT"),
                        Column("DEPLOY", justify="right"),
                        Column("FULL SCALE", justify="right"),
                        Column("QUOTA", justify="right"), Column("STATUS")], rows, indent=2)
            click.echo("  needs:")
            for check in result.checks:
                for basis in check.basis:
                    click.echo(f"    {check.code or check.name}: {basis}")
        else:
            click.echo("  nothing in this stack counts against EC2 or SageMaker quotas")
        for check in result.checks:
            if check.status == NOT_FOUND:
                click.echo(f"  not found: no quota named {check.name!r} in {result.region}; "
                           "the instance type may not be offered there")
            elif check.status in (SHORT, SHORT_AT_FULL_SCALE) and not check.adjustable:
                click.echo(f"  not adjustable: {check.name} ({check.code}); use another "
                           "instance type or region")
        requests = [c.request for c in result.checks if c.request]
        if requests:
            click.echo("  request (the value covers full scale):")
            for command in requests:
                click.echo(f"    {command}")
        for note in result.notes:
            click.echo(f"  note: {note}")
        click.echo()
    short = sum(len(r.short) for r in results)
    warnings = sum(len(r.warnings) for r in results)
    if short:
        click.echo(f"preflight: {short} quota{'s are' if short != 1 else ' is'} below what a "
                   "deploy launches; request the increases above before deploying")
    elif warnings:
        click.echo(f"preflight: the quotas cover a deploy; {warnings} warning"
                   f"{'s' if warnings != 1 else ''} (short at full scale or not found)"
                   f"{'' if strict else '; --strict fails on these'}")
    else:
        click.echo("preflight: the quotas cover every stack at full scale")
    click.echo("Quotas are per account and region: other workloads there (and other stacks in "
               "the same account) use them too, and preflight does not count those.")


def print_rules(rules: list[Any]) -> None:
    """One row per rule, then their number."""
    echo_table([Column("RULE"), Column("PACK", min_width=8), Column("LEVEL", min_width=9),
                Column("SEVERITY", min_width=8), Column("DESCRIPTION", wrap=True)],
               [(r.name, r.pack, r.level, r.severity, r.description) for r in rules])
    click.echo(f"\n{len(rules)} rules")


def print_feature_schema(dataset: Any, schema: Any) -> None:
    """Each column's feature, type and where the type comes from; then the two roles."""
    click.echo(f"Feature group schema from {dataset.as_posix()}")
    echo_table([Column("COLUMN"), Column("FEATURE"), Column("TYPE"), Column("SOURCE")],
               [(f.column if f.column is not None else "-", f.name, f.type, f.source)
                for f in schema.features])
    for role, name in (("record identifier", schema.record_identifier),
                       ("event time", schema.event_time_feature)):
        column = schema.feature(name).column
        origin = f"column {column}" if column is not None else "generated at ingestion"
        click.echo(f"{role}: {name} ({origin})")
