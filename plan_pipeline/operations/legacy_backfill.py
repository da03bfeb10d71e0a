"""Legacy backfill: import the plans of the reference project (scpln) into the plan store.

Sources (``source`` argument, see :func:`discover_sources`):

* a legacy **SQLite plan database** file (the reference's ``plan_versions``, ``plan_series``,
  ``plan_kpis`` and ``plan_artifacts`` tables);
* a legacy **output folder** (the pipeline's ``--storage files`` output: ``aggregate.json``,
  ``sku_week.json``, ``mrp.json``, ``plan_final.json``, ...); its version id is the folder
  name without a leading ``out_`` (``out_legacy-default`` -> ``legacy-default``);
* a **folder holding any of those**: every SQLite file directly in it, then every output
  folder directly in it. A version id found twice is imported once, from the first place in
  that order (databases before folders, each sorted by name); the later copy is noted.

Per legacy version the backfill builds exactly the frames our own stage assets write, level
by level, and stores them with the version row, its KPIs and its legacy artifacts in **one**
transaction. Per level, the version's own legacy ``plan_series`` rows win; levels the legacy
rows lack are built from the artifacts (mapping in ``docs/operations.md``). Imported versions
are ``status='imported'``, ``read_only``, without an input set, ``source='legacy:<path>'``;
the legacy status and the whole legacy header row are kept (``note`` and the artifact
``legacy_version.json``).

Idempotent: a version already in the store is skipped (``force`` replaces an imported
version's plan rows and artifacts; overrides, audit events and jobs are never touched, and a
native version is never overwritten). ``dry_run`` builds everything and reports the rows per
level without writing plan rows. Every run is a ``plan_backfill_runs`` row. One bad version
(corrupt JSON, missing table, ...) is reported as failed and the others still import.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plan_pipeline.faults import crash_point
from plan_pipeline.operations.settings import LEGACY_SOURCE_ENV
from plan_pipeline.planning.anchor import carryover_frame
from plan_pipeline.planning.capacity import MRP_COLUMNS, WEEKLY_COLUMNS, CapacityPlan, boundary_month, leveling_mode
from plan_pipeline.planning.frames import (
    capacity_frames,
    capacity_plan_from_frames,
    reconciliation_frame,
    report_kpi_frame,
)
from plan_pipeline.planning.parameters import ParameterError, normalise_anchor_policy, validate_parameters
from plan_pipeline.planning.report import REPORT_COLUMNS, plan_kpis, plan_report
from plan_pipeline.planning.types import PRESETS, PlanningInputs, PlanningParameters, empty_frame
from plan_pipeline.planning.vocabulary import ADJ_COLUMNS, AGGREGATE_COLUMNS, DETAIL_COLUMNS, MRP_KEY_COLUMNS
from plan_pipeline.store.legacy_sqlite import (
    LegacyDatabaseError,
    LegacyDatabaseOpenError,
    is_sqlite_file,
    version_headers,
    version_rows,
)
from plan_pipeline.store.repository import (
    PlanStore,
    PlanStoreError,
    check_identifier,
    direct_write_id,
    prepare_kpi_level,
    prepare_series_level,
)
from plan_pipeline.timeutil import utc_now as _now

SOURCE_PREFIX = "legacy:"
IMPORTED_STATUS = "imported"
HEADER_ARTIFACT = "legacy_version.json"
KPI_SOURCE = "legacy_backfill"
CORE_ARTIFACTS = ("aggregate.json", "sku_week.json", "mrp.json", "plan_final.json")
LEGACY_HEADER_COLUMNS = (
    "version_id", "created_at", "base_scenario_id", "status", "cutover_date", "recon_window_days",
    "objective", "note", "config_version_id", "input_set_label",
)
# Legacy plan_series levels we map (daily_det is never written by the reference).
LEGACY_LEVELS = ("aggregate", "det", "det_adjusted", "mrp", "mrp_final", "weekly_summary")

MRP_FLOAT_COLUMNS = [c for c in MRP_COLUMNS if c not in (*MRP_KEY_COLUMNS, "lt_weeks")]
# Keys of mrp.json's inputs_summary that the MRP stage itself adds (our frame's attrs['summary']).
MRP_SUMMARY_KEYS = ("items", "open_po", "bom_links", "weeks", "lt_unit", "calendar_mode")

# Which level each report KPI level is computed from.
REPORT_LEVELS = {"report": ("mrp_final", "weekly_summary"),
                 "report_adjusted": ("mrp_final_adjusted", "weekly_summary_adjusted")}

Log = Callable[[str, str], None]  # (severity: info|warning|error, message)


class LegacySourceError(RuntimeError):
    """The source as a whole cannot be read (missing path, not a legacy database, ...)."""


def configured_legacy_source(source: str | None = None) -> str:
    """``source`` if given, else the configured legacy source ``$PLAN_PIPELINE_LEGACY_SOURCE``
    (the CLI's ``--source`` default, the launchpad's and the schedule's)."""
    chosen = (source or "").strip() or os.environ.get(LEGACY_SOURCE_ENV, "").strip()
    if not chosen:
        raise LegacySourceError(f"no legacy source: set {LEGACY_SOURCE_ENV}")
    return chosen


class LegacyDataError(ValueError):
    """One legacy version cannot be imported; the message says which artifact/table and why."""


def _from_epoch_ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000.0, tz=UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


# =============================================================================== discovery
@dataclass(frozen=True)
class LegacySource:
    kind: str  # "sqlite" | "folder"
    path: Path

    @property
    def label(self) -> str:
        return f"{SOURCE_PREFIX}{self.path}"


def is_output_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in CORE_ARTIFACTS)


def discover_sources(source: str | Path) -> list[LegacySource]:
    """The legacy databases and output folders named by ``source`` (see the module doc)."""
    if not str(source).strip():
        raise LegacySourceError("no legacy source given")
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise LegacySourceError(f"legacy source {path} does not exist")
    if path.is_file():
        if not is_sqlite_file(path):
            raise LegacySourceError(f"legacy source {path} is not a SQLite database")
        return [LegacySource("sqlite", path)]
    if is_output_folder(path):
        return [LegacySource("folder", path)]
    children = sorted(path.iterdir(), key=lambda p: p.name)
    found = [LegacySource("sqlite", c) for c in children if c.is_file() and is_sqlite_file(c)]
    found += [LegacySource("folder", c) for c in children if is_output_folder(c)]
    if not found:
        raise LegacySourceError(
            f"no legacy plan database (SQLite file) or output folder (with {', '.join(CORE_ARTIFACTS)}) in {path}"
        )
    return found


