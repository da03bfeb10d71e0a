"""``GET /metrics``: Prometheus text format (docs/metrics.md).

No API key: Prometheus scrapers usually carry none, and the server binds 127.0.0.1 unless told
otherwise; the metrics hold counts, version ids and statuses, never plan values. The store is read
with ONE session (``get_store``) per scrape; a store that does not answer (held by another process
past the API's lock wait, or failing) does not make the scrape fail: the request metrics are
answered with ``plan_store_up 0``.
"""
from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from typing import Any, cast

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from plan_pipeline.api.dependencies import get_store
from plan_pipeline.api.metrics import render_metrics
from plan_pipeline.store.errors import PlanStoreError, is_database_failure

log = logging.getLogger("plan_pipeline.api")

router = APIRouter(tags=["service"])


def _store_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, PlanStoreError) or is_database_failure(exc)


def answering_store(request: Request) -> Iterator[Any | None]:
    """``get_store``'s session, or None when the store does not answer (busy, failing)."""
    sessions = cast(Generator[Any, None, None], get_store(request))  # a generator dependency
    try:
        store = next(sessions)
    except Exception as exc:
        if not _store_unavailable(exc):
            raise
        log.warning("GET /metrics: the plan store did not answer: %s", exc)
        yield None
        return
    try:
        yield store
    finally:
        sessions.close()


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics: requests, plan writes, rows per version, store size, runs (no key needed)",
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text exposition format"}},
)
def metrics(request: Request, store: Any = Depends(answering_store)) -> Response:
    snapshot = None
    if store is not None:
        try:
            snapshot = store.store_metrics()
        except Exception as exc:
            if not _store_unavailable(exc):
                raise
            log.warning("GET /metrics: reading the plan store failed: %s", exc)
    return Response(render_metrics(request.app, snapshot), media_type=CONTENT_TYPE_LATEST)
