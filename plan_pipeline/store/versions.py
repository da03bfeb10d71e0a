"""Plan versions: their rows, lifecycle, deletion and tombstones."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline.store.backends.postgres import lock_version
from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.errors import PlanConflictError, PlanNotFoundError, PlanStoreError
from plan_pipeline.store.maintenance import insert_version_event, remove_version_in
from plan_pipeline.store.plan_rows import (
    PARAM_FIELDS,
    insert_version_row,
)
from plan_pipeline.store.rules import FROZEN_STATUSES, STATUS_TRANSITIONS, VERSION_STATUSES, check_identifier, is_frozen
from plan_pipeline.store.run_ledger import _active_jobs
from plan_pipeline.store.write_log import VERSION_LEVEL, record_write
from plan_pipeline.timeutil import utc_now as _now


@dataclass(frozen=True)
class VersionRecord:
    version_id: str
    input_set: str | None
    status: str
    read_only: bool
    params: PlanningParameters
    note: str | None
    source: str | None
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "input_set": self.input_set,
            "status": self.status,
            "read_only": self.read_only,
            "parameters": self.params.to_dict(),
            "note": self.note,
            "source": self.source,
            "created_at": self.created_at.isoformat(sep=" ", timespec="seconds"),
            "updated_at": self.updated_at.isoformat(sep=" ", timespec="seconds"),
        }


class VersionRepository(PlanStoreBase):
    def create_version(
        self,
        version_id: str,
        input_set: str | None,
        params: PlanningParameters,
        *,
        status: str = "draft",
        note: str | None = None,
        source: str | None = None,
        read_only: bool = False,
    ) -> VersionRecord:
        check_identifier("version id", version_id)
        if status not in VERSION_STATUSES:
            raise PlanStoreError(f"invalid status {status!r}; one of {', '.join(VERSION_STATUSES)}")
        now = _now()
        with self.write() as con:
            _require_free_id(con, version_id)
            if input_set is not None and not con.execute(
                "SELECT 1 FROM input_sets WHERE label = ?", [input_set]
            ).fetchone():
                raise PlanStoreError(f"unknown input set {input_set!r}; import it first")
            insert_version_row(con, version_id, input_set=input_set, status=status, read_only=read_only,
                               params=params, note=note, source=source, created_at=now, updated_at=now)
            record_write(con, self.write_source, "create", version_id, [(VERSION_LEVEL, 1)], at=now)
        return self.get_version(version_id)

    def duplicate_version(
        self,
        source_id: str,
        version_id: str | None = None,
        *,
        params: PlanningParameters | None = None,
        note: str | None = None,
        actor: str = "system",
        source: str = "duplicate",
    ) -> VersionRecord:
        """A new draft with the source version's input set, parameters (or ``params``) and planner
        edits/locks, in one transaction. ``version_id`` None: the next free generated id
        (:meth:`free_version_id`). The new version's audit trail starts with a ``duplicate`` event
        naming the source; its plan is empty until it is planned. Any status of the source works
        (duplicating an approved plan is how it is re-planned), except a version without an input
        set (imported read-only), which cannot be planned."""
        now = _now()
        with self.write() as con:
            original = self._version_in(con, source_id)
            if original.input_set is None:
                raise PlanStoreError(f"plan version {source_id!r} has no input set (imported read-only version): "
                                     "a duplicate could never be planned")
            if version_id is None:
                version_id = _free_generated_id(_taken_ids(con))
            check_identifier("version id", version_id)
            _require_free_id(con, version_id)
            chosen = original.params if params is None else params  # carried as stored; validated where used
            insert_version_row(con, version_id, input_set=original.input_set, status="draft", read_only=False,
                               params=chosen, note=note or f"duplicate of {source_id}", source=source,
                               created_at=now, updated_at=now)
            copied = con.execute(
                "INSERT INTO plan_overrides (version_id, level, key_hash, payload_json, lock_flag, locked_by, weight, "
                "author, source, created_at, updated_at) SELECT ?, level, key_hash, payload_json, lock_flag, locked_by, "
                "weight, author, source, ?, ? FROM plan_overrides WHERE version_id = ? ORDER BY id RETURNING id",
                [version_id, now, now, source_id],
            ).fetchall()
            insert_version_event(con, version_id, "duplicate", {"from": source_id, "overrides": len(copied)},
                                 actor=actor, notes=note, at=now)
            record_write(con, self.write_source, "duplicate", version_id, [(VERSION_LEVEL, 1 + len(copied))], at=now)
        return self.get_version(version_id)

    def free_version_id(self) -> str:
        """The generated id a new version gets when none is given: ``v<UTC timestamp>``, with
        ``-2``, ``-3`` ... when that id is taken (also by a deleted version: ids are never reused)."""
        return _free_generated_id(self.taken_version_ids())

    def _version_from_row(self, row: tuple, names: list[str]) -> VersionRecord:
        data = dict(zip(names, row))
        params = PlanningParameters.unchecked(**{f: data[f] for f in PARAM_FIELDS})  # validated where used
        return VersionRecord(
            version_id=data["version_id"],
            input_set=data["input_set"],
            status=data["status"],
            read_only=bool(data["read_only"]),
            params=params,
            note=data["note"],
            source=data["source"],
            created_at=data["created_at"],
            updated_at=data["updated_at"],
        )

    def _version_in(self, con, version_id: str) -> VersionRecord:
        """The version's record, read on the caller's connection; PlanNotFoundError if unknown."""
        cur = con.execute("SELECT * FROM plan_versions WHERE version_id = ?", [version_id])
        row = cur.fetchone()
        if row is None:
            raise PlanNotFoundError(f"unknown plan version {version_id!r}")
        return self._version_from_row(row, [d[0] for d in cur.description])

    def get_version(self, version_id: str) -> VersionRecord:
        with self.connect() as con:
            return self._version_in(con, version_id)

    def find_version(self, version_id: str) -> VersionRecord | None:
        try:
            return self.get_version(version_id)
        except PlanStoreError:
            return None

    def list_versions(self) -> list[VersionRecord]:
        with self.connect() as con:
            cur = con.execute("SELECT * FROM plan_versions ORDER BY created_at, version_id")
            rows = cur.fetchall()
            names = [d[0] for d in cur.description]
        return [self._version_from_row(r, names) for r in rows]

    def delete_version(
        self,
        version_id: str,
        *,
        actor: str = "system",
        reason: str = "deleted by request",
        admin: bool = False,
        archive_path: str | None = None,
    ) -> dict[str, int]:
        """Delete a version and everything that hangs off it, children first, in one transaction.

        A frozen version (approved, superseded, imported or read-only) is only deleted as an
        administrator action (``admin``) and only once it has been archived (``archive_path``).
        A version with a queued or running plan run is never deleted. The id keeps a tombstone
        and the audit trail keeps a ``delete`` event, so it is never silently reused.
        Returns the number of rows removed per table.
        """
        with self.write() as con:
            lock_version(con, version_id)
            status, read_only = version_state(con, version_id)
            if is_frozen(status, read_only):
                if not admin:
                    raise PlanConflictError(
                        f"plan version {version_id!r} is {status}{' (read-only)' if read_only else ''}: it is "
                        "frozen and cannot be deleted; an administrator can archive and delete it with "
                        "'plan-pipeline version delete V --admin --reason TEXT'"
                    )
                if not archive_path:
                    raise PlanConflictError(f"plan version {version_id!r} is frozen: archive it before deleting it")
            active = _active_jobs(con, version_id)
            if active:
                raise PlanConflictError(
                    f"plan version {version_id!r} has a plan run in progress ({', '.join(active)}); "
                    "wait for it to finish (or cancel it) before deleting the version"
                )
            return remove_version_in(con, version_id, actor=actor, reason=reason, archive_path=archive_path,
                                     source=self.write_source)

    def taken_version_ids(self) -> set[str]:
        """Ids a new version cannot use: existing versions and deleted ones (ids are never reused)."""
        if not self.is_postgres and not self.path.exists():
            return set()
        with self.connect() as con:
            return _taken_ids(con)

    def tombstone(self, version_id: str) -> dict[str, Any] | None:
        """Why and when a deleted version id went away (None if it never was deleted)."""
        with self.connect() as con:
            cur = con.execute("SELECT * FROM plan_version_tombstones WHERE version_id = ?", [version_id])
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return dict(zip(names, row)) if row else None

    def transition_status(self, version_id: str, to: str, *, actor: str = "system", notes: str | None = None) -> str:
        """Move a version along the plan lifecycle and record the event; returns the old status."""
        event_names = {"submitted": "submit", "approved": "approve", "draft": "reject", "superseded": "supersede"}
        with self.write() as con:
            lock_version(con, version_id)
            current, read_only = version_state(con, version_id)
            if read_only:
                raise PlanConflictError(f"plan version {version_id!r} is read-only ({current}); its status cannot change")
            allowed = STATUS_TRANSITIONS.get(current, ())
            if to not in allowed:
                raise PlanConflictError(
                    f"plan version {version_id!r} is {current}: it cannot become {to} "
                    f"(allowed: {', '.join(allowed) or 'none'})"
                )
            active = _active_jobs(con, version_id)
            if to == "approved" and active:
                raise PlanConflictError(
                    f"plan version {version_id!r} has a plan run in progress ({', '.join(active)}): approval would "
                    "freeze a plan that is still being written; wait for the run to finish, then approve"
                )
            now = _now()
            con.execute("UPDATE plan_versions SET status = ?, updated_at = ? WHERE version_id = ?", [to, now, version_id])
            con.execute(
                "INSERT INTO plan_override_events (override_id, version_id, level, key_hash, event_type, event_ts, "
                "payload_json, actor, notes) VALUES (NULL, ?, 'version', 'version', ?, ?, ?, ?, ?)",
                [version_id, event_names[to], now, json.dumps({"from": current, "to": to}), actor, notes],
            )
            record_write(con, self.write_source, event_names[to], version_id, [(VERSION_LEVEL, 1)], at=now)
        return current


def generated_version_id() -> str:
    """``v<UTC timestamp>``: the id of a version created without one."""
    return "v" + _now().strftime("%Y%m%d-%H%M%S")


def _free_generated_id(taken: set[str]) -> str:
    base = generated_version_id()
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _taken_ids(con) -> set[str]:
    rows = con.execute(
        "SELECT version_id FROM plan_versions UNION SELECT version_id FROM plan_version_tombstones").fetchall()
    return {r[0] for r in rows}


def _require_free_id(con, version_id: str) -> None:
    """Refuse an id that an existing or a deleted version holds (inside the writing transaction)."""
    if con.execute("SELECT 1 FROM plan_versions WHERE version_id = ?", [version_id]).fetchone():
        raise PlanConflictError(f"plan version {version_id!r} already exists")
    gone = con.execute(
        "SELECT deleted_at, actor, reason, archive_path FROM plan_version_tombstones WHERE version_id = ?",
        [version_id],
    ).fetchone()
    if gone is not None:
        where = f"; its archive is {gone[3]} (plan-pipeline restore-archived {version_id})" if gone[3] else ""
        raise PlanConflictError(
            f"plan version id {version_id!r} was deleted on {gone[0]:%Y-%m-%d %H:%M} UTC by {gone[1]} "
            f"({gone[2]}); version ids are never reused, choose another id{where}"
        )


def version_state(con, version_id: str) -> tuple[str, bool]:
    """(status, read_only) of a version, read inside the caller's transaction; unknown ids raise."""
    row = con.execute("SELECT status, read_only FROM plan_versions WHERE version_id = ?", [version_id]).fetchone()
    if row is None:
        raise PlanNotFoundError(f"unknown plan version {version_id!r}")
    return row[0], bool(row[1])


def _require_replannable(con, version_id: str, action: str = "re-planned") -> None:
    """The version exists and is not frozen (checked inside the writing transaction)."""
    status, read_only = version_state(con, version_id)
    if read_only:
        raise PlanConflictError(f"plan version {version_id!r} is read-only ({status}): it cannot be {action}")
    if status in FROZEN_STATUSES:
        raise PlanConflictError(
            f"plan version {version_id!r} is {status}: its plan is frozen and cannot be {action} "
            "(create a new version to change it)"
        )