def folder_version_id(folder: Path) -> str:
    name = folder.name
    return name[4:] if name.startswith("out_") and len(name) > 4 else name


@dataclass
class LegacyVersion:
    """One plan version found in a source (its rows are read by :func:`read_legacy_version`)."""

    version_id: str
    source: LegacySource
    header: dict[str, Any] | None = None  # the legacy plan_versions row (databases only)
    duplicates: list[str] = field(default_factory=list)  # other places holding the same id


def list_versions(sources: list[LegacySource]) -> tuple[list[LegacyVersion], list[str]]:
    """Every version of every source (first occurrence of an id wins) and source-level problems."""
    versions: dict[str, LegacyVersion] = {}
    problems: list[str] = []
    for src in sources:
        found: list[LegacyVersion] = []
        if src.kind == "folder":
            found.append(LegacyVersion(folder_version_id(src.path), src))
        else:
            try:
                rows = version_headers(src.path, LEGACY_HEADER_COLUMNS)
            except LegacyDatabaseError as exc:  # also: no plan_versions table
                problems.append(f"{src.path}: {exc}")
                continue
            for row in rows:
                header = dict(zip(LEGACY_HEADER_COLUMNS, row))
                found.append(LegacyVersion(str(header["version_id"]), src, header))
        for lv in found:
            if lv.version_id in versions:
                versions[lv.version_id].duplicates.append(f"{src.kind} {src.path}")
            else:
                versions[lv.version_id] = lv
    return list(versions.values()), problems


# =============================================================================== reading
@dataclass
class LegacyContent:
    """What a source holds for one version: raw legacy rows and artifact texts."""

    series: dict[str, pd.DataFrame] = field(default_factory=dict)  # legacy level -> raw rows (rowid order)
    kpis: pd.DataFrame | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> JSON text as stored
    notes: list[str] = field(default_factory=list)


def read_legacy_version(lv: LegacyVersion) -> LegacyContent:
    if lv.source.kind == "folder":
        return _read_folder(lv.source.path)
    return _read_sqlite(lv.source.path, lv.version_id)


def _read_folder(folder: Path) -> LegacyContent:
    content = LegacyContent()
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LegacyDataError(f"{path.name}: cannot be read ({exc})") from None
        if path.suffix == ".json":
            content.artifacts[path.name] = text
        elif path.suffix == ".csv":
            # the legacy store wraps CSV outputs this way (persistence spec §1.2)
            content.artifacts[path.name] = json.dumps({"type": "csv", "content": text}, ensure_ascii=False)
    return content


def _read_sqlite(path: Path, version_id: str) -> LegacyContent:
    try:
        found = version_rows(path, version_id)
    except LegacyDatabaseOpenError as exc:
        raise LegacyDataError(f"cannot open {path}: {exc}") from None
    except LegacyDatabaseError as exc:
        raise LegacyDataError(f"reading {path}: {exc}") from None
    content = LegacyContent(artifacts=found.artifacts)
    content.notes.extend(f"table {table} is missing in the legacy database" for table in found.missing_tables)
    if found.series is not None:
        for level, rows in found.series.groupby("level", sort=False):
            content.series[str(level)] = rows.reset_index(drop=True)
    if found.kpis is not None:
        content.kpis = found.kpis if len(found.kpis) else None
    return content


def parse_artifacts(texts: dict[str, str]) -> dict[str, Any]:
    """Every artifact parsed; an artifact that is not valid JSON fails the version."""
    docs: dict[str, Any] = {}
    for name, text in texts.items():
        if not text or not text.strip():
            raise LegacyDataError(f"artifact {name} is empty")
        try:
            docs[name] = json.loads(text, parse_constant=_reject_constant)
        except (json.JSONDecodeError, ValueError) as exc:
            raise LegacyDataError(f"artifact {name} is not valid JSON: {exc}") from None
    return docs


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in a stored artifact")


# =============================================================================== parameters
def legacy_parameters(header: dict | None, docs: dict[str, Any]) -> tuple[PlanningParameters, list[str]]:
    """The planning parameters a legacy version was run with, as far as its data tells."""
    notes: list[str] = []
    sku_summary = _summary(docs.get("sku_week.json"))
    mrp_summary = _summary(docs.get("mrp.json"))
    final_doc = docs.get("plan_final.json")
    final: dict[str, Any] = final_doc if isinstance(final_doc, dict) else {}
    recon_doc = final.get("reconcile_params")
    recon: dict[str, Any] = recon_doc if isinstance(recon_doc, dict) else {}
    header = header or {}
    values: dict[str, Any] = {}
    if sku_summary.get("round_mode"):
        values["round_mode"] = str(sku_summary["round_mode"])
    if mrp_summary.get("lt_unit"):
        values["lt_unit"] = str(mrp_summary["lt_unit"])
    if isinstance(sku_summary.get("weeks_per_period"), int) and not isinstance(sku_summary["weeks_per_period"], bool):
        values["fallback_weeks"] = int(sku_summary["weeks_per_period"])
    cutover = header.get("cutover_date") or recon.get("cutover_date")
    if cutover:
        values["cutover_date"] = str(cutover)
    window = header.get("recon_window_days")
    if window is None:
        window = recon.get("recon_window_days")
    if window is not None:
        try:
            values["recon_window_days"] = int(window)
        except (TypeError, ValueError):
            notes.append(f"recon_window_days {window!r} ignored (not an integer)")
    if recon.get("anchor_policy"):
        values["anchor_policy"] = normalise_anchor_policy(str(recon["anchor_policy"]))
    objective = header.get("objective")
    if objective and str(objective).lower() in PRESETS:
        values["preset"] = str(objective).lower()
    if "plan_final_adjusted.json" in docs or "mrp_adjusted.json" in docs:
        values["apply_adjusted"] = True
    try:
        return validate_parameters(PlanningParameters(**values)), notes
    except (ParameterError, TypeError) as exc:
        notes.append(f"legacy parameters not usable, defaults kept: {exc}")
        return PlanningParameters(), notes


