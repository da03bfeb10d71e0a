"""The Plans API: an HTTP front door (FastAPI, served by uvicorn) over the plan store and the
Dagster instance, beside the CLI and the Dagster UI (docs/api.md).

Layout (one module per concern):
* ``roles``: who may do what (pure; no FastAPI import).
* ``errors``: the JSON error shape every endpoint answers with.
* ``app``: ``create_app(settings)``, the application factory ``plan-pipeline serve`` runs.
* ``dependencies``: FastAPI dependencies: the store, the caller (API key -> principal), role checks.
* ``routes_plans``: plans, series, KPIs, diff, lifecycle, runs.
* ``runs``: launching a version's plan run on the Dagster instance (queued for the daemon, or in a
  background thread of the server); the routes and the web view share ``launch_plan_run``.
* ``routes_psi``: the PSI grid: edits and locks at both grains, the audit events.
* ``routes_metrics``: ``GET /metrics`` (Prometheus text format).
* ``web``: the planner web view (server-rendered templates).
"""
