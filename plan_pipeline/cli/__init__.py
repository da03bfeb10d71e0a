"""The ``plan-pipeline`` command line."""
