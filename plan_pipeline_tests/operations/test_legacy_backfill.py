"""Legacy backfill logic against ``shared/reference/legacy`` (no Dagster here; see test_backfill_job.py)."""
from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pytest

from plan_pipeline.exports.reference_documents import report_csv_text
from plan_pipeline.operations.legacy_backfill import (
    HEADER_ARTIFACT,
    LegacySourceError,
    build_payload,
    discover_sources,
    get_backfill_run,
    list_backfill_runs,
    list_versions,
    read_legacy_version,
    run_legacy_backfill,
    write_imported_version,
)
from plan_pipeline.planning.frames import report_from_kpi_frame
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore
from plan_pipeline_tests.operations.legacy_helpers import (
    LEGACY_SERIES_ROWS,
    LEGACY_VERSIONS,
    assert_capacity_attrs_match,
    assert_frames_equal,
    kpi_frame,
    legacy_db,
    legacy_dir,
    our_chain,
    sqlite_exec,
    writable_db_copy,
)

ARTIFACT_COUNTS = {"legacy-default": 8, "legacy-weekly": 8, "legacy-tight-detnear": 15, "legacy-dec2": 8}
pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

CREATED_MS = {"legacy-default": 1795911939223, "legacy-weekly": 1795911946380,
              "legacy-tight-detnear": 1795911959731, "legacy-dec2": 1795911967833}


@pytest.fixture(scope="module")
def imported(tmp_path_factory, homes):
    """One store with the whole reference legacy folder imported (read-only tests share it)."""
    store = homes.store_at(tmp_path_factory.mktemp("imported"))
    report = run_legacy_backfill(store, legacy_dir())
    return store, report


@pytest.fixture
def new_store(homes, tmp_path, request):
    """``new_store(name="store")``: an empty plan store of the selected backend (a DuckDB file in
    ``tmp_path / name``, or a new PostgreSQL database dropped after the test)."""
    return lambda name="store": homes.store_at(tmp_path / name, request.addfinalizer)


def counts_without_runs(store: PlanStore) -> dict[str, int]:
    """Rows per table but the ledgers every import run adds to (its run row; its writes' log rows)."""
    counts = store.table_counts()
    counts.pop("plan_backfill_runs")
    counts.pop("plan_write_log")
    return counts


# ----------------------------------------------------------------------------- discovery
def test_sources_are_databases_output_folders_or_a_folder_of_both(reference_dir, tmp_path):
    sources = discover_sources(legacy_dir())
    assert [(s.kind, s.path.name) for s in sources] == [
        ("sqlite", "scpln_legacy.db"), ("folder", "out_legacy-default"), ("folder", "out_legacy-tight-detnear")]
    assert [(s.kind, s.path.name) for s in discover_sources(legacy_db())] == [("sqlite", "scpln_legacy.db")]
    folder = legacy_dir() / "out_legacy-default"
    assert [(s.kind, s.path.name) for s in discover_sources(folder)] == [("folder", "out_legacy-default")]

    versions, problems = list_versions(sources)
    assert problems == []
    assert [v.version_id for v in versions] == list(LEGACY_VERSIONS)  # created_at order; db before folders
    by_id = {v.version_id: v for v in versions}
    assert by_id["legacy-default"].source.kind == "sqlite"
    assert by_id["legacy-default"].duplicates == [f"folder {folder}"]

    with pytest.raises(LegacySourceError, match="does not exist"):
        discover_sources(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LegacySourceError, match="no legacy plan database"):
        discover_sources(tmp_path / "empty")
    (tmp_path / "plain.db").write_text("not sqlite")
    with pytest.raises(LegacySourceError, match="not a SQLite database"):
        discover_sources(tmp_path / "plain.db")


