"""The reference project's file formats: every document and CSV text the reference pipeline
writes (``aggregate.json``, ``sku_week.json``, ``mrp.json``, ``plan_final.json``,
``sku_week_adjusted.json``, the reconciliation CSVs, ``report.csv``), built from stage results.

The planning stages compute frames; these writers turn them into the reference's bytes (key
order, ints in ``int`` round mode, ``\\r\\n`` CSV with floats as ``repr``).
:mod:`plan_pipeline.exports.reference` rebuilds a stored version's file set with them.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from plan_pipeline.exports.json_writer import Column, NumberColumn, RecordStream, RecordTable, TextColumn
from plan_pipeline.planning.aggregate import SCHEMA_VERSION
from plan_pipeline.planning.anchor import METRICS, AnchorResult
from plan_pipeline.planning.capacity import CapacityPlan
from plan_pipeline.planning.detail import calendar_for, load_mix
from plan_pipeline.planning.report import REPORT_COLUMNS
from plan_pipeline.planning.types import PlanningInputs, PlanningParameters
from plan_pipeline.planning.vocabulary import (
    ADJ_COLUMNS,
    AGGREGATE_COLUMNS,
    DETAIL_COLUMNS,
    DETAIL_KEY_COLUMNS,
    MRP_COLUMNS,
    MRP_KEY_COLUMNS,
)

_AGGREGATE_QUANTITIES = AGGREGATE_COLUMNS[2:]
_DETAIL_QUANTITIES = DETAIL_COLUMNS[4:]
_MRP_QUANTITIES = [c for c in MRP_COLUMNS if c not in MRP_KEY_COLUMNS]


# ---------------------------------------------------------------------- from aggregate.py

AGGREGATE_NOTE = "aggregate: coarse family x period supply from demand and pooled capacity (proportional rationing on shortage)"


def aggregate_inputs_summary(inputs: PlanningInputs) -> dict[str, int]:
    return {
        "demand_rows": len(inputs.demand_family),
        "capacity_rows": len(inputs.capacity),
        "mix_rows": len(inputs.mix_share),
    }


def record_table(rows: pd.DataFrame, text_cols: list[str], num_cols: list[str], int_cols: set[str]) -> RecordTable:
    """Rows as a :class:`RecordTable` (keys ``text_cols + num_cols``; ``int_cols`` as ints)."""
    return RecordTable(
        [(c, TextColumn(rows[c])) for c in text_cols]
        + [(c, NumberColumn(rows[c].to_numpy(), as_int=c in int_cols, name=c)) for c in num_cols]
    )


def frame_records(rows: pd.DataFrame, text_cols: list[str], num_cols: list[str], int_cols: set[str]) -> list[dict]:
    """Rows as JSON-ready dicts (keys ``text_cols + num_cols``; ``int_cols`` as Python ints)."""
    return record_table(rows, text_cols, num_cols, int_cols).to_list()


def _rows(table: RecordTable | RecordStream, columnar: bool) -> RecordTable | RecordStream | list[dict]:
    """A document's rows: the table itself for :func:`write_json_document`, else its dicts."""
    return table if columnar else table.to_list()


def aggregate_document(rows: pd.DataFrame, inputs: PlanningInputs, params: PlanningParameters,
                       *, columnar: bool = False) -> dict:
    """The ``aggregate.json`` document (with ``columnar`` its rows are a :class:`RecordTable`)."""
    int_cols = set(_AGGREGATE_QUANTITIES) if params.round_mode == "int" else set()
    return {
        "schema_version": SCHEMA_VERSION,
        "note": AGGREGATE_NOTE,
        "inputs_summary": aggregate_inputs_summary(inputs),
        "rows": _rows(record_table(rows, AGGREGATE_COLUMNS[:2], _AGGREGATE_QUANTITIES, int_cols), columnar),
    }


# ---------------------------------------------------------------------- from detail.py

DETAIL_NOTE = "allocate: family->SKU and period->week proportional split (rounding with residual absorption)"


