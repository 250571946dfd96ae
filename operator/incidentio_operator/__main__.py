"""Entry point for ``python -m incidentio_operator``."""

from incidentio_operator.cli import main

main()
