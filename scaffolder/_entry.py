"""The `mlscaffold` command's entry point (and `python -m mlscaffold`'s).

It imports nothing before `main` runs, so that Ctrl-C while the command line loads (Click, the
commands) prints one line instead of a traceback through the import machinery.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130  # the shell's status for a command ended by SIGINT (128 + 2)


def main() -> None:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(INTERRUPTED)
    run()
