"""The reference project's output file set, rebuilt from what a version stored.

Files written (when the version has the levels): ``aggregate.json``, ``sku_week.json``,
``mrp.json``, ``plan_final.json``, ``reconciliation_log.json``, ``reconciliation_before.csv``,
``reconciliation_violations_before.csv``, ``report.csv``; with the anchor branch also
``sku_week_adjusted.json``, ``reconciliation_log_adjusted.json``,
``reconciliation_compare.csv``, ``reconciliation_violations_compare.csv``, ``carryover.csv``;
and with apply-adjusted ``mrp_adjusted.json``, ``plan_final_adjusted.json``,
``report_adjusted.csv``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plan_pipeline.exports.reference_documents import (
    aggregate_document,
    compare_csv_rows,
    csv_text,
    detail_document,
    mrp_document,
    only_violations,
    plan_final_document,
    reconciliation_csv_rows,
    reconciliation_csv_text,
    report_csv_text,
    sku_week_adjusted_document,
)
from plan_pipeline.planning.anchor import CARRYOVER_CSV_COLUMNS, carryover_csv_rows
from plan_pipeline.planning.frames import (
    anchor_result_from_frames,
    capacity_plan_from_frames,
    reconciliation_log_from_frame,
    report_from_kpi_frame,
)
from plan_pipeline.planning.parameters import validate_parameters
from plan_pipeline.store import PlanStore, PlanStoreError


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")


def write_text(path: Path, text: str) -> None:
    # the CSV text already carries \r\n line ends: write bytes as they are
    path.write_bytes(text.encode("utf-8"))


def _labelled(log: dict, label: str) -> dict:
    return {**log, "version_id": label} if "version_id" in log else log


def reference_documents(store: PlanStore, version_id: str, log_label: str | None = None):
    """Yield (file name, content) pairs; content is a dict (JSON) or str (CSV).

    ``log_label`` is the ``version_id`` written into the reconciliation logs: the reference
    writes ``pipeline`` / ``pipeline-adjusted`` unless its driver was given a version id.
    """
    version = store.get_version(version_id)
    if version.input_set is None:
        raise PlanStoreError(f"plan version {version_id!r} has no input set: reference export needs its inputs")
    params = validate_parameters(version.params).resolved()
    inputs = store.load_input_set(version.input_set)
    levels = store.series_levels(version_id)
    if "aggregate" not in levels:
        raise PlanStoreError(f"plan version {version_id!r} has not been materialized yet (no aggregate plan)")

    aggregate = store.read_series(version_id, "aggregate")
    agg_doc = aggregate_document(aggregate, inputs, params)
    yield "aggregate.json", agg_doc
    if "det" not in levels:
        return
    detail = store.read_series(version_id, "det")
    det_doc = detail_document(detail, agg_doc, inputs, params)
    yield "sku_week.json", det_doc
    yield from _mrp_files(store, version_id, levels, det_doc, inputs, params, "")
    log = None
    if "level_reconciliation" in levels:
        log = _labelled(reconciliation_log_from_frame(store.read_series(version_id, "level_reconciliation")),
                        log_label or "pipeline")
        yield "reconciliation_log.json", log
        rows = reconciliation_csv_rows(log, "before")
        yield "reconciliation_before.csv", reconciliation_csv_text(rows)
        yield "reconciliation_violations_before.csv", reconciliation_csv_text(only_violations(rows))

    if "det_adjusted" in levels:
        result = anchor_result_from_frames(store.read_series(version_id, "det_adjusted"))
        adj_doc = sku_week_adjusted_document(result, det_doc["schema_version"], det_doc["inputs_summary"],
                                             params.round_mode)
        yield "sku_week_adjusted.json", adj_doc
        if "level_reconciliation_adjusted" in levels and log is not None:
            log_adj = _labelled(
                reconciliation_log_from_frame(store.read_series(version_id, "level_reconciliation_adjusted")),
                log_label or "pipeline-adjusted")
            yield "reconciliation_log_adjusted.json", log_adj
            rows = compare_csv_rows(log, "before", log_adj, "after")
            yield "reconciliation_compare.csv", reconciliation_csv_text(rows)
            yield "reconciliation_violations_compare.csv", reconciliation_csv_text(only_violations(rows))
        yield "carryover.csv", csv_text(CARRYOVER_CSV_COLUMNS, carryover_csv_rows(result))
        yield from _mrp_files(store, version_id, levels, det_doc, inputs, params, "_adjusted")
        if "mrp_adjusted" in levels and store.has_kpis(version_id, "report_adjusted"):
            yield "report_adjusted.csv", report_csv_text(
                report_from_kpi_frame(store.read_kpis(version_id, "report_adjusted")))
    if store.has_kpis(version_id, "report"):
        yield "report.csv", report_csv_text(report_from_kpi_frame(store.read_kpis(version_id, "report")))


def export_reference(store: PlanStore, version_id: str, out_dir: str | Path, log_label: str | None = None) -> list[Path]:
    """Write the reference file set of ``version_id`` into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    documents = list(reference_documents(store, version_id, log_label))  # read everything before writing anything
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in documents:
        path = out / name
        if isinstance(content, str):
            write_text(path, content)
        else:
            write_json(path, content)
        written.append(path)
    return written


def _mrp_files(store, version_id: str, levels, det_doc: dict, inputs, params, suffix: str):
    """``mrp{suffix}.json`` and ``plan_final{suffix}.json`` of the plain (``""``) or the anchored
    (``"_adjusted"``) chain, from the levels that chain stored."""
    if f"mrp{suffix}" not in levels:
        return
    mrp = store.read_series(version_id, f"mrp{suffix}")
    mrp_doc = mrp_document(mrp, det_doc, inputs, params, summary=mrp.attrs.get("summary"))
    yield f"mrp{suffix}.json", mrp_doc
    if f"mrp_final{suffix}" in levels and f"weekly_summary{suffix}" in levels:
        plan = capacity_plan_from_frames(store.read_series(version_id, f"mrp_final{suffix}"),
                                         store.read_series(version_id, f"weekly_summary{suffix}"))
        yield f"plan_final{suffix}.json", plan_final_document(plan, mrp_doc["schema_version"])
