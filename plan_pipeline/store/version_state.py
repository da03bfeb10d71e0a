"""What the replanning sensor compares per version: the state of its overrides.

:class:`VersionStateStatements` is a statement group of
:class:`~plan_pipeline.store.unit_of_work.StoreTransaction`.
"""
from __future__ import annotations

from typing import Any


class VersionStateStatements:
    """Override state rows per version (a mixin of ``StoreTransaction``)."""

    _con: Any

    def override_states(self, version_id: str | None = None) -> dict[str, list[tuple]]:
        """``{version_id: [(id, row_version, lock_flag, payload_json, updated_at), ...]}`` ordered by id,
        for every version or just ``version_id``."""
        sql = "SELECT version_id, id, row_version, lock_flag, payload_json, updated_at FROM plan_overrides"
        args: list[Any] = []
        if version_id:
            sql += " WHERE version_id = ?"
            args.append(version_id)
        states: dict[str, list[tuple]] = {}
        for row in self._con.execute(sql + " ORDER BY version_id, id", args).fetchall():
            states.setdefault(row[0], []).append(row[1:])
        return states
