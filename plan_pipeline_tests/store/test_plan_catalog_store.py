"""The plan catalog in the store (what the Plans API lists): summaries, a level's pages and files,
KPI rows. Marked ``both_backends``: on PostgreSQL each test also fills a DuckDB twin with the same
content and asserts the two backends answer the same (pages' JSON, files, Arrow tables)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanNotFoundError, PlanStore, PlanStoreError

pytestmark = pytest.mark.both_backends


def det_frame() -> pd.DataFrame:
    rows = [("FA", "2025-01", sku, f"2025-W0{w}", 10.0 * w, 5.0 * w, 5.0 * w, 0.5 * w)
            for sku in ("A1", "A2") for w in (1, 2, 3)]
    rows.append(("FB", "2025-02", "B1", "2025-W05", 2.5, 1.0, 1.0, 0.0))
    return pd.DataFrame(rows, columns=["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"])


def scorecard() -> pd.DataFrame:
    return pd.DataFrame({
        "category": ["scorecard", "scorecard", "scorecard"],
        "metric": ["fill_rate", "total_demand", "fill_rate"],
        "bucket_type": ["total", "total", "period"],
        "bucket_key": ["all", "all", "2025-01"],
        "value": [0.9, 125.0, 0.8],
        "unit": ["ratio", None, "ratio"],
    })


def fill(store: PlanStore, sample_dir: Path) -> None:
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters(), note="first")
    store.create_version("v2", "sample", PlanningParameters(week_days=5))
    store.replace_series("v1", "det", det_frame())
    store.replace_kpis("v1", "scorecard", scorecard())
    store.upsert_jobs([{"job_id": "run-a", "version_id": "v1", "status": "success", "job_name": "plan_job"}])


@pytest.fixture
def stores(store: PlanStore, sample_dir, tmp_path) -> list[PlanStore]:
    """The backend's store and (on PostgreSQL) a DuckDB twin, both filled alike."""
    both = [store] if not store.is_postgres else [store, PlanStore(tmp_path / "twin.duckdb")]
    for each in both:
        fill(each, sample_dir)
    return both


def _no_times(summary: dict) -> dict:
    out = {k: v for k, v in summary.items() if k not in ("created_at", "updated_at", "recent_runs", "levels")}
    if out.get("latest_run"):
        out["latest_run"] = {k: v for k, v in out["latest_run"].items() if k not in ("submitted_at", "finished_at")}
    return out


def test_plan_summaries_page_filter_and_total(stores: list[PlanStore]):
    answers = []
    for store in stores:
        page = store.plan_summaries(limit=1, order="version_id")
        assert page["total"] == 2 and [p["version_id"] for p in page["plans"]] == ["v1"]
        v1 = page["plans"][0]
        assert v1["rows"] == {"det": 7} and v1["kpi_rows"] == {"scorecard": 3} and v1["note"] == "first"
        assert v1["kpis"]["fill_rate"] == {"value": 0.9, "unit": "ratio"}
        assert v1["latest_run"]["run_id"] == "run-a" and v1["latest_run"]["status"] == "success"
        second = store.plan_summaries(limit=5, offset=1, order="version_id")
        assert [p["version_id"] for p in second["plans"]] == ["v2"] and second["plans"][0]["latest_run"] is None
        assert second["plans"][0]["parameters"]["week_days"] == 5
        empty = store.plan_summaries(limit=5, offset=9, status="draft")
        assert empty == {"total": 2, "plans": []}
        assert store.plan_summaries(limit=5, status="approved")["total"] == 0
        assert store.plan_summaries(limit=5, input_set="sample")["total"] == 2
        with pytest.raises(PlanStoreError, match="unknown order"):
            store.plan_summaries(limit=5, order="size")
        one = store.plan_summary("v1")
        assert [(lv["name"], lv["table"], lv["rows"]) for lv in one["levels"]] == [
            ("det", "plan_series", 7), ("scorecard", "plan_kpis", 3)]
        assert [r["job_id"] for r in one["recent_runs"]] == ["run-a"]
        with pytest.raises(PlanNotFoundError):
            store.plan_summary("nope")
        answers.append(([_no_times(p) for p in store.plan_summaries(limit=9)["plans"]], _no_times(one)))
    assert all(a == answers[0] for a in answers)


