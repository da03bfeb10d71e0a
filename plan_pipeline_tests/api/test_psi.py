"""The PSI grid over HTTP: GET/PATCH /plans/{v}/psi and GET /plans/{v}/psi/events.

The planned home's ``base`` (bundled sample, default parameters): 36 aggregate cells (3 families
x 12 months, spare capacity in 2025-01, a shortage in 2025-05) and 744 detail rows; week
2025-W05 of BK-200 is shared by 2025-01 and 2025-02.
"""
from __future__ import annotations

import pytest

from plan_pipeline_tests.api.api_helpers import BLANK_VERSION, PLANNED_VERSION

#: Every test here runs on both store backends (``--store-backend=postgres``).
pytestmark = pytest.mark.both_backends

V = PLANNED_VERSION
CELL = {"sku": "BK-100", "week": "2025-W03"}


def patch(api, edits, *, level="det", note=None, role="planner", version=V):
    body = {"level": level, "edits": edits}
    if note is not None:
        body["note"] = note
    return api.patch(f"/plans/{version}/psi", role=role, json=body)


def cell(api, level="det", **filters):
    params = {"level": level, **filters}
    cells = api.get(f"/plans/{V}/psi", params=params).json()["cells"]
    assert len(cells) == 1, cells
    return cells[0]


def events(api, **params):
    return api.get(f"/plans/{V}/psi/events", params=params).json()


def replan(version=V):
    from plan_pipeline.cli.environment import resolve_environment
    from plan_pipeline.orchestration.plan.launch import materialize_version

    env = resolve_environment(None, None)  # the harness's home (the api fixture sets the environment)
    outcome = materialize_version(env.instance(), env.store, version)
    assert outcome.success, outcome.errors


def agg_cells(api, period):
    return {c["family"]: c for c in api.get(f"/plans/{V}/psi", params={"level": "agg", "week_from": period,
                                                                       "week_to": period}).json()["cells"]}


def det_sum(api, family, period, field):
    body = api.get(f"/plans/{V}/psi", params={"level": "det", "family": family, "period": period,
                                              "limit": 5000}).json()
    assert body["total"] == len(body["cells"]) > 0
    return sum(c[field] for c in body["cells"])


# ----------------------------------------------------------------------------------------- GET
def test_get_detail_grid_pages_and_filters(api):
    body = api.get(f"/plans/{V}/psi", params={"level": "det", "limit": 2}).json()
    assert (body["version_id"], body["level"], body["total"], body["limit"], body["offset"]) == (V, "det", 744, 2, 0)
    first = body["cells"][0]
    assert {k: first[k] for k in ("family", "period", "sku", "week", "demand", "supply", "backlog")} == {
        "family": "BIKES", "period": "2025-01", "sku": "BK-100", "week": "2025-W01", "demand": 15.0, "supply": 15.0,
        "backlog": 0.0}
    assert (first["edits"], first["locked"], first["key"]) == ({}, False, "det:week=2025-W01,sku=BK-100")
    second = api.get(f"/plans/{V}/psi", params={"level": "det", "limit": 1, "offset": 1}).json()["cells"]
    assert second == body["cells"][1:]  # stable paging
    sliced = api.get(f"/plans/{V}/psi", params={"level": "det", "sku": "BK-100", "week_from": "2025-W02",
                                                "week_to": "2025-W04"}).json()
    assert [c["week"] for c in sliced["cells"]] == ["2025-W02", "2025-W03", "2025-W04"] and sliced["total"] == 3


def test_get_aggregate_grid(api):
    body = api.get(f"/plans/{V}/psi", params={"level": "agg", "family": "BIKES"}).json()
    assert body["total"] == 12 and [c["period"] for c in body["cells"]][:2] == ["2025-01", "2025-02"]
    january = agg_cells(api, "2025-01")
    assert sum(c["demand"] for c in january.values()) == 1230.0
    assert january["BIKES"]["capacity"] == 1694.0 and january["BIKES"]["key"] == "agg:period=2025-01,family=BIKES"


