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
  go to ``<archive>/_trimmed/<stamp>/``. The archive root defaults to
  ``<project home>/archive``.
* The whole trim is **one transaction**: the archives are written from inside it (so they
  show exactly what is deleted) under temporary names, and only renamed into place after the
  commit; on any error the transaction rolls back and the temporary folders are removed.
* A ``CHECKPOINT`` after the commit lets DuckDB give space back; the report gives the file
  size before and after (``bytes_reclaimed``).

A dry run computes the same plan (versions, reasons, rows per table) inside a read
transaction and changes nothing.
"""
from __future__ import annotations

import calendar
import json
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from plan_pipeline.operations.tablecopy import (
    catch_up_sequences,
    file_entry,
    ident,
    load_parquet_into,
    scalar,
    sha256_file,
    store_file_bytes,
    write_query_parquet,
)
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.connection import open_connection, transaction
from plan_pipeline.store.repository import check_identifier, project_home
from plan_pipeline.store.schema import VERSION_CHILD_TABLES, current_schema_version

ARCHIVE_DIR_NAME = "archive"
ARCHIVE_MANIFEST = "archive.json"
ARCHIVE_FORMAT = "plan-pipeline-version-archive"
TRIMMED_DIR = "_trimmed"
AGE_STATUSES = ("draft", "superseded", "imported")
KEPT_STATUS = "approved"
VERSION_TABLES = ("plan_versions", *VERSION_CHILD_TABLES)


def default_archive_dir() -> Path:
    return project_home() / ARCHIVE_DIR_NAME


def months_before(moment: datetime, months: int) -> datetime:
    """``moment`` minus whole calendar months (the day is clamped to the target month's length)."""
    index = moment.year * 12 + (moment.month - 1) - int(months)
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class RetentionPolicy:
    version_max_age_months: int | None = 18
    max_versions: int | None = 600
    kpi_max_age_months: int | None = 24
    audit_max_age_months: int | None = 36

    def __post_init__(self):
        for name in ("version_max_age_months", "max_versions", "kpi_max_age_months", "audit_max_age_months"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise PlanStoreError(f"retention policy {name} must be a non-negative integer or off, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        totals = ", ".join(f"{t} {n}" for t, n in self.rows_removed.items() if n) or "none"
        out.append(f"rows {done} per table: {totals}")
        if self.dry_run:
            out.append(f"store size: {self.bytes_before} bytes (nothing removed)")
        else:
            out.append(f"store size: {self.bytes_before} -> {self.bytes_after} bytes "
                       f"({self.bytes_reclaimed} bytes reclaimed after CHECKPOINT)")
        return out


# ---------------------------------------------------------------------------------- planning
def _version_rows(con, version_id: str) -> dict[str, int]:
    return {
        table: int(scalar(con, f"SELECT count(*) FROM {ident(table)} WHERE version_id = ?", [version_id]))
        for table in VERSION_TABLES
    }


def _plan_trim(con, policy: RetentionPolicy, now: datetime, active: Mapping[str, str]):
    versions = con.execute(
        "SELECT version_id, status, read_only, created_at FROM plan_versions ORDER BY created_at, version_id"
    ).fetchall()
    reasons: dict[str, list[str]] = {}
    info = {v[0]: {"status": v[1], "read_only": bool(v[2]), "created_at": v[3]} for v in versions}
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
        removals.append({
            "version_id": vid,
            "status": meta["status"],
            "read_only": meta["read_only"],
            "created_at": meta["created_at"].isoformat(sep=" ", timespec="seconds"),
            "reasons": reasons[vid],
            "rows": _version_rows(con, vid),
            "archive": None,
        })
    protected = sorted({r["version_id"] for r in removals} | set(active))
    kpi_cutoff = months_before(now, policy.kpi_max_age_months) if policy.kpi_max_age_months is not None else None
    audit_cutoff = (months_before(now, policy.audit_max_age_months)
                    if policy.audit_max_age_months is not None else None)
    kpi_rows = _count_old(con, "plan_kpis", "created_at", kpi_cutoff, protected)
    audit_rows = _count_old(con, "plan_override_events", "event_ts", audit_cutoff, protected)
    return removals, skipped, (kpi_cutoff, kpi_rows), (audit_cutoff, audit_rows), protected


_OLD_ROWS = {
    # table -> (timestamp column, natural order)
    "plan_kpis": ("created_at", "version_id, level, row_seq"),
    "plan_override_events": ("event_ts", "event_ts, id"),
}


def _old_rows_where(table: str) -> str:
    column = _OLD_ROWS[table][0]
    return f"{ident(column)} < ? AND NOT list_contains(?::VARCHAR[], version_id)"


def _count_old(con, table: str, column: str, cutoff: datetime | None, protected: list[str]) -> int:
    if cutoff is None:
        return 0
    return int(scalar(con, f"SELECT count(*) FROM {ident(table)} WHERE {_old_rows_where(table)}", [cutoff, protected]))


# ---------------------------------------------------------------------------------- archive
def _write_version_archive(con, version_id: str, target: Path, reasons: list[str], now: datetime) -> dict[str, int]:
    """Write every row of one version into ``target`` (a fresh folder); returns rows per table."""
    target.mkdir(parents=True)
    tables: dict[str, Any] = {}
    rows: dict[str, int] = {}
    for table in VERSION_TABLES:
        path = target / f"{table}.parquet"
        rows[table] = write_query_parquet(con, f"SELECT * FROM {ident(table)} WHERE version_id = ?", [version_id], path)
        tables[table] = file_entry(path, rows[table])
    head = con.execute(
        "SELECT status, input_set, created_at FROM plan_versions WHERE version_id = ?", [version_id]
    ).fetchall()[0]
    manifest = {
        "format": ARCHIVE_FORMAT,
        "format_version": 1,
        "version_id": version_id,
        "status": head[0],
        "input_set": head[1],
        "created_at": head[2].isoformat(sep=" "),
        "archived_at": now.isoformat(sep=" ", timespec="seconds"),
        "reasons": reasons,
        "schema_version": current_schema_version(con),
        "tables": tables,
    }
    (target / ARCHIVE_MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return rows


def _write_rows_archive(con, table: str, cutoff: datetime, protected: list[str], target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    order = _OLD_ROWS[table][1]
    return write_query_parquet(
        con, f"SELECT * FROM {ident(table)} WHERE {_old_rows_where(table)} ORDER BY {order}",
        [cutoff, protected], target / f"{table}.parquet",
    )


def _delete_version(con, version_id: str) -> None:
    for table in VERSION_CHILD_TABLES:  # children first (no declared FKs, explicit cascade)
        con.execute(f"DELETE FROM {ident(table)} WHERE version_id = ?", [version_id])
    con.execute("DELETE FROM plan_versions WHERE version_id = ?", [version_id])


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def _publish(partial: Path, final: Path, now: datetime) -> Path:
    """Move a finished archive folder into place; an older archive of the same name is kept aside."""
    if final.exists():
        final.rename(final.with_name(f"{final.name}.replaced-{_stamp(now)}"))
    partial.rename(final)
    return final


# ---------------------------------------------------------------------------------- trim
def trim_store(
    store: PlanStore,
    policy: RetentionPolicy | None = None,
    *,
    dry_run: bool = False,
    archive_dir: str | Path | None = None,
    active_versions: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> TrimReport:
    """Apply ``policy`` to ``store`` (see the module docstring). ``active_versions`` maps a
    version with a queued/running run to that run's id; those versions are skipped."""
    policy = policy or RetentionPolicy()
    now = now or utc_now()
    active = dict(active_versions or {})
    root = Path(archive_dir).resolve() if archive_dir else default_archive_dir()
    report = TrimReport(dry_run=dry_run, policy=policy.to_dict(), now=now.isoformat(sep=" ", timespec="seconds"),
                        archive_dir=str(root))
    if not store.path.exists():
        raise PlanStoreError(f"plan store {store.path} does not exist")
    report.bytes_before = store_file_bytes(store.path)

    if dry_run:
        with store.connect(read_only=True) as con, transaction(con):
            removals, skipped, (_, kpi_rows), (_, audit_rows), _ = _plan_trim(con, policy, now, active)
        _fill(report, removals, skipped, kpi_rows, audit_rows)
        return report

    partials: list[tuple[Path, Path]] = []
    try:
        with store.write() as con:
            removals, skipped, (kpi_cutoff, kpi_rows), (audit_cutoff, audit_rows), protected = _plan_trim(
                con, policy, now, active)
            if removals or kpi_rows or audit_rows:
                root.mkdir(parents=True, exist_ok=True)
            for item in removals:
                vid = check_identifier("version id", item["version_id"])
                partial = root / f".{vid}.partial-{uuid.uuid4().hex[:8]}"
                partials.append((partial, root / vid))
                archived = _write_version_archive(con, vid, partial, item["reasons"], now)
                if archived != item["rows"]:
                    raise PlanStoreError(f"archive of {vid} holds {archived}, expected {item['rows']}")
                _delete_version(con, vid)
                item["archive"] = str(root / vid)
            if kpi_rows or audit_rows:
                partial = root / f".{TRIMMED_DIR}.partial-{uuid.uuid4().hex[:8]}"
                final = root / TRIMMED_DIR / _stamp(now)
                partials.append((partial, final))
                for table, cutoff, expected in (("plan_kpis", kpi_cutoff, kpi_rows),
                                                ("plan_override_events", audit_cutoff, audit_rows)):
                    if not expected:
                        continue
                    written = _write_rows_archive(con, table, cutoff, protected, partial)
                    deleted = len(con.execute(
                        f"DELETE FROM {ident(table)} WHERE {_old_rows_where(table)} RETURNING 1",
                        [cutoff, protected]).fetchall())
                    if written != deleted:
                        raise PlanStoreError(f"{table}: archived {written} rows but {deleted} matched the delete")
                    report.row_archives.append(str(final / f"{table}.parquet"))
    except BaseException:
        for partial, _ in partials:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    for partial, final in partials:
        final.parent.mkdir(parents=True, exist_ok=True)
        _publish(partial, final, now)
    _fill(report, removals, skipped, kpi_rows, audit_rows)
    with open_connection(store.path) as con:
        con.execute("CHECKPOINT")
    report.bytes_after = store_file_bytes(store.path)
    report.bytes_reclaimed = report.bytes_before - report.bytes_after
    return report


def _fill(report: TrimReport, removals, skipped, kpi_rows: int, audit_rows: int) -> None:
    report.versions = removals
    report.skipped = skipped
    report.kpi_rows_trimmed = kpi_rows
    report.audit_events_trimmed = audit_rows
    totals = {table: 0 for table in VERSION_TABLES}
    for item in removals:
        for table, n in item["rows"].items():
            totals[table] += n
    totals["plan_kpis"] += kpi_rows
    totals["plan_override_events"] += audit_rows
    report.rows_removed = totals


# ---------------------------------------------------------------------------------- restore
def list_archived_versions(archive_dir: str | Path | None = None) -> list[dict[str, Any]]:
    root = Path(archive_dir).resolve() if archive_dir else default_archive_dir()
    found = []
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            manifest = folder / ARCHIVE_MANIFEST
            if folder.is_dir() and manifest.is_file():
                data = json.loads(manifest.read_text(encoding="utf-8"))
                if data.get("format") == ARCHIVE_FORMAT:
                    found.append({"path": str(folder), **{k: data.get(k) for k in
                                  ("version_id", "status", "input_set", "created_at", "archived_at")}})
    return found


def restore_archived_version(
    store: PlanStore, version_id: str, archive_dir: str | Path | None = None
) -> dict[str, int]:
    """Put an archived version back, exactly as it was (same ids and timestamps), in one
    transaction. Refused when the version exists or its input set is gone. Returns rows per table."""
    check_identifier("version id", version_id)
    root = Path(archive_dir).resolve() if archive_dir else default_archive_dir()
    folder = root / version_id
    manifest_path = folder / ARCHIVE_MANIFEST
    if not manifest_path.is_file():
        raise PlanStoreError(f"no archive of plan version {version_id!r} in {root}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != ARCHIVE_FORMAT or manifest.get("version_id") != version_id:
        raise PlanStoreError(f"{manifest_path} is not an archive of plan version {version_id!r}")
    for table, entry in manifest["tables"].items():
        if table not in VERSION_TABLES:
            raise PlanStoreError(f"archive of {version_id!r} names an unknown table {table!r}")
        path = folder / entry["file"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            raise PlanStoreError(f"archive file {path} is missing or damaged (sha256 mismatch)")
    loaded: dict[str, int] = {}
    with store.write() as con:
        if manifest.get("schema_version") != current_schema_version(con):
            raise PlanStoreError(
                f"archive of {version_id!r} has schema version {manifest.get('schema_version')}, "
                f"the store has {current_schema_version(con)}")
        if scalar(con, "SELECT count(*) FROM plan_versions WHERE version_id = ?", [version_id]):
            raise PlanStoreError(f"plan version {version_id!r} exists; delete it before restoring its archive")
        input_set = manifest.get("input_set")
        if input_set is not None and not scalar(con, "SELECT count(*) FROM input_sets WHERE label = ?", [input_set]):
            raise PlanStoreError(f"input set {input_set!r} of archived version {version_id!r} is not in the store; "
                                 "import it again under the same label first")
        for table in VERSION_TABLES:  # parent first
            entry = manifest["tables"].get(table)
            if entry is None:
                continue
            loaded[table] = load_parquet_into(con, table, folder / entry["file"])
            if loaded[table] != entry["rows"]:
                raise PlanStoreError(f"{table}: loaded {loaded[table]} rows, archive lists {entry['rows']}")
        catch_up_sequences(con)
    return loaded
