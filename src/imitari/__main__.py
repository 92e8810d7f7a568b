"""`python -m imitari` runs the command-line interface."""

from imitari.cli import main

raise SystemExit(main())