def test_get_refusals(api):
    assert api.client.get(f"/plans/{V}/psi").status_code == 401
    bad = api.get(f"/plans/{V}/psi", params={"level": "week"})
    assert bad.status_code == 400 and "level 'week' is not a PSI grain" in bad.json()["error"]["message"]
    assert api.get("/plans/nope/psi").status_code == 404
    assert api.get(f"/plans/{V}/psi", params={"limit": 0}).status_code == 422
    blank = api.get(f"/plans/{BLANK_VERSION}/psi").json()
    assert (blank["total"], blank["cells"]) == (0, [])


# --------------------------------------------------------------------------------------- PATCH
def test_viewer_and_approver_cannot_edit_and_no_key_is_401(api):
    edit = [{"key": CELL, "fields": {"demand": 1.0}}]
    assert patch(api, edit, role="viewer").status_code == 403
    assert patch(api, edit, role="approver").status_code == 403
    assert api.client.patch(f"/plans/{V}/psi", json={"level": "det", "edits": edit}).status_code == 401
    assert patch(api, edit, role="admin").status_code == 200
    assert events(api)["total"] == 1


def test_edit_then_lock_keeps_the_edit_and_null_removes_one_field(api):
    first = patch(api, [{"key": CELL, "fields": {"demand": 123.0, "supply": 7.0}}], note="promo")
    assert first.status_code == 200, first.text
    body = first.json()
    assert [(e["event_type"], e["field"], e["before"], e["after"]) for e in body["events"]] == [
        ("edit", "demand", None, 123.0), ("edit", "supply", None, 7.0)]
    assert all(e["actor"] == "planner-key" and e["note"] == "promo" for e in body["events"])
    (changed,) = body["cells"]
    assert changed["edits"] == {"demand": 123.0, "supply": 7.0} and changed["demand"] == 21.0  # plan until re-plan
    assert changed["edited_by"] == "planner-key" and changed["edited_at"]

    locked = patch(api, [{"key": CELL, "lock": True}]).json()
    assert [(e["event_type"], e["field"], e["before"], e["after"]) for e in locked["events"]] == [
        ("lock", "lock", False, True)]
    now = cell(api, sku="BK-100", week_from="2025-W03", week_to="2025-W03")
    assert now["edits"] == {"demand": 123.0, "supply": 7.0} and now["locked"] and now["locked_by"] == "planner-key"

    removed = patch(api, [{"key": CELL, "fields": {"supply": None, "demand": 123.0}}]).json()
    assert [(e["field"], e["before"], e["after"]) for e in removed["events"]] == [("supply", 7.0, None)]
    now = cell(api, sku="BK-100", week_from="2025-W03", week_to="2025-W03")
    assert now["edits"] == {"demand": 123.0} and now["locked"]  # an edit never clobbers the lock


def test_a_no_op_patch_writes_no_event(api):
    assert len(patch(api, [{"key": CELL, "fields": {"demand": 5.0}, "lock": True}]).json()["events"]) == 2
    again = patch(api, [{"key": CELL, "fields": {"demand": 5.0}, "lock": True}])
    assert again.status_code == 200 and again.json()["events"] == []
    nothing = patch(api, [{"key": {"sku": "BK-100", "week": "2025-W04"}, "lock": False}]).json()
    assert nothing["events"] == [] and nothing["cells"][0]["edits"] == {}
    assert events(api)["total"] == 2
    assert api.store.read_overrides(V)["key_hash"].tolist() == ["det:week=2025-W03,sku=BK-100"]


def test_reset_removes_edits_and_lock_with_one_event_per_field(api):
    patch(api, [{"key": CELL, "fields": {"demand": 5.0, "backlog": 2.0}, "lock": True}])
    reset = patch(api, [{"key": CELL, "reset": True}]).json()
    assert sorted((e["event_type"], e["field"], e["before"], e["after"]) for e in reset["events"]) == [
        ("reset", "backlog", 2.0, None), ("reset", "demand", 5.0, None), ("unlock", "lock", True, False)]
    assert (reset["cells"][0]["edits"], reset["cells"][0]["locked"]) == ({}, False)
    # reset with a lock: the edits go, the lock stays
    patch(api, [{"key": CELL, "fields": {"demand": 5.0}, "lock": True}])
    kept = patch(api, [{"key": CELL, "reset": True, "lock": True}]).json()
    assert [(e["event_type"], e["field"]) for e in kept["events"]] == [("reset", "demand")]
    assert kept["cells"][0]["locked"] is True


