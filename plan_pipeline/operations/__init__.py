"""Operations on the plan store that are not planning stages (legacy backfill, ...).

Pure-ish logic: functions take a :class:`~plan_pipeline.store.PlanStore` and plain values;
the Dagster wrappers live in :mod:`plan_pipeline.orchestration.legacy_import`, the command line in
:mod:`plan_pipeline.cli.commands_backfill`.
"""
