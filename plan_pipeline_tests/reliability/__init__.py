"""Reliability tests (issue 9: data safety), one module per kind of harm:

1. ``test_crash_recovery``: a run killed at any point (SIGKILL) never blocks the next; pool
   waits are reported, bounded and stop on Ctrl-C.
2. ``test_plan_publication``: a version's plan is always one complete run; exports of a version
   without one are refused.
3. ``test_frozen_versions``: approved / superseded / imported versions stay frozen; approval and
   delete are refused during runs; deleted ids are never reused.
4. ``test_maintenance_crashes``: trim, row guard and backup killed at every step lose nothing;
   restore is refused during runs.
5. ``test_bad_inputs``: every input plans or is refused by ``validate`` with the rule named.
6. ``test_hostile_cli``: every command fed hostile values exits non-zero with one line, no
   traceback.
"""
