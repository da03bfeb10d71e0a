"""The reference file set of a planned version is byte for byte what the previous writer wrote
(``json.dumps(document, ensure_ascii=False, indent=2)`` of the row dicts; the CSV texts), with
the manifest's row counts; a failure part way leaves the target folder as it was."""
from __future__ import annotations

import csv
import io
import json

import pytest

from plan_pipeline.exports import reference
from plan_pipeline.exports.export import export_version
from plan_pipeline.exports.reference import export_reference, reference_documents
from plan_pipeline.store import plan_levels

from ..conftest import BUNDLED_SAMPLE
from .ops_helpers import build_materialized_home, use_home_copy

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

ANCHORED = {"preset": "det_near", "cutover_date": "2025-03-15", "apply_adjusted": True}
ANCHORED_FILES = {"sku_week_adjusted.json", "mrp_adjusted.json", "plan_final_adjusted.json", "carryover.csv",
                  "reconciliation_log_adjusted.json", "report_adjusted.csv"}


@pytest.fixture(scope="module", params=["int", "dec1"])
def template(request, tmp_path_factory, homes):
    folder = tmp_path_factory.mktemp(f"anchored-{request.param}")
    return request.param, build_materialized_home(homes, folder, BUNDLED_SAMPLE, round_mode=request.param, **ANCHORED)


@pytest.fixture
def store(template, tmp_path, monkeypatch, home_copy):
    """The store of a copy of the template home (this process pointed at it)."""
    home, env = use_home_copy(template[1], tmp_path / "home", monkeypatch, home_copy)
    yield env.store
    home.check_no_duckdb_file()


def _previous_bytes(content) -> bytes:
    """What the previous implementation wrote for one file's content."""
    if isinstance(content, str):
        return content.encode("utf-8")
    return json.dumps(content, ensure_ascii=False, indent=2).encode("utf-8")


def _previous_rows(content) -> int | None:
    """The row count the previous implementation read back from the written file."""
    if isinstance(content, str):
        return max(sum(1 for _ in csv.reader(io.StringIO(content, newline=""))) - 1, 0)
    for key in ("rows", "deltas"):
        if isinstance(content.get(key), list):
            return len(content[key])
    return None


def test_reference_files_are_the_bytes_the_previous_writer_wrote(template, store, tmp_path, monkeypatch):
    round_mode, _ = template
    out = tmp_path / "ref"
    with monkeypatch.context() as patched:
        # the SKU x week and MRP levels written in slices of 7 rows (a dozen and more per level)
        patched.setattr(plan_levels, "SERIES_BATCH_ROWS", 7)
        result = export_version(store, "v1", "reference", out, record_event=False)
    previous = dict(reference_documents(store, "v1"))  # the documents as row dicts, each level in one slice
    levels = store.series_levels("v1")
    assert min(levels[level] for level in ("det", "mrp", "mrp_final_adjusted")) > 7 * 10
    names = [f["file"] for f in result.files]
    assert names == list(previous)
    assert set(names) >= ANCHORED_FILES
    for entry in result.files:
        content = previous[entry["file"]]
        assert (out / entry["file"]).read_bytes() == _previous_bytes(content), entry["file"]
        assert entry["rows"] == _previous_rows(content), entry["file"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["manifest.json"])

    plan_final = json.loads((out / "plan_final_adjusted.json").read_text(encoding="utf-8"))
    kinds = {type(r["planned_order_release_adj"]) for r in plan_final["rows"]}
    # int mode: finished goods' adjusted quantities are ints, components' stay floats
    assert kinds == ({int, float} if round_mode == "int" else {float})
    assert {type(r["lt_weeks"]) for r in plan_final["rows"]} == {int}
    adjusted = json.loads((out / "sku_week_adjusted.json").read_text(encoding="utf-8"))
    kinds = {type(r[c]) for r in adjusted["rows"] for c in ("demand", "supply", "backlog")}
    # int mode: cells the anchor left alone are ints (cells it rewrote are floats)
    assert (int in kinds) if round_mode == "int" else kinds == {float}


def test_a_failure_part_way_leaves_the_folder_as_it_was(store, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "aggregate.json").write_text("earlier run\n", encoding="utf-8")
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reference, "plan_final_document", broken)  # after aggregate, sku_week and mrp
    with pytest.raises(RuntimeError, match="disk full"):
        export_reference(store, "v1", out)
    assert sorted(p.name for p in out.iterdir()) == ["aggregate.json", "notes.txt"]
    assert (out / "aggregate.json").read_text(encoding="utf-8") == "earlier run\n"
