"""The Plans API's plan endpoints: list (paging, orders, filters), detail, series (JSON, CSV,
Parquet), KPIs, diff, the lifecycle and creating a version; values asserted against the store."""
from __future__ import annotations

import io
import json
import math

import dagster as dg
import pandas as pd
import pytest

from plan_pipeline.orchestration.plan.partitions import PLAN_VERSION_PARTITIONS_NAME, VERSION_STATUS_KEY
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline.planning.vocabulary import SCORECARD_KPI_NAMES, SCORECARD_LEVEL
from plan_pipeline.store.plan_catalog import PLAN_ORDERS
from plan_pipeline.store.rules import VERSION_STATUSES
from plan_pipeline_tests.api.api_helpers import BLANK_VERSION, INPUT_SET, PLANNED_VERSION

#: Every test here runs on both store backends (``--store-backend=postgres``).
pytestmark = pytest.mark.both_backends

READ_PATHS = [
    "/plans",
    f"/plans/{PLANNED_VERSION}",
    f"/plans/{PLANNED_VERSION}/series?level=det&limit=5",
    f"/plans/{PLANNED_VERSION}/kpis?limit=5",
    f"/plans/{PLANNED_VERSION}/diff/{BLANK_VERSION}",
]


def _extra_versions(api, n: int) -> list[str]:
    ids = [f"extra-{i:02d}" for i in range(n)]
    for vid in ids:
        api.store.create_version(vid, INPUT_SET, PlanningParameters(week_days=5))
    return ids


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is None and b is None
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    return a == b


# ---------------------------------------------------------------------------- auth
@pytest.mark.parametrize("path", READ_PATHS)
def test_reads_need_a_key_and_every_role_may_read(api, path):
    assert api.client.get(path).status_code == 401
    assert api.client.get(path, headers={"X-API-Key": "ppk_wrong"}).status_code == 401
    for role in ("viewer", "planner", "approver", "admin"):
        assert api.get(path, role=role).status_code == 200, (role, path)


# ---------------------------------------------------------------------------- list
def test_list_summarises_each_version_from_the_store(api):
    answer = api.get("/plans")
    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == 2 and body["limit"] == 50 and body["offset"] == 0 and body["order"] == "created_desc"
    plans = {p["version_id"]: p for p in body["plans"]}
    assert [p["version_id"] for p in body["plans"]] == [BLANK_VERSION, PLANNED_VERSION]  # newest first
    base = plans[PLANNED_VERSION]
    store = api.store
    record = store.get_version(PLANNED_VERSION)
    assert base["status"] == "draft" and base["input_set"] == INPUT_SET and base["read_only"] is False
    assert base["parameters"] == record.params.to_dict()
    assert base["rows"] == store.series_levels(PLANNED_VERSION) and base["rows"]["det"] > 0
    assert set(store.publication(PLANNED_VERSION)["kpi_levels"]) <= set(base["kpi_rows"])
    assert base["kpi_rows"]["scorecard"] > 0
    assert {lv: len(store.read_kpis(PLANNED_VERSION, lv)) for lv in base["kpi_rows"]} == base["kpi_rows"]
    kpis = store.read_kpis(PLANNED_VERSION, SCORECARD_LEVEL)
    totals = kpis[kpis["bucket_type"] == "total"].set_index("metric")
    assert list(base["kpis"]) == list(SCORECARD_KPI_NAMES)  # all seven, in the scorecard's order
    for name, kpi in base["kpis"].items():
        assert kpi["value"] == pytest.approx(float(totals.loc[name, "value"]))
        assert kpi["unit"] == totals.loc[name, "unit"]
    jobs = store.list_jobs(PLANNED_VERSION)
    assert base["latest_run"]["run_id"] == jobs.iloc[0]["job_id"]
    assert base["latest_run"]["status"] == "success" and base["latest_run"]["job_name"] == "plan_job"
    blank = plans[BLANK_VERSION]
    assert blank["rows"] == {} and blank["kpis"] == {} and blank["latest_run"] is None


