"""The store's public unit of work: ``with store.transaction() as tx: tx.<statement>(...)``.

Code outside ``plan_pipeline/store`` never sees a database connection: it opens a unit of work
and calls named statements on it. Everything done through one ``tx`` commits together or not
at all (``store.snapshot()`` gives the same object on a read-only, consistent view). This
interface is the seam a second backend plugs into: nothing outside the store may assume DuckDB.

Statements are grouped by table group, one mixin per store module; :class:`StoreTransaction`
combines them: ``legacy_import`` (the legacy import's version rows and run history),
``maintenance`` (retention reads, removals), ``archive`` (archive table files), ``store_files``
(backup table files), ``exports`` (export files, export event), ``version_state`` (override
state). A mixin declares ``_con: Any`` instead of subclassing :class:`TransactionBase` and
imports nothing from this module or the repository (this module imports the mixins, the
repository imports this module); helpers the repository shares with them live in
``store/plan_rows.py``.
"""
from __future__ import annotations

from typing import Any

from plan_pipeline.store.archive import ArchiveStatements
from plan_pipeline.store.exports import ExportStatements
from plan_pipeline.store.legacy_import import LegacyImportStatements
from plan_pipeline.store.maintenance import MaintenanceStatements
from plan_pipeline.store.store_files import BackupStatements
from plan_pipeline.store.version_state import VersionStateStatements
from plan_pipeline.store.write_log import DEFAULT_WRITE_SOURCE


class TransactionBase:
    """What every statement mixin may use: the open connection (private to the store)."""

    def __init__(self, con: Any, *, read_only: bool, write_source: str = DEFAULT_WRITE_SOURCE):
        self._con = con
        self.read_only = read_only
        #: the store's write source, recorded with every write made on this unit of work
        self.write_source = write_source


class StoreTransaction(
    LegacyImportStatements,
    MaintenanceStatements,
    ArchiveStatements,
    BackupStatements,
    ExportStatements,
    VersionStateStatements,
    TransactionBase,
):
    """One open transaction on the plan store, with every statement group's methods."""
