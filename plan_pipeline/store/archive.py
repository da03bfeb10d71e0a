"""Archive statements: a version's rows and aged rows written to Parquet files, and an archived
version's files loaded back.

:class:`ArchiveStatements` is a statement group of
:class:`~plan_pipeline.store.unit_of_work.StoreTransaction`. It writes and reads the table
files only; the archive layout, manifests, staging and publishing are the policy of
:mod:`plan_pipeline.operations.retention`.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from plan_pipeline.store.maintenance import AGED_ROW_TABLES, VERSION_TABLES, aged_rows_where
from plan_pipeline.store.table_copy import catch_up_sequences, copy_query_to, ident, load_parquet_into


class ArchiveStatements:
    """Table files of archives (a mixin of ``StoreTransaction``)."""

    _con: Any

    def version_archive_head(self, version_id: str) -> tuple[str, str | None, datetime]:
        """``(status, input_set, created_at)`` of a version being archived."""
        return self._con.execute(
            "SELECT status, input_set, created_at FROM plan_versions WHERE version_id = ?", [version_id]
        ).fetchall()[0]

    def write_version_files(self, version_id: str, folder: Path) -> dict[str, tuple[Path, int]]:
        """Every row of ``version_id`` into ``folder/<table>.parquet``, one file per table of
        :data:`~plan_pipeline.store.maintenance.VERSION_TABLES`; returns ``{table: (path, rows)}``."""
        written = {}
        for table in VERSION_TABLES:
            path = Path(folder) / f"{table}.parquet"
            written[table] = (path, copy_query_to(
                self._con, f"SELECT * FROM {ident(table)} WHERE version_id = ?", [version_id], path))
        return written

    def write_aged_rows_file(self, table: str, cutoff: datetime, keep_versions: Sequence[str], path: Path) -> int:
        """The rows ``count_aged_rows`` counts, in their natural order, into one Parquet file; returns rows."""
        order = AGED_ROW_TABLES[table][1]
        return copy_query_to(self._con, f"SELECT * FROM {ident(table)} WHERE {aged_rows_where(table)} ORDER BY {order}",
                             [cutoff, list(keep_versions)], path)

    def load_table_file(self, table: str, path: Path) -> int:
        """Insert every row of one archived table file (columns matched by name); returns rows."""
        return load_parquet_into(self._con, table, path)

    def catch_up_sequences(self) -> None:
        """Make every id sequence hand out values above the ids now stored (after loading rows)."""
        catch_up_sequences(self._con)
