"""The settings of a distributed deployment (docs/deployment.md): the Dagster instance's storage on
PostgreSQL and the store pool per plan-store backend (rendered dagster.yaml), the Celery executor
and the worker command line; and a ledger hook inside a Celery step using its step's pool slot."""
from __future__ import annotations

import uuid

import dagster as dg
import pytest
import yaml

from plan_pipeline.deployment.celery_worker import CELERY_APP, worker_command
from plan_pipeline.orchestration.executor import (
    CELERY_BACKEND_ENV,
    CELERY_BROKER_ENV,
    CELERY_VISIBILITY_TIMEOUT_ENV,
    DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
    celery_app_config,
    celery_backend_url,
    celery_visibility_timeout,
    plan_executor,
)
from plan_pipeline.orchestration.instance import (
    DAGSTER_STORAGE_URL_ENV,
    POSTGRES_STORE_POOL_LIMIT,
    prepare_dagster_home,
    project_dagster_yaml,
)
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL
from plan_pipeline.store.rules import STORE_URL_ENV

PG_URL = "postgresql://plan:secret@db.example:5432/dagster"


def _rendered(environ: dict[str, str]) -> dict:
    return yaml.safe_load(project_dagster_yaml(environ))


def test_default_instance_is_sqlite_with_the_single_writer_pool():
    config = _rendered({})
    assert "storage" not in config
    assert config["concurrency"]["pools"] == {"default_limit": 1}
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 4
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert _rendered({STORE_URL_ENV: "duckdb:///srv/plan.duckdb"})["concurrency"]["pools"] == {"default_limit": 1}


def test_postgres_storage_names_the_variable_never_the_url():
    text = project_dagster_yaml({DAGSTER_STORAGE_URL_ENV: PG_URL})
    assert yaml.safe_load(text)["storage"] == {"postgres": {"postgres_url": {"env": DAGSTER_STORAGE_URL_ENV}}}
    assert "secret" not in text and "db.example" not in text
    # the queue and the pool stay as they are
    assert yaml.safe_load(text)["concurrency"]["pools"] == {"default_limit": 1}


def test_a_postgres_plan_store_relaxes_the_store_pool():
    config = _rendered({STORE_URL_ENV: "postgresql://plan@127.0.0.1:5432/plan_store"})
    assert config["concurrency"]["pools"] == {"default_limit": POSTGRES_STORE_POOL_LIMIT}
    assert POSTGRES_STORE_POOL_LIMIT > 1


@pytest.mark.parametrize(("name", "value", "message"), [
    (DAGSTER_STORAGE_URL_ENV, "mysql://u@h/db", "expected a postgresql:// URL"),
    (STORE_URL_ENV, "sqlite:///x.db", "expected duckdb:///path or postgresql://"),
])
def test_a_wrong_url_is_refused_with_the_setting_named(name, value, message):
    with pytest.raises(RuntimeError, match=message) as info:
        project_dagster_yaml({name: value})
    assert name in str(info.value)


