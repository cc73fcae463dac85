"""Prefect Block classes too large to share `prefect_ft.blocks`, which re-exports them.

`prefect_ft.blocks` stays the collection entry point (`prefect.collections`, `prefect block
register -m prefect_ft.blocks`); import the classes from there.
"""
