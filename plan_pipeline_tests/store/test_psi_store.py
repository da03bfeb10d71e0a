"""The PSI grid in the store: override changes (one event per field), psi_edit, psi_cells, psi_events."""
from __future__ import annotations

import pandas as pd
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanConflictError, PlanNotFoundError, PlanStore, PlanStoreError

pytestmark = pytest.mark.both_backends

KEY = "det:week=2025-W02,sku=A1"


def det_frame() -> pd.DataFrame:
    rows = [("FA", "2025-01", sku, f"2025-W0{w}", 10.0 * w, 5.0 * w, 5.0 * w, 5.0 * w)
            for sku in ("A1", "A2") for w in (1, 2, 3)]
    rows.append(("FA", "2025-02", "A1", "2025-W05", 1.0, 1.0, 1.0, 0.0))
    rows.append(("FA", "2025-01", "A1", "2025-W05", 2.0, 2.0, 2.0, 0.0))
    return pd.DataFrame(rows, columns=["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"])


def agg_frame() -> pd.DataFrame:
    return pd.DataFrame({"family": ["FA", "FB"], "period": ["2025-01", "2025-01"], "demand": [100.0, 50.0],
                         "supply": [90.0, 45.0], "backlog": [10.0, 5.0], "capacity_total": [135.0, 135.0]})


@pytest.fixture
def psi_store(store: PlanStore, sample_dir) -> PlanStore:
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters())
    store.replace_series("v1", "det", det_frame())
    store.replace_series("v1", "aggregate", agg_frame())
    return store


def changes(result):
    return [(e["event_type"], e["field"], e["before"], e["after"]) for e in result["changes"]]


def test_record_override_writes_one_event_per_changed_field(psi_store: PlanStore):
    first = psi_store.record_override("v1", "det", KEY, {"demand": 4.0, "supply": 2.0}, actor="ana", notes="why")
    assert changes(first) == [("edit", "demand", None, 4.0), ("edit", "supply", None, 2.0)]
    assert first["events"] == ["edit", "edit"]
    # a lock leaves the edit; an edit leaves the lock; None removes one field
    assert changes(psi_store.record_override("v1", "det", KEY, {}, lock=True, actor="bo")) == [
        ("lock", "lock", False, True)]
    assert changes(psi_store.record_override("v1", "det", KEY, {"supply": None, "demand": 4.0})) == [
        ("edit", "supply", 2.0, None)]
    assert psi_store.level_overrides("v1", "det") == [{"key": KEY, "payload": {"demand": 4.0}, "locked": True}]
    assert psi_store.record_override("v1", "det", KEY, {"demand": 4.0}, lock=True)["events"] == []  # G8
    overrides = psi_store.read_overrides("v1")
    assert overrides["locked_by"].tolist() == ["bo"] and overrides["source"].tolist() == ["cli"]
    events = psi_store.read_override_events("v1")
    assert len(events) == 4 and events["notes"].tolist()[0] == "why"


def test_reset_removes_edits_and_lock(psi_store: PlanStore):
    psi_store.record_override("v1", "det", KEY, {"demand": 4.0, "backlog": 1.0}, lock=True)
    assert sorted(changes(psi_store.record_override("v1", "det", KEY, {}, reset=True))) == [
        ("reset", "backlog", 1.0, None), ("reset", "demand", 4.0, None), ("unlock", "lock", True, False)]
    assert psi_store.level_overrides("v1", "det") == [{"key": KEY, "payload": {}, "locked": False}]
    # a reset that also sets a field: the other fields go, the given one is an edit
    psi_store.record_override("v1", "det", KEY, {"demand": 4.0, "supply": 3.0})
    assert sorted(changes(psi_store.record_override("v1", "det", KEY, {"demand": 6.0}, reset=True))) == [
        ("edit", "demand", 4.0, 6.0), ("reset", "supply", 3.0, None)]


def test_levels_and_keys_are_checked(psi_store: PlanStore):
    with pytest.raises(PlanStoreError, match="override level 'mrp' is not one of agg, det"):
        psi_store.record_override("v1", "mrp", KEY, {"demand": 1.0})
    with pytest.raises(PlanStoreError, match="not an aggregate override key"):
        psi_store.record_override("v1", "agg", KEY, {"demand": 1.0})
    psi_store.record_override("v1", "agg", "agg:period=2025-01,family=FA", {"supply": 80.0})
    assert psi_store.level_overrides("v1", "agg")[0]["payload"] == {"supply": 80.0}
    assert psi_store.detail_overrides("v1") == []


def test_psi_edit_is_all_or_nothing_and_names_the_bad_edit(psi_store: PlanStore):
    edits = [{"key": {"sku": "A1", "week": "2025-W02"}, "fields": {"demand": 1.0}},
             {"key": {"sku": "A1", "week": "2025-W09"}, "fields": {"demand": 1.0}}]
    with pytest.raises(PlanStoreError, match=r"^edit #1 \(key \{\"sku\": \"A1\", \"week\": \"2025-W09\"\}\): SKU 'A1' "
                                             r"has no week '2025-W09'"):
        psi_store.psi_edit("v1", "det", edits, actor="ana")
    assert psi_store.read_overrides("v1").empty and psi_store.read_override_events("v1").empty
    with pytest.raises(PlanStoreError, match=r"spans periods 2025-02, 2025-01: give key\.period"):
        psi_store.psi_edit("v1", "det", [{"key": {"sku": "A1", "week": "2025-W05"}, "fields": {"demand": 1.0}}],
                           actor="ana")
    with pytest.raises(PlanStoreError, match=r"edit #0 .*: lock 'yes' must be true, false or null"):
        psi_store.psi_edit("v1", "det", [{"key": {"sku": "A1", "week": "2025-W02"}, "lock": "yes"}], actor="ana")
    with pytest.raises(PlanStoreError, match="family 'FC' has no period '2025-01'"):
        psi_store.psi_edit("v1", "agg", [{"key": {"family": "FC", "period": "2025-01"}, "fields": {"demand": 1}}],
                           actor="ana")
    with pytest.raises(PlanNotFoundError):
        psi_store.psi_edit("nope", "det", edits[:1], actor="ana")
    written = psi_store.psi_edit("v1", "det", [{"key": {"sku": "A1", "week": "2025-W05", "period": "2025-02"},
                                                "fields": {"demand": 7.0}, "lock": True}], actor="ana", note="n")
    assert written["keys"] == ["det:week=2025-W05,sku=A1,period=2025-02"]
    assert [(e["event_type"], e["field"], e["after"], e["actor"], e["note"]) for e in written["events"]] == [
        ("edit", "demand", 7.0, "ana", "n"), ("lock", "lock", True, "ana", "n")]


