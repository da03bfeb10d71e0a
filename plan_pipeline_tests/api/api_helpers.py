"""Helpers of the Plans API tests: a planned project home (built once per session, copied per
test), one API key per role, a FastAPI test client on it.

On ``--store-backend=postgres`` the planned store is a PostgreSQL template database (planned with
``PLAN_STORE_URL`` set; the Dagster home is still the home's folder) and each copy is a new
database made from it (``CREATE DATABASE ... TEMPLATE``) beside a copy of the home folder."""
from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
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

#: Versions of the planned home: ``base`` planned (default parameters) and ``blank`` (a draft
#: on the same input set, never planned).
PLANNED_VERSION = "base"
BLANK_VERSION = "blank"
INPUT_SET = "sample"


@dataclass(frozen=True)
class PlannedHome:
    """A project home (its folder) and its plan store: the home's DuckDB file, or the PostgreSQL
    database ``store_url`` (then ``database`` on the server ``server_url``)."""

    home: Path
    store_url: str | None = None
    server_url: str | None = None
    database: str | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point the CLI and the API at this home and its store."""
        env = {"PLAN_PIPELINE_HOME": str(self.home), "PLAN_PIPELINE_DB": str(self.home / "plan_store.duckdb"),
               "DAGSTER_HOME": str(self.home / "dagster_home")}
        if self.store_url:
            env["PLAN_STORE_URL"] = self.store_url
        return env


def build_planned_home(home: Path, server_url: str | None = None) -> PlannedHome:
    """Import the bundled sample, create and plan ``base``, create ``blank``; on a PostgreSQL
    server (``server_url``) into a new database of it, else into the home's DuckDB file."""
    import pytest

    from plan_pipeline_tests.exports.report_helpers import plan_home

    planned = PlannedHome(home)
    if server_url is not None:
        from plan_pipeline.store.backends.postgres import create_database

        database = f"api_template_{uuid.uuid4().hex[:12]}"
        planned = PlannedHome(home, create_database(server_url, database), server_url, database)
    with pytest.MonkeyPatch.context() as mp:
        if planned.store_url:
            mp.setenv("PLAN_STORE_URL", planned.store_url)
        else:
            mp.delenv("PLAN_STORE_URL", raising=False)
        env = plan_home(home, {PLANNED_VERSION: (BUNDLED_SAMPLE, INPUT_SET, PlanningParameters())})
        env.store.create_version(BLANK_VERSION, INPUT_SET, PlanningParameters())
    if planned.store_url:
        assert env.store.is_postgres and not (home / "plan_store.duckdb").exists(), "planned into a DuckDB file"
    return planned


def copy_home(template: PlannedHome, target: Path, cleanup: Callable[[Callable[[], None]], None]) -> PlannedHome:
    """A copy of the planned home in ``target`` (and of its PostgreSQL database: dropped through
    ``cleanup``, e.g. ``request.addfinalizer``)."""
    shutil.copytree(template.home, target)
    if template.database is None:
        return PlannedHome(target)
    from plan_pipeline.store.backends.postgres import copy_database, drop_database

    server, database = template.server_url, f"api_{uuid.uuid4().hex[:16]}"
    assert server is not None
    url = copy_database(server, template.database, database)
    cleanup(lambda: drop_database(server, database))
    return PlannedHome(target, url, server, database)


@dataclass
class ApiHarness:
    """A copy of the planned home with a test client and one key per role (``keys[role]``)."""

    home: Path
    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)
    #: The PostgreSQL store's URL; None: the home's DuckDB file
    store_url: str | None = None

    @property
    def db_path(self) -> Path:
        """The DuckDB file (on PostgreSQL: a file that is not there)."""
        return self.home / "plan_store.duckdb"

    @property
    def store(self) -> PlanStore:
        return PlanStore.from_url(self.store_url) if self.store_url else PlanStore(self.db_path)

    def new_store(self, **kwargs: Any) -> PlanStore:
        """Another store object on the harness's store (e.g. another ``write_source``)."""
        return (PlanStore.from_url(self.store_url, **kwargs) if self.store_url
                else PlanStore(self.db_path, **kwargs))

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
