"""Pure planning logic: plain functions over pandas/numpy, no Dagster, no database.

One module per stage:

* ``calendar``  - planning calendar lookups (week distribution, due-date mapping, periods)
* ``rounding``  - round modes and integer apportionment (vectorised)
* ``aggregate`` - stage 1, family x month capacity-rationed S&OP plan
* ``detail``    - stage 2, family -> SKU and month -> week disaggregation
* ``mrp``       - stage 3, netting, lot/MOQ, lead-time offset, BOM explosion
* ``capacity``  - stage 4, CRP leveling of finished-good releases (forward, DET_near, AGG_far, blend)
* ``level_reconciliation`` - stage 5, aggregate vs rolled-up detail deltas
* ``anchor``    - stage 6, boundary-month correction of an edited detail plan
* ``report``    - capacity/service report and stored KPIs

Shared by all of them: ``vocabulary`` (choices, bounds, cutover parsing, policy names, frame
columns), ``parameters`` (the planning parameter model), ``calendar_document`` (the
``planning_calendar.json`` model). The reference project's file formats are written by
``plan_pipeline.exports.reference_documents``, not by the stages.
"""
