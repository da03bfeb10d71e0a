#!/usr/bin/env python
"""Load test of the Plans API: concurrent clients on a planned version, alone and beside a run.

What it does (loopback only, bounded in clients and time):

1. In a fresh temporary project home (or ``--home``), writes sample inputs of ``--skus`` SKUs
   (``plan-pipeline sample-inputs``), imports them, creates and materializes version ``load-a``
   and creates version ``load-b`` (planned during the second phase).
2. Creates a planner API key (``plan-pipeline apikey create``) and starts ``plan-pipeline serve``
   on 127.0.0.1 and a free port.
3. Phase ``alone``: ``--clients`` threads for ``--seconds`` seconds, each looping over a weighted
   mix of ``GET /plans``, ``GET /plans/load-a``, a one-family ``GET /plans/load-a/series`` slice
   and a one-cell ``PATCH /plans/load-a/psi`` edit of the detail plan.
4. Phase ``with-run``: the same mix while ``plan-pipeline materialize load-b`` writes another
   version of the same DuckDB file (the Dagster run holds the single-writer lock step by step).
5. Per phase and route: requests, p50/p95/max latency, responses by status; a 503 must carry
   ``Retry-After``; any other 5xx, connection error or a 503 without ``Retry-After`` is a
   failure. Afterwards every edit answered 200 must be in the version's audit events (an edit is
   either accepted and kept, or explicitly refused).

Usage::

    .venv/bin/python benchmarks/api_load.py                       # 5,000 SKUs, 10 clients, 60 s per phase
    .venv/bin/python benchmarks/api_load.py --skus 500 --seconds 10 --json out/api_load.json

Exit status 0 when no failure was seen, 1 otherwise. Figures go to docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
PLAN_VERSION, RUN_VERSION, LABEL = "load-a", "load-b", "load"
ROUTES = ("GET /plans", "GET /plans/{v}", "GET /plans/{v}/series", "PATCH /plans/{v}/psi")
DEFAULT_MIX = {"GET /plans": 3, "GET /plans/{v}": 2, "GET /plans/{v}/series": 4, "PATCH /plans/{v}/psi": 1}
#: issue 14's targets for the phase alone (p95, milliseconds).
TARGET_P95_MS = {"GET /plans": 150.0, "GET /plans/{v}/series": 300.0}


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("plan-pipeline")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "plan_pipeline.cli.main"]


def run_cli(home: Path, *args: str, timeout: float = 3600) -> str:
    proc = subprocess.run([*cli(), "--home", str(home), *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"plan-pipeline {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_home(home: Path, skus: int, families: int, say) -> None:
    if (home / "plan_store.duckdb").exists():
        say(f"reusing the project home {home}")
        return
    inputs = home.parent / f"{home.name}-inputs"
    say(f"writing sample inputs: {families} families x {skus // families} SKUs")
    run_cli(home, "sample-inputs", "--out", str(inputs), "--families", str(families),
            "--skus-per-family", str(max(1, skus // families)), "--months", "12", "--components-per-sku", "2")
    run_cli(home, "inputs", "import", str(inputs), "--label", LABEL)
    for version in (PLAN_VERSION, RUN_VERSION):
        run_cli(home, "version", "create", "--input-set", LABEL, "--version-id", version)
    say(f"planning {PLAN_VERSION} (materialize)")
    run_cli(home, "materialize", PLAN_VERSION)


def create_key(home: Path) -> str:
    out = run_cli(home, "apikey", "create", "--name", f"load-{int(time.time())}", "--role", "planner")
    for token in out.split():
        if len(token) >= 24 and token.replace("-", "").replace("_", "").isalnum():
            return token
    raise SystemExit(f"could not read the API key from: {out!r}")


class Server:
    def __init__(self, home: Path, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(home / "api-load-server.log", "w")  # open as long as the server runs
        self.proc = subprocess.Popen([*cli(), "--home", str(home), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, key: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                if requests.get(f"{self.url}/plans", headers={"X-API-Key": key}, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the server did not answer within {timeout:.0f}s; see {self.log.name}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def plan_keys(base: str, key: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Families and (sku, week) cells of the planned version, read through the API."""
    headers = {"X-API-Key": key}
    rows = requests.get(f"{base}/plans/{PLAN_VERSION}/series", headers=headers,
                        params={"level": "det", "limit": 2000}, timeout=60).json()["rows"]
    families = sorted({r["family"] for r in rows if r.get("family")})
    # (sku, week, period): a week shared by two months is two cells, told apart by the period
    cells = sorted({(r["sku"], r["week"], r["period"]) for r in rows if r.get("sku") and r.get("week")})
    if not families or not cells:
        raise SystemExit("the planned version has no detail rows to load-test on")
    return families, cells


def edit_body(sku: str, week: str, period: str, value: float) -> dict[str, Any]:
    return {"level": "det", "edits": [{"key": {"sku": sku, "week": week, "period": period},
                                       "fields": {"demand": value}}], "note": "api load test"}


