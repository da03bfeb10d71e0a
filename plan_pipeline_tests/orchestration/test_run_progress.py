"""A run launched in this process (the CLI's ``materialize`` and ``plan``) says how far it is
while it runs: the steps done out of the steps planned, the step running, the slowest so far."""
from __future__ import annotations

import re

import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan import launch
from plan_pipeline.orchestration.plan.launch import StepProgress, materialize_version
from plan_pipeline.orchestration.plan.run_ledger_hooks import plan_shape
from plan_pipeline.planning.types import PlanningParameters

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres

LINE = re.compile(r"run (?P<run>\S+): (?P<done>\d+) of (?P<planned>\d+) steps done after (?P<elapsed>\d+)s"
                  r"(, running (?P<running>[\w, ]+))?( \(slowest so far: (?P<slowest>\w+) [0-9.]+s\))?$")


def test_a_long_run_reports_the_steps_done_while_it_runs(plan_env, sample_dir, monkeypatch):
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters(preset="det_near", cutover_date="2025-03-12", apply_adjusted=True))
    monkeypatch.setattr(launch, "PROGRESS_EVERY_SECONDS", 0.0)  # every poll (1 s) reports: the sample runs in seconds
    said: list[str] = []
    instance = plan_env.instance()
    outcome = materialize_version(instance, store, "v1", progress=said.append)
    assert outcome.success, outcome.errors

    lines = [m for line in said if (m := LINE.match(line))]
    assert lines, said
    run = instance.get_run_by_id(outcome.run_id)
    planned = plan_shape(instance, run.execution_plan_snapshot_id).planned
    assert len(planned) >= 16  # the anchored chain: every stage, both branches
    assert all(m["run"] == outcome.run_id and int(m["planned"]) == len(planned) for m in lines)
    done = [int(m["done"]) for m in lines]
    assert done == sorted(done) and done[-1] <= len(planned)
    assert all(step in planned for m in lines if m["running"] for step in m["running"].split(", "))

    # read after the run: every planned step finished, with the durations Dagster's step stats give
    progress = StepProgress()
    progress.read(instance, outcome.run_id)
    assert set(progress.finished) == set(planned)
    stats = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(outcome.run_id)}
    assert progress.finished == pytest.approx(stats, abs=0.05)
    assert "running" not in progress.line(outcome.run_id, 9.0)
    assert progress.line(outcome.run_id, 9.0).startswith(f"run {outcome.run_id}: {len(planned)} steps done after 9s")

