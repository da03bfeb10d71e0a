"""A plan run end to end on the PostgreSQL plan store (issue 15): the bundled sample planned by
``plan_job`` on PostgreSQL and on DuckDB gives the same rows at every level, and the run ledger
(``plan_jobs``) of each store holds its runs.

Needs PostgreSQL's server binaries (the ``postgres_url`` fixture starts a server on loopback; each
test gets a fresh database): without them the test skips outside CI and fails under CI.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.instance import prepare_dagster_home
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore
from plan_pipeline.store.level_slices import read_series_slice
from plan_pipeline.store.plan_rows import COMPARISON_LEVEL

VERSIONS = ("v1", "v2")  # v2 duplicates v1: its baseline comparison compares two published plans
CHANGED = PlanningParameters(round_mode="none", preset="blend")  # v2's plan differs from v1's


def frame_checksum(frame: pd.DataFrame) -> str:
    """An order-independent digest of a frame's values (rows sorted by every column). Floats are
    rounded to 9 decimals (the baseline comparison's roll-ups are SQL sums, which the two databases
    add up in different orders: they agree to ~1e-12) and count -0.0 as 0.0 (PostgreSQL keeps a
    level's extra columns in JSONB, whose numbers have no negative zero: docs/operations.md)."""
    data = frame.copy()
    for column in data.columns:
        if data[column].dtype.kind == "f":
            data[column] = data[column].round(9) + 0.0  # -0.0 + 0.0 == 0.0
    data = data.astype(str).sort_values(list(data.columns), kind="stable").reset_index(drop=True)
    return hashlib.sha256(data.to_csv(index=False).encode()).hexdigest()


def by_key(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


def planned_levels(store: PlanStore, version_id: str) -> dict[str, tuple[int, str]]:
    """Every published level of the version: (row count, checksum) of its series or KPI frame."""
    levels: dict[str, tuple[int, str]] = {}
    for level in store.series_levels(version_id):
        frame = store.read_series(version_id, level)
        levels[level] = (len(frame), frame_checksum(frame))
    kpis = store.read_kpis(version_id).drop(columns=["source_run_id"])
    for level, frame in kpis.groupby("level", sort=True):
        levels[f"kpis:{level}"] = (len(frame), frame_checksum(frame.reset_index(drop=True)))
    return levels


def plan_sample(store: PlanStore, sample_dir, instance) -> list[str]:
    """Import the sample, plan v1, duplicate it as v2 and plan v2; the run ids."""
    import_input_dir(store, sample_dir, "sample")
    store.create_version(VERSIONS[0], "sample", PlanningParameters())
    runs = []
    for index, version_id in enumerate(VERSIONS):
        if index:
            store.duplicate_version(VERSIONS[0], version_id, params=CHANGED)
        outcome = materialize_version(instance, store, version_id)
        assert outcome.success, outcome.errors
        runs.append(outcome.run_id)
    return runs


def test_the_sample_plans_to_the_same_rows_on_postgres_as_on_duckdb(plan_env, sample_dir, postgres_store_url,
                                                                      monkeypatch, tmp_path):
    duck = plan_env.store
    duck_runs = plan_sample(duck, sample_dir, plan_env.instance())

    # the same on PostgreSQL: the code location's steps resolve the store from $PLAN_STORE_URL
    monkeypatch.setenv("PLAN_STORE_URL", postgres_store_url)
    monkeypatch.setenv("PLAN_PIPELINE_HOME", str(tmp_path / "pg_home"))  # where its reports go (no store file)
    monkeypatch.setenv("DAGSTER_HOME", str(prepare_dagster_home(tmp_path / "pg_dagster_home")))
    pg = PlanStore()
    assert pg.is_postgres
    from plan_pipeline.orchestration.instance import get_instance

    with get_instance() as instance:
        pg_runs = plan_sample(pg, sample_dir, instance)

    for version_id in VERSIONS:
        want, got = planned_levels(duck, version_id), planned_levels(pg, version_id)
        assert len(want) >= 8 and all(rows for rows, _ in want.values()), want
        assert sorted(got) == sorted(want)
        for level in want:
            assert got[level] == want[level], f"{version_id} level {level}: PostgreSQL differs from DuckDB"
    # v2's stored comparison with its baseline v1 (written by the baseline_comparison asset) has rows
    assert planned_levels(duck, VERSIONS[1])[f"kpis:{COMPARISON_LEVEL}"][0] > 0
    assert f"kpis:{COMPARISON_LEVEL}" not in planned_levels(duck, VERSIONS[0])  # v1: no baseline
    # the level slices the plan review report reads: the whole level restricted, on both backends
    for level, item in (("det", "sku"), ("mrp_final", "item")):
        whole = pg.read_series(VERSIONS[1], level)
        columns = [item, "week", whole.columns[-1]]
        picked = sorted(whole[item].unique())[1:3]
        for store in (duck, pg):
            pd.testing.assert_frame_equal(read_series_slice(store, VERSIONS[1], level, columns),
                                          whole[columns].reset_index(drop=True), check_exact=False, rtol=1e-12)
            sliced = read_series_slice(store, VERSIONS[1], level, columns, items=picked)
            assert len(sliced) > 0 and set(sliced[item]) == set(picked)
            pd.testing.assert_frame_equal(sliced, whole.loc[whole[item].isin(picked), columns].reset_index(drop=True))
    # the comparison queries themselves (biggest |delta| first: two deltas equal to ~1e-12 may swap places)
    for by in ("total", "family", "sku", "month", "week"):
        want_cmp, got_cmp = (by_key(s.compare_versions(*VERSIONS, by=by), ["metric", "bucket"]) for s in (duck, pg))
        assert len(want_cmp) > 0
        pd.testing.assert_frame_equal(got_cmp, want_cmp, check_exact=False, rtol=1e-9, atol=1e-9)
    want_cmp, got_cmp = (by_key(s.read_baseline_comparison(VERSIONS[1]), ["by", "metric", "bucket"]) for s in (duck, pg))
    pd.testing.assert_frame_equal(got_cmp, want_cmp, check_exact=False, rtol=1e-9, atol=1e-9)
    # the plan review reports: beside the DuckDB file, in the project home for PostgreSQL (never in the cwd)
    for home in (duck.path.parent, tmp_path / "pg_home"):
        assert [(home / "reports" / v / "report.html").is_file() for v in VERSIONS] == [True, True]
    assert not list(Path.cwd().glob("postgres*"))
    for store, runs in ((duck, duck_runs), (pg, pg_runs)):
        ledger = store.list_jobs().set_index("job_id")  # a plan run's job id is its Dagster run id
        for run_id, version_id in zip(runs, VERSIONS):
            assert (ledger.loc[run_id, "status"], ledger.loc[run_id, "version_id"]) == ("success", version_id)


def test_the_command_line_plans_and_compares_on_postgres(plan_env, sample_dir, postgres_store_url, monkeypatch,
                                                          tmp_path, capsys):
    """``PLAN_STORE_URL=postgresql://...``: the commands of a plan cycle work on that database (the
    DuckDB file is never created)."""
    from plan_pipeline.cli.main import main

    monkeypatch.setenv("PLAN_STORE_URL", postgres_store_url)
    assert main(["inputs", "import", str(sample_dir), "--label", "s"]) == 0
    assert main(["version", "create", "--input-set", "s", "--version-id", "a"]) == 0
    assert main(["materialize", "a"]) == 0
    assert main(["version", "create", "--input-set", "s", "--version-id", "b", "--round", "none"]) == 0
    assert main(["materialize", "b"]) == 0
    capsys.readouterr()
    assert main(["diff", "a", "b", "--by", "total"]) == 0
    diff = capsys.readouterr().out
    assert "demand" in diff or "supply" in diff
    assert main(["runs", "list"]) == 0
    assert capsys.readouterr().out.count("success") == 2
    assert not plan_env.db_path.exists()
    pg = PlanStore.from_url(postgres_store_url)
    assert sorted(pg.series_levels("b")) == sorted(pg.series_levels("a")) and pg.read_baseline_comparison("b") is not None
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "backup")]) == 1  # restore works on PostgreSQL (test_operations_on_postgres)
    err = capsys.readouterr().err
    assert "backup folder" in err and "does not exist" in err


