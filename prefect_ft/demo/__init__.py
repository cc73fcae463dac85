"""`make demo`: the RAN pipeline under injected faults (`prefect_ft.demo.ran`); `--loopback` runs the older loopback breaker demo."""
