"""The Plans API's front door: keys and roles, the JSON error shape, the bounded lock wait, serve.

Every test runs on both store backends except the DuckDB file lock's 503 (PostgreSQL has no file
lock: its readers never wait for a writer, test_psi.py's API-while-a-run-writes test)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from plan_pipeline.api.roles import ACTION_ROLES, ROLES
from plan_pipeline.store import PlanStoreBusyError
from plan_pipeline.store.api_keys import hash_api_key

both_backends = pytest.mark.both_backends


@both_backends
def test_health_needs_no_key_and_names_the_schema(api):
    answer = api.client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "schema_version": api.store.schema_version()}


@both_backends
def test_no_key_is_401_and_an_unknown_key_is_401(api):
    missing = api.client.get("/keys")
    assert missing.status_code == 401
    assert missing.json()["error"] == {"code": "unauthorized",
                                       "message": "an API key is required: send it as the X-API-Key header"}
    wrong = api.client.get("/keys", headers={"X-API-Key": "ppk_not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "unknown or revoked API key"


@both_backends
@pytest.mark.parametrize("role", ROLES)
def test_only_admin_manages_keys_and_403_names_the_roles(api, role):
    answer = api.get("/keys", role=role)
    if role == "admin":
        assert answer.status_code == 200
        assert sorted(k["name"] for k in answer.json()) == sorted(f"{r}-key" for r in ROLES)
    else:
        assert answer.status_code == 403
        assert answer.json()["error"]["message"] == (
            f"the key '{role}-key' has role {role}; manage_keys needs one of: admin")


@both_backends
def test_key_is_shown_once_stored_as_hash_and_works_by_header_bearer_and_cookie(api):
    created = api.post("/keys", role="admin", json={"name": "dash", "role": "viewer"})
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert key.startswith("ppk_") and body["key_prefix"] == key[:8] and body["created_by"] == "admin-key"
    listed = api.get("/keys", role="admin").json()
    assert all("key" not in row and "key_hash" not in row for row in listed)
    assert api.store.api_key_principal(key) == ("dash", "viewer")
    with api.store.connect() as con:  # read-write: the app keeps a DuckDB file read-write in this process
        stored = con.execute("SELECT key_hash FROM plan_api_keys WHERE name = 'dash'").fetchone()[0]
    assert stored == hash_api_key(key) and key not in stored
    assert api.client.get("/keys", headers={"Authorization": f"Bearer {key}"}).status_code == 403  # viewer
    api.client.cookies.set("plan_api_key", key)
    assert api.client.get("/keys").status_code == 403
    api.client.cookies.clear()


@both_backends
def test_revoked_key_is_refused_and_stays_listed(api):
    key = api.post("/keys", role="admin", json={"name": "temp", "role": "admin"}).json()["key"]
    assert api.client.get("/keys", headers={"X-API-Key": key}).status_code == 200
    revoked = api.delete("/keys/temp")
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "admin-key"
    assert api.client.get("/keys", headers={"X-API-Key": key}).status_code == 401
    again = api.delete("/keys/temp")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert api.delete("/keys/ghost").status_code == 404


@pytest.mark.parametrize("body, message", [
    ({"name": "x", "role": "owner"}, "unknown role 'owner': choose one of viewer, planner, approver, admin"),
    ({"name": "../etc", "role": "viewer"}, "invalid API key name '../etc'"),
])
@both_backends
def test_bad_key_requests_are_400_with_the_rule(api, body, message):
    answer = api.post("/keys", role="admin", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request" and answer.json()["error"]["message"].startswith(message)


@both_backends
def test_schema_violations_and_unknown_routes_answer_the_json_shape(api):
    bad = api.post("/keys", role="admin", json={"name": "only-name"})
    assert bad.status_code == 422
    assert bad.json()["error"] == {"code": "validation_error", "message": "role: Field required"}
    garbled = api.client.post("/keys", headers={**api.headers("admin"), "Content-Type": "application/json"},
                              content=b'{"name": ')
    assert garbled.status_code == 422
    assert garbled.json()["error"]["message"].startswith("the request body is not valid JSON (")
    assert "at character 9" in garbled.json()["error"]["message"]
    nowhere = api.client.get("/no/such/route")
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"


@both_backends
def test_every_action_a_route_checks_has_roles_and_admin_may_do_all():
    assert set(ACTION_ROLES) >= {"read", "edit", "submit", "create", "run", "approve", "reject", "manage_keys"}
    assert all("admin" in roles for roles in ACTION_ROLES.values())


@pytest.mark.duckdb_only("the DuckDB file lock held by another process (PostgreSQL: test_api_on_postgres.py)")
def test_a_store_held_by_another_process_is_503_with_retry_after(fresh_home):
    """A real second process holds the DuckDB file: the request waits the bounded time, then 503.
    DuckDB only: a PostgreSQL database has no file lock."""
    from plan_pipeline_tests.api.api_helpers import api_harness

    harness = api_harness(fresh_home(), lock_wait_seconds=0.5, retry_after_seconds=3)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)",
         str(harness.db_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        answer = harness.get("/keys", role="admin")
        waited = time.monotonic() - started
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "3"
        assert answer.json()["error"]["code"] == "store_busy"
        assert 0.5 <= waited < 10
    finally:
        holder.kill()
        holder.wait()
    assert harness.get("/keys", role="admin").status_code == 200


@both_backends
def test_busy_error_is_a_store_error_the_cli_already_reports():
    assert issubclass(PlanStoreBusyError, Exception)
    assert PlanStoreBusyError("x", retry_after_seconds=4).retry_after_seconds == 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@both_backends
def test_serve_binds_loopback_and_answers_with_a_key_from_apikey_create(fresh_home):
    env = {k: v for k, v in os.environ.items() if k != "PLAN_STORE_URL"}
    env.update(fresh_home().env)  # PLAN_STORE_URL on PostgreSQL
    cli = [sys.executable, "-m", "plan_pipeline.cli.main"]
    created = subprocess.run([*cli, "apikey", "create", "--name", "ops", "--role", "admin"],
                             env=env, capture_output=True, text=True, check=True)
    key = created.stdout.strip()
    assert key.startswith("ppk_") and "printed once" in created.stderr
    port = _free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--log-level", "warning"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
        assert health.status_code == 200
        listed = requests.get(f"http://127.0.0.1:{port}/keys", headers={"X-API-Key": key}, timeout=10)
        assert listed.status_code == 200 and "ops" in [k["name"] for k in listed.json()]
        assert requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).json()["info"]["title"] == (
            "plan-pipeline Plans API")
        out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout \
            if shutil_which("ss") else ""
        if out:
            listening = [line for line in out.splitlines() if f":{port} " in line]
            assert listening and all("127.0.0.1:" in line for line in listening), listening
    finally:
        server.terminate()
        server.wait(timeout=30)


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)
