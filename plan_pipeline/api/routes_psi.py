"""The PSI grid over HTTP: cells with the planners' overlay, edits and locks, the audit trail.

``GET /plans/{v}/psi`` reads a page of the grid (``level=det``: SKU x week; ``agg``: family x
period), ``PATCH /plans/{v}/psi`` edits, locks and resets cells (all edits or none), ``GET
/plans/{v}/psi/events`` pages the audit trail. The rules live in the store
(``store/overrides.py``, shared with ``plan-pipeline override set``; ``store/psi.py``).
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from plan_pipeline.api.dependencies import Principal, get_store, require
from plan_pipeline.api.errors import ApiError
from plan_pipeline.store.psi import MAX_PAGE, PSI_LEVELS

router = APIRouter(prefix="/plans/{version_id}/psi", tags=["psi"])

LEVEL_HELP = "det = SKU x week (detail plan), agg = family x period (aggregate plan)"


def _level(level: str) -> str:
    if level not in PSI_LEVELS:
        raise ApiError("bad_request", f"level {level!r} is not a PSI grain: one of {', '.join(PSI_LEVELS)} ({LEVEL_HELP})")
    return level


class PsiCellEdit(BaseModel):
    key: dict[str, Any] = Field(description='det: {"sku", "week"[, "period"]}; agg: {"family", "period"}')
    fields: dict[str, Any] = Field(default_factory=dict,
                                   description="demand / supply / backlog: a number sets the edit, null removes it")
    lock: bool | None = Field(default=None, description="true locks, false unlocks, null leaves the lock as it is")
    reset: bool = Field(default=False, description="remove the cell's edits and its lock first")


class PsiPatch(BaseModel):
    level: str = Field(description=LEVEL_HELP)
    edits: list[PsiCellEdit] = Field(description="applied in order, in one transaction: all or none")
    note: str | None = Field(default=None, description="why (kept on every audit event of this PATCH)")


@router.get("", summary="a page of the PSI grid with the override overlay of each cell")
def get_psi(
    version_id: str,
    level: str = Query("det", description=LEVEL_HELP),
    family: str | None = None,
    sku: str | None = Query(None, description="det only"),
    period: str | None = None,
    week_from: str | None = Query(None, description="first week (det) or period (agg), inclusive"),
    week_to: str | None = Query(None, description="last week (det) or period (agg), inclusive"),
    limit: int = Query(500, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0),
    principal: Principal = Depends(require("read")),
    store: Any = Depends(get_store),
) -> dict[str, Any]:
    page = store.psi_cells(version_id, _level(level), family=family, sku=sku, period=period, week_from=week_from,
                           week_to=week_to, limit=limit, offset=offset)
    return {"version_id": version_id, "level": level, "total": page["total"], "limit": limit, "offset": offset,
            "cells": page["cells"]}


@router.patch("", summary="edit, lock, unlock or reset cells (one transaction; one event per changed field)")
def patch_psi(
    version_id: str,
    body: PsiPatch,
    principal: Principal = Depends(require("edit")),
    store: Any = Depends(get_store),
) -> dict[str, Any]:
    level = _level(body.level)
    written = store.psi_edit(version_id, level, [e.model_dump() for e in body.edits], actor=principal.name,
                             note=body.note)
    cells = store.psi_cells(version_id, level, keys=written["keys"], limit=MAX_PAGE)["cells"]
    return {"version_id": version_id, "level": level, "cells": cells, "events": written["events"]}


@router.get("/events", summary="the version's audit trail, newest first")
def get_psi_events(
    version_id: str,
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0),
    actor: str | None = None,
    type: str | None = Query(None, description="event type: edit, reset, lock, unlock, submit, approve, ..."),
    q: str | None = Query(None, description="case-insensitive text in the key, the note or the payload"),
    level: str | None = Query(None, description="det, agg or version (lifecycle events)"),
    principal: Principal = Depends(require("read")),
    store: Any = Depends(get_store),
) -> dict[str, Any]:
    page = store.psi_events(version_id, actor=actor, event_type=type, q=q, level=level, limit=limit, offset=offset)
    return {"version_id": version_id, "total": page["total"], "limit": limit, "offset": offset,
            "events": page["events"]}