def test_a_bad_edit_rolls_back_the_whole_patch(api):
    edits = [{"key": CELL, "fields": {"demand": 9.0}}, {"key": {"sku": "BK-100", "week": "2031-W01"},
                                                        "fields": {"demand": 1.0}}]
    bad = patch(api, edits)
    assert bad.status_code == 400
    message = bad.json()["error"]["message"]
    assert message.startswith("edit #1 (key {\"sku\": \"BK-100\", \"week\": \"2031-W01\"})") and "no week" in message
    assert events(api)["total"] == 0 and api.store.read_overrides(V).empty
    for edits, rule in (
        ([{"key": CELL, "fields": {"demand": -1}}], "must not be negative"),
        ([{"key": CELL, "fields": {"price": 1}}], "'price' is not an override field"),
        ([{"key": {"sku": "NOPE", "week": "2025-W03"}, "fields": {"demand": 1}}], "SKU 'NOPE' has no week"),
        ([{"key": {"sku": "BK-100"}, "fields": {"demand": 1}}], "missing week"),
        ([{"key": {"sku": "BK-200", "week": "2025-W05"}, "fields": {"demand": 1}}], "spans periods 2025-01, 2025-02"),
    ):
        refused = patch(api, edits)
        assert refused.status_code == 400 and rule in refused.json()["error"]["message"], refused.text
    refused = patch(api, [{"key": {"family": "BIKES", "period": "2031-01"}, "fields": {"demand": 1}}], level="agg")
    assert refused.status_code == 400 and "family 'BIKES' has no period '2031-01'" in refused.json()["error"]["message"]
    assert patch(api, [{"key": CELL}], level="week").status_code == 400
    assert patch(api, []).status_code == 400
    assert events(api)["total"] == 0


def test_a_shared_week_fragment_is_edited_by_its_period(api):
    key = {"sku": "BK-200", "week": "2025-W05", "period": "2025-02"}
    body = patch(api, [{"key": key, "fields": {"demand": 3.0}}]).json()
    assert [(c["period"], c["edits"]) for c in body["cells"]] == [("2025-02", {"demand": 3.0})]
    grid = api.get(f"/plans/{V}/psi", params={"sku": "BK-200", "week_from": "2025-W05", "week_to": "2025-W05"}).json()
    assert [(c["period"], c["edits"]) for c in grid["cells"]] == [("2025-01", {}), ("2025-02", {"demand": 3.0})]
    locked = patch(api, [{"key": {"sku": "BK-200", "week": "2025-W05"}, "lock": True}]).json()  # both fragments
    assert [(c["period"], c["locked"]) for c in locked["cells"]] == [("2025-01", True), ("2025-02", True)]
    assert body["events"][0]["key"] == "det:week=2025-W05,sku=BK-200,period=2025-02"


def test_edits_after_approval_are_refused(api):
    store = api.store
    store.transition_status(V, "submitted")
    store.transition_status(V, "approved")
    refused = patch(api, [{"key": CELL, "fields": {"demand": 1.0}}])
    assert refused.status_code == 409 and "frozen" in refused.json()["error"]["message"]
    assert events(api, type="edit")["total"] == 0
    assert patch(api, [{"key": CELL}], version="nope").status_code == 404


