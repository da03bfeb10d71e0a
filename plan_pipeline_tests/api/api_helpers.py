"""Helpers of the Plans API tests: a planned project home (built once per session, copied per
test), one API key per role, a FastAPI test client on it.

On ``--store-backend=postgres`` the planned store is a PostgreSQL template database (planned with
``PLAN_STORE_URL`` set; the Dagster home is still the home's folder) and each copy is a new
database made from it (``CREATE DATABASE ... TEMPLATE``) beside a copy of the home folder."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from plan_pipeline.api.app import create_app
from plan_pipeline.api.roles import ROLES
from plan_pipeline.api.settings import ApiSettings
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline.store import PlanStore
from plan_pipeline_tests.conftest import BUNDLED_SAMPLE
from plan_pipeline_tests.project_homes import ProjectHome

#: Versions of the planned home: ``base`` planned (default parameters) and ``blank`` (a draft
#: on the same input set, never planned).
PLANNED_VERSION = "base"
BLANK_VERSION = "blank"
INPUT_SET = "sample"


#: A planned home (plan_pipeline_tests/project_homes.py)
PlannedHome = ProjectHome


def build_planned_home(planned: PlannedHome) -> PlannedHome:
    """Import the bundled sample into the (empty) home, create and plan ``base``, create ``blank``."""
    from plan_pipeline_tests.exports.report_helpers import plan_home

    env = plan_home(planned, {PLANNED_VERSION: (BUNDLED_SAMPLE, INPUT_SET, PlanningParameters())})
    env.store.create_version(BLANK_VERSION, INPUT_SET, PlanningParameters())
    assert env.store.is_postgres == planned.is_postgres
    planned.check_no_duckdb_file()
    return planned


@dataclass
class ApiHarness:
    """A copy of the planned home with a test client and one key per role (``keys[role]``)."""

    home: Path
    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)
    #: The PostgreSQL store's URL; None: the home's DuckDB file
    store_url: str | None = None

    @property
    def project(self) -> ProjectHome:
        return ProjectHome(self.home, self.store_url)

    @property
    def db_path(self) -> Path:
        """The DuckDB file (on PostgreSQL: a file that is not there)."""
        return self.project.db_path

    @property
    def store(self) -> PlanStore:
        return self.project.store

    def new_store(self, **kwargs: Any) -> PlanStore:
        """Another store object on the harness's store (e.g. another ``write_source``)."""
        return self.project.new_store(**kwargs)

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def get(self, path: str, role: str = "viewer", **kwargs: Any):
        return self.client.get(path, headers=self.headers(role), **kwargs)

    def post(self, path: str, role: str = "planner", **kwargs: Any):
        return self.client.post(path, headers=self.headers(role), **kwargs)

    def patch(self, path: str, role: str = "planner", **kwargs: Any):
        return self.client.patch(path, headers=self.headers(role), **kwargs)

    def delete(self, path: str, role: str = "admin", **kwargs: Any):
        return self.client.delete(path, headers=self.headers(role), **kwargs)


def api_harness(planned: PlannedHome, **settings: Any) -> ApiHarness:
    home = planned.home
    if planned.store_url:
        store = PlanStore.from_url(planned.store_url)
        where: dict[str, Any] = {"store_url": planned.store_url}
    else:
        store = PlanStore(home / "plan_store.duckdb")
        where = {"db_path": store.path}
    keys = {role: store.create_api_key(f"{role}-key", role) for role in ROLES}
    app = create_app(ApiSettings(**where, dagster_home=home / "dagster_home", **settings))
    return ApiHarness(home=home, client=TestClient(app, raise_server_exceptions=False), keys=keys,
                      store_url=planned.store_url)
