"""Project homes for tests, on the plan store backend the run selected (``--store-backend``).

A home is a folder (the Dagster home, report files, a DuckDB store file) and its plan store: the
folder's ``plan_store.duckdb``, or on ``--store-backend=postgres`` a database of its own on the
session's PostgreSQL server (``PLAN_STORE_URL``). Tests build a home with :class:`HomeFactory`
(the ``homes`` fixture) and point the CLI, Dagster and the API at it with :attr:`ProjectHome.env`,
so one test body runs on either backend.

A module's expensive home (planned once) is a *template*: each test works on
:meth:`HomeFactory.copy` of it: a copy of the folder and, on PostgreSQL, a new database made
from the template's (``CREATE DATABASE ... TEMPLATE``, a file copy).
"""
from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plan_pipeline.store import PlanStore

#: The variables that pick a home, its store and its Dagster instance
HOME_VARS = ("PLAN_PIPELINE_HOME", "PLAN_PIPELINE_DB", "PLAN_STORE_URL", "DAGSTER_HOME")

Cleanup = Callable[[Callable[[], None]], Any]


@dataclass(frozen=True)
class ProjectHome:
    """A project home (its folder) and its plan store: the home's DuckDB file, or the PostgreSQL
    database ``store_url`` (then ``database`` on the server ``server_url``)."""

    home: Path
    store_url: str | None = None
    server_url: str | None = None
    database: str | None = None

    @property
    def db_path(self) -> Path:
        """The DuckDB file (on PostgreSQL: a path where no file appears)."""
        return self.home / "plan_store.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"

    @property
    def is_postgres(self) -> bool:
        return self.store_url is not None

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point the CLI, Dagster and the API at this home and its store."""
        env = {"PLAN_PIPELINE_HOME": str(self.home), "PLAN_PIPELINE_DB": str(self.db_path),
               "DAGSTER_HOME": str(self.dagster_home)}
        if self.store_url:
            env["PLAN_STORE_URL"] = self.store_url
        return env

    def apply(self, monkeypatch) -> None:
        """Point this process at the home (undone with the monkeypatch)."""
        monkeypatch.delenv("PLAN_STORE_URL", raising=False)
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)

    @property
    def store(self) -> PlanStore:
        return self.new_store()

    def new_store(self, **kwargs: Any) -> PlanStore:
        """A store object on the home's store (``kwargs``: e.g. ``write_source``)."""
        return (PlanStore.from_url(self.store_url, **kwargs) if self.store_url
                else PlanStore(self.db_path, **kwargs))

    def check_no_duckdb_file(self) -> None:
        """On PostgreSQL, fail when something fell back to a DuckDB file in the home (it would have
        tested DuckDB instead)."""
        if self.store_url:
            assert not self.db_path.exists(), f"a DuckDB store appeared in a PostgreSQL home: {self.db_path}"

    def subprocess_env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` without any home variable, plus this home's store (for a CLI child given ``--home``)."""
        env = {k: v for k, v in base.items() if k not in HOME_VARS}
        if self.store_url:
            env["PLAN_STORE_URL"] = self.store_url
        return env


@dataclass
class HomeFactory:
    """Makes homes on the selected backend: ``server_url`` None is DuckDB, else a PostgreSQL server
    on which each home gets a database of its own. Databases made without a ``cleanup`` are dropped
    when the factory closes (the end of the test session)."""

    server_url: str | None = None
    _databases: list[str] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return "postgres" if self.server_url else "duckdb"

    def _database(self, name: str, make: Callable[[str], str], cleanup: Cleanup | None) -> str:
        url = make(name)
        if cleanup is None:
            self._databases.append(name)
        else:
            from plan_pipeline.store.backends.postgres import drop_database

            server = self.server_url
            assert server is not None
            cleanup(lambda: drop_database(server, name))
        return url

    def new(self, home: Path, cleanup: Cleanup | None = None, prefix: str = "home") -> ProjectHome:
        """An empty home in the folder ``home`` (created), with an empty database on PostgreSQL."""
        home.mkdir(parents=True, exist_ok=True)
        if self.server_url is None:
            return ProjectHome(home)
        from plan_pipeline.store.backends.postgres import create_database

        name = f"{prefix}_{uuid.uuid4().hex[:16]}"
        server = self.server_url
        url = self._database(name, lambda n: create_database(server, n), cleanup)
        return ProjectHome(home, url, server, name)

    def copy(self, template: ProjectHome, target: Path, cleanup: Cleanup | None = None) -> ProjectHome:
        """A copy of ``template`` in ``target`` (folder copied; on PostgreSQL a new database made
        from the template's: nobody may be connected to the template meanwhile)."""
        shutil.copytree(template.home, target)
        if template.database is None:
            return ProjectHome(target)
        from plan_pipeline.store.backends.postgres import copy_database

        server, source = template.server_url, template.database
        assert server is not None
        name = f"copy_{uuid.uuid4().hex[:16]}"
        url = self._database(name, lambda n: copy_database(server, source, n), cleanup)
        return ProjectHome(target, url, server, name)

    def store_at(self, folder: Path, cleanup: Cleanup | None = None) -> PlanStore:
        """An empty plan store for a test that needs only the store: ``folder / "store.duckdb"``, or
        a new PostgreSQL database (its companion files go to the project home, not ``folder``)."""
        if self.server_url is None:
            return PlanStore(folder / "store.duckdb")
        return self.new(folder, cleanup, prefix="store").store

    def close(self) -> None:
        if self.server_url is None:
            return
        from plan_pipeline.store.backends.postgres import drop_database

        while self._databases:
            drop_database(self.server_url, self._databases.pop())