# -------------------------------------------------------------------------------------- events
def test_events_newest_first_paged_and_filtered(api):
    patch(api, [{"key": CELL, "fields": {"demand": 11.0}}], note="first")
    patch(api, [{"key": {"family": "BIKES", "period": "2025-01"}, "fields": {"supply": 300.0}}], level="agg",
          role="admin", note="capacity talk")
    patch(api, [{"key": CELL, "lock": True}], note="freeze")
    body = events(api)
    assert body["total"] == 3 and [e["event_type"] for e in body["events"]] == ["lock", "edit", "edit"]
    newest = body["events"][0]
    assert set(newest) >= {"event_id", "event_ts", "actor", "event_type", "level", "key", "field", "before",
                           "after", "note"}
    assert events(api, limit=1, offset=1)["events"] == body["events"][1:2]
    assert [e["key"] for e in events(api, actor="admin-key")["events"]] == ["agg:period=2025-01,family=BIKES"]
    assert events(api, type="lock")["total"] == 1
    assert [e["note"] for e in events(api, q="CAPACITY")["events"]] == ["capacity talk"]
    assert events(api, q="BK-100")["total"] == 2 and events(api, q="11.0")["total"] == 1
    api.store.transition_status(V, "submitted", actor="planner-key")
    assert events(api)["events"][0]["event_type"] == "submit"
    assert events(api, level="det")["total"] == 2


def test_events_of_an_unknown_version_is_404(api):
    assert api.get("/plans/nope/psi/events").status_code == 404


# ---------------------------------------------------------------------------- edits and re-plans
def test_an_aggregate_demand_edit_changes_aggregate_and_detail_after_a_replan(api):
    before = agg_cells(api, "2025-05")  # a shortage month: supply is rationed to capacity
    capacity = before["BIKES"]["capacity"]
    assert sum(c["supply"] for c in before.values()) == capacity
    new_demand = before["BIKES"]["demand"] + 200.0
    detail_before = det_sum(api, "BIKES", "2025-05", "demand")
    assert detail_before == pytest.approx(before["BIKES"]["demand"])
    body = patch(api, [{"key": {"family": "BIKES", "period": "2025-05"}, "fields": {"demand": new_demand}}],
                 level="agg").json()
    assert body["cells"][0]["edits"] == {"demand": new_demand}
    replan()
    after = agg_cells(api, "2025-05")
    assert after["BIKES"]["demand"] == new_demand
    assert after["BIKES"]["supply"] > before["BIKES"]["supply"]  # a bigger share of the capacity
    assert after["BIKES"]["backlog"] > before["BIKES"]["backlog"]
    assert all(after[f]["supply"] <= before[f]["supply"] for f in after if f != "BIKES")
    assert sum(c["supply"] for c in after.values()) == capacity  # the capacity is still all used, not more
    # the detail plan disaggregates the edited aggregate: per family x period its sums match
    for field in ("demand", "supply", "backlog"):
        assert det_sum(api, "BIKES", "2025-05", field) == pytest.approx(after["BIKES"][field])
    assert det_sum(api, "BIKES", "2025-05", "demand") == pytest.approx(detail_before + 200.0)
    untouched = agg_cells(api, "2025-01")
    assert untouched["BIKES"]["demand"] == 387.0


def test_an_aggregate_supply_edit_is_pinned_and_the_detail_follows(api):
    patch(api, [{"key": {"family": "BIKES", "period": "2025-01"}, "fields": {"supply": 300.0}, "lock": True}],
          level="agg")
    replan()
    january = agg_cells(api, "2025-01")["BIKES"]
    assert (january["demand"], january["supply"], january["backlog"]) == (387.0, 300.0, 87.0)
    assert january["locked"] and january["edits"] == {"supply": 300.0}
    assert det_sum(api, "BIKES", "2025-01", "supply") == pytest.approx(300.0)
    assert det_sum(api, "BIKES", "2025-01", "backlog") == pytest.approx(87.0)


def test_a_detail_edit_shows_in_the_detail_plan_after_a_replan(api):
    patch(api, [{"key": CELL, "fields": {"demand": 99.0}, "lock": True}])
    replan()
    edited = cell(api, sku="BK-100", week_from="2025-W03", week_to="2025-W03")
    assert (edited["demand"], edited["supply"], edited["backlog"]) == (99.0, 21.0, 78.0)
    assert edited["edits"] == {"demand": 99.0} and edited["locked"]
    neighbour = cell(api, sku="BK-100", week_from="2025-W02", week_to="2025-W02")
    assert neighbour["demand"] == 24.0