def test_frozen_versions_refuse_psi_edits(psi_store: PlanStore):
    psi_store.transition_status("v1", "submitted")
    psi_store.transition_status("v1", "approved")
    with pytest.raises(PlanConflictError, match="is approved: its plan is frozen"):
        psi_store.psi_edit("v1", "agg", [{"key": {"family": "FA", "period": "2025-01"}, "fields": {"demand": 1}}],
                           actor="ana")


def test_psi_cells_join_the_overlay(psi_store: PlanStore):
    psi_store.psi_edit("v1", "det", [{"key": {"sku": "A1", "week": "2025-W05"}, "lock": True},
                                     {"key": {"sku": "A1", "week": "2025-W05", "period": "2025-01"},
                                      "fields": {"supply": 0.5}}], actor="ana")
    page = psi_store.psi_cells("v1", "det", sku="A1", week_from="2025-W05")
    assert page["total"] == 2
    assert [(c["period"], c["demand"], c["edits"], c["locked"], c["key"]) for c in page["cells"]] == [
        ("2025-02", 1.0, {}, True, "det:week=2025-W05,sku=A1"),
        ("2025-01", 2.0, {"supply": 0.5}, True, "det:week=2025-W05,sku=A1,period=2025-01")]
    assert psi_store.psi_cells("v1", "det", limit=2, offset=6)["cells"][0]["week"] == "2025-W05"
    assert psi_store.psi_cells("v1", "det", family="FA")["total"] == 8
    agg = psi_store.psi_cells("v1", "agg", keys=["agg:period=2025-01,family=FB"])
    assert [(c["family"], c["capacity"], c["edits"]) for c in agg["cells"]] == [("FB", 135.0, {})]
    with pytest.raises(PlanStoreError, match="limit 0 must be from 1 to 5000"):
        psi_store.psi_cells("v1", "det", limit=0)
    with pytest.raises(PlanStoreError, match="not a PSI grain"):
        psi_store.psi_cells("v1", "aggregate")


def test_psi_events_filter_and_page(psi_store: PlanStore):
    psi_store.psi_edit("v1", "det", [{"key": {"sku": "A1", "week": "2025-W02"}, "fields": {"demand": 3.0}}],
                       actor="ana", note="Promo week")
    psi_store.psi_edit("v1", "agg", [{"key": {"family": "FA", "period": "2025-01"}, "fields": {"supply": 95.0},
                                      "lock": True}], actor="bo")
    everything = psi_store.psi_events("v1")
    assert everything["total"] == 3
    assert [(e["event_type"], e["field"], e["after"]) for e in everything["events"]] == [
        ("lock", "lock", True), ("edit", "supply", 95.0), ("edit", "demand", 3.0)]
    assert psi_store.psi_events("v1", actor="ana")["events"][0]["note"] == "Promo week"
    assert psi_store.psi_events("v1", q="promo")["total"] == 1 and psi_store.psi_events("v1", q="95.0")["total"] == 1
    assert psi_store.psi_events("v1", event_type="lock", level="agg")["total"] == 1
    assert psi_store.psi_events("v1", limit=1, offset=2)["events"][0]["field"] == "demand"


def test_web_view_reads(psi_store: PlanStore):
    """The planner web view's reads (store/web_view.py), the same statements on both backends."""
    from plan_pipeline.store.web_view import (
        detail_families,
        family_detail_rows,
        family_skus,
        recent_events,
        sku_overrides,
    )

    psi_store.psi_edit("v1", "det", [{"key": {"sku": "A1", "week": "2025-W05", "period": "2025-02"},
                                      "fields": {"demand": 7.0}},
                                     {"key": {"sku": "A2", "week": "2025-W01"}, "lock": True}], actor="ana")
    assert detail_families(psi_store, "v1") == ["FA"]
    assert family_skus(psi_store, "v1", "FA") == ["A1", "A2"]
    rows = family_detail_rows(psi_store, "v1", "FA", ["A1"])
    assert rows["week"].tolist() == ["2025-W01", "2025-W02", "2025-W03", "2025-W05", "2025-W05"]
    assert rows["period"].tolist()[-2:] == ["2025-02", "2025-01"] and rows["demand"].tolist()[0] == 10.0
    assert [(o["key"], o["payload"], o["locked"]) for o in sku_overrides(psi_store, "v1", ["A1"])] == [
        ("det:week=2025-W05,sku=A1,period=2025-02", {"demand": 7.0}, False)]
    assert [o["locked_by"] for o in sku_overrides(psi_store, "v1", ["A2", "A9"])] == ["ana"]
    events = recent_events(psi_store, "v1", limit=5)
    assert [(e["type"], e["payload"]["field"]) for e in events] == [("lock", "lock"), ("edit", "demand")]
