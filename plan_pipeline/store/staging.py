"""Durable files the store's copies are written to: staging beside the final place, publishing,
checksums, and finding what interrupted writers left.

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

No SQL here: the table files themselves are written and read by :mod:`plan_pipeline.store.table_copy`.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.table_copy import ident


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(str(path)).metadata.num_rows)


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


def file_entry(path: Path, rows: int | None, *, sha256: str | None = None) -> dict[str, Any]:
    """A manifest entry; ``sha256``: the digest the writer computed (else the file is read)."""
    path = Path(path)
    return {"file": path.name, "rows": rows, "bytes": path.stat().st_size, "sha256": sha256 or sha256_file(path)}


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

    def __enter__(self) -> Staging:
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
