"""Prometheus metrics of the Plans API (``GET /metrics``, docs/metrics.md).

Two kinds:

* **request metrics**, counted in this process by an ASGI middleware: requests by method, route
  *template* (``/plans/{version_id}``, never the raw path: bounded cardinality) and status, and
  a latency histogram by method and route. They live in a :class:`CollectorRegistry` of the app
  (``app.state.request_metrics``), not the global one, so several apps in one process never clash;
* **store metrics**, read from the plan store at scrape time (``store.store_metrics()``, one
  session): plan writes and rows written from ``plan_write_log`` (every process that writes the
  store records there: CLI, Dagster runs, the API, the legacy backfill), published rows per
  version, the store file's size, runs by job and status, and ``plan_store_up``.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from plan_pipeline.store.store_metrics import StoreMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

#: Latency buckets (seconds), 5 ms .. 10 s; 0.15 and 0.3 are the p95 targets of GET /plans and a
#: one-family series slice (docs/performance.md), so the histogram answers "within target?" exactly.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
#: ``route`` of a request no route matched (a 404 for an unknown path; its raw path is never a label).
UNMATCHED_ROUTE = "<unmatched>"
#: ``method`` labels kept as they are; anything else counts as ``OTHER``.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class RequestMetrics:
    """The request counter and latency histogram of one app, in the app's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "plan_api_requests", "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "plan_api_request_duration_seconds", "Time to answer an HTTP request, by method and route template",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        ProcessCollector(registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


def route_template(scope: Scope, root_path: str) -> str:
    """The template of the route that answered (``/plans/{version_id}``), with the prefix of any
    mount it sits under; :data:`UNMATCHED_ROUTE` when none matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    mounted = str(scope.get("root_path", ""))[len(root_path):]
    return f"{mounted}{path}" or "/"


class RequestMetricsMiddleware:
    """Pure ASGI middleware: times each HTTP request and counts it with its final status (an
    exception that escapes the app counts as 500)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(scope.get("method", "GET"), route_template(scope, root_path), status,
                                 time.perf_counter() - started)


def install_request_metrics(app) -> None:
    """Count requests by route and status and time them (``app.state.request_metrics``)."""
    metrics = RequestMetrics()
    app.state.request_metrics = metrics
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)


class StoreCollector:
    """The store metrics of one scrape (``snapshot`` None: the store did not answer)."""

    def __init__(self, snapshot: StoreMetrics | None):
        self.snapshot = snapshot

    def collect(self) -> list[Metric]:
        snapshot = self.snapshot
        up = GaugeMetricFamily("plan_store_up", "1 if the plan store answered this scrape, 0 if it did not "
                               "(held by another process past the API's lock wait, or failing)",
                               value=0 if snapshot is None else 1)
        if snapshot is None:
            return [up]
        labels = ["source", "operation", "level"]
        writes = CounterMetricFamily("plan_writes", "Plan writes recorded in plan_write_log since the store "
                                     "began, by source (cli, dagster, api, backfill), operation and level", labels=labels)
        rows = CounterMetricFamily("plan_rows_written", "Rows of plan writes since the store began (per operation: "
                                   "docs/metrics.md), by source, operation and level", labels=labels)
        last: dict[str, float] = {}
        for w in snapshot.writes:
            writes.add_metric([w.source, w.operation, w.level], w.writes)
            rows.add_metric([w.source, w.operation, w.level], w.rows)
            last[w.source] = max(last.get(w.source, 0.0), w.last_write_epoch_seconds)
        last_write = GaugeMetricFamily("plan_last_write_timestamp_seconds", "Time of the newest plan write, by source "
                                       "(Unix epoch seconds, UTC)", labels=["source"])
        for source, ts in sorted(last.items()):
            last_write.add_metric([source], ts)
        version_rows = GaugeMetricFamily("plan_version_rows", "Rows of the version's published plan (plan_series, "
                                         "every level; 0 if never planned), by version and status",
                                         labels=["version_id", "status"])
        for version_id, status, n in snapshot.version_rows:
            version_rows.add_metric([version_id, status], n)
        runs = GaugeMetricFamily("plan_runs", "Dagster runs in the run ledger (plan_jobs), by job and status",
                                 labels=["job", "status"])
        for job, status, n in snapshot.runs:
            runs.add_metric([job, status], n)
        size = GaugeMetricFamily("plan_store_size_bytes", "Bytes on disk of the plan store (DuckDB file and its WAL)",
                                 value=snapshot.size_bytes)
        return [up, writes, rows, last_write, version_rows, runs, size]


def render_metrics(app, snapshot: StoreMetrics | None) -> bytes:
    """The Prometheus text exposition: the app's request metrics, then the store's."""
    store_registry = CollectorRegistry(auto_describe=False)
    store_registry.register(StoreCollector(snapshot))
    return generate_latest(app.state.request_metrics.registry) + generate_latest(store_registry)
