#!/usr/bin/env python
"""Issue 13's speed targets, every row of its table, measured and printed as one markdown table.

Each row is measured with the real ``plan-pipeline`` command as a child process (wall time from
start to exit, that child's own peak RSS from ``os.wait4``), on a fresh temporary project home:

* ``plan`` end to end, 2,000 SKUs (import, version, run, reference files written);
* ``plan`` end to end, 5,000 SKUs (store + reference files), and the peak memory of that ``plan``;
* ``export --format reference`` of the 2,000-SKU plan;
* ``materialize`` of a 5,000-SKU version (after ``inputs import`` and ``version create``, untimed);
* ``materialize`` of a 50,000-SKU x 104-week version (24 months; ``--skip-50k`` leaves it out);
* ``plan-pipeline --help`` and ``plan-pipeline version list`` (on the 2,000-SKU home).

Below the targets it prints **the fixed cost of a run**: the same ``plan`` and ``materialize``
commands on the bundled 12-SKU sample (``plan_pipeline/sample_data/sample_plan``), where the
planning itself is negligible, and which time targets lie below that floor (a target under it
cannot be met by tuning the planning or the store: it is the cost of the CLI, the Dagster
instance and one orchestrated run of every stage). ``--rows`` without ``floor`` leaves it out.

Inputs come from ``plan-pipeline sample-inputs`` and are kept in a cache folder (``--cache``),
keyed by their generation arguments and the generator's source, so repeats and later runs do not
regenerate them. ``--repeat R`` measures each row R times (a fresh home each time); the table
shows the fastest wall time and the highest peak RSS, the details table every repeat and how
busy the rest of the machine was. The helpers (CLI child timing, quiet-machine wait, the commit
measured, tables) are those of ``run_benchmark.py``.

    python benchmarks/speed_targets.py                                  # every row, once
    python benchmarks/speed_targets.py --skip-50k --repeat 3 --quiet-wait 120
    python benchmarks/speed_targets.py --rows plan_2k export_reference_2k --json out/targets.json
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_benchmark import (
    code_version,
    cpu_ticks,
    machine_load,
    md_table,
    run_cli,
    wait_for_quiet_machine,
)

CUTOVER = "2025-06-15"  # sample inputs start 2025-01: month 6 of the horizon
PLANNING_FLAGS = ["--preset", "det_near", "--cutover-date", CUTOVER, "--apply-adjusted"]
VERSION_ID = "bench"
INPUT_LABEL = "bench"
SEED = 7
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "plan_pipeline" / "sample_data" / "sample_plan"
SAMPLE_SKUS = 12


@dataclass(frozen=True)
class InputSize:
    """One ``sample-inputs`` size: 100 families x ``per_family`` SKUs over ``months`` months."""

    families: int
    per_family: int
    months: int
    components: int = 2

    @property
    def skus(self) -> int:
        return self.families * self.per_family

    def args(self) -> list[str]:
        return ["--families", str(self.families), "--skus-per-family", str(self.per_family),
                "--months", str(self.months), "--components-per-sku", str(self.components), "--seed", str(SEED)]


SIZE_2K = InputSize(100, 20, 12)
SIZE_5K = InputSize(100, 50, 12)
SIZE_50K = InputSize(100, 500, 24)  # 24 months = 104 weeks


@dataclass
class Target:
    """One row of issue 13's table: what, the target, and how it is measured."""

    key: str
    what: str
    target: str
    wall_s: float | None = None  # target wall seconds (None: not a time target)
    rss_mb: float | None = None  # target peak RSS in MB (None: not a memory target)
    measured: list[dict[str, Any]] = field(default_factory=list)  # one entry per repeat
    error: str | None = None
    skipped: bool = False


