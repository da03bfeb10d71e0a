"""``plan-pipeline serve`` (the Plans API and web view) and ``plan-pipeline apikey create|list|revoke``."""
from __future__ import annotations

import argparse
import sys

from plan_pipeline.cli.arguments import PORT, add_command, host_arg
from plan_pipeline.cli.environment import CliEnvironment
from plan_pipeline.cli.output import out, progress

#: How often the server's threads hand the interpreter over (``sys.setswitchinterval``).
SERVER_SWITCH_INTERVAL_SECONDS = 0.001


def cmd_serve(env: CliEnvironment, args) -> int:
    import uvicorn

    from plan_pipeline.api.app import create_app
    from plan_pipeline.api.settings import ApiSettings

    env.prepare_dagster_home()
    env.store.initialise()  # create or upgrade the schema before the first request
    settings = ApiSettings(db_path=None if env.postgres else env.db_path,
                           store_url=env.postgres.url if env.postgres else None,
                           dagster_home=env.dagster_home, lock_wait_seconds=args.lock_wait)
    where = f"http://{args.host}:{args.port}"
    progress(f"Plans API on {where} (OpenAPI: {where}/docs, web view: {where}/web; store {env.store_description}, "
             f"DAGSTER_HOME={env.dagster_home}); Ctrl-C stops it")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        progress(f"warning: listening on {args.host}, not only on this machine; every write still needs an API key")
    # Requests are short and run on a thread pool: let threads take turns every 1 ms instead of
    # Python's 5 ms, so a request waiting for the interpreter is not held behind another's slice
    # (10 clients on a 5,000-SKU plan: ~15 % more requests per second, docs/performance.md).
    sys.setswitchinterval(SERVER_SWITCH_INTERVAL_SECONDS)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_apikey_create(env: CliEnvironment, args) -> int:
    key = env.store.create_api_key(args.name, args.role, actor=args.actor)
    progress(f"created the {args.role} API key {args.name!r}; it is printed once (only its hash is stored):")
    out(key)
    return 0


def cmd_apikey_list(env: CliEnvironment, args) -> int:
    rows = env.store.list_api_keys()
    if not rows:
        out("no API keys (create one: plan-pipeline apikey create --name NAME --role ROLE)")
        return 0
    out(f"{'name':<24} {'role':<9} {'prefix':<9} {'created':<17} {'by':<12} revoked")
    for r in rows:
        revoked = f"{r['revoked_at']:%Y-%m-%d %H:%M} by {r['revoked_by']}" if r["revoked_at"] else "-"
        out(f"{r['name']:<24} {r['role']:<9} {r['key_prefix']:<9} {r['created_at']:%Y-%m-%d %H:%M} "
            f"{r['created_by']:<12} {revoked}")
    return 0


def cmd_apikey_revoke(env: CliEnvironment, args) -> int:
    env.store.revoke_api_key(args.name, actor=args.actor)
    out(f"revoked the API key {args.name!r}")
    return 0


def add_api_commands(sub) -> None:
    from plan_pipeline.api.settings import DEFAULT_HOST, DEFAULT_PORT
    from plan_pipeline.store.rules import API_KEY_ROLES

    p = add_command(sub, "serve", help="start the Plans API and the planner web view (uvicorn; 127.0.0.1 by default)")
    p.add_argument("--host", type=host_arg, default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=PORT, default=DEFAULT_PORT, help=f"1-65535 (default {DEFAULT_PORT})")
    p.add_argument("--lock-wait", type=float, default=5.0, metavar="SECONDS",
                   help="how long a request waits while a plan run writes the store, then 503 (default 5)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=cmd_serve)

    p_key = add_command(sub, "apikey", help="API keys of the Plans API: create (printed once), list, revoke")
    s_key = p_key.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    p = add_command(s_key, "create", help="create a key and print it once")
    p.add_argument("--name", required=True, help="unique name; the actor of the audit events written with the key")
    p.add_argument("--role", required=True, choices=API_KEY_ROLES,
                   help="viewer reads; planner edits, submits, creates, runs; approver approves, rejects; admin all")
    p.add_argument("--actor", default="cli", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_apikey_create)
    p = add_command(s_key, "list", help="every key: name, role, prefix, created, revoked (never the key)")
    p.set_defaults(func=cmd_apikey_list)
    p = add_command(s_key, "revoke", help="revoke a key (it stays listed)")
    p.add_argument("--name", required=True)
    p.add_argument("--actor", default="cli", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_apikey_revoke)
