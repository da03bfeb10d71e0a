"""Consistent backups of the plan store and exact restores.

A backup is a folder ``<out>/plan-store-<UTC stamp>/`` holding one Parquet file per table and
``manifest.json`` (schema version, created time, rows / bytes / sha256 per table file, the
last value of every id sequence). All tables are read on **one connection inside one
transaction**, so the snapshot is consistent even while other work waits (the Dagster job also
holds the ``duckdb`` pool). The folder is written under a temporary name and renamed when
complete: a folder with the final name is always a whole backup. After a successful backup the
newest ``keep`` backups in ``<out>`` are kept and older ones removed (only folders that carry
our manifest are ever removed).

A restore builds a **new** DuckDB file beside the target: the schema from this code's
migrations, then every table's rows in file order, then the sequences moved to the backed-up
values (ids continue where they stopped), all in one transaction; the new file then replaces
the target. It refuses a target that holds any rows unless ``force`` (the old file is then
kept as ``<target>.pre-restore-<stamp>``), a backup whose files do not match their sha256,
and a backup of another schema version (restore with the release that wrote it; opening the
store with a newer release upgrades it in place).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

import plan_pipeline
from plan_pipeline.operations.tablecopy import (
    advance_sequence,
    catch_up_sequences,
    file_entry,
    ident,
    load_parquet_into,
    parquet_rows,
    scalar,
    sequence_state,
    sha256_file,
    user_tables,
    write_query_parquet,
)
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.connection import open_connection, transaction
from plan_pipeline.store.repository import project_home
from plan_pipeline.store.schema import SCHEMA_VERSION, apply_migrations, current_schema_version

BACKUP_DIR_ENV = "PLAN_PIPELINE_BACKUP_DIR"
BACKUP_PREFIX = "plan-store-"
BACKUP_NAME_RE = re.compile(r"^(plan-store-\d{8}T\d{12})Z(?:-(\d+))?$")
MANIFEST = "manifest.json"
BACKUP_FORMAT = "plan-pipeline-backup"
DEFAULT_KEEP = 7


def default_backup_dir() -> Path:
    env = os.environ.get(BACKUP_DIR_ENV)
    return Path(env).resolve() if env else project_home() / "backups"


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    removed: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        tables = self.manifest["tables"]
        rows = sum(t["rows"] for t in tables.values())
        out = [f"backup {self.path} ({len(tables)} tables, {rows} rows, schema version "
               f"{self.manifest['schema_version']})"]
        out += [f"removed old backup {p}" for p in self.removed]
        return out


@dataclass
class RestoreResult:
    target: Path
    rows: dict[str, int]
    moved_aside: Path | None = None

    def lines(self) -> list[str]:
        out = [f"restored {sum(self.rows.values())} rows in {len(self.rows)} tables into {self.target}"]
        if self.moved_aside:
            out.append(f"the previous store was kept as {self.moved_aside}")
        return out


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# ---------------------------------------------------------------------------------- backup
def create_backup(
    store: PlanStore, out_dir: str | Path | None = None, *, keep: int = DEFAULT_KEEP, now: datetime | None = None
) -> BackupResult:
    """Snapshot every table of ``store`` into a new folder under ``out_dir``; prune to ``keep``."""
    if keep < 1:
        raise PlanStoreError(f"--keep must be at least 1 (got {keep})")
    if not store.path.exists():
        raise PlanStoreError(f"plan store {store.path} does not exist; nothing to back up")
    out = Path(out_dir).resolve() if out_dir else default_backup_dir()
    out.mkdir(parents=True, exist_ok=True)
    now = now or _utc_now()
    name = BACKUP_PREFIX + now.strftime("%Y%m%dT%H%M%S%fZ")
    final, n = out / name, 1
    while final.exists():
        n += 1
        final = out / f"{name}-{n}"
    partial = out / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        tables: dict[str, Any] = {}
        with store.connect(read_only=True) as con, transaction(con):
            schema_version = current_schema_version(con)
            for table in user_tables(con):
                path = partial / f"{table}.parquet"
                rows = write_query_parquet(con, f"SELECT * FROM {ident(table)}", [], path)
                tables[table] = file_entry(path, rows)
            sequences = sequence_state(con)
        manifest = {
            "format": BACKUP_FORMAT,
            "format_version": 1,
            "schema_version": schema_version,
            "created_at": now.isoformat(sep=" ", timespec="microseconds") + " UTC",
            "source_db": str(store.path),
            "plan_pipeline_version": plan_pipeline.__version__,
            "duckdb_version": duckdb.__version__,
            "tables": tables,
            "sequences": sequences,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    removed = prune_backups(out, keep)
    return BackupResult(final, manifest, removed)


def list_backups(out_dir: str | Path) -> list[Path]:
    """Complete backups in ``out_dir``, newest first."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    found = [p for p in out.iterdir() if p.is_dir() and BACKUP_NAME_RE.match(p.name) and (p / MANIFEST).is_file()]

    def key(p: Path):
        match = BACKUP_NAME_RE.match(p.name)
        return (match.group(1), int(match.group(2) or 1))

    return sorted(found, key=key, reverse=True)