def client(base: str, key: str, families, cells, stop_at: float, mix: dict[str, int], seed: int, out: list) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["X-API-Key"] = key
    routes, weights = list(mix), list(mix.values())
    while time.monotonic() < stop_at:
        route = rng.choices(routes, weights)[0]
        edit = None
        method, params, body = "GET", None, None
        if route == "GET /plans":
            url, params = f"{base}/plans", {"limit": 50}
        elif route == "GET /plans/{v}":
            url = f"{base}/plans/{PLAN_VERSION}"
        elif route == "GET /plans/{v}/series":
            url = f"{base}/plans/{PLAN_VERSION}/series"
            params = {"level": "det", "family": rng.choice(families), "limit": 5000}
        else:
            sku, week, period = rng.choice(cells)
            edit = (sku, week, period, float(rng.randint(1, 10_000)))
            method, url, body = "PATCH", f"{base}/plans/{PLAN_VERSION}/psi", edit_body(*edit)
        started = time.perf_counter()
        try:
            resp = session.request(method, url, params=params, json=body, timeout=60)
            status, retry_after = resp.status_code, resp.headers.get("Retry-After")
        except requests.RequestException as exc:
            status, retry_after = f"error:{type(exc).__name__}", None
        out.append({"route": route, "ms": (time.perf_counter() - started) * 1000, "status": status,
                    "retry_after": retry_after, "edit": edit if status == 200 else None})


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_phase(name: str, base: str, key: str, families, cells, clients: int, seconds: float, mix) -> dict[str, Any]:
    samples: list[dict] = []
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(base, key, families, cells, stop_at, mix, i, samples))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_route: dict[str, dict[str, Any]] = {}
    by_route: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        by_route[s["route"]].append(s)
    failures = []
    for route, rows in by_route.items():
        ok_ms = [r["ms"] for r in rows if r["status"] == 200]
        statuses = Counter(str(r["status"]) for r in rows)
        per_route[route] = {"requests": len(rows), "p50_ms": percentile(ok_ms, 0.50), "p95_ms": percentile(ok_ms, 0.95),
                            "max_ms": max(ok_ms) if ok_ms else float("nan"), "statuses": dict(statuses)}
        for r in rows:
            bad = (isinstance(r["status"], str) or (r["status"] >= 500 and r["status"] != 503)
                   or (r["status"] == 503 and not r["retry_after"]))
            if bad:
                failures.append(f"{route}: {r['status']}")
    edits = [s["edit"] for s in samples if s["edit"]]
    return {"phase": name, "seconds": seconds, "clients": clients, "routes": per_route,
            "failures": failures, "accepted_edits": edits}


def edits_kept(base: str, key: str, edits) -> tuple[int, int]:
    """How many accepted edits the audit trail holds (by SKU/week/value), and how many were accepted."""
    headers = {"X-API-Key": key}
    events: list[dict] = []
    offset = 0
    while True:
        page = requests.get(f"{base}/plans/{PLAN_VERSION}/psi/events", headers=headers,
                            params={"limit": 500, "offset": offset}, timeout=60).json()
        events.extend(page["events"])
        offset += len(page["events"])
        if not page["events"] or offset >= page.get("total", offset):
            break
    text = [json.dumps(e, sort_keys=True) for e in events]
    kept = sum(1 for sku, week, _, value in edits
               if any(sku in t and week in t and repr(value) in t for t in text))
    return kept, len(edits)


def print_phase(result: dict[str, Any]) -> None:
    print(f"\n## phase {result['phase']}: {result['clients']} clients x {result['seconds']:.0f} s")
    print("| route | requests | p50 ms | p95 ms | max ms | target p95 ms | responses by status |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for route in ROUTES:
        r = result["routes"].get(route)
        if not r:
            continue
        target = TARGET_P95_MS.get(route)
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
        print(f"| `{route}` | {r['requests']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | "
              f"{'' if target is None else f'{target:.0f}'} | {statuses} |")
    kept = result.get("edits_kept")
    if kept:
        print(f"edits accepted {kept[1]}, found in the audit trail {kept[0]}")
    print(f"failures: {len(result['failures'])}" + (f" (first: {result['failures'][:5]})" if result["failures"] else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=5000)
    parser.add_argument("--families", type=int, default=100)
    parser.add_argument("--clients", type=int, default=10, choices=range(1, 33), metavar="1-32")
    parser.add_argument("--seconds", type=float, default=60.0, help="per phase, at most 600")
    parser.add_argument("--phases", nargs="+", default=["alone", "with-run"], choices=["alone", "with-run"])
    parser.add_argument("--home", type=Path, help="reuse this project home (prepared on first use)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be in (0, 600]")

    def say(message: str) -> None:
        print(f"[api_load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    tmp = None
    if args.home is None:
        tmp = Path(tempfile.mkdtemp(prefix="api-load-"))
        home = tmp / "home"
    else:
        home = args.home.resolve()
    os.environ.pop("PLAN_PIPELINE_DB", None)
    results: list[dict[str, Any]] = []
    server = None
    try:
        prepare_home(home, args.skus, args.families, say)
        key = create_key(home)
        server = Server(home, free_port())
        server.wait(key)
        families, cells = plan_keys(server.url, key)
        for phase in args.phases:
            runner = None
            if phase == "with-run":
                say(f"materializing {RUN_VERSION} beside the clients")
                runner = subprocess.Popen([*cli(), "--home", str(home), "materialize", RUN_VERSION],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            say(f"phase {phase}: {args.clients} clients for {args.seconds:.0f} s")
            result = run_phase(phase, server.url, key, families, cells, args.clients, args.seconds, DEFAULT_MIX)
            if runner is not None:
                _, err = runner.communicate(timeout=3600)
                result["run_returncode"] = runner.returncode
                if runner.returncode != 0:
                    result["failures"].append(f"the parallel run failed ({runner.returncode}): {err[-500:]}")
            result["edits_kept"] = edits_kept(server.url, key, result["accepted_edits"])
            if result["edits_kept"][0] != result["edits_kept"][1]:
                result["failures"].append(f"accepted edits missing from the audit trail: {result['edits_kept']}")
            results.append(result)
            print_phase(result)
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for r in results:
            r.pop("accepted_edits", None)
        args.json.write_text(json.dumps({"skus": args.skus, "results": results}, indent=2, default=str))
    return 1 if any(r["failures"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
