"""A deployed stack's outputs, as the commands that act on a real account read them.

``pulumi stack output --json`` is the one source of where things are (buckets, endpoints, the
cluster, the API relay). Commands take it from a file or stdin (``--outputs FILE|-``, so CI
can pipe it and tests need no Pulumi CLI), or run the Pulumi CLI themselves.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .errors import MlscaffoldError, UsageError

__all__ = ["read_stack_outputs", "require_output"]


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{source} is not JSON ({error.msg} at line {error.lineno})",
                         hint="pass what `pulumi stack output --json` prints") from None
    if not isinstance(outputs, dict):
        raise UsageError(f"{source} holds {type(outputs).__name__}, not the stack's outputs",
                         hint="pass what `pulumi stack output --json` prints") from None
    return outputs


def read_stack_outputs(project: Path, stack: str, source: str | None = None,
                       program: str = "infra") -> dict[str, Any]:
    """The outputs of `stack`: from `source` (a JSON file, or ``-`` for stdin), else from
    ``pulumi stack output --json`` run in the project's `program` folder."""
    if source == "-":
        return _parse(sys.stdin.read(), "stdin")
    if source is not None:
        path = Path(source)
        try:
            return _parse(path.read_text(encoding="utf-8"), str(path))
        except FileNotFoundError:
            raise UsageError(f"--outputs {source}: no such file",
                             hint="write it with `pulumi stack output --json > FILE`") from None
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise UsageError("the Pulumi CLI is not on PATH, so the stack's outputs cannot be read",
                         hint="install it (https://www.pulumi.com/docs/install/) or pass "
                              "--outputs FILE from `pulumi stack output --json`")
    result = subprocess.run(
        [pulumi, "stack", "output", "--json", "--stack", stack, "--cwd",
         str(project / program)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise MlscaffoldError(f"`pulumi stack output` for stack {stack} failed: {reason}",
                              hint="deploy the stack first (make deploy STACK=...) and log in "
                                   "to its state backend")
    return _parse(result.stdout, f"the outputs of stack {stack}")


def require_output(outputs: dict[str, Any], name: str, stack: str, why: str) -> Any:
    """An output the command cannot do without; a missing one is a usage error naming it."""
    value = outputs.get(name)
    if value in (None, "", {}, []):
        raise UsageError(f"stack {stack} has no output {name!r}, which {why}",
                         hint="deploy the stack with this mlscaffold version first "
                              "(make deploy STACK=...)")
    return value
