"""The planner web view's pages and form handlers (server-rendered Jinja2, no JavaScript needed).

Auth: ``/web/login`` checks an API key (``store.api_key_principal``) and keeps it in the
``plan_api_key`` cookie (HttpOnly, SameSite=Strict: a form of another site never sends it, so
the POST-only forms need no CSRF token); every page reads the caller from that cookie through
``api.dependencies.principal_of`` and sends an unknown caller to the login page.

Every form POSTs and redirects back (POST/redirect/GET); a refusal (the role may not, the
version is frozen, a value breaks a rule, the store is busy) comes back as a message on the
page, never as a traceback. Writes use the same store calls as the JSON API:
``record_override`` for edits and locks, ``transition_status`` for the lifecycle.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from plan_pipeline.api.dependencies import API_KEY_COOKIE, Principal, get_store, principal_of
from plan_pipeline.api.errors import ApiError, api_error_for_store, validation_message
from plan_pipeline.api.roles import allowed, roles_allowed
from plan_pipeline.api.runs import launch_plan_run
from plan_pipeline.api.web.psi_grid import EDITABLE_MEASURES, GRID_MEASURES, build_grid, format_quantity, input_value
from plan_pipeline.planning.vocabulary import SCORECARD_KPIS
from plan_pipeline.store import PlanNotFoundError, PlanStoreBusyError, PlanStoreError
from plan_pipeline.store.errors import is_database_failure
from plan_pipeline.store.rules import STATUS_TRANSITIONS, is_frozen
from plan_pipeline.store.web_view import (
    detail_families,
    family_detail_rows,
    family_skus,
    recent_events,
    scorecard_totals_by_version,
    sku_overrides,
)

log = logging.getLogger("plan_pipeline.api.web")

class LoginRequired(Exception):
    """No valid key in the cookie: the page answers with a redirect to the login form."""


class WebRoute(APIRoute):
    """A web view route: a caller without a valid key is sent to the login page, and a store
    refusal or failure a page did not handle is an HTML page with the message (never JSON or a
    traceback)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return _login_redirect(request)
            except PlanStoreError as exc:
                error = api_error_for_store(exc, request.app.state.settings.retry_after_seconds)
                response = _render(request, "error.html", None, status_code=error.status, message=_refusal(exc))
                response.headers.update(error.headers)
                return response
            except RequestValidationError as exc:  # a form or query field missing or malformed
                return _render(request, "error.html", None, status_code=400, message=_validation_message(exc))
            except Exception as exc:
                log.exception("web view: unexpected error answering %s %s", request.method, request.url.path)
                what = "the plan store failed" if is_database_failure(exc) else "unexpected error"
                return _render(request, "error.html", None, status_code=500,
                               message=f"{what}: {type(exc).__name__}; see the server log")

        return guarded


router = APIRouter(prefix="/web", include_in_schema=False, route_class=WebRoute)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

#: SKUs per page of the PSI grid (each SKU is three rows of editable cells).
GRID_SKUS_PER_PAGE = 10
#: Audit events the plan page lists (newest first).
EVENTS_SHOWN = 20
#: Runs of the version the plan page lists (newest first).
RUNS_SHOWN = 5
#: The lifecycle buttons: action (the role check and the URL) -> (status it moves to, label).
LIFECYCLE_ACTIONS: dict[str, tuple[str, str]] = {
    "submit": ("submitted", "Submit"),
    "approve": ("approved", "Approve"),
    "reject": ("draft", "Reject"),
    "supersede": ("superseded", "Supersede"),
}


def _login_redirect(request: Request) -> RedirectResponse:
    target = "/web"
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/web/login?" + urlencode({"next": target}), status_code=303)


def web_principal(request: Request, store: Any = Depends(get_store)) -> Principal:
    """The caller of a page (the cookie's key, or a header); :class:`LoginRequired` without one."""
    try:
        return principal_of(request, store)
    except ApiError:
        raise LoginRequired() from None


def _safe_next(target: str | None) -> str:
    """Only a path of the web view (no open redirect to another site)."""
    if target and target.startswith("/web") and "//" not in target and "\\" not in target:
        return target
    return "/web"


def _back(path: str, *, notice: str | None = None, error: str | None = None, **query: Any) -> RedirectResponse:
    params = {k: v for k, v in query.items() if v not in (None, "")}
    if notice:
        params["notice"] = notice
    if error:
        params["error"] = error
    return RedirectResponse(path + ("?" + urlencode(params) if params else ""), status_code=303)


def _validation_message(exc: RequestValidationError) -> str:
    return "the form is incomplete or malformed: " + validation_message(exc.errors())


def _refusal(exc: PlanStoreError) -> str:
    if isinstance(exc, PlanStoreBusyError):
        return "the plan store is busy (a plan run is writing it); try again in a few seconds"
    return str(exc)


