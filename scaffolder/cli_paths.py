"""Click parameter types for the files a command writes where the user says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


class OutputFile(click.Path):
    """A file to write: not a folder, and in a folder that exists. Writing would otherwise make
    the missing folders, so a typo in the folder's name (`--output reprots/x.csv`) would leave a
    new folder behind instead of an error."""

    def __init__(self) -> None:
        super().__init__(path_type=Path, dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        parent = Path(path).parent
        if parent.exists() and not parent.is_dir():
            self.fail(f"{path}: {parent} is a file, not a folder; fix the path", param, ctx)
        if not parent.exists():
            self.fail(f"{path}: the folder {parent} does not exist; create it first (mkdir -p "
                      f"{parent}) or fix the path", param, ctx)
        return path