def _summary(doc: Any) -> dict:
    if isinstance(doc, dict) and isinstance(doc.get("inputs_summary"), dict):
        return doc["inputs_summary"]
    return {}


# =============================================================================== frames
def _text(values) -> pd.Series:
    return pd.Series([None if v is None else str(v) for v in values], dtype=object)


def _number(values) -> pd.Series:
    """Quantities as float64; null or non-numeric become 0.0 (the legacy builders' rule)."""
    series = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce")
    return series.astype("float64").fillna(0.0)


def _doc_rows(docs: dict, name: str, key: str = "rows") -> list[dict]:
    doc = docs[name]
    if not isinstance(doc, dict):
        raise LegacyDataError(f"artifact {name}: expected a JSON object")
    rows = doc.get(key)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise LegacyDataError(f"artifact {name}: {key!r} must be a list of objects")
    return rows


def _rows_frame(rows: list[dict], text_cols: list[str], num_cols: list[str], int_cols: tuple[str, ...] = ()) -> pd.DataFrame:
    data: dict[str, pd.Series] = {}
    for col in text_cols + num_cols:
        values = [r.get(col) for r in rows]
        if col in text_cols:
            data[col] = _text(values)
        elif col in int_cols:
            data[col] = _number(values).round().astype("int64")
        else:
            data[col] = _number(values)
    return pd.DataFrame(data, columns=text_cols + num_cols)


def aggregate_frame_from_doc(docs: dict, name: str = "aggregate.json") -> pd.DataFrame:
    return _rows_frame(_doc_rows(docs, name), ["family", "period"], AGGREGATE_COLUMNS[2:])


def detail_frame_from_doc(docs: dict, name: str) -> pd.DataFrame:
    rows = _doc_rows(docs, name)
    rows = [r if "supply_plan" in r else {**r, "supply_plan": r.get("supply")} for r in rows]
    return _rows_frame(rows, DETAIL_COLUMNS[:4], DETAIL_COLUMNS[4:])


def mrp_frame_from_doc(docs: dict, name: str) -> pd.DataFrame:
    frame = _mrp_rows_frame(_doc_rows(docs, name), MRP_COLUMNS)
    frame.attrs["summary"] = {k: _summary(docs[name])[k] for k in MRP_SUMMARY_KEYS if k in _summary(docs[name])}
    return frame


def _mrp_rows_frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    rows = [r if r.get("sku") is not None else {**r, "sku": r.get("item")} for r in rows]
    numeric = [c for c in columns if c not in ("item", "sku", "week")]
    frame = _rows_frame(rows, ["item", "sku", "week"], numeric, ("lt_weeks",))
    return frame[columns]


def detail_frame_from_adjusted_doc(docs: dict, name: str) -> pd.DataFrame:
    """``sku_week_adjusted.json`` -> the anchor stage's ``det_adjusted`` frame (and its attrs)."""
    frame = detail_frame_from_doc(docs, name)
    doc = docs[name]
    frame.attrs["anchor"] = {
        "note": doc.get("note", ""),
        "cutover": dict(doc.get("cutover") or {}),
        "summary": dict(doc.get("carryover_summary") or {}),
        "carryover": list(doc.get("carryover") or []),
        "adjusted_groups": [],  # not recorded by the legacy document
    }
    return frame


def _legacy_gate_mode(params: PlanningParameters) -> str:
    """The leveling the legacy run actually used: its gate admitted only DET_near (spec §19.2)."""
    p = params.resolved()
    mode = leveling_mode(p.anchor_policy, boundary_month(p.cutover_date))
    return mode if mode == "det_near" else "forward"


def _boundary_from_zones(weekly: pd.DataFrame, window_days: int | None) -> pd.DataFrame:
    """Boundary columns of the weekly summary from its zones (legacy rows keep only the zone)."""
    zones = weekly["zone"].tolist()
    n = len(zones)
    bp: list[Any] = [None] * n
    bi: list[Any] = [None] * n
    bs: list[Any] = [None] * n
    wpre: list[Any] = [None] * n
    wpost: list[Any] = [None] * n
    at = [i for i, z in enumerate(zones) if z == "at"]
    wwin = max(1, int(np.ceil(window_days / 7))) if window_days else None
    for k, i in enumerate(at, start=1):
        bp[i], bi[i], bs[i] = True, k, len(at)
        if wwin is not None:
            wpre[i] = k <= wwin
            wpost[i] = (len(at) - k + 1) <= wwin
    out = weekly[WEEKLY_COLUMNS].copy()
    out["boundary_period"] = bp
    out["boundary_index"] = bi
    out["boundary_size"] = bs
    out["in_window_pre"] = wpre
    out["in_window_post"] = wpost
    out["zone"] = pd.Series(zones, dtype=object)
    return out