# ----------------------------------------------------------------------------- the import
def test_all_four_versions_are_imported_with_series_kpis_and_artifacts(reference_dir, imported):
    store, report = imported
    assert report.status == "success", report.message
    assert (report.imported, report.skipped, report.failed) == (4, 0, 0)
    assert [o.version_id for o in report.outcomes] == list(LEGACY_VERSIONS)
    for vid in LEGACY_VERSIONS:
        version = store.get_version(vid)
        assert version.status == "imported" and version.read_only and version.input_set is None
        assert version.source == f"legacy:{legacy_db()}"
        assert version.note.startswith("[legacy status: active] legacy: ")
        expected_created = datetime.fromtimestamp(CREATED_MS[vid] / 1000, tz=UTC).replace(tzinfo=None)
        assert version.created_at == expected_created
        levels = store.series_levels(vid)
        assert {"aggregate", "det", "mrp", "mrp_final", "weekly_summary", "level_reconciliation"} <= set(levels)
        assert all(n > 0 for lvl, n in levels.items() if lvl != "carryover")
        kpis = store.read_kpis(vid, "report")
        assert set(kpis["category"]) == {"capacity", "service", "plan"}
        assert set(kpis["source_run_id"]) == {report.run_id}
        header = store.get_artifact(vid, HEADER_ARTIFACT)
        assert header["plan_version"]["status"] == "active" and header["plan_version"]["created_at"] == CREATED_MS[vid]
        with store.connect() as con:
            names = {r[0] for r in con.execute(
                "SELECT name FROM plan_artifacts WHERE version_id = ?", [vid]).fetchall()}
        assert len(names - {HEADER_ARTIFACT}) == ARTIFACT_COUNTS[vid]
        assert {"aggregate.json", "sku_week.json", "mrp.json", "plan_final.json", "report.csv"} <= names
        assert store.get_artifact(vid, "report.csv")["type"] == "csv"
        # the rows carry the backfill run as their source run
        rows = store.read_series_rows(vid, "aggregate")
        assert set(rows["source_run_id"]) == {report.run_id}
    tight = store.get_version("legacy-tight-detnear").params
    assert (tight.cutover_date, tight.recon_window_days, tight.anchor_policy, tight.preset, tight.apply_adjusted) == (
        "2025-05-20", 7, "DET_near", "det_near", True)
    assert store.get_version("legacy-dec2").params.round_mode == "dec2"
    assert set(store.series_levels("legacy-tight-detnear")) >= {
        "det_adjusted", "carryover", "level_reconciliation_adjusted", "mrp_adjusted", "mrp_final_adjusted",
        "weekly_summary_adjusted"}
    assert store.has_kpis("legacy-tight-detnear", "report_adjusted")


def test_legacy_plan_series_rows_are_mapped_faithfully(reference_dir, imported):
    """Versions with their own legacy rows keep them (receipt override and merged shared weeks included)."""
    store, report = imported
    outcomes = {o.version_id: o for o in report.outcomes}
    for vid, legacy_rows in LEGACY_SERIES_ROWS.items():
        for level, n in legacy_rows.items():
            assert store.series_levels(vid)[level] == n, (vid, level)
            assert outcomes[vid].level_origin[level] == "plan_series"
        assert outcomes[vid].level_origin["level_reconciliation"] == "reconciliation_log.json"
        assert outcomes[vid].level_origin["report"] == "plan_kpis"

    det = store.read_series("legacy-default", "det")
    row = det[(det["sku"] == "SKU1") & (det["week"] == "2025-W05")].iloc[0]
    assert (row["demand"], row["supply"], row["backlog"]) == (14.0, 20.0, 0.0)
    assert (row["family"], row["period"], row["periods"]) == ("F1", "2025-01", "2025-01,2025-02")
    assert "on_hand_start" not in det.columns  # the live-written legacy det lost its inventory (G19)
    agg = store.read_series("legacy-default", "aggregate")
    f1 = agg[(agg["family"] == "F1") & (agg["period"] == "2025-01")].iloc[0]
    assert (f1["demand"], f1["supply"], f1["backlog"]) == (100.0, 40.0, 66.0)

    def totals(vid):
        k = store.read_kpis(vid, "report")
        k = k[(k["category"] == "plan") & (k["bucket_type"] == "total")]
        return dict(zip(k["metric"], k["value"]))

    assert totals("legacy-default") == {"fill_rate": 1.0, "backlog_total": 248.0, "demand_total": 3780.0,
                                        "supply_total": 4330.0}
    tight = totals("legacy-tight-detnear")
    assert (tight["demand_total"], tight["supply_total"], tight["backlog_total"]) == (4546.0, 4210.0, 1656.0)
    assert tight["fill_rate"] == pytest.approx(0.92608886933568, abs=1e-12)
    plan_rows = store.read_kpis("legacy-default", "report")
    assert len(plan_rows[plan_rows["category"] == "plan"]) == 28

    weekly = store.read_series("legacy-tight-detnear", "weekly_summary")
    assert list(weekly["zone"].unique()) == ["pre", "at", "post"]
    at = weekly[weekly["zone"] == "at"]
    assert list(at["boundary_index"]) == [1, 2, 3, 4] and set(at["boundary_size"]) == {4}