def detail_inputs_summary(
    aggregate_summary: dict, aggregate_rows: int, inputs: PlanningInputs, params: PlanningParameters
) -> dict:
    lookup = calendar_for(inputs, params)
    mix_order, _ = load_mix(inputs.mix_share)
    summary = dict(aggregate_summary)
    summary.update(
        {
            "aggregate_rows": int(aggregate_rows),
            "mix_families": len(mix_order),
            "weeks_per_period": lookup.fallback_weeks,
            "round_mode": params.round_mode,
            "calendar_mode": lookup.mode,
            "calendar_periods": len(lookup.periods),
        }
    )
    return summary


def detail_document(
    rows: pd.DataFrame | RecordStream,
    aggregate_doc: dict,
    inputs: PlanningInputs,
    params: PlanningParameters,
    aggregate_rows: int | None = None,
    *,
    columnar: bool = False,
) -> dict:
    """The ``sku_week.json`` document (with ``columnar`` its rows are a :class:`RecordTable`).

    ``aggregate_doc`` is the aggregate document (its ``schema_version``, ``inputs_summary`` and
    row count are carried) or just its inputs summary, then with ``aggregate_rows`` given.
    ``rows`` may be a :class:`RecordStream` of :func:`detail_record_table` s (a stored level
    written slice by slice).
    """
    if "inputs_summary" in aggregate_doc:
        agg_summary = aggregate_doc.get("inputs_summary") or {}
        schema = aggregate_doc.get("schema_version", SCHEMA_VERSION)
        n_agg = len(aggregate_doc.get("rows", [])) if aggregate_rows is None else aggregate_rows
    else:
        if aggregate_rows is None:
            raise ValueError("detail_document: aggregate_rows is required with a bare inputs summary")
        agg_summary, schema, n_agg = aggregate_doc, SCHEMA_VERSION, aggregate_rows
    return {
        "schema_version": schema,
        "note": DETAIL_NOTE,
        "inputs_summary": detail_inputs_summary(agg_summary, n_agg, inputs, params),
        "rows": _rows(rows if isinstance(rows, RecordStream) else detail_record_table(rows, params), columnar),
    }


def detail_record_table(rows: pd.DataFrame, params: PlanningParameters) -> RecordTable:
    int_cols = set(_DETAIL_QUANTITIES) if params.round_mode == "int" else set()
    return record_table(rows, DETAIL_KEY_COLUMNS, _DETAIL_QUANTITIES, int_cols)


def detail_rows_as_json(rows: pd.DataFrame, params: PlanningParameters) -> list[dict[str, Any]]:
    return detail_record_table(rows, params).to_list()


# ---------------------------------------------------------------------- from mrp.py

MRP_NOTE = "mrp: MRP-lite (lead time, lot size, MOQ, optional BOM)"


def mrp_document(
    rows: pd.DataFrame | RecordStream,
    detail_doc: dict,
    inputs: PlanningInputs,
    params: PlanningParameters,
    summary: dict | None = None,
    *,
    columnar: bool = False,
) -> dict:
    """The ``mrp.json`` document (with ``columnar`` its rows are a :class:`RecordTable`). ``detail_doc`` is the ``sku_week`` document (its schema version
    and inputs summary are carried); ``summary`` defaults to ``rows.attrs["summary"]``. ``rows``
    may be a :class:`RecordStream` of :func:`mrp_record_table` s (then ``summary`` is required)."""
    if summary is None and isinstance(rows, pd.DataFrame):
        summary = rows.attrs.get("summary")
    if summary is None:
        raise ValueError("mrp_document needs the summary produced by plan_mrp (rows.attrs['summary'])")
    inputs_summary = dict(detail_doc.get("inputs_summary", {}) or {})
    inputs_summary.update(summary)
    return {
        "schema_version": detail_doc.get("schema_version", SCHEMA_VERSION),
        "note": MRP_NOTE,
        "inputs_summary": inputs_summary,
        "rows": _rows(rows if isinstance(rows, RecordStream) else mrp_record_table(rows), columnar),
    }


