"""ML lifecycle for this project: analyze, train, evaluate, promote, predict and watch for drift.

Run ``python -m <package> --help`` for the commands.
"""

__version__ = "0.1.0"
