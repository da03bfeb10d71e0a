"""Waiting for the plan store file: reported, bounded, and the error names the holder."""
from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest

from plan_pipeline.store import PlanStoreError
from plan_pipeline.store.connection import open_connection


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
