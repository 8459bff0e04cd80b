"""`python -m chatkeep`."""

from chatkeep.cli.main import main

main()