def mrp_record_table(rows: pd.DataFrame, extra: list[tuple[str, Column]] | None = None) -> RecordTable:
    """The MRP rows as the reference writes them (``lt_weeks`` an int, the rest floats), then
    ``extra`` columns."""
    table = record_table(rows, MRP_KEY_COLUMNS, _MRP_QUANTITIES, {"lt_weeks"})
    return RecordTable(table.columns + (extra or [])) if extra else table


# ---------------------------------------------------------------------- from capacity.py

PLAN_FINAL_NOTE = "PR5: CRPライト（週次能力に合わせて解放を前倒し/繰越で調整）"


def _qty(value: float, int_mode: bool):
    return int(value) if int_mode else float(value)


def plan_final_document(plan: CapacityPlan, schema_version: str = "agg-1.0", *, columnar: bool = False,
                        rows: RecordStream | None = None) -> dict:
    """``plan_final.json`` as a dict (key order and optional keys as the reference writes them;
    with ``columnar`` its rows are a :class:`RecordTable`). ``rows``, if given, are the document's
    rows instead of ``plan.rows``' (a :class:`RecordStream` of :func:`plan_final_record_table` s)."""
    int_mode = plan.round_mode == "int"
    weekly = []
    ws = plan.weekly_summary
    has_boundary = "zone" in ws.columns
    cols = {c: ws[c].tolist() for c in ws.columns}
    for k in range(len(ws)):
        row = {
            "week": cols["week"][k],
            "capacity": float(cols["capacity"][k]),
            "original_load": _qty(cols["original_load"][k], int_mode),
            "carried_slack_in": float(cols["carried_slack_in"][k]),
            "spill_in": float(cols["spill_in"][k]),
            "adjusted_load": _qty(cols["adjusted_load"][k], int_mode),
            "spill_out": float(cols["spill_out"][k]),
            "slack_carry_out": float(cols["slack_carry_out"][k]),
        }
        if has_boundary:
            if cols["boundary_period"][k] is True:
                row["boundary_period"] = True
                row["boundary_index"] = int(cols["boundary_index"][k])
                row["boundary_size"] = int(cols["boundary_size"][k])
                if plan.has_window:
                    row["in_window_pre"] = bool(cols["in_window_pre"][k])
                    row["in_window_post"] = bool(cols["in_window_post"][k])
            z = cols["zone"][k]
            if z is not None and z is not pd.NA:
                row["zone"] = z
        weekly.append(row)

    out_rows = rows if rows is not None else plan_final_record_table(plan.rows, set(plan.fg_items), int_mode)

    return {
        "schema_version": schema_version,
        "note": PLAN_FINAL_NOTE,
        "inputs_summary": dict(plan.inputs_summary),
        "reconcile_params": dict(plan.reconcile_params),
        "weekly_summary": weekly,
        "boundary_summary": dict(plan.boundary_summary) if plan.boundary_summary is not None else None,
        "rows": _rows(out_rows, columnar),
    }


def plan_final_record_table(rows: pd.DataFrame, fg_items: set[str], int_mode: bool) -> RecordTable:
    """Rows of ``plan_final.json``: the MRP columns, then the leveled ones (ints for the finished
    goods ``fg_items`` in ``int`` round mode)."""
    fg = np.asarray(rows["item"].isin(fg_items), dtype=bool) if int_mode else False
    return mrp_record_table(rows, [(c, NumberColumn(rows[c].to_numpy(), as_int=fg, name=c)) for c in ADJ_COLUMNS])


# ---------------------------------------------------------------------- from anchor.py

def sku_week_adjusted_document(
    result: AnchorResult,
    schema_version: str = "agg-1.0",
    inputs_summary: dict | None = None,
    round_mode: str = "int",
    *,
    columnar: bool = False,
    rows: RecordStream | None = None,
) -> dict:
    """``sku_week_adjusted.json`` as a dict (with ``columnar`` its rows are a :class:`RecordTable`;
    ``rows``, if given, are its rows instead of ``result.rows``', a :class:`RecordStream` of
    :func:`adjusted_detail_record_table` s).

    Untouched cells are emitted like the detail stage writes them (ints in ``int`` mode);
    rewritten cells are floats (they were rounded to 6 decimals).
    """
    table = rows if rows is not None else adjusted_detail_record_table(result.rows, result.touched, round_mode)
    return {
        "schema_version": schema_version,
        "note": result.note,
        "inputs_summary": dict(inputs_summary or {}),
        "cutover": dict(result.cutover),
        "rows": _rows(table, columnar),
        "carryover": [dict(e) for e in result.carryover],
        "carryover_summary": dict(result.summary),
    }


