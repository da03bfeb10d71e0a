"""The legacy import domain: the ``legacy_import`` job and schedule that bring legacy scpln plans
(SQLite plan database, output folders) into the plan store as read-only versions. Not to be
confused with a Dagster *backfill* (a run per partition launched from the UI). Its definitions:
:mod:`.definitions`."""