@pytest.mark.parametrize("vid", ["legacy-default", "legacy-tight-detnear"])
def test_levels_from_legacy_rows_equal_the_same_levels_built_from_the_output_folder(reference_dir, imported,
                                                                                   new_store, vid):
    """mrp, mrp_final and weekly_summary exist both as legacy rows and as artifacts: same frames."""
    store, _ = imported
    from_folder = new_store("folder")
    report = run_legacy_backfill(from_folder, legacy_dir() / f"out_{vid}")
    assert report.status == "success" and report.imported == 1
    assert from_folder.get_version(vid).source == f"legacy:{legacy_dir() / f'out_{vid}'}"
    assert from_folder.get_version(vid).note == "[legacy output folder]"
    for level in ("mrp", "mrp_final", "weekly_summary"):
        got, expected = store.read_series(vid, level), from_folder.read_series(vid, level)
        assert_frames_equal(got, expected, f"{vid} {level}")
        if level == "weekly_summary":
            assert got.attrs == expected.attrs
        else:
            assert got.attrs.get("summary") == expected.attrs.get("summary")
    # the capacity and service rows of the report too (only the plan KPIs differ: legacy rows vs aggregate)
    got, expected = kpi_frame(store, vid, "report"), kpi_frame(from_folder, vid, "report")
    assert_frames_equal(got[got["category"] != "plan"], expected[expected["category"] != "plan"], f"{vid} report")


@pytest.mark.parametrize("vid", ["legacy-weekly", "legacy-dec2"])
def test_artifact_only_versions_equal_what_our_stages_produce(reference_dir, imported, vid):
    store, report = imported
    chain = our_chain(vid)
    outcome = next(o for o in report.outcomes if o.version_id == vid)
    assert set(store.series_levels(vid)) == set(chain.series)
    for level, expected in chain.series.items():
        got = store.read_series(vid, level)
        assert_frames_equal(got, expected, f"{vid} {level}")
        assert outcome.level_origin[level].endswith(".json")
        if level == "weekly_summary":
            assert_capacity_attrs_match(got.attrs, expected.attrs, f"{vid} weekly attrs")
        elif level != "det":
            assert got.attrs == expected.attrs, f"{vid} {level} attrs"
    assert_frames_equal(kpi_frame(store, vid, "report"), chain.kpis["report"], f"{vid} report KPIs")
    # our report rows reproduce the legacy report.csv exactly
    rebuilt = report_csv_text(report_from_kpi_frame(store.read_kpis(vid, "report")))
    assert rebuilt == store.get_artifact(vid, "report.csv")["content"]
    k = store.read_kpis(vid, "report")
    totals = {m: v for m, v, c, b in zip(k["metric"], k["value"], k["category"], k["bucket_type"])
              if c == "plan" and b == "total"}
    assert totals == {"fill_rate": 1.0, "backlog_total": 0.0, "demand_total": 3780.0, "supply_total": 3780.0}


