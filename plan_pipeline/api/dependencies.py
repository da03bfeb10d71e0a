"""FastAPI dependencies shared by every route module: the store, the caller, role checks.

The caller is identified by an API key, sent as ``X-API-Key: <key>`` (or ``Authorization:
Bearer <key>``; the web view keeps it in the ``plan_api_key`` cookie). The store resolves a
key to its name and role (only the key's hash is stored); the key's name is the actor of
every audit event the request writes.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from plan_pipeline.api.errors import ApiError
from plan_pipeline.api.roles import allowed, roles_allowed

API_KEY_HEADER = "X-API-Key"
API_KEY_COOKIE = "plan_api_key"


@dataclass(frozen=True)
class Principal:
    """Who calls: the API key's name (the audit actor) and its role."""

    name: str
    role: str


def get_store(request: Request) -> Iterator[Any]:
    """This request's plan store: a ``PlanStore`` with the API's bounded lock wait, whose calls
    share one connection for the whole request (``PlanStore.session``: the file opens once).

    The key the request presents (if any) is resolved here too, on the same connection and in
    the same worker-thread hop (``request.state.key_owner``: ``(name, role)`` or None), so the
    principal check (:func:`current_principal`) runs on the event loop.
    """
    store = request.app.state.new_store()
    with store.session():
        key = presented_key(request)
        request.state.key_owner = store.api_key_principal(key) if key else None  # store/api_keys.py
        yield store


def presented_key(request: Request) -> str | None:
    key = request.headers.get(API_KEY_HEADER)
    if not key:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    if not key:
        key = request.cookies.get(API_KEY_COOKIE)
    return key or None


_NOT_RESOLVED = object()


async def current_principal(request: Request, store: Any = Depends(get_store)) -> Principal:
    """The caller's principal; 401 without a key or with an unknown/revoked one (the key was
    resolved by :func:`get_store`: nothing here blocks the event loop)."""
    return principal_of(request, store)


def principal_of(request: Request, store: Any) -> Principal:
    """The caller's principal: the key resolved by :func:`get_store`, else looked up on ``store``;
    ``ApiError("unauthorized")`` without a key or with an unknown/revoked one."""
    key = presented_key(request)
    if key is None:
        raise ApiError("unauthorized", f"an API key is required: send it as the {API_KEY_HEADER} header")
    found: Any = getattr(request.state, "key_owner", _NOT_RESOLVED)
    if found is _NOT_RESOLVED:
        found = store.api_key_principal(key)
    if found is None:
        raise ApiError("unauthorized", "unknown or revoked API key")
    name, role = found
    return Principal(name=name, role=role)


def require(action: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency allowing ``action`` (see ``roles.ACTION_ROLES``) or answering 403."""
    roles_allowed(action)  # an unknown action fails when the route is declared, not per request

    # async: a pure check runs on the event loop, one thread hop less per request
    async def check(principal: Principal = Depends(current_principal)) -> Principal:
        if not allowed(principal.role, action):
            raise ApiError(
                "forbidden",
                f"the key {principal.name!r} has role {principal.role}; {action} needs one of: "
                f"{', '.join(roles_allowed(action))}",
            )
        return principal

    return check