def _capacity_frames(rows: pd.DataFrame, weekly: pd.DataFrame, params: PlanningParameters,
                     fg_items: list[str], doc: dict | None, detail_rows: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mrp_final, weekly_summary) frames exactly as :func:`capacity_frames` shapes them."""
    p = params.resolved()
    month = boundary_month(p.cutover_date)
    doc = doc or {}
    if doc.get("boundary_summary") is not None:
        boundary_summary = dict(doc["boundary_summary"])
    elif month is not None and "zone" in weekly.columns:
        zones = weekly["zone"].tolist()
        boundary_summary = {
            "period": month, "anchor_policy": p.anchor_policy, "window_days": p.recon_window_days,
            "weeks": zones.count("at"), "pre_weeks": zones.count("pre"), "post_weeks": zones.count("post"),
        }
    else:
        boundary_summary = None
    if isinstance(doc.get("inputs_summary"), dict):
        inputs_summary = dict(doc["inputs_summary"])
    else:
        inputs_summary = {"mrp_rows": len(rows), "weeks": len(weekly), "fg_skus": len(fg_items)}
        if detail_rows is not None:
            inputs_summary = {"allocate_rows": int(detail_rows), **inputs_summary}
    if isinstance(doc.get("reconcile_params"), dict):
        reconcile_params = dict(doc["reconcile_params"])
    else:
        reconcile_params = {"cutover_date": p.cutover_date, "recon_window_days": p.recon_window_days,
                            "anchor_policy": p.anchor_policy}
    original = weekly["original_load"].to_numpy(dtype=float)
    leveled = original + weekly["spill_in"].to_numpy(dtype=float) - weekly["spill_out"].to_numpy(dtype=float)
    plan = CapacityPlan(
        rows=rows,
        weekly_summary=weekly,
        boundary_summary=boundary_summary,
        reconcile_params=reconcile_params,
        inputs_summary=inputs_summary,
        round_mode=p.round_mode,
        mode=_legacy_gate_mode(p),
        fg_items=list(fg_items),
        leveled_load=leveled,
        unplaced_load=float(weekly["spill_out"].iloc[-1]) if len(weekly) else 0.0,
        share_next=None,
        has_window=bool(p.recon_window_days),
        extra={},
    )
    return capacity_frames(plan)


def capacity_frames_from_doc(docs: dict, name: str, params: PlanningParameters,
                             fg_items: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``plan_final.json`` (or ``plan_final_adjusted.json``) -> (mrp_final, weekly_summary)."""
    doc = docs[name]
    rows = _mrp_rows_frame(_doc_rows(docs, name), MRP_COLUMNS + ADJ_COLUMNS)
    entries = _doc_rows(docs, name, "weekly_summary")
    weekly = _rows_frame(entries, ["week"], WEEKLY_COLUMNS[1:])
    if doc.get("boundary_summary") is not None:
        weekly["boundary_period"] = [True if e.get("boundary_period") is True else None for e in entries]
        weekly["boundary_index"] = [e.get("boundary_index") for e in entries]
        weekly["boundary_size"] = [e.get("boundary_size") for e in entries]
        weekly["in_window_pre"] = [e.get("in_window_pre") for e in entries]
        weekly["in_window_post"] = [e.get("in_window_post") for e in entries]
        weekly["zone"] = _text([e.get("zone", e.get("boundary_zone")) for e in entries])
    detail_rows = _summary(doc).get("allocate_rows")
    return _capacity_frames(rows, weekly, params, fg_items, doc, detail_rows)


# ------------------------------------------------------------------ legacy plan_series rows
def _extras(raw: pd.DataFrame, level: str) -> list[dict]:
    out = []
    for text in raw["extra_json"].tolist() if "extra_json" in raw.columns else [None] * len(raw):
        try:
            value = json.loads(text) if text else {}
        except (TypeError, json.JSONDecodeError) as exc:
            raise LegacyDataError(f"plan_series level {level}: extra_json is not valid JSON: {exc}") from None
        out.append(value if isinstance(value, dict) else {})
    return out


def _column(raw: pd.DataFrame, name: str) -> list[Any]:
    return raw[name].tolist() if name in raw.columns else [None] * len(raw)


def _extra_or(extras: list[dict], key: str, fallback: list[Any]) -> list[Any]:
    return [e[key] if e.get(key) is not None else fb for e, fb in zip(extras, fallback)]


def aggregate_frame_from_series(raw: pd.DataFrame) -> pd.DataFrame:
    extras = _extras(raw, "aggregate")
    return pd.DataFrame({
        "family": _text(_column(raw, "item_key")),
        "period": _text(_column(raw, "time_bucket_key")),
        "demand": _number(_column(raw, "demand")),
        "supply": _number(_column(raw, "supply")),
        "backlog": _number(_column(raw, "backlog")),
        "capacity_total": _number(_extra_or(extras, "capacity_total", _column(raw, "capacity_used"))),
    })


def detail_frame_from_series(raw: pd.DataFrame, level: str) -> pd.DataFrame:
    """Legacy ``det`` rows are one row per (week, sku): a shared week's fragments were summed.

    ``family``/``period`` are the first fragment's; ``families``/``periods`` (comma-joined) are
    added when a row merged several; ``on_hand_start``/``on_hand_end`` when the legacy rows
    carry inventory (backfill-written databases).
    """
    extras = _extras(raw, level)
    supply = _number(_column(raw, "supply"))
    frame = pd.DataFrame({
        "family": _text([e.get("family") for e in extras]),
        "period": _text([e.get("period") for e in extras]),
        "sku": _text(_column(raw, "item_key")),
        "week": _text(_column(raw, "time_bucket_key")),
        "demand": _number(_column(raw, "demand")),
        "supply": supply,
        "supply_plan": supply.copy(),  # the legacy live write sets supply_plan = supply
        "backlog": _number(_column(raw, "backlog")),
    })
    for key in ("periods", "families"):
        lists = [value if isinstance(value := e.get(key), list) and len(value) > 1 else None for e in extras]
        if any(v is not None for v in lists):
            frame[key] = _text([",".join(str(x) for x in v) if v is not None else None for v in lists])
    inv_open = _number(_column(raw, "inventory_open"))
    inv_close = _number(_column(raw, "inventory_close"))
    if (inv_open != 0).any() or (inv_close != 0).any():
        frame["on_hand_start"] = inv_open
        frame["on_hand_end"] = inv_close
    return frame


def mrp_frame_from_series(raw: pd.DataFrame, level: str, with_adjusted: bool) -> pd.DataFrame:
    extras = _extras(raw, level)
    item = _text(_column(raw, "item_key"))
    # supply is planned_order_receipt for mrp; for mrp_final the adjusted receipt if truthy (G18),
    # so the exact receipts come from extra_json, supply being only the fallback.
    supply = _column(raw, "supply")
    receipt = _extra_or(extras, "planned_order_receipt", supply)
    release = _extra_or(extras, "planned_order_release", _column(raw, "prod_qty"))
    data = {
        "item": item,
        "sku": item.copy(),
        "week": _text(_column(raw, "time_bucket_key")),
        "gross_req": _number(_column(raw, "demand")),
        "scheduled_receipts": _number([e.get("scheduled_receipts") for e in extras]),
        "on_hand_start": _number(_extra_or(extras, "on_hand_start", _column(raw, "inventory_open"))),
        "net_req": _number(_column(raw, "backlog")),
        "planned_order_receipt": _number(receipt),
        "planned_order_release": _number(release),
        "lt_weeks": _number([e.get("lt_weeks") for e in extras]).round().astype("int64"),
        "lot": _number([e.get("lot") for e in extras]),
        "moq": _number([e.get("moq") for e in extras]),
        "on_hand_end": _number(_extra_or(extras, "on_hand_end", _column(raw, "inventory_close"))),
    }
    if with_adjusted:
        data["planned_order_release_adj"] = _number(_extra_or(extras, "planned_order_release_adj", release))
        data["planned_order_receipt_adj"] = _number(_extra_or(extras, "planned_order_receipt_adj", supply))
    return pd.DataFrame(data)


