"""`python -m mlscaffold`."""

from .cli import main

main()
