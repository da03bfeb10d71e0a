"""Planner edits and locks (``plan_overrides``) and their append-only audit trail."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from plan_pipeline.planning.overrides import OverrideError, check_detail_key, validate_override_payload
from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.versions import _require_replannable
from plan_pipeline.store.write_log import record_write
from plan_pipeline.timeutil import utc_now as _now

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import pandas as pd


class OverrideRepository(PlanStoreBase):
    def record_override(
        self,
        version_id: str,
        level: str,
        key: str,
        payload: dict[str, Any],
        *,
        lock: bool | None = None,
        actor: str = "system",
        notes: str | None = None,
    ) -> dict[str, Any]:
        """Upsert one override (edit and/or lock) and append one audit event per real change.

        ``payload`` fields are merged into the stored overlay; a ``None`` value removes that
        field. Nothing changes and no event is written when the values and lock are the same
        (reference gap G8). Approved and read-only versions are frozen (G10).
        Returns ``{"override_id", "events": [...]}``.
        """
        try:  # the one home of the rules: every path that records an override goes through here
            payload = validate_override_payload(payload)
            if level == "det":
                check_detail_key(key)
        except OverrideError as exc:
            raise PlanStoreError(str(exc)) from None
        now = _now()
        events: list[str] = []
        with self.write() as con:
            self._require_editable(con, version_id)
            row = con.execute(
                "SELECT id, payload_json, lock_flag FROM plan_overrides WHERE version_id = ? AND level = ? AND key_hash = ?",
                [version_id, level, key],
            ).fetchone()
            before = json.loads(row[1]) if row else {}
            was_locked = bool(row[2]) if row else False
            after = dict(before)
            for field_name, value in payload.items():
                if value is None:
                    after.pop(field_name, None)
                else:
                    after[field_name] = value
            locked = was_locked if lock is None else bool(lock)
            if row is not None and after == before and locked == was_locked:
                return {"override_id": int(row[0]), "events": []}
            if row is None:
                override_id = con.execute(
                    "INSERT INTO plan_overrides (version_id, level, key_hash, payload_json, lock_flag, locked_by, "
                    "author, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'cli', ?, ?) RETURNING id",
                    [version_id, level, key, json.dumps(after), locked, actor if locked else None, actor, now, now],
                ).fetchone()[0]
            else:
                override_id = row[0]
                con.execute(
                    "UPDATE plan_overrides SET payload_json = ?, lock_flag = ?, locked_by = ?, author = ?, "
                    "updated_at = ?, row_version = row_version + 1 WHERE id = ?",
                    [json.dumps(after), locked, actor if locked else None, actor, now, override_id],
                )
            changes = []
            if after != before:
                changes.append(("edit", {"before": before, "after": after}))
            if locked != was_locked:
                changes.append(("lock" if locked else "unlock", {"lock": locked}))
            for event_type, event_payload in changes:
                con.execute(
                    "INSERT INTO plan_override_events (override_id, version_id, level, key_hash, event_type, "
                    "event_ts, payload_json, actor, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [override_id, version_id, level, key, event_type, now, json.dumps(event_payload), actor, notes],
                )
                events.append(event_type)
            record_write(con, self.write_source, "override", version_id, [(level, 1)], at=now)
        return {"override_id": int(override_id), "events": events}

    def _require_editable(self, con, version_id: str) -> None:
        _require_replannable(con, version_id, action="edited")

    def detail_overrides(self, version_id: str) -> list[dict[str, Any]]:
        """The version's detail-plan overrides: key, payload and lock flag, oldest first."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT key_hash, payload_json, lock_flag FROM plan_overrides "
                "WHERE version_id = ? AND level = 'det' ORDER BY id",
                [version_id],
            ).fetchall()
        return [{"key": r[0], "payload": json.loads(r[1]), "locked": bool(r[2])} for r in rows]

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
