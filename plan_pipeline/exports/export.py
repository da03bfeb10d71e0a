"""Export one plan version from the store, with a verifiable manifest; and the weekly DWH export.

``export_version(store, V, fmt, out)`` writes, for ``fmt``:

* ``csv`` / ``json`` / ``parquet``: one file per table: ``plan_series`` (every level),
  ``plan_kpis``, ``plan_overrides``, ``plan_override_events``; all columns, rows in natural
  order (level, row_seq / id / event time). CSV: UTF-8, ``\\n`` line ends, a header row, floats
  written with Python's shortest round-trip repr, empty cell = NULL. JSON: ``{"table",
  "version_id", "row_count", "rows": [...]}`` with JSON columns (``extra_json``,
  ``payload_json``, ...) embedded as objects, timestamps as ``YYYY-MM-DD HH:MM:SS[.ffffff]``
  (UTC), NULL/NaN as ``null``. Parquet: the DuckDB column types.
* ``reference``: the reference project's file set (``plan_pipeline.exports.reference``).

and always ``manifest.json``: version, status, read-only flag, input set and its content hash,
parameters, levels with their row counts, schema version, export time, and for every file its
row count, size and sha256. Every table file is written by the store with DuckDB's own
writer (``COPY ... TO``, :mod:`plan_pipeline.store.exports`; plan rows one level at a time,
so memory is bounded by the largest level), and the manifest and every file are read on one
read-only snapshot (``PlanStore.reading``), so they agree with each other; the JSON document
is the header around the array of rows DuckDB writes. An unknown version or one that was never materialized is an error and writes nothing.

The target folder must be new, empty, or hold an earlier export of the **same** version (its
``manifest.json`` says so, and it holds nothing the manifest does not list): that export is then
replaced as a whole, no file of it is left behind. Anything else (a file, a folder holding other
files or another version's export) is refused before anything is written. The export is written
into a hidden sibling folder first and moved into place when complete.
A successful CLI export appends an ``export`` event to the version's audit trail (G15).

``export_dwh(store, dir)`` writes the ``plan_series`` and ``plan_kpis`` rows of every
**approved** version as Parquet, partitioned hive-style by version:
``<dir>/plan_series/version_id=<V>/part-0.parquet`` (the partition column lives in the path,
as hive readers expect: ``read_parquet('<dir>/plan_series/*/*.parquet', hive_partitioning=true)``),
plus ``<dir>/_plan_pipeline_dwh.json`` listing what was exported. A version's partition folder
is replaced as a whole; partitions of versions that are no longer approved are left alone
unless ``prune``.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plan_pipeline.exports.formats import EXPORT_FORMATS
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.exports import EXPORT_TABLES, VersionTableRows
from plan_pipeline.store.repository import check_identifier, project_home
from plan_pipeline.store.staging import file_entry
from plan_pipeline.timeutil import utc_now

__all__ = ["EXPORT_TABLES"]  # re-exported: the exported tables and their order are the store's

MANIFEST = "manifest.json"
EXPORT_FORMAT_NAME = "plan-pipeline-export"
DWH_DIR_ENV = "PLAN_PIPELINE_DWH_DIR"
DWH_TABLES = ("plan_series", "plan_kpis")
DWH_MANIFEST = "_plan_pipeline_dwh.json"


@dataclass
class ExportResult:
    out_dir: Path
    files: list[dict[str, Any]]
    manifest: dict[str, Any]

    def lines(self) -> list[str]:
        out = [f"[ok] wrote {self.out_dir / f['file']} ({f['rows'] if f['rows'] is not None else '-'} rows)"
               for f in self.files]
        out.append(f"[ok] wrote {self.out_dir / MANIFEST}")
        return out


# ---------------------------------------------------------------------------------- reading
def _version_header(store: PlanStore, version_id: str) -> dict[str, Any]:
    version = store.get_version(version_id)  # raises on an unknown version
    levels = store.series_levels(version_id)
    if not levels:
        raise PlanStoreError(
            f"plan version {version_id!r} has no complete plan to export: no run has published it yet "
            f"(a run that failed or was interrupted publishes nothing); run plan-pipeline materialize {version_id}"
        )
    input_info = store.get_input_set(version.input_set) if version.input_set else None
    return {
        "version_id": version.version_id,
        "status": version.status,
        "read_only": version.read_only,
        "input_set": version.input_set,
        "input_set_hash": input_info["content_hash"] if input_info else None,
        "parameters": version.params.to_dict(),
        "note": version.note,
        "source": version.source,
        "created_at": version.created_at.isoformat(sep=" "),
        "levels": levels,
    }


# ---------------------------------------------------------------------------------- writers
def _write_csv(table: VersionTableRows, path: Path) -> int:
    return table.write(path, "csv")


def _write_parquet(table: VersionTableRows, path: Path) -> int:
    return table.write(path, "parquet")


def _write_json(table: VersionTableRows, path: Path) -> int:
    """``{"table", "version_id", "row_count", "rows": [...]}``: the header written here, the
    array of rows by the store (copied in, never parsed row by row)."""
    rows = table.row_count()
    head = json.dumps({"table": table.table, "version_id": table.version_id, "row_count": rows},
                      ensure_ascii=False)
    written = table.write(path, "json", ((head[:-1] + ', "rows": ').encode("utf-8"), b"}\n"))
    if written != rows:  # one read transaction: cannot happen
        raise PlanStoreError(f"{path.name}: wrote {written} rows, counted {rows}")
    return written


def _table_writer(fmt: str):
    """The writer of one table file in ``fmt`` (looked up when called, so it can be replaced)."""
    return {"csv": _write_csv, "json": _write_json, "parquet": _write_parquet}[fmt]


def _is_partial_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(".partial")  # our own interrupted writes


def check_export_target(out: Path, version_id: str) -> bool:
    """Refuse a target ``export_version`` must not write into; True when it holds an earlier
    export of ``version_id`` that is to be replaced."""
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PlanStoreError(f"export folder {out} cannot be created: {parent} is a file, not a folder")
            break
    if not out.exists() and not out.is_symlink():
        return False
    if not out.is_dir():
        raise PlanStoreError(f"export target {out} is a file, not a folder: choose a new or empty folder")
    entries = [p.name for p in out.iterdir()]
    if not entries:
        return False
    try:
        previous = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict) or previous.get("format") != EXPORT_FORMAT_NAME:
        raise PlanStoreError(f"export folder {out} is not empty and holds no plan-pipeline export "
                             f"(no {MANIFEST} of one): choose a new or empty folder")
    if previous.get("version_id") != version_id:
        raise PlanStoreError(f"export folder {out} holds an export of plan version {previous.get('version_id')!r}, "
                             f"not {version_id!r}: choose a new or empty folder")
    files = previous.get("files")
    listed = {MANIFEST} | {f.get("file") for f in files if isinstance(f, dict)} if isinstance(files, list) else {MANIFEST}
    extra = sorted(name for name in entries if name not in listed and not _is_partial_name(name))
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise PlanStoreError(f"export folder {out} holds files that are not part of its export of {version_id!r} "
                             f"({shown}): move them away or choose a new folder")
    return True


def _publish(staging: Path, out: Path, replacing: bool) -> None:
    """Move a complete export from ``staging`` to ``out`` (new, empty, or the export it replaces)."""
    if replacing:
        trash = out.with_name(f".{out.name}.replaced-{uuid.uuid4().hex[:8]}")
        out.rename(trash)
        try:
            staging.rename(out)
        except OSError:
            trash.rename(out)  # put the earlier export back
            raise
        shutil.rmtree(trash, ignore_errors=True)
    elif out.is_dir():  # an empty folder the caller made: keep it, fill it
        for item in staging.iterdir():
            os.replace(item, out / item.name)
        staging.rmdir()
    else:
        staging.rename(out)


def export_version(
    store: PlanStore,
    version_id: str,
    fmt: str,
    out_dir: str | Path,
    *,
    record_event: bool = True,
    actor: str = "system",
) -> ExportResult:
    """Export ``version_id`` as ``fmt`` into ``out_dir`` with ``manifest.json``."""
    if fmt not in EXPORT_FORMATS:
        raise PlanStoreError(f"unknown export format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}")
    with store.reading():  # the manifest and every file from one read-only snapshot, one connection
        header = _version_header(store, version_id)
        out = Path(out_dir).resolve()
        replacing = check_export_target(out, version_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.with_name(f".{out.name}.export-{uuid.uuid4().hex[:8]}")
        try:
            files, schema_version = _write_export(store, version_id, fmt, staging)
            manifest = _write_manifest(staging, fmt, header, schema_version, files)
            _publish(staging, out, replacing)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if record_event:
        record_export_event(store, version_id, fmt, out, files, actor=actor)
    return ExportResult(out, files, manifest)


def _write_export(store: PlanStore, version_id: str, fmt: str, out: Path) -> tuple[list[dict[str, Any]], int]:
    files: list[dict[str, Any]] = []
    if fmt == "reference":
        # imported here: the table formats need no pandas (the CLI's ``export`` starts faster)
        from plan_pipeline.exports.reference import write_reference_files

        written = write_reference_files(store, version_id, out)  # each file complete, or none
        schema_version = store.schema_version()
        for file in written:
            files.append(file_entry(file.path, file.rows, sha256=file.sha256))
    else:
        out.mkdir(parents=True, exist_ok=True)
        write = _table_writer(fmt)
        with store.snapshot() as tx:  # every table from one consistent view (export_version's)
            schema_version = tx.schema_version()
            for name in EXPORT_TABLES:
                path = out / f"{name}.{fmt}"
                rows = write(tx.version_table_rows(name, version_id), path)
                files.append(file_entry(path, rows))
    return files, schema_version


def _write_manifest(out: Path, fmt: str, header: dict[str, Any], schema_version: int,
                    files: list[dict[str, Any]]) -> dict[str, Any]:
    manifest = {
        "format": EXPORT_FORMAT_NAME,
        "format_version": 1,
        "export_format": fmt,
        **header,
        "schema_version": schema_version,
        "exported_at": utc_now().isoformat(sep=" ", timespec="seconds") + " UTC",
        "files": files,
    }
    tmp = out / f".{MANIFEST}.partial"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    return manifest


def record_export_event(store: PlanStore, version_id: str, fmt: str, out: Path, files, *, actor: str = "system") -> None:
    """Append a plan-level ``export`` event to the version's audit trail (one transaction)."""
    payload = {"format": fmt, "out_dir": str(out), "files": [f["file"] for f in files]}
    with store.transaction() as tx:
        tx.record_export_event(version_id, payload, actor=actor)


