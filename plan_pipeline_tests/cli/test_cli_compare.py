"""Issue 12 acceptance: a version and its duplicate with ONE demand edit, both planned by plan_job;
the comparison shows exactly that edit's effects at the detail level, the ``baseline_comparison``
asset stores and describes it, and ``plan-pipeline diff --by/--metric/--json`` shows it or refuses
a bad request with a clear error."""
from __future__ import annotations

import json

import dagster as dg
import pytest

from plan_pipeline.cli.main import main
from plan_pipeline_tests.cli.cli_helpers import HOME_VARS, run_main

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

EDIT = 25.0
DETAIL = ["demand", "supply", "backlog"]


@pytest.fixture(scope="module")
def edited(tmp_path_factory, homes, sample_dir_module):
    """base (planned) and dup = its duplicate with one demand edit (planned), in a home of the
    selected backend (the module's tests only read it)."""
    from plan_pipeline.cli.environment import resolve_environment
    from plan_pipeline.orchestration.plan.launch import prepare_dagster_home

    home = homes.new(tmp_path_factory.mktemp("compare") / "home")
    with pytest.MonkeyPatch.context() as mp:
        for name in HOME_VARS:  # setenv first so that the undo also removes what main() sets
            mp.setenv(name, "unset")
            mp.delenv(name)
        home.apply(mp)
        env = resolve_environment(None, None)
        prepare_dagster_home(env.dagster_home)
        assert main(["inputs", "import", str(sample_dir_module), "--label", "s"]) == 0
        assert main(["version", "create", "--input-set", "s", "--version-id", "base"]) == 0
        assert main(["materialize", "base"]) == 0
        assert main(["version", "duplicate", "base", "--id", "dup"]) == 0
        det = env.store.read_series("base", "det")
        row = det[(det.period == "2025-03") & (det.week == "2025-W11")].iloc[0]
        assert main(["override", "set", "dup", "--week", "2025-W11", "--sku", row.sku,
                     "--demand", str(row.demand + EDIT)]) == 0
        assert main(["materialize", "dup"]) == 0
        yield env, row
    home.check_no_duckdb_file()


@pytest.fixture(scope="module")
def sample_dir_module():
    from plan_pipeline_tests.conftest import BUNDLED_SAMPLE

    return BUNDLED_SAMPLE


def expected_detail_change(store, row) -> dict[str, float]:
    """The edited row's change per detail measure (read from both plans), the zero ones left out."""
    after = store.read_series("dup", "det")
    new = after[(after.sku == row.sku) & (after.week == row.week) & (after.period == row.period)].iloc[0]
    change = {m: float(new[m] - row[m]) for m in DETAIL}
    assert change["demand"] == EDIT
    return {m: d for m, d in change.items() if abs(d) > 1e-9}


def test_duplicate_with_one_edit_differs_exactly_by_that_edit(edited):
    env, row = edited
    store = env.store
    assert store.baseline_version("dup") == "base"
    assert store.baseline_version("base") is None
    # the detail level: one row differs, by the edit
    rows = store.level_row_diff("base", "dup", "det")
    assert rows[["time_bucket_key", "period_key", "item_key"]].values.tolist() == [[row.week, row.period, row.sku]]
    change = expected_detail_change(store, row)
    assert {m: rows[f"{m}_delta"].iat[0] for m in DETAIL if abs(rows[f"{m}_delta"].iat[0]) > 1e-9} == change
    # every bucket type shows that change at the edited row's bucket, and nothing else at detail level
    buckets = {"total": "total", "family": row.family, "sku": row.sku, "month": row.period, "week": row.week}
    for by, bucket in buckets.items():
        frame = store.compare_versions("base", "dup", by, DETAIL)
        assert {(r.bucket, r.metric): r.delta for r in frame.itertuples()} == {
            (bucket, m): d for m, d in change.items()}, by
        demand = frame[frame.metric == "demand"].iloc[0]
        assert demand.value - demand.baseline == EDIT


def test_baseline_comparison_asset_stores_and_describes_the_change(edited):
    env, row = edited
    store = env.store
    stored = store.read_baseline_comparison("dup")
    assert stored.attrs["baseline"] == "base"
    for by in ("total", "family", "sku"):
        fresh = store.compare_versions("base", "dup", by)
        got = stored[stored["by"] == by].drop(columns="by").reset_index(drop=True)
        assert got[["bucket", "metric"]].values.tolist() == fresh[["bucket", "metric"]].values.tolist()
        assert got["delta"].tolist() == pytest.approx(fresh["delta"].tolist())
    none = store.read_baseline_comparison("base")  # the first version has no baseline: a clean record
    assert none is not None and none.empty and none.attrs["baseline"] is None

    instance = env.instance()

    def latest(version):
        records = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("baseline_comparison"), asset_partitions=[version]), limit=1).records
        return records[0].asset_materialization.metadata

    meta = latest("dup")
    assert meta["baseline"].value == "base"
    assert meta["delta/demand"].value == EDIT
    assert meta["delta/supply"].value == pytest.approx(expected_detail_change(store, row).get("supply", 0.0))
    family = meta["top_family_changes"].value.records
    assert family and {"bucket", "metric", "baseline", "value", "delta"} <= set(family[0].data)
    assert any(r.data["bucket"] == row.family and r.data["metric"] == "demand" and r.data["delta"] == EDIT
               for r in family)
    assert any(r.data["bucket"] == row.sku and r.data["metric"] == "demand"
               for r in meta["top_sku_changes"].value.records)
    assert "no baseline" in latest("base")["comparison"].value