def weekly_frame_from_series(raw: pd.DataFrame, params: PlanningParameters) -> pd.DataFrame:
    extras = _extras(raw, "weekly_summary")
    zone = [z if isinstance(z, str) and z else None for z in _column(raw, "boundary_zone")]
    zone = [z if z is not None else (e.get("zone") or e.get("boundary_zone")) for z, e in zip(zone, extras)]
    weekly = pd.DataFrame({
        "week": _text(_column(raw, "time_bucket_key")),
        "capacity": _number(_extra_or(extras, "capacity", _column(raw, "capacity_used"))),
        "original_load": _number(_column(raw, "demand")),
        "carried_slack_in": _number([e.get("carried_slack_in") for e in extras]),
        "spill_in": _number(_extra_or(extras, "spill_in", _column(raw, "spill_in"))),
        "adjusted_load": _number(_column(raw, "supply")),
        "spill_out": _number(_extra_or(extras, "spill_out", _column(raw, "backlog"))),
        "slack_carry_out": _number([e.get("slack_carry_out") for e in extras]),
    })
    p = params.resolved()
    if boundary_month(p.cutover_date) is not None:
        weekly["zone"] = pd.Series(zone, dtype=object)
        weekly = _boundary_from_zones(weekly, p.recon_window_days)
    return weekly


def kpi_frame_from_legacy(raw: pd.DataFrame) -> pd.DataFrame:
    """Legacy ``plan_kpis`` rows in the shape of :func:`plan_pipeline.planning.report.plan_kpis`."""
    frame = pd.DataFrame({
        "metric": _text(raw["metric"]),
        "bucket_type": _text([v or "total" for v in raw["bucket_type"]]),
        "bucket_key": _text([v or "total" for v in raw["bucket_key"]]),
        "value": _number(raw["value"]),
        "unit": pd.Series([None if v is None or v != v else str(v) for v in raw["unit"]], dtype=object),
    })
    return frame


def _fg_inputs(fg_items: list[str]) -> PlanningInputs:
    mix = pd.DataFrame({"family": pd.Series([""] * len(fg_items), dtype=object),
                        "sku": pd.Series(list(fg_items), dtype=object),
                        "share": pd.Series([1.0] * len(fg_items), dtype="float64")})
    return PlanningInputs(demand_family=empty_frame("demand_family"), capacity=empty_frame("capacity"), mix_share=mix)


def report_frame(rows: pd.DataFrame | None, weekly: pd.DataFrame | None, kpis: pd.DataFrame,
                 fg_items: list[str]) -> pd.DataFrame:
    """The ``plan_report`` asset's long KPI frame: report.csv rows (when a capacity plan exists)
    plus the plan KPIs."""
    if rows is not None and weekly is not None:
        report = plan_report(capacity_plan_from_frames(rows, weekly), _fg_inputs(fg_items))
    else:
        report = pd.DataFrame({c: pd.Series(dtype="float64" if c not in ("type", "week") else object)
                               for c in REPORT_COLUMNS})
    return report_kpi_frame(report, kpis)


# =============================================================================== payload
@dataclass
class VersionPayload:
    version_id: str
    params: PlanningParameters
    status: str
    read_only: bool
    note: str | None
    source: str
    created_at: datetime
    series: dict[str, pd.DataFrame]
    kpis: dict[str, pd.DataFrame]
    artifacts: dict[str, str]  # name -> JSON text
    level_origin: dict[str, str]  # level -> "plan_series" | artifact name
    notes: list[str]

    def series_rows(self) -> dict[str, int]:
        return {level: len(frame) for level, frame in self.series.items()}

    def kpi_rows(self) -> dict[str, int]:
        return {level: len(frame) for level, frame in self.kpis.items()}

    @property
    def rows_total(self) -> int:
        return sum(self.series_rows().values()) + sum(self.kpi_rows().values())


def _fg_items(docs: dict, series: dict[str, pd.DataFrame]) -> list[str]:
    """Finished goods = the mix_share SKUs, which the legacy data does not store: taken as the
    detail plan's SKUs (first-seen order) without the pseudo-SKU the detail stage gives a
    family absent from the mix (its SKU is the family code itself)."""
    if "sku_week.json" in docs:
        pairs = [(r.get("family"), r.get("sku")) for r in _doc_rows(docs, "sku_week.json")]
    elif "det" in series:
        pairs = list(zip(series["det"]["family"].tolist(), series["det"]["sku"].tolist()))
    else:
        return []
    skus = [str(s) for f, s in pairs if s is not None and str(s) != str(f)]
    return list(dict.fromkeys(skus))