def test_output_folder_with_the_anchor_branch_equals_what_our_stages_produce(reference_dir, new_store, tmp_path):
    store = new_store()
    report = run_legacy_backfill(store, legacy_dir() / "out_legacy-tight-detnear")
    assert report.status == "success", report.message
    vid = "legacy-tight-detnear"
    chain = our_chain(vid)
    assert set(store.series_levels(vid)) == set(chain.series)
    for level, expected in chain.series.items():
        got = store.read_series(vid, level)
        assert_frames_equal(got, expected, f"{vid} {level}")
        if level.startswith("weekly_summary"):
            assert_capacity_attrs_match(got.attrs, expected.attrs, f"{vid} {level} attrs")
    anchor = store.read_series(vid, "det_adjusted").attrs["anchor"]
    expected = chain.series["det_adjusted"].attrs["anchor"]
    assert (anchor["cutover"], anchor["summary"], anchor["carryover"]) == (
        expected["cutover"], expected["summary"], expected["carryover"])
    for level in ("report", "report_adjusted"):
        assert_frames_equal(kpi_frame(store, vid, level), chain.kpis[level], f"{vid} {level}")
    assert store.get_artifact(vid, "carryover.csv")["type"] == "csv"  # folder-only file kept as an artifact


# ----------------------------------------------------------------------------- idempotency, force, dry run
def test_second_run_imports_nothing_and_says_so(reference_dir, new_store, tmp_path):
    store = new_store()
    first = run_legacy_backfill(store, legacy_db())
    before = counts_without_runs(store)
    logged = len(store.read_write_log())
    second = run_legacy_backfill(store, legacy_db())
    assert second.status == "success"
    assert (second.imported, second.skipped, second.failed, second.rows_written) == (0, 4, 0, 0)
    assert all(o.reason.startswith("already imported") for o in second.outcomes)
    assert "nothing to import" in second.message
    assert counts_without_runs(store) == before
    assert len(store.read_write_log()) == logged  # nothing written, nothing logged
    runs = list_backfill_runs(store)
    assert list(runs["run_id"]) == [second.run_id, first.run_id]
    row = get_backfill_run(store, second.run_id)
    assert (row["status"], row["versions_imported"], row["versions_skipped"], row["versions_failed"],
            row["rows_written"], bool(row["dry_run"])) == ("success", 0, 4, 0, 0, False)
    assert "nothing to import" in row["message"]


def test_force_reimports_plan_rows_and_keeps_audit_events(reference_dir, new_store, tmp_path):
    store = new_store()
    first = run_legacy_backfill(store, legacy_db())
    created = store.get_version("legacy-dec2").created_at
    before = counts_without_runs(store)
    with store.write() as con:  # an audit event and a stray row the re-import must not / must replace
        con.execute("INSERT INTO plan_override_events (version_id, level, key_hash, event_type, event_ts, actor) "
                    "VALUES ('legacy-dec2', 'plan', 'plan', 'note', now()::TIMESTAMP, 'tester')")
        con.execute("DELETE FROM plan_series_mrp WHERE version_id = 'legacy-dec2' AND level = 'mrp'")
    forced = run_legacy_backfill(store, legacy_db(), force=True)
    assert forced.status == "success"
    assert (forced.imported, forced.skipped, forced.failed) == (4, 0, 0)
    assert forced.rows_written == first.rows_written
    assert all(o.reason == "re-imported (force)" for o in forced.outcomes)
    after = counts_without_runs(store)
    assert after["plan_override_events"] == before["plan_override_events"] + 1  # audit kept
    assert {k: v for k, v in after.items() if k != "plan_override_events"} == {
        k: v for k, v in before.items() if k != "plan_override_events"}
    assert len(store.read_series("legacy-dec2", "mrp")) == 212
    assert set(store.read_series_rows("legacy-dec2")["source_run_id"]) == {forced.run_id}
    log = store.read_write_log()
    for run in (first, forced):  # every import is in the write log, as the backfill's, level by level
        mine = log[log["run_id"] == run.run_id]
        assert set(mine["source"]) == {"backfill"} and set(mine["operation"]) == {"import"}
        assert int(mine["rows"].sum()) == run.rows_written
        assert sorted(mine["version_id"].unique()) == sorted(o.version_id for o in run.imported_versions())
    dec2 = log[(log["run_id"] == forced.run_id) & (log["version_id"] == "legacy-dec2")]
    assert dict(zip(dec2["level"], dec2["rows"])) == {
        **store.series_levels("legacy-dec2"), **store.publication("legacy-dec2")["kpi_levels"]}
    version = store.get_version("legacy-dec2")
    assert version.created_at == created and version.updated_at > created