def _role_refusal(principal: Principal, action: str) -> str | None:
    if allowed(principal.role, action):
        return None
    return (f"the key {principal.name!r} has role {principal.role}; {action} needs one of: "
            f"{', '.join(roles_allowed(action))}")


def _render(request: Request, template: str, principal: Principal | None, status_code: int = 200,
            **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {
        "principal": principal, "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"), **context,
    }, status_code=status_code)


def _kpi_cells(totals: dict[str, tuple[float, str]]) -> list[dict[str, Any]]:
    from plan_pipeline.planning.kpis import format_kpi  # pandas: loaded by the pages that show KPIs

    return [{"name": k.name, "label": k.label, "meaning": k.meaning,
             "value": totals[k.name][0] if k.name in totals else None,
             "display": format_kpi(totals[k.name][1], totals[k.name][0]) if k.name in totals else "n/a"}
            for k in SCORECARD_KPIS]


# ------------------------------------------------------------------------------------ login
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _render(request, "login.html", None, next=_safe_next(next))


@router.post("/login", response_model=None)
def login(request: Request, key: str = Form(""), next: str = Form("/web"),
          store: Any = Depends(get_store)) -> Response:
    key = key.strip()
    found = store.api_key_principal(key) if key else None
    if found is None:
        return _render(request, "login.html", None, status_code=401, next=_safe_next(next),
                       login_error="unknown or revoked API key" if key else "enter an API key")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(API_KEY_COOKIE, key, httponly=True, samesite="strict", path="/")
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout() -> RedirectResponse:
    response = RedirectResponse("/web/login", status_code=303)
    response.delete_cookie(API_KEY_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# ------------------------------------------------------------------------------------ pages
@router.get("", response_class=HTMLResponse)
def plan_list(request: Request, principal: Principal = Depends(web_principal),
              store: Any = Depends(get_store)) -> HTMLResponse:
    versions = store.list_versions()
    totals = scorecard_totals_by_version(store)
    rows = [{"version": v, "kpis": _kpi_cells(totals.get(v.version_id, {}))} for v in versions]
    return _render(request, "plans.html", principal, rows=rows, kpis=SCORECARD_KPIS)


def _report_charts(store: Any, version_id: str) -> list[str]:
    from plan_pipeline.exports.plan_review import published_report_dir
    from plan_pipeline.exports.plan_review_report import ALL_CHARTS

    folder = published_report_dir(store, version_id)
    return [name for name in ALL_CHARTS if (folder / name).is_file()]


def _grid_page(store: Any, version_id: str, family: str, page: int) -> dict[str, Any]:
    skus = family_skus(store, version_id, family)
    pages = max(1, math.ceil(len(skus) / GRID_SKUS_PER_PAGE))
    page = min(max(1, page), pages)
    shown = skus[(page - 1) * GRID_SKUS_PER_PAGE: page * GRID_SKUS_PER_PAGE]
    rows = family_detail_rows(store, version_id, family, shown)
    grid = build_grid(family, rows, sku_overrides(store, version_id, shown))
    return {"grid": grid, "page": page, "pages": pages, "sku_count": len(skus)}


@router.get("/plans/{version_id}", response_class=HTMLResponse)
def plan_detail(request: Request, version_id: str, family: str | None = None, page: int = 1,
                principal: Principal = Depends(web_principal), store: Any = Depends(get_store)) -> HTMLResponse:
    try:
        record = store.get_version(version_id)
    except PlanNotFoundError as exc:
        return _render(request, "error.html", principal, status_code=404, message=str(exc))
    totals = scorecard_totals_by_version(store).get(version_id, {})
    families = detail_families(store, version_id)
    if family not in families:
        family = families[0] if families else None
    grid = _grid_page(store, version_id, family, page) if family else None
    frozen = is_frozen(record.status, record.read_only)
    lifecycle = [] if record.read_only else [
        {"action": action, "label": label}
        for action, (to, label) in LIFECYCLE_ACTIONS.items()
        if to in STATUS_TRANSITIONS.get(record.status, ()) and allowed(principal.role, action)]
    jobs = store.list_jobs(version_id).head(RUNS_SHOWN)
    runs = [{"run_id": r["job_id"], "status": r["status"], "trigger": r.get("trigger"),
             "submitted_at": r.get("submitted_at"), "error": r.get("error")} for r in jobs.to_dict("records")]
    return _render(
        request, "plan.html", principal, version=record, kpis=_kpi_cells(totals), families=families, family=family,
        charts=_report_charts(store, version_id), events=recent_events(store, version_id, EVENTS_SHOWN),
        lifecycle=lifecycle, frozen=frozen, can_edit=allowed(principal.role, "edit") and not frozen,
        can_run=allowed(principal.role, "run") and not frozen, runs=runs, measures=GRID_MEASURES, editable=EDITABLE_MEASURES,
        format_quantity=format_quantity, input_value=input_value, **(grid or {"grid": None}),
        cell_action=f"/web/plans/{version_id}/cells?"
        + urlencode({"family": family or "", "page": grid["page"] if grid else 1}),
    )


@router.get("/plans/{version_id}/charts/{name}", response_model=None)
def report_chart(version_id: str, name: str, principal: Principal = Depends(web_principal),
                 store: Any = Depends(get_store)) -> Response:
    """A PNG chart of the version's plan report (only the report's own chart names)."""
    from plan_pipeline.exports.plan_review import published_report_dir
    from plan_pipeline.exports.plan_review_report import ALL_CHARTS

    store.get_version(version_id)
    path = published_report_dir(store, version_id) / name
    if name not in ALL_CHARTS or not path.is_file():
        return Response("no such chart", status_code=404, media_type="text/plain")
    return FileResponse(path, media_type="image/png")


# ------------------------------------------------------------------------------------ forms
def _plan_path(version_id: str) -> str:
    return f"/web/plans/{version_id}"


def _parse_quantity(field: str, text: str) -> float:
    try:
        value = float(text.replace(",", "").strip())
    except ValueError:
        raise PlanStoreError(f"{field} {text!r} is not a number") from None
    return value


@router.post("/plans/{version_id}/cells", response_model=None)
def edit_cell(version_id: str, key: str = Form(...), op: str = Form("set"), field: str = Form("demand"),
              value: str = Form(""), family: str = "", page: str = "",
              principal: Principal = Depends(web_principal), store: Any = Depends(get_store)) -> RedirectResponse:
    """One cell's form: ``op`` set (the field to ``value``), reset (drop the field's edit), lock, unlock.
    The grid's family and page (where to come back to) are in the form's URL."""
    back = {"family": family, "page": page}
    refused = _role_refusal(principal, "edit")
    if refused:
        return _back(_plan_path(version_id), error=refused, **back)
    try:
        if op == "set":
            result = store.record_override(version_id, "det", key, {field: _parse_quantity(field, value)},
                                           actor=principal.name, notes="web view")
        elif op == "reset":
            result = store.record_override(version_id, "det", key, {field: None}, actor=principal.name,
                                           notes="web view")
        elif op in ("lock", "unlock"):
            result = store.record_override(version_id, "det", key, {}, lock=op == "lock", actor=principal.name,
                                           notes="web view")
        else:
            return _back(_plan_path(version_id), error=f"unknown cell operation {op!r}", **back)
    except PlanStoreError as exc:
        return _back(_plan_path(version_id), error=_refusal(exc), **back)
    done = ", ".join(result["events"]) or "nothing changed"
    return _back(_plan_path(version_id), notice=f"{key}: {done} (re-plan to recompute the plan)", **back)


def _principal_without_session(request: Request) -> Principal:
    """The caller, looked up on a store with no request session: the re-plan must not hold a
    connection open while the plan run (in this process) opens the file with its own settings."""
    try:
        return principal_of(request, request.app.state.new_store())
    except ApiError:
        raise LoginRequired() from None


@router.post("/plans/{version_id}/replan", response_model=None)
def replan(request: Request, version_id: str, family: str = Form(""),
           principal: Principal = Depends(_principal_without_session)) -> RedirectResponse:
    refused = _role_refusal(principal, "run")
    if refused:
        return _back(_plan_path(version_id), error=refused, family=family)
    store = request.app.state.new_store()
    try:
        run_id = launch_plan_run(store, version_id, actor=principal.name,
                                 dagster_home=request.app.state.settings.dagster_home, trigger="web")
    except PlanStoreError as exc:
        return _back(_plan_path(version_id), error=_refusal(exc), family=family)
    except ApiError as exc:  # e.g. a server started without a Dagster home
        return _back(_plan_path(version_id), error=exc.message, family=family)
    except Exception as exc:  # a run that cannot start: say so on the page, the log has the traceback
        log.exception("re-plan of %s failed", version_id)
        return _back(_plan_path(version_id), error=f"the plan run could not run: {type(exc).__name__}: {exc}",
                     family=family)
    return _back(_plan_path(version_id), notice=f"plan run {run_id} launched by {principal.name}", family=family)


@router.post("/plans/{version_id}/{action}", response_model=None)
def lifecycle(version_id: str, action: str, family: str = Form(""), notes: str = Form(""),
              principal: Principal = Depends(web_principal), store: Any = Depends(get_store)) -> Response:
    if action not in LIFECYCLE_ACTIONS:
        return Response("no such action", status_code=404, media_type="text/plain")
    refused = _role_refusal(principal, action)
    if refused:
        return _back(_plan_path(version_id), error=refused, family=family)
    to = LIFECYCLE_ACTIONS[action][0]
    try:
        before = store.transition_status(version_id, to, actor=principal.name, notes=notes.strip() or None)
    except PlanStoreError as exc:
        return _back(_plan_path(version_id), error=_refusal(exc), family=family)
    return _back(_plan_path(version_id), notice=f"{version_id}: {before} -> {to} by {principal.name}", family=family)