def build_payload(lv: LegacyVersion, content: LegacyContent) -> VersionPayload:
    """Every level, KPI frame and artifact of one legacy version (raises LegacyDataError)."""
    try:
        check_identifier("legacy version id", lv.version_id)
    except PlanStoreError as exc:
        raise LegacyDataError(str(exc)) from None
    docs = parse_artifacts(content.artifacts)
    params, notes = legacy_parameters(lv.header, docs)
    notes = list(content.notes) + notes
    series: dict[str, pd.DataFrame] = {}
    origin: dict[str, str] = {}

    # 1. the legacy version's own plan_series rows, level by level
    raw = content.series
    for level in raw:
        if level not in LEGACY_LEVELS:
            notes.append(f"legacy plan_series level {level!r} ({len(raw[level])} rows) has no counterpart; not imported")
    try:
        if "aggregate" in raw:
            series["aggregate"] = aggregate_frame_from_series(raw["aggregate"])
        for level in ("det", "det_adjusted"):
            if level in raw:
                series[level] = detail_frame_from_series(raw[level], level)
        if "mrp" in raw:
            series["mrp"] = mrp_frame_from_series(raw["mrp"], "mrp", with_adjusted=False)
            if "mrp.json" in docs:
                summary = _summary(docs["mrp.json"])
                series["mrp"].attrs["summary"] = {k: summary[k] for k in MRP_SUMMARY_KEYS if k in summary}
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, LegacyDataError):
            raise
        raise LegacyDataError(f"legacy plan_series rows cannot be mapped: {exc!r}") from None
    for level in series:
        origin[level] = "plan_series"

    fg = _fg_items(docs, series)

    def want(*levels: str) -> bool:
        return any(level not in series for level in levels)

    try:
        if "mrp_final" in raw and "weekly_summary" in raw:
            rows = mrp_frame_from_series(raw["mrp_final"], "mrp_final", with_adjusted=True)
            weekly = weekly_frame_from_series(raw["weekly_summary"], params)
            det_rows = len(_doc_rows(docs, "sku_week.json")) if "sku_week.json" in docs else None
            series["mrp_final"], series["weekly_summary"] = _capacity_frames(
                rows, weekly, params, fg, docs.get("plan_final.json"), det_rows)
            origin["mrp_final"] = origin["weekly_summary"] = "plan_series"
        elif "mrp_final" in raw or "weekly_summary" in raw:
            notes.append("legacy plan_series has only one of mrp_final/weekly_summary; both are built from plan_final.json")

        # 2. levels the legacy rows lack, from the artifacts
        builders: list[tuple[tuple[str, ...], str, Callable[[], Any]]] = [
            (("aggregate",), "aggregate.json", lambda: aggregate_frame_from_doc(docs)),
            (("det",), "sku_week.json", lambda: detail_frame_from_doc(docs, "sku_week.json")),
            (("mrp",), "mrp.json", lambda: mrp_frame_from_doc(docs, "mrp.json")),
            (("mrp_final", "weekly_summary"), "plan_final.json",
             lambda: capacity_frames_from_doc(docs, "plan_final.json", params, fg)),
            (("level_reconciliation",), "reconciliation_log.json",
             lambda: reconciliation_frame(_doc_object(docs, "reconciliation_log.json"))),
            (("det_adjusted",), "sku_week_adjusted.json",
             lambda: detail_frame_from_adjusted_doc(docs, "sku_week_adjusted.json")),
            (("carryover",), "sku_week_adjusted.json",
             lambda: carryover_frame(list(_doc_object(docs, "sku_week_adjusted.json").get("carryover") or []))),
            (("level_reconciliation_adjusted",), "reconciliation_log_adjusted.json",
             lambda: reconciliation_frame(_doc_object(docs, "reconciliation_log_adjusted.json"))),
            (("mrp_adjusted",), "mrp_adjusted.json", lambda: mrp_frame_from_doc(docs, "mrp_adjusted.json")),
            (("mrp_final_adjusted", "weekly_summary_adjusted"), "plan_final_adjusted.json",
             lambda: capacity_frames_from_doc(docs, "plan_final_adjusted.json", params, fg)),
        ]
        for levels, name, build in builders:
            if name not in docs or not want(*levels):
                continue
            if levels == ("carryover",) and "carryover" not in docs[name]:
                continue
            built = build()
            frames = built if isinstance(built, tuple) else (built,)
            for level, frame in zip(levels, frames):
                series[level] = frame
                origin[level] = name

        # 3. KPIs: the legacy plan_kpis rows, else computed from the aggregate level
        if content.kpis is not None:
            plan = kpi_frame_from_legacy(content.kpis)
            kpi_origin = "plan_kpis"
        elif "aggregate" in series:
            plan = plan_kpis(series["aggregate"])
            kpi_origin = origin["aggregate"]
        else:
            plan = None
            kpi_origin = ""
        kpis: dict[str, pd.DataFrame] = {}
        for level, (rows_level, weekly_level) in REPORT_LEVELS.items():
            has_plan = rows_level in series and weekly_level in series
            if level == "report_adjusted" and not has_plan:
                continue
            if plan is None and not has_plan:
                continue
            kpis[level] = report_frame(series.get(rows_level) if has_plan else None,
                                       series.get(weekly_level) if has_plan else None,
                                       plan if plan is not None else plan_kpis(None), fg)
            origin[level] = kpi_origin or origin[rows_level]
    except LegacyDataError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise LegacyDataError(f"legacy data cannot be mapped: {type(exc).__name__}: {exc}") from None

    if not series and not kpis:
        raise LegacyDataError(
            "nothing to import: no legacy plan_series/plan_kpis rows and none of "
            + ", ".join(CORE_ARTIFACTS)
        )

    if fg and "plan_final.json" in docs:
        expected = _summary(docs["plan_final.json"]).get("fg_skus")
        if isinstance(expected, int) and expected != len(fg):
            notes.append(f"plan_final.json counts {expected} finished goods, the detail plan has {len(fg)}; "
                         "report service rows use the detail plan's SKUs")

    artifacts = dict(content.artifacts)
    header = dict(lv.header) if lv.header else None
    legacy_status = header.get("status") if header else None
    artifacts[HEADER_ARTIFACT] = json.dumps({
        "origin": lv.source.kind,
        "path": str(lv.source.path),
        "plan_version": header,
        "levels": origin,
    }, ensure_ascii=False, default=str)
    if header:
        note = f"[legacy status: {legacy_status if legacy_status is not None else 'none'}]"
        if header.get("note"):
            note += f" {header['note']}"
        created = _from_epoch_ms(header.get("created_at")) or _now()
    else:
        note = "[legacy output folder]"
        created = _folder_time(lv.source.path)
    return VersionPayload(
        version_id=lv.version_id,
        params=params,
        status=IMPORTED_STATUS,
        read_only=True,
        note=note,
        source=lv.source.label,
        created_at=created,
        series=series,
        kpis=kpis,
        artifacts=artifacts,
        level_origin=origin,
        notes=notes,
    )


def _doc_object(docs: dict, name: str) -> dict:
    doc = docs[name]
    if not isinstance(doc, dict):
        raise LegacyDataError(f"artifact {name}: expected a JSON object")
    return doc


def _folder_time(folder: Path) -> datetime:
    stamps = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()]
    if not stamps:
        return _now()
    return datetime.fromtimestamp(min(stamps), tz=UTC).replace(tzinfo=None)


