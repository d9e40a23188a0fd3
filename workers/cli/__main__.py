"""`python -m workers.cli`: the `loopline` command."""

from workers.cli import main

main()
