"""Table <-> Parquet copies on an open DuckDB connection (shared by backup, retention, exports),
and the crash-safe way those copies reach their final place on disk.

Every statement is parameterized: values and file paths are bound (``read_parquet(?)``), and
the only names spliced into SQL are table, column and sequence names read from DuckDB's own
catalog and checked against a plain-identifier pattern.

**Staging.** A backup, an archive or a rebuilt store file is written under a hidden name
beside its final place, ``.<final>.<kind>-<pid>-<tag>``, next to a lock file
``.<final>.<kind>-<pid>-<tag>.lock`` on which the writer holds an exclusive ``flock`` for as
long as it lives. Publishing fsyncs every file and the folder, renames the staged path to its
final name and fsyncs the parent folder, so a path under its final name is always complete
and durable. The kernel releases a ``flock`` when its process dies (``kill -9`` and OOM kills
included), so a later cleaner that *can* take the lock knows the writer is gone and may remove
(or recover) what it left; a lock it cannot take belongs to a live writer (a concurrent
backup, say), whose staged files are left alone. The pid in the name is only for people: pid
liveness is not used, because pids are reused and differ between containers sharing a volume.
Staged paths of older releases (``.<final>.partial-<tag>``, no lock file) are only touched
once they are older than :data:`LEGACY_LEFTOVER_AGE_SECONDS`.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from plan_pipeline.store import PlanStoreError

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BATCH_ROWS = 100_000


def scalar(con, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row (the result is fetched to its end)."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier; refuses anything but a plain identifier."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise PlanStoreError(f"{name!r} is not a plain SQL identifier")
    return f'"{name}"'


def user_tables(con) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT internal ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


def table_columns(con, table: str) -> list[tuple[str, str]]:
    """(column, DuckDB type) of ``table`` in declaration order."""
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
        "ORDER BY column_index",
        [table],
    ).fetchall()
    if not rows:
        raise PlanStoreError(f"table {table!r} does not exist in this plan store")
    return [(r[0], r[1]) for r in rows]


def sequence_state(con) -> dict[str, int | None]:
    """``{sequence: last value handed out}`` (``None`` = never used)."""
    rows = con.execute(
        "SELECT sequence_name, last_value FROM duckdb_sequences() WHERE schema_name = 'main' ORDER BY sequence_name"
    ).fetchall()
    return {r[0]: (int(r[1]) if r[1] is not None else None) for r in rows}


def advance_sequence(con, name: str, last_value: int | None) -> None:
    """Move a sequence forward until it has handed out ``last_value`` (never backwards)."""
    if last_value is None:
        return
    rows = con.execute(
        "SELECT start_value, last_value, increment_by FROM duckdb_sequences() WHERE sequence_name = ?", [name]
    ).fetchall()
    row = rows[0] if rows else None
    if row is None:
        raise PlanStoreError(f"sequence {name!r} does not exist in this plan store")
    start, current, step = int(row[0]), row[1], int(row[2])
    if step != 1:
        raise PlanStoreError(f"sequence {name!r} has increment {step}; only 1 is supported")
    current = start - 1 if current is None else int(current)
    missing = int(last_value) - current
    if missing > 0:
        con.execute("SELECT max(nextval(?)) FROM range(?)", [name, missing]).fetchall()
    after = sequence_state(con).get(name)
    if after is not None and after < int(last_value):
        raise PlanStoreError(f"sequence {name!r} stopped at {after}, expected {last_value}")


def write_query_parquet(con, sql: str, params: Sequence[Any], path: Path) -> int:
    """Stream a query's rows into one Parquet file (schema kept even with no rows); returns rows.

    Written to a temporary name and renamed, so a file that exists is complete.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    # DuckDB 2 refuses a relation while an execute() result is not fully fetched (a fetchone()
    # elsewhere); a finished statement clears that state.
    con.execute("SELECT 1").fetchall()
    reader = con.sql(sql, params=list(params)).to_arrow_reader(BATCH_ROWS)
    rows = 0
    with pq.ParquetWriter(str(tmp), reader.schema) as writer:
        for batch in reader:
            if batch.num_rows:
                writer.write_batch(batch)
                rows += batch.num_rows
    os.replace(tmp, path)
    return rows


def write_table_parquet(table: pa.Table, path: Path) -> int:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    pq.write_table(table, str(tmp))
    os.replace(tmp, path)
    return table.num_rows


def parquet_rows(path: Path) -> int:
    return int(pq.ParquetFile(str(path)).metadata.num_rows)


