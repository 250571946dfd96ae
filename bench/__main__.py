"""``python -m bench``: run the scenarios, print the table, write the JSON."""

from bench.cli import main

raise SystemExit(main())
