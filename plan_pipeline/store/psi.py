"""The PSI grid of a plan version: its cells with the planners' overlay, edits, and the audit trail.

Two grains (``level``): ``det`` (SKU x week, the published ``det`` level) and ``agg`` (family x
period, the published ``aggregate`` level). A cell's plan values are those of the version's
published plan; its overlay (``edits``, ``locked``, who and when) is the current
``plan_overrides`` row of the cell (for a detail cell: its own key and, on a week shared by two
months, the key naming its month fragment). One SQL statement, the same on DuckDB and PostgreSQL,
reads a page; its cells are built from the rows. Writes go through ``store/overrides.apply_override_change`` (the one home of the rules),
all edits of one PATCH in one transaction.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plan_pipeline.planning.overrides import (
    OverrideError,
    aggregate_key,
    detail_key,
    parse_aggregate_key,
    parse_detail_key,
)
from plan_pipeline.store.backends.postgres import lock_version
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.overrides import OverrideRepository, apply_override_change, checked_override
from plan_pipeline.store.write_log import record_write
from plan_pipeline.timeutil import utc_now as _now

#: The most cells or events one page may hold.
MAX_PAGE = 5000


@dataclass(frozen=True)
class PsiGrain:
    level: str  # plan_overrides.level
    series_level: str  # plan_series level the cells come from
    key_fields: tuple[str, ...]  # the fields of a PATCH key ("period" optional for det)
    key_sql: str  # the cell's override key, built from a plan_series row ``s``
    cell_fields: tuple[str, ...]  # a cell's plan values, as the grid names them
    cell_sql: str  # their expressions on a plan_series row ``s``, in that order


GRAINS: dict[str, PsiGrain] = {
    "det": PsiGrain(
        level="det",
        series_level="det",
        key_fields=("sku", "week"),
        key_sql="'det:week=' || s.time_bucket_key || ',sku=' || s.item_key",
        cell_fields=("family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"),
        cell_sql="s.family_key, s.period_key, s.item_key, s.time_bucket_key, s.demand, s.supply, s.supply_plan, "
                 "s.backlog",
    ),
    "agg": PsiGrain(
        level="agg",
        series_level="aggregate",
        key_fields=("family", "period"),
        key_sql="'agg:period=' || s.time_bucket_key || ',family=' || s.item_key",
        cell_fields=("family", "period", "demand", "supply", "backlog", "capacity"),
        cell_sql="s.item_key, s.time_bucket_key, s.demand, s.supply, s.backlog, s.capacity_used",
    ),
}
PSI_LEVELS = tuple(GRAINS)


def psi_grain(level: str) -> PsiGrain:
    if level not in GRAINS:
        raise PlanStoreError(f"level {level!r} is not a PSI grain: one of {', '.join(GRAINS)} "
                             "(det = SKU x week, agg = family x period)")
    return GRAINS[level]


def json_timestamp(value: datetime | None) -> str | None:
    """A stored timestamp as the grid answers it (DuckDB's JSON spelling: ``2025-01-02 03:04:05``,
    a fraction only when there is one, without trailing zeros)."""
    if value is None:
        return None
    text = value.isoformat(sep=" ")
    return text.rstrip("0").rstrip(".") if "." in text else text


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise PlanStoreError(f"limit {limit} must be from 1 to {MAX_PAGE}")
    if offset < 0:
        raise PlanStoreError(f"offset {offset} must not be negative")


def psi_key(level: str, key: Any) -> str:
    """The override key of a PATCH key object: ``{"sku", "week"[, "period"]}`` (det) or
    ``{"family", "period"}`` (agg); raises OverrideError naming what is wrong."""
    grain = psi_grain(level)
    if not isinstance(key, dict):
        raise OverrideError(f"key must be an object with {', '.join(grain.key_fields)}")
    allowed = set(grain.key_fields) | ({"period"} if level == "det" else set())
    unknown = sorted(set(key) - allowed)
    missing = [f for f in grain.key_fields if key.get(f) is None]
    if unknown or missing:
        parts = ([f"unknown field(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"missing {', '.join(missing)}"] if missing else [])
        raise OverrideError(f"key {json.dumps(key)}: {'; '.join(parts)} (a {level} key has "
                            f"{', '.join(sorted(allowed))})")
    if level == "det":
        return detail_key(key["week"], key["sku"], key.get("period"))
    return aggregate_key(key["period"], key["family"])


def _published_run(con, version_id: str, series_level: str) -> str | None:
    row = con.execute(
        "SELECT run_id FROM plan_levels WHERE version_id = ? AND level = ? AND state = 'published' "
        "AND applicable AND table_name = 'plan_series'",
        [version_id, series_level],
    ).fetchone()
    return row[0] if row else None


def _unknown_cells(con, version_id: str, level: str, keys: list[dict[str, Any]], fields_set: list[bool]) -> list[str]:
    """One problem text per key (``''`` when the cell exists): against the version's published plan
    at that grain, or, before its first plan, the version's input set (a detail week is then not
    checked: the weeks of a month come from the calendar and the parameters at planning time)."""
    grain = GRAINS[level]
    run_id = _published_run(con, version_id, grain.series_level)
    first = [str(k[grain.key_fields[0]]) for k in keys]
    second = [str(k[grain.key_fields[1]]) for k in keys]
    if run_id is not None:
        found = con.execute(
            "WITH k AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS a, unnest(?::VARCHAR[]) AS b) "
            "SELECT k.a, k.b, array_agg(s.period_key ORDER BY s.row_seq) FROM k JOIN plan_series s "
            "ON s.item_key = k.a AND s.time_bucket_key = k.b "
            "WHERE s.version_id = ? AND s.level = ? AND s.source_run_id = ? GROUP BY k.a, k.b",
            [first, second, version_id, grain.series_level, run_id],
        ).fetchall()
        periods = {(r[0], r[1]): list(r[2]) for r in found}
        problems = []
        for k, a, b, sets in zip(keys, first, second, fields_set):
            cell = periods.get((a, b))
            what = f"SKU {a!r} has no week {b!r}" if level == "det" else f"family {a!r} has no period {b!r}"
            if cell is None:
                problems.append(f"{what} in the published plan of version {version_id!r}")
            elif level == "det" and k.get("period") is not None and k["period"] not in cell:
                problems.append(f"week {b!r} of SKU {a!r} has no fragment in period {k['period']!r} "
                                f"(its periods: {', '.join(cell)})")
            elif level == "det" and k.get("period") is None and len(cell) > 1 and sets:
                problems.append(f"week {b!r} of SKU {a!r} spans periods {', '.join(cell)}: give key.period")
            else:
                problems.append("")
        return problems
    row = con.execute("SELECT input_set FROM plan_versions WHERE version_id = ?", [version_id]).fetchone()
    input_set = row[0] if row else None
    if level == "agg":
        pairs = {(r[0], r[1]) for r in con.execute(
            "SELECT DISTINCT family, period FROM input_demand_family WHERE input_set = ?", [input_set]).fetchall()}
        return ["" if (a, b) in pairs else f"family {a!r} has no demand in period {b!r} in input set {input_set!r}"
                for a, b in zip(first, second)]
    skus = {r[0] for r in con.execute(
        "SELECT sku FROM input_mix_share WHERE input_set = ? UNION SELECT family FROM input_demand_family "
        "WHERE input_set = ?", [input_set, input_set]).fetchall()}
    return ["" if a in skus else f"SKU {a!r} is not in input set {input_set!r}" for a in first]


class PsiRepository(OverrideRepository):
    def psi_cells(
        self,
        version_id: str,
        level: str,
        *,
        family: str | None = None,
        sku: str | None = None,
        period: str | None = None,
        week_from: str | None = None,
        week_to: str | None = None,
        keys: list[str] | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> dict[str, Any]:
        """``{"total", "cells"}``: one page of the grid at ``level`` in plan order, filtered.

        ``week_from`` / ``week_to`` bound the week (det) or the period (agg), inclusive; ``keys``
        keeps only the cells of those override keys. A version without a published plan has no cells.
        """
        grain = psi_grain(level)
        check_page(limit, offset)
        if level == "agg" and sku is not None:
            raise PlanStoreError("sku filters the det grain; the agg grain has families and periods")
        where = ["s.version_id = ?", "s.level = ?", "s.source_run_id = ?"]
        args: list[Any] = []
        for sql, value in (("s.family_key = ?", family), ("s.item_key = ?", sku), ("s.period_key = ?", period),
                           ("s.time_bucket_key >= ?", week_from), ("s.time_bucket_key <= ?", week_to)):
            if value is not None:
                where.append(sql)
                args.append(value)
        fragment_key = f"{grain.key_sql} || ',period=' || s.period_key"
        if keys is not None:  # the keys' SKUs (families) first: the key text is built for their rows only
            items = sorted({parse_detail_key(k)[1] if level == "det" else parse_aggregate_key(k)[1] for k in keys})
            where.append("s.item_key IN (SELECT unnest(?::VARCHAR[]))")
            args.append(items)
            match = f"({grain.key_sql}) IN (SELECT unnest(?::VARCHAR[]))"
            if level == "det":
                match += f" OR ({fragment_key}) IN (SELECT unnest(?::VARCHAR[]))"
                args.append(keys)
            where.append(f"({match})")
            args.append(keys)
        overlay = ("LEFT JOIN plan_overrides g ON g.version_id = s.version_id AND g.level = ? "
                   f"AND g.key_hash = {grain.key_sql} ")
        overlay_args: list[Any] = [level]
        fragment = "g"
        if level == "det":  # a week shared by two months: its fragment may have its own key
            overlay += ("LEFT JOIN plan_overrides p ON p.version_id = s.version_id AND p.level = ? "
                        f"AND p.key_hash = {fragment_key} ")
            overlay_args.append(level)
            fragment = "p"
        with self.connect() as con:
            self._require_version(con, version_id)
            run_id = _published_run(con, version_id, grain.series_level)
            if run_id is None:
                return {"total": 0, "cells": []}
            base = [version_id, grain.series_level, run_id, *args]
            total = con.execute(
                f"SELECT count(*) FROM plan_series s WHERE {' AND '.join(where)}", base).fetchone()[0]
            rows = con.execute(
                f"SELECT {grain.cell_sql}, coalesce({fragment}.key_hash, g.key_hash, {grain.key_sql}), "
                f"g.payload_json, {fragment}.payload_json, "
                f"coalesce(g.lock_flag, FALSE) OR coalesce({fragment}.lock_flag, FALSE), "
                f"coalesce({fragment}.locked_by, g.locked_by), coalesce({fragment}.author, g.author), "
                f"greatest({fragment}.updated_at, g.updated_at) "
                f"FROM (SELECT * FROM plan_series s WHERE {' AND '.join(where)} ORDER BY s.row_seq LIMIT ? OFFSET ?) s "
                f"{overlay}ORDER BY s.row_seq",
                [*base, limit, offset, *overlay_args],
            ).fetchall()
        names = grain.cell_fields
        width = len(names)
        cells = []
        for row in rows:
            cell = dict(zip(names, row[:width]))
            key, own, fragment_payload, locked, locked_by, edited_by, edited_at = row[width:]
            # the cell's edits: its own key's, then its month fragment's over them (JSON merge patch)
            edits = {**(json.loads(own) if own else {}), **(json.loads(fragment_payload) if fragment_payload else {})}
            cell.update(key=key, edits=edits, locked=bool(locked), locked_by=locked_by, edited_by=edited_by,
                        edited_at=json_timestamp(edited_at))
            cells.append(cell)
        return {"total": int(total), "cells": cells}

    def psi_edit(
        self, version_id: str, level: str, edits: Any, *, actor: str, note: str | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        """Apply a PATCH of the grid (or ``plan-pipeline override set``): every edit or none, in one
        transaction.

        ``edits``: ``[{"key": {...}, "fields": {field: number | None}, "lock": bool | None,
        "reset": bool}]``. A broken rule is a ``PlanStoreError`` naming the edit's index, key and
        rule (nothing written); a frozen version a ``PlanConflictError``. Returns ``{"keys":
        [override keys], "events": [one per changed field]}``.
        """
        psi_grain(level)
        if not isinstance(edits, list) or not edits:
            raise PlanStoreError("edits must be a non-empty list")
        prepared: list[tuple[dict[str, Any], str, dict[str, float | None], bool | None, bool, bool]] = []
        for i, edit in enumerate(edits):
            key_obj: Any = edit.get("key") if isinstance(edit, dict) else None
            try:
                if not isinstance(edit, dict):
                    raise OverrideError("an edit must be an object with key, fields, lock, reset")
                key = psi_key(level, key_obj)
                payload = checked_override(level, key, edit.get("fields") or {})
                lock, reset = edit.get("lock"), bool(edit.get("reset") or False)
                if lock is not None and not isinstance(lock, bool):
                    raise OverrideError(f"lock {lock!r} must be true, false or null")
            except (OverrideError, PlanStoreError) as exc:
                raise PlanStoreError(f"edit #{i} (key {json.dumps(key_obj, default=str)}): {exc}") from None
            sets = any(v is not None for v in payload.values())
            prepared.append((dict(key_obj), key, payload, lock, reset, sets))
        now = _now()
        events: list[dict[str, Any]] = []
        with self.write() as con:
            lock_version(con, version_id)
            self._require_editable(con, version_id)
            problems = _unknown_cells(con, version_id, level, [p[0] for p in prepared], [p[5] for p in prepared])
            for i, problem in enumerate(problems):
                if problem:
                    raise PlanStoreError(f"edit #{i} (key {json.dumps(prepared[i][0])}): {problem}")
            source = source or self.write_source
            changed_cells = 0
            for _, key, payload, lock, reset, _ in prepared:
                _, written = apply_override_change(con, version_id, level, key, payload, lock=lock, reset=reset,
                                                   actor=actor, notes=note, now=now, source=source)
                events.extend(written)
                changed_cells += bool(written)
            if changed_cells:  # one write of the log per PATCH: its changed cells
                record_write(con, source, "override", version_id, [(level, changed_cells)], at=now)
        return {"keys": list(dict.fromkeys(p[1] for p in prepared)), "events": events}

    def psi_events(
        self,
        version_id: str,
        *,
        actor: str | None = None,
        event_type: str | None = None,
        q: str | None = None,
        level: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """``{"total", "events"}``: the version's audit trail newest first, paged, filtered by actor,
        event type, level and a case-insensitive text (in the key, the note or the payload)."""
        check_page(limit, offset)
        where, args = ["version_id = ?"], [version_id]
        for sql, value in (("actor = ?", actor), ("event_type = ?", event_type), ("level = ?", level)):
            if value is not None:
                where.append(sql)
                args.append(value)
        if q:
            where.append("(strpos(lower(key_hash), lower(?)) > 0 OR strpos(lower(coalesce(notes, '')), lower(?)) > 0 "
                         "OR strpos(lower(CAST(payload_json AS VARCHAR)), lower(?)) > 0)")
            args.extend([q, q, q])
        with self.connect() as con:
            self._require_version(con, version_id)
            total = con.execute(
                f"SELECT count(*) FROM plan_override_events WHERE {' AND '.join(where)}", args).fetchone()[0]
            rows = con.execute(
                "SELECT id, event_ts, actor, event_type, level, key_hash, notes, payload_json FROM plan_override_events "
                f"WHERE {' AND '.join(where)} ORDER BY event_ts DESC, id DESC LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        events = []
        for event_id, event_ts, actor_, kind, level_, key, notes, payload_json in rows:
            payload = json.loads(payload_json) if payload_json else None
            found = payload if isinstance(payload, dict) else {}
            events.append({"event_id": int(event_id), "event_ts": json_timestamp(event_ts), "actor": actor_,
                           "event_type": kind, "level": level_, "key": key, "field": found.get("field"),
                           "before": found.get("before"), "after": found.get("after"), "note": notes,
                           "payload": payload})
        return {"total": int(total), "events": events}
