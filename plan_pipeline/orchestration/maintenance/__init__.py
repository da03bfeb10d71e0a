"""The store maintenance domain: backup, trim (retention) and DWH export jobs and schedules. The
work itself lives in :mod:`plan_pipeline.operations` and :mod:`plan_pipeline.exports`; this package
only schedules it. Its definitions: :mod:`.definitions`."""
