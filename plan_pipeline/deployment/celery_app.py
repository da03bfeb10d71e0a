"""The Celery app the workers run (``celery -A plan_pipeline.deployment.celery_app worker``,
started by ``plan-pipeline worker start``): dagster-celery's tasks (execute a step, a run, resume a
run) on the broker and settings of :mod:`plan_pipeline.orchestration.executor`, the same ones the
Celery executor sends with. Importing this module needs ``$PLAN_PIPELINE_CELERY_BROKER_URL``.
"""
from __future__ import annotations

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from plan_pipeline.orchestration.executor import (
    CELERY_BROKER_ENV,
    celery_app_config,
    celery_backend_url,
    celery_broker_url,
)

_broker = celery_broker_url()
if _broker is None:
    raise RuntimeError(f"{CELERY_BROKER_ENV} is not set: a Celery worker needs the broker's URL (redis://host:port/0)")

app = make_app({"broker": _broker, "backend": celery_backend_url(), "config_source": celery_app_config()})
execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
