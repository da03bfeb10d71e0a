"""Resolve the project home, the plan store and the Dagster instance the CLI works on.

One folder holds both (default ``./.plan_pipeline``): ``plan_store.duckdb`` and
``dagster_home/`` with the project's ``dagster.yaml``. ``dagster dev`` started through
``plan-pipeline ui`` (or with the same ``DAGSTER_HOME``) sees every CLI run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from plan_pipeline.store import PlanStore
from plan_pipeline.store.repository import DB_ENV, HOME_ENV, project_home


@dataclass
class CliEnvironment:
    home: Path
    db_path: Path
    dagster_home: Path

    @property
    def store(self) -> PlanStore:
        return PlanStore(self.db_path)

    def instance(self):
        from plan_pipeline.orchestration.launch import get_instance, prepare_dagster_home

        prepare_dagster_home(self.dagster_home)
        return get_instance()

    def recovered_instance(self, log=None):
        """The Dagster instance after crash recovery: runs whose process is gone are marked
        failed, their pool claims freed and their plan_jobs / plan_backfill_runs rows closed.
        Used before any command that launches runs or judges whether runs are in progress."""
        from plan_pipeline.orchestration.run_recovery import recover_orphaned_runs

        instance = self.instance()
        recover_orphaned_runs(instance, self.store if self.db_path.exists() else None, log=log)
        return instance


def resolve_environment(home: str | None, db: str | None) -> CliEnvironment:
    if home:
        os.environ[HOME_ENV] = str(Path(home).resolve())
    home_path = project_home()
    db_path = Path(db).resolve() if db else Path(os.environ.get(DB_ENV) or home_path / "plan_store.duckdb").resolve()
    os.environ[DB_ENV] = str(db_path)
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home_path / "dagster_home").resolve()
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return CliEnvironment(home_path, db_path, dagster_home)