def test_a_native_version_is_never_overwritten(reference_dir, new_store, tmp_path):
    store = new_store()
    store.create_version("legacy-dec2", None, PlanningParameters(), note="mine")
    report = run_legacy_backfill(store, legacy_db())
    outcome = next(o for o in report.outcomes if o.version_id == "legacy-dec2")
    assert outcome.status == "skipped" and "native plan version" in outcome.reason
    forced = run_legacy_backfill(store, legacy_db(), force=True)
    outcome = next(o for o in forced.outcomes if o.version_id == "legacy-dec2")
    assert outcome.status == "failed" and "never overwritten" in outcome.reason
    assert forced.status == "partial"
    assert store.get_version("legacy-dec2").note == "mine" and store.series_levels("legacy-dec2") == {}


def test_dry_run_reports_rows_per_level_and_writes_no_plan_rows(reference_dir, new_store, tmp_path):
    store = new_store()
    store.initialise()
    before = counts_without_runs(store)
    dry = run_legacy_backfill(store, legacy_dir(), dry_run=True)
    assert counts_without_runs(store) == before
    assert dry.status == "success"
    assert [o.status for o in dry.outcomes] == ["would_import"] * 4
    row = get_backfill_run(store, dry.run_id)
    assert bool(row["dry_run"]) and row["status"] == "success"
    # the run ledger records nothing imported or written; the message says what would be
    assert (row["versions_imported"], row["versions_skipped"], row["versions_failed"]) == (0, 0, 0)
    assert row["rows_written"] == 0 and (dry.imported, dry.rows_written) == (0, 0)
    assert dry.would_import == 4
    assert f"would import 4 version(s) / {dry.would_write_rows} rows" in row["message"]
    assert "nothing written" in row["message"]

    real = run_legacy_backfill(store, legacy_dir())
    assert dry.would_write_rows == real.rows_written > 0 and real.would_write_rows == 0
    for would, done in zip(dry.outcomes, real.outcomes):
        assert would.series_rows == done.series_rows == store.series_levels(done.version_id)
        assert would.kpi_rows == done.kpi_rows
    weekly = next(o for o in dry.outcomes if o.version_id == "legacy-weekly")
    assert weekly.series_rows["det"] == 180 and weekly.series_rows["mrp"] == 240  # README's backfill counts


# ----------------------------------------------------------------------------- bad legacy data
def test_a_corrupt_artifact_fails_that_version_only(reference_dir, new_store, tmp_path):
    db = writable_db_copy(tmp_path / "legacy" / "scpln_legacy.db")
    sqlite_exec(db, "UPDATE plan_artifacts SET json_text = ? WHERE version_id = 'legacy-weekly' AND name = 'mrp.json'",
                ('{"schema_version": "agg-1.0", "rows": [',))
    store = new_store()
    report = run_legacy_backfill(store, db)
    status = {o.version_id: o.status for o in report.outcomes}
    assert status == {"legacy-default": "imported", "legacy-weekly": "failed", "legacy-tight-detnear": "imported",
                      "legacy-dec2": "imported"}
    failed = next(o for o in report.outcomes if o.status == "failed")
    assert failed.reason.startswith("artifact mrp.json is not valid JSON")
    assert report.status == "partial"
    assert store.find_version("legacy-weekly") is None
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM plan_series WHERE version_id = 'legacy-weekly'").fetchone()[0] == 0
    row = get_backfill_run(store, report.run_id)
    assert (row["status"], row["versions_imported"], row["versions_skipped"], row["versions_failed"]) == (
        "partial", 3, 0, 1)
    assert "legacy-weekly failed: artifact mrp.json is not valid JSON" in row["message"]
    # fixing the source and running again imports only the missing version
    shutil.copyfile(legacy_db(), db)
    again = run_legacy_backfill(store, db)
    assert (again.imported, again.skipped, again.status) == (1, 3, "success")


