"""Plan runs over HTTP: ``POST /plans/{v}/runs`` launches through the Dagster instance (in a
background thread without a daemon, on the run queue with one), ``GET /runs/{id}`` reads its
``plan_jobs`` row; frozen versions and versions with a run in progress are refused (409)."""
from __future__ import annotations

import dagster as dg
import pytest

from plan_pipeline.api import runs as api_runs
from plan_pipeline.api.runs import REQUESTED_BY_TAG, wait_for_background_run
from plan_pipeline_tests.api.api_helpers import BLANK_VERSION, INPUT_SET, PLANNED_VERSION

#: Every test here runs on both store backends (``--store-backend=postgres``).
pytestmark = pytest.mark.both_backends


def _instance(api) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(api.home / "dagster_home"))


def test_create_then_run_completes_in_process_and_the_ledger_says_so(api):
    created = api.post("/plans", json={"input_set": INPUT_SET, "version_id": "api-run"})
    assert created.status_code == 201 and created.json()["rows"] == {}
    launched = api.post("/plans/api-run/runs", role="planner")
    assert launched.status_code == 202
    body = launched.json()
    run_id = body["run_id"]
    assert body["status"] == "queued" and body["url_in_dagster_ui"] == f"/runs/{run_id}"
    # a second launch while the first is in progress is refused
    again = api.post("/plans/api-run/runs", role="admin")
    assert again.status_code == 409
    assert again.json()["error"]["message"].startswith(f"plan version 'api-run' has a run in progress ({run_id})")
    assert wait_for_background_run(run_id, timeout=300)
    row = api.get(f"/runs/{run_id}").json()
    assert row["run_id"] == run_id and row["job_id"] == run_id and row["version_id"] == "api-run"
    assert row["status"] == "success" and row["job_name"] == "plan_job" and row["trigger"] == "api"
    assert row["tags"][REQUESTED_BY_TAG] == "planner-key" and row["finished_at"] and row["error"] is None
    assert row == {**row, **{k: v for k, v in api.store.get_job(run_id).items() if k in ("status", "trigger")}}
    # the run is the instance's run (the Dagster UI lists it) and the version's levels are published
    run = _instance(api).get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == "api-run"
    plan = api.get("/plans/api-run").json()
    assert plan["rows"] == api.store.series_levels(PLANNED_VERSION) and plan["rows"]["det"] > 0
    assert plan["latest_run"]["run_id"] == run_id and plan["latest_run"]["status"] == "success"
    assert list(plan["kpis"]) and plan["kpis"]["fill_rate"]["value"] == pytest.approx(
        api.get(f"/plans/{PLANNED_VERSION}").json()["kpis"]["fill_rate"]["value"])


def test_run_refusals(api):
    assert api.client.post(f"/plans/{BLANK_VERSION}/runs").status_code == 401
    for role in ("viewer", "approver"):
        forbidden = api.post(f"/plans/{BLANK_VERSION}/runs", role=role)
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["message"] == (
            f"the key '{role}-key' has role {role}; run needs one of: planner, admin")
    missing = api.post("/plans/nope/runs")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "unknown plan version 'nope'"
    api.store.transition_status(PLANNED_VERSION, "submitted")
    api.store.transition_status(PLANNED_VERSION, "approved")
    frozen = api.post(f"/plans/{PLANNED_VERSION}/runs")
    assert frozen.status_code == 409
    assert frozen.json()["error"]["message"] == (
        f"plan version '{PLANNED_VERSION}' is approved: its plan is frozen and cannot be re-planned "
        "(create a new version to change it)")
    assert api.store.active_jobs(PLANNED_VERSION) == []  # nothing was launched
    unknown = api.get("/runs/no-such-run")
    assert unknown.status_code == 404 and unknown.json()["error"]["message"] == (
        "unknown run 'no-such-run' (no row in the run ledger)")
    assert api.client.get("/runs/no-such-run").status_code == 401


def test_with_a_daemon_the_run_is_queued_for_it(api, monkeypatch):
    monkeypatch.setattr(api_runs, "queue_daemon_running", lambda instance: True)
    launched = api.post(f"/plans/{BLANK_VERSION}/runs")
    assert launched.status_code == 202
    run_id = launched.json()["run_id"]
    run = _instance(api).get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.QUEUED and run.job_name == "plan_job"
    assert run.tags["plan/trigger"] == "api" and run.tags["dagster/partition"] == BLANK_VERSION
    assert api.get(f"/runs/{run_id}").json()["status"] == "queued"
    assert api.store.active_jobs(BLANK_VERSION) == [run_id]
    assert api.post(f"/plans/{BLANK_VERSION}/runs").status_code == 409  # one run per version at a time
    # approval waits for the run: the store's lifecycle rule sees the queued run ledger row
    api.store.transition_status(BLANK_VERSION, "submitted")
    refused = api.post(f"/plans/{BLANK_VERSION}/approve", role="approver")
    assert refused.status_code == 409 and "has a plan run in progress" in refused.json()["error"]["message"]


def test_requests_answered_while_an_in_process_run_reads_and_writes_the_store(api):
    """The server keeps the file read-write for its requests; the run it executes in a thread of
    the same process reads (snapshots) and writes the same file meanwhile: no 'different
    configuration' refusal, the run succeeds, every request is answered 200."""
    api.client.cookies.set("plan_api_key", api.keys["viewer"])
    launched = api.post("/plans/blank/runs", role="planner")
    assert launched.status_code == 202
    run_id = launched.json()["run_id"]
    statuses = []
    thread = api_runs._background[run_id]
    while thread.is_alive():
        for path in (f"/plans/{PLANNED_VERSION}", "/plans", f"/web/plans/{PLANNED_VERSION}"):
            statuses.append(api.client.get(path, headers=api.headers("viewer")).status_code)
    assert wait_for_background_run(run_id, timeout=300)
    assert api.get(f"/runs/{run_id}").json()["status"] == "success"
    assert len(statuses) >= 6 and set(statuses) == {200}, statuses
    assert api.get(f"/plans/{BLANK_VERSION}").json()["rows"] == api.store.series_levels(PLANNED_VERSION)
