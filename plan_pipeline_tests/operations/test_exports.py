"""Exports: every format with a manifest that verifies, errors for unknown versions, the DWH job."""
from __future__ import annotations

import csv
import hashlib
import json

import duckdb
import pyarrow.parquet as pq
import pytest

from plan_pipeline.exports.export import EXPORT_TABLES, export_dwh, export_version
from plan_pipeline.store import PlanStoreError

from .ops_helpers import (  # sample_template_home / template_home_copy: fixtures template and plan_env
    make_version,
    operations_defs,
    run_ops_cli,
    sample_template_home,  # noqa: F401
    template_home_copy,  # noqa: F401
)

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres


@pytest.fixture
def store(plan_env):
    s = plan_env.store
    s.record_override("v1", "det", "det:week=2025-W02,sku=A1", {"demand": 5.0}, actor="ann")
    return s


def _db_count(store, table, version_id="v1") -> int:
    with store.connect(read_only=True) as con:
        return con.execute(f'SELECT count(*) FROM "{table}" WHERE version_id = ?', [version_id]).fetchall()[0][0]


def _check_manifest(out, store, fmt):
    manifest = json.loads((out / "manifest.json").read_text())
    version = store.get_version("v1")
    assert manifest["export_format"] == fmt
    assert manifest["version_id"] == "v1" and manifest["status"] == version.status
    assert manifest["parameters"] == version.params.to_dict()
    assert manifest["input_set"] == "sample"
    assert manifest["input_set_hash"] == store.get_input_set("sample")["content_hash"]
    assert manifest["schema_version"] == store.schema_version()
    assert manifest["levels"] == store.series_levels("v1")
    for entry in manifest["files"]:
        data = (out / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert len(data) == entry["bytes"]
    return manifest


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_table_formats_with_verifying_manifest(store, tmp_path, fmt, capsys):
    out = tmp_path / fmt
    assert run_ops_cli(["export", "v1", "--format", fmt, "--out", str(out), "--actor", "exporter"]) == 0
    assert f"[ok] wrote {out / 'manifest.json'}" in capsys.readouterr().out
    manifest = _check_manifest(out, store, fmt)
    assert [f["file"] for f in manifest["files"]] == [f"{t}.{fmt}" for t in EXPORT_TABLES]
    for entry in manifest["files"]:
        table = entry["file"].split(".")[0]
        path = out / entry["file"]
        if fmt == "csv":
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
            counted = len(rows) - 1
        elif fmt == "json":
            document = json.loads(path.read_text(encoding="utf-8"))
            counted = len(document["rows"])
            assert document["row_count"] == counted and document["version_id"] == "v1"
        else:
            counted = pq.ParquetFile(path).metadata.num_rows
        expected = _db_count(store, table)
        if table == "plan_override_events":
            expected -= 1  # the export event is appended after the files are written
        assert counted == entry["rows"] == expected, table
    assert manifest["files"][0]["rows"] == sum(store.series_levels("v1").values())
    # the export is in the audit trail
    events = store.read_override_events("v1")
    last = events.iloc[-1]
    assert last["event_type"] == "export" and last["actor"] == "exporter"
    assert json.loads(last["payload_json"])["format"] == fmt


def test_values_survive_the_text_formats(store, tmp_path):
    export_version(store, "v1", "json", tmp_path / "j", record_event=False)
    export_version(store, "v1", "csv", tmp_path / "c", record_event=False)
    rows = store.read_series_rows("v1", "mrp")
    document = json.loads((tmp_path / "j" / "plan_series.json").read_text())
    mrp = [r for r in document["rows"] if r["level"] == "mrp"]
    assert [r["demand"] for r in mrp] == rows["demand"].tolist()
    assert isinstance(mrp[0]["extra_json"], dict)
    with open(tmp_path / "c" / "plan_series.csv", newline="") as handle:
        csv_mrp = [r for r in csv.DictReader(handle) if r["level"] == "mrp"]
    assert [float(r["supply"]) for r in csv_mrp] == rows["supply"].tolist()


def _whole_table_copy(store, table, fmt, path):
    """The file as the export wrote it before it copied level by level: one ``COPY`` (one Arrow
    reader) of the whole ordered table, the JSON document around its array. On PostgreSQL the
    query selects the plain columns: table_copy spells them as DuckDB's projection does."""
    from plan_pipeline.store.exports import EXPORT_SOURCES, _projection
    from plan_pipeline.store.table_copy import copy_query_to, table_columns

    with store.snapshot() as tx:
        con = tx._con
        source = EXPORT_SOURCES.get(table, table)
        columns = table_columns(con, source)
        select = ", ".join(f'"{n}"' for n, _ in columns) if store.is_postgres else _projection(columns, fmt)
        sql = (f"SELECT {select} FROM \"{source}\" WHERE version_id = ? "
               f"ORDER BY {EXPORT_TABLES[table]}")
        array = path.with_name(path.name + ".array")
        rows = copy_query_to(con, sql, ["v1"], array if fmt == "json" else path, fmt)
    if fmt == "json":
        head = json.dumps({"table": table, "version_id": "v1", "row_count": rows}, ensure_ascii=False)
        path.write_bytes((head[:-1] + ', "rows": ').encode() + array.read_bytes() + b"}\n")
    return rows


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_level_by_level_copy_writes_what_the_whole_table_copy_wrote(store, tmp_path, fmt):
    """plan_series and plan_kpis are copied one level at a time (bounded memory): the files are
    the same bytes (csv, json) or rows and schema (parquet) as one ordered copy of the table."""
    out = tmp_path / "export"
    export_version(store, "v1", fmt, out, record_event=False)
    assert len(store.series_levels("v1")) > 5
    for table in EXPORT_TABLES:
        old = tmp_path / f"old-{table}.{fmt}"
        rows = _whole_table_copy(store, table, fmt, old)
        new = out / f"{table}.{fmt}"
        if fmt == "parquet":
            old_table, new_table = pq.read_table(old), pq.read_table(new)
            assert new_table.schema.equals(old_table.schema), table
            assert new_table.equals(old_table), table
            assert new_table.num_rows == rows
        else:
            assert new.read_bytes() == old.read_bytes(), table
        if table == "plan_series":
            assert rows == sum(store.series_levels("v1").values()) > 0


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_level_by_level_copy_of_a_version_without_rows(store, tmp_path, fmt):
    """A table without rows of the version (no KPIs) is the header and the empty array alone."""
    with store.connect() as con:
        con.execute("DELETE FROM plan_kpis WHERE version_id = 'v1'")
    out = tmp_path / "export"
    export_version(store, "v1", fmt, out, record_event=False)
    old = tmp_path / f"old.{fmt}"
    assert _whole_table_copy(store, "plan_kpis", fmt, old) == 0
    new = out / f"plan_kpis.{fmt}"
    if fmt == "parquet":
        assert pq.read_table(new).equals(pq.read_table(old))
    else:
        assert new.read_bytes() == old.read_bytes()
        assert new.read_bytes() == (b'{"table": "plan_kpis", "version_id": "v1", "row_count": 0, "rows": [\n\t\n]\n}\n'
                                    if fmt == "json" else old.read_bytes())


def test_reference_format_writes_the_reference_file_set(store, tmp_path):
    out = tmp_path / "ref"
    result = export_version(store, "v1", "reference", out)
    manifest = _check_manifest(out, store, "reference")
    names = [f["file"] for f in manifest["files"]]
    assert {"aggregate.json", "sku_week.json", "mrp.json", "plan_final.json", "report.csv"} <= set(names)
    aggregate = json.loads((out / "aggregate.json").read_text())
    assert next(f for f in manifest["files"] if f["file"] == "aggregate.json")["rows"] == len(aggregate["rows"])
    assert result.out_dir == out.resolve()


def test_unknown_or_unplanned_version_is_an_error_and_writes_nothing(store, sample_dir, tmp_path, capsys):
    out = tmp_path / "nothing"
    assert run_ops_cli(["export", "nope", "--format", "csv", "--out", str(out)]) == 1
    assert "unknown plan version 'nope'" in capsys.readouterr().err
    assert not out.exists()
    make_version(store, sample_dir, "unplanned")
    for fmt in ("csv", "reference"):
        with pytest.raises(PlanStoreError, match="materialize"):
            export_version(store, "unplanned", fmt, out)
    assert not out.exists()


def test_dwh_job_writes_approved_versions_partitioned_by_version(store, plan_env, sample_dir, tmp_path):
    make_version(store, sample_dir, "draft-only")
    store.transition_status("v1", "submitted")
    store.transition_status("v1", "approved")
    dwh = tmp_path / "dwh"
    job = operations_defs(store).resolve_job_def("dwh_export")
    result = job.execute_in_process(instance=plan_env.instance(), run_config={"ops": {"dwh_export_op": {
        "config": {"dwh_dir": str(dwh)}}}})
    assert result.success
    assert sorted(p.name for p in (dwh / "plan_series").iterdir()) == ["version_id=v1"]
    with duckdb.connect() as con:  # DuckDB reading the written Parquet files (not the plan store)
        series = con.execute("SELECT version_id, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY 1",
                             [str(dwh / "plan_series" / "*" / "*.parquet")]).fetchall()
        kpis = con.execute("SELECT version_id, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY 1",
                           [str(dwh / "plan_kpis" / "*" / "*.parquet")]).fetchall()
    assert series == [("v1", _db_count(store, "plan_series"))]
    assert kpis == [("v1", _db_count(store, "plan_kpis"))]
    summary = json.loads((dwh / "_plan_pipeline_dwh.json").read_text())
    assert summary["versions"]["v1"]["plan_series"] == series[0][1]
    # a rerun replaces the partition; superseding and pruning removes it
    store.transition_status("v1", "superseded")
    assert export_dwh(store, dwh).versions == {}
    assert (dwh / "plan_series" / "version_id=v1").is_dir()
    assert export_dwh(store, dwh, prune=True).pruned == ["v1"]
    assert not (dwh / "plan_series" / "version_id=v1").exists()