def test_cli_diff_by_metric_and_json(edited, capsys):
    env, row = edited
    capsys.readouterr()
    assert main(["diff", "base", "dup", "--by", "sku", "--metric", "demand", "--metric", "supply,backlog"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("by sku: ") and "dup minus base, biggest first" in text[0]
    change = expected_detail_change(env.store, row)
    order = sorted(change, key=lambda m: (-abs(change[m]), m))  # biggest first, then by name
    assert text[1] == "total change: " + ", ".join(f"{m} {change[m]:+.6g}" for m in order)
    assert [line.split()[:2] for line in text[2:]] == [[row.sku, m] for m in order]
    assert main(["diff", "base", "dup", "--by", "week", "--metric", "demand", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {k: payload[k] for k in ("baseline", "version", "by", "metrics", "changes")} == {
        "baseline": "base", "version": "dup", "by": "week", "metrics": ["demand"], "changes": 1}
    assert payload["rows"] == [{"bucket": row.week, "metric": "demand", "baseline": pytest.approx(
        payload["rows"][0]["value"] - EDIT), "value": payload["rows"][0]["value"], "delta": EDIT}]
    # --metric alone compares the totals; the row diff of a level still works
    assert main(["diff", "base", "dup", "--metric", "demand"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("by total: 1 change(s)")
    assert lines[2].split() == ["total", "demand", f"{row_total(env) - EDIT:.6g}", "->", f"{row_total(env):.6g}",
                                "+25"]
    assert main(["diff", "base", "dup", "--level", "det"]) == 0
    assert "level det: 1 row(s) differ (dup minus base)" in capsys.readouterr().out
    assert main(["diff", "base", "base", "--by", "family"]) == 0
    assert "do not differ" in capsys.readouterr().out


def row_total(env) -> float:
    """dup's total detail demand."""
    return float(env.store.read_series("dup", "det")["demand"].sum())


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--metric", "margin"], 2, "argument --metric: unknown metric 'margin'; choose from: demand, supply"),
    (["--metric", "demand,nope"], 2, "unknown metric 'nope'"),
    (["--by", "day"], 2, "argument --by: invalid choice: 'day'"),
    (["--level", "foo"], 2, "argument --level: invalid choice: 'foo'"),
    (["--level", "det", "--by", "sku"], 2, "argument --by: not allowed with argument --level"),
    (["--level", "det", "--metric", "demand"], 2, "--level (row diff of one plan level) and --by/--metric"),
    (["--level", "det_adjusted"], 1, "neither 'base' nor 'dup' publishes level 'det_adjusted'; their levels: "),
])
def test_cli_diff_refuses_unknown_levels_and_metrics(edited, capsys, argv, code, message):
    capsys.readouterr()
    assert run_main(["diff", "base", "dup", *argv]) == code
    assert message in capsys.readouterr().err


def test_the_plan_report_shows_the_edit_against_the_baseline(edited):
    """The plan run wrote dup's report (plan_review_report, after baseline_comparison): its baseline
    section names base and lists the edited family's demand change; base's says it has no baseline."""
    from plan_pipeline.exports.plan_review import published_report_dir
    from plan_pipeline.exports.plan_review_report import DIFF_CHART, REPORT_FILE
    from plan_pipeline_tests.exports.report_helpers import parse_page

    env, row = edited
    page = parse_page(published_report_dir(env.store, "dup") / REPORT_FILE)
    assert "Baseline: base" in page.sections["baseline"]
    table = next(t for t in page.tables if t[0][:2] == ["family", "metric"])
    deltas = {(r[0], r[1]): r[4] for r in table[1:]}
    assert deltas[(row.family, "demand")] == f"{EDIT:+,.1f}"
    assert DIFF_CHART in {image["data-file"] for image in page.images}
    base = parse_page(published_report_dir(env.store, "base") / REPORT_FILE)
    assert base.sections["baseline"].startswith("5. ") and "No baseline: it was not duplicated" in base.sections["baseline"]
