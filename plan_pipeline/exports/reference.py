"""The reference project's output file set, rebuilt from what a version stored.

Files written (when the version has the levels): ``aggregate.json``, ``sku_week.json``,
``mrp.json``, ``plan_final.json``, ``reconciliation_log.json``, ``reconciliation_before.csv``,
``reconciliation_violations_before.csv``, ``report.csv``; with the anchor branch also
``sku_week_adjusted.json``, ``reconciliation_log_adjusted.json``,
``reconciliation_compare.csv``, ``reconciliation_violations_compare.csv``, ``carryover.csv``;
and with apply-adjusted ``mrp_adjusted.json``, ``plan_final_adjusted.json``,
``report_adjusted.csv``.

The levels are read on one read-only snapshot of the store (``PlanStore.reading``). The
files are written one at a time as they are built (:mod:`plan_pipeline.exports.json_writer`
streams each JSON document from the level's columns), each to a hidden ``.<name>.partial``
file that is moved into place only when every file is complete: a failure leaves the folder as
it was. The SKU x week and MRP levels are read, encoded and written one slice of rows at a time
(:class:`~plan_pipeline.exports.json_writer.RecordStream`), so memory is bounded by a slice, not
by a level or the file set.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Generator
from contextlib import closing
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from plan_pipeline.exports.json_writer import RecordStream, RecordTable, dumps, write_chunks, write_json_document
from plan_pipeline.exports.reference_documents import (
    adjusted_detail_record_table,
    aggregate_document,
    compare_csv_rows,
    csv_text,
    detail_document,
    detail_record_table,
    mrp_document,
    mrp_record_table,
    only_violations,
    plan_final_document,
    plan_final_record_table,
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


def write_json(path: Path, document: Any) -> str:
    """``document`` as ``json.dumps(document, ensure_ascii=False, indent=2)`` writes it (a dict may
    hold :class:`~plan_pipeline.exports.json_writer.RecordTable` values); returns its sha256."""
    if isinstance(document, dict):
        return write_json_document(path, document)
    return write_chunks(path, [dumps(document)])


def write_text(path: Path, text: str) -> str:
    """CSV text as it is (it already carries \\r\\n line ends); returns its sha256."""
    return write_chunks(path, [text.encode("utf-8")])


def _level_rows(store: PlanStore, version_id: str, level: str, rows: int,
                table: Callable[[pd.DataFrame], RecordTable]) -> RecordStream:
    """The rows of a stored level as a document writes them, read and encoded one slice at a time
    (:meth:`PlanStore.read_series_batches`) while the file is written."""
    return RecordStream(rows, lambda: (table(batch) for batch in store.read_series_batches(version_id, level)))


def _attrs_only(attrs: dict) -> pd.DataFrame:
    """An empty frame carrying a level's ``attrs``: for the builders that read a level's metadata
    (anchor result, capacity plan) when its rows come as a :class:`RecordStream`."""
    frame = pd.DataFrame()
    frame.attrs = attrs
    return frame


def _labelled(log: dict, label: str) -> dict:
    return {**log, "version_id": label} if "version_id" in log else log


def reference_documents(store: PlanStore, version_id: str, log_label: str | None = None, *,
                        columnar: bool = False) -> Generator[tuple[str, Any], None, None]:
    """Yield (file name, content) pairs; content is a dict (JSON) or str (CSV).

    ``log_label`` is the ``version_id`` written into the reconciliation logs: the reference
    writes ``pipeline`` / ``pipeline-adjusted`` unless its driver was given a version id.
    With ``columnar`` the documents' row arrays are
    :class:`~plan_pipeline.exports.json_writer.RecordTable` s, and those of the SKU x week and
    MRP levels :class:`~plan_pipeline.exports.json_writer.RecordStream` s that read their level
    slice by slice as they are written (for :func:`write_json`, inside ``store.reading()`` so that
    every slice reads one snapshot; the generator keeps no document once the next one is asked
    for): memory holds one slice of a level, not the level. Without ``columnar`` every row
    array is a list of dicts.
    """
    version = store.get_version(version_id)
    if version.input_set is None:
        raise PlanStoreError(f"plan version {version_id!r} has no input set: reference export needs its inputs")
    params = validate_parameters(version.params).resolved()
    inputs = store.load_input_set(version.input_set)
    levels = store.series_levels(version_id)
    if "aggregate" not in levels:
        raise PlanStoreError(f"plan version {version_id!r} has not been materialized yet (no aggregate plan)")

    agg_doc = aggregate_document(store.read_series(version_id, "aggregate"), inputs, params, columnar=columnar)
    yield "aggregate.json", agg_doc
    if "det" not in levels:
        return
    det_rows = _level_rows(store, version_id, "det", levels["det"], lambda rows: detail_record_table(rows, params))
    det_doc = detail_document(det_rows, agg_doc, inputs, params, columnar=columnar)
    del agg_doc
    yield "sku_week.json", det_doc
    det_head = {k: v for k, v in det_doc.items() if k != "rows"}  # what the later documents carry
    del det_doc
    yield from _mrp_files(store, version_id, levels, det_head, inputs, params, "", columnar)
    log = None
    if "level_reconciliation" in levels:
        log = _labelled(reconciliation_log_from_frame(store.read_series(version_id, "level_reconciliation")),
                        log_label or "pipeline")
        yield "reconciliation_log.json", log
        rows = reconciliation_csv_rows(log, "before")
        yield "reconciliation_before.csv", reconciliation_csv_text(rows)
        yield "reconciliation_violations_before.csv", reconciliation_csv_text(only_violations(rows))

    if "det_adjusted" in levels:
        # the anchor metadata from the level's attrs; the rows as the stored frames give them (no
        # cell marked rewritten: anchor_result_from_frames)
        result = anchor_result_from_frames(_attrs_only(store.level_attrs(version_id, "det_adjusted")))
        adjusted_rows = _level_rows(store, version_id, "det_adjusted", levels["det_adjusted"], lambda rows: (
            adjusted_detail_record_table(rows, np.zeros((len(rows), 3), dtype=bool), params.round_mode)))
        yield "sku_week_adjusted.json", sku_week_adjusted_document(
            result, det_head["schema_version"], det_head["inputs_summary"], params.round_mode, columnar=columnar,
            rows=adjusted_rows)
        if "level_reconciliation_adjusted" in levels and log is not None:
            log_adj = _labelled(
                reconciliation_log_from_frame(store.read_series(version_id, "level_reconciliation_adjusted")),
                log_label or "pipeline-adjusted")
            yield "reconciliation_log_adjusted.json", log_adj
            rows = compare_csv_rows(log, "before", log_adj, "after")
            yield "reconciliation_compare.csv", reconciliation_csv_text(rows)
            yield "reconciliation_violations_compare.csv", reconciliation_csv_text(only_violations(rows))
        yield "carryover.csv", csv_text(CARRYOVER_CSV_COLUMNS, carryover_csv_rows(result))
        del result
        yield from _mrp_files(store, version_id, levels, det_head, inputs, params, "_adjusted", columnar)
        if "mrp_adjusted" in levels and store.has_kpis(version_id, "report_adjusted"):
            yield "report_adjusted.csv", report_csv_text(
                report_from_kpi_frame(store.read_kpis(version_id, "report_adjusted")))
    if store.has_kpis(version_id, "report"):
        yield "report.csv", report_csv_text(report_from_kpi_frame(store.read_kpis(version_id, "report")))


class ReferenceFile(NamedTuple):
    path: Path
    rows: int | None
    sha256: str


def export_reference(store: PlanStore, version_id: str, out_dir: str | Path, log_label: str | None = None) -> list[Path]:
    """Write the reference file set of ``version_id`` into ``out_dir``; returns the paths."""
    return [file.path for file in write_reference_files(store, version_id, out_dir, log_label)]


def write_reference_files(store: PlanStore, version_id: str, out_dir: str | Path,
                          log_label: str | None = None) -> list[ReferenceFile]:
    """Write the reference file set of ``version_id`` into ``out_dir`` (see the module doc);
    returns each file's path, row count (:func:`reference_rows`) and sha256."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[ReferenceFile] = []
    partial: list[Path] = []
    try:
        # Every level from one read-only snapshot on one connection (not a connection per call);
        # closing the generator ends its reads before the snapshot closes, even on an error.
        with store.reading(), closing(reference_documents(store, version_id, log_label, columnar=True)) as documents:
            for name, content in documents:
                tmp = out / f".{name}.partial"
                partial.append(tmp)
                digest = write_text(tmp, content) if isinstance(content, str) else write_json(tmp, content)
                written.append(ReferenceFile(out / name, reference_rows(content), digest))
                del content
        for tmp, file in zip(partial, written):
            os.replace(tmp, file.path)
    finally:
        for tmp in partial:
            tmp.unlink(missing_ok=True)
    return written


