"""Resolve the project home, the plan store and the Dagster instance the CLI works on.

One folder holds both (default ``./.plan_pipeline``): ``plan_store.duckdb`` and
``dagster_home/`` with the project's ``dagster.yaml``. ``dagster dev`` started through
``plan-pipeline ui`` (or with the same ``DAGSTER_HOME``) sees every CLI run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plan_pipeline.cli.errors import CliError, UsageError
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.rules import DB_ENV, HOME_ENV, STORE_URL_ENV, StoreLocation, project_home, store_location

if TYPE_CHECKING:  # the store (DuckDB) loads when a command opens it, not to parse arguments
    from plan_pipeline.store import PlanStore


def require_folder_location(path: Path, what: str) -> Path:
    """Refuse a folder path that is a file, or that lies under a file (it could never be created)."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            if not candidate.is_dir():
                where = "is a file" if candidate == path else f"cannot be created: {candidate} is a file"
                raise CliError(f"{what} {path} {where}, not a folder")
            return path
    return path


def require_file_location(path: Path, what: str) -> Path:
    """Refuse a file path that is a folder, or whose folder could never be created."""
    if path.is_dir():
        raise CliError(f"{what} {path} is a folder, not a file")
    require_folder_location(path.parent, f"the folder of {what}")
    return path


@dataclass
class CliEnvironment:
    home: Path
    #: The DuckDB file; on PostgreSQL the database's description (no file: ``store_exists()`` says True)
    db_path: Path
    dagster_home: Path
    #: A PostgreSQL store (``$PLAN_STORE_URL=postgresql://...``); None: the DuckDB file ``db_path``
    postgres: StoreLocation | None = None

    @property
    def store_description(self) -> str:
        """The store for messages (a PostgreSQL URL without its password)."""
        return self.postgres.describe() if self.postgres is not None else str(self.db_path)

    @property
    def store_setting(self) -> str:
        """The environment setting naming the store, for a command line shown to the user (no password)."""
        return f"{STORE_URL_ENV}={self.store_description}" if self.postgres is not None else f"{DB_ENV}={self.db_path}"

    def store_exists(self) -> bool:
        return self.postgres is not None or self.db_path.exists()

    def _check_home_for(self, path: Path) -> None:
        if path.is_relative_to(self.home):
            require_folder_location(self.home, "project home (--home, $PLAN_PIPELINE_HOME)")

    @property
    def store(self) -> PlanStore:
        from plan_pipeline.store import PlanStore

        if self.postgres is not None:
            return PlanStore(location=self.postgres)
        self._check_home_for(self.db_path)
        require_file_location(self.db_path, "plan store (--db, $PLAN_PIPELINE_DB)")
        return PlanStore(self.db_path)

    def check_dagster_home(self) -> Path:
        """Refuse a ``$DAGSTER_HOME`` that can never be a folder, creating nothing."""
        self._check_home_for(self.dagster_home)
        return require_folder_location(self.dagster_home, "Dagster home ($DAGSTER_HOME)")

    def prepare_dagster_home(self) -> Path:
        """Create ``$DAGSTER_HOME`` with the project's dagster.yaml (refusing a path that cannot be a folder)."""
        from plan_pipeline.orchestration.instance import prepare_dagster_home

        prepare_dagster_home(self.check_dagster_home())
        return self.dagster_home

    def instance(self):
        from plan_pipeline.orchestration.instance import get_instance

        self.prepare_dagster_home()
        return get_instance()

    def recovered_instance(self, log=None):
        """The Dagster instance after crash recovery: runs whose process is gone are marked
        failed, their pool claims freed and their plan_jobs / plan_backfill_runs rows closed.
        Used before any command that launches runs or judges whether runs are in progress."""
        from plan_pipeline.orchestration.plan.run_recovery import recover_orphaned_runs

        instance = self.instance()
        recover_orphaned_runs(instance, self.store if self.store_exists() else None, log=log)
        return instance


def resolve_environment(home: str | None, db: str | None) -> CliEnvironment:
    for flag, value in (("--home", home), ("--db", db)):
        if value is not None and not value.strip():
            raise UsageError(f"{flag}: an empty path is not allowed")
    if home:
        os.environ[HOME_ENV] = str(Path(home).resolve())
    home_path = project_home()
    if db:
        db_path = Path(db).resolve()
    else:
        try:
            location = store_location()  # $PLAN_STORE_URL, else $PLAN_PIPELINE_DB, else the home's file
        except PlanStoreError as exc:
            raise UsageError(str(exc)) from None
        if location.is_postgres:
            # the processes this one starts (Dagster steps, the API) read the same $PLAN_STORE_URL
            dagster_home = Path(os.environ.get("DAGSTER_HOME") or home_path / "dagster_home").resolve()
            os.environ["DAGSTER_HOME"] = str(dagster_home)
            return CliEnvironment(home_path, Path(location.describe()), dagster_home, postgres=location)
        assert location.path is not None
        db_path = location.path
    os.environ[DB_ENV] = str(db_path)
    if os.environ.get(STORE_URL_ENV):
        os.environ[STORE_URL_ENV] = f"duckdb://{db_path}"  # the processes this one starts agree on the file
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home_path / "dagster_home").resolve()
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return CliEnvironment(home_path, db_path, dagster_home)
