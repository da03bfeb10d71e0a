"""The Plans API application: ``create_app(settings)`` builds it; ``plan-pipeline serve`` runs it.

Every answer that is not a success is the one JSON error shape of ``errors.py``: refusals of
the store map to a status by their type (unknown -> 404, conflicting state -> 409, store held
by another writer past the bounded wait -> 503 + ``Retry-After``, any other refusal -> 400);
a failure of the store or of the code is a 500 with a stable code and no traceback.
"""
from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from plan_pipeline.api import routes_keys, routes_metrics, routes_plans, routes_psi
from plan_pipeline.api import web as web_view
from plan_pipeline.api.errors import ApiError, api_error_for_store, validation_message
from plan_pipeline.api.metrics import install_request_metrics
from plan_pipeline.api.settings import ApiSettings
from plan_pipeline.store import PlanStoreError
from plan_pipeline.store.errors import is_database_failure

log = logging.getLogger("plan_pipeline.api")

API_TITLE = "plan-pipeline Plans API"


def _version() -> str:
    try:
        return package_version("plan-pipeline")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "0"


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers or None)


def install_error_handlers(app: FastAPI, settings: ApiSettings) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(PlanStoreError)
    async def _store_error(request: Request, exc: PlanStoreError) -> JSONResponse:
        return error_response(api_error_for_store(exc, settings.retry_after_seconds))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(ApiError("validation_error", validation_message(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}.get(exc.status_code)
        if code is None:
            body = {"error": {"code": "bad_request" if exc.status_code < 500 else "internal_error",
                              "message": str(exc.detail)}}
            return JSONResponse(body, status_code=exc.status_code)
        message = "no such endpoint" if exc.status_code == 404 and exc.detail == "Not Found" else str(exc.detail)
        return error_response(ApiError(code, message))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        if is_database_failure(exc):
            return error_response(ApiError("store_error", f"the plan store failed: {type(exc).__name__}"))
        return error_response(ApiError("internal_error", f"unexpected {type(exc).__name__}; see the server log"))


def create_app(settings: ApiSettings) -> FastAPI:
    """The Plans API over the store at ``settings.db_path`` (and the Dagster instance at
    ``settings.dagster_home``). Opens nothing until a request arrives."""
    from plan_pipeline.store import PlanStore
    from plan_pipeline.store.shared_database import SharedDatabase

    app = FastAPI(
        title=API_TITLE,
        version=_version(),
        description="Plans, series, KPIs, the PSI grid and the plan lifecycle over the plan store (docs/api.md).",
    )
    app.state.settings = settings
    # One kept-open handle on the store file for all requests (~0.4 ms per request instead of a
    # ~20 ms open), which steps aside whenever another process waits for the file.
    # On PostgreSQL each request's store opens its own connection (no file lock to share).
    location = settings.store_location()
    database = (None if location.path is None else
                SharedDatabase(location.path, lock_wait_seconds=settings.lock_wait_seconds))
    app.state.database = database
    app.state.new_store = lambda: PlanStore(
        location=location, lock_wait_seconds=settings.lock_wait_seconds, write_source="api", database=database)
    if database is not None:
        app.router.add_event_handler("shutdown", database.close)
    install_error_handlers(app, settings)
    install_request_metrics(app)
    app.include_router(routes_plans.router)
    app.include_router(routes_psi.router)
    app.include_router(routes_keys.router)
    app.include_router(routes_metrics.router)
    app.include_router(web_view.router)

    @app.get("/health", tags=["service"], summary="the service and its store answer")
    def health(request: Request) -> dict:
        store = request.app.state.new_store()
        return {"status": "ok", "schema_version": store.schema_version()}

    return app