def adjusted_detail_record_table(df: pd.DataFrame, touched: np.ndarray, round_mode: str) -> RecordTable:
    """Rows of ``sku_week_adjusted.json`` (``touched``: a row x :data:`METRICS` mask of the
    rewritten cells, written as floats)."""
    int_mode = round_mode == "int"
    columns: list[tuple[str, Column]] = []
    for c in DETAIL_COLUMNS:
        if c not in df.columns:
            continue
        if c in DETAIL_KEY_COLUMNS:
            columns.append((c, TextColumn(df[c])))
            continue
        values = df[c].to_numpy(dtype=np.float64)
        as_int: bool | np.ndarray = False
        if int_mode:
            untouched = ~touched[:, METRICS.index(c)] if c in METRICS else np.ones(len(df), dtype=bool)
            with np.errstate(invalid="ignore"):
                as_int = untouched & np.isfinite(values) & (values == np.trunc(values))
        columns.append((c, NumberColumn(values, as_int=as_int, name=c)))
    return RecordTable(columns)


# ---------------------------------------------------------------------- from level_reconciliation.py

RECON_CSV_COLUMNS = [
    "label", "family", "period",
    "agg_demand", "det_demand", "delta_demand", "rel_demand", "ok_demand",
    "agg_supply", "det_supply", "delta_supply", "rel_supply", "ok_supply",
    "agg_backlog", "det_backlog", "delta_backlog", "rel_backlog", "ok_backlog",
    "ok",
]


def reconciliation_csv_rows(log: dict, label: str) -> list[dict]:
    """One CSV row per ``deltas`` entry, prefixed with ``label`` (§12)."""
    out = []
    for d in log.get("deltas", []):
        row = {"label": label}
        for c in RECON_CSV_COLUMNS[1:]:
            row[c] = d.get(c)
        out.append(row)
    return out


def compare_csv_rows(log1: dict, label1: str, log2: dict, label2: str) -> list[dict]:
    """Rows of ``log1`` (label1) followed by rows of ``log2`` (label2); no pairing."""
    return reconciliation_csv_rows(log1, label1) + reconciliation_csv_rows(log2, label2)


def only_violations(rows: Iterable[dict]) -> list[dict]:
    return [r for r in rows if not r.get("ok")]


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if f != f:  # NaN = unused cell
            return ""
        return repr(f)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if v is pd.NA:
        return ""
    return str(v)


def csv_text(columns: list[str], rows: Iterable[dict]) -> str:
    """CSV as Python's csv.DictWriter writes it: header, ``\\r\\n``, floats as repr, None empty."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def reconciliation_csv_text(rows: Iterable[dict]) -> str:
    return csv_text(RECON_CSV_COLUMNS, rows)


# ---------------------------------------------------------------------- from report.py

def report_csv_text(df: pd.DataFrame) -> str:
    """report.csv text: header, ``\\r\\n`` line ends, floats as repr, NaN/None as empty.

    A capacity row whose capacity is not positive has utilization written as ``0``.
    """
    records = []
    cols = {c: df[c].tolist() for c in REPORT_COLUMNS}
    for i in range(len(df)):
        rec: dict[str, Any] = {c: cols[c][i] for c in REPORT_COLUMNS}
        for c in REPORT_COLUMNS[2:]:
            v = rec[c]
            if v is None or (isinstance(v, float) and v != v):
                rec[c] = None
        if rec["type"] == "capacity" and rec["capacity"] is not None and not rec["capacity"] > 0:
            rec["utilization"] = 0
        records.append(rec)
    return csv_text(REPORT_COLUMNS, records)
