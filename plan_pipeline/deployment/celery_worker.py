"""Start a Celery worker that executes plan steps (``plan-pipeline worker start --name w1``).

A worker needs what a step needs (docs/deployment.md): this package installed with the
``cluster`` extra, ``$PLAN_PIPELINE_CELERY_BROKER_URL`` (the broker), the Dagster instance
(``$DAGSTER_HOME`` with the project's dagster.yaml and ``$PLAN_PIPELINE_DAGSTER_STORAGE_URL``) and
the plan store (``$PLAN_PIPELINE_DB`` / ``$PLAN_STORE_URL``). It listens on the ``dagster`` queue
and executes one step at a time per process (``--concurrency``).
"""
from __future__ import annotations

import sys
from collections.abc import Mapping

from plan_pipeline.orchestration.executor import CELERY_BROKER_ENV, CELERY_QUEUE, celery_broker_url

CELERY_APP = "plan_pipeline.deployment.celery_app"


def worker_command(name: str, *, concurrency: int = 1, loglevel: str = "INFO",
                   environ: Mapping[str, str] | None = None) -> list[str]:
    """The command line of worker ``name`` (Celery node ``name@<hostname>``, shown in each step's
    "Executing steps ... in celery worker" event). Refuses to build one without a broker."""
    if celery_broker_url(environ) is None:
        raise RuntimeError(f"{CELERY_BROKER_ENV} is not set: the worker needs the Celery broker's URL "
                           "(e.g. redis://127.0.0.1:6379/0; docs/deployment.md)")
    if not name or "@" in name or any(c.isspace() for c in name):
        raise ValueError(f"worker name {name!r}: use letters, digits, '-' or '_' (the host is added)")
    if concurrency < 1:
        raise ValueError(f"concurrency {concurrency}: expected at least 1")
    return [sys.executable, "-m", "celery", "-A", CELERY_APP, "worker",
            "--hostname", f"{name}@%h", "--queues", CELERY_QUEUE, "--concurrency", str(concurrency),
            "--prefetch-multiplier", "1", "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
