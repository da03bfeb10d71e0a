"""GET /metrics: Prometheus text, no key; request counts by route template and status, the latency
histogram, plan writes from every write path (the planned home's Dagster run, a CLI override, an API
write) and the store gauges, asserted against the store's contents; plan_store_up 0 (not a 500)
while another process holds the store (DuckDB only: a PostgreSQL database has no file lock; every
other test runs on both store backends)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from plan_pipeline.api.metrics import LATENCY_BUCKETS, UNMATCHED_ROUTE
from plan_pipeline.cli.main import main
from plan_pipeline.planning.overrides import detail_key
from plan_pipeline.store.maintenance import store_size_bytes
from plan_pipeline_tests.api.api_helpers import BLANK_VERSION, PLANNED_VERSION, api_harness

both_backends = pytest.mark.both_backends

Samples = dict[tuple[str, frozenset], float]


def scrape(client) -> Samples:
    answer = client.get("/metrics")  # no key
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@both_backends
def test_requests_are_counted_by_route_template_and_status(api):
    for _ in range(2):
        assert api.get("/keys", role="admin").status_code == 200
    assert api.get("/keys", role="viewer").status_code == 403
    assert api.client.get("/keys").status_code == 401
    assert api.delete("/keys/nobody-key").status_code == 404
    assert api.delete("/keys/viewer-key").status_code == 200
    assert api.client.get("/no/such/path-123").status_code == 404
    samples = scrape(api.client)
    count = {(dict(k)["method"], dict(k)["route"], dict(k)["status"]): v
             for k, v in series(samples, "plan_api_requests_total").items()}
    assert count == {
        ("GET", "/keys", "200"): 2, ("GET", "/keys", "403"): 1, ("GET", "/keys", "401"): 1,
        ("DELETE", "/keys/{name}", "404"): 1, ("DELETE", "/keys/{name}", "200"): 1,
        ("GET", UNMATCHED_ROUTE, "404"): 1,
    }  # never a raw path ("/keys/viewer-key", "/no/such/path-123"); this scrape is counted after it answered
    again = scrape(api.client)
    assert value(again, "plan_api_requests_total", method="GET", route="/metrics", status="200") == 1
    assert value(again, "plan_api_requests_total", method="GET", route="/keys", status="200") == 2


@both_backends
def test_the_latency_histogram_has_the_buckets_5ms_to_10s_per_route(api):
    for _ in range(3):
        assert api.get("/keys", role="admin").status_code == 200
    samples = scrape(api.client)
    buckets = {dict(k)["le"]: v for k, v in series(samples, "plan_api_request_duration_seconds_bucket").items()
               if dict(k)["route"] == "/keys"}
    assert list(buckets) == [*(str(float(b)) for b in LATENCY_BUCKETS), "+Inf"]
    assert LATENCY_BUCKETS[0] == 0.005 and LATENCY_BUCKETS[-1] == 10.0
    counts = list(buckets.values())
    assert counts == sorted(counts) and counts[-1] == 3  # cumulative; every request in +Inf
    assert value(samples, "plan_api_request_duration_seconds_count", method="GET", route="/keys") == 3
    assert 0 < value(samples, "plan_api_request_duration_seconds_sum", method="GET", route="/keys") < 30


@both_backends
def test_plan_writes_come_from_every_write_path(api):
    store = api.store
    log = store.read_write_log(PLANNED_VERSION)
    run = store.publication(PLANNED_VERSION)["runs"]
    assert len(run) == 1
    mine = log[log["run_id"] == run[0]]
    published = {**store.series_levels(PLANNED_VERSION), **store.publication(PLANNED_VERSION)["kpi_levels"]}
    # the planned home's Dagster run: its staged levels and its publication, as the dagster source
    assert set(mine["source"]) == {"dagster"}
    staged = mine[mine["operation"] == "stage"]
    assert {lvl: n for lvl, n in zip(staged["level"], staged["rows"]) if n} == published
    publish = mine[mine["operation"] == "publish"]
    assert dict(zip(publish["level"], publish["rows"])) == published

    before = scrape(api.client)
    for level, rows in store.series_levels(PLANNED_VERSION).items():
        assert value(before, "plan_writes_total", source="dagster", operation="publish", level=level) == 1
        assert value(before, "plan_rows_written_total", source="dagster", operation="publish", level=level) == rows
    row = store.read_series(PLANNED_VERSION, "det").iloc[0]
    assert main(["override", "set", PLANNED_VERSION, "--week", str(row["week"]), "--sku", str(row["sku"]),
                 "--period", str(row["period"]), "--demand", "123"]) == 0  # the CLI
    api.new_store(write_source="api").record_override(  # the API's store (app.state.new_store)
        PLANNED_VERSION, "det", detail_key(str(row["week"]), str(row["sku"]), str(row["period"])), {},
        lock=True, actor="viewer-key")
    after = scrape(api.client)
    for source in ("cli", "api"):
        labels = {"source": source, "operation": "override", "level": "det"}
        assert value(after, "plan_writes_total", **labels) == value(before, "plan_writes_total", **labels) + 1
        assert value(after, "plan_rows_written_total", **labels) == value(before, "plan_rows_written_total", **labels) + 1
    # every counter is the write log's total
    log = store.read_write_log()
    expected = {frozenset({"source": s, "operation": o, "level": lvl}.items()): float(len(g))
                for (s, o, lvl), g in log.groupby(["source", "operation", "level"])}
    assert series(after, "plan_writes_total") == expected
    assert value(after, "plan_last_write_timestamp_seconds", source="api") >= value(
        after, "plan_last_write_timestamp_seconds", source="dagster") > 0


@both_backends
def test_gauges_equal_the_store(api):
    store = api.store
    store.upsert_jobs([{"job_id": "t-1", "version_id": None, "job_name": "trim_job", "status": "failure"}])
    samples = scrape(api.client)
    assert value(samples, "plan_store_up") == 1
    rows = {dict(k)["version_id"]: (dict(k)["status"], v) for k, v in series(samples, "plan_version_rows").items()}
    assert rows == {PLANNED_VERSION: ("draft", sum(store.series_levels(PLANNED_VERSION).values())),
                    BLANK_VERSION: ("draft", 0)}
    assert rows[PLANNED_VERSION][1] > 1000
    jobs = store.list_jobs()
    expected = {(j, s): float(n) for (j, s), n in jobs.groupby(["job_name", "status"]).size().items()}
    assert {(dict(k)["job"], dict(k)["status"]): v for k, v in series(samples, "plan_runs").items()} == expected
    assert expected[("trim_job", "failure")] == 1 and sum(expected.values()) == len(jobs) >= 2
    size = value(samples, "plan_store_size_bytes")
    if store.is_postgres:  # the database's size on the server (its files may grow a page meanwhile)
        assert abs(size - store_size_bytes(store)) <= 0.1 * size and size > 0
    else:
        assert size == store_size_bytes(store) > 0


@pytest.mark.duckdb_only("the DuckDB file lock held by another process")
def test_a_store_held_by_another_process_is_plan_store_up_0_not_an_error(fresh_home):
    harness = api_harness(fresh_home(), lock_wait_seconds=0.5)
    assert harness.get("/keys", role="admin").status_code == 200
    holder = subprocess.Popen(
        [sys.executable, "-c",
         # a process of the project: it announces that it waits, and the API's kept file is handed over
         "import sys, time; from plan_pipeline.store.connection import open_connection; "
         "con = open_connection(sys.argv[1], retry_seconds=30); print('held', flush=True); time.sleep(60)",
         str(harness.db_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        samples = scrape(harness.client)
        assert value(samples, "plan_store_up") == 0
        assert series(samples, "plan_writes_total") == {} and series(samples, "plan_version_rows") == {}
        # the request metrics are still answered
        assert value(samples, "plan_api_requests_total", method="GET", route="/keys", status="200") == 1
    finally:
        holder.kill()
        holder.wait()
    samples = scrape(harness.client)
    assert value(samples, "plan_store_up") == 1
    assert value(samples, "plan_api_requests_total", method="GET", route="/metrics", status="200") == 1


@both_backends
def test_two_apps_in_one_process_count_their_own_requests(api, fresh_home):
    other = api_harness(fresh_home("other"))
    assert api.get("/keys", role="admin").status_code == 200
    assert other.get("/keys", role="viewer").status_code == 403
    mine, theirs = scrape(api.client), scrape(other.client)
    assert value(mine, "plan_api_requests_total", method="GET", route="/keys", status="200") == 1
    assert value(mine, "plan_api_requests_total", method="GET", route="/keys", status="403") == 0
    assert value(theirs, "plan_api_requests_total", method="GET", route="/keys", status="403") == 1
    assert value(theirs, "plan_api_requests_total", method="GET", route="/keys", status="200") == 0
