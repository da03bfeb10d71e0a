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
from plan_pipeline.store.backends import is_postgres
from plan_pipeline.store.backends.postgres import not_on_postgres
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


#: The statement groups a unit of work has on PostgreSQL so far (issue 15): every other statement
#: of :class:`StoreTransaction` raises "... is not yet available on PostgreSQL".
POSTGRES_PORTED_STATEMENTS = (MaintenanceStatements, VersionStateStatements, ExportStatements, ArchiveStatements,
                              BackupStatements, LegacyImportStatements)


def _statements_of(group: type) -> set[str]:
    return {name for name, value in vars(group).items() if not name.startswith("_") and callable(value)}


def _not_yet(name: str) -> Any:
    def unavailable(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise not_on_postgres(f"the unit of work's {name}()")

    unavailable.__name__ = unavailable.__qualname__ = name
    return unavailable


class PostgresStoreTransaction(StoreTransaction):
    """A unit of work on PostgreSQL: the statements of :data:`POSTGRES_PORTED_STATEMENTS` work (today all
    of them: retention, override state, exports, archives, backups, legacy import); a statement group
    added later refuses until it is ported."""


def postgres_unported_statements() -> list[str]:
    ported = set().union(*(_statements_of(group) for group in POSTGRES_PORTED_STATEMENTS))
    return sorted(name for group in StoreTransaction.__mro__[1:] if group is not TransactionBase
                  for name in _statements_of(group) if name not in ported)


def _refuse_unported() -> None:
    for name in postgres_unported_statements():  # none left: every statement group is ported
        setattr(PostgresStoreTransaction, name, _not_yet(name))


_refuse_unported()


def transaction_class(con: Any) -> type[StoreTransaction]:
    """The unit of work's class for ``con``'s backend."""
    return PostgresStoreTransaction if is_postgres(con) else StoreTransaction
