"""Consistent backups of the plan store and exact restores.

A backup is a folder ``<out>/plan-store-<UTC stamp>/`` holding one Parquet file per table
(written by the store's own writer, :mod:`plan_pipeline.store.store_files`) and ``manifest.json`` (schema version, created time, rows / bytes / sha256 per table file, the
last value of every id sequence). All tables are read on **one connection inside one
transaction**, so the snapshot is consistent even while other work waits (the Dagster job also
holds the ``duckdb`` pool); a backup taken while a plan run is in progress holds what that run
had committed when the backup's transaction began. The folder is staged under a hidden,
locked name (:class:`~plan_pipeline.store.staging.Staging`), fsynced, verified and
renamed when complete: a folder with the final name is always a whole backup. Leftovers of
interrupted backups are removed by the next backup. After a successful backup the newest
``keep`` backups in ``<out>`` are kept and older ones removed (only folders that carry our
manifest; each is renamed to a hidden name before it is deleted).

A restore builds a **new** store file beside the target
(:func:`~plan_pipeline.store.store_files.build_store_file`): the schema from this code's
migrations, then every table's rows in file order, then the sequences moved to the backed-up
values (ids continue where they stopped), all in one transaction; the new file then replaces
the target atomically, while this process holds the target's write lock. It refuses a target
that holds any rows unless ``force`` (the old file is then kept as
``<target>.pre-restore-<stamp>``), a backup whose files do not match their sha256, a backup of
another schema version (restore it with the release that wrote it; opening the store with a
newer release upgrades it in place), and whatever the caller's ``guard`` refuses (the CLI:
plan runs in progress).

A PostgreSQL store (``PLAN_STORE_URL=postgresql://...``) is backed up the same way (the same
folder layout, read on one ``REPEATABLE READ`` snapshot, so runs go on writing meanwhile); its
manifest says ``"backend": "postgres"``. :func:`restore_backup_into_postgres` loads such a backup
into an **empty** PostgreSQL database (:func:`~plan_pipeline.store.store_files.restore_into_postgres`,
``COPY`` in one transaction). There is no file to swap, so a database holding rows is refused
(no ``force``): create an empty database, restore into it, then point ``PLAN_STORE_URL`` at it.
A backup is restored into the backend it was taken from (the schema versions are numbered per
backend); a manifest without ``backend`` is a DuckDB store's (older backups).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import plan_pipeline
from plan_pipeline.faults import crash_point
from plan_pipeline.operations.settings import BACKUP_DIR_ENV, DEFAULT_KEEP
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.backends.postgres import PG_SCHEMA_VERSION
from plan_pipeline.store.repository import StoreLocation, project_home
from plan_pipeline.store.schema import SCHEMA_VERSION
from plan_pipeline.store.staging import (
    Staging,
    ensure_folder,
    file_entry,
    fsync_path,
    fsync_tree,
    leftovers,
    remove_path,
    removing_name,
    verify_table_files,
    write_text_durable,
)
from plan_pipeline.store.store_files import (
    build_store_file,
    data_rows,
    hold_store_file,
    restore_into_postgres,
    store_row_counts,
)
from plan_pipeline.timeutil import utc_now

BACKUP_PREFIX = "plan-store-"
BACKUP_NAME_RE = re.compile(r"^(plan-store-\d{8}T\d{12})Z(?:-(\d+))?$")
MANIFEST = "manifest.json"
BACKUP_FORMAT = "plan-pipeline-backup"


def default_backup_dir() -> Path:
    env = os.environ.get(BACKUP_DIR_ENV)
    return Path(env).resolve() if env else project_home() / "backups"


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    removed: list[Path] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        tables = self.manifest["tables"]
        rows = sum(t["rows"] for t in tables.values())
        out = [f"removed leftover of an interrupted backup {p}" for p in self.leftovers]
        out.append(f"backup {self.path} ({len(tables)} tables, {rows} rows, schema version "
                   f"{self.manifest['schema_version']})")
        out += [f"removed old backup {p}" for p in self.removed]
        return out


#: The schema version this release builds, per backend (a backup restores into its own backend only).
SCHEMA_VERSIONS = {"duckdb": SCHEMA_VERSION, "postgres": PG_SCHEMA_VERSION}
BACKEND_NAMES = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}


@dataclass
class RestoreResult:
    #: the restored DuckDB file, or the PostgreSQL database's description (no password)
    target: Path | str
    rows: dict[str, int]
    moved_aside: Path | None = None

    def lines(self) -> list[str]:
        out = [f"restored {sum(self.rows.values())} rows in {len(self.rows)} tables into {self.target}"]
        if self.moved_aside:
            out.append(f"the previous store was kept as {self.moved_aside}")
        return out


# ---------------------------------------------------------------------------------- backup
def _is_backup_name(name: str) -> bool:
    return name.startswith(BACKUP_PREFIX)


def clean_backup_leftovers(out_dir: str | Path) -> list[Path]:
    """Remove what interrupted backups and prunes left in ``out_dir`` (their writers are gone;
    a concurrent backup's staged folder is locked and left alone). Returns the removed paths."""
    cleaned = []
    for left in leftovers(Path(out_dir), ("partial", "removing"), final_names=_is_backup_name):
        remove_path(left.path)
        cleaned.append(left.path)
    return cleaned


def create_backup(
    store: PlanStore, out_dir: str | Path | None = None, *, keep: int = DEFAULT_KEEP, now: datetime | None = None
) -> BackupResult:
    """Snapshot every table of ``store`` into a new folder under ``out_dir``; prune to ``keep``.

    The folder is staged under a hidden name, fsynced, verified (sha256 and rows of every
    file) and only then renamed to ``plan-store-<stamp>``; leftovers of interrupted backups
    are removed first. Crash points: ``backup.files_written``, ``backup.verified``,
    ``backup.published``, ``backup.pruning``.
    """
    if keep < 1:
        raise PlanStoreError(f"--keep must be at least 1 (got {keep})")
    if not store.exists():
        raise PlanStoreError(f"plan store {store.location.describe()} does not exist; nothing to back up")
    out = ensure_folder(Path(out_dir).resolve() if out_dir else default_backup_dir(), "backup folder")
    cleaned = clean_backup_leftovers(out)
    now = now or utc_now()
    name = BACKUP_PREFIX + now.strftime("%Y%m%dT%H%M%S%fZ")
    with Staging(out, name) as staging:
        with store.snapshot() as tx:  # one consistent view of every table and sequence
            schema_version = tx.schema_version()
            written = tx.write_all_table_files(staging.path)
            sequences = tx.sequence_state()
            engine = tx.engine()
        tables: dict[str, Any] = {table: file_entry(path, rows) for table, (path, rows) in written.items()}
        crash_point("backup.files_written")
        manifest = {
            "format": BACKUP_FORMAT,
            "format_version": 1,
            "schema_version": schema_version,
            "created_at": now.isoformat(sep=" ", timespec="microseconds") + " UTC",
            "source_db": store.location.describe(),  # a PostgreSQL URL without its password
            "backend": engine["backend"],
            "plan_pipeline_version": plan_pipeline.__version__,
            f"{engine['name']}_version": engine["version"],
            "tables": tables,
            "sequences": sequences,
        }
        write_text_durable(staging.path / MANIFEST, json.dumps(manifest, indent=2))
        fsync_tree(staging.path)
        verify_backup(staging.path)
        crash_point("backup.verified")
        final, n = out / name, 1
        while final.exists():
            n += 1
            final = out / f"{name}-{n}"
        staging.publish(final)
    crash_point("backup.published")
    removed = prune_backups(out, keep)
    return BackupResult(final, manifest, removed, cleaned)


def list_backups(out_dir: str | Path) -> list[Path]:
    """Complete backups in ``out_dir``, newest first."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    found = [p for p in out.iterdir() if p.is_dir() and BACKUP_NAME_RE.match(p.name) and (p / MANIFEST).is_file()]

    def key(p: Path):
        match = BACKUP_NAME_RE.match(p.name)
        assert match is not None  # ``found`` holds matching names only
        return (match.group(1), int(match.group(2) or 1))

    return sorted(found, key=key, reverse=True)


def prune_backups(out_dir: str | Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups. Each goes to a hidden ``.removing-`` name
    first (one rename), so a prune killed half-way never leaves a damaged folder that looks
    like a backup; the next backup removes such leftovers."""
    removed = []
    for old in list_backups(out_dir)[keep:]:
        doomed = removing_name(old)
        try:
            old.rename(doomed)
        except FileNotFoundError:  # a concurrent prune took it
            continue
        fsync_path(doomed.parent)
        crash_point("backup.pruning")
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(old)
    return removed


def verify_backup(backup_dir: str | Path) -> dict[str, Any]:
    """The backup's manifest, after checking every file's sha256 and row count."""
    folder = Path(backup_dir)
    if not folder.exists():
        raise PlanStoreError(f"backup folder {folder} does not exist")
    if not folder.is_dir():
        raise PlanStoreError(f"{folder} is a file, not a backup folder (give the plan-store-<stamp> folder "
                             "written by 'backup')")
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise PlanStoreError(f"{folder} is not a plan-store backup (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlanStoreError(f"{manifest_path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise PlanStoreError(f"{manifest_path} is not a plan-pipeline backup manifest")
    verify_table_files(folder, manifest.get("tables"), f"backup {folder}")
    return manifest


# ---------------------------------------------------------------------------------- restore
def _refuse_non_empty(target: Path, rows: int, force: bool) -> None:
    if rows and not force:
        raise PlanStoreError(
            f"{target} is not empty ({rows} rows); restore into a new file with --db, "
            "or pass --force to replace it (the old file is kept beside it)"
        )


def restore_backup(
    backup_dir: str | Path,
    target_db: str | Path,
    *,
    force: bool = False,
    guard: Callable[[], None] | None = None,
) -> RestoreResult:
    """Rebuild ``target_db`` from a backup (see the module docstring).

    ``guard`` is called before anything is built and again at the swap, while this process
    holds the target's write lock; it raises (``PlanStoreError``) to refuse, e.g. while plan
    runs are in progress. Crash point ``restore.built`` (new file complete, not yet in place).
    """
    folder = Path(backup_dir)
    target = Path(target_db).resolve()
    if target.is_dir():
        raise PlanStoreError(f"restore target {target} is a folder, not a plan store file (--db names the DuckDB file)")
    manifest = _restorable_backup(folder, "duckdb")
    if target.exists():
        if guard is not None:
            guard()
        _refuse_non_empty(target, data_rows(store_row_counts(target)), force)
    parent = ensure_folder(target.parent, "folder of the restore target")
    for left in leftovers(parent, ("restore",), final_names=lambda name: name == target.name):
        remove_path(left.path)
    with Staging(parent, target.name, kind="restore", folder=False) as staging:
        rows = build_store_file(staging.path, folder, manifest["tables"], manifest.get("sequences", {}))
        crash_point("restore.built")
        moved = _swap_in(staging, target, force=force, guard=guard)
    return RestoreResult(target, rows, moved)


def _restorable_backup(folder: Path, backend: str) -> dict[str, Any]:
    """The verified manifest of a backup that this release can restore into ``backend``."""
    manifest = verify_backup(folder)
    source = manifest.get("backend", "duckdb")  # backups written before PostgreSQL stores: DuckDB
    if source != backend:
        if backend == "postgres":
            hint = ("restore it into a DuckDB file (unset PLAN_STORE_URL, plan-pipeline restore DIR --db FILE); "
                    "a PostgreSQL store is restored from a backup of a PostgreSQL store")
        else:
            hint = ("restore it into an empty PostgreSQL database (PLAN_STORE_URL=postgresql://.../<new database> "
                    "plan-pipeline restore DIR)")
        raise PlanStoreError(f"backup {folder} is of a {BACKEND_NAMES.get(source, source)} plan store and cannot be "
                             f"restored into a {BACKEND_NAMES[backend]} store: {hint}")
    wanted = SCHEMA_VERSIONS[backend]
    if manifest["schema_version"] != wanted:
        raise PlanStoreError(
            f"backup {folder} has schema version {manifest['schema_version']}, this plan-pipeline builds "
            f"{wanted}: restore it with the release that wrote it (opening the store with a newer "
            "release then upgrades it in place)"
        )
    return manifest


def restore_backup_into_postgres(
    backup_dir: str | Path,
    location: StoreLocation,
    *,
    force: bool = False,
    guard: Callable[[], None] | None = None,
) -> RestoreResult:
    """Load a backup of a PostgreSQL store into the **empty** PostgreSQL database ``location``
    (see the module docstring). A database holding rows is refused, with or without ``force``
    (there is no file to keep beside it): restore into a new database and point
    ``PLAN_STORE_URL`` at it. ``guard`` is called first (the CLI: refuses while plan runs are in
    progress). All or nothing: a failure leaves the database without rows."""
    if not location.is_postgres or location.dsn is None:
        raise PlanStoreError(f"{location.describe()} is not a PostgreSQL database")
    where = location.describe()
    if force:
        raise PlanStoreError(
            f"--force cannot replace the PostgreSQL store {where}: there is no file to keep beside it. Create an "
            "empty database, restore into it (PLAN_STORE_URL=postgresql://.../<new database> plan-pipeline "
            "restore DIR), then point PLAN_STORE_URL at it")
    folder = Path(backup_dir)
    manifest = _restorable_backup(folder, "postgres")
    if guard is not None:
        guard()
    try:
        rows = restore_into_postgres(location.dsn, folder, manifest["tables"], manifest.get("sequences", {}))
    except PlanStoreError as exc:  # nothing was loaded (one transaction): say which database refused
        raise PlanStoreError(f"restore into {where} refused: {exc}") from None
    return RestoreResult(where, rows)


def _swap_in(staging: Staging, target: Path, *, force: bool, guard: Callable[[], None] | None) -> Path | None:
    """Put the rebuilt file in place of ``target``; the old one, if it holds rows, stays as
    ``<target>.pre-restore-<stamp>``.

    While the target exists this holds its write lock (a writer that starts now waits and then
    opens the new file), re-checks that it may be replaced (``guard``, rows vs ``force``),
    checkpoints it (no write-ahead log may be left for the new file to pick up), hard-links it
    to its pre-restore name and atomically renames the new file over it: at every moment the
    target path holds a whole store.
    """
    if not target.exists():
        staging.publish(target)
        return None
    with hold_store_file(target) as held:
        existing = held.data_rows()
        _refuse_non_empty(target, existing, force)
        if guard is not None:
            guard()
        held.checkpoint()
        moved = None
        if existing:
            stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
            moved, n = target.with_name(f"{target.name}.pre-restore-{stamp}"), 1
            while moved.exists():
                n += 1
                moved = target.with_name(f"{target.name}.pre-restore-{stamp}-{n}")
            try:
                os.link(target, moved)
            except OSError:  # no hard links here: a short moment without a file at the target path
                target.rename(moved)
        fsync_tree(staging.path)
        os.replace(staging.path, target)
        fsync_path(target.parent)
        staging.published = target
        crash_point("restore.swapped")
        return moved
