"""`python -m asrkit` runs the command line."""

from asrkit.cli.main import main

main()