def targets() -> list[Target]:
    """The rows, in the order of issue 13's table."""
    return [
        Target("plan_2k", "`plan` end to end, 2,000 SKUs, reference files written", "<= 3 s", wall_s=3.0),
        Target("plan_5k", "`plan` end to end, 5,000 SKUs, store + reference files", "<= 8 s", wall_s=8.0),
        Target("export_reference_2k", "`export --format reference`, 2,000 SKUs", "<= 1 s", wall_s=1.0),
        Target("materialize_5k", "`materialize`, 5,000 SKUs", "<= 5 s / <= 450 MB", wall_s=5.0, rss_mb=450.0),
        Target("plan_5k_rss", "peak memory of `plan`, 5,000 SKUs", "<= 600 MB", rss_mb=600.0),
        Target("materialize_50k", "`materialize`, 50,000 SKUs x 104 weeks", "<= 120 s / <= 4 GB",
               wall_s=120.0, rss_mb=4096.0),
        Target("cli_help", "`plan-pipeline --help`", "<= 0.5 s", wall_s=0.5),
        Target("cli_version_list", "`plan-pipeline version list` (2,000-SKU home)", "<= 0.5 s", wall_s=0.5),
    ]


def floor_rows() -> list[Target]:
    """The fixed cost of a run: ``plan`` and ``materialize`` of the bundled 12-SKU sample (no target)."""
    return [
        Target("floor_plan", f"`plan` end to end, bundled {SAMPLE_SKUS}-SKU sample", "-"),
        Target("floor_materialize", f"`materialize`, bundled {SAMPLE_SKUS}-SKU sample", "-"),
    ]


#: which targets each floor row bounds from below (the same command on more SKUs)
FLOOR_OF = {"floor_plan": ("plan_2k", "plan_5k"), "floor_materialize": ("materialize_5k", "materialize_50k")}
ROW_KEYS = [t.key for t in targets()]
FLOOR_KEY = "floor"


# ----------------------------------------------------------------------------- inputs (cached)
def generator_fingerprint() -> str:
    """A hash of the sample-input generator's source: cached inputs of another generator are not reused."""
    # found, not imported: this process stays small, because a child's peak RSS (ru_maxrss from
    # wait4) starts from its parent's RSS at fork on Linux (a 105 MB parent made `--help` read 105 MB)
    spec = importlib.util.find_spec("plan_pipeline.inputs.sample")
    assert spec is not None and spec.origin is not None, "plan_pipeline is not importable"
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:12]


def cached_inputs(cache: Path, size: InputSize) -> Path:
    """The generated input folder of ``size`` in ``cache`` (generated once; complete when ``summary.json`` exists)."""
    folder = cache / (f"inputs-f{size.families}-s{size.per_family}-m{size.months}-c{size.components}"
                      f"-seed{SEED}-{generator_fingerprint()}")
    done = folder / "summary.json"
    if done.exists():
        return folder / "inputs"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log(f"generating {size.skus} SKUs x {size.months} months into {folder} ...")
    gen = run_cli(["sample-inputs", "--out", str(folder / "inputs"), *size.args()])
    text = gen.pop("stdout")
    summary = json.loads(text[text.index("{"):])
    done.write_text(json.dumps({"generate": gen, "summary": summary}, indent=2))
    return folder / "inputs"


# ----------------------------------------------------------------------------- measuring
def log(message: str) -> None:
    print(f"[speed-targets] {message}", file=sys.stderr, flush=True)


def timed_cli(args: list[str]) -> dict[str, Any]:
    """``plan-pipeline ARGS`` as a child: wall, peak RSS and how busy the rest of the machine was."""
    before = cpu_ticks()
    result = run_cli(args)
    result.pop("stdout", None)
    load = machine_load(before, cpu_ticks(), result["cpu_s"], result["wall_s"])  # others = busy - the child
    if load:
        result["other_cores"] = load["other_processes_cores"]
    return result