def load_parquet_into(con, table: str, path: Path) -> int:
    """Insert every row of a Parquet file into ``table`` (columns matched by name); returns rows.

    The file must have exactly the table's columns: a backup or archive of another schema is
    refused instead of being loaded half-way.
    """
    columns = [c for c, _ in table_columns(con, table)]
    file_columns = pq.ParquetFile(str(path)).schema_arrow.names
    if sorted(file_columns) != sorted(columns):
        missing = sorted(set(columns) - set(file_columns))
        extra = sorted(set(file_columns) - set(columns))
        raise PlanStoreError(
            f"{Path(path).name} does not match table {table!r} (missing columns: {', '.join(missing) or '-'}; "
            f"unknown columns: {', '.join(extra) or '-'})"
        )
    names = ", ".join(ident(c) for c in columns)
    before = scalar(con, f"SELECT count(*) FROM {ident(table)}")
    con.execute(f"INSERT INTO {ident(table)} ({names}) SELECT {names} FROM read_parquet(?)", [str(path)]).fetchall()
    after = scalar(con, f"SELECT count(*) FROM {ident(table)}")
    return int(after - before)


def verify_table_files(folder: Path, tables: Any, what: str) -> None:
    """Check every ``{table: {file, rows, sha256}}`` entry of a manifest against the files in ``folder``."""
    folder = Path(folder)
    if not isinstance(tables, dict) or not tables:
        raise PlanStoreError(f"{what}: the manifest lists no table files")
    for table, entry in tables.items():
        ident(table)
        name = entry.get("file") if isinstance(entry, dict) else None
        path = folder / str(name)
        if not isinstance(name, str) or path.name != name or not path.is_file():
            raise PlanStoreError(f"{what}: file {name!r} of table {table!r} is missing")
        if sha256_file(path) != entry.get("sha256"):
            raise PlanStoreError(f"{what}: {path} is damaged (sha256 mismatch)")
        rows = parquet_rows(path)
        if rows != entry.get("rows"):
            raise PlanStoreError(f"{what}: {path} holds {rows} rows, the manifest says {entry.get('rows')}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path, rows: int | None) -> dict[str, Any]:
    path = Path(path)
    return {"file": path.name, "rows": rows, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def store_file_bytes(db_path: Path) -> int:
    """Bytes on disk of a DuckDB store: the file plus its write-ahead log."""
    total = 0
    for p in (Path(db_path), Path(f"{db_path}.wal")):
        if p.exists():
            total += p.stat().st_size
    return total


_NEXTVAL_RE = re.compile(r"^nextval\('([A-Za-z_][A-Za-z0-9_]*)'\)$")


def sequence_columns(con) -> list[tuple[str, str, str]]:
    """(table, column, sequence) for every column whose default is ``nextval('sequence')``."""
    rows = con.execute(
        "SELECT table_name, column_name, column_default FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND column_default IS NOT NULL ORDER BY table_name, column_index"
    ).fetchall()
    found = []
    for table, column, default in rows:
        match = _NEXTVAL_RE.match(str(default).strip())
        if match:
            found.append((table, column, match.group(1)))
    return found


def catch_up_sequences(con) -> None:
    """Make every id sequence hand out values above the ids already stored (after loading rows)."""
    for table, column, sequence in sequence_columns(con):
        top = scalar(con, f"SELECT max({ident(column)}) FROM {ident(table)}")
        if top is not None:
            current = sequence_state(con).get(sequence)
            if current is None or current < int(top):
                advance_sequence(con, sequence, int(top))


# ---------------------------------------------------------------------------------- durable files
def fsync_path(path: Path) -> None:
    """Flush a file or a folder entry list to disk."""
    fd = os.open(str(path), os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file under ``path`` (or ``path`` itself if it is a file), then the folders."""
    path = Path(path)
    if path.is_file():
        fsync_path(path)
        return
    for folder, _, files in os.walk(path, topdown=False):
        for name in files:
            fsync_path(Path(folder) / name)
        fsync_path(Path(folder))


def write_text_durable(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def ensure_folder(path: Path, what: str) -> Path:
    """``path`` as an existing folder (created with its parents); a clear error if it cannot be one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PlanStoreError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent is a file, no permission, ...
        raise PlanStoreError(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    return path


# ---------------------------------------------------------------------------------- staging
STAGED_RE = re.compile(r"^\.(?P<final>.+)\.(?P<kind>partial|restore|removing)-(?:(?P<pid>\d+)-)?(?P<tag>[0-9a-f]{8})$")
LOCK_SUFFIX = ".lock"
# Staged paths without a lock file were written by a release before the lock files; they are
# handled only when this old, so a writer of that release still running is not disturbed.
LEGACY_LEFTOVER_AGE_SECONDS = 24 * 3600


class Staging:
    """A folder (or file) being written under a hidden name beside ``parent/<final_name>``.

    Use as a context manager: entering creates and locks the lock file (and the folder when
    ``folder``); :meth:`publish` makes it final; leaving removes whatever was not published and
    the lock file. See the module docstring for the naming and locking rules.
    """

    def __init__(self, parent: Path, final_name: str, *, kind: str = "partial", folder: bool = True):
        if kind not in ("partial", "restore"):
            raise ValueError(kind)
        self.parent = Path(parent)
        name = f".{final_name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = self.parent / name
        self.lock_path = self.parent / (name + LOCK_SUFFIX)
        self.folder = folder
        self.published: Path | None = None
        self._fd: int | None = None

    def __enter__(self) -> "Staging":
        self._fd = os.open(str(self.lock_path), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            if self.folder:
                self.path.mkdir()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def publish(self, final: Path) -> Path:
        """fsync the staged content, rename it to ``final`` (which must not exist), fsync the folders."""
        self.published = publish_path(self.path, final)
        return self.published

    def __exit__(self, *exc) -> None:
        try:
            if self.published is None:
                remove_path(self.path)
        finally:
            if self._fd is not None:
                Path(self.lock_path).unlink(missing_ok=True)
                os.close(self._fd)
                self._fd = None


def publish_path(staged: Path, final: Path) -> Path:
    """Make a complete staged folder or file durable under ``final`` (which must not exist)."""
    staged, final = Path(staged), Path(final)
    if final.exists():
        raise PlanStoreError(f"{final} exists; not replacing it")
    fsync_tree(staged)
    os.rename(staged, final)
    fsync_path(final.parent)
    if final.parent != staged.parent:
        fsync_path(staged.parent)
    return final


def remove_path(path: Path) -> None:
    """Remove a staged folder or file (with a DuckDB write-ahead log beside it); missing is fine."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
        Path(f"{path}.wal").unlink(missing_ok=True)


@dataclass
class Leftover:
    """A staged path whose writer is gone; handle it while :func:`leftovers` holds its lock."""

    path: Path
    final_name: str
    kind: str
    legacy: bool  # written by a release without lock files


@contextmanager
def _claim(lock_path: Path) -> Iterator[bool]:
    """Take the writer's lock without waiting: ``True`` if taken (the writer is gone)."""
    try:
        fd = os.open(str(lock_path), os.O_RDWR)
    except OSError:  # gone (another cleaner was faster) or not ours to open
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def leftovers(parent: Path, kinds: Sequence[str], *, dry_run: bool = False,
              final_names: Callable[[str], bool] | None = None) -> Iterator[Leftover]:
    """Staged paths of ``kinds`` in ``parent`` left by writers that died, one at a time.

    ``final_names`` limits the search to staged paths whose final name it accepts.

    Each is yielded while this process holds its writer's lock (so two cleaners never handle
    the same one); after the caller's handling the lock file is removed (not in ``dry_run``).
    ``removing`` paths (an old backup being pruned) are always garbage. Orphan lock files
    (their staged path already gone) are removed too.
    """
    parent = Path(parent)
    if not parent.is_dir():
        return
    now = time.time()
    for entry in sorted(parent.iterdir()):
        if entry.name.endswith(LOCK_SUFFIX):
            staged = entry.with_name(entry.name[: -len(LOCK_SUFFIX)])
            match = STAGED_RE.match(staged.name)
            if (match and match["kind"] in kinds and (final_names is None or final_names(match["final"]))
                    and not staged.exists() and not dry_run):
                with _claim(entry) as dead:
                    if dead and not staged.exists():
                        entry.unlink(missing_ok=True)
            continue
        match = STAGED_RE.match(entry.name)
        if not match or match["kind"] not in kinds or (final_names is not None and not final_names(match["final"])):
            continue
        item = Leftover(entry, match["final"], match["kind"], legacy=False)
        if match["kind"] == "removing":
            yield item
            continue
        lock_path = entry.with_name(entry.name + LOCK_SUFFIX)
        if not lock_path.exists():
            try:
                age = now - entry.lstat().st_mtime
            except FileNotFoundError:
                continue
            if age >= LEGACY_LEFTOVER_AGE_SECONDS:
                item.legacy = True
                yield item
            continue
        with _claim(lock_path) as dead:
            if not dead or not entry.exists():
                continue
            yield item
            if not dry_run:
                lock_path.unlink(missing_ok=True)


def removing_name(path: Path) -> Path:
    """Where a folder goes (atomically) before it is deleted, so a half-deleted one never looks whole."""
    return Path(path).with_name(f".{Path(path).name}.removing-{os.getpid()}-{uuid.uuid4().hex[:8]}")
