"""Planner edits and locks (``plan_overrides``) and their append-only audit trail.

The one home of how an override changes: :func:`apply_override_change` runs inside a writing
transaction and is shared by ``record_override`` (the CLI's ``override set``, one cell per
transaction) and the PSI grid's PATCH (``store/psi.py``, many cells in one transaction).

Rules (reference gaps G8-G10, G28):

* partial updates per attribute: a field given sets it, ``None`` removes that field's edit;
  ``lock=None`` leaves the lock as it is; a lock never clobbers an edit, nor an edit a lock;
* ``reset`` removes every edit of the cell *and* its lock (the cell is back to the computed
  plan); fields or a lock given with it apply after the reset;
* one audit event per actually changed field: ``edit`` (a field set or removed) or ``reset`` (a
  field removed by a reset) with ``{"field", "before", "after"}`` (``None`` = no edit), and
  ``lock`` / ``unlock`` with ``{"field": "lock", "before", "after"}``; nothing changed, no event;
* approved, superseded, imported and read-only versions are frozen (``PlanConflictError``).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from plan_pipeline.planning.overrides import OverrideError, check_override_key, validate_override_payload
from plan_pipeline.store.backends.postgres import lock_version
from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.versions import _require_replannable
from plan_pipeline.store.write_log import record_write
from plan_pipeline.timeutil import utc_now as _now

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import pandas as pd

#: The pseudo-field of lock / unlock events.
LOCK_FIELD = "lock"


def checked_override(level: str, key: str, payload: Any) -> dict[str, float | None]:
    """The override's values after the planning rules (key of ``level``, fields, numbers);
    a broken rule is a ``PlanStoreError`` naming it."""
    try:
        check_override_key(level, key)
        return validate_override_payload(payload, level)
    except OverrideError as exc:
        raise PlanStoreError(str(exc)) from None


def apply_override_change(
    con,
    version_id: str,
    level: str,
    key: str,
    payload: dict[str, float | None],
    *,
    lock: bool | None,
    reset: bool = False,
    actor: str,
    notes: str | None,
    now: datetime,
    source: str,
) -> tuple[int | None, list[dict[str, Any]]]:
    """Change one override inside the caller's transaction; append one event per changed field.

    ``payload`` must have passed :func:`checked_override`. Returns ``(override_id, events)``;
    ``override_id`` is None when the cell has no override and nothing was recorded.
    """
    row = con.execute(
        "SELECT id, payload_json, lock_flag FROM plan_overrides WHERE version_id = ? AND level = ? AND key_hash = ?",
        [version_id, level, key],
    ).fetchone()
    before: dict[str, Any] = json.loads(row[1]) if row else {}
    was_locked = bool(row[2]) if row else False
    after: dict[str, Any] = {} if reset else dict(before)
    for field_name, value in payload.items():
        if value is None:
            after.pop(field_name, None)
        else:
            after[field_name] = value
    locked = (False if reset else was_locked) if lock is None else bool(lock)
    changes: list[tuple[str, str, Any, Any]] = []
    for field_name in dict.fromkeys([*before, *after]):
        old, new = before.get(field_name), after.get(field_name)
        if old != new:
            kind = "reset" if reset and new is None and field_name not in payload else "edit"
            changes.append((kind, field_name, old, new))
    if locked != was_locked:
        changes.append(("lock" if locked else "unlock", LOCK_FIELD, was_locked, locked))
    if not changes:
        return (int(row[0]) if row else None), []
    if row is None:
        override_id = con.execute(
            "INSERT INTO plan_overrides (version_id, level, key_hash, payload_json, lock_flag, locked_by, "
            "author, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [version_id, level, key, json.dumps(after), locked, actor if locked else None, actor, source, now, now],
        ).fetchone()[0]
    else:
        override_id = row[0]
        con.execute(
            "UPDATE plan_overrides SET payload_json = ?, lock_flag = ?, "
            "locked_by = CASE WHEN ? THEN (CASE WHEN lock_flag THEN locked_by ELSE ? END) END, author = ?, "
            "source = ?, updated_at = ?, row_version = row_version + 1 WHERE id = ?",
            [json.dumps(after), locked, locked, actor, actor, source, now, override_id],
        )
    events = []
    for event_type, field_name, old, new in changes:
        event_payload = {"field": field_name, "before": old, "after": new}
        event_id = con.execute(
            "INSERT INTO plan_override_events (override_id, version_id, level, key_hash, event_type, "
            "event_ts, payload_json, actor, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [override_id, version_id, level, key, event_type, now, json.dumps(event_payload), actor, notes],
        ).fetchone()[0]
        events.append({"event_id": int(event_id), "event_ts": now.isoformat(sep=" "), "actor": actor,
                       "event_type": event_type, "level": level, "key": key, **event_payload, "note": notes})
    return int(override_id), events


class OverrideRepository(PlanStoreBase):
    def record_override(
        self,
        version_id: str,
        level: str,
        key: str,
        payload: dict[str, Any],
        *,
        lock: bool | None = None,
        reset: bool = False,
        actor: str = "system",
        notes: str | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        """Upsert one override (edit and/or lock) of ``level`` (``agg`` or ``det``) and append one
        audit event per actually changed field (module docstring). Approved and read-only
        versions are frozen (G10). Returns ``{"override_id", "events": [event types],
        "changes": [events]}``.
        """
        payload = checked_override(level, key, payload)
        with self.write() as con:
            lock_version(con, version_id)
            self._require_editable(con, version_id)
            now = _now()
            source = source or self.write_source
            override_id, events = apply_override_change(
                con, version_id, level, key, payload, lock=lock, reset=reset, actor=actor, notes=notes,
                now=now, source=source)
            if events:
                record_write(con, source, "override", version_id, [(level, 1)], at=now)
        return {"override_id": override_id, "events": [e["event_type"] for e in events], "changes": events}

    def _require_editable(self, con, version_id: str) -> None:
        _require_replannable(con, version_id, action="edited")

    def level_overrides(self, version_id: str, level: str) -> list[dict[str, Any]]:
        """The version's overrides of one grain (``agg`` / ``det``): key, payload and lock flag,
        oldest first (what the plan stages apply)."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT key_hash, payload_json, lock_flag FROM plan_overrides "
                "WHERE version_id = ? AND level = ? ORDER BY id",
                [version_id, level],
            ).fetchall()
        return [{"key": r[0], "payload": json.loads(r[1]), "locked": bool(r[2])} for r in rows]

    def detail_overrides(self, version_id: str) -> list[dict[str, Any]]:
        """The version's detail-plan overrides: key, payload and lock flag, oldest first."""
        return self.level_overrides(version_id, "det")

    def read_overrides(self, version_id: str) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(
                "SELECT * FROM plan_overrides WHERE version_id = ? ORDER BY id", [version_id]
            ).df()

    def read_override_events(self, version_id: str) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(
                "SELECT * FROM plan_override_events WHERE version_id = ? ORDER BY event_ts, id", [version_id]
            ).df()
