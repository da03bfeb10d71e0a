"""Export statements in the store (what ``plan-pipeline export`` and the DWH export call through
the unit of work): a version's published tables as CSV, JSON and Parquet, DWH partitions, the
export event. Marked ``both_backends``: on PostgreSQL each test also fills a DuckDB twin and
asserts the files are the same (CSV and JSON byte for byte, Parquet the same schema and rows)."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore

pytestmark = pytest.mark.both_backends

ENVELOPE = (b'{"table": "t", "rows": ', b"}\n")


def det_frame() -> pd.DataFrame:
    rows = [("FA", "2025-01", sku, f"2025-W0{w}", 10.0 * w, 1e20 if w == 3 else 5.0 * w, 0.1 * w, 1e-7 * w)
            for sku in ("A1", "Ä,\"2") for w in (1, 2, 3)]
    return pd.DataFrame(rows, columns=["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"])


def kpis() -> pd.DataFrame:
    return pd.DataFrame({"category": ["plan", "plan"], "metric": ["fill_rate", "note"],
                         "bucket_type": ["total", "total"], "bucket_key": ["all", "all"],
                         "value": [0.25, float("nan")], "unit": ["ratio", ""]})


def fill(store: PlanStore, sample_dir: Path) -> None:
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters())
    store.replace_series("v1", "det", det_frame())
    store.replace_series("v1", "aggregate", pd.DataFrame({
        "family": ["FA"], "period": ["2025-01"], "demand": [100.0], "supply": [90.0], "backlog": [10.0],
        "capacity_total": [135.0]}))
    store.replace_kpis("v1", "summary", kpis())
    store.record_override("v1", "det", "det:week=2025-W02,sku=A1", {"demand": 4.0}, lock=True, actor="ana",
                          notes="line\nbreak")
    store.transition_status("v1", "submitted")
    store.transition_status("v1", "approved")


@pytest.fixture
def stores(store: PlanStore, sample_dir) -> list[PlanStore]:
    both = [store] if not store.is_postgres else [store, PlanStore(store_dir(sample_dir) / "twin.duckdb")]
    for each in both:
        fill(each, sample_dir)
    return both


def store_dir(sample_dir: Path) -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="pgport-twin-"))


def _write_all(store: PlanStore, out: Path) -> dict[str, int]:
    out.mkdir()
    counts = {}
    with store.snapshot() as tx:
        for table in ("plan_series", "plan_kpis"):
            rows = tx.version_table_rows(table, "v1")
            assert rows.levels() == ({"aggregate": 1, "det": 6} if table == "plan_series" else {"summary": 2})
            for fmt in ("csv", "json", "parquet"):
                envelope = ENVELOPE if fmt == "json" else (b"", b"")
                counts[f"{table}.{fmt}"] = rows.write(out / f"{table}.{fmt}", fmt, envelope)
        counts["dwh"] = tx.write_dwh_partition("plan_series", "v1", out / "part-0.parquet")
        assert tx.approved_version_ids() == ["v1"]
    return counts


def _stable(path: Path) -> bytes:
    """The file's bytes with what differs between two fillings (run ids, write times) masked."""
    masked = re.sub(rb"direct-[0-9a-f-]{36}", b"RUN", path.read_bytes())
    return re.sub(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?", b"TIME", masked)


def test_version_tables_are_written_alike_on_both_backends(stores: list[PlanStore], tmp_path):
    outs = []
    for i, store in enumerate(stores):
        out = tmp_path / f"out{i}"
        assert _write_all(store, out) == {"plan_series.csv": 7, "plan_series.json": 7, "plan_series.parquet": 7,
                                          "plan_kpis.csv": 2, "plan_kpis.json": 2, "plan_kpis.parquet": 2, "dwh": 7}
        lines = (out / "plan_series.csv").read_text().splitlines()
        header = next(csv.reader([lines[0]]))
        assert header[:3] == ["version_id", "level", "row_seq"]
        det = [dict(zip(header, r)) for r in csv.reader(lines[1:]) if r[1] == "det"]
        assert [r["item_key"] for r in det] == ["A1"] * 3 + ['Ä,"2'] * 3
        assert [r["supply"] for r in det[:3]] == ["5.0", "10.0", "1e+20"]
        document = json.loads((out / "plan_series.json").read_text())
        assert document["table"] == "t" and len(document["rows"]) == 7
        assert b'"supply":100000000000000000000.0' in (out / "plan_series.json").read_bytes()
        kpi = json.loads((out / "plan_kpis.json").read_text())["rows"]
        assert [(r["metric"], r["value"], r["unit"]) for r in kpi] == [("fill_rate", 0.25, "ratio"), ("note", None, "")]
        with open(out / "plan_kpis.csv", newline="") as f:
            note = list(csv.DictReader(f))[1]
        assert (note["metric"], note["value"], note["unit"]) == ("note", "", "")  # NaN, empty text: empty cells
        dwh = pq.read_table(out / "part-0.parquet")
        assert "version_id" not in dwh.column_names and dwh.num_rows == 7
        outs.append(out)
    for out in outs[1:]:
        for name in ("plan_series.csv", "plan_series.json", "plan_kpis.csv", "plan_kpis.json"):
            assert _stable(out / name) == _stable(outs[0] / name), name
        for name in ("plan_series.parquet", "plan_kpis.parquet", "part-0.parquet"):
            mine, theirs = pq.read_table(out / name), pq.read_table(outs[0] / name)
            assert mine.schema.names == theirs.schema.names, name
            assert [str(t) for t in mine.schema.types] == [str(t) for t in theirs.schema.types], name
            stamps = [n for n in mine.column_names if n.endswith("_at") or n == "source_run_id"]  # per filling
            assert mine.drop_columns(stamps).to_pylist() == theirs.drop_columns(stamps).to_pylist(), name


def test_overrides_and_the_export_event(stores: list[PlanStore], tmp_path):
    for i, store in enumerate(stores):
        with store.snapshot() as tx:
            tx.version_table_rows("plan_overrides", "v1").write(tmp_path / f"o{i}.json", "json")
            tx.version_table_rows("plan_override_events", "v1").write(tmp_path / f"e{i}.csv", "csv")
        overrides = json.loads((tmp_path / f"o{i}.json").read_text())
        assert [(o["key_hash"], o["payload_json"], o["lock_flag"], o["locked_by"]) for o in overrides] == [
            ("det:week=2025-W02,sku=A1", {"demand": 4.0}, True, "ana")]
        with open(tmp_path / f"e{i}.csv", newline="") as f:
            events = list(csv.DictReader(f))
        assert [(e["event_type"], e["notes"]) for e in events] == [
            ("edit", "line\nbreak"), ("lock", "line\nbreak"), ("submit", ""), ("approve", "")]
        assert json.loads(events[0]["payload_json"]) == {"field": "demand", "before": None, "after": 4.0}
        with store.transaction() as tx:
            tx.record_export_event("v1", {"format": "csv", "files": 2}, actor="ops")
        assert store.read_override_events("v1")["event_type"].tolist()[-1] == "export"


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_version_and_dwh_run_on_the_backend(stores: list[PlanStore], tmp_path, fmt):
    """What ``plan-pipeline export`` and ``export-dwh`` run, through the unit of work, on each backend."""
    from plan_pipeline.exports.export import export_dwh, export_version

    manifests = []
    for i, store in enumerate(stores):
        result = export_version(store, "v1", fmt, tmp_path / f"x{i}", actor="ops")
        rows = {f["file"]: f["rows"] for f in result.manifest["files"]}
        assert rows == {f"plan_series.{fmt}": 7, f"plan_kpis.{fmt}": 2, f"plan_overrides.{fmt}": 1,
                        f"plan_override_events.{fmt}": 4}
        assert store.read_override_events("v1")["event_type"].tolist()[-1] == "export"
        dwh = export_dwh(store, tmp_path / f"dwh{i}")
        assert dwh.versions == {"v1": {"plan_series": 7, "plan_kpis": 2}}
        manifests.append(sorted((f["file"], f["rows"]) for f in result.manifest["files"]))
    assert all(m == manifests[0] for m in manifests)