# ---------------------------------------------------------------------------------- DWH
def default_dwh_dir() -> Path:
    env = os.environ.get(DWH_DIR_ENV)
    return Path(env).resolve() if env else project_home() / "dwh"


@dataclass
class DwhResult:
    dwh_dir: Path
    versions: dict[str, dict[str, int]] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"DWH export into {self.dwh_dir}: {len(self.versions)} approved version(s)"]
        out += [f"  {v}: " + ", ".join(f"{t} {n} rows" for t, n in rows.items()) for v, rows in self.versions.items()]
        out += [f"  pruned {v} (no longer approved)" for v in self.pruned]
        return out


def export_dwh(store: PlanStore, dwh_dir: str | Path | None = None, *, prune: bool = False) -> DwhResult:
    """Write approved versions' plan_series and plan_kpis as hive-partitioned Parquet."""
    root = Path(dwh_dir).resolve() if dwh_dir else default_dwh_dir()
    result = DwhResult(root)
    with store.snapshot() as tx:  # every partition from one consistent view
        approved = [check_identifier("version id", vid) for vid in tx.approved_version_ids()]
        for vid in approved:
            result.versions[vid] = {}
            for table in DWH_TABLES:
                part = root / table / f"version_id={vid}"
                staging = root / table / f".version_id={vid}.partial-{uuid.uuid4().hex[:8]}"
                staging.mkdir(parents=True)
                try:
                    rows = tx.write_dwh_partition(table, vid, staging / "part-0.parquet")
                    if part.exists():
                        shutil.rmtree(part)
                    staging.rename(part)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                result.versions[vid][table] = rows
    if prune:
        for table in DWH_TABLES:
            folder = root / table
            for part in sorted(folder.glob("version_id=*")) if folder.is_dir() else []:
                vid = part.name.split("=", 1)[1]
                if vid not in result.versions:
                    shutil.rmtree(part)
                    if vid not in result.pruned:
                        result.pruned.append(vid)
    root.mkdir(parents=True, exist_ok=True)
    summary = {
        "exported_at": utc_now().isoformat(sep=" ", timespec="seconds") + " UTC",
        "layout": "<table>/version_id=<version>/part-0.parquet (hive partitioning)",
        "versions": result.versions,
    }
    tmp = root / f".{DWH_MANIFEST}.partial"
    tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    os.replace(tmp, root / DWH_MANIFEST)
    return result
