"""`make demo`: the RAN pipeline under faults (`--loopback` runs the older loopback breaker demo)."""

import sys

from prefect_ft.demo.ran.demo import main

sys.exit(main())