@pytest.mark.parametrize("order", list(PLAN_ORDERS))
def test_paging_is_stable_in_every_order(api, order):
    _extra_versions(api, 5)
    api.store.transition_status("extra-01", "submitted")
    whole = api.get("/plans", params={"order": order, "limit": 100}).json()
    assert whole["total"] == 7 and len(whole["plans"]) == 7
    ids = [p["version_id"] for p in whole["plans"]]
    pages = []
    for offset in range(0, 9, 3):
        page = api.get("/plans", params={"order": order, "limit": 3, "offset": offset}).json()
        assert page["total"] == 7 and page["limit"] == 3 and page["offset"] == offset
        pages += [p["version_id"] for p in page["plans"]]
    assert pages == ids and len(set(pages)) == 7  # two+ pages = the whole list, no overlap
    again = [p["version_id"] for p in api.get("/plans", params={"order": order, "limit": 100}).json()["plans"]]
    assert again == ids
    records = {r.version_id: r for r in api.store.list_versions()}
    if order == "version_id":
        assert ids == sorted(ids)
    if order == "created_asc":
        assert ids == sorted(ids, key=lambda v: (records[v].created_at, v))
    if order == "status":
        assert [records[v].status for v in ids] == sorted(records[v].status for v in ids)


def test_list_filters_by_status_and_input_set(api):
    _extra_versions(api, 2)
    api.store.transition_status("extra-00", "submitted")
    submitted = api.get("/plans", params={"status": "submitted"}).json()
    assert submitted["total"] == 1 and [p["version_id"] for p in submitted["plans"]] == ["extra-00"]
    drafts = api.get("/plans", params={"status": "draft"}).json()
    assert drafts["total"] == 3 and all(p["status"] == "draft" for p in drafts["plans"])
    assert api.get("/plans", params={"input_set": INPUT_SET}).json()["total"] == 4
    assert api.get("/plans", params={"input_set": "other"}).json() == {
        "total": 0, "limit": 50, "offset": 0, "order": "created_desc", "plans": []}


@pytest.mark.parametrize("params,needle", [
    ({"status": "done"}, "unknown status 'done'; choose one of: " + ", ".join(VERSION_STATUSES)),
    ({"order": "random"}, "unknown order 'random'; choose one of: " + ", ".join(PLAN_ORDERS)),
    ({"limit": 0}, "limit must be from 1 to 10000 (got 0)"),
    ({"limit": 10001}, "limit must be from 1 to 10000 (got 10001)"),
    ({"offset": -1}, "offset must be 0 or more (got -1)"),
])
def test_bad_list_parameters_are_400_with_the_rule(api, params, needle):
    answer = api.get("/plans", params=params)
    assert answer.status_code == 400
    assert answer.json()["error"] == {"code": "bad_request", "message": needle}


# ---------------------------------------------------------------------------- detail
def test_detail_has_levels_recent_runs_and_links(api):
    body = api.get(f"/plans/{PLANNED_VERSION}").json()
    store = api.store
    publication = store.publication(PLANNED_VERSION)
    series = {lv["name"]: lv for lv in body["levels"] if lv["table"] == "plan_series"}
    assert {n: lv["rows"] for n, lv in series.items()} == store.series_levels(PLANNED_VERSION)
    assert {lv["run_id"] for lv in body["levels"] if lv["name"] in publication["levels"]} == set(publication["runs"])
    assert all(lv["published_at"] for lv in body["levels"])
    jobs = store.list_jobs(PLANNED_VERSION)
    assert [r["job_id"] for r in body["recent_runs"]] == list(jobs["job_id"][:10])
    assert body["links"]["series"] == f"/plans/{PLANNED_VERSION}/series?level=det"
    assert body["kpis"]["fill_rate"]["unit"] == "ratio"


def test_unknown_version_is_404_everywhere(api):
    for path in ("/plans/nope", "/plans/nope/series?level=det", "/plans/nope/kpis", f"/plans/nope/diff/{PLANNED_VERSION}"):
        answer = api.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"] == {"code": "not_found", "message": "unknown plan version 'nope'"}


# ---------------------------------------------------------------------------- series
def _store_rows(api, level: str, family: str | None = None) -> pd.DataFrame:
    frame = api.store.read_series(PLANNED_VERSION, level)
    if family is not None:
        frame = frame[frame["family"] == family]
    return frame.reset_index(drop=True)


def _assert_rows_equal(rows: list[dict], frame: pd.DataFrame) -> None:
    assert len(rows) == len(frame)
    for column in frame.columns:
        got = [r[column] for r in rows]
        want = [None if (isinstance(v, float) and math.isnan(v)) else v for v in frame[column].tolist()]
        assert all(_same(a, b) for a, b in zip(got, want)), column


def test_series_family_slice_equals_the_store(api):
    det = _store_rows(api, "det")
    family = det["family"].iloc[-1]
    answer = api.get(f"/plans/{PLANNED_VERSION}/series", params={"level": "det", "family": family, "limit": 5000})
    assert answer.status_code == 200
    body = answer.json()
    want = _store_rows(api, "det", family)
    assert body["version_id"] == PLANNED_VERSION and body["level"] == "det"
    assert body["total"] == len(want) > 0 and body["limit"] == 5000 and body["offset"] == 0
    _assert_rows_equal(body["rows"], want)
    assert {"family", "sku", "week", "demand", "supply", "backlog"} <= set(body["rows"][0])
    assert body["rows"][0]["week"].startswith("20") and "-W" in body["rows"][0]["week"]