def test_our_copy_follows_the_environment_a_users_file_is_kept(tmp_path):
    home = prepare_dagster_home(tmp_path / "dh", environ={})
    assert "storage:" not in (home / "dagster.yaml").read_text()
    prepare_dagster_home(home, environ={DAGSTER_STORAGE_URL_ENV: PG_URL})
    assert f"env: {DAGSTER_STORAGE_URL_ENV}" in (home / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prepare_dagster_home(home, environ={})
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_dagster_opens_the_rendered_instance_on_postgres(postgres_server, tmp_path, monkeypatch):
    url = postgres_server.create_database(f"dagster_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv(DAGSTER_STORAGE_URL_ENV, url)
    home = prepare_dagster_home(tmp_path / "dh")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert instance.event_log_storage.get_pool_config().default_pool_limit == 1
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        run = instance.create_run_for_job(dg.GraphDefinition(name="noop", node_defs=[]).to_job(), run_config={})
        assert [r.run_id for r in instance.get_runs()] == [run.run_id]


def test_executor_is_in_process_unless_a_broker_is_set():
    assert plan_executor({}) is dg.in_process_executor
    assert plan_executor({CELERY_BROKER_ENV: "redis://127.0.0.1:6379/0"}).name == "celery"
    assert celery_backend_url({CELERY_BROKER_ENV: "redis://b/0"}) == "redis://b/0"
    assert celery_backend_url({CELERY_BROKER_ENV: "redis://b/0", CELERY_BACKEND_ENV: "redis://r/1"}) == "redis://r/1"


def test_visibility_timeout_setting():
    assert celery_visibility_timeout({}) == DEFAULT_VISIBILITY_TIMEOUT_SECONDS == 1800
    assert celery_visibility_timeout({CELERY_VISIBILITY_TIMEOUT_ENV: " "}) == 1800
    assert celery_visibility_timeout({CELERY_VISIBILITY_TIMEOUT_ENV: " 45 "}) == 45
    for bad in ("0", "-5", "1.5", "ten", "1e3"):
        with pytest.raises(RuntimeError, match=f"{CELERY_VISIBILITY_TIMEOUT_ENV}=.*whole number of seconds"):
            celery_visibility_timeout({CELERY_VISIBILITY_TIMEOUT_ENV: bad})


@pytest.mark.parametrize(("value", "timeout", "interval"), [(None, 1800, 10), ("30", 30, 10), ("12", 12, 4), ("2", 2, 1)])
def test_the_broker_hands_back_a_dead_workers_step_after_the_timeout(value, timeout, interval):
    config = celery_app_config({} if value is None else {CELERY_VISIBILITY_TIMEOUT_ENV: value})
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    options = config["broker_transport_options"]
    assert options["visibility_timeout"] == timeout
    assert options["unacked_restore_interval"] == interval and options["unacked_restore_throttle"] == 1
    assert options["max_retries"] == 3  # dagster-celery's connection retries are kept


def test_the_executor_sends_with_the_workers_settings(monkeypatch):
    environ = {CELERY_BROKER_ENV: "redis://127.0.0.1:6379/0", CELERY_VISIBILITY_TIMEOUT_ENV: "40"}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    resolved = plan_executor(environ).config_schema.resolve_config({})
    assert resolved.success, resolved.errors
    # the coordinator's Celery app gets the same settings as the workers' app (celery_app)
    assert resolved.value["config"]["config_source"] == celery_app_config(environ)
    assert resolved.value["config"]["config_source"]["broker_transport_options"]["visibility_timeout"] == 40


def test_the_code_location_uses_celery_when_configured(monkeypatch):
    from plan_pipeline.definitions import build_definitions

    monkeypatch.setenv(CELERY_BROKER_ENV, "redis://127.0.0.1:6379/0")
    job = build_definitions().resolve_job_def("plan_job")
    assert job.executor_def.name == "celery"
    monkeypatch.delenv(CELERY_BROKER_ENV)
    assert build_definitions().resolve_job_def("plan_job").executor_def.name == "in_process"


def test_worker_command_line():
    command = worker_command("w1", concurrency=2, environ={CELERY_BROKER_ENV: "redis://127.0.0.1:6379/0"})
    assert command[1:6] == ["-m", "celery", "-A", CELERY_APP, "worker"]
    joined = " ".join(command)
    assert "--hostname w1@%h" in joined and "--queues dagster" in joined and "--concurrency 2" in joined
    with pytest.raises(RuntimeError, match=CELERY_BROKER_ENV):
        worker_command("w1", environ={})
    with pytest.raises(ValueError, match="worker name"):
        worker_command("w1@host", environ={CELERY_BROKER_ENV: "redis://127.0.0.1:6379/0"})


def test_cli_worker_start_without_a_broker_says_what_is_missing(tmp_path, monkeypatch, capsys):
    from plan_pipeline.cli.main import main

    monkeypatch.delenv(CELERY_BROKER_ENV, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    assert main(["--home", str(tmp_path / "home"), "worker", "start", "--name", "w1"]) == 1
    assert CELERY_BROKER_ENV in capsys.readouterr().err


def test_a_ledger_hook_uses_the_slot_its_step_holds(plan_env):
    from plan_pipeline.orchestration.plan.run_ledger_hooks import PoolBusy, pool_slot

    instance = dg.DagsterInstance.get()
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
    run_id = uuid.uuid4().hex
    # the Celery executor holds the step's slot until the worker has returned the step's events
    assert storage.claim_concurrency_slot(DUCKDB_POOL, run_id, "planning_inputs").is_claimed
    # a second slot of a 1-slot pool: never
    with pytest.raises(PoolBusy), pool_slot(instance, run_id, "planning_inputs:run_ledger", wait_seconds=0.3):
        pass
    with pool_slot(instance, run_id, "planning_inputs:run_ledger", wait_seconds=0.3,
                   step_key="planning_inputs") as claimed:
        assert claimed
    # the step's own claim is left to the executor
    assert storage.check_concurrency_claim(DUCKDB_POOL, run_id, "planning_inputs").is_claimed
    storage.free_concurrency_slot_for_step(run_id, "planning_inputs")
    # once the step's slot is freed (the in-process executor, at the step's success) the hook claims one
    with pool_slot(instance, run_id, "planning_inputs:run_ledger", wait_seconds=5, step_key="planning_inputs") as claimed:
        assert claimed
    assert storage.get_concurrency_info(DUCKDB_POOL).active_slot_count == 0


def test_a_step_waiting_behind_its_own_runs_step_is_progress_not_a_stall(plan_env):
    from plan_pipeline.orchestration.plan.launch import RunAborted, RunWatcher

    instance = dg.DagsterInstance.get()
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
    job = dg.GraphDefinition(name="noop", node_defs=[]).to_job()
    run_id, other_run = (instance.create_run_for_job(job, run_config={}, status=dg.DagsterRunStatus.STARTED).run_id
                         for _ in range(2))
    said: list[str] = []
    watcher = RunWatcher(instance, "token", None, said.append, wait_seconds=0.0)
    watcher.run_id = run_id
    # Celery executor: one step of the run holds the slot, the next one of the same run waits
    assert storage.claim_concurrency_slot(DUCKDB_POOL, run_id, "detail_plan").is_claimed
    assert not storage.claim_concurrency_slot(DUCKDB_POOL, run_id, "mrp_plan").is_claimed
    watcher.poll()  # no give-up (the wait bound is 0 s), nothing reported
    assert said == []
    # held by another run: the same wait is reported and bounded
    storage.free_concurrency_slot_for_step(run_id, "detail_plan")
    storage.free_concurrency_slot_for_step(run_id, "mrp_plan")
    assert storage.claim_concurrency_slot(DUCKDB_POOL, other_run, "detail_plan").is_claimed
    assert not storage.claim_concurrency_slot(DUCKDB_POOL, run_id, "mrp_plan").is_claimed
    with pytest.raises(RunAborted, match=f"held by run {other_run}"):
        watcher.poll()
