"""Retention: which plan versions and rows the store keeps, and the trim that enforces it.

Policies (defaults; each can be switched off with ``None``):

* **Age** (``version_max_age_months = 18``): versions whose status is ``draft``,
  ``superseded`` or ``imported`` (read-only versions from a legacy import follow the draft
  rule) and whose ``created_at`` is older than 18 calendar months are removed.
  ``approved`` versions are never removed; ``submitted`` versions are waiting for a decision
  and are not removed by age.
* **Count** (``max_versions = 600``): at most 600 non-approved versions (draft, submitted,
  superseded, imported) are kept; beyond that the oldest by ``created_at`` go first.
  ``created_at`` is immutable (a version id cannot be re-created), so the order is stable.
* **KPIs** (``kpi_max_age_months = 24``): ``plan_kpis`` rows computed (``created_at``) more
  than 24 months ago are removed, for every status (approved versions keep their plan rows
  but lose their old KPIs, which is what a 24-month KPI retention means next to an 18-month
  version retention). A re-materialization writes new KPI rows with a new ``created_at``.
* **Audit** (``audit_max_age_months = 36``): ``plan_override_events`` older than 36 months
  (``event_ts``, append-only) are removed.

Safety:

* A version with a queued or running Dagster run (``active_versions``) is never touched: it
  is reported as skipped with the run id, and its KPIs and events are left alone too.
* Nothing is deleted without a copy: every removed version is first written to
  ``<archive>/<version_id>/`` (one Parquet file per table + ``archive.json`` with row counts
  and sha256), restorable with :func:`restore_archived_version`; trimmed KPI and audit rows
  go to ``<archive>/_trimmed/<stamp>/`` (with ``rows.json``). The archive root defaults to
  ``<project home>/archive``.
* **Archive, publish, then delete** (:func:`_archive_then_remove`, shared by trim, the row
  guard and :func:`archive_and_remove_versions`): inside one write transaction the archives
  are written to staged folders, fsynced and verified (sha256 and rows, equal to what the
  store holds), then published under their final names (rename + fsync of the folder), and
  only then are the rows deleted and the transaction committed. Killed at any moment, the
  store still holds every version, or the version's complete archive is in place (a crash
  between publishing and the commit leaves an archive of a version that still exists:
  harmless, ``restore-archived`` refuses while the version exists and the next removal
  replaces the archive). Named crash points: ``<operation>.archive_written``,
  ``.archive_published``, ``.before_commit``, ``.after_commit`` (and ``trim.before_checkpoint``).
* Staged folders of interrupted runs are handled by the next trim (:func:`_archive_leftovers`):
  removed when the store still holds their rows, recovered (published) when a verified
  archive is the only copy (an older release deleted before publishing).
* After the commit the store gives space back (:func:`~plan_pipeline.store.maintenance.reclaim_store_space`:
  DuckDB a ``CHECKPOINT``; PostgreSQL ``VACUUM (ANALYZE)`` of the plan tables, a removed version's
  partitions having been emptied by ``TRUNCATE``); the report gives the store's size before and
  after (``bytes_reclaimed``: the DuckDB file, PostgreSQL's ``pg_database_size``).

A dry run computes the same plan (versions, reasons, rows per table, leftovers) inside a read
transaction and changes nothing.

**Row guard** (:func:`enforce_row_guard`, ``$PLANS_DB_MAX_ROWS``): after a plan write, keeps
``plan_series`` at most that many rows by archiving and removing the oldest unprotected
versions (never approved ones, never one with a run in progress, never the version just
written).
"""
from __future__ import annotations

import calendar
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from plan_pipeline.faults import crash_point
from plan_pipeline.operations.settings import RetentionPolicy
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.maintenance import RECLAIM_METHOD, VERSION_TABLES, reclaim_store_space, store_size_bytes
from plan_pipeline.store.repository import check_identifier, project_home
from plan_pipeline.store.staging import (
    Staging,
    ensure_folder,
    file_entry,
    fsync_path,
    fsync_tree,
    leftovers,
    publish_path,
    remove_path,
    verify_table_files,
    write_text_durable,
)
from plan_pipeline.store.unit_of_work import StoreTransaction
from plan_pipeline.timeutil import utc_now

__all__ = ["VERSION_TABLES", "RetentionPolicy", "utc_now"]  # re-exported: tests and callers import them from here

