"""A server's kept-open store file: cheap connections, and the file handed over to a waiting process."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import duckdb
import pytest

from plan_pipeline.store import PlanStore, PlanStoreBusyError
from plan_pipeline.store.connection import open_connection, writer_is_waiting, writer_waiting_marker
from plan_pipeline.store.shared_database import IDLE_RELEASE_SECONDS, SharedDatabase

pytestmark = pytest.mark.duckdb_only("a server's kept-open DuckDB file and its hand-over (PostgreSQL has no file)")

WRITER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from plan_pipeline.store.connection import open_connection
started = time.monotonic()
con = open_connection(sys.argv[1], retry_seconds=60)
con.execute("INSERT INTO probe VALUES (42)")
con.close()
print(f"{time.monotonic() - started:.3f}", flush=True)
"""


@pytest.fixture
def served(tmp_path):
    path = tmp_path / "store.duckdb"
    PlanStore(path).initialise()
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE probe (x INTEGER)")
    database = SharedDatabase(path, lock_wait_seconds=5)
    yield path, database
    database.close()


def _store(path, database):
    return PlanStore(path, lock_wait_seconds=database.lock_wait_seconds, write_source="api", database=database)


def test_the_file_stays_open_between_requests_and_reads_see_every_commit(served):
    path, database = served
    assert database.kept_open is False
    assert _store(path, database).schema_version() >= 6
    assert database.kept_open is True and database.migrated is True
    with database.connection() as con:
        con.execute("INSERT INTO probe VALUES (1)")
    with database.connection() as con:
        assert con.execute("SELECT sum(x) FROM probe").fetchone()[0] == 1
    # in this process a read-only open of the served file is read-write (DuckDB refuses to mix)
    con = open_connection(path, read_only=True)
    assert con.execute("SELECT count(*) FROM probe").fetchone()[0] == 1
    con.close()


def test_an_idle_server_lets_go_of_the_file(served):
    path, database = served
    _store(path, database).schema_version()
    assert database.kept_open
    time.sleep(IDLE_RELEASE_SECONDS + 0.5)
    assert not database.kept_open
    other = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
                            str(path)], capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr


def test_a_waiting_writer_gets_the_file_while_requests_keep_coming(served):
    """A second process writes while request threads hammer the kept file: it waits at most a
    moment, its row is there, and every request either succeeded or was refused as busy."""
    path, database = served
    stop = threading.Event()
    outcomes: list[str] = []

    def requests_loop():
        while not stop.is_set():
            try:
                with database.connection() as con:
                    con.execute("SELECT count(*) FROM probe").fetchone()
                    time.sleep(0.005)
                outcomes.append("ok")
            except PlanStoreBusyError:
                outcomes.append("busy")

    threads = [threading.Thread(target=requests_loop) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        assert database.kept_open
        import plan_pipeline

        root = str(__import__("pathlib").Path(plan_pipeline.__file__).resolve().parent.parent)
        writer = subprocess.run([sys.executable, "-c", WRITER, str(path), root],
                                capture_output=True, text=True, timeout=60)
        assert writer.returncode == 0, writer.stderr
        waited = float(writer.stdout.strip())
        assert waited < 5.0, f"the writer waited {waited:.1f}s for a server that should step aside"
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not writer_is_waiting(path) and not writer_waiting_marker(path).exists()
    with database.connection() as con:
        assert con.execute("SELECT sum(x) FROM probe").fetchone()[0] == 42
    assert outcomes.count("ok") > 10 and set(outcomes) <= {"ok", "busy"}


def test_a_fresh_marker_keeps_new_requests_out_then_busy(served):
    path, database = served
    database.lock_wait_seconds = 0.3
    writer_waiting_marker(path).touch()
    started = time.monotonic()
    with pytest.raises(PlanStoreBusyError, match="wanted by another process"), database.connection():
        pass
    assert 0.3 <= time.monotonic() - started < 3
    writer_waiting_marker(path).unlink()
    with database.connection() as con:
        assert con.execute("SELECT 1").fetchone()[0] == 1
