"""The plan domain: plan versions as partitions, the stage assets and their checks, the IO managers
that stage frames in the store, ``published_plan``, ``plan_job``, launching runs in-process, the
run ledger (table ``plan_jobs``) and crash recovery. Its definitions: :mod:`.definitions`."""
