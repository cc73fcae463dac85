"""Operations: health, Prometheus metrics, structured logs, the ops HTTP server, the dashboard.

Decisions live in `prefect_ft.core.health`; this room reads breakers, bulkheads and the store,
and exports what it finds. Import the submodules directly (`prefect_ft.ops.metrics`, ...): this
package imports nothing, so `import prefect_ft` stays light.
"""