# =============================================================================== store writes
class VersionExistsError(PlanStoreError):
    """The version is already in the store (and may not or need not be replaced)."""


def is_imported_version(status: str | None, source: str | None) -> bool:
    return status == IMPORTED_STATUS and bool(source) and str(source).startswith(SOURCE_PREFIX)


def write_imported_version(store: PlanStore, payload: VersionPayload, *, replace: bool, run_id: str | None) -> int:
    """Store one imported version -- version row, every level, KPIs, artifacts -- in ONE transaction.

    ``replace``: an existing *imported* version's plan rows and artifacts are replaced (its
    overrides, audit events and jobs are kept); a native version is never overwritten.
    Returns the series + KPI rows written.
    """
    vid = payload.version_id
    levels = [prepare_series_level(level, frame) for level, frame in payload.series.items()]
    levels += [prepare_kpi_level(level, frame, source=KPI_SOURCE) for level, frame in payload.kpis.items()]
    now = _now()
    with store.transaction() as tx:
        existing = tx.version_status_source(vid)
        if existing is not None:
            if not is_imported_version(*existing):
                raise VersionExistsError(
                    f"plan version {vid!r} already exists and is not an imported legacy version; not overwritten"
                )
            if not replace:
                raise VersionExistsError(f"plan version {vid!r} is already imported")
            tx.clear_imported_version(vid)
        tx.write_imported_version_row(vid, params=payload.params, status=payload.status, read_only=payload.read_only,
                                      note=payload.note, source=payload.source, created_at=payload.created_at,
                                      updated_at=now, replace=existing is not None)
        written = tx.write_imported_levels(vid, levels, run_id or direct_write_id(), now)
        tx.insert_imported_artifacts(vid, payload.artifacts, payload.source, now)
    return written


# ------------------------------------------------------------------ plan_backfill_runs
BACKFILL_RUN_STATUSES = ("running", "success", "partial", "failed")


def start_backfill_run(store: PlanStore, run_id: str, source: str, dry_run: bool, started_at: datetime) -> None:
    with store.transaction() as tx:
        tx.start_legacy_import_run(run_id, source, dry_run, started_at)


def finish_backfill_run(store: PlanStore, report: BackfillReport) -> None:
    with store.transaction() as tx:
        tx.finish_legacy_import_run(
            report.run_id, status=report.status, imported=report.imported, skipped=report.skipped,
            failed=report.failed, rows_written=report.rows_written, finished_at=report.finished_at,
            duration_ms=report.duration_ms, message=report.message,
        )


def running_backfill_runs(store: PlanStore) -> list[str]:
    """Run ids of ``plan_backfill_runs`` rows still marked running (none on a PostgreSQL store while
    the legacy import's statements are not ported there: no legacy import can have started on it)."""
    from plan_pipeline.store.unit_of_work import postgres_unported_statements

    if store.is_postgres and "running_legacy_import_runs" in postgres_unported_statements():
        return []
    with store.transaction() as tx:  # a writable connection: it brings an older store's schema up to date
        return tx.running_legacy_import_runs()


def close_backfill_runs(store: PlanStore, reasons: dict[str, str]) -> None:
    """Mark interrupted backfill runs failed with the reason (crash recovery); one transaction."""
    now = _now()
    with store.transaction() as tx:
        for run_id, reason in reasons.items():
            tx.fail_legacy_import_run(run_id, reason, now)


def list_backfill_runs(store: PlanStore, limit: int = 50) -> pd.DataFrame:
    if not store.exists():
        return pd.DataFrame()
    with store.transaction() as tx:
        return tx.legacy_import_runs(limit)


def get_backfill_run(store: PlanStore, run_id: str) -> dict[str, Any] | None:
    with store.transaction() as tx:
        return tx.legacy_import_run(run_id)


# =============================================================================== the run
@dataclass
class VersionOutcome:
    version_id: str
    status: str  # imported | would_import | skipped | failed
    reason: str = ""
    origin: str = ""  # legacy:<path> the version came from
    series_rows: dict[str, int] = field(default_factory=dict)
    kpi_rows: dict[str, int] = field(default_factory=dict)
    artifacts: int = 0
    level_origin: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # warnings (approximations, unmapped data)
    duplicates: list[str] = field(default_factory=list)  # other places holding this version id

    @property
    def rows(self) -> int:
        return sum(self.series_rows.values()) + sum(self.kpi_rows.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id, "status": self.status, "reason": self.reason, "origin": self.origin,
            "series_rows": dict(self.series_rows), "kpi_rows": dict(self.kpi_rows), "rows": self.rows,
            "artifacts": self.artifacts, "level_origin": dict(self.level_origin), "notes": list(self.notes),
            "duplicates": list(self.duplicates),
        }


