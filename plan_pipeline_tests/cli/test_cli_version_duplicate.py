"""``plan-pipeline version duplicate`` and the lifecycle commands' note to the Dagster UI."""
from __future__ import annotations

import dagster as dg
import pytest

from plan_pipeline.cli.main import main
from plan_pipeline.planning.overrides import detail_key
from plan_pipeline.planning.parameters import PlanningParameters

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres


def _setup(sample_dir, capsys):
    assert main(["inputs", "import", str(sample_dir), "--label", "s"]) == 0
    assert main(["version", "create", "--input-set", "s", "--version-id", "base", "--round", "int"]) == 0
    assert main(["override", "set", "base", "--week", "2025-W02", "--sku", "BK-100", "--demand", "3", "--lock",
                 "--actor", "ana"]) == 0
    capsys.readouterr()


def test_version_duplicate_copies_input_set_parameters_and_planner_edits(plan_env, sample_dir, capsys):
    _setup(sample_dir, capsys)
    assert main(["version", "duplicate", "base", "--id", "base-2", "--actor", "bo"]) == 0
    out = capsys.readouterr().out
    assert "created plan version 'base-2' as a duplicate of 'base' on input set 's'" in out
    assert "1 planner edit(s)/lock(s) carried over" in out
    store = plan_env.store
    copy = store.get_version("base-2")
    assert (copy.input_set, copy.status, copy.source) == ("s", "draft", "cli")
    assert copy.params == PlanningParameters(round_mode="int")
    key = detail_key("2025-W02", "BK-100", None)
    assert store.detail_overrides("base-2") == [{"key": key, "payload": {"demand": 3.0}, "locked": True}]
    events = store.read_override_events("base-2")
    assert events["event_type"].tolist() == ["duplicate"] and events["actor"].tolist() == ["bo"]
    assert "base-2" in plan_env.instance().get_dynamic_partitions("plan_version")
    # edits of the copy leave the source alone
    assert main(["override", "set", "base-2", "--week", "2025-W02", "--sku", "BK-100", "--demand", "9"]) == 0
    assert store.detail_overrides("base")[0]["payload"] == {"demand": 3.0}


def test_version_duplicate_refuses_taken_ids_and_unknown_sources(plan_env, sample_dir, capsys):
    _setup(sample_dir, capsys)
    assert main(["version", "duplicate", "base", "--id", "base"]) == 1
    assert "error: plan version 'base' already exists" in capsys.readouterr().err
    assert main(["version", "duplicate", "ghost"]) == 1
    assert "error: unknown plan version 'ghost'" in capsys.readouterr().err
    assert main(["version", "duplicate", "base", "--id", "../x"]) == 1
    assert "invalid version id '../x'" in capsys.readouterr().err
    assert [v.version_id for v in plan_env.store.list_versions()] == ["base"]


def test_lifecycle_changes_show_in_dagster_as_planning_inputs_observations(plan_env, sample_dir, capsys):
    _setup(sample_dir, capsys)
    assert main(["submit", "base"]) == 0
    assert main(["approve", "base"]) == 0
    records = plan_env.instance().fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("planning_inputs"), asset_partitions=["base"]), limit=5).records
    seen = [(r.asset_observation.metadata["plan/version_status"].value,
             r.asset_observation.metadata["previous_status"].value) for r in records]
    assert seen == [("approved", "submitted"), ("submitted", "draft")]  # newest first
