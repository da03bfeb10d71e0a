"""Waiting for the plan store file: reported, bounded, and the error names the holder."""
from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest

from plan_pipeline.store import PlanStoreError
from plan_pipeline.store.connection import open_connection

pytestmark = pytest.mark.duckdb_only("waiting for the DuckDB file lock")


def test_a_store_held_by_another_process_is_waited_for_then_refused_naming_the_holder(tmp_path, caplog):
    path = tmp_path / "store.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; con = duckdb.connect({str(path)!r}); "
                               "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="plan_pipeline.store"), pytest.raises(PlanStoreError) as refused:
            open_connection(path, retry_seconds=3.0)
        assert 3.0 <= time.monotonic() - started < 12
        assert f"process {holder.pid}" in str(refused.value) and "gave up after" in str(refused.value)
        assert any(f"process {holder.pid}" in r.getMessage() and "waiting for the plan store" in r.getMessage()
                   for r in caplog.records)
    finally:
        holder.kill()
        holder.wait()
    open_connection(path).close()  # free again once the holder is gone


def test_a_session_shares_one_connection_and_a_bulk_write_in_it_gives_the_memory_limit_back(tmp_path, monkeypatch):
    import duckdb

    from plan_pipeline.store import PlanStore

    store = PlanStore(tmp_path / "store.duckdb")
    store.initialise()
    opened = []
    real_connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: opened.append(a) or real_connect(*a, **k))
    with store.session():
        with store.connect() as con:
            default = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        with store.write(bulk=True) as con:
            assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] != default
        with store.snapshot() as tx:
            assert tx is not None
        with store.connect(read_only=True) as con:  # reads after the bulk write: DuckDB's default again
            assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == default
    assert len(opened) == 1  # one file open for the whole session