def test_series_pages_filters_and_key_columns(api):
    det = _store_rows(api, "det")
    page = api.get(f"/plans/{PLANNED_VERSION}/series", params={"level": "det", "limit": 10, "offset": 20}).json()
    assert page["total"] == len(det)
    _assert_rows_equal(page["rows"], det.iloc[20:30].reset_index(drop=True))
    sku = det["sku"].iloc[0]
    weeks = sorted(det["week"].unique())
    lo, hi = weeks[2], weeks[5]
    sliced = api.get(f"/plans/{PLANNED_VERSION}/series",
                     params={"level": "det", "sku": sku, "week_from": lo, "week_to": hi}).json()
    want = det[(det["sku"] == sku) & (det["week"] >= lo) & (det["week"] <= hi)].reset_index(drop=True)
    assert sliced["total"] == len(want) > 0
    _assert_rows_equal(sliced["rows"], want)
    # a level whose frame names its keys otherwise still answers family / sku / week
    mrp = api.get(f"/plans/{PLANNED_VERSION}/series", params={"level": "mrp_final", "limit": 3}).json()
    frame = _store_rows(api, "mrp_final")
    assert [r["sku"] for r in mrp["rows"]] == list(frame["item"][:3])
    assert [r["week"] for r in mrp["rows"]] == list(frame["week"][:3])


def test_series_bad_level_lists_the_published_levels(api):
    answer = api.get(f"/plans/{PLANNED_VERSION}/series", params={"level": "detail"})
    assert answer.status_code == 400
    levels = ", ".join(sorted(api.store.series_levels(PLANNED_VERSION)))
    assert answer.json()["error"]["message"] == (
        f"plan version '{PLANNED_VERSION}' has no published level 'detail'; its published levels: {levels}")
    never = api.get(f"/plans/{BLANK_VERSION}/series", params={"level": "det"})
    assert never.status_code == 400 and "none (the version has not been planned)" in never.json()["error"]["message"]
    missing = api.get(f"/plans/{PLANNED_VERSION}/series")
    assert missing.status_code == 422 and "level" in missing.json()["error"]["message"]
    bad_format = api.get(f"/plans/{PLANNED_VERSION}/series", params={"level": "det", "format": "xml"})
    assert bad_format.status_code == 422 and "format" in bad_format.json()["error"]["message"]


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_series_csv_and_parquet_equal_the_json_rows(api, file_format):
    family = _store_rows(api, "det")["family"].iloc[0]
    params = {"level": "det", "family": family}
    rows = api.get(f"/plans/{PLANNED_VERSION}/series", params={**params, "limit": 10000}).json()["rows"]
    answer = api.get(f"/plans/{PLANNED_VERSION}/series", params={**params, "format": file_format})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == f'attachment; filename="{PLANNED_VERSION}-det.{file_format}"'
    if file_format == "csv":
        assert answer.headers["content-type"].startswith("text/csv")
        frame = pd.read_csv(io.StringIO(answer.text), dtype={"family": str, "sku": str, "week": str, "period": str})
    else:
        frame = pd.read_parquet(io.BytesIO(answer.content))
    assert list(frame.columns) == list(rows[0])
    _assert_rows_equal(rows, frame)
    limited = api.get(f"/plans/{PLANNED_VERSION}/series", params={**params, "format": file_format, "limit": 2,
                                                                  "offset": 1})
    small = (pd.read_csv(io.StringIO(limited.text)) if file_format == "csv"
             else pd.read_parquet(io.BytesIO(limited.content)))
    assert list(small["sku"].astype(str)) == [r["sku"] for r in rows[1:3]]


