"""The `prefect-ft` command line: one module per command group, `app` assembles them."""

from prefect_ft.cli.app import main

__all__ = ["main"]
