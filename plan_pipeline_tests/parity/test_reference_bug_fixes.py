"""Reference bugs that lose data or crash, fixed end to end through `plan-pipeline plan`."""
from __future__ import annotations

import json

import pytest

from plan_pipeline.cli.main import main
from plan_pipeline_tests.conftest import require_reference

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

BASE_FILES = {
    "aggregate.json", "sku_week.json", "mrp.json", "plan_final.json", "reconciliation_log.json",
    "reconciliation_before.csv", "reconciliation_violations_before.csv", "report.csv",
}
ANCHOR_FILES = {
    "sku_week_adjusted.json", "reconciliation_log_adjusted.json", "reconciliation_compare.csv",
    "reconciliation_violations_compare.csv", "carryover.csv",
}


@pytest.mark.parametrize("preset", ["det_near", "agg_far", "blend"])
def test_anchor_branch_without_apply_adjusted_completes(preset, plan_env, tmp_path):
    """Reference §19.1: the driver crashes (exit 1, no carryover.csv, no report.csv)."""
    ref = require_reference()
    out = tmp_path / "out"
    code = main(["plan", "-I", str(ref / "inputs" / "sample_tight"), "-o", str(out), "--preset", preset,
                 "--cutover-date", "2025-05-20"])
    assert code == 0
    produced = {p.name for p in out.iterdir()}
    assert produced == BASE_FILES | ANCHOR_FILES
    lines = (out / "carryover.csv").read_bytes().decode().split("\r\n")
    assert lines[0] == "family,from_period,to_period,delta_demand,delta_supply,delta_backlog"
    assert (out / "report.csv").read_bytes().startswith(b"type,week,capacity")


@pytest.mark.parametrize("preset", ["agg_far", "blend"])
def test_agg_far_and_blend_level_and_conserve_load_end_to_end(preset, plan_env, tmp_path):
    """Reference §19.2: these policies silently fall back to forward leveling (and lose load when forced)."""
    ref = require_reference()
    out = tmp_path / "out"
    assert main(["plan", "-I", str(ref / "inputs" / "sample_tight"), "-o", str(out), "--preset", preset,
                 "--cutover-date", "2025-05-20", "--round", "none"]) == 0
    plan_final = json.loads((out / "plan_final.json").read_text())
    weekly = plan_final["weekly_summary"]
    original = sum(w["original_load"] for w in weekly)
    leveled = sum(w["adjusted_load"] for w in weekly)
    # adjusted_load is written rounded to 6 decimals per item: allow that rounding over the horizon
    assert abs(leveled + weekly[-1]["spill_out"] - original) < 1e-6 * len(plan_final["rows"])
    # and it is not the forward algorithm: the at-month spill is moved out of the month
    forward_out = tmp_path / "forward"
    assert main(["plan", "-I", str(ref / "inputs" / "sample_tight"), "-o", str(forward_out),
                 "--round", "none"]) == 0
    forward = json.loads((forward_out / "plan_final.json").read_text())["weekly_summary"]
    assert [w["adjusted_load"] for w in weekly] != [w["adjusted_load"] for w in forward]
    assert plan_final["boundary_summary"]["anchor_policy"] == {"agg_far": "AGG_far", "blend": "blend"}[preset]


def test_dayless_cutover_tags_the_boundary_month(plan_env, tmp_path):
    """Reference §19.12: a `YYYY-MM` cutover tags nothing in the reconciliation log."""
    ref = require_reference()
    out = tmp_path / "out"
    assert main(["plan", "-I", str(ref / "inputs" / "samples_planning"), "-o", str(out),
                 "--preset", "det_near", "--cutover-date", "2025-03"]) == 0
    log = json.loads((out / "reconciliation_log.json").read_text())
    tagged = {d["period"] for d in log["deltas"] if d.get("boundary_period")}
    assert tagged == {"2025-03"}
    assert log["summary"]["boundary"]["period"] == "2025-03"


def test_bad_flags_exit_with_a_clear_message(plan_env, tmp_path, capsys):
    ref = require_reference()
    args = ["plan", "-I", str(ref / "inputs" / "samples_planning"), "-o", str(tmp_path / "o")]
    assert main([*args, "--anchor-policy", "DET_nearest", "--cutover-date", "2025-03-15"]) == 1
    assert "anchor_policy: 'DET_nearest' is not one of DET_near, AGG_far, blend" in capsys.readouterr().err
    assert main([*args, "--cutover-date", "2025-02-30"]) == 1
    assert "cutover_date: '2025-02-30' must be a date YYYY-MM-DD or a month YYYY-MM" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*args, "--carryover", "sideways"])
    assert exc.value.code == 2
    assert not (tmp_path / "o").exists()
    assert main(["plan", "-I", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
