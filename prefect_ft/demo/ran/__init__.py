"""The RAN LLM pipeline of the demo (issue 11): corpus, model, model server, IPC pool, pipeline.

`prefect_ft.demo.ran.pipeline` is the flow and `prefect_ft.demo.ran.demo` is `make demo` (its
fault pass in `fault_pass`); the other modules are their parts. Nothing outside `prefect_ft.demo` and `flows/` may import this.
"""
