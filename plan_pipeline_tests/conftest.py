"""Shared fixtures.

Tests that read the reference material in ``../shared/reference`` use the
``reference_dir`` fixture: when the folder is missing they *fail* under CI
(``CI`` set) and skip only on a developer machine without it.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("PLAN_PIPELINE_SHARED", PROJECT_ROOT.parent / "shared"))
REFERENCE_DIR = SHARED_DIR / "reference"


def require_reference() -> Path:
    if not REFERENCE_DIR.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"reference material missing: {REFERENCE_DIR} (required when CI is set)")
        pytest.skip(f"reference material not available at {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture
def reference_dir() -> Path:
    return require_reference()


BUNDLED_SAMPLE = PROJECT_ROOT / "plan_pipeline" / "sample_data" / "sample_plan"


@pytest.fixture
def sample_dir() -> Path:
    """The project's own bundled sample input set."""
    assert BUNDLED_SAMPLE.is_dir(), f"bundled sample missing at {BUNDLED_SAMPLE}"
    return BUNDLED_SAMPLE


@pytest.fixture
def plan_env(homes, tmp_path, monkeypatch, request):
    """A fresh project home: a plan store of the selected backend (the home's DuckDB file, or with
    ``--store-backend=postgres`` a new database) + DAGSTER_HOME with the project's dagster.yaml."""
    from plan_pipeline.cli.environment import resolve_environment
    from plan_pipeline.orchestration.plan.launch import prepare_dagster_home

    home = homes.new(tmp_path / "home", request.addfinalizer)
    home.apply(monkeypatch)
    env = resolve_environment(None, None)
    prepare_dagster_home(env.dagster_home)
    yield env
    home.check_no_duckdb_file()


@pytest.fixture(scope="session")
def homes(request):
    """Makes project homes (and bare stores) on the selected backend: plan_pipeline_tests/project_homes.py."""
    from plan_pipeline_tests.project_homes import HomeFactory

    server = request.getfixturevalue("postgres_url") if request.config.getoption("--store-backend") == "postgres" else None
    factory = HomeFactory(server)
    yield factory
    factory.close()


@pytest.fixture
def home_copy(homes, request):
    """``home_copy(template, target)``: a copy of a template ProjectHome in ``target`` (on
    PostgreSQL with a database of its own, dropped after the test)."""
    return lambda template, target: homes.copy(template, target, request.addfinalizer)


STORE_BACKENDS = ("duckdb", "postgres")
#: Tests that pass on both store backends: ``--store-backend=postgres`` runs these (and only these).
BOTH_BACKENDS = "both_backends"


def pytest_configure(config):
    """A test process started with SIGINT ignored (a script's background job) gets Python's
    handler back: Dagster gives SIGTERM the SIGINT handler, so an ignored SIGINT would leave
    SIGTERM ignored too after a run in this process, inherited by the compute-log ``tail``
    processes each step starts and stops with SIGTERM (each stop then waits 30 s, and leaks)."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser):
    parser.addoption(
        "--store-backend", choices=STORE_BACKENDS, default="duckdb",
        help="the plan store backend of the `store` fixture (default duckdb). With postgres, only the tests "
             f"marked {BOTH_BACKENDS} run (the rest are deselected: not yet ported, docs/operations.md); "
             "the PostgreSQL server is started by the postgres_url fixture",
    )


#: Tests of something only the DuckDB backend has (its file, its lock): ``duckdb_only("why")``;
#: ``--store-backend=postgres`` leaves them out even in a ``both_backends`` module.
DUCKDB_ONLY = "duckdb_only"


def _runs_on_postgres(item) -> bool:
    return item.get_closest_marker(BOTH_BACKENDS) is not None and item.get_closest_marker(DUCKDB_ONLY) is None


def pytest_collection_modifyitems(config, items):
    for item in items:
        marker = item.get_closest_marker(DUCKDB_ONLY)
        if marker is not None and not (marker.args and str(marker.args[0]).strip()):
            raise pytest.UsageError(f"{item.nodeid}: duckdb_only needs the reason as its argument")
    if config.getoption("--store-backend") != "postgres":
        return
    kept = [item for item in items if _runs_on_postgres(item)]
    left = [item for item in items if not _runs_on_postgres(item)]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept
    config.stash[_LEFT_OUT] = left


_LEFT_OUT = pytest.StashKey[list]()


def pytest_report_header(config):
    return f"plan store backend: {config.getoption('--store-backend')}"


def pytest_terminal_summary(terminalreporter, config):
    """On PostgreSQL: what was left out and why (DuckDB-only reasons; tests not marked both_backends, by module)."""
    left = config.stash.get(_LEFT_OUT, None)
    if not left:
        return
    reasons: dict[str, int] = {}
    for item in left:
        marker = item.get_closest_marker(DUCKDB_ONLY)
        why = f"duckdb_only: {marker.args[0]}" if marker else f"not marked both_backends ({item.path.parent.name}/{item.path.name})"
        reasons[why] = reasons.get(why, 0) + 1
    terminalreporter.section("left out on --store-backend=postgres")
    for why, count in sorted(reasons.items()):
        terminalreporter.write_line(f"{count:4d}  {why}")


@pytest.fixture
def store_backend(request) -> str:
    return request.config.getoption("--store-backend")


@pytest.fixture
def postgres_store_url(request) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the session's server (dropped afterwards)."""
    from plan_pipeline.store.backends.postgres import create_database, drop_database

    server = request.getfixturevalue("postgres_url")
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = create_database(server, name)
    try:
        yield url
    finally:
        drop_database(server, name)


@pytest.fixture
def store(tmp_path, request):
    """An empty plan store of the selected backend (``--store-backend``): a DuckDB file in the
    test's folder, or a fresh PostgreSQL database."""
    from plan_pipeline.store import PlanStore
    from plan_pipeline.store.rules import parse_store_url

    if request.config.getoption("--store-backend") == "postgres":
        return PlanStore(location=parse_store_url(request.getfixturevalue("postgres_store_url")))
    return PlanStore(tmp_path / "store.duckdb")


def require_servers(*names: str) -> None:
    """Fail (CI) or skip (a developer machine) when Debian's server packages are missing."""
    from plan_pipeline.deployment.local_services import missing_servers

    missing = missing_servers(*names)
    if missing:
        message = ("needs " + "; ".join(missing) + ". `.ci/run` installs them; on a developer machine: "
                   "apt-get install postgresql redis-server")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server on loopback for the test session (temporary data, stopped afterwards)."""
    require_servers("postgresql")
    from plan_pipeline.deployment.local_services import start_postgres

    with start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    return postgres_server.url


@pytest.fixture(scope="session")
def redis_server():
    """One Redis server on loopback for the test session (nothing persisted, stopped afterwards)."""
    require_servers("redis")
    from plan_pipeline.deployment.local_services import start_redis

    with start_redis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url
