"""`python -m mlscaffold`."""

from ._entry import main

main()
