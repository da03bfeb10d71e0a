"""Running plan-pipeline beyond one process: local PostgreSQL and Redis servers for a multi-worker
setup and its tests (``local_services``); docs/deployment.md describes the topology."""