@dataclass
class BackfillReport:
    run_id: str
    source: str
    dry_run: bool
    force: bool
    started_at: datetime
    outcomes: list[VersionOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # source-level problems
    status: str = "running"
    finished_at: datetime | None = None
    duration_ms: int | None = None
    message: str = ""

    def count(self, *statuses: str) -> int:
        return sum(1 for o in self.outcomes if o.status in statuses)

    @property
    def imported(self) -> int:
        """Versions imported (0 in a dry run: see :attr:`would_import`)."""
        return self.count("imported")

    @property
    def would_import(self) -> int:
        """Versions a dry run would import (0 in a real run)."""
        return self.count("would_import")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def rows_written(self) -> int:
        """Series + KPI rows written (0 in a dry run: see :attr:`would_write_rows`)."""
        return sum(o.rows for o in self.outcomes if o.status == "imported")

    @property
    def would_write_rows(self) -> int:
        """Series + KPI rows a dry run would write (0 in a real run)."""
        return sum(o.rows for o in self.outcomes if o.status == "would_import")

    def imported_versions(self) -> list[VersionOutcome]:
        return [o for o in self.outcomes if o.status == "imported"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "source": self.source, "dry_run": self.dry_run, "force": self.force,
            "status": self.status, "versions_imported": self.imported, "versions_skipped": self.skipped,
            "versions_failed": self.failed, "rows_written": self.rows_written,
            "would_import_versions": self.would_import, "would_write_rows": self.would_write_rows,
            "duration_ms": self.duration_ms,
            "message": self.message, "errors": list(self.errors),
            "versions": [o.to_dict() for o in self.outcomes],
        }


def _summary_message(report: BackfillReport) -> str:
    if report.dry_run:
        head = (f"dry run, nothing written: would import {report.would_import} version(s) / "
                f"{report.would_write_rows} rows")
    else:
        head = f"imported {report.imported} version(s) / {report.rows_written} rows"
    parts = [f"{head}; skipped {report.skipped}, failed {report.failed}"]
    if report.outcomes and report.imported + report.would_import == 0 and report.failed == 0 and not report.errors:
        parts.append("nothing to import: every legacy version is already in the plan store")
    for o in report.outcomes:
        if o.status == "failed":
            parts.append(f"{o.version_id} failed: {o.reason}")
    parts.extend(report.errors)
    return "; ".join(parts)


def run_legacy_backfill(
    store: PlanStore,
    source: str | Path,
    *,
    dry_run: bool = False,
    force: bool = False,
    run_id: str | None = None,
    log: Log | None = None,
) -> BackfillReport:
    """Import every legacy version found in ``source``; one ``plan_backfill_runs`` row per call.

    ``run_id``: the Dagster run id when called from the job, else a fresh uuid. Its writes are
    recorded in the plan write log as the ``backfill`` source, whoever calls it.
    """
    store = store.writing_as("backfill")
    log = log or (lambda severity, message: None)
    run_id = run_id or uuid.uuid4().hex
    source_text = str(Path(source).expanduser().resolve()) if str(source).strip() else str(source)
    started = time.monotonic()
    report = BackfillReport(run_id=run_id, source=source_text, dry_run=dry_run, force=force, started_at=_now())
    start_backfill_run(store, run_id, source_text, dry_run, report.started_at)
    try:
        sources = discover_sources(source)
        versions, problems = list_versions(sources)
        report.errors.extend(problems)
        for problem in problems:
            log("error", problem)
        existing = {v.version_id: v for v in store.list_versions()}
        for lv in versions:
            outcome = _process_version(store, lv, existing.get(lv.version_id), dry_run=dry_run, force=force,
                                       run_id=run_id)
            report.outcomes.append(outcome)
            _log_outcome(log, outcome)
            crash_point("backfill.after_version")
    except LegacySourceError as exc:
        report.errors.append(str(exc))
        log("error", str(exc))
    except Exception as exc:
        report.errors.append(f"unexpected {type(exc).__name__}: {exc}")
        _finish(store, report, started)
        raise
    _finish(store, report, started)
    return report


def _finish(store: PlanStore, report: BackfillReport, started: float) -> None:
    if report.failed or report.errors:
        report.status = "partial" if report.count("imported", "would_import") else "failed"
    else:
        report.status = "success"
    report.finished_at = _now()
    report.duration_ms = int((time.monotonic() - started) * 1000)
    report.message = _summary_message(report)
    finish_backfill_run(store, report)


def _log_outcome(log: Log, o: VersionOutcome) -> None:
    if o.status in ("imported", "would_import"):
        levels = ", ".join(f"{k} {v}" for k, v in {**o.series_rows, **{f'kpis:{k}': v for k, v in o.kpi_rows.items()}}.items())
        verb = "imported" if o.status == "imported" else "dry run, would import"
        log("info", f"{o.version_id}: {verb} {o.rows} rows ({levels}), {o.artifacts} artifacts")
    elif o.status == "skipped":
        log("info", f"{o.version_id}: skipped ({o.reason})")
    else:
        log("error", f"{o.version_id}: failed ({o.reason})")
    for place in o.duplicates:
        log("info", f"{o.version_id}: also found in {place} (not used)")
    for note in o.notes:
        log("warning", f"{o.version_id}: {note}")


def _process_version(store: PlanStore, lv: LegacyVersion, existing, *, dry_run: bool, force: bool,
                     run_id: str) -> VersionOutcome:
    outcome = VersionOutcome(lv.version_id, "failed", origin=lv.source.label)
    outcome.duplicates = list(lv.duplicates)
    if existing is not None:
        if not is_imported_version(existing.status, existing.source):
            outcome.status = "failed" if force else "skipped"
            outcome.reason = (f"a native plan version {lv.version_id!r} (status {existing.status}) already exists; "
                              "it is never overwritten by the backfill")
            return outcome
        if not force:
            outcome.status = "skipped"
            outcome.reason = (f"already imported ({existing.updated_at:%Y-%m-%d %H:%M} from "
                              f"{existing.source[len(SOURCE_PREFIX):]}); use force to re-import")
            return outcome
    try:
        payload = build_payload(lv, read_legacy_version(lv))
    except LegacyDataError as exc:
        outcome.reason = str(exc)
        return outcome
    outcome.series_rows = payload.series_rows()
    outcome.kpi_rows = payload.kpi_rows()
    outcome.artifacts = len(payload.artifacts)
    outcome.level_origin = dict(payload.level_origin)
    outcome.notes.extend(payload.notes)
    if dry_run:
        outcome.status = "would_import"
        outcome.reason = "re-import (force)" if existing is not None else "new version"
        return outcome
    try:
        write_imported_version(store, payload, replace=force, run_id=run_id)
    except VersionExistsError as exc:  # appeared since the listing
        outcome.status = "skipped"
        outcome.reason = str(exc)
        return outcome
    except Exception as exc:
        outcome.reason = f"write failed, nothing stored for this version: {type(exc).__name__}: {exc}"
        return outcome
    outcome.status = "imported"
    outcome.reason = "re-imported (force)" if existing is not None else "new version"
    return outcome


def source_fingerprint(source: str | Path) -> str | None:
    """A cheap fingerprint (names, sizes, mtimes) of a source's files; no database is opened.

    Used by the schedule to request a run only when the source changed. ``None`` if missing.
    """
    path = Path(source).expanduser()
    if not path.exists():
        return None
    entries = []
    candidates = [path] if path.is_file() else sorted(path.iterdir(), key=lambda p: p.name)
    for entry in candidates:
        items = [entry] if entry.is_file() else (sorted(entry.iterdir(), key=lambda p: p.name) if entry.is_dir() else [])
        for item in items:
            if item.is_file():
                st = item.stat()
                entries.append(f"{item}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join([str(path.resolve()), *entries]).encode()).hexdigest()[:16]
