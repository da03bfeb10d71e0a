"""Helpers for the operations tests (retention, backup, exports, inbox, replanning)."""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline_tests.project_homes import HomeFactory, ProjectHome


def operations_defs(store: PlanStore | str | Path) -> dg.Definitions:
    """The project's definitions (every domain: plan, maintenance, inbox, replanning, legacy import)
    on ``store`` (a plan store of either backend, or a DuckDB file's path)."""
    from plan_pipeline.definitions import build_definitions

    if isinstance(store, PlanStore):
        return build_definitions(store_url=store.location.url)
    return build_definitions(str(store))


def _store(store: PlanStore | str | Path) -> PlanStore:
    """``store``, or the DuckDB store at the path ``store``."""
    return store if isinstance(store, PlanStore) else PlanStore(Path(store))


def ensure_sample(store: PlanStore, sample_dir: Path, label: str = "sample") -> None:
    if not store.exists() or store.get_input_set(label) is None:
        import_input_dir(store, sample_dir, label)


def make_version(store: PlanStore, sample_dir: Path, version_id: str, **params) -> None:
    ensure_sample(store, sample_dir)
    store.create_version(version_id, "sample", PlanningParameters(**params))


def set_created_at(store: PlanStore, version_id: str, when: datetime, *, status: str | None = None,
                   read_only: bool | None = None, input_set: str | None = "keep") -> None:
    """Change a version's immutable fields behind the store's back (tests only)."""
    with store.connect() as con:
        con.execute("UPDATE plan_versions SET created_at = ? WHERE version_id = ?", [when, version_id])
        if status is not None:
            con.execute("UPDATE plan_versions SET status = ? WHERE version_id = ?", [status, version_id])
        if read_only is not None:
            con.execute("UPDATE plan_versions SET read_only = ? WHERE version_id = ?", [read_only, version_id])
        if input_set != "keep":
            con.execute("UPDATE plan_versions SET input_set = ? WHERE version_id = ?", [input_set, version_id])


def _order_all(con, table: str) -> str:
    """``ORDER BY`` every column of ``table`` (DuckDB's ``ORDER BY ALL``; PostgreSQL by position,
    a JSON column by its text: PostgreSQL's ``json`` type has no ordering)."""
    from plan_pipeline.store.backends import is_postgres
    from plan_pipeline.store.table_copy import table_columns

    if not is_postgres(con):
        return "ORDER BY ALL"
    return "ORDER BY " + ", ".join(f'"{name}"::text' if kind == "JSON" else str(i + 1)
                                   for i, (name, kind) in enumerate(table_columns(con, table)))


def _tables(con) -> list[str]:
    """The store's tables: its logical tables (``plan_series`` the view) and the physical tables
    behind the ``plan_series`` view (so a row in the wrong one shows)."""
    from plan_pipeline.store.series_tables import SERIES_TABLE_NAMES
    from plan_pipeline.store.table_copy import user_tables

    names = user_tables(con)
    return sorted(set(names) | ({*SERIES_TABLE_NAMES} if "plan_series" in names else set()))


def all_rows(store: PlanStore | str | Path) -> dict[str, list[tuple]]:
    """Every row of every table, in a canonical order (``store``: a plan store of either backend,
    or a DuckDB file's path)."""
    with _store(store).connect(read_only=True) as con:
        return {t: con.execute(f'SELECT * FROM "{t}" {_order_all(con, t)}').fetchall() for t in _tables(con)}


def version_rows(store: PlanStore | str | Path, version_id: str, tables) -> dict[str, list[tuple]]:
    """Every row of a version per table, in a stable order. The audit trail's own record of a
    removal and a restore (``delete`` / ``restore`` events, which outlive the version by design)
    is left out, so a restored version compares equal to what was archived."""
    with _store(store).connect(read_only=True) as con:
        return {t: con.execute(
            f'SELECT * FROM "{t}" WHERE version_id = ?'
            + (" AND event_type NOT IN ('delete', 'restore')" if t == "plan_override_events" else "")
            + f" {_order_all(con, t)}", [version_id]).fetchall()
            for t in tables}


def run_ops_cli(argv: list[str]) -> int:
    """Run ``plan-pipeline`` with the operations commands: through ``main`` once they are wired in,
    otherwise through a parser holding only them (same dispatch and error handling as ``main``)."""
    from plan_pipeline.cli import main as cli_main
    from plan_pipeline.cli.commands_operations import register_operations_commands
    from plan_pipeline.cli.environment import resolve_environment

    full = cli_main.build_parser()
    sub_action = next(a for a in full._actions if a.__class__.__name__ == "_SubParsersAction")
    if "trim" in sub_action.choices:
        return cli_main.main(argv)
    parser = cli_main._Parser(prog="plan-pipeline")
    parser.add_argument("--home")
    parser.add_argument("--db")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=cli_main._Parser)
    register_operations_commands(sub)
    args = parser.parse_args(argv)
    env = resolve_environment(getattr(args, "home", None), getattr(args, "db", None))
    try:
        return int(args.func(env, args) or 0)
    except (PlanStoreError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def build_materialized_home(homes: HomeFactory, folder: Path, sample_dir: Path, versions=("v1",),
                            **params) -> ProjectHome:
    """A project home (on the selected backend, for the session) with materialized versions
    (``params``: their planning parameters), built once and copied per test (:func:`use_home_copy`)."""
    import pytest

    from plan_pipeline.cli.environment import resolve_environment
    from plan_pipeline.orchestration.plan.launch import materialize_version, prepare_dagster_home

    home = homes.new(folder / "home")
    with pytest.MonkeyPatch.context() as mp:
        home.apply(mp)
        env = resolve_environment(None, None)
        prepare_dagster_home(env.dagster_home)
        for version_id in versions:
            make_version(env.store, sample_dir, version_id, **params)
            assert materialize_version(env.instance(), env.store, version_id).success
    home.check_no_duckdb_file()
    return home


def use_home_copy(template: ProjectHome, target: Path, monkeypatch, home_copy) -> tuple[ProjectHome, Any]:
    """A private copy of ``template`` in ``target`` (``home_copy``: the fixture of that name), this
    process pointed at it (undone after the test); returns it and its CLI environment."""
    from plan_pipeline.cli.environment import resolve_environment

    home = home_copy(template, target)
    home.apply(monkeypatch)
    return home, resolve_environment(None, None)


# Fixtures of the modules that work on copies of one planned sample home (bring them in with
# ``from .ops_helpers import sample_template_home, template_home_copy``: pytest knows them as
# ``template`` and ``plan_env``, the latter shadowing the root conftest's empty home).
@pytest.fixture(scope="module", name="template")
def sample_template_home(tmp_path_factory, homes) -> ProjectHome:
    """The bundled sample, imported and version ``v1`` planned, once per module."""
    from plan_pipeline_tests.conftest import BUNDLED_SAMPLE

    return build_materialized_home(homes, tmp_path_factory.mktemp("template"), BUNDLED_SAMPLE)


@pytest.fixture(name="plan_env")
def template_home_copy(template, tmp_path, monkeypatch, home_copy):
    """A copy of the template home (its store and Dagster instance), this process pointed at it."""
    home, env = use_home_copy(template, tmp_path / "home", monkeypatch, home_copy)
    yield env
    home.check_no_duckdb_file()
