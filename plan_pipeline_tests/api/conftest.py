"""Fixtures of the Plans API tests (see api_helpers.py). With ``--store-backend=postgres`` the
planned store is a PostgreSQL database (a template planned once, copied per test)."""
from __future__ import annotations

import pytest

from plan_pipeline_tests.api.api_helpers import PlannedHome, api_harness, build_planned_home, copy_home


@pytest.fixture(scope="session")
def planned_home_template(tmp_path_factory, request):
    """The bundled sample planned once per session (copied, never used directly)."""
    server = None
    if request.config.getoption("--store-backend") == "postgres":
        server = request.getfixturevalue("postgres_url")
    planned = build_planned_home(tmp_path_factory.mktemp("api_template") / "home", server)
    yield planned
    if planned.database is not None:
        from plan_pipeline.store.backends.postgres import drop_database

        assert planned.server_url is not None
        drop_database(planned.server_url, planned.database)


@pytest.fixture
def fresh_home(planned_home_template, tmp_path, request):
    """``fresh_home(name)``: a new copy of the planned home in ``tmp_path / name`` (and of its database)."""
    def make(name: str = "home") -> PlannedHome:
        return copy_home(planned_home_template, tmp_path / name, request.addfinalizer)
    return make


@pytest.fixture
def api(fresh_home, monkeypatch):
    """A test client over a fresh copy of the planned home, with one key per role."""
    planned = fresh_home()
    monkeypatch.delenv("PLAN_STORE_URL", raising=False)
    for name, value in planned.env.items():
        monkeypatch.setenv(name, value)
    yield api_harness(planned)
    if planned.store_url:  # nothing fell back to a DuckDB file in the home
        assert not (planned.home / "plan_store.duckdb").exists()