def test_series_page_json_is_the_same_on_both_backends(stores: list[PlanStore]):
    answers = []
    for store in stores:
        page = store.series_page("v1", "det", sku="A1", week_from="2025-W02", limit=10)
        assert page["total"] == 2
        rows = json.loads(page["rows_json"])
        assert [(r["sku"], r["week"], r["demand"], r["backlog"]) for r in rows] == [
            ("A1", "2025-W02", 20.0, 1.0), ("A1", "2025-W03", 30.0, 1.5)]
        assert list(rows[0]) == ["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"]
        assert json.loads(store.series_page("v1", "det", family="FB", limit=5)["rows_json"]) == [
            {"family": "FB", "period": "2025-02", "sku": "B1", "week": "2025-W05", "demand": 2.5, "supply": 1.0,
             "supply_plan": 1.0, "backlog": 0.0}]
        assert store.series_page("v1", "det", limit=2, offset=6)["total"] == 7
        assert json.loads(store.series_page("v1", "det", limit=2, offset=7)["rows_json"]) == []
        with pytest.raises(PlanStoreError, match="has no published level 'weekly'; its published levels: det"):
            store.series_page("v1", "weekly", limit=5)
        answers.append([store.series_page("v1", "det", limit=100)["rows_json"], page["rows_json"]])
    assert all(a == answers[0] for a in answers)


def test_series_files_are_the_same_on_both_backends(stores: list[PlanStore], tmp_path):
    texts, tables = [], []
    for i, store in enumerate(stores):
        csv = store.write_series_file("v1", "det", tmp_path / f"s{i}.csv", "csv", family="FA", limit=3, offset=1)
        lines = csv.read_text().splitlines()
        assert lines == ["family,period,sku,week,demand,supply,supply_plan,backlog",
                         "FA,2025-01,A1,2025-W02,20.0,10.0,10.0,1.0", "FA,2025-01,A1,2025-W03,30.0,15.0,15.0,1.5",
                         "FA,2025-01,A2,2025-W01,10.0,5.0,5.0,0.5"]
        texts.append(lines)
        table = pq.read_table(store.write_series_file("v1", "det", tmp_path / f"s{i}.parquet", "parquet"))
        assert table.num_rows == 7 and table.column("sku").to_pylist()[-1] == "B1"
        assert str(table.schema.field("demand").type) == "double" and str(table.schema.field("sku").type) == "string"
        assert table.column("demand").to_pylist()[-1] == 2.5
        tables.append(table)
        with pytest.raises(PlanStoreError, match="unknown format"):
            store.write_series_file("v1", "det", tmp_path / "x.txt", "txt")
    assert all(t == texts[0] for t in texts) and all(t.equals(tables[0]) for t in tables)


def test_kpi_rows_filter_and_page(stores: list[PlanStore]):
    tables = []
    for store in stores:
        answer = store.kpi_rows("v1", level="scorecard", bucket_type="total", limit=10)
        assert answer["total"] == 2
        rows = answer["rows"].to_pylist()
        assert [(r["metric"], r["value"], r["unit"]) for r in rows] == [("fill_rate", 0.9, "ratio"),
                                                                        ("total_demand", 125.0, None)]
        assert list(answer["rows"].column_names) == ["level", "category", "metric", "bucket_type", "bucket_key",
                                                     "value", "unit"]
        assert store.kpi_rows("v1", metric="fill_rate", limit=1, offset=1)["rows"].to_pylist()[0]["value"] == 0.8
        with pytest.raises(PlanStoreError, match="has no published KPI level 'mrp'; its KPI levels: scorecard"):
            store.kpi_rows("v1", level="mrp", limit=5)
        no_unit = store.kpi_rows("v1", metric="total_demand", limit=10)["rows"]  # every unit NULL: still text
        assert str(no_unit.schema.field("unit").type) == "string" and no_unit.column("unit").to_pylist() == [None]
        tables.append(store.kpi_rows("v1", limit=10)["rows"])
    assert all(t.equals(tables[0]) for t in tables)
