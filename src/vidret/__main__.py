"""`python -m vidret` is the same as the `vidret` command."""

from vidret.cli import main

main()