# ---------------------------------------------------------------------------- KPIs and diff
def test_kpis_equal_plan_kpis_and_filter(api):
    answer = api.get(f"/plans/{PLANNED_VERSION}/kpis",
                     params={"level": SCORECARD_LEVEL, "metric": "fill_rate", "limit": 10000}).json()
    stored = api.store.read_kpis(PLANNED_VERSION, SCORECARD_LEVEL)
    want = stored[stored["metric"] == "fill_rate"].reset_index(drop=True)
    assert answer["total"] == len(want) > 1
    _assert_rows_equal(answer["rows"], want[["level", "category", "metric", "bucket_type", "bucket_key", "value",
                                             "unit"]])
    every = api.get(f"/plans/{PLANNED_VERSION}/kpis", params={"limit": 3}).json()
    assert every["total"] == len(api.store.read_kpis(PLANNED_VERSION)) and len(every["rows"]) == 3
    totals = api.get(f"/plans/{PLANNED_VERSION}/kpis", params={"level": SCORECARD_LEVEL,
                                                               "bucket_type": "total"}).json()
    assert [r["metric"] for r in totals["rows"]] == list(SCORECARD_KPI_NAMES)
    bad = api.get(f"/plans/{PLANNED_VERSION}/kpis", params={"level": "nope"})
    assert bad.status_code == 400 and "its KPI levels: " in bad.json()["error"]["message"]


def test_diff_is_the_stores_comparison(api):
    api.store.create_version("other", INPUT_SET, PlanningParameters())
    answer = api.get(f"/plans/{PLANNED_VERSION}/diff/{BLANK_VERSION}",
                     params={"by": "family", "metrics": "demand,supply"}).json()
    frame = api.store.compare_versions(PLANNED_VERSION, BLANK_VERSION, "family", ["demand", "supply"])
    assert answer["baseline"] == PLANNED_VERSION and answer["version"] == BLANK_VERSION
    assert answer["metrics"] == ["demand", "supply"] and answer["changes"] == len(frame) > 0
    assert [(r["bucket"], r["metric"]) for r in answer["rows"]] == list(zip(frame["bucket"], frame["metric"]))
    assert [r["delta"] for r in answer["rows"]] == pytest.approx(list(frame["delta"]))
    bad_by = api.get(f"/plans/{PLANNED_VERSION}/diff/{BLANK_VERSION}", params={"by": "year"})
    assert bad_by.status_code == 400 and bad_by.json()["error"]["message"].startswith(
        "unknown comparison bucket 'year'; choose one of: ")
    bad_metric = api.get(f"/plans/{PLANNED_VERSION}/diff/{BLANK_VERSION}", params={"metrics": "joy"})
    assert bad_metric.status_code == 400 and "unknown comparison metric(s) 'joy'" in bad_metric.json()["error"]["message"]


# ---------------------------------------------------------------------------- lifecycle
@pytest.mark.parametrize("action,allowed", [("submit", ("planner", "admin")), ("approve", ("approver", "admin")),
                                            ("reject", ("approver", "admin")), ("supersede", ("approver", "admin"))])
def test_lifecycle_roles_403_names_the_roles(api, action, allowed):
    for role in ("viewer", "planner", "approver"):
        if role in allowed:
            continue
        answer = api.post(f"/plans/{PLANNED_VERSION}/{action}", role=role)
        assert answer.status_code == 403
        assert answer.json()["error"]["message"] == (
            f"the key '{role}-key' has role {role}; {action} needs one of: {', '.join(allowed)}")
    assert api.client.post(f"/plans/{PLANNED_VERSION}/{action}").status_code == 401
    assert api.store.get_version(PLANNED_VERSION).status == "draft"  # nothing changed


def test_lifecycle_submit_reject_approve_supersede(api):
    submitted = api.post(f"/plans/{PLANNED_VERSION}/submit", role="planner", json={"note": "ready"})
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "submitted" and submitted.json()["previous_status"] == "draft"
    rejected = api.post(f"/plans/{PLANNED_VERSION}/reject", role="approver", json={"note": "fix week 3"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "draft"
    assert api.post(f"/plans/{PLANNED_VERSION}/submit", role="planner").status_code == 200  # no body
    approved = api.post(f"/plans/{PLANNED_VERSION}/approve", role="approver")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert api.store.get_version(PLANNED_VERSION).status == "approved"
    again = api.post(f"/plans/{PLANNED_VERSION}/approve", role="approver")
    assert again.status_code == 409
    assert again.json()["error"] == {"code": "conflict", "message": (
        f"plan version '{PLANNED_VERSION}' is approved: it cannot become approved (allowed: superseded)")}
    superseded = api.post(f"/plans/{PLANNED_VERSION}/supersede", role="admin")
    assert superseded.status_code == 200 and superseded.json()["status"] == "superseded"
    events = api.store.read_override_events(PLANNED_VERSION)
    lifecycle = events[events["key_hash"] == "version"]
    assert list(lifecycle["event_type"]) == ["submit", "reject", "submit", "approve", "supersede"]
    assert list(lifecycle["actor"]) == ["planner-key", "approver-key", "planner-key", "approver-key", "admin-key"]
    assert list(lifecycle["notes"][:2]) == ["ready", "fix week 3"]
    # each change is shown in the Dagster UI as the CLI shows it (an observation of planning_inputs)
    instance = dg.DagsterInstance.from_config(str(api.home / "dagster_home"))
    seen = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("planning_inputs"),
                                                             asset_partitions=[PLANNED_VERSION]), limit=1).records
    meta = seen[0].asset_observation.metadata
    assert meta[VERSION_STATUS_KEY].value == "superseded" and meta["previous_status"].value == "approved"
    assert api.post("/plans/nope/submit").status_code == 404
    assert api.post(f"/plans/{BLANK_VERSION}/approve", role="approver").status_code == 409  # draft: submit first


