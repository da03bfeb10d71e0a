"""API keys over HTTP (admin only): list, create (the key is in the answer, once), revoke.

The same store calls as ``plan-pipeline apikey create|list|revoke``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from plan_pipeline.api.dependencies import Principal, get_store, require
from plan_pipeline.api.roles import ROLES

router = APIRouter(prefix="/keys", tags=["keys"])


class ApiKeyInfo(BaseModel):
    name: str
    role: str
    key_prefix: str = Field(description="the key's first characters, to recognise it")
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None


class ApiKeyCreate(BaseModel):
    name: str = Field(description="unique name; the actor of every audit event written with the key")
    role: str = Field(description=f"one of: {', '.join(ROLES)}")


class ApiKeyCreated(ApiKeyInfo):
    key: str = Field(description="the key itself: shown this once, only its hash is stored")


@router.get("", summary="every API key (never the key itself)")
def list_keys(
    principal: Principal = Depends(require("manage_keys")), store: Any = Depends(get_store)
) -> list[ApiKeyInfo]:
    return [ApiKeyInfo(**row) for row in store.list_api_keys()]


@router.post("", status_code=201, summary="create a key; the answer holds it once")
def create_key(
    body: ApiKeyCreate, principal: Principal = Depends(require("manage_keys")), store: Any = Depends(get_store)
) -> ApiKeyCreated:
    key = store.create_api_key(body.name, body.role, actor=principal.name)
    row = next(r for r in store.list_api_keys() if r["name"] == body.name)
    return ApiKeyCreated(key=key, **row)


@router.delete("/{name}", summary="revoke a key (it stays listed as revoked)")
def revoke_key(
    name: str, principal: Principal = Depends(require("manage_keys")), store: Any = Depends(get_store)
) -> ApiKeyInfo:
    return ApiKeyInfo(**store.revoke_api_key(name, actor=principal.name))
