"""The plan store repository: every read and write of the DuckDB file goes through here.

Each public write opens a short connection, runs in **one transaction** and closes;
any exception rolls the whole write back, so the previous rows stay intact.
"""
from __future__ import annotations

import json
import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from plan_pipeline.faults import crash_point, pause_point
from plan_pipeline.planning.overrides import OverrideError, check_detail_key, validate_override_payload
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline.planning.types import INPUT_COLUMNS, PlanningInputs
from plan_pipeline.planning.vocabulary import STORED_KPI_COLUMNS
from plan_pipeline.timeutil import utc_now as _now
from plan_pipeline.store.connection import open_connection, transaction
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.layouts import SeriesLayout, dtype_tag, layout_for
from plan_pipeline.store.maintenance import remove_version_in
from plan_pipeline.store.plan_rows import (
    PARAM_FIELDS,
    PLAN_TABLES,
    PUBLISHED,
    STAGED,
    PreparedLevel,
    _insert_kpi_level,
    _insert_series_level,
    _registered,
    insert_version_row,
)
from plan_pipeline.store.unit_of_work import StoreTransaction
from plan_pipeline.store.schema import (
    NUMERIC_INPUT_COLUMNS,
    apply_migrations,
    current_schema_version,
    input_table_name,
)

DB_ENV = "PLAN_PIPELINE_DB"
HOME_ENV = "PLAN_PIPELINE_HOME"
DB_FILE_NAME = "plan_store.duckdb"

IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VERSION_STATUSES = ("draft", "submitted", "approved", "superseded", "imported")
# Frozen versions keep their plan as it is: no edits, no re-plan, no overwrite, no plain delete.
FROZEN_STATUSES = ("approved", "superseded", "imported")
JOB_STATUSES = ("queued", "started", "success", "failure", "canceled")
ACTIVE_JOB_STATUSES = ("queued", "started")
KPI_KEY = ["category", "metric", "bucket_type", "bucket_key"]


def is_frozen(status: str, read_only: bool) -> bool:
    """Approved, superseded, imported and read-only versions are frozen."""
    return bool(read_only) or status in FROZEN_STATUSES


def project_home() -> Path:
    """The project-local data folder (``$PLAN_PIPELINE_HOME`` or ``./.plan_pipeline``)."""
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".plan_pipeline").resolve()


def default_db_path() -> Path:
    """``$PLAN_PIPELINE_DB`` or ``<project home>/plan_store.duckdb``."""
    env = os.environ.get(DB_ENV)
    return Path(env).resolve() if env else project_home() / DB_FILE_NAME


WRITE_MEMORY_LIMIT_ENV = "PLAN_PIPELINE_WRITE_MEMORY_LIMIT"
DEFAULT_WRITE_MEMORY_LIMIT = "256MB"


def bulk_write_memory_limit() -> str:
    """DuckDB memory limit for plan-level writes (``$PLAN_PIPELINE_WRITE_MEMORY_LIMIT``)."""
    value = os.environ.get(WRITE_MEMORY_LIMIT_ENV, DEFAULT_WRITE_MEMORY_LIMIT).strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, re.IGNORECASE):
        raise PlanStoreError(f"{WRITE_MEMORY_LIMIT_ENV}={value!r}: expected a size such as 256MB or 1GB")
    return value


def check_identifier(kind: str, value: str) -> str:
    """Version ids and input-set labels: 1-64 of ``A-Z a-z 0-9 . _ -``, starting alphanumeric.

    This keeps ids safe to use in file names (no path traversal) and in Dagster partition keys.
    """
    if not isinstance(value, str) or not IDENTIFIER_RE.match(value) or ".." in value:
        raise PlanStoreError(
            f"invalid {kind} {value!r}: use 1-64 characters from A-Z a-z 0-9 . _ - "
            "starting with a letter or digit (no '..')"
        )
    return value




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