ARCHIVE_DIR_NAME = "archive"
ARCHIVE_MANIFEST = "archive.json"
ARCHIVE_FORMAT = "plan-pipeline-version-archive"
TRIMMED_DIR = "_trimmed"
ROW_ARCHIVE_MANIFEST = "rows.json"
ROW_ARCHIVE_FORMAT = "plan-pipeline-row-archive"
MAX_ROWS_ENV = "PLANS_DB_MAX_ROWS"
AGE_STATUSES = ("draft", "superseded", "imported")
KEPT_STATUS = "approved"


def default_archive_dir() -> Path:
    return project_home() / ARCHIVE_DIR_NAME


def months_before(moment: datetime, months: int) -> datetime:
    """``moment`` minus whole calendar months (the day is clamped to the target month's length)."""
    index = moment.year * 12 + (moment.month - 1) - int(months)
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass
class TrimReport:
    dry_run: bool
    policy: dict[str, Any]
    now: str
    archive_dir: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    rows_removed: dict[str, int] = field(default_factory=dict)
    kpi_rows_trimmed: int = 0
    audit_events_trimmed: int = 0
    row_archives: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int | None = None
    bytes_reclaimed: int | None = None
    #: how the space was given back: ``CHECKPOINT`` (DuckDB) or ``VACUUM (ANALYZE)`` (PostgreSQL)
    reclaimed_by: str = RECLAIM_METHOD["duckdb"]
    leftovers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def removed_version_ids(self) -> list[str]:
        return [v["version_id"] for v in self.versions]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        done = "to remove" if self.dry_run else "removed"
        out = [f"trim{' (dry run)' if self.dry_run else ''}: policy "
               + ", ".join(f"{k}={'off' if v is None else v}" for k, v in self.policy.items())]
        if not self.versions:
            out.append(f"versions {done}: none")
        for v in self.versions:
            rows = ", ".join(f"{t} {n}" for t, n in v["rows"].items() if n)
            where = f" -> {v['archive']}" if v.get("archive") else ""
            out.append(f"{verb} version {v['version_id']} ({v['status']}, created {v['created_at']}; "
                       f"{'; '.join(v['reasons'])}): {rows}{where}")
        for s in self.skipped:
            out.append(f"skipped version {s['version_id']}: {s['reason']}")
        for label, count, months in (("KPI rows", self.kpi_rows_trimmed, self.policy["kpi_max_age_months"]),
                                     ("audit events", self.audit_events_trimmed, self.policy["audit_max_age_months"])):
            rule = "rule off" if months is None else f"older than {months} months"
            out.append(f"{label} {done}: {count} ({rule})")
        for left in self.leftovers:
            what = left.get("version_id") or TRIMMED_DIR
            action = ("would be " if self.dry_run else "") + left["action"]
            where = f" -> {left['to']}" if left.get("to") else ""
            out.append(f"leftover of an interrupted run {left['path']} ({what}): {action}, {left['reason']}{where}")
        totals = ", ".join(f"{t} {n}" for t, n in self.rows_removed.items() if n) or "none"
        out.append(f"rows {done} per table: {totals}")
        if self.dry_run:
            out.append(f"store size: {self.bytes_before} bytes (nothing removed)")
        else:
            out.append(f"store size: {self.bytes_before} -> {self.bytes_after} bytes "
                       f"({self.bytes_reclaimed} bytes reclaimed after {self.reclaimed_by})")
        return out


