"""API keys of the Plans API (``plan_api_keys``): created, listed, revoked, resolved to a caller.

A key is ``ppk_`` + 43 URL-safe random characters, returned once by :meth:`create_api_key`;
the store keeps only its SHA-256 and its first characters (to recognise it in a list). The
key's name is unique, and is the actor of every audit event written with it.
"""
from __future__ import annotations

import hashlib
import secrets
from typing import Any

from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.errors import PlanConflictError, PlanNotFoundError, PlanStoreError
from plan_pipeline.store.rules import API_KEY_ROLES, check_identifier
from plan_pipeline.timeutil import utc_now as _now

KEY_PREFIX = "ppk_"
#: Characters of a key kept in clear to recognise it (``ppk_`` + 4).
SHOWN_PREFIX_LENGTH = 8
API_KEY_COLUMNS = ("name", "role", "key_prefix", "created_at", "created_by", "revoked_at", "revoked_by")


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeyRepository(PlanStoreBase):
    def create_api_key(self, name: str, role: str, *, actor: str = "cli") -> str:
        """Create a key named ``name`` with ``role``; returns the key (shown once, never stored)."""
        check_identifier("API key name", name)
        if role not in API_KEY_ROLES:
            raise PlanStoreError(f"unknown role {role!r}: choose one of {', '.join(API_KEY_ROLES)}")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.write() as con:
            if con.execute("SELECT 1 FROM plan_api_keys WHERE name = ?", [name]).fetchone():
                raise PlanConflictError(f"an API key named {name!r} already exists (revoke it or choose another name)")
            con.execute(
                "INSERT INTO plan_api_keys (name, role, key_hash, key_prefix, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [name, role, hash_api_key(key), key[:SHOWN_PREFIX_LENGTH], _now(), actor],
            )
        return key

    def list_api_keys(self, *, include_revoked: bool = True) -> list[dict[str, Any]]:
        """Every key's name, role, prefix and history (never its hash), oldest first."""
        where = "" if include_revoked else "WHERE revoked_at IS NULL"
        with self.connect() as con:
            rows = con.execute(
                f"SELECT {', '.join(API_KEY_COLUMNS)} FROM plan_api_keys {where} ORDER BY created_at, name"
            ).fetchall()
        return [dict(zip(API_KEY_COLUMNS, row)) for row in rows]

    def revoke_api_key(self, name: str, *, actor: str = "cli") -> dict[str, Any]:
        """Revoke the key ``name`` (it stays listed, revoked); refusing an unknown or revoked one."""
        with self.write() as con:
            row = con.execute("SELECT revoked_at FROM plan_api_keys WHERE name = ?", [name]).fetchone()
            if row is None:
                raise PlanNotFoundError(f"no API key named {name!r}")
            if row[0] is not None:
                raise PlanConflictError(f"the API key {name!r} was already revoked on {row[0]:%Y-%m-%d %H:%M} UTC")
            con.execute("UPDATE plan_api_keys SET revoked_at = ?, revoked_by = ? WHERE name = ?", [_now(), actor, name])
            out = con.execute(
                f"SELECT {', '.join(API_KEY_COLUMNS)} FROM plan_api_keys WHERE name = ?", [name]
            ).fetchone()
        return dict(zip(API_KEY_COLUMNS, out))

    def api_key_principal(self, key: str) -> tuple[str, str] | None:
        """``(name, role)`` of a valid (not revoked) key, else None."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        with self.connect() as con:
            row = con.execute(
                "SELECT name, role FROM plan_api_keys WHERE key_hash = ? AND revoked_at IS NULL", [hash_api_key(key)]
            ).fetchone()
        return (row[0], row[1]) if row else None
