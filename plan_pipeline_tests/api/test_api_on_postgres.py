"""The Plans API on a PostgreSQL store while a run writes (issue 15: "the API server works
unchanged against PostgreSQL, including while runs write (no lock waits)").

Runs on a fresh PostgreSQL database whatever ``--store-backend`` says (the ``postgres_store_url``
fixture starts the session's server; a missing server fails under CI and skips elsewhere).
"""
from __future__ import annotations

from typing import Any

import pytest

from plan_pipeline.store import PlanStore
from plan_pipeline_tests.api.api_helpers import PlannedHome, api_harness
from plan_pipeline_tests.operations.test_operations_on_postgres import fill, held_writer, without_waiting

pytestmark = pytest.mark.both_backends


@pytest.mark.parametrize("writer_kind", ["replace", "stage"])
def test_the_api_reads_while_a_run_writes_the_version_on_postgres(postgres_store_url, tmp_path, sample_dir,
                                                                 writer_kind):
    """A writer holds version v1's write transaction (``replace``: v1's published ``det`` rows
    deleted and new ones inserted; ``stage``: a plan run's staged level inserted; not committed):
    the API's GETs -- the plans list, v1, its series, KPIs and PSI grid -- answer without waiting,
    with v1's last published rows. The writer then fails: nothing changes."""
    store = PlanStore.from_url(postgres_store_url)
    fill(store, sample_dir)
    api = api_harness(PlannedHome(tmp_path / "home", postgres_store_url))
    published = store.read_series("v1", "det")

    def reads() -> dict[str, Any]:
        return {name: api.get(path, params=params) for name, path, params in (
            ("plans", "/plans", {}), ("plan", "/plans/v1", {}),
            ("series", "/plans/v1/series", {"level": "det"}), ("kpis", "/plans/v1/kpis", {}),
            ("psi", "/plans/v1/psi", {"level": "det"}))}

    with held_writer(store, writer_kind) as writer:
        answers = without_waiting(reads, "the API's reads")
        bodies = {}
        for name, answer in answers.items():
            assert answer.status_code == 200, (name, answer.text[:300])
            bodies[name] = answer.json()
        assert sorted(p["version_id"] for p in bodies["plans"]["plans"]) == ["v1", "v2"]
        assert bodies["plan"]["rows"] == {"det": len(published)}
        series = bodies["series"]
        assert series["total"] == len(published)  # the last committed rows, not the writer's
        assert sorted(r["demand"] for r in series["rows"]) == sorted(published["demand"].tolist())
        assert bodies["kpis"]["total"] == 1
        cells = bodies["psi"]["cells"]
        assert len(cells) == bodies["psi"]["total"] > 0 and max(c["demand"] for c in cells) < 100.0
        assert writer.is_alive()  # the writer was holding its transaction the whole time
