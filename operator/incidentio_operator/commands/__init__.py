"""Subcommands of the ``incidentio-operator`` command line, one module each."""
