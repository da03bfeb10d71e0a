#!/usr/bin/env python
"""Group a py-spy ``--format raw`` profile of a benchmark run into cost categories.

Record one size under py-spy (wall clock: ``--idle`` keeps samples of threads waiting on I/O,
e.g. fsync on commit)::

    .venv/bin/py-spy record --idle -r 100 -f raw -o out/pyspy-5000.txt -- \
        .venv/bin/python benchmarks/run_benchmark.py --one-size 5000 --result-file out/r5000.json
    .venv/bin/python benchmarks/pyspy_breakdown.py out/pyspy-5000.txt

Only samples under ``materialize_version`` count (sample generation, import and version
creation run in CLI children, which py-spy does not follow without ``--subprocesses``).
Each sample goes to the first category (in the order below) whose rule matches a frame of
its stack, so a DuckDB read inside a planning step is a *read*, not *planning*. Store calls
are further split by source line (which statement of ``replace_series``/``read_series``).
"""
from __future__ import annotations

import argparse
import collections
import re
import sys

FRAME_RE = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*):(?P<line>\d+)\)$")

# (category, predicate over (func, file)); first match over the categories wins
CATEGORIES = [
    ("store writes: replace_series / replace_kpis",
     lambda f, p: p.endswith("store/repository.py") and f.split(".")[-1] in ("replace_series", "replace_kpis")),
    ("store reads: read_series / read_kpis",
     lambda f, p: p.endswith("store/repository.py") and f.split(".")[-1] in ("read_series", "read_kpis")),
    ("store: load_input_set", lambda f, p: p.endswith("store/repository.py") and f.endswith("load_input_set")),
    ("store: other (get_version, migrations check, jobs)", lambda f, p: "plan_pipeline/store/" in p),
    ("asset checks (planning/invariants.py)", lambda f, p: p.endswith("planning/invariants.py")),
    ("planning functions (plan_pipeline/planning/)", lambda f, p: "plan_pipeline/planning/" in p),
    ("IO manager: markdown preview / metadata", lambda f, p: p.endswith("io_managers.py") and "markdown_preview" in f),
    ("Dagster: event log / run storage (sqlite)",
     lambda f, p: "dagster/_core/storage/" in p or "sqlalchemy/" in p or "sqlite3" in p),
    ("Dagster: definitions / job build", lambda f, p: p.endswith("plan_pipeline/definitions.py")
     or f.endswith("resolve_job_def")),
]
OTHER = "Dagster: other (execution plan, events, asset-step glue)"


def parse(path: str):
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        frames = []
        for raw in stack.split(";"):
            m = FRAME_RE.match(raw)
            frames.append((m.group("func"), m.group("file"), int(m.group("line"))) if m else (raw, "", 0))
        yield frames, int(count)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("raw", help="py-spy --format raw output")
    ap.add_argument("--rate", type=float, default=100.0, help="sampling rate used (samples/s, default 100)")
    ap.add_argument("--root", default="materialize_version", help="only count samples under this function")
    args = ap.parse_args(argv)

    cats: collections.Counter = collections.Counter()
    store_lines: collections.Counter = collections.Counter()
    leaves: collections.Counter = collections.Counter()
    total = 0
    for frames, n in parse(args.raw):
        if not any(f.split(".")[-1] == args.root for f, _, _ in frames):
            continue
        total += n
        chosen = OTHER
        for name, rule in CATEGORIES:
            if any(rule(f, p) for f, p, _ in frames):
                chosen = name
                break
        cats[chosen] += n
        for f, p, line in frames:
            if p.endswith("store/repository.py") and f.split(".")[-1] in (
                    "replace_series", "read_series", "load_input_set", "replace_kpis", "read_kpis"):
                store_lines[(f.split(".")[-1], line)] += n
                break
        leaf = frames[-1]
        leaves[f"{leaf[0]} ({leaf[1]}:{leaf[2]})"] += n
    if not total:
        print(f"no samples under {args.root}", file=sys.stderr)
        return 1
    sec = 1.0 / args.rate
    print(f"samples under {args.root}: {total} (~{total * sec:.1f} s at {args.rate:g} Hz)\n")
    print("| category | s | share |\n|---|---:|---:|")
    for name, n in cats.most_common():
        print(f"| {name} | {n * sec:.1f} | {100 * n / total:.0f} % |")
    print("\nstore calls by source line (plan_pipeline/store/repository.py):\n")
    print("| function | line | s | share |\n|---|---:|---:|---:|")
    for (f, line), n in store_lines.most_common(15):
        print(f"| {f} | {line} | {n * sec:.1f} | {100 * n / total:.0f} % |")
    print("\nhottest leaf frames:\n")
    print("| leaf frame | s | share |\n|---|---:|---:|")
    for name, n in leaves.most_common(20):
        print(f"| {name} | {n * sec:.1f} | {100 * n / total:.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
