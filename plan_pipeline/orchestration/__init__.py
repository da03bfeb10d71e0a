"""The Dagster layer, one package per domain: ``plan`` (partitions, stage assets, checks, IO managers,
``plan_job``, launch, run ledger, crash recovery), ``legacy_import``, ``maintenance`` (store
maintenance schedules), ``inbox`` and ``replanning``. Each exports its definitions in its
``definitions`` module; ``plan_pipeline.definitions`` merges them (and nothing imports that root).

Nothing in this package opens the plan store at import time or during sensor/schedule
evaluation; store access happens inside steps that run in the ``duckdb`` pool.
"""
