"""The executor of the code location's jobs: in-process (default), or Dagster's Celery executor
when ``$PLAN_PIPELINE_CELERY_BROKER_URL`` names a broker (docs/deployment.md).

* **In-process** (default): every step of a run executes in the run's process (the CLI's, or the
  run worker the daemon / webserver launches); the IO managers keep a run's frames in memory.
* **Celery** (``dagster-celery``, the ``cluster`` extra): the run's process becomes a coordinator
  that sends each step as a task to the broker (Redis); Celery workers on any machine that reaches
  the broker, the Dagster instance's storage (``$PLAN_PIPELINE_DAGSTER_STORAGE_URL``) and the plan
  store execute them (``plan-pipeline worker start``). Steps hand frames over through the plan
  store (the IO managers read a level back when it is not in the process's memory). Pools still
  apply: the coordinator claims a slot before it sends a store-touching step.

The executor is chosen when the code location is loaded (:func:`plan_executor`), so every process
that loads it (code server, CLI, run workers, Celery workers) must see the same setting. The
Celery app's settings live in one place (:func:`celery_app_config`), read by the executor and by
the workers' app (:mod:`plan_pipeline.deployment.celery_app`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

#: The Celery broker (``redis://host:port/db``); set: the code location's jobs use the Celery executor.
CELERY_BROKER_ENV = "PLAN_PIPELINE_CELERY_BROKER_URL"
#: The Celery result backend (default: the broker's URL).
CELERY_BACKEND_ENV = "PLAN_PIPELINE_CELERY_BACKEND_URL"
#: The Celery queue plan steps go to (dagster-celery's default queue).
CELERY_QUEUE = "dagster"
#: Seconds after which the Redis broker hands a step that no worker acknowledged (its worker died)
#: to another worker. Must exceed the longest step: a step still running after it is delivered twice.
CELERY_VISIBILITY_TIMEOUT_ENV = "PLAN_PIPELINE_CELERY_VISIBILITY_TIMEOUT"
#: Its default: 30 minutes, far above the longest plan step measured (a few minutes at 50k SKUs,
#: docs/performance.md) and half of Celery's own default (one hour).
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 1800
#: How often (at most) a worker looks for such steps; never more than a third of the timeout.
MAX_RESTORE_INTERVAL_SECONDS = 10


def _setting(environ: Mapping[str, str] | None, name: str) -> str | None:
    return ((os.environ if environ is None else environ).get(name) or "").strip() or None


def celery_broker_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``$PLAN_PIPELINE_CELERY_BROKER_URL``, or None (in-process execution)."""
    return _setting(environ, CELERY_BROKER_ENV)


def celery_backend_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``$PLAN_PIPELINE_CELERY_BACKEND_URL``, else the broker's URL."""
    return _setting(environ, CELERY_BACKEND_ENV) or celery_broker_url(environ)


def celery_visibility_timeout(environ: Mapping[str, str] | None = None) -> int:
    """``$PLAN_PIPELINE_CELERY_VISIBILITY_TIMEOUT`` (whole seconds, at least 1), default 1800."""
    raw = _setting(environ, CELERY_VISIBILITY_TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_VISIBILITY_TIMEOUT_SECONDS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise RuntimeError(f"{CELERY_VISIBILITY_TIMEOUT_ENV}={raw!r}: expected a whole number of seconds "
                           "(at least 1, above the longest step; docs/deployment.md)")
    return value


def celery_app_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Celery settings shared by the executor (sender) and the workers.

    A worker takes one step at a time (no prefetch: a queued step goes to whichever worker is
    free), acknowledges a task only once it is done, and a task whose worker process died is
    handed back to the queue (``task_reject_on_worker_lost``), not dropped. When the whole worker
    dies (its main process too, so nobody hands the task back) the Redis broker gives the
    unacknowledged task to another worker once :func:`celery_visibility_timeout` has passed since
    its delivery; the workers look for such tasks every ``unacked_restore_interval`` seconds.
    """
    timeout = celery_visibility_timeout(environ)
    return {
        "worker_prefetch_multiplier": 1,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # dagster-celery's own transport options (connection retries), which this dict replaces
            "max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5,
            "visibility_timeout": timeout,
            "unacked_restore_interval": max(1, min(MAX_RESTORE_INTERVAL_SECONDS, timeout // 3)),
            "unacked_restore_throttle": 1,  # every sweep scans (one small sorted-set query)
        },
    }


def plan_executor(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """In-process, or the Celery executor on ``$PLAN_PIPELINE_CELERY_BROKER_URL`` when it is set.

    The executor's config names the environment variables, not their values: the URLs are read
    where the executor runs (the run's coordinator process), never written into run configs.
    """
    if celery_broker_url(environ) is None:
        return dg.in_process_executor
    from dagster_celery import celery_executor  # the `cluster` extra: imported only when configured

    backend_env = CELERY_BACKEND_ENV if _setting(environ, CELERY_BACKEND_ENV) else CELERY_BROKER_ENV
    return celery_executor.configured(
        {"broker": {"env": CELERY_BROKER_ENV}, "backend": {"env": backend_env},
         "config_source": celery_app_config(environ)},
        name="celery",
    )
