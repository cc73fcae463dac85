"""The RAN LLM pipeline that `make demo` runs: corpus, chunking, model calls, quality, faults.

`prefect_ft.demo.ran.pipeline` is the flow; the other modules are its parts. Nothing outside
`prefect_ft.demo` and `flows/` may import this package.
"""
