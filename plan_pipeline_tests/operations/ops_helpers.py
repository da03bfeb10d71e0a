"""Helpers for the operations tests (retention, backup, exports, inbox, replanning)."""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore, PlanStoreError


def operations_defs(db_path: str | Path) -> dg.Definitions:
    """The project's definitions (every domain: plan, maintenance, inbox, replanning, legacy import) on ``db_path``."""
    from plan_pipeline.definitions import build_definitions

    return build_definitions(str(db_path))


def ensure_sample(store: PlanStore, sample_dir: Path, label: str = "sample") -> None:
    if not store.path.exists() or store.get_input_set(label) is None:
        import_input_dir(store, sample_dir, label)


def make_version(store: PlanStore, sample_dir: Path, version_id: str, **params) -> None:
    ensure_sample(store, sample_dir)
    store.create_version(version_id, "sample", PlanningParameters(**params))


def set_created_at(store: PlanStore, version_id: str, when: datetime, *, status: str | None = None,
                   read_only: bool | None = None, input_set: str | None = "keep") -> None:
    """Change a version's immutable fields behind the store's back (tests only)."""
    with duckdb.connect(str(store.path)) as con:
        con.execute("UPDATE plan_versions SET created_at = ? WHERE version_id = ?", [when, version_id])
        if status is not None:
            con.execute("UPDATE plan_versions SET status = ? WHERE version_id = ?", [status, version_id])
        if read_only is not None:
            con.execute("UPDATE plan_versions SET read_only = ? WHERE version_id = ?", [read_only, version_id])
        if input_set != "keep":
            con.execute("UPDATE plan_versions SET input_set = ? WHERE version_id = ?", [input_set, version_id])


def all_rows(db_path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, in a canonical order."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name").fetchall()]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}


def version_rows(db_path: Path, version_id: str, tables) -> dict[str, list[tuple]]:
    """Every row of a version per table, in a stable order. The audit trail's own record of a
    removal and a restore (``delete`` / ``restore`` events, which outlive the version by design)
    is left out, so a restored version compares equal to what was archived."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        return {t: con.execute(
            f'SELECT * FROM "{t}" WHERE version_id = ?'
            + (" AND event_type NOT IN ('delete', 'restore')" if t == "plan_override_events" else "")
            + " ORDER BY ALL", [version_id]).fetchall()
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


def build_materialized_store(folder: Path, sample_dir: Path, version_id: str = "v1", **params) -> Path:
    """A plan store with one materialized version (``params``: its planning parameters), built
    once (in its own home) and copied per test."""
    import pytest

    from plan_pipeline.cli.environment import resolve_environment
    from plan_pipeline.orchestration.plan.launch import materialize_version, prepare_dagster_home

    home = folder / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLAN_PIPELINE_HOME", str(home))
        mp.setenv("PLAN_PIPELINE_DB", str(home / "plan_store.duckdb"))
        mp.setenv("DAGSTER_HOME", str(home / "dagster_home"))
        env = resolve_environment(None, None)
        prepare_dagster_home(env.dagster_home)
        make_version(env.store, sample_dir, version_id, **params)
        assert materialize_version(env.instance(), env.store, version_id).success
    return home / "plan_store.duckdb"


def copy_store(template: Path, target: Path) -> PlanStore:
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return PlanStore(target)
