"""The legacy import's statements on the plan store (a :class:`StoreTransaction` mixin).

``plan_pipeline/operations/legacy_backfill.py`` builds an imported version's rows and calls these
inside one ``with store.transaction() as tx:`` (the version row, its levels and its artifacts
commit together); the ``plan_backfill_runs`` rows record each run. Levels are written by the same
code as every other published level (:func:`plan_pipeline.store.plan_rows.write_published_levels`).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store.backends.postgres import lock_version
from plan_pipeline.store.plan_rows import (
    PreparedLevel,
    drop_plan_in,
    insert_version_row,
    update_version_row,
    write_published_levels,
)
from plan_pipeline.store.write_log import record_write

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import pandas as pd


class LegacyImportStatements:
    """Statements of the legacy import: imported versions and ``plan_backfill_runs``.

    A mixin of :class:`plan_pipeline.store.unit_of_work.StoreTransaction` (not importing it,
    which imports this module); ``_con`` is the open connection its base holds.
    """

    _con: Any
    write_source: str

    # ------------------------------------------------------------------ imported versions
    def version_status_source(self, version_id: str) -> tuple[str, str | None] | None:
        """``(status, source)`` of a plan version, None if there is none."""
        row = self._con.execute("SELECT status, source FROM plan_versions WHERE version_id = ?",
                                [version_id]).fetchone()
        return (row[0], row[1]) if row is not None else None

    def clear_imported_version(self, version_id: str) -> None:
        """Remove a version's plan rows, levels and artifacts (its row, overrides, events and jobs stay)."""
        lock_version(self._con, version_id)
        drop_plan_in(self._con, version_id)
        self._con.execute("DELETE FROM plan_artifacts WHERE version_id = ?", [version_id])

    def write_imported_version_row(self, version_id: str, *, params: PlanningParameters, status: str,
                                   read_only: bool, note: str | None, source: str, created_at: datetime,
                                   updated_at: datetime, replace: bool) -> None:
        """The version's ``plan_versions`` row (no input set); ``replace`` overwrites the existing row."""
        write = update_version_row if replace else insert_version_row
        write(self._con, version_id, input_set=None, status=status, read_only=read_only, params=params,
              note=note, source=source, created_at=created_at, updated_at=updated_at)

    def write_imported_levels(self, version_id: str, levels: list[PreparedLevel], run_id: str,
                              now: datetime) -> int:
        """Insert prepared levels as the version's published plan; returns the rows written."""
        lock_version(self._con, version_id)  # the version's writers serialize (PostgreSQL; DuckDB: no-op)
        written = write_published_levels(self._con, version_id, levels, run_id, now)
        record_write(self._con, self.write_source, "import", version_id,
                     [(level.level, level.row_count) for level in levels], run_id=run_id, at=now)
        return written

    def insert_imported_artifacts(self, version_id: str, artifacts: dict[str, str], source: str,
                                  now: datetime) -> None:
        """The version's artifacts (name -> JSON text as stored), inserted in name order."""
        for name, text in sorted(artifacts.items()):
            self._con.execute("INSERT INTO plan_artifacts VALUES (?, ?, ?, ?, ?)",
                              [version_id, name, text, source, now])

    # ------------------------------------------------------------------ plan_backfill_runs
    def start_legacy_import_run(self, run_id: str, source: str, dry_run: bool, started_at: datetime) -> None:
        self._con.execute(
            "INSERT INTO plan_backfill_runs (run_id, source, status, dry_run, started_at) VALUES (?, ?, 'running', ?, ?)",
            [run_id, source, dry_run, started_at],
        )

    def finish_legacy_import_run(self, run_id: str, *, status: str, imported: int, skipped: int, failed: int,
                                 rows_written: int, finished_at: datetime | None, duration_ms: int | None,
                                 message: str) -> None:
        self._con.execute(
            "UPDATE plan_backfill_runs SET status = ?, versions_imported = ?, versions_skipped = ?, "
            "versions_failed = ?, rows_written = ?, finished_at = ?, duration_ms = ?, message = ? WHERE run_id = ?",
            [status, imported, skipped, failed, rows_written, finished_at, duration_ms, message, run_id],
        )

    def running_legacy_import_runs(self) -> list[str]:
        """Run ids of ``plan_backfill_runs`` rows still marked running."""
        return [r[0] for r in self._con.execute(
            "SELECT run_id FROM plan_backfill_runs WHERE status = 'running' ORDER BY started_at, run_id"
        ).fetchall()]

    def fail_legacy_import_run(self, run_id: str, reason: str, now: datetime) -> None:
        """Mark a run still marked running failed (crash recovery), with its duration up to ``now``
        (whole milliseconds, computed here: one statement text for both backends)."""
        row = self._con.execute("SELECT started_at FROM plan_backfill_runs WHERE run_id = ? AND status = 'running'",
                                [run_id]).fetchone()
        if row is None:
            return
        duration_ms = (now - row[0]) // timedelta(milliseconds=1)
        self._con.execute(
            "UPDATE plan_backfill_runs SET status = 'failed', finished_at = ?, duration_ms = ?, message = ? "
            "WHERE run_id = ? AND status = 'running'",
            [now, duration_ms, reason, run_id],
        )

    def legacy_import_runs(self, limit: int) -> pd.DataFrame:
        """The newest ``limit`` runs, newest first."""
        return self._con.execute(
            "SELECT * FROM plan_backfill_runs ORDER BY started_at DESC, run_id LIMIT ?", [int(limit)]
        ).df()

    def legacy_import_run(self, run_id: str) -> dict[str, Any] | None:
        cur = self._con.execute("SELECT * FROM plan_backfill_runs WHERE run_id = ?", [run_id])
        row = cur.fetchone()
        names = [d[0] for d in cur.description]
        return dict(zip(names, row)) if row else None