def prune_backups(out_dir: str | Path, keep: int) -> list[Path]:
    removed = []
    for old in list_backups(out_dir)[keep:]:
        shutil.rmtree(old)
        removed.append(old)
    return removed


def verify_backup(backup_dir: str | Path) -> dict[str, Any]:
    """The backup's manifest, after checking every file's sha256 and row count."""
    folder = Path(backup_dir)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise PlanStoreError(f"{folder} is not a plan-store backup (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != BACKUP_FORMAT:
        raise PlanStoreError(f"{manifest_path} is not a plan-pipeline backup manifest")
    for table, entry in manifest["tables"].items():
        ident(table)
        path = folder / entry["file"]
        if path.name != entry["file"] or not path.is_file():
            raise PlanStoreError(f"backup file {entry['file']!r} of table {table!r} is missing")
        if sha256_file(path) != entry["sha256"]:
            raise PlanStoreError(f"backup file {path} is damaged (sha256 mismatch)")
        if parquet_rows(path) != entry["rows"]:
            raise PlanStoreError(f"backup file {path} holds {parquet_rows(path)} rows, manifest says {entry['rows']}")
    return manifest


# ---------------------------------------------------------------------------------- restore
def store_row_counts(db_path: Path) -> dict[str, int]:
    """Rows per table of an existing store file (opened briefly; fails if another process holds it)."""
    con = open_connection(db_path, read_only=True, retry_seconds=5.0)
    try:
        return {t: int(scalar(con, f"SELECT count(*) FROM {ident(t)}")) for t in user_tables(con)}
    finally:
        con.close()


def restore_backup(backup_dir: str | Path, target_db: str | Path, *, force: bool = False) -> RestoreResult:
    manifest = verify_backup(backup_dir)
    folder = Path(backup_dir)
    target = Path(target_db).resolve()
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise PlanStoreError(
            f"backup {folder} has schema version {manifest['schema_version']}, this plan-pipeline builds "
            f"{SCHEMA_VERSION}: restore it with the release that wrote it (opening the store with a newer "
            "release then upgrades it in place)"
        )
    existing_rows = 0
    if target.exists():
        try:
            counts = store_row_counts(target)
        except duckdb.Error as exc:
            raise PlanStoreError(f"cannot open {target} to check that it is empty: {exc}") from None
        existing_rows = sum(n for t, n in counts.items() if t != "schema_migrations")
        if existing_rows and not force:
            raise PlanStoreError(
                f"{target} is not empty ({existing_rows} rows); restore into a new file with --db, "
                "or pass --force to replace it (the old file is kept beside it)"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.name}.restore-{uuid.uuid4().hex[:8]}")
    rows: dict[str, int] = {}
    try:
        con = duckdb.connect(str(building))
        try:
            apply_migrations(con)
            fresh = set(user_tables(con))
            wanted = set(manifest["tables"])
            if fresh != wanted:
                raise PlanStoreError(
                    f"backup tables do not match this schema (only in backup: {sorted(wanted - fresh)}, "
                    f"missing from backup: {sorted(fresh - wanted)})")
            with transaction(con):
                con.execute("DELETE FROM schema_migrations")
                for table, entry in manifest["tables"].items():
                    rows[table] = load_parquet_into(con, table, folder / entry["file"])
                    if rows[table] != entry["rows"]:
                        raise PlanStoreError(f"{table}: loaded {rows[table]} rows, manifest lists {entry['rows']}")
                for sequence, last_value in manifest.get("sequences", {}).items():
                    ident(sequence)
                    advance_sequence(con, sequence, last_value)
                catch_up_sequences(con)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        moved = None
        if target.exists():
            stamp = _utc_now().strftime("%Y%m%dT%H%M%SZ")
            if existing_rows:
                moved = target.with_name(f"{target.name}.pre-restore-{stamp}")
                target.rename(moved)
                wal = Path(f"{target}.wal")
                if wal.exists():
                    wal.rename(Path(f"{moved}.wal"))
            else:
                target.unlink()
                Path(f"{target}.wal").unlink(missing_ok=True)
        os.replace(building, target)
    finally:
        building.unlink(missing_ok=True)
        Path(f"{building}.wal").unlink(missing_ok=True)
    return RestoreResult(target, rows, moved)