# ---------------------------------------------------------------------------------- planning
def _plan_trim(tx: StoreTransaction, policy: RetentionPolicy, now: datetime, active: Mapping[str, str]):
    versions = tx.version_heads()
    reasons: dict[str, list[str]] = {}
    info: dict[str, dict[str, Any]] = {
        v[0]: {"status": v[1], "read_only": bool(v[2]), "created_at": v[3]} for v in versions}
    if policy.version_max_age_months is not None:
        cutoff = months_before(now, policy.version_max_age_months)
        for vid, status, _, created in versions:
            if status in AGE_STATUSES and created < cutoff:
                reasons.setdefault(vid, []).append(
                    f"{status} older than {policy.version_max_age_months} months")
    if policy.max_versions is not None:
        # versions the age rule really removes (active ones stay) no longer count against the cap
        survivors = [v for v in versions if v[1] != KEPT_STATUS and not (v[0] in reasons and v[0] not in active)]
        excess = len(survivors) - policy.max_versions
        for vid, *_ in survivors[: max(excess, 0)]:
            reasons.setdefault(vid, []).append(
                f"beyond the newest {policy.max_versions} non-approved versions")
    removals, skipped = [], []
    for vid, *_ in versions:  # oldest first
        if vid not in reasons:
            continue
        if vid in active:
            skipped.append({"version_id": vid, "reason": f"run {active[vid]} is in progress for this version "
                            f"(would be removed: {'; '.join(reasons[vid])})"})
            continue
        meta = info[vid]
        removals.append(_removal_item(tx, vid, meta["status"], meta["read_only"], meta["created_at"], reasons[vid]))
    protected = sorted({r["version_id"] for r in removals} | set(active))
    kpi_cutoff = months_before(now, policy.kpi_max_age_months) if policy.kpi_max_age_months is not None else None
    audit_cutoff = (months_before(now, policy.audit_max_age_months)
                    if policy.audit_max_age_months is not None else None)
    kpi_rows = tx.count_aged_rows("plan_kpis", kpi_cutoff, protected)
    audit_rows = tx.count_aged_rows("plan_override_events", audit_cutoff, protected)
    return removals, skipped, (kpi_cutoff, kpi_rows), (audit_cutoff, audit_rows), protected


# ---------------------------------------------------------------------------------- archive
def _archive_root(archive_dir: str | Path | None) -> Path:
    root = Path(archive_dir).resolve() if archive_dir else default_archive_dir()
    if root.exists() and not root.is_dir():
        raise PlanStoreError(f"archive folder {root} is a file, not a folder")
    return root


