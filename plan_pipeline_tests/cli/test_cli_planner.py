"""Planner workflow through the CLI: edit and lock, re-plan, audit trail, lifecycle, diff."""
from __future__ import annotations

import pytest

from plan_pipeline.cli.main import main

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres


@pytest.fixture
def planned(plan_env, sample_dir, capsys):
    assert main(["inputs", "import", str(sample_dir), "--label", "s"]) == 0
    assert main(["version", "create", "--input-set", "s", "--version-id", "base"]) == 0
    assert main(["version", "create", "--input-set", "s", "--version-id", "edit", "--preset", "det_near",
                 "--cutover-date", "2025-03-12", "--apply-adjusted"]) == 0
    assert main(["materialize", "base"]) == 0
    capsys.readouterr()
    return plan_env.store


def test_edit_lock_replan_and_audit(planned, capsys):
    store = planned
    detail = store.read_series("base", "det")
    row = detail[(detail.period == "2025-03") & (detail.week == "2025-W11")].iloc[0]
    sku, family = row.sku, row.family
    new_demand = row.demand + 25
    assert main(["override", "set", "edit", "--week", "2025-W11", "--sku", sku, "--demand", str(new_demand),
                 "--lock", "--note", "promotion", "--actor", "ana"]) == 0
    assert "edit, lock recorded" in capsys.readouterr().out
    # the same edit again changes nothing and records nothing
    assert main(["override", "set", "edit", "--week", "2025-W11", "--sku", sku, "--demand", str(new_demand)]) == 0
    assert "unchanged, nothing recorded" in capsys.readouterr().out
    assert main(["materialize", "edit"]) == 0

    det = store.read_series("edit", "det")
    edited = det[(det.sku == sku) & (det.week == "2025-W11") & (det.period == "2025-03")].iloc[0]
    assert edited.demand == new_demand
    assert edited.backlog == max(0.0, new_demand - edited.supply)
    # the anchor branch corrected the boundary month around the locked row
    recon = store.read_series("edit", "level_reconciliation")
    bad = recon[~recon.ok]
    assert bad[["family", "period"]].values.tolist() == [[family, "2025-03"]]
    assert bad["delta_demand"].iat[0] == pytest.approx(25.0)
    adjusted = store.read_series("edit", "level_reconciliation_adjusted")
    assert adjusted["ok"].all()
    anchored = store.read_series("edit", "det_adjusted")
    kept = anchored[(anchored.sku == sku) & (anchored.week == "2025-W11") & (anchored.period == "2025-03")].iloc[0]
    assert kept.demand == new_demand
    # the run's checks include the lock laws
    events = store.read_override_events("edit")
    assert events["event_type"].tolist() == ["edit", "lock"]
    assert set(events["actor"]) == {"ana"} and set(events["notes"]) == {"promotion"}


def test_aggregate_edits_resets_and_unknown_cells_share_the_api_rules(planned, capsys):
    # ``edit`` has no plan yet: the cell is checked against its input set
    assert main(["override", "set", "edit", "--family", "BIKES", "--period", "2025-05", "--demand", "900",
                 "--supply", "800", "--note", "promo", "--actor", "ana"]) == 0
    assert "agg:period=2025-05,family=BIKES: demand edit, supply edit recorded" in capsys.readouterr().out
    assert main(["override", "set", "edit", "--family", "BIKES", "--period", "2025-05", "--lock"]) == 0
    assert main(["override", "set", "edit", "--family", "BIKES", "--period", "2025-05", "--reset"]) == 0
    assert "demand reset, supply reset, unlock recorded" in capsys.readouterr().out.splitlines()[-1]
    assert planned.level_overrides("edit", "agg") == [
        {"key": "agg:period=2025-05,family=BIKES", "payload": {}, "locked": False}]
    events = planned.read_override_events("edit")
    assert events["event_type"].tolist() == ["edit", "edit", "lock", "reset", "reset", "unlock"]
    assert main(["override", "set", "edit", "--family", "NOPE", "--period", "2025-05", "--demand", "1"]) == 1
    assert "family 'NOPE' has no demand in period '2025-05'" in capsys.readouterr().err
    assert main(["override", "set", "base", "--week", "2031-W01", "--sku", "BK-100", "--demand", "1"]) == 1
    assert "SKU 'BK-100' has no week '2031-W01' in the published plan" in capsys.readouterr().err
    assert main(["override", "set", "edit", "--family", "BIKES", "--demand", "1"]) == 2
    assert len(planned.read_override_events("edit")) == 6


def test_lifecycle_freezes_approved_versions(planned, capsys):
    assert main(["approve", "edit"]) == 1
    assert "is draft: it cannot become approved (allowed: submitted)" in capsys.readouterr().err
    assert main(["submit", "edit", "--note", "ready"]) == 0
    assert main(["approve", "edit", "--actor", "lead"]) == 0
    assert main(["override", "set", "edit", "--week", "2025-W11", "--sku", "BK-100", "--demand", "1"]) == 1
    assert "is approved: its plan is frozen and cannot be edited" in capsys.readouterr().err
    assert main(["materialize", "edit"]) == 1
    assert "is approved: its plan is frozen" in capsys.readouterr().err
    events = planned.read_override_events("edit")
    assert events["event_type"].tolist() == ["submit", "approve"]
    assert planned.get_version("edit").status == "approved"


def test_diff_between_versions(planned, capsys):
    assert main(["version", "create", "--input-set", "s", "--version-id", "none", "--round", "none"]) == 0
    assert main(["materialize", "none"]) == 0
    capsys.readouterr()
    assert main(["diff", "base", "base", "--level", "det"]) == 0
    assert "identical" in capsys.readouterr().out
    assert main(["diff", "base", "none", "--level", "det"]) == 0
    text = capsys.readouterr().out
    assert "row(s) differ" in text and "total delta: demand" in text
