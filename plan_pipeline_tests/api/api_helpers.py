"""Helpers of the Plans API tests: a planned project home (built once per session, copied per
test), one API key per role, a FastAPI test client on it."""
from __future__ import annotations

import shutil
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


def build_planned_home(home: Path) -> Path:
    """Import the bundled sample, create and plan ``base``, create ``blank``; returns ``home``."""
    from plan_pipeline_tests.exports.report_helpers import plan_home

    env = plan_home(home, {PLANNED_VERSION: (BUNDLED_SAMPLE, INPUT_SET, PlanningParameters())})
    env.store.create_version(BLANK_VERSION, INPUT_SET, PlanningParameters())
    return home


@dataclass
class ApiHarness:
    """A copy of the planned home with a test client and one key per role (``keys[role]``)."""

    home: Path
    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.home / "plan_store.duckdb"

    @property
    def store(self) -> PlanStore:
        return PlanStore(self.db_path)

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


def copy_home(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target


def api_harness(home: Path, **settings: Any) -> ApiHarness:
    store = PlanStore(home / "plan_store.duckdb")
    keys = {role: store.create_api_key(f"{role}-key", role) for role in ROLES}
    app = create_app(ApiSettings(db_path=store.path, dagster_home=home / "dagster_home", **settings))
    return ApiHarness(home=home, client=TestClient(app, raise_server_exceptions=False), keys=keys)