def _write_version_archive(tx: StoreTransaction, version_id: str, target: Path, *, reasons: list[str],
                           now: datetime, operation: str, actor: str) -> None:
    """Write every row of one version into ``target`` (an empty folder) with its manifest (written last)."""
    tables = {table: file_entry(path, rows) for table, (path, rows) in tx.write_version_files(version_id, target).items()}
    head = tx.version_archive_head(version_id)
    manifest = {
        "format": ARCHIVE_FORMAT,
        "format_version": 1,
        "version_id": version_id,
        "status": head[0],
        "input_set": head[1],
        "created_at": head[2].isoformat(sep=" "),
        "archived_at": now.isoformat(sep=" ", timespec="seconds"),
        "operation": operation,
        "actor": actor,
        "reasons": reasons,
        "schema_version": tx.schema_version(),
        "tables": tables,
    }
    write_text_durable(target / ARCHIVE_MANIFEST, json.dumps(manifest, indent=2))


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlanStoreError(f"{path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise PlanStoreError(f"{path} is not a manifest")
    return data


def verify_version_archive(folder: str | Path, version_id: str | None = None) -> dict[str, Any]:
    """The manifest of a version archive, after checking every file's sha256 and row count."""
    folder = Path(folder)
    manifest_path = folder / ARCHIVE_MANIFEST
    if not manifest_path.is_file():
        raise PlanStoreError(f"{folder} is not a plan version archive (no {ARCHIVE_MANIFEST})")
    manifest = _read_manifest(manifest_path)
    if manifest.get("format") != ARCHIVE_FORMAT or (version_id is not None and manifest.get("version_id") != version_id):
        raise PlanStoreError(f"{manifest_path} is not an archive of plan version {version_id!r}")
    if "plan_versions" not in (manifest.get("tables") or {}):
        raise PlanStoreError(f"{manifest_path} lists no plan_versions file")
    verify_table_files(folder, manifest["tables"], f"archive of plan version {manifest.get('version_id')!r}")
    return manifest


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _move_aside(final: Path, now: datetime) -> Path | None:
    """An older archive under ``final`` is kept as ``<name>.replaced-<stamp>``."""
    if not final.exists():
        return None
    aside = _free_name(final.with_name(f"{final.name}.replaced-{_stamp(now)}"))
    final.rename(aside)
    fsync_path(final.parent)
    return aside


@dataclass
class _RowSet:
    """Old rows of one table (KPIs or audit events) trimmed by age."""

    table: str
    cutoff: datetime
    protected: list[str]
    expected: int


class _ArchiveBatch:
    """The archives of one removing transaction: staged (written, fsynced, verified), then
    published together before anything is deleted. Leaving removes what was not published."""

    def __init__(self, root: Path, now: datetime, *, operation: str, actor: str):
        self.root, self.now, self.operation, self.actor = root, now, operation, actor
        self._stack = ExitStack()
        self._staged: list[tuple[Staging, Path]] = []

    def __enter__(self) -> _ArchiveBatch:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _staging(self, final_name: str) -> Staging:
        ensure_folder(self.root, "archive folder")
        return self._stack.enter_context(Staging(self.root, final_name))

    def stage_version(self, tx: StoreTransaction, item: dict[str, Any]) -> None:
        vid = check_identifier("version id", item["version_id"])
        staging = self._staging(vid)
        _write_version_archive(tx, vid, staging.path, reasons=item["reasons"], now=self.now,
                               operation=self.operation, actor=self.actor)
        fsync_tree(staging.path)
        manifest = verify_version_archive(staging.path, vid)
        archived = {t: e["rows"] for t, e in manifest["tables"].items()}
        if archived != item["rows"]:
            raise PlanStoreError(f"archive of {vid} holds {archived}, expected {item['rows']}")
        final = self.root / vid
        self._staged.append((staging, final))
        item["archive"] = str(final)

    def stage_rows(self, tx: StoreTransaction, row_sets: list[_RowSet]) -> list[str]:
        """One ``_trimmed/<stamp>/`` folder with a Parquet file per table; returns the final file paths."""
        if not row_sets:
            return []
        staging = self._staging(TRIMMED_DIR)
        final = _free_name(self.root / TRIMMED_DIR / _stamp(self.now))
        tables: dict[str, Any] = {}
        for rs in row_sets:
            path = staging.path / f"{rs.table}.parquet"
            written = tx.write_aged_rows_file(rs.table, rs.cutoff, rs.protected, path)
            if written != rs.expected:
                raise PlanStoreError(f"{rs.table}: archived {written} rows, expected {rs.expected}")
            tables[rs.table] = file_entry(path, written)
        manifest = {"format": ROW_ARCHIVE_FORMAT, "format_version": 1, "operation": self.operation,
                    "actor": self.actor, "archived_at": self.now.isoformat(sep=" ", timespec="seconds"),
                    "schema_version": tx.schema_version(), "tables": tables}
        write_text_durable(staging.path / ROW_ARCHIVE_MANIFEST, json.dumps(manifest, indent=2, default=str))
        fsync_tree(staging.path)
        verify_table_files(staging.path, tables, "trimmed-rows archive")
        self._staged.append((staging, final))
        return [str(final / entry["file"]) for entry in tables.values()]

    def publish(self) -> None:
        for staging, final in self._staged:
            ensure_folder(final.parent, "archive folder")
            _move_aside(final, self.now)
            staging.publish(final)


def _archive_then_remove(tx: StoreTransaction, batch: _ArchiveBatch, items: list[dict[str, Any]],
                         row_sets: Sequence[_RowSet] = ()) -> list[str]:
    """The one sequence that removes versions (and old rows) from the store, inside the caller's
    write transaction; the caller commits right after it returns.

    1. every archive is written to a staged folder, fsynced and verified (sha256 + rows, and
       the rows equal what the store holds), crash point ``<operation>.archive_written``;
    2. every archive is published under its final name (fsync, rename, fsync the folder),
       crash point ``<operation>.archive_published``;
    3. the rows are deleted (in the still uncommitted transaction) and the deleted counts are
       checked against the archives, crash point ``<operation>.before_commit``.

    A crash before the commit leaves the store as it was; a published archive of a version that
    still exists is harmless (``restore-archived`` refuses while the version exists; the next
    removal replaces it). Returns the final paths of the trimmed-row files.
    """
    operation = batch.operation
    for item in items:
        batch.stage_version(tx, item)
    row_files = batch.stage_rows(tx, list(row_sets))
    crash_point(f"{operation}.archive_written")
    batch.publish()
    crash_point(f"{operation}.archive_published")
    for item in items:
        # the store's one removal: tombstone naming actor, reason and archive, plus a ``delete`` event
        removed = tx.remove_version(item["version_id"], actor=batch.actor, reason="; ".join(item["reasons"]),
                                    archive_path=item["archive"])
        if removed != item["rows"]:
            raise PlanStoreError(f"removing {item['version_id']} deleted {removed}, its archive holds {item['rows']}")
    for rs in row_sets:
        deleted = tx.delete_aged_rows(rs.table, rs.cutoff, rs.protected)
        if deleted != rs.expected:
            raise PlanStoreError(f"{rs.table}: archived {rs.expected} rows but {deleted} matched the delete")
    crash_point(f"{operation}.before_commit")
    return row_files


def _removal_item(tx: StoreTransaction, version_id: str, status: str, read_only: bool, created_at: datetime,
                  reasons: list[str]) -> dict[str, Any]:
    return {
        "version_id": version_id,
        "status": status,
        "read_only": read_only,
        "created_at": created_at.isoformat(sep=" ", timespec="seconds"),
        "reasons": reasons,
        "rows": tx.version_row_counts(version_id),
        "archive": None,
    }


def archive_and_remove_versions(
    store: PlanStore,
    version_ids: Sequence[str],
    *,
    reason: str,
    actor: str = "system",
    archive_dir: str | Path | None = None,
    now: datetime | None = None,
    active_versions: Mapping[str, str] | None = None,
    operation: str = "delete",
) -> list[dict[str, Any]]:
    """Archive, then remove, the given versions (any status) in one write transaction.

    The home of "archive then remove" for callers outside trim and the row guard (an
    administrator's delete of a frozen version). A version with a queued or running run
    (``active_versions``: version -> run id) or an unknown version is refused before anything
    is written. Returns one dict per version: ``version_id``, ``status``, ``created_at``,
    ``reasons``, ``rows`` (per table) and ``archive`` (its folder). Crash points are named
    ``<operation>.archive_written`` ... ``<operation>.after_commit``.
    """
    now = now or utc_now()
    root = _archive_root(archive_dir)
    ids = [check_identifier("version id", v) for v in version_ids]
    if len(set(ids)) != len(ids):
        raise PlanStoreError("a version id is listed twice")
    active = dict(active_versions or {})
    busy = [f"{v} (run {active[v]})" for v in ids if v in active]
    if busy:
        raise PlanStoreError(f"runs are in progress for plan version(s) {', '.join(busy)}; wait for them to finish")
    if not store.exists():
        raise PlanStoreError(f"plan store {store.location.describe()} does not exist")
    with _ArchiveBatch(root, now, operation=operation, actor=actor) as batch:
        with store.transaction() as tx:
            items = [_removal_item(tx, vid, *tx.version_head(vid), [reason]) for vid in ids]
            _archive_then_remove(tx, batch, items)
        crash_point(f"{operation}.after_commit")
    return items


# ---------------------------------------------------------------------------------- leftovers
def _archive_leftovers(tx: StoreTransaction, root: Path, now: datetime, *, dry_run: bool) -> list[dict[str, Any]]:
    """Handle what interrupted removals left in ``root`` (staged folders whose writer died).

    * a staged version archive is **recovered** (published under its final name) when it
      verifies and its version is no longer in the store: an older release deleted before it
      published, so this folder is the only copy;
    * it is **removed** when the version is still in the store (the removal never committed)
      or when it has no manifest (never finished; the removal never got to its delete);
    * a staged archive with a manifest that does not verify, of a version not in the store,
      is **kept** for inspection;
    * staged trimmed-row folders are removed (this release publishes before deleting), except
      those of older releases, which are recovered into ``_trimmed/recovered-<tag>``.
    """
    handled = []
    for left in leftovers(root, ("partial",), dry_run=dry_run):
        entry: dict[str, Any] = {"path": str(left.path), "legacy": left.legacy}
        if left.final_name == TRIMMED_DIR:
            if left.legacy and any(left.path.glob("*.parquet")):
                entry.update(action="recovered", reason="trimmed rows of an older release's interrupted trim")
                target = _free_name(root / TRIMMED_DIR / f"recovered-{left.path.name.rsplit('-', 1)[-1]}")
                if not dry_run:
                    try:
                        ensure_folder(target.parent, "archive folder")
                        entry["to"] = str(publish_path(left.path, target))
                    except (OSError, PlanStoreError) as exc:
                        entry.update(action="failed", reason=f"recovery failed: {exc}")
            else:
                entry.update(action="removed", reason="interrupted before its rows were deleted")
                if not dry_run:
                    remove_path(left.path)
            handled.append(entry)
            continue
        try:
            vid = check_identifier("version id", left.final_name)
        except PlanStoreError:
            continue  # not one of ours
        entry["version_id"] = vid
        exists = tx.version_exists(vid)
        problem = None
        try:
            verify_version_archive(left.path, vid)
        except PlanStoreError as exc:
            problem = str(exc)
        if exists:
            entry.update(action="removed", reason="the version is still in the store")
        elif problem is None:
            entry.update(action="recovered", reason="the version is not in the store; this was its only archive")
        elif not (left.path / ARCHIVE_MANIFEST).exists():
            entry.update(action="removed", reason="incomplete (no manifest): its removal never reached the delete")
        else:
            entry.update(action="kept", reason=f"damaged archive of a version not in the store: {problem}")
        if not dry_run:
            try:
                if entry["action"] == "removed":
                    remove_path(left.path)
                elif entry["action"] == "recovered":
                    final = root / vid
                    aside = _move_aside(final, now)
                    if aside is not None:
                        entry["replaced"] = str(aside)
                    entry["to"] = str(publish_path(left.path, final))
            except (OSError, PlanStoreError) as exc:  # reported; a cleanup problem does not stop the trim
                entry.update(action="failed", reason=f"{entry['action']} failed: {exc}")
        handled.append(entry)
    return handled


# ---------------------------------------------------------------------------------- trim
def trim_store(
    store: PlanStore,
    policy: RetentionPolicy | None = None,
    *,
    dry_run: bool = False,
    archive_dir: str | Path | None = None,
    active_versions: Mapping[str, str] | None = None,
    now: datetime | None = None,
    actor: str = "system",
) -> TrimReport:
    """Apply ``policy`` to ``store`` (see the module docstring). ``active_versions`` maps a
    version with a queued/running run to that run's id; those versions are skipped."""
    policy = policy or RetentionPolicy()
    now = now or utc_now()
    active = dict(active_versions or {})
    root = _archive_root(archive_dir)
    report = TrimReport(dry_run=dry_run, policy=policy.to_dict(), now=now.isoformat(sep=" ", timespec="seconds"),
                        archive_dir=str(root))
    if not store.exists():
        raise PlanStoreError(f"plan store {store.location.describe()} does not exist")
    report.bytes_before = store_size_bytes(store)
    report.reclaimed_by = RECLAIM_METHOD["postgres" if store.is_postgres else "duckdb"]

    if dry_run:
        with store.snapshot() as tx:
            report.leftovers = _archive_leftovers(tx, root, now, dry_run=True)
            removals, skipped, (_, kpi_rows), (_, audit_rows), _ = _plan_trim(tx, policy, now, active)
        _fill(report, removals, skipped, kpi_rows, audit_rows)
        return report

    with _ArchiveBatch(root, now, operation="trim", actor=actor) as batch:
        with store.transaction() as tx:
            report.leftovers = _archive_leftovers(tx, root, now, dry_run=False)
            removals, skipped, (kpi_cutoff, kpi_rows), (audit_cutoff, audit_rows), protected = _plan_trim(
                tx, policy, now, active)
            row_sets = [_RowSet(table, cutoff, protected, expected)
                        for table, cutoff, expected in (("plan_kpis", kpi_cutoff, kpi_rows),
                                                        ("plan_override_events", audit_cutoff, audit_rows))
                        if expected]
            report.row_archives = _archive_then_remove(tx, batch, removals, row_sets)
        crash_point("trim.after_commit")
    _fill(report, removals, skipped, kpi_rows, audit_rows)
    crash_point("trim.before_checkpoint")
    report.reclaimed_by = reclaim_store_space(store)
    report.bytes_after = store_size_bytes(store)
    report.bytes_reclaimed = report.bytes_before - report.bytes_after
    return report


def _fill(report: TrimReport, removals, skipped, kpi_rows: int, audit_rows: int) -> None:
    report.versions = removals
    report.skipped = skipped
    report.kpi_rows_trimmed = kpi_rows
    report.audit_events_trimmed = audit_rows
    totals = dict.fromkeys(VERSION_TABLES, 0)
    for item in removals:
        for table, n in item["rows"].items():
            totals[table] += n
    totals["plan_kpis"] += kpi_rows
    totals["plan_override_events"] += audit_rows
    report.rows_removed = totals


# ---------------------------------------------------------------------------------- row guard
def row_guard_limit(environ: Mapping[str, str] | None = None) -> int | None:
    """``$PLANS_DB_MAX_ROWS`` as a row limit; ``None`` when unset, empty or ``0`` (guard off).

    Anything else that is not a whole number >= 0 is an error, not a silent "off".
    """
    raw = (os.environ if environ is None else environ).get(MAX_ROWS_ENV)
    text = (raw or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise PlanStoreError(f"{MAX_ROWS_ENV} must be a whole number of plan_series rows (0 or unset switches the "
                             f"row guard off), got {raw!r}")
    return value or None


def _check_max_rows(max_rows: Any) -> int | None:
    if max_rows is None:
        return None
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 0:
        raise PlanStoreError(f"row guard max_rows must be a whole number >= 0 (0 = off), got {max_rows!r}")
    return max_rows or None


@dataclass
class RowGuardReport:
    """What the row guard found and did (``versions``: removed, or to remove in a dry run)."""

    max_rows: int | None
    dry_run: bool
    now: str
    archive_dir: str
    rows_before: int = 0
    rows_after: int = 0
    versions: list[dict[str, Any]] = field(default_factory=list)
    protected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.max_rows is not None

    @property
    def within_limit(self) -> bool:
        return self.max_rows is None or self.rows_after <= self.max_rows

    @property
    def removed_version_ids(self) -> list[str]:
        return [v["version_id"] for v in self.versions]

    @property
    def archives(self) -> list[str]:
        return [v["archive"] for v in self.versions if v.get("archive")]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "enabled": self.enabled, "within_limit": self.within_limit}

    def log_line(self) -> str:
        if self.max_rows is None:
            return f"row guard off ({MAX_ROWS_ENV} unset or 0)"
        head = f"row guard{' (dry run)' if self.dry_run else ''}: plan_series {self.rows_before} rows, limit {self.max_rows}"
        if not self.versions and self.rows_before <= self.max_rows:
            return head + ": within the limit"
        verb = "would remove" if self.dry_run else "removed"
        out = head + (f"; {verb} {len(self.versions)} version(s) ({', '.join(self.removed_version_ids)})"
                      if self.versions else "; nothing may be removed")
        out += f" -> {self.rows_after} rows"
        if not self.within_limit:
            out += " (still over the limit: the rest is protected)"
        return out

    def lines(self) -> list[str]:
        out = [self.log_line()]
        verb = "would remove" if self.dry_run else "removed"
        for v in self.versions:
            where = f" -> {v['archive']}" if v.get("archive") else ""
            out.append(f"{verb} version {v['version_id']} ({v['status']}, created {v['created_at']}): "
                       f"plan_series {v['rows']['plan_series']} rows{where}")
        if self.versions or not self.within_limit:
            for p in self.protected:
                out.append(f"kept version {p['version_id']} ({p['plan_series_rows']} plan_series rows): {p['reason']}")
        return out


def _protection(version_id: str, status: str, protect: set[str], active: Mapping[str, str]) -> str | None:
    if version_id in protect:
        return "protected by the caller (the version just written)"
    if version_id in active:
        return f"run {active[version_id]} is in progress for this version"
    if status == KEPT_STATUS:
        return "approved versions are never removed"
    return None


def _plan_row_guard(tx: StoreTransaction, max_rows: int, protect: set[str], active: Mapping[str, str]):
    rows_before = tx.plan_series_rows()
    per_version = tx.plan_series_rows_per_version()
    excess = rows_before - max_rows
    picked, protected = [], []
    for vid, status, read_only, created_at, n in per_version:  # oldest first; one row per version
        if not n or rows_before <= max_rows:
            continue  # a version without plan rows frees nothing
        reason = _protection(vid, status, protect, active)
        if reason:
            protected.append({"version_id": vid, "status": status, "plan_series_rows": int(n), "reason": reason})
        elif excess > 0:
            picked.append(_removal_item(tx, vid, status, bool(read_only), created_at, [
                f"row guard: plan_series held {rows_before} rows, {MAX_ROWS_ENV} = {max_rows}"]))
            excess -= int(n)
    return rows_before, picked, protected


def enforce_row_guard(
    store: PlanStore,
    *,
    max_rows: int | None,
    protect: Iterable[str] = (),
    active_versions: Mapping[str, str] | None = None,
    archive_dir: str | Path | None = None,
    now: datetime | None = None,
    actor: str = "system",
    dry_run: bool = False,
) -> RowGuardReport:
    """Keep ``plan_series`` at most ``max_rows`` rows (``None``/``0``: off, nothing is opened).

    When the store holds more, the oldest versions (``created_at``, then ``version_id``) that
    hold plan rows are archived and removed (:func:`_archive_then_remove`, the same archive as
    trim, restorable with ``restore-archived``) until the count is within the limit or only
    protected versions are left. Never removed: approved versions, versions in ``protect``
    (the version just written) and versions with a queued or running run (``active_versions``:
    version -> run id). One write transaction; a dry run plans the same inside a read
    transaction and changes nothing.
    """
    max_rows = _check_max_rows(max_rows)
    now = now or utc_now()
    root = _archive_root(archive_dir)
    report = RowGuardReport(max_rows=max_rows, dry_run=dry_run, now=now.isoformat(sep=" ", timespec="seconds"),
                            archive_dir=str(root))
    if max_rows is None:
        return report
    if not store.exists():
        raise PlanStoreError(f"plan store {store.location.describe()} does not exist")
    protect_set, active = set(protect), dict(active_versions or {})
    if dry_run:
        with store.snapshot() as tx:
            report.rows_before, picked, report.protected = _plan_row_guard(tx, max_rows, protect_set, active)
    else:
        with _ArchiveBatch(root, now, operation="row_guard", actor=actor) as batch:
            with store.transaction() as tx:
                report.rows_before, picked, report.protected = _plan_row_guard(tx, max_rows, protect_set, active)
                _archive_then_remove(tx, batch, picked)
            crash_point("row_guard.after_commit")
    report.versions = picked
    report.rows_after = report.rows_before - sum(item["rows"]["plan_series"] for item in picked)
    return report


# ---------------------------------------------------------------------------------- restore
def list_archived_versions(archive_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Archived versions (folders with a version-archive manifest) in the archive folder."""
    root = _archive_root(archive_dir)
    found = []
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            manifest = folder / ARCHIVE_MANIFEST
            if folder.is_dir() and not folder.name.startswith(".") and manifest.is_file():
                try:
                    data = _read_manifest(manifest)
                except PlanStoreError:
                    continue
                if data.get("format") == ARCHIVE_FORMAT and data.get("version_id") == folder.name:
                    found.append({"path": str(folder), **{k: data.get(k) for k in
                                  ("version_id", "status", "input_set", "created_at", "archived_at")}})
    return found


def restore_archived_version(
    store: PlanStore, version_id: str, archive_dir: str | Path | None = None, *, actor: str = "system"
) -> dict[str, int]:
    """Put an archived version back, exactly as it was (same ids and timestamps), in one
    transaction. Refused when the version exists or its input set is gone. Returns rows per table."""
    check_identifier("version id", version_id)
    root = _archive_root(archive_dir)
    folder = root / version_id
    if not (folder / ARCHIVE_MANIFEST).is_file():
        raise PlanStoreError(f"no archive of plan version {version_id!r} in {root}")
    manifest = verify_version_archive(folder, version_id)
    for table in manifest["tables"]:
        if table not in VERSION_TABLES:
            raise PlanStoreError(f"archive of {version_id!r} names an unknown table {table!r}")
    loaded: dict[str, int] = {}
    with store.transaction() as tx:
        if manifest.get("schema_version") != tx.schema_version():
            raise PlanStoreError(
                f"archive of {version_id!r} has schema version {manifest.get('schema_version')}, "
                f"the store has {tx.schema_version()}")
        if tx.version_exists(version_id):
            raise PlanStoreError(f"plan version {version_id!r} exists; delete it before restoring its archive")
        input_set = manifest.get("input_set")
        if input_set is not None and not tx.input_set_exists(input_set):
            raise PlanStoreError(f"input set {input_set!r} of archived version {version_id!r} is not in the store; "
                                 "import it again under the same label first")
        for table in VERSION_TABLES:  # parent first
            entry = manifest["tables"].get(table)
            if entry is None:
                continue
            loaded[table] = tx.load_table_file(table, folder / entry["file"])
            if loaded[table] != entry["rows"]:
                raise PlanStoreError(f"{table}: loaded {loaded[table]} rows, archive lists {entry['rows']}")
        tx.catch_up_sequences()
        tx.revive_version(version_id, actor=actor, archive_path=str(folder))
    return loaded