class Bench:
    """Runs the selected rows; homes live in one temporary work folder."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.cache = Path(args.cache).expanduser().resolve()
        self.cache.mkdir(parents=True, exist_ok=True)
        base = Path(args.workdir).resolve() if args.workdir else None
        if base:
            base.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="speed-targets-", dir=base))
        self.homes = 0
        self.plan_2k_home: Path | None = None

    def new_home(self, name: str) -> Path:
        self.homes += 1
        return self.work / f"{self.homes:02d}-{name}"

    def before_measure(self) -> None:
        if self.args.quiet_wait:
            busy = wait_for_quiet_machine(self.args.quiet_wait)
            log(f"other load before start: {busy:.2f} cores")

    def plan(self, size: InputSize | None) -> tuple[dict[str, Any], Path]:
        """``plan`` of a generated size, or of the bundled sample (``size`` None)."""
        inputs = cached_inputs(self.cache, size) if size else SAMPLE_DIR
        skus = size.skus if size else SAMPLE_SKUS
        home = self.new_home(f"plan-{skus}")
        self.before_measure()
        m = timed_cli(["--home", str(home), "plan", "-I", str(inputs), "-o", str(home / "out"),
                       "--version-id", VERSION_ID, *PLANNING_FLAGS])
        files = [p for p in (home / "out").rglob("*") if p.is_file()]
        m["files"], m["bytes"] = len(files), sum(p.stat().st_size for p in files)
        log(f"plan {skus} SKUs: {m['wall_s']:.2f} s, {m['peak_rss_mb']:.0f} MB")
        return m, home

    def export_reference(self, home: Path) -> dict[str, Any]:
        out = home / "export-reference"
        shutil.rmtree(out, ignore_errors=True)
        self.before_measure()
        m = timed_cli(["--home", str(home), "export", VERSION_ID, "--format", "reference", "--out", str(out)])
        files = [p for p in out.rglob("*") if p.is_file()]
        m["files"], m["bytes"] = len(files), sum(p.stat().st_size for p in files)
        log(f"export reference: {m['wall_s']:.2f} s")
        return m

    def materialize(self, size: InputSize | None) -> dict[str, Any]:
        """``materialize`` of a generated size, or of the bundled sample (``size`` None)."""
        inputs = cached_inputs(self.cache, size) if size else SAMPLE_DIR
        skus = size.skus if size else SAMPLE_SKUS
        home = self.new_home(f"materialize-{skus}")
        setup = {"import": timed_cli(["--home", str(home), "inputs", "import", str(inputs), "--label", INPUT_LABEL]),
                 "version_create": timed_cli(["--home", str(home), "version", "create", "--input-set", INPUT_LABEL,
                                              "--version-id", VERSION_ID, *PLANNING_FLAGS])}
        self.before_measure()
        m = timed_cli(["--home", str(home), "materialize", VERSION_ID])
        m["setup"] = setup
        db = home / "plan_store.duckdb"
        m["db_mb"] = db.stat().st_size / 2**20 if db.exists() else None
        log(f"materialize {skus} SKUs: {m['wall_s']:.2f} s, {m['peak_rss_mb']:.0f} MB "
            f"(import {setup['import']['wall_s']:.1f} s / {setup['import']['peak_rss_mb']:.0f} MB, "
            f"version create {setup['version_create']['wall_s']:.1f} s)")
        if not self.args.keep:
            shutil.rmtree(home, ignore_errors=True)
        return m

    def cli(self, args: list[str]) -> dict[str, Any]:
        self.before_measure()
        return timed_cli(args)

    def home_2k(self) -> Path:
        """A home holding the planned 2,000-SKU version (the last ``plan_2k`` repeat's, else one made now)."""
        if self.plan_2k_home is None:
            _, self.plan_2k_home = self.plan(SIZE_2K)
        return self.plan_2k_home


def run_rows(bench: Bench, rows: list[Target]) -> None:
    wanted = {t.key for t in rows}
    repeat = bench.args.repeat
    by_key = {t.key: t for t in rows}

    def measure(key: str, times: int, fn: Callable[[], dict[str, Any]]) -> None:
        if key not in wanted:
            return
        target = by_key[key]
        for attempt in range(times):
            log(f"{key} ({attempt + 1}/{times}) ...")
            try:
                target.measured.append(fn())
            except Exception as exc:  # a failed command is a row result, not the end of the benchmark
                target.error = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else repr(exc)
                log(f"{key} FAILED: {exc}")
                return

    def plan_2k() -> dict[str, Any]:
        m, bench.plan_2k_home = bench.plan(SIZE_2K)
        return m

    measure("plan_2k", repeat, plan_2k)
    plan_5k: list[dict[str, Any]] = []

    def plan_5k_once() -> dict[str, Any]:
        m, home = bench.plan(SIZE_5K)
        plan_5k.append(m)
        if not bench.args.keep:
            shutil.rmtree(home, ignore_errors=True)
        return m

    if "plan_5k" in wanted:
        measure("plan_5k", repeat, plan_5k_once)
        if "plan_5k_rss" in wanted:  # the same runs: their children's peak RSS
            by_key["plan_5k_rss"].measured = list(plan_5k)
            by_key["plan_5k_rss"].error = by_key["plan_5k"].error
    else:
        measure("plan_5k_rss", repeat, plan_5k_once)
    measure("export_reference_2k", repeat, lambda: bench.export_reference(bench.home_2k()))
    measure("materialize_5k", repeat, lambda: bench.materialize(SIZE_5K))
    if bench.args.skip_50k and "materialize_50k" in wanted:
        by_key["materialize_50k"].skipped = True
    else:
        measure("materialize_50k", bench.args.repeat_50k, lambda: bench.materialize(SIZE_50K))
    startup_repeat = max(repeat, bench.args.startup_repeat)
    measure("cli_help", startup_repeat, lambda: bench.cli(["--help"]))
    measure("cli_version_list", startup_repeat,
            lambda: bench.cli(["--home", str(bench.home_2k()), "version", "list"]))


def run_floor(bench: Bench, floor: list[Target]) -> None:
    """``plan`` and ``materialize`` of the bundled sample, ``--repeat`` times each (fresh homes)."""
    for target, fn in zip(floor, (lambda: bench.plan(None)[0], lambda: bench.materialize(None)), strict=True):
        for attempt in range(bench.args.repeat):
            log(f"{target.key} ({attempt + 1}/{bench.args.repeat}) ...")
            try:
                target.measured.append(fn())
            except Exception as exc:
                target.error = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else repr(exc)
                log(f"{target.key} FAILED: {exc}")
                break


# ----------------------------------------------------------------------------- verdicts and tables
def best(target: Target) -> dict[str, float | None]:
    """Fastest wall time and highest peak RSS over the repeats."""
    walls = [m["wall_s"] for m in target.measured]
    rss = [m["peak_rss_mb"] for m in target.measured]
    return {"wall_s": min(walls) if walls else None, "peak_rss_mb": max(rss) if rss else None}


def measured_text(target: Target) -> str:
    if target.skipped:
        return "skipped (--skip-50k)"
    if not target.measured:
        return f"FAILED: {target.error}" if target.error else "not run"
    b = best(target)
    parts = []
    if target.wall_s is not None:
        parts.append(f"{b['wall_s']:.2f} s")
    if target.rss_mb is not None:
        rss = b["peak_rss_mb"] or 0.0
        parts.append(f"{rss / 1024:.2f} GB" if target.rss_mb >= 1024 else f"{rss:.0f} MB")
    return " / ".join(parts) + (f" (then FAILED: {target.error})" if target.error else "")


def status(target: Target) -> str:
    if target.skipped:
        return "skipped"
    if target.error:
        return "FAILED"
    if not target.measured:
        return "not run"
    b = best(target)
    ok = True
    if target.wall_s is not None:
        ok = ok and (b["wall_s"] or 0.0) <= target.wall_s
    if target.rss_mb is not None:
        ok = ok and (b["peak_rss_mb"] or 0.0) <= target.rss_mb
    return "met" if ok else "MISSED"


def below_floor(floor: Target, rows: list[Target]) -> list[str]:
    """The time targets (of the rows this floor bounds) under the floor's fastest wall time."""
    if not floor.measured:
        return []
    fastest = best(floor)["wall_s"] or 0.0
    by_key = {t.key: t for t in targets()}
    return [f"{key} (<= {by_key[key].wall_s:g} s)" for key in FLOOR_OF[floor.key]
            if by_key[key].wall_s is not None and by_key[key].wall_s < fastest]


def floor_table(floor: list[Target], rows: list[Target]) -> str:
    return md_table(["fixed cost of a run", "wall s (every repeat)", "peak RSS MB", "time targets below it"],
                    [[t.what, " / ".join(f"{m['wall_s']:.2f}" for m in t.measured) or f"FAILED: {t.error}",
                      f"{best(t)['peak_rss_mb'] or 0:.0f}" if t.measured else "-",
                      ", ".join(below_floor(t, rows)) or "none"] for t in floor])


def targets_table(rows: list[Target]) -> str:
    return md_table(["what", "target", "measured", "status"],
                    [[t.what, t.target, measured_text(t), status(t)] for t in rows])


def details_table(rows: list[Target]) -> str:
    out = []
    for t in rows:
        if not t.measured:
            continue
        walls = " / ".join(f"{m['wall_s']:.2f}" for m in t.measured)
        rss = " / ".join(f"{m['peak_rss_mb']:.0f}" for m in t.measured)
        busy = " / ".join(f"{m['other_cores']:.2f}" if m.get("other_cores") is not None else "-"
                          for m in t.measured)
        extra = ""
        first = t.measured[0]
        if "bytes" in first:
            extra = f"{first['files']} files, {first['bytes'] / 2**20:.0f} MB"
        if first.get("setup"):
            s = first["setup"]
            extra = (f"import {s['import']['wall_s']:.1f} s / {s['import']['peak_rss_mb']:.0f} MB, version create "
                     f"{s['version_create']['wall_s']:.1f} s; store {first.get('db_mb') or 0:.0f} MB")
        out.append([t.key, walls, rss, busy, extra])
    return md_table(["row", "wall s (every repeat)", "peak RSS MB (every repeat)", "other procs' CPU cores",
                     "notes"], out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", choices=[*ROW_KEYS, FLOOR_KEY], metavar="ROW",
                   help=f"measure only these rows (default: all): {', '.join([*ROW_KEYS, FLOOR_KEY])} "
                   f"({FLOOR_KEY}: plan and materialize of the bundled {SAMPLE_SKUS}-SKU sample)")
    p.add_argument("--skip-50k", action="store_true", help="leave out the 50,000-SKU materialize (minutes)")
    p.add_argument("--repeat", type=int, default=1, help="runs per row, each on a fresh home (default 1)")
    p.add_argument("--repeat-50k", type=int, default=1, help="runs of the 50,000-SKU row (default 1)")
    p.add_argument("--startup-repeat", type=int, default=5,
                   help="runs of --help and version list (at least --repeat; default 5)")
    p.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                   help="before each measured command wait up to SECONDS until other processes use < 0.3 cores")
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "plan-pipeline" / "speed-targets"
    p.add_argument("--cache", default=str(default_cache), help=f"generated inputs are kept here (default {default_cache})")
    p.add_argument("--workdir", help="parent of the temporary work folder (default: system temp)")
    p.add_argument("--keep", action="store_true", help="keep the project homes and output files")
    p.add_argument("--json", metavar="OUT", help="save every measurement to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rows = [t for t in targets() if not args.rows or t.key in args.rows]
    floor = floor_rows() if not args.rows or FLOOR_KEY in args.rows else []
    meta: dict[str, Any] = {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "mem_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "code": code_version(),
    }
    bench = Bench(args)
    started = time.perf_counter()
    try:
        run_rows(bench, rows)
        if floor:
            run_floor(bench, floor)
    finally:
        if not args.keep:
            shutil.rmtree(bench.work, ignore_errors=True)
    meta["total_s"] = time.perf_counter() - started
    code = meta["code"]
    modified = code.get("package_locally_modified")
    print(f"# issue 13 speed targets ({meta['date_utc']}, {meta['machine']['cpus']} CPUs, "
          f"{meta['machine']['mem_gb']:.0f} GB)\n")
    print(f"code: {code.get('git_commit', 'unknown commit')[:12]} ({code['package_dir']})"
          + (f", locally modified: {', '.join(modified)}" if modified else "")
          + f"; repeats: {args.repeat} (50k: {args.repeat_50k}); best wall, highest peak RSS\n")
    print(targets_table(rows))
    details = details_table(rows)
    if details.count("\n") > 1:
        print("\n" + details)
    if floor:
        print("\n" + floor_table(floor, rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {"meta": meta, "rows": [{"key": t.key, "what": t.what, "target": t.target,
                                            "measured": measured_text(t), "status": status(t), **best(t),
                                            "repeats": t.measured, "error": t.error, "skipped": t.skipped}
                                           for t in rows],
                   "floor": [{"key": t.key, "what": t.what, **best(t), "repeats": t.measured, "error": t.error,
                              "time_targets_below": below_floor(t, rows)} for t in floor]}
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str))
        log(f"saved {args.json}")
    failed = [t for t in rows if status(t) not in ("met", "MISSED", "skipped")] + [t for t in floor if t.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
