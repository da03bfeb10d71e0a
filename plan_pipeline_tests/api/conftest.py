"""Fixtures of the Plans API tests (see api_helpers.py). With ``--store-backend=postgres`` the
planned store is a PostgreSQL database (a template planned once, copied per test)."""
from __future__ import annotations

import pytest

from plan_pipeline_tests.api.api_helpers import PlannedHome, api_harness, build_planned_home


@pytest.fixture(scope="session")
def planned_home_template(tmp_path_factory, homes):
    """The bundled sample planned once per session (copied, never used directly)."""
    return build_planned_home(homes.new(tmp_path_factory.mktemp("api_template") / "home", prefix="api_template"))


@pytest.fixture
def fresh_home(planned_home_template, tmp_path, home_copy):
    """``fresh_home(name)``: a new copy of the planned home in ``tmp_path / name`` (and of its database)."""
    def make(name: str = "home") -> PlannedHome:
        return home_copy(planned_home_template, tmp_path / name)
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
