"""Plans over HTTP: the list and detail of versions, a level's series (JSON pages, CSV, Parquet),
KPIs, the comparison of two versions, the lifecycle (submit, approve, reject, supersede), creating
a version and launching its plan run, and the run ledger row of a run (docs/api.md, "Plans,
series, KPIs, diff, lifecycle, runs").

Every read is a few set-wise store queries (``store/plan_catalog.py``); every write is one store
transaction whose refusals answer by type (unknown 404, conflicting state 409).
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from plan_pipeline.api.dependencies import Principal, get_store, require
from plan_pipeline.api.errors import ApiError
from plan_pipeline.api.runs import dagster_instance, launch_plan_run
from plan_pipeline.api.settings import ApiSettings
from plan_pipeline.orchestration.plan.partitions import report_version_status
from plan_pipeline.orchestration.versions.create import create_registered_version
from plan_pipeline.planning.parameters import ParameterError, PlanningParameters
from plan_pipeline.store.comparison import check_comparison
from plan_pipeline.store.plan_catalog import DEFAULT_PLAN_ORDER, PLAN_ORDERS
from plan_pipeline.store.rules import VERSION_STATUSES

router = APIRouter(tags=["plans"])
log = logging.getLogger("plan_pipeline.api")

#: The lifecycle endpoints: the action (path and role check) -> the status the version moves to.
LIFECYCLE: dict[str, str] = {"submit": "submitted", "approve": "approved", "reject": "draft",
                             "supersede": "superseded"}
SERIES_MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def _page(request: Request, limit: int | None, offset: int) -> tuple[int, int]:
    settings = _settings(request)
    chosen = settings.default_page_size if limit is None else limit
    if chosen < 1 or chosen > settings.max_page_size:
        raise ApiError("bad_request", f"limit must be from 1 to {settings.max_page_size} (got {chosen})")
    if offset < 0:
        raise ApiError("bad_request", f"offset must be 0 or more (got {offset})")
    return chosen, offset


def _json(body: dict[str, Any], status_code: int = 200) -> Response:
    """A JSON answer serialised in one pass (orjson; Arrow/numpy values included, NaN as null)."""
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS),
                    status_code=status_code, media_type="application/json")


def _links(version_id: str) -> dict[str, str]:
    base = f"/plans/{version_id}"
    return {"self": base, "series": f"{base}/series?level=det", "kpis": f"{base}/kpis", "psi": f"{base}/psi",
            "events": f"{base}/psi/events", "runs": f"{base}/runs"}


# ---------------------------------------------------------------------------- reads
@router.get("/plans", summary="plan versions, paged, with status, parameters, row counts, KPI totals, latest run")
def list_plans(
    request: Request,
    limit: int | None = Query(None, description="versions per page (default: the server's page size)"),
    offset: int = Query(0, description="versions to skip"),
    order: str = Query(DEFAULT_PLAN_ORDER, description=f"one of: {', '.join(PLAN_ORDERS)} (ties by version_id)"),
    status: str | None = Query(None, description=f"only versions of this status: {', '.join(VERSION_STATUSES)}"),
    input_set: str | None = Query(None, description="only versions of this input-set label"),
    principal: Principal = Depends(require("read")),
    store: Any = Depends(get_store),
) -> Response:
    limit, offset = _page(request, limit, offset)
    page = store.plan_summaries(limit=limit, offset=offset, order=order, status=status, input_set=input_set)
    return _json({"total": page["total"], "limit": limit, "offset": offset, "order": order, "plans": page["plans"]})


@router.get("/plans/{version_id}", summary="one version: summary, published levels, recent runs, links")
def get_plan(version_id: str, principal: Principal = Depends(require("read")),
             store: Any = Depends(get_store)) -> Response:
    return _json({**store.plan_summary(version_id), "links": _links(version_id)})


@router.get("/plans/{version_id}/series", summary="rows of one published level: JSON pages, or CSV/Parquet streamed")
def get_series(
    request: Request,
    version_id: str,
    level: str = Query(..., description="a published level of the version (e.g. det, aggregate, mrp_final)"),
    family: str | None = Query(None, description="only this family (levels with a family key)"),
    sku: str | None = Query(None, description="only this SKU / item"),
    week_from: str | None = Query(None, description="first bucket key, as stored (e.g. 2025-W03)"),
    week_to: str | None = Query(None, description="last bucket key, as stored"),
    limit: int | None = Query(None, description="rows per JSON page; CSV/Parquet: all matching rows unless given"),
    offset: int = Query(0),
    format: Literal["json", "csv", "parquet"] = Query("json"),
    principal: Principal = Depends(require("read")),
    store: Any = Depends(get_store),
) -> Response:
    filters = {"family": family, "sku": sku, "week_from": week_from, "week_to": week_to}
    if format != "json":
        if limit is not None:
            limit, offset = _page(request, limit, offset)
        handle, name = tempfile.mkstemp(prefix="plan-series-", suffix=f".{format}")
        os.close(handle)
        target = Path(name)
        try:
            target.unlink()  # DuckDB's COPY writes the file itself
            store.write_series_file(version_id, level, target, format, limit=limit, offset=offset, **filters)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return FileResponse(target, media_type=SERIES_MEDIA[format], filename=f"{version_id}-{level}.{format}",
                            background=BackgroundTask(target.unlink, missing_ok=True))
    limit, offset = _page(request, limit, offset)
    page = store.series_page(version_id, level, limit=limit, offset=offset, **filters)
    head = orjson.dumps({"version_id": version_id, "level": level, "total": page["total"], "limit": limit,
                         "offset": offset})
    # the rows' JSON comes from the store as one array (built by DuckDB): spliced in, not re-parsed
    return Response(head[:-1] + b',"rows":' + page["rows_json"].encode() + b"}", media_type="application/json")


@router.get("/plans/{version_id}/kpis", summary="the version's published KPI rows")
def get_kpis(
    request: Request,
    version_id: str,
    level: str | None = Query(None, description="a KPI level of the version (e.g. scorecard, report)"),
    metric: str | None = Query(None, description="only this metric (e.g. fill_rate)"),
    bucket_type: str | None = Query(None, description="only this bucket type (total, month, week, family, sku)"),
    limit: int | None = Query(None),
    offset: int = Query(0),
    principal: Principal = Depends(require("read")),
    store: Any = Depends(get_store),
) -> Response:
    limit, offset = _page(request, limit, offset)
    page = store.kpi_rows(version_id, level=level, metric=metric, bucket_type=bucket_type, limit=limit, offset=offset)
    return _json({"version_id": version_id, "total": page["total"], "limit": limit, "offset": offset,
                  "rows": page["rows"].to_pylist()})


@router.get("/plans/{version_id}/diff/{other}", summary="what changed from version_id (baseline) to other")
def get_diff(
    version_id: str,
    other: str,
    by: str = Query("total", description="total, month, week, family or sku"),
    metrics: str | None = Query(None, description="comma-separated comparison metrics (default: all)"),
    principal: Principal = Depends(require("read")),
    store: Any = Depends(get_store),
) -> Response:
    asked = [m.strip() for m in metrics.split(",") if m.strip()] if metrics is not None else None
    chosen = check_comparison(by, asked)
    frame = store.compare_versions(version_id, other, by, chosen)
    return _json({"baseline": version_id, "version": other, "by": by, "metrics": chosen,
                  "not_compared": frame.attrs.get("not_compared", []), "changes": int(len(frame)),
                  "rows": json.loads(frame.to_json(orient="records"))})


# ---------------------------------------------------------------------------- lifecycle
class TransitionBody(BaseModel):
    note: str | None = Field(None, max_length=2000, description="kept with the audit event")


def report_status_to_dagster(request: Request, version_id: str, previous: str, status: str,
                             principal: Principal) -> None:
    """Show the change in the Dagster UI as the CLI does (a courtesy: the store is the record, so a
    failure here is logged, never answered)."""
    home = _settings(request).dagster_home
    if home is None or not Path(home).is_dir():
        return
    try:
        report_version_status(dagster_instance(home), version_id, previous, status, by=f"the Plans API ({principal.name})")
    except Exception:
        log.warning("the status change of %s was not shown in the Dagster UI", version_id, exc_info=True)


def _lifecycle_route(action: str, to: str) -> None:
    def transition(request: Request, version_id: str, body: TransitionBody | None = None,
                   principal: Principal = Depends(require(action)), store: Any = Depends(get_store)) -> Response:
        previous = store.transition_status(version_id, to, actor=principal.name, notes=body.note if body else None)
        report_status_to_dagster(request, version_id, previous, to, principal)
        return _json({**store.plan_summary(version_id), "previous_status": previous, "links": _links(version_id)})

    transition.__name__ = f"{action}_plan"
    router.post(f"/plans/{{version_id}}/{action}", summary=f"{action}: the version becomes {to}")(transition)


for _action, _to in LIFECYCLE.items():
    _lifecycle_route(_action, _to)


# ---------------------------------------------------------------------------- create and run
class PlanCreate(BaseModel):
    input_set: str = Field(description="label of an imported input set")
    version_id: str | None = Field(None, description="the new version's id (default: a generated v<timestamp>)")
    parameters: dict[str, Any] = Field(default_factory=dict, description="planning parameters (defaults for the rest)")
    note: str | None = Field(None, max_length=2000)


@router.post("/plans", status_code=201, summary="create a draft version of an input set with parameters")
def create_plan(request: Request, body: PlanCreate, principal: Principal = Depends(require("create")),
                store: Any = Depends(get_store)) -> Response:
    try:
        params = PlanningParameters(**body.parameters)
    except ParameterError as exc:
        raise ApiError("bad_request", "; ".join(f"parameters.{p}" for p in exc.problems)) from None
    except TypeError as exc:  # an unknown parameter name
        raise ApiError("bad_request", f"parameters: {exc}") from None
    instance = dagster_instance(_settings(request).dagster_home)
    record = create_registered_version(store, instance, body.version_id, body.input_set, params,
                                       note=body.note or f"created over the API by {principal.name}", source="api")
    return _json({**store.plan_summary(record.version_id), "links": _links(record.version_id)}, status_code=201)


@router.post("/plans/{version_id}/runs", status_code=202, summary="launch the version's plan run on the Dagster instance")
def run_plan(request: Request, version_id: str, principal: Principal = Depends(require("run")),
             store: Any = Depends(get_store)) -> Response:
    run_id = launch_plan_run(store, version_id, actor=principal.name, dagster_home=_settings(request).dagster_home)
    job = store.get_job(run_id)
    return _json({"run_id": run_id, "version_id": version_id, "status": job["status"] if job else "queued",
                  "url": f"/runs/{run_id}", "url_in_dagster_ui": f"/runs/{run_id}"}, status_code=202)


@router.get("/runs/{run_id}", tags=["runs"], summary="a run's row of the run ledger (plan_jobs)")
def get_run(run_id: str, principal: Principal = Depends(require("read")), store: Any = Depends(get_store)) -> Response:
    job = store.get_job(run_id)
    if job is None:
        raise ApiError("not_found", f"unknown run {run_id!r} (no row in the run ledger)")
    tags = job.pop("tags_json", None)
    job["tags"] = json.loads(tags) if isinstance(tags, str) else (tags or {})
    job = {k: (v.isoformat(sep=" ", timespec="seconds") if hasattr(v, "isoformat") else v) for k, v in job.items()}
    return _json({**job, "run_id": job["job_id"], "url_in_dagster_ui": f"/runs/{run_id}"})