def reference_rows(content: Any) -> int | None:
    """The row count of a reference file's content: CSV records after the header; a JSON
    document's ``rows`` (or a reconciliation log's ``deltas``); else None."""
    if isinstance(content, str):
        return max(sum(1 for _ in csv.reader(io.StringIO(content, newline=""))) - 1, 0)
    for key in ("rows", "deltas"):
        if isinstance(content, dict) and isinstance(content.get(key), (list, RecordTable, RecordStream)):
            return len(content[key])
    return None


def _mrp_files(store, version_id: str, levels, det_doc: dict, inputs, params, suffix: str, columnar: bool = False):
    """``mrp{suffix}.json`` and ``plan_final{suffix}.json`` of the plain (``""``) or the anchored
    (``"_adjusted"``) chain, from the levels that chain stored."""
    if f"mrp{suffix}" not in levels:
        return
    level = f"mrp{suffix}"
    summary = store.level_attrs(version_id, level).get("summary")
    mrp_rows = _level_rows(store, version_id, level, levels[level], mrp_record_table)
    mrp_doc = mrp_document(mrp_rows, det_doc, inputs, params, summary=summary, columnar=columnar)
    schema_version = mrp_doc["schema_version"]
    yield f"{level}.json", mrp_doc
    del mrp_doc
    final, weekly = f"mrp_final{suffix}", f"weekly_summary{suffix}"
    if final in levels and weekly in levels:
        plan = capacity_plan_from_frames(_attrs_only(store.level_attrs(version_id, final)),
                                         store.read_series(version_id, weekly))
        fg_items, int_mode = set(plan.fg_items), plan.round_mode == "int"
        final_rows = _level_rows(store, version_id, final, levels[final],
                                 lambda rows: plan_final_record_table(rows, fg_items, int_mode))
        yield f"plan_final{suffix}.json", plan_final_document(plan, schema_version, columnar=columnar, rows=final_rows)
