"""How long ``plan-pipeline`` takes to start: ``--help``, ``version list`` and ``inputs list``, each
run many times in a fresh process, with warm and with cold Python bytecode caches.

Each measurement is one new interpreter running exactly what the installed console script runs
(``from plan_pipeline.cli.main import main; sys.exit(main())``), timed from process start to
exit. The table shows the median and the fastest of ``--repeat`` runs per command and cache state,
and the median CPU time (user + system) of the child, which a busy machine inflates much less
than the wall time:

* **warm**: the ``.pyc`` files exist (the state after the first run), the usual case;
* **cold**: every run gets a new empty ``PYTHONPYCACHEPREFIX``, so every module (plan_pipeline,
  pandas, DuckDB's Python part, Dagster, ...) is compiled from source: the first start after an
  install or upgrade. The operating system's file cache is warm in both (it is not dropped on a
  shared machine), so "cold" here is the interpreter's cold start, not a cold disk.

The *heavy modules* column lists which of Dagster, pandas, DuckDB, numpy and pyarrow the command
imported (read from one extra ``-X importtime`` run). ``--code DIR`` measures another copy of the
package (e.g. ``git archive <commit>`` unpacked to DIR) by putting DIR first on ``PYTHONPATH``,
so two commits can be compared on the same machine in the same minute.

    .venv/bin/python benchmarks/cli_startup.py                       # 15 repeats, warm + cold
    .venv/bin/python benchmarks/cli_startup.py --repeat 30 --quiet-wait 120 --json out/cli.json
    .venv/bin/python benchmarks/cli_startup.py --code /tmp/before    # an exported older commit
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_benchmark import code_version, cpu_ticks, wait_for_quiet_machine

ENTRY = "import sys; from plan_pipeline.cli.main import main; sys.exit(main())"  # = the console script
HEAVY = ("dagster", "pandas", "duckdb", "numpy", "pyarrow")
COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "version list": ["version", "list"],
    "inputs list": ["inputs", "list"],
}
IMPORT_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s+(\S+)\s*$")


def child_env(code: Path | None, pycache: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PLAN_PIPELINE_HOME", "PLAN_PIPELINE_DB", "DAGSTER_HOME", "PYTHONPROFILEIMPORTTIME")}
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), *filter(None, [env.get("PYTHONPATH")])])
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path, extra: list[str] = ()) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, of that process alone) and stderr of one run."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *extra, "-c", ENTRY, *args], env=env, cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"plan-pipeline {' '.join(args)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, stderr


def heavy_modules(args: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    stderr = run(args, env, cwd, extra=["-X", "importtime"])[2]
    modules = {m.group(1).split(".")[0] for line in stderr.splitlines() if (m := IMPORT_LINE.match(line))}
    return [name for name in HEAVY if name in modules]


def other_cores(before: dict[str, int] | None, after: dict[str, int] | None, wall: float) -> float | None:
    """CPU cores busy machine-wide during ``wall`` seconds (our own children included)."""
    if not before or not after or wall <= 0:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return sum(after[k] - before[k] for k in ("user", "nice", "system", "irq", "softirq")) / hz / wall


def measure(name: str, args: list[str], home: Path, code: Path | None, repeat: int, cwd: Path) -> dict[str, Any]:
    full = ["--home", str(home), *args] if args != ["--help"] else args
    warm_env = child_env(code, None)
    run(full, warm_env, cwd)  # writes the .pyc files (if they were missing)
    result: dict[str, Any] = {"command": name, "argv": full, "heavy_modules": heavy_modules(full, warm_env, cwd)}
    for state in ("warm", "cold"):
        times, cpu = [], []
        before, started = cpu_ticks(), time.perf_counter()
        for _ in range(repeat):
            if state == "cold":
                with tempfile.TemporaryDirectory(prefix="pycache-") as pycache:
                    wall, used, _ = run(full, child_env(code, Path(pycache)), cwd)
            else:
                wall, used, _ = run(full, warm_env, cwd)
            times.append(wall)
            cpu.append(used)
        busy = other_cores(before, cpu_ticks(), time.perf_counter() - started)
        result[state] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                         "cpu_median_s": statistics.median(cpu), "runs_s": times, "runs_cpu_s": cpu,
                         "machine_busy_cores": busy}
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| command | warm median s | warm min s | warm CPU s | cold median s | cold min s | cold CPU s "
             "| heavy modules imported |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        w, c = r["warm"], r["cold"]
        lines.append(f"| `plan-pipeline {r['command']}` | {w['median_s']:.3f} | {w['min_s']:.3f} | "
                     f"{w['cpu_median_s']:.3f} | {c['median_s']:.3f} | {c['min_s']:.3f} | {c['cpu_median_s']:.3f} | "
                     f"{', '.join(r['heavy_modules']) or 'none'} |")
    return "\n".join(lines)


def build_home(home: Path, code: Path | None, cwd: Path) -> None:
    """``plan-pipeline demo``: input set ``sample`` and a materialized version ``demo``."""
    print(f"[cli-startup] building a project home with `plan-pipeline demo` in {home}", file=sys.stderr, flush=True)
    run(["--home", str(home), "demo"], child_env(code, None), cwd)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=15, help="runs per command and cache state (default 15)")
    p.add_argument("--code", type=Path, help="measure the plan_pipeline package in this folder (first on PYTHONPATH)")
    p.add_argument("--home", type=Path, help="an existing project home to list (default: a new one built with demo)")
    p.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to SECONDS until other processes use < 0.3 cores")
    p.add_argument("--json", type=Path, help="write every run's time here")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    code = args.code.resolve() if args.code else None
    if code is not None:
        sys.path.insert(0, str(code))
    workdir = Path(tempfile.mkdtemp(prefix="cli-startup-"))
    try:
        home = args.home.resolve() if args.home else workdir / "home"
        if not args.home:
            build_home(home, code, workdir)
        idle = wait_for_quiet_machine(args.quiet_wait) if args.quiet_wait else None
        results = [measure(name, cmd, home, code, args.repeat, workdir) for name, cmd in COMMANDS.items()]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = {"code": code_version(), "python": sys.version.split()[0], "repeat": args.repeat,
              "machine_busy_cores_before": idle, "results": results}
    print(f"plan_pipeline {report['code'].get('git_commit', '?')[:12]} from {report['code']['package_dir']}, "
          f"{args.repeat} runs per cell")
    print(table(results))
    busy = [r[s]["machine_busy_cores"] for r in results for s in ("warm", "cold") if r[s]["machine_busy_cores"] is not None]
    if busy:
        print(f"machine-wide busy CPU cores while measuring (our runs included): {min(busy):.2f}-{max(busy):.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