def test_a_missing_table_is_reported_and_the_rest_still_imports(reference_dir, new_store, tmp_path):
    db = writable_db_copy(tmp_path / "scpln_legacy.db")
    sqlite_exec(db, "DROP TABLE plan_artifacts")
    store = new_store()
    report = run_legacy_backfill(store, db)
    by_id = {o.version_id: o for o in report.outcomes}
    assert by_id["legacy-weekly"].status == by_id["legacy-dec2"].status == "failed"
    assert by_id["legacy-weekly"].reason.startswith("nothing to import")
    for vid in ("legacy-default", "legacy-tight-detnear"):
        assert by_id[vid].status == "imported"
        assert "table plan_artifacts is missing in the legacy database" in by_id[vid].notes
        assert {lvl: n for lvl, n in store.series_levels(vid).items() if lvl in LEGACY_SERIES_ROWS[vid]} == \
            LEGACY_SERIES_ROWS[vid]
        assert store.has_kpis(vid, "report")
    assert report.status == "partial" and (report.imported, report.failed) == (2, 2)


def test_a_source_without_plan_versions_is_a_failed_run(reference_dir, new_store, tmp_path):
    db = writable_db_copy(tmp_path / "scpln_legacy.db")
    sqlite_exec(db, "DROP TABLE plan_versions")
    store = new_store()
    report = run_legacy_backfill(store, db)
    assert report.status == "failed" and report.outcomes == []
    assert "table plan_versions is missing" in report.errors[0]
    row = get_backfill_run(store, report.run_id)
    assert row["status"] == "failed" and "plan_versions is missing" in row["message"]
    missing = run_legacy_backfill(store, tmp_path / "nowhere")
    assert missing.status == "failed" and "does not exist" in missing.message
    assert store.list_versions() == []


def test_a_corrupt_output_folder_beside_a_good_database(reference_dir, new_store, tmp_path):
    source = tmp_path / "legacy"
    writable_db_copy(source / "scpln_legacy.db")
    broken = source / "out_legacy-broken"
    shutil.copytree(legacy_dir() / "out_legacy-default", broken)
    text = (broken / "plan_final.json").read_text(encoding="utf-8")
    (broken / "plan_final.json").chmod(0o644)
    (broken / "plan_final.json").write_text(text[: len(text) // 2], encoding="utf-8")
    store = new_store()
    report = run_legacy_backfill(store, source)
    by_id = {o.version_id: o for o in report.outcomes}
    assert by_id["legacy-broken"].status == "failed"
    assert by_id["legacy-broken"].reason.startswith("artifact plan_final.json is not valid JSON")
    assert [o.version_id for o in report.imported_versions()] == list(LEGACY_VERSIONS)
    assert report.status == "partial"


def test_a_version_is_written_in_one_transaction(reference_dir, new_store, tmp_path):
    """A failure at the last statement (an artifact DuckDB refuses) leaves nothing of the version."""
    store = new_store()
    sources = discover_sources(legacy_db())
    versions, _ = list_versions(sources)
    lv = next(v for v in versions if v.version_id == "legacy-dec2")
    payload = build_payload(lv, read_legacy_version(lv))
    payload.artifacts["zz_broken.json"] = "{not json"
    with pytest.raises(Exception):  # noqa: B017 - whichever error the store raises; nothing may be written
        write_imported_version(store, payload, replace=False, run_id="r1")
    assert store.find_version("legacy-dec2") is None
    assert {k: v for k, v in store.table_counts().items() if v and k != "schema_migrations"} == {}
    payload.artifacts.pop("zz_broken.json")
    written = write_imported_version(store, payload, replace=False, run_id="r1")
    assert written == payload.rows_total and store.series_levels("legacy-dec2") == payload.series_rows()
    assert json.loads(json.dumps(store.get_artifact("legacy-dec2", HEADER_ARTIFACT)))["levels"]["aggregate"] == \
        "aggregate.json"
