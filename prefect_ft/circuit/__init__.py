"""The parts of `CircuitBreaker` (assembled in `prefect_ft.breaker`), one concern a module.

- `admission`: a call's admission and the outcome it reports, run against `core.machine`
- `calling`: the ways to call through a breaker (`call`, `acall`, decorator, context managers),
  sync and async over one body
- `moves`: what operators and recoveries do to a breaker (overlays, reset, `mark_recovered`,
  `ready`) and its listeners

Like `stores.shared_record`, each holds a mixin that decides nothing itself and never imports
Prefect, so a breaker still works in any Python process.
"""
