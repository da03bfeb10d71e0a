"""Fixtures of the Plans API tests (see api_helpers.py)."""
from __future__ import annotations

import pytest

from plan_pipeline_tests.api.api_helpers import api_harness, build_planned_home, copy_home


@pytest.fixture(scope="session")
def planned_home_template(tmp_path_factory):
    """The bundled sample planned once per session (copied, never used directly)."""
    return build_planned_home(tmp_path_factory.mktemp("api_template") / "home")


@pytest.fixture
def api(planned_home_template, tmp_path, monkeypatch):
    """A test client over a fresh copy of the planned home, with one key per role."""
    home = copy_home(planned_home_template, tmp_path / "home")
    monkeypatch.setenv("PLAN_PIPELINE_HOME", str(home))
    monkeypatch.setenv("PLAN_PIPELINE_DB", str(home / "plan_store.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    return api_harness(home)