def test_the_plans_api_launches_a_run_on_postgres(plan_env, sample_dir, postgres_store_url, monkeypatch):
    """The Plans API over ``store_url``: keys, ``POST /plans/{v}/runs`` (the run plans on PostgreSQL),
    ``GET /runs/{id}`` from PostgreSQL's ``plan_jobs``."""
    from fastapi.testclient import TestClient

    from plan_pipeline.api.app import create_app
    from plan_pipeline.api.runs import wait_for_background_run
    from plan_pipeline.api.settings import ApiSettings

    monkeypatch.setenv("PLAN_STORE_URL", postgres_store_url)  # what the run's steps resolve
    pg = PlanStore.from_url(postgres_store_url)
    import_input_dir(pg, sample_dir, "sample")
    pg.create_version("api-run", "sample", PlanningParameters())
    key = pg.create_api_key("planner-key", "planner")
    app = create_app(ApiSettings(store_url=postgres_store_url, dagster_home=plan_env.dagster_home))
    client = TestClient(app, raise_server_exceptions=False)
    headers = {"X-API-Key": key}
    assert client.get("/health").json() == {"status": "ok", "schema_version": pg.schema_version()}
    launched = client.post("/plans/api-run/runs", headers=headers)
    assert launched.status_code == 202, launched.text
    run_id = launched.json()["run_id"]
    assert wait_for_background_run(run_id, timeout=300)
    row = client.get(f"/runs/{run_id}", headers=headers).json()
    assert (row["status"], row["version_id"], row["trigger"]) == ("success", "api-run", "api")
    assert pg.series_levels("api-run")["det"] > 0 and not plan_env.db_path.exists()
