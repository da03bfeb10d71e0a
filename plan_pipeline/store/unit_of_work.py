"""The store's public unit of work: ``with store.transaction() as tx: tx.<statement>(...)``.

Code outside ``plan_pipeline/store`` never sees a database connection: it opens a unit of work
and calls named statements on it. Everything done through one ``tx`` commits together or not
at all (``store.snapshot()`` gives the same object on a read-only, consistent view). This
interface is the seam a second backend plugs into: nothing outside the store may assume DuckDB.

Statements are grouped by table group, one mixin per store module (for example the legacy
import's writes live in ``store/legacy_import.py``); :class:`StoreTransaction` combines them.
A mixin declares ``_con: Any`` instead of subclassing :class:`TransactionBase` (this module
imports the mixins); helpers the repository shares with them live in ``store/plan_rows.py``.
"""
from __future__ import annotations

from typing import Any

from plan_pipeline.store.legacy_import import LegacyImportStatements


class TransactionBase:
    """What every statement mixin may use: the open connection (private to the store)."""

    def __init__(self, con: Any, *, read_only: bool):
        self._con = con
        self.read_only = read_only


class StoreTransaction(LegacyImportStatements, TransactionBase):
    """One open transaction on the plan store, with every statement group's methods."""
