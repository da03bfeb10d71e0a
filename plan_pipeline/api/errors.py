"""The one error shape of the Plans API: ``{"error": {"code": ..., "message": ...}}``.

Endpoints raise :class:`ApiError`; ``app.create_app`` installs the handlers that turn it (and
FastAPI's validation errors, store errors and anything unexpected) into that JSON, never a
traceback (reference gap G27). Codes are stable strings clients may branch on.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from plan_pipeline.store.errors import PlanConflictError, PlanNotFoundError, PlanStoreBusyError, PlanStoreError

#: Stable error codes and their HTTP status.
ERROR_STATUS: dict[str, int] = {
    "bad_request": 400,  # a parameter or body field breaks a rule (the message says which)
    "unauthorized": 401,  # no API key, or an unknown/revoked one
    "forbidden": 403,  # the key's role may not do this
    "not_found": 404,  # no such version, run, input set or key
    "conflict": 409,  # the lifecycle refuses (frozen version, transition not allowed, run in progress)
    "validation_error": 422,  # the request does not match the schema
    "store_busy": 503,  # the plan store is held by another writer longer than the bounded wait
    "store_error": 500,  # the store failed; never an empty 200 (reference gap G25)
    "internal_error": 500,
}


class ApiError(Exception):
    """An error answered as JSON with a stable ``code`` and a one-line ``message``."""

    def __init__(self, code: str, message: str, *, headers: Mapping[str, str] | None = None):
        if code not in ERROR_STATUS:
            raise KeyError(f"unknown API error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = ERROR_STATUS[code]
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def api_error_for_store(exc: PlanStoreError, retry_after_seconds: int) -> ApiError:
    """The API error a store refusal or failure answers with (by its type, never its text)."""
    if isinstance(exc, PlanStoreBusyError):
        return ApiError(
            "store_busy",
            f"the plan store is busy (another process writes it); retry in {retry_after_seconds} s",
            headers={"Retry-After": str(retry_after_seconds)},
        )
    if isinstance(exc, PlanNotFoundError):
        return ApiError("not_found", str(exc))
    if isinstance(exc, PlanConflictError):
        return ApiError("conflict", str(exc))
    return ApiError("bad_request", str(exc))


def validation_message(errors: Iterable[Mapping[str, Any]], limit: int = 5) -> str:
    """One line naming each broken field (at most ``limit``) of a request FastAPI refused."""
    parts = []
    for err in list(errors)[:limit]:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":  # loc: ("body", <character position>)
            detail = (err.get("ctx") or {}).get("error", "JSON decode error")
            at = f" at character {loc[1]}" if len(loc) > 1 else ""
            parts.append(f"the request body is not valid JSON ({detail}{at})")
            continue
        where = ".".join(str(p) for p in loc if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request does not match the schema"