# ---------------------------------------------------------------------------- create
def test_create_plan_stores_the_version_and_registers_its_partition(api):
    assert api.post("/plans", role="viewer", json={"input_set": INPUT_SET}).status_code == 403
    assert api.post("/plans", role="approver", json={"input_set": INPUT_SET}).status_code == 403
    answer = api.post("/plans", role="planner", json={"input_set": INPUT_SET, "version_id": "api-1",
                                                      "parameters": {"week_days": 5, "round": "int"}})
    # "round" is not a field name (the CLI flag is --round; the field is round_mode)
    assert answer.status_code == 400 and "round" in answer.json()["error"]["message"]
    answer = api.post("/plans", role="planner", json={"input_set": INPUT_SET, "version_id": "api-1",
                                                      "parameters": {"week_days": 5, "round_mode": "dec1"},
                                                      "note": "from a test"})
    assert answer.status_code == 201
    body = answer.json()
    assert body["version_id"] == "api-1" and body["status"] == "draft" and body["source"] == "api"
    record = api.store.get_version("api-1")
    assert record.params.week_days == 5 and record.params.round_mode == "dec1" and record.note == "from a test"
    assert body["parameters"] == record.params.to_dict()
    instance = dg.DagsterInstance.from_config(str(api.home / "dagster_home"))
    assert instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, "api-1")
    generated = api.post("/plans", role="admin", json={"input_set": INPUT_SET}).json()
    assert generated["version_id"].startswith("v") and api.store.get_version(generated["version_id"])


@pytest.mark.parametrize("body,status,needle", [
    ({"input_set": INPUT_SET, "parameters": {"week_days": 9}}, 400,
     "parameters.week_days: 9 must be a whole number from 1 to 7"),
    ({"input_set": INPUT_SET, "parameters": {"tol_rel": "abc"}}, 400, "parameters.tol_rel"),
    ({"input_set": "missing"}, 400, "unknown input set 'missing'; import it first"),
    ({"input_set": INPUT_SET, "version_id": PLANNED_VERSION}, 409, f"plan version '{PLANNED_VERSION}' already exists"),
    ({"input_set": INPUT_SET, "version_id": "../x"}, 400, "invalid version id '../x'"),
    ({"input_set": INPUT_SET, "version_id": ""}, 400, "invalid version id ''"),  # refused, not generated
    ({"version_id": "x"}, 422, "input_set"),
])
def test_create_plan_refusals_name_the_field(api, body, status, needle):
    answer = api.post("/plans", json=body)
    assert answer.status_code == status
    assert needle in answer.json()["error"]["message"]
    assert len(api.store.list_versions()) == 2


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_every_published_level_answers_strict_json_equal_to_the_store(api):
    levels = api.store.series_levels(PLANNED_VERSION)
    assert {"aggregate", "det", "mrp_final"} <= set(levels)
    for level, count in levels.items():
        answer = api.get(f"/plans/{PLANNED_VERSION}/series", params={"level": level, "limit": 10_000})
        assert answer.status_code == 200, (level, answer.text[:200])
        body = _strict_json(answer.text)
        assert body["total"] == count == len(body["rows"]), level
        _assert_rows_equal(body["rows"], _store_rows(api, level))


def test_non_finite_numbers_are_null_in_the_json_rows():
    import duckdb

    from plan_pipeline.store.plan_catalog import _json_number

    expr = "CAST(x AS DOUBLE)"
    text = duckdb.sql(f"SELECT to_json(list(struct_pack(v := {_json_number(expr)}) ORDER BY i))::VARCHAR FROM "
                      "(SELECT * FROM (VALUES (1, 'nan'), (2, 'inf'), (3, '-inf'), (4, '2.5'), (5, NULL)) t(i, x))"
                      ).fetchall()[0][0]
    assert _strict_json(text) == [{"v": None}, {"v": None}, {"v": None}, {"v": 2.5}, {"v": None}]