class PlanStore:
    """Repository facade over one DuckDB file. Cheap to create; opens nothing until used."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).resolve() if path else default_db_path()
        self._migrated = False

    # ------------------------------------------------------------------ connections
    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[Any]:
        if read_only and not self.path.exists():
            raise PlanStoreError(f"plan store {self.path} does not exist yet (import an input set first)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = open_connection(self.path, read_only=read_only)
        try:
            if not read_only:
                # No *vacuuming* (merging row groups that have deletes or few rows) in the
                # checkpoint DuckDB runs when a writing connection closes: after a plan run it
                # cost 0.25-0.5 s per detail-level write, or 0.6 s on the next write, at 5,000
                # SKUs, and changes nothing that is stored. Space is still reused (re-running a
                # version keeps the file size); the trim job's CHECKPOINT compacts with
                # DuckDB's defaults (docs/performance.md, docs/operations.md).
                con.execute("SET max_vacuum_tasks = 0")
            if not read_only and not self._migrated:
                apply_migrations(con)
                self._migrated = True
            yield con
        finally:
            con.close()

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[Any]:
        """A read-write connection inside one transaction.

        ``bulk``: a plan-level rewrite (hundreds of thousands of rows) under a DuckDB memory
        limit (``$PLAN_PIPELINE_WRITE_MEMORY_LIMIT``, default 256MB): DuckDB's parallel
        insert otherwise buffers ~290 MB for one 795k-row MRP level; with the limit it
        flushes row groups earlier, at no measured cost in time. Reads keep DuckDB's default
        limit (a large ordered read cannot spill its result).
        """
        with self.connect() as con:
            if bulk:
                con.execute("SET memory_limit = ?", [bulk_write_memory_limit()])
            with transaction(con):
                yield con

    @contextmanager
    def transaction(self, *, bulk: bool = False) -> Iterator["StoreTransaction"]:
        """A unit of work: every statement called on the yielded object commits together."""
        with self.write(bulk=bulk) as con:
            yield StoreTransaction(con, read_only=False)

    @contextmanager
    def snapshot(self) -> Iterator["StoreTransaction"]:
        """A read-only unit of work: every read sees the same consistent state of the store."""
        with self.connect(read_only=True) as con, transaction(con):
            yield StoreTransaction(con, read_only=True)

    def initialise(self) -> int:
        """Create or upgrade the schema; returns the schema version."""
        with self.connect() as con:
            return current_schema_version(con)

    def schema_version(self) -> int:
        with self.connect() as con:
            return current_schema_version(con)

    # ------------------------------------------------------------------ input sets
    def import_input_set(
        self,
        label: str,
        inputs: PlanningInputs,
        content_hash: str,
        source_path: str | None,
        files: dict[str, Any],
        warnings: list[str],
    ) -> str:
        """Store an immutable input set. Returns ``created`` or ``unchanged``.

        The same content under the same label is a no-op; different content under a
        used label is refused.
        """
        check_identifier("input set label", label)
        with self.write() as con:
            row = con.execute("SELECT content_hash FROM input_sets WHERE label = ?", [label]).fetchone()
            if row is not None:
                if row[0] == content_hash:
                    return "unchanged"
                raise PlanStoreError(
                    f"input set label {label!r} is already used by different content "
                    f"(stored {row[0][:12]}, new {content_hash[:12]}); input sets are immutable, "
                    "import under a new label"
                )
            con.execute(
                "INSERT INTO input_sets VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    label,
                    content_hash,
                    source_path,
                    json.dumps(files, sort_keys=True),
                    json.dumps(inputs.calendar) if inputs.calendar is not None else None,
                    json.dumps(warnings, ensure_ascii=False),
                    _now(),
                ],
            )
            for name, columns in INPUT_COLUMNS.items():
                frame = inputs.table(name)
                if frame is None or len(frame) == 0:
                    continue
                incoming = frame[columns].copy()
                incoming.insert(0, "row_no", range(2, len(incoming) + 2))
                incoming.insert(0, "input_set", label)
                for col in columns:
                    if col not in NUMERIC_INPUT_COLUMNS[name]:
                        incoming[col] = incoming[col].astype(str)
                with _registered(con, "incoming_rows", incoming):
                    con.execute(f"INSERT INTO {input_table_name(name)} SELECT * FROM incoming_rows")
        return "created"

    def get_input_set(self, label: str) -> dict[str, Any] | None:
        with self.connect() as con:
            row = con.execute(
                "SELECT label, content_hash, source_path, files_json, warnings_json, imported_at "
                "FROM input_sets WHERE label = ?",
                [label],
            ).fetchone()
        if row is None:
            return None
        return {
            "label": row[0],
            "content_hash": row[1],
            "source_path": row[2],
            "files": json.loads(row[3]),
            "warnings": json.loads(row[4]),
            "imported_at": row[5],
        }

    def list_input_sets(self) -> list[dict[str, Any]]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT label, content_hash, imported_at, source_path FROM input_sets ORDER BY imported_at, label"
            ).fetchall()
        return [dict(zip(["label", "content_hash", "imported_at", "source_path"], r)) for r in rows]

    def load_input_set(self, label: str) -> PlanningInputs:
        """Read an input set back as :class:`PlanningInputs` (file row order kept)."""
        with self.connect() as con:
            head = con.execute("SELECT calendar_json FROM input_sets WHERE label = ?", [label]).fetchone()
            if head is None:
                raise PlanStoreError(f"unknown input set {label!r}")
            tables = {}
            for name, columns in INPUT_COLUMNS.items():
                frame = con.execute(
                    f"SELECT {', '.join(columns)} FROM {input_table_name(name)} "
                    "WHERE input_set = ? ORDER BY row_no",
                    [label],
                ).df()
                for col in columns:
                    if col in NUMERIC_INPUT_COLUMNS[name]:
                        frame[col] = frame[col].astype("float64")
                    else:
                        frame[col] = frame[col].astype(object)
                tables[name] = frame.reset_index(drop=True)
        calendar = json.loads(head[0]) if head[0] is not None else None
        return PlanningInputs(calendar=calendar, **tables)

    # ------------------------------------------------------------------ versions
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
            if con.execute("SELECT 1 FROM plan_versions WHERE version_id = ?", [version_id]).fetchone():
                raise PlanStoreError(f"plan version {version_id!r} already exists")
            gone = con.execute(
                "SELECT deleted_at, actor, reason, archive_path FROM plan_version_tombstones WHERE version_id = ?",
                [version_id],
            ).fetchone()
            if gone is not None:
                where = f"; its archive is {gone[3]} (plan-pipeline restore-archived {version_id})" if gone[3] else ""
                raise PlanStoreError(
                    f"plan version id {version_id!r} was deleted on {gone[0]:%Y-%m-%d %H:%M} UTC by {gone[1]} "
                    f"({gone[2]}); version ids are never reused, choose another id{where}"
                )
            if input_set is not None and not con.execute(
                "SELECT 1 FROM input_sets WHERE label = ?", [input_set]
            ).fetchone():
                raise PlanStoreError(f"unknown input set {input_set!r}; import it first")
            insert_version_row(con, version_id, input_set=input_set, status=status, read_only=read_only,
                               params=params, note=note, source=source, created_at=now, updated_at=now)
        return self.get_version(version_id)

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

    def get_version(self, version_id: str) -> VersionRecord:
        with self.connect() as con:
            cur = con.execute("SELECT * FROM plan_versions WHERE version_id = ?", [version_id])
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        if row is None:
            raise PlanStoreError(f"unknown plan version {version_id!r}")
        return self._version_from_row(row, names)

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
            row = con.execute(
                "SELECT status, read_only FROM plan_versions WHERE version_id = ?", [version_id]
            ).fetchone()
            if row is None:
                raise PlanStoreError(f"unknown plan version {version_id!r}")
            status, read_only = row
            if is_frozen(status, read_only):
                if not admin:
                    raise PlanStoreError(
                        f"plan version {version_id!r} is {status}{' (read-only)' if read_only else ''}: it is "
                        "frozen and cannot be deleted; an administrator can archive and delete it with "
                        "'plan-pipeline version delete V --admin --reason TEXT'"
                    )
                if not archive_path:
                    raise PlanStoreError(f"plan version {version_id!r} is frozen: archive it before deleting it")
            active = _active_jobs(con, version_id)
            if active:
                raise PlanStoreError(
                    f"plan version {version_id!r} has a plan run in progress ({', '.join(active)}); "
                    "wait for it to finish (or cancel it) before deleting the version"
                )
            return remove_version_in(con, version_id, actor=actor, reason=reason, archive_path=archive_path)

    def taken_version_ids(self) -> set[str]:
        """Ids a new version cannot use: existing versions and deleted ones (ids are never reused)."""
        if not self.path.exists():
            return set()
        with self.connect() as con:
            rows = con.execute(
                "SELECT version_id FROM plan_versions UNION SELECT version_id FROM plan_version_tombstones"
            ).fetchall()
        return {r[0] for r in rows}

    def tombstone(self, version_id: str) -> dict[str, Any] | None:
        """Why and when a deleted version id went away (None if it never was deleted)."""
        with self.connect() as con:
            cur = con.execute("SELECT * FROM plan_version_tombstones WHERE version_id = ?", [version_id])
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return dict(zip(names, row)) if row else None

    # ------------------------------------------------------------------ plan levels: staging and publication
    #
    # A plan run *stages* every level it computes: its rows go into plan_series / plan_kpis
    # stamped with the run id, next to the version's published rows, and a plan_levels row
    # says (version, level, run) is staged. Nothing a reader sees changes. When the run has
    # staged every level of the plan, publish_run switches the version's published levels to
    # that run's in ONE transaction and drops every other run's rows of the version. A run
    # that fails or dies half-way leaves the previous plan published and readable.

    def stage_series(
        self,
        version_id: str,
        level: str,
        frame: pd.DataFrame,
        *,
        run_id: str,
        job: dict[str, Any] | None = None,
        _fault: Callable[[Any], None] | None = None,
    ) -> int:
        """Stage the rows of one (version, level) written by plan run ``run_id`` (one transaction).

        Refused when the version is frozen (approved, superseded, imported). ``job``: the run's
        ``plan_jobs`` row, upserted in the same transaction. ``_fault``: a test hook called
        after the rows are inserted, before the commit.
        """
        prepared = prepare_series_level(level, frame)
        with self.write(bulk=True) as con:
            _require_replannable(con, version_id)
            _drop_run_level(con, version_id, level, run_id)
            _insert_series_level(con, version_id, prepared, run_id, STAGED, _now())
            if _fault is not None:
                _fault(con)
            if job is not None:
                _upsert_jobs(con, [job])
        crash_point(f"stage.after_commit:{level}")
        pause_point(f"stage.after_commit:{level}")
        return prepared.row_count

    def stage_kpis(
        self,
        version_id: str,
        level: str,
        frame: pd.DataFrame,
        *,
        run_id: str,
        source: str | None = None,
        job: dict[str, Any] | None = None,
    ) -> int:
        """Stage the KPI rows of one (version, level) written by plan run ``run_id`` (one transaction)."""
        prepared = prepare_kpi_level(level, frame, source=source)
        with self.write(bulk=True) as con:
            _require_replannable(con, version_id)
            _drop_run_level(con, version_id, level, run_id)
            _insert_kpi_level(con, version_id, prepared, run_id, STAGED, _now())
            if job is not None:
                _upsert_jobs(con, [job])
        crash_point(f"stage.after_commit:{level}")
        return prepared.row_count

    def stage_not_applicable(
        self, version_id: str, level: str, table: str, *, run_id: str, job: dict[str, Any] | None = None
    ) -> None:
        """Record that a stage does not apply to this version in run ``run_id`` (no rows).

        Publication then removes the level from the version's plan (e.g. an anchored branch a
        version no longer has).
        """
        if table not in PLAN_TABLES:
            raise PlanStoreError(f"unknown plan table {table!r}")
        with self.write() as con:
            _require_replannable(con, version_id)
            _drop_run_level(con, version_id, level, run_id)
            con.execute(
                "INSERT INTO plan_levels (version_id, level, run_id, table_name, state, applicable, columns_json, "
                "attrs_json, row_count, written_at) VALUES (?, ?, ?, ?, ?, FALSE, NULL, '{}', 0, ?)",
                [version_id, level, run_id, table, STAGED, _now()],
            )
            if job is not None:
                _upsert_jobs(con, [job])

    def publish_run(self, version_id: str, run_ids: list[str], required_levels: list[str]) -> "Publication":
        """Make the levels staged by ``run_ids`` the version's plan, in one transaction.

        ``run_ids``: the publishing run first, then the runs it re-executes (parent, grandparent,
        ...); for each level the first of them that staged it wins. Every level in
        ``required_levels`` must have been staged (possibly as not applicable), otherwise nothing
        changes: a plan is published whole. The version is re-checked: a version approved (or
        otherwise frozen) while the run was computing is refused. Everything else of the version
        -- the previous plan, levels of other finished runs -- is removed in the same transaction;
        levels staged by other runs still in progress are kept.
        """
        if not run_ids:
            raise PlanStoreError("publish_run needs the publishing run id")
        crash_point("publish.before_transaction")
        now = _now()
        with self.write(bulk=True) as con:
            _require_replannable(con, version_id)
            staged = con.execute(
                "SELECT level, run_id, table_name, applicable, row_count FROM plan_levels "
                "WHERE version_id = ? AND state = ? AND list_contains(?::VARCHAR[], run_id)",
                [version_id, STAGED, list(run_ids)],
            ).fetchall()
            rank = {run: i for i, run in enumerate(run_ids)}
            chosen: dict[str, tuple] = {}
            for level, run, table, applicable, count in sorted(staged, key=lambda r: rank[r[1]]):
                chosen.setdefault(level, (run, table, bool(applicable), int(count)))
            missing = [lvl for lvl in required_levels if lvl not in chosen]
            if missing:
                raise PlanStoreError(
                    f"run {run_ids[0]} did not write level(s) {', '.join(missing)} of plan version {version_id!r}: "
                    "a plan is published whole, so the version keeps its previous plan. Materialize every plan "
                    "asset of the version (plan_job, or 'plan-pipeline materialize V')"
                )
            keep_runs = set(_active_jobs(con, version_id, exclude=run_ids))
            entries = con.execute(
                "SELECT level, run_id, state FROM plan_levels WHERE version_id = ?", [version_id]
            ).fetchall()
            chosen_pairs = {(level, c[0]) for level, c in chosen.items()}
            dropped = [(level, run) for level, run, state in entries if (level, run) not in chosen_pairs
                       and not (state == STAGED and run in keep_runs)]
            # rows go by run where a run loses every level, else by (level, run): plain filtered
            # scans (no join), so the delete stays within the write memory limit at any size
            kept_by_run = {run for _, run in chosen_pairs} | keep_runs
            whole_runs = sorted({run for _, run in dropped if run not in kept_by_run})
            partial = sorted({(level, run) for level, run in dropped if run in kept_by_run})
            removed = {table: 0 for table in PLAN_TABLES}
            for table in PLAN_TABLES:
                if whole_runs:
                    removed[table] += con.execute(
                        f"DELETE FROM {table} WHERE version_id = ? AND list_contains(?::VARCHAR[], source_run_id)",
                        [version_id, whole_runs],
                    ).fetchone()[0]
                for level, run in partial:
                    removed[table] += con.execute(
                        f"DELETE FROM {table} WHERE version_id = ? AND level = ? AND source_run_id = ?",
                        [version_id, level, run],
                    ).fetchone()[0]
            for level, run in dropped:
                con.execute("DELETE FROM plan_levels WHERE version_id = ? AND level = ? AND run_id = ?",
                            [version_id, level, run])
            con.executemany(
                "UPDATE plan_levels SET state = ?, published_at = ? WHERE version_id = ? AND level = ? AND run_id = ?",
                [[PUBLISHED, now, version_id, level, run] for level, run in sorted(chosen_pairs)],
            )
            crash_point("publish.before_commit")
        crash_point("publish.after_commit")
        levels = {lvl: c[3] for lvl, c in chosen.items() if c[2]}
        return Publication(version_id, run_ids[0], sorted({c[0] for c in chosen.values()}), levels,
                           sorted(lvl for lvl, c in chosen.items() if not c[2]), removed, now)

    def replace_series(
        self,
        version_id: str,
        level: str,
        frame: pd.DataFrame,
        *,
        run_id: str | None = None,
        job: dict[str, Any] | None = None,
        _fault: Callable[[Any], None] | None = None,
    ) -> int:
        """Write and publish one level directly, outside a plan run (administration, imports, tests).

        The level's previous published rows are replaced atomically; other levels are untouched.
        ``_fault`` is a test hook called after the new rows are inserted, before the commit.
        """
        prepared = prepare_series_level(level, frame)
        with self.write(bulk=True) as con:
            self._require_version(con, version_id)
            _drop_published_level(con, version_id, level)
            _insert_series_level(con, version_id, prepared, run_id or direct_write_id(), PUBLISHED, _now())
            if _fault is not None:
                _fault(con)
            if job is not None:
                _upsert_jobs(con, [job])
        return prepared.row_count

    def replace_kpis(
        self,
        version_id: str,
        level: str,
        frame: pd.DataFrame,
        *,
        run_id: str | None = None,
        source: str | None = None,
        job: dict[str, Any] | None = None,
    ) -> int:
        """Write and publish one KPI level directly, outside a plan run (see :meth:`replace_series`)."""
        prepared = prepare_kpi_level(level, frame, source=source)
        with self.write(bulk=True) as con:
            self._require_version(con, version_id)
            _drop_published_level(con, version_id, level)
            _insert_kpi_level(con, version_id, prepared, run_id or direct_write_id(), PUBLISHED, _now())
            if job is not None:
                _upsert_jobs(con, [job])
        return prepared.row_count

    def _level_entry(self, con, version_id: str, level: str, run_id: str | None) -> tuple | None:
        if run_id is None:
            return con.execute(
                "SELECT run_id, table_name, applicable, columns_json, attrs_json, state FROM plan_levels "
                "WHERE version_id = ? AND level = ? AND state = ?",
                [version_id, level, PUBLISHED],
            ).fetchone()
        return con.execute(
            "SELECT run_id, table_name, applicable, columns_json, attrs_json, state FROM plan_levels "
            "WHERE version_id = ? AND level = ? AND run_id = ?",
            [version_id, level, run_id],
        ).fetchone()

    def level_state(self, version_id: str, level: str, run_id: str | None = None) -> str | None:
        """``'staged'`` / ``'published'`` / ``'not_applicable'`` for (version, level[, run]); None if absent.

        Without ``run_id``: the published level.
        """
        with self.connect() as con:
            entry = self._level_entry(con, version_id, level, run_id)
        if entry is None:
            return None
        return entry[5] if entry[2] else "not_applicable"

    def publication(self, version_id: str) -> dict[str, Any]:
        """The version's published plan (runs, time, levels with rows) and the runs staged beside it."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT level, run_id, table_name, state, applicable, row_count, written_at, published_at "
                "FROM plan_levels WHERE version_id = ? ORDER BY level, run_id",
                [version_id],
            ).fetchall()
        published = [r for r in rows if r[3] == PUBLISHED]
        staged = sorted({r[1] for r in rows if r[3] == STAGED})
        return {
            "complete": bool(published),
            "runs": sorted({r[1] for r in published}),
            "published_at": max((r[7] for r in published if r[7] is not None), default=None),
            "levels": {r[0]: int(r[5]) for r in published if r[4] and r[2] == "plan_series"},
            "kpi_levels": {r[0]: int(r[5]) for r in published if r[4] and r[2] == "plan_kpis"},
            "not_applicable": [r[0] for r in published if not r[4]],
            "staged_runs": staged,
        }

    def series_levels(self, version_id: str) -> dict[str, int]:
        """The published plan_series levels of a version with their row counts."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT level, row_count FROM plan_levels WHERE version_id = ? AND state = ? "
                "AND table_name = 'plan_series' AND applicable ORDER BY level",
                [version_id, PUBLISHED],
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def has_series(self, version_id: str, level: str) -> bool:
        return level in self.series_levels(version_id)

    def read_series(self, version_id: str, level: str, *, run_id: str | None = None) -> pd.DataFrame:
        """The frame of (version, level): same columns, dtypes and row order as written.

        Without ``run_id`` the published level; with it, the level as that run wrote it
        (staged or published).
        """
        layout = layout_for(level)
        with self.connect() as con:
            entry = self._level_entry(con, version_id, level, run_id)
            if entry is None or not entry[2] or entry[1] != "plan_series":
                which = "published plan" if run_id is None else f"run {run_id}"
                raise PlanStoreError(f"plan version {version_id!r} has no rows at level {level!r} in its {which}")
            columns = json.loads(entry[3])
            sql = _read_series_sql(layout, columns)
            frame = con.execute(sql, [version_id, level, entry[0]]).df()
        frame = _restore_dtypes(frame, columns)
        frame.attrs.update(json.loads(entry[4]))
        return frame

    def read_series_rows(self, version_id: str, level: str | None = None) -> pd.DataFrame:
        """Raw published ``plan_series`` rows (for exports and inspection) in natural order."""
        sql = "SELECT * EXCLUDE (created_at, updated_at) FROM plan_series_current WHERE version_id = ?"
        args: list[Any] = [version_id]
        if level:
            sql += " AND level = ?"
            args.append(level)
        sql += " ORDER BY level, row_seq"
        with self.connect() as con:
            return con.execute(sql, args).df()

    def read_kpis(self, version_id: str, level: str | None = None, *, run_id: str | None = None) -> pd.DataFrame:
        """Published KPI rows of a version (one level or all); with ``run_id`` that run's level."""
        columns = "level, category, metric, bucket_type, bucket_key, value, unit, source, source_run_id"
        with self.connect() as con:
            if level is None:
                return con.execute(
                    f"SELECT {columns} FROM plan_kpis_current WHERE version_id = ? ORDER BY level, row_seq",
                    [version_id],
                ).df()
            entry = self._level_entry(con, version_id, level, run_id)
            if entry is None or not entry[2] or entry[1] != "plan_kpis":
                which = "published plan" if run_id is None else f"run {run_id}"
                raise PlanStoreError(f"plan version {version_id!r} has no KPIs at level {level!r} in its {which}")
            return con.execute(
                f"SELECT {columns} FROM plan_kpis WHERE version_id = ? AND level = ? AND source_run_id = ? "
                "ORDER BY row_seq",
                [version_id, level, entry[0]],
            ).df()

    def has_kpis(self, version_id: str, level: str) -> bool:
        with self.connect() as con:
            entry = self._level_entry(con, version_id, level, None)
        return entry is not None and bool(entry[2]) and entry[1] == "plan_kpis"

    def active_jobs(self, version_id: str) -> list[str]:
        """Run ids of the version's plan_jobs rows that are queued or started."""
        with self.connect() as con:
            return _active_jobs(con, version_id)

    # ------------------------------------------------------------------ overrides and audit
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
        return {"override_id": int(override_id), "events": events}

    # Allowed plan status transitions: draft -> submitted -> approved; a submitted plan can be
    # sent back to draft; an approved plan can only be superseded (edits are frozen).
    STATUS_TRANSITIONS = {
        "draft": ("submitted",),
        "submitted": ("approved", "draft"),
        "approved": ("superseded",),
    }

    def transition_status(self, version_id: str, to: str, *, actor: str = "system", notes: str | None = None) -> str:
        """Move a version along the plan lifecycle and record the event; returns the old status."""
        event_names = {"submitted": "submit", "approved": "approve", "draft": "reject", "superseded": "supersede"}
        with self.write() as con:
            row = con.execute(
                "SELECT status, read_only FROM plan_versions WHERE version_id = ?", [version_id]
            ).fetchone()
            if row is None:
                raise PlanStoreError(f"unknown plan version {version_id!r}")
            current, read_only = row
            if read_only:
                raise PlanStoreError(f"plan version {version_id!r} is read-only ({current}); its status cannot change")
            allowed = self.STATUS_TRANSITIONS.get(current, ())
            if to not in allowed:
                raise PlanStoreError(
                    f"plan version {version_id!r} is {current}: it cannot become {to} "
                    f"(allowed: {', '.join(allowed) or 'none'})"
                )
            active = _active_jobs(con, version_id)
            if to == "approved" and active:
                raise PlanStoreError(
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
        return current

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

    # ------------------------------------------------------------------ jobs
    def upsert_jobs(self, jobs: list[dict[str, Any]]) -> int:
        """Insert or update ``plan_jobs`` rows (job_id = Dagster run id). Unknown versions are skipped."""
        if not jobs:
            return 0
        with self.write() as con:
            return _upsert_jobs(con, jobs)

    def list_jobs(self, version_id: str | None = None) -> pd.DataFrame:
        sql = "SELECT * FROM plan_jobs"
        args: list[Any] = []
        if version_id:
            sql += " WHERE version_id = ?"
            args.append(version_id)
        sql += " ORDER BY submitted_at DESC NULLS LAST, job_id"
        with self.connect() as con:
            return con.execute(sql, args).df()

    def open_jobs(self) -> list[str]:
        """Run ids of every ``plan_jobs`` row still queued or started."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT job_id FROM plan_jobs WHERE list_contains(?::VARCHAR[], status) ORDER BY job_id",
                [list(ACTIVE_JOB_STATUSES)],
            ).fetchall()
        return [r[0] for r in rows]

    def close_jobs(self, job_ids: list[str], status: str, error: str) -> int:
        """Give still-open ``plan_jobs`` rows a final status and error text (crash recovery)."""
        if status not in JOB_STATUSES or status in ACTIVE_JOB_STATUSES:
            raise PlanStoreError(f"close_jobs needs a final status, got {status!r}")
        with self.write() as con:
            return len(con.execute(
                "UPDATE plan_jobs SET status = ?, error = coalesce(error, ?), finished_at = coalesce(finished_at, ?), "
                "updated_at = ? WHERE list_contains(?::VARCHAR[], job_id) AND list_contains(?::VARCHAR[], status) "
                "RETURNING 1",
                [status, error, _now(), _now(), list(job_ids), list(ACTIVE_JOB_STATUSES)],
            ).fetchall())

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self.connect() as con:
            cur = con.execute("SELECT * FROM plan_jobs WHERE job_id = ?", [job_id])
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return dict(zip(names, row)) if row else None

    # ------------------------------------------------------------------ artifacts
    def put_artifact(self, version_id: str, name: str, document: Any, source: str | None = None) -> None:
        with self.write() as con:
            self._require_version(con, version_id)
            con.execute(
                "INSERT INTO plan_artifacts VALUES (?, ?, ?, ?, ?) ON CONFLICT (version_id, name) "
                "DO UPDATE SET json_text = excluded.json_text, source = excluded.source, created_at = excluded.created_at",
                [version_id, name, json.dumps(document, ensure_ascii=False), source, _now()],
            )

    def get_artifact(self, version_id: str, name: str) -> Any | None:
        with self.connect() as con:
            row = con.execute(
                "SELECT json_text FROM plan_artifacts WHERE version_id = ? AND name = ?", [version_id, name]
            ).fetchone()
        return json.loads(row[0]) if row else None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _require_version(con, version_id: str) -> None:
        if not con.execute("SELECT 1 FROM plan_versions WHERE version_id = ?", [version_id]).fetchone():
            raise PlanStoreError(f"unknown plan version {version_id!r}")

    def table_counts(self) -> dict[str, int]:
        with self.connect() as con:
            names = [
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name"
                ).fetchall()
            ]
            return {n: int(con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names}


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (datetime,)):
        return value.isoformat()
    raise TypeError(f"frame attribute of type {type(value).__name__} is not JSON serialisable")


def attrs_json(attrs: dict) -> str:
    """A frame's ``attrs`` (stage metadata such as summaries) as JSON, stored beside its rows."""
    return json.dumps(attrs or {}, ensure_ascii=False, default=_json_default)


# ---------------------------------------------------------------------- jobs
JOB_COLUMNS = [
    "job_id", "version_id", "job_name", "status", "trigger", "submitted_at", "started_at",
    "finished_at", "duration_ms", "error", "tags_json",
]


def _upsert_jobs(con, jobs: list[dict[str, Any]]) -> int:
    now = _now()
    written = 0
    known = {r[0] for r in con.execute("SELECT version_id FROM plan_versions").fetchall()}
    updates = ", ".join(f"{c} = excluded.{c}" for c in JOB_COLUMNS[1:])
    for job in jobs:
        if job.get("status") not in JOB_STATUSES:
            raise PlanStoreError(f"invalid job status {job.get('status')!r}")
        if job["version_id"] not in known:
            continue
        values = [job.get(c) for c in JOB_COLUMNS[:-1]] + [json.dumps(job.get("tags") or {}, sort_keys=True)]
        con.execute(
            f"INSERT INTO plan_jobs ({', '.join(JOB_COLUMNS)}, updated_at) "
            f"VALUES ({', '.join('?' * len(JOB_COLUMNS))}, ?) "
            f"ON CONFLICT (job_id) DO UPDATE SET {updates}, updated_at = excluded.updated_at",
            [*values, now],
        )
        written += 1
    return written


def _active_jobs(con, version_id: str, exclude: list[str] | tuple = ()) -> list[str]:
    rows = con.execute(
        "SELECT job_id FROM plan_jobs WHERE version_id = ? AND list_contains(?::VARCHAR[], status) "
        "AND NOT list_contains(?::VARCHAR[], job_id) ORDER BY submitted_at NULLS LAST, job_id",
        [version_id, list(ACTIVE_JOB_STATUSES), list(exclude)],
    ).fetchall()
    return [r[0] for r in rows]


def _require_replannable(con, version_id: str, action: str = "re-planned") -> None:
    """The version exists and is not frozen (checked inside the writing transaction)."""
    row = con.execute("SELECT status, read_only FROM plan_versions WHERE version_id = ?", [version_id]).fetchone()
    if row is None:
        raise PlanStoreError(f"unknown plan version {version_id!r}")
    status, read_only = row
    if read_only:
        raise PlanStoreError(f"plan version {version_id!r} is read-only ({status}): it cannot be {action}")
    if status in FROZEN_STATUSES:
        raise PlanStoreError(
            f"plan version {version_id!r} is {status}: its plan is frozen and cannot be {action} "
            "(create a new version to change it)"
        )


def direct_write_id() -> str:
    """Run id stamped on a level written outside a Dagster run."""
    return f"direct-{uuid.uuid4()}"


@dataclass(frozen=True)
class Publication:
    """What :meth:`PlanStore.publish_run` switched."""

    version_id: str
    run_id: str
    runs: list[str]
    levels: dict[str, int]
    not_applicable: list[str]
    removed: dict[str, int]
    published_at: datetime


def prepare_series_level(level: str, frame: pd.DataFrame) -> PreparedLevel:
    prepared, columns_meta, sql = _prepare_series(layout_for(level), frame)
    return PreparedLevel(level, "plan_series", prepared, len(prepared), json.dumps(columns_meta),
                         attrs_json(frame.attrs), sql)


def prepare_kpi_level(level: str, frame: pd.DataFrame, *, source: str | None = None) -> PreparedLevel:
    """Check a KPI frame (columns, non-empty unique keys, numeric values) and lay it out."""
    if not isinstance(frame, pd.DataFrame):
        raise PlanStoreError(f"KPI level {level!r} expects a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in STORED_KPI_COLUMNS if c not in frame.columns]
    if missing:
        raise PlanStoreError(f"KPI frame for level {level!r} lacks column(s): {', '.join(missing)}")
    incoming = frame[STORED_KPI_COLUMNS].copy().reset_index(drop=True)
    for col in KPI_KEY:
        if incoming[col].isna().any():
            raise PlanStoreError(f"KPI column {col!r} has empty values (level {level!r})")
        incoming[col] = incoming[col].astype(str)
    duplicated = incoming.duplicated(KPI_KEY)
    if duplicated.any():
        first = incoming.loc[duplicated.idxmax(), KPI_KEY]
        raise PlanStoreError(f"KPI level {level!r}: duplicate key ({', '.join(f'{c}={first[c]!r}' for c in KPI_KEY)})")
    incoming["value"] = pd.to_numeric(incoming["value"], errors="raise").astype("float64")
    incoming["unit"] = incoming["unit"].astype(object).where(incoming["unit"].notna(), None)
    incoming.insert(0, "row_seq", range(len(incoming)))
    return PreparedLevel(level, "plan_kpis", incoming, len(incoming), None, "{}", source=source or level)


def _drop_run_level(con, version_id: str, level: str, run_id: str) -> None:
    """Remove what ``run_id`` staged earlier for (version, level) (a step retried in the same run)."""
    state = con.execute(
        "SELECT state FROM plan_levels WHERE version_id = ? AND level = ? AND run_id = ?", [version_id, level, run_id]
    ).fetchone()
    if state is None:
        return
    if state[0] == PUBLISHED:
        raise PlanStoreError(f"run {run_id} already published level {level!r} of plan version {version_id!r}")
    for table in PLAN_TABLES:
        con.execute(f"DELETE FROM {table} WHERE version_id = ? AND level = ? AND source_run_id = ?",
                    [version_id, level, run_id])
    con.execute("DELETE FROM plan_levels WHERE version_id = ? AND level = ? AND run_id = ?", [version_id, level, run_id])


def _drop_published_level(con, version_id: str, level: str) -> None:
    row = con.execute(
        "SELECT run_id FROM plan_levels WHERE version_id = ? AND level = ? AND state = ?", [version_id, level, PUBLISHED]
    ).fetchone()
    if row is None:
        return
    for table in PLAN_TABLES:
        con.execute(f"DELETE FROM {table} WHERE version_id = ? AND level = ? AND source_run_id = ?",
                    [version_id, level, row[0]])
    con.execute("DELETE FROM plan_levels WHERE version_id = ? AND level = ? AND run_id = ?", [version_id, level, row[0]])


# ---------------------------------------------------------------------- series mapping
def _quote(name: str) -> str:
    if not COLUMN_RE.match(name):
        raise PlanStoreError(f"column name {name!r} is not a plain identifier")
    return f'"{name}"'


def _check_keys(layout: SeriesLayout, frame: pd.DataFrame) -> None:
    """Bucket and item keys are never empty, and the plan_series key (bucket, period, item) is
    unique within one (version, level).

    Checked in pandas before any transaction opens: each key column is factorized once
    (which also finds empty values), the codes are combined into one integer per row and
    counted (~0.05 s for a 795k-row MRP level). Only the error path looks for the
    duplicate's values to name it.
    """
    keys = [c for c in (layout.bucket_key, layout.period_key, layout.item_key) if c]
    combined: np.ndarray | None = None
    size = 1
    for col in keys:
        codes, uniques = pd.factorize(frame[col])
        codes = codes.astype(np.int64, copy=False)
        n = len(uniques)
        if col == layout.period_key:
            # no period and '' are the same period key in plan_series
            blank = np.flatnonzero(np.asarray(uniques, dtype=object) == "")
            codes = np.where(codes < 0, blank[0] if len(blank) else n, codes)
            n += 1
        elif len(codes) and codes.min() < 0:
            raise PlanStoreError(f"level {layout.level!r}: key column {col!r} has empty values")
        if combined is None:
            combined, size = codes, max(n, 1)
        else:
            combined, size = combined * n + codes, size * max(n, 1)
            if size > 2**40:  # keep the combined code small: renumber it densely
                combined, dense = pd.factorize(combined)
                size = max(len(dense), 1)
    if combined is None or len(combined) < 2:
        return
    if size <= 8 * len(combined) + 1024:
        has_duplicate = bool(np.bincount(combined, minlength=size).max() > 1)
    else:
        has_duplicate = len(pd.unique(combined)) < len(combined)
    if not has_duplicate:
        return
    key_frame = frame[keys]
    if layout.period_key:
        key_frame = key_frame.assign(**{layout.period_key: key_frame[layout.period_key].astype(object)
                                        .where(key_frame[layout.period_key].notna(), "")})
    duplicated = key_frame.duplicated(keep=False).to_numpy()
    first = int(np.flatnonzero(duplicated)[0])
    values = key_frame.iloc[first]
    same = (key_frame == values).all(axis=1).sum()
    shown = ", ".join(f"{c}={values[c]!r}" for c in keys)
    raise PlanStoreError(f"level {layout.level!r}: duplicate key ({shown}) appears {int(same)} times; "
                         "each (bucket, period, item) must be unique")


def _same_values(a: pd.Series, b: pd.Series) -> bool:
    """``a`` equals ``b`` element-wise; free when both are the same array (MRP ``sku`` = ``item``)."""
    left, right = a.to_numpy(), b.to_numpy()
    if (left.shape == right.shape and left.strides == right.strides
            and left.__array_interface__["data"][0] == right.__array_interface__["data"][0]):
        return True
    return bool((left.astype(object, copy=False) == right.astype(object, copy=False)).all())


def _prepare_series(layout: SeriesLayout, frame: pd.DataFrame):
    """Validate ``frame`` for ``layout`` and build the INSERT ... SELECT statement."""
    if not isinstance(frame, pd.DataFrame):
        raise PlanStoreError(f"level {layout.level!r} expects a pandas DataFrame, got {type(frame).__name__}")
    required = layout.key_columns() + [df_col for _, df_col in layout.measures if df_col not in layout.optional]
    missing = [c for c in dict.fromkeys(required) if c not in frame.columns]
    if missing:
        raise PlanStoreError(f"level {layout.level!r}: frame lacks column(s) {', '.join(missing)}")
    for col in frame.columns:
        _quote(col)
    _check_keys(layout, frame)
    columns_meta = [{"name": c, "dtype": dtype_tag(frame[c])} for c in frame.columns]
    # A shallow copy: the stage's column arrays are scanned by DuckDB in place, not copied.
    prepared = frame.copy(deep=False)
    prepared.index = pd.RangeIndex(len(prepared))
    prepared["__seq"] = np.arange(len(prepared), dtype=np.int64)

    for alias, original in layout.aliases:
        if alias in frame.columns and original in frame.columns:
            if not _same_values(frame[alias], frame[original]):
                raise PlanStoreError(f"level {layout.level!r}: column {alias!r} must equal {original!r}")
    used = set(layout.key_columns()) | {df_col for _, df_col in layout.measures}
    used |= {alias for alias, original in layout.aliases if alias in frame.columns and original in frame.columns}
    if layout.zone:
        used.add(layout.zone)
    if layout.window_index:
        used.add(layout.window_index)
    extras = [c for c in frame.columns if c not in used]
    bucket = _quote(layout.bucket_key)
    if layout.bucket_type == "auto":
        bucket_type = (
            f"CASE WHEN regexp_matches(CAST({bucket} AS VARCHAR), '^[0-9]{{4}}-[0-9]{{2}}$') THEN 'month' "
            f"WHEN regexp_matches(CAST({bucket} AS VARCHAR), 'W[0-9]+$') THEN 'week' ELSE 'period' END"
        )
    else:
        bucket_type = f"'{layout.bucket_type}'"
    item = f"CAST({_quote(layout.item_key)} AS VARCHAR)" if layout.item_key else f"'{layout.item_const}'"
    period = f"coalesce(CAST({_quote(layout.period_key)} AS VARCHAR), '')" if layout.period_key else "''"
    family = f"CAST({_quote(layout.family_key)} AS VARCHAR)" if layout.family_key else "NULL"
    zone = (
        f"CAST({_quote(layout.zone)} AS VARCHAR)" if layout.zone and layout.zone in frame.columns else "NULL"
    )
    window = (
        f"CAST({_quote(layout.window_index)} AS INTEGER)"
        if layout.window_index and layout.window_index in frame.columns
        else "NULL"
    )
    measure_cols = [s for s, _ in layout.measures]
    measure_vals = [f"CAST({_quote(d)} AS DOUBLE)" if d in frame.columns else "NULL" for _, d in layout.measures]
    if extras:
        pairs = ", ".join(f"'{c}', {_quote(c)}" for c in extras)
        extra = f"json_object({pairs})"
    else:
        extra = "'{}'"
    target_cols = [
        "version_id", "level", "row_seq", "time_bucket_type", "time_bucket_key", "period_key", "item_key",
        "family_key", "source", "boundary_zone", "window_index", "source_run_id", *measure_cols, "extra_json",
        "created_at", "updated_at",
    ]
    source = f"'{layout.source}'" if layout.source else "NULL"
    select = [
        "$1", "$2", '"__seq"', bucket_type, f"CAST({bucket} AS VARCHAR)", period, item, family, source, zone,
        window, "$3", *measure_vals, extra, "$4", "$5",
    ]
    sql = (
        f"INSERT INTO plan_series ({', '.join(target_cols)}) SELECT {', '.join(select)} "
        "FROM incoming_series"
    )
    return prepared, columns_meta, sql


def _read_series_sql(layout: SeriesLayout, columns: list[dict[str, str]]) -> str:
    source_of: dict[str, str] = {}
    key_map = {
        layout.bucket_key: "time_bucket_key",
        layout.item_key: "item_key",
        layout.period_key: "period_key",
        layout.family_key: "family_key",
    }
    for df_col, series_col in key_map.items():
        if df_col:
            source_of.setdefault(df_col, series_col)
    for series_col, df_col in layout.measures:
        source_of.setdefault(df_col, series_col)
    if layout.zone:
        source_of.setdefault(layout.zone, "boundary_zone")
    if layout.window_index:
        source_of.setdefault(layout.window_index, "window_index")
    for alias, original in layout.aliases:
        if original in source_of:
            source_of.setdefault(alias, source_of[original])
    casts = {"float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN", "str": "VARCHAR"}
    parts = []
    for meta in columns:
        name, tag = meta["name"], meta["dtype"]
        quoted = _quote(name)
        if name in source_of:
            expr = source_of[name]
            if name == layout.period_key:
                expr = "nullif(period_key, '')"
            parts.append(f"CAST({expr} AS {casts[tag]}) AS {quoted}")
        else:
            parts.append(f"CAST(extra_json->>'$.{name}' AS {casts[tag]}) AS {quoted}")
    return (
        f"SELECT {', '.join(parts)} FROM plan_series WHERE version_id = $1 AND level = $2 "
        "AND source_run_id = $3 ORDER BY row_seq"
    )


def _restore_dtypes(frame: pd.DataFrame, columns: list[dict[str, str]]) -> pd.DataFrame:
    for meta in columns:
        name, tag = meta["name"], meta["dtype"]
        col = frame[name]
        if tag == "float":
            frame[name] = col.astype("float64")
        elif tag == "int":
            frame[name] = col.astype("int64") if col.notna().all() else col.astype("Int64")
        elif tag == "bool":
            frame[name] = col.astype(bool) if col.notna().all() else col.astype("boolean")
        else:
            frame[name] = col.astype(object).where(col.notna(), None)
    return frame
